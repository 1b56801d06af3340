//! Offer validation before any peer connection is built: a pure pass over
//! the SDP text that refuses what `rtc` would accept but should not (or
//! would only warn about, line by line, into our logs). Limits:
//!
//! - the offer is at most [`MAX_OFFER_BYTES`] (64 KiB);
//! - at most [`MAX_MEDIA_SECTIONS`] m-sections (a publish needs 2, the
//!   largest real offers seen have a handful);
//! - at most [`MAX_SSRC_LINES`] `a=ssrc:` lines, each SSRC a u32;
//! - fingerprints: sha-1/224/256/384/512, with as many hex pairs as the
//!   algorithm's digest has bytes;
//! - `a=setup`: actpass, active or passive, the same in every m-section
//!   (missing is RFC 4145's default, `active`); the value is returned, for
//!   the answer's DTLS role (RFC 8842 §5.3);
//! - ICE credentials in RFC 8839 `ice-char` (ALPHA / DIGIT / `+` / `/`),
//!   ufrag 4–256 chars, password 22–256 chars;
//! - every m-section that is neither rejected (port 0) nor `bundle-only`
//!   has a fingerprint, a ufrag and a password, its own or the session's.

/// The largest offer accepted, in bytes.
pub const MAX_OFFER_BYTES: usize = 64 * 1024;
/// The most m-sections an offer may have.
pub const MAX_MEDIA_SECTIONS: usize = 16;
/// The most `a=ssrc:` lines an offer may have.
pub const MAX_SSRC_LINES: usize = 64;

/// Digest length in bytes of each accepted fingerprint algorithm.
const FINGERPRINT_ALGS: &[(&str, usize)] = &[
    ("sha-1", 20),
    ("sha-224", 28),
    ("sha-256", 32),
    ("sha-384", 48),
    ("sha-512", 64),
];

/// The offerer's DTLS role (`a=setup`), RFC 8842 §5.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// `actpass`: the answerer chooses.
    ActPass,
    /// `active` (or no `a=setup`, RFC 4145's default): the offerer is the
    /// DTLS client, the answer must be `passive`.
    Active,
    /// `passive`: the offerer is the DTLS server, the answer must be
    /// `active`.
    Passive,
}

/// What a level (session or one m-section) declares.
#[derive(Default)]
struct Level {
    fingerprint: bool,
    ufrag: bool,
    pwd: bool,
}

struct Section {
    index: usize,
    kind: String,
    rejected: bool,
    bundle_only: bool,
    level: Level,
}

/// Check `sdp`; the error says what is wrong, for the `1005001` message.
/// On success, the offer's DTLS role.
pub fn check(sdp: &str) -> Result<Setup, String> {
    if sdp.len() > MAX_OFFER_BYTES {
        return Err(format!(
            "the offer is {} bytes, over the limit of {MAX_OFFER_BYTES}",
            sdp.len()
        ));
    }
    let mut session = Level::default();
    let mut sections: Vec<Section> = Vec::new();
    let mut ssrc_lines = 0usize;
    let mut role: Option<Setup> = None;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(m) = line.strip_prefix("m=") {
            if sections.len() == MAX_MEDIA_SECTIONS {
                return Err(format!(
                    "more than {MAX_MEDIA_SECTIONS} m-sections in the offer"
                ));
            }
            let mut words = m.split_whitespace();
            let kind = words.next().unwrap_or_default().to_string();
            let rejected = words.next() == Some("0");
            sections.push(Section {
                index: sections.len(),
                kind,
                rejected,
                bundle_only: false,
                level: Level::default(),
            });
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else {
            continue;
        };
        let (key, value) = match attr.split_once(':') {
            Some((k, v)) => (k, v.trim()),
            None => (attr.trim(), ""),
        };
        let level = match sections.last_mut() {
            Some(s) => &mut s.level,
            None => &mut session,
        };
        match key {
            "fingerprint" => {
                fingerprint(value)?;
                level.fingerprint = true;
            }
            "setup" => {
                let this = setup(value)?;
                if role.is_some_and(|r| r != this) {
                    return Err("a=setup differs between media sections".to_string());
                }
                role = Some(this);
            }
            "ice-ufrag" => {
                ice_token("ice-ufrag", value, 4)?;
                level.ufrag = true;
            }
            "ice-pwd" => {
                ice_token("ice-pwd", value, 22)?;
                level.pwd = true;
            }
            "ssrc" => {
                ssrc_lines += 1;
                if ssrc_lines > MAX_SSRC_LINES {
                    return Err(format!(
                        "more than {MAX_SSRC_LINES} a=ssrc lines in the offer"
                    ));
                }
                let id = value.split_whitespace().next().unwrap_or_default();
                if id.parse::<u32>().is_err() {
                    return Err(format!("a=ssrc `{}` is not a 32-bit SSRC", clip(id)));
                }
            }
            "bundle-only" => {
                if let Some(s) = sections.last_mut() {
                    s.bundle_only = true;
                }
            }
            _ => {}
        }
    }
    for s in sections.iter().filter(|s| !s.rejected && !s.bundle_only) {
        let missing = [
            (s.level.fingerprint || session.fingerprint, "a=fingerprint"),
            (s.level.ufrag || session.ufrag, "a=ice-ufrag"),
            (s.level.pwd || session.pwd, "a=ice-pwd"),
        ];
        if let Some((_, what)) = missing.iter().find(|(present, _)| !present) {
            return Err(format!(
                "m-section {} ({}) has no {what}",
                s.index,
                clip(&s.kind)
            ));
        }
    }
    Ok(role.unwrap_or(Setup::Active))
}

/// At most 32 characters of client text in a message.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(32).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn fingerprint(value: &str) -> Result<(), String> {
    let mut words = value.split_whitespace();
    let alg = words.next().unwrap_or_default().to_ascii_lowercase();
    let hex = words.next().unwrap_or_default();
    if words.next().is_some() {
        return Err("a=fingerprint has more than an algorithm and a value".into());
    }
    let Some(&(_, len)) = FINGERPRINT_ALGS.iter().find(|(a, _)| *a == alg) else {
        return Err(format!(
            "fingerprint algorithm `{}` is not one of sha-1, sha-224, sha-256, sha-384, sha-512",
            clip(&alg)
        ));
    };
    let mut bytes = 0usize;
    for pair in hex.split(':') {
        if pair.len() != 2 || !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "fingerprint byte `{}` is not a hex pair",
                clip(pair)
            ));
        }
        bytes += 1;
    }
    if bytes != len {
        return Err(format!(
            "{alg} fingerprint has {bytes} bytes, expected {len}"
        ));
    }
    Ok(())
}

fn setup(value: &str) -> Result<Setup, String> {
    match value {
        "actpass" => Ok(Setup::ActPass),
        "active" => Ok(Setup::Active),
        "passive" => Ok(Setup::Passive),
        other => Err(format!(
            "setup role `{}` is not actpass, active or passive",
            clip(other)
        )),
    }
}

/// RFC 8839: `ice-char = ALPHA / DIGIT / "+" / "/"`, `min`..=256 of them.
fn ice_token(name: &str, value: &str, min: usize) -> Result<(), String> {
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return Err(format!(
            "{name} `{}` has characters other than letters, digits, `+` and `/`",
            clip(value)
        ));
    }
    if value.len() < min || value.len() > 256 {
        return Err(format!(
            "{name} is {} characters long, not {min} to 256",
            value.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "offer_check_tests.rs"]
mod tests;
