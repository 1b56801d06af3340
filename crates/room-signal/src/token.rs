//! Room tokens: HS256 JWTs signed with the app's secret (see `protocol.md`,
//! "Apps and tokens"). `verify` maps every failure to the contract's code in
//! the contract's order; `mint` is what `sfu token` and the tests use.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{code, Result, SignalError};

/// Clock leeway on `exp`, in seconds.
pub const EXP_LEEWAY_SECS: u64 = 5;

/// What a token may do; both default to true when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privilege {
    #[serde(default = "yes")]
    pub login: bool,
    #[serde(default = "yes")]
    pub publish: bool,
}

fn yes() -> bool {
    true
}

impl Default for Privilege {
    fn default() -> Self {
        Privilege {
            login: true,
            publish: true,
        }
    }
}

/// The claims of a room token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub app_id: u32,
    pub user_id: String,
    pub iat: u64,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privilege: Option<Privilege>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id_list: Option<Vec<String>>,
}

impl Claims {
    pub fn privilege(&self) -> Privilege {
        self.privilege.unwrap_or_default()
    }

    /// May this token publish `stream_id`?
    pub fn may_publish(&self, stream_id: &str) -> bool {
        self.privilege().publish
            && self
                .stream_id_list
                .as_ref()
                .is_none_or(|list| list.iter().any(|s| s == stream_id))
    }
}

/// Sign `claims` with `secret` (HS256).
pub fn mint(secret: &str, claims: &Claims) -> String {
    // Encoding an HS256 token with a byte key and a serializable struct cannot
    // fail; fall back to an empty (and therefore invalid) token if it ever did.
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// The fields read before the signature is checked, so that a valid token of
/// another app or user gets its specific code.
#[derive(Deserialize)]
struct Unverified {
    app_id: Option<serde_json::Value>,
    user_id: Option<serde_json::Value>,
}

/// What a token claims, read without checking its signature: for routing a
/// bearer token (WHIP/WHEP) to its app and user before [`verify`] checks it.
pub fn peek(token: &str) -> Option<(u32, String, Option<String>)> {
    #[derive(Deserialize)]
    struct Peek {
        app_id: u32,
        user_id: String,
        room_id: Option<String>,
    }
    let mut loose = Validation::new(Algorithm::HS256);
    loose.insecure_disable_signature_validation();
    loose.validate_exp = false;
    loose.required_spec_claims.clear();
    let p = decode::<Peek>(token, &DecodingKey::from_secret(&[]), &loose)
        .ok()?
        .claims;
    Some((p.app_id, p.user_id, p.room_id))
}

/// The claims of a token whose HS256 signature by `secret` holds, whatever
/// its expiry, room or privilege: proof of who it was issued to (the owner
/// check of a WHIP/WHEP resource).
pub fn signed_claims(token: &str, secret: &str) -> Option<Claims> {
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_exp = false;
    v.required_spec_claims.clear();
    decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &v)
        .ok()
        .map(|d| d.claims)
}

fn invalid(why: &str) -> SignalError {
    SignalError::new(code::TOKEN_INVALID, format!("token invalid: {why}"))
}

/// Check a token for `(app_id, user_id)` joining `room_id` at `now_secs`.
/// Order: missing → app → user → signature/format → expired → room → login privilege.
pub fn verify(
    token: Option<&str>,
    app_id: u32,
    secret: &str,
    user_id: &str,
    room_id: &str,
    now_secs: u64,
) -> Result<Claims> {
    let token = match token {
        Some(t) if !t.is_empty() => t,
        _ => return Err(SignalError::new(code::TOKEN_MISSING, "token missing")),
    };
    let mut loose = Validation::new(Algorithm::HS256);
    loose.insecure_disable_signature_validation();
    loose.validate_exp = false;
    loose.required_spec_claims.clear();
    let peek = decode::<Unverified>(token, &DecodingKey::from_secret(&[]), &loose)
        .map_err(|e| invalid(&e.to_string()))?
        .claims;
    match peek.app_id.as_ref().and_then(|v| v.as_u64()) {
        Some(a) if a == u64::from(app_id) => {}
        Some(_) => {
            return Err(SignalError::new(
                code::TOKEN_APP_MISMATCH,
                "token was issued for another app",
            ))
        }
        None => return Err(invalid("app_id claim missing or not a number")),
    }
    match peek.user_id.as_ref().and_then(|v| v.as_str()) {
        Some(u) if u == user_id => {}
        Some(_) => {
            return Err(SignalError::new(
                code::TOKEN_USER_MISMATCH,
                "token was issued for another user",
            ))
        }
        None => return Err(invalid("user_id claim missing or not a string")),
    }
    let mut strict = Validation::new(Algorithm::HS256);
    strict.validate_exp = false;
    strict.set_required_spec_claims(&["exp"]);
    let claims = decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &strict)
        .map_err(|e| invalid(&e.to_string()))?
        .claims;
    if claims.exp.saturating_add(EXP_LEEWAY_SECS) < now_secs {
        return Err(SignalError::new(code::TOKEN_EXPIRED, "token expired"));
    }
    if let Some(r) = &claims.room_id {
        if r != room_id {
            return Err(invalid("token is for another room"));
        }
    }
    if !claims.privilege().login {
        return Err(invalid("token has no login privilege"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(app: u32, user: &str, exp: u64) -> Claims {
        Claims {
            app_id: app,
            user_id: user.into(),
            iat: 1000,
            exp,
            room_id: None,
            privilege: None,
            stream_id_list: None,
        }
    }

    fn check(token: &str) -> u32 {
        match verify(Some(token), 1, "s3cret", "alice", "r1", 2000) {
            Ok(_) => 0,
            Err(e) => e.code,
        }
    }

    #[test]
    fn every_failure_has_its_code() {
        assert_eq!(check(&mint("s3cret", &claims(1, "alice", 3000))), 0);
        assert_eq!(
            verify(None, 1, "s3cret", "alice", "r1", 2000)
                .unwrap_err()
                .code,
            code::TOKEN_MISSING
        );
        assert_eq!(check(""), code::TOKEN_MISSING);
        assert_eq!(check("garbage"), code::TOKEN_INVALID);
        assert_eq!(
            check(&mint("other", &claims(2, "alice", 3000))),
            code::TOKEN_APP_MISMATCH
        );
        assert_eq!(
            check(&mint("s3cret", &claims(1, "bob", 3000))),
            code::TOKEN_USER_MISMATCH
        );
        assert_eq!(
            check(&mint("wrong", &claims(1, "alice", 3000))),
            code::TOKEN_INVALID
        );
        assert_eq!(
            check(&mint("s3cret", &claims(1, "alice", 1990))),
            code::TOKEN_EXPIRED
        );
        // within the 5 s leeway
        assert_eq!(check(&mint("s3cret", &claims(1, "alice", 1996))), 0);
        let mut room = claims(1, "alice", 3000);
        room.room_id = Some("r2".into());
        assert_eq!(check(&mint("s3cret", &room)), code::TOKEN_INVALID);
        room.room_id = Some("r1".into());
        assert_eq!(check(&mint("s3cret", &room)), 0);
        let mut nologin = claims(1, "alice", 3000);
        nologin.privilege = Some(Privilege {
            login: false,
            publish: true,
        });
        assert_eq!(check(&mint("s3cret", &nologin)), code::TOKEN_INVALID);
    }

    #[test]
    fn publish_rights() {
        let mut c = claims(1, "a", 3000);
        assert!(c.may_publish("s1"));
        c.stream_id_list = Some(vec!["s1".into()]);
        assert!(c.may_publish("s1"));
        assert!(!c.may_publish("s2"));
        c.privilege = Some(Privilege {
            login: true,
            publish: false,
        });
        assert!(!c.may_publish("s1"));
    }
}
