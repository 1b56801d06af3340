//! Room tokens end to end: every token failure of `loginRoom`, `switchRoom`
//! and `renewToken` with its exact code, the 5 s clock leeway,
//! `tokenWillExpire`, and the contract's check order (request shape →
//! identifier rules → token → session state).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const EXPIRED: u64 = 1_002_078;
const INVALID: u64 = 1_002_033;
const MISSING: u64 = 1_002_067;
const OTHER_APP: u64 = 1_002_076;
const OTHER_USER: u64 = 1_002_077;

/// `loginRoom` fields for `user` in `room`; `token: None` leaves the field out.
fn login_fields(room: &str, user: &str, token: Option<&str>) -> Value {
    let mut v = json!({"roomID": room, "user": {"userID": user, "userName": user}});
    if let Some(t) = token {
        v["token"] = json!(t);
    }
    v
}

/// A token of app 1 for `user` with `extra` merged into (or, for nulls,
/// removed from) the default claims.
fn token_with(user: &str, extra: Value) -> String {
    let mut c = claims(1, user);
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    sign(secret(1), &c)
}

fn b64url(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A token with the given header and valid claims for `user`, unsigned.
fn unsigned_token(header: Value, user: &str) -> String {
    format!(
        "{}.{}.",
        b64url(header.to_string().as_bytes()),
        b64url(claims(1, user).to_string().as_bytes())
    )
}

/// Every bad token for alice in room `room` of app 1, with its code.
fn bad_tokens(room: &str) -> Vec<(&'static str, Option<String>, u64)> {
    let now = now_secs();
    vec![
        ("no token field", None, MISSING),
        ("empty token", Some(String::new()), MISSING),
        (
            "wrong secret",
            Some(sign("not-the-secret", &claims(1, "alice"))),
            INVALID,
        ),
        ("garbage", Some("this-is-not-a-jwt".into()), INVALID),
        ("garbage with dots", Some("a.b.c".into()), INVALID),
        (
            "expired 60 s ago",
            Some(token_with("alice", json!({"exp": now - 60}))),
            EXPIRED,
        ),
        ("other user", Some(token(1, "bob")), OTHER_USER),
        ("other app", Some(token(2, "alice")), OTHER_APP),
        (
            "room_id of another room",
            Some(token_with(
                "alice",
                json!({"room_id": format!("{room}-other")}),
            )),
            INVALID,
        ),
        (
            "no login privilege",
            Some(token_with("alice", json!({"privilege": {"login": false}}))),
            INVALID,
        ),
        (
            "missing exp",
            Some(token_with("alice", json!({"exp": null}))),
            INVALID,
        ),
        (
            "alg none",
            Some(unsigned_token(
                json!({"alg": "none", "typ": "JWT"}),
                "alice",
            )),
            INVALID,
        ),
        (
            "HS256 header, empty signature",
            Some(unsigned_token(
                json!({"alg": "HS256", "typ": "JWT"}),
                "alice",
            )),
            INVALID,
        ),
    ]
}

#[test]
fn base64url_matches_rfc4648_vectors() {
    // The helper must be right, or the alg-none case would test nothing.
    for (input, want) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
    ] {
        assert_eq!(b64url(input.as_bytes()), want);
    }
    assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
}

#[tokio::test]
async fn login_token_failures_have_their_codes() {
    let server = TestServer::start("");
    let mut c = server.client(1).await;
    for (what, tok, code) in bad_tokens("r1") {
        let v = c
            .request("loginRoom", login_fields("r1", "alice", tok.as_deref()))
            .await;
        assert_eq!(v["code"], json!(code), "{what}: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {v}"
        );
    }
    // None of the failures joined the room: bob is alone in it.
    let mut bob = server.client(1).await;
    let res = bob.login(1, "bob", "r1").await;
    assert_eq!(res["userList"], json!([]));
    // ...and the connection can still log in with a good token.
    c.ok(
        "loginRoom",
        login_fields("r1", "alice", Some(&token(1, "alice"))),
    )
    .await;
}

#[tokio::test]
async fn accepted_tokens() {
    let server = TestServer::start("");
    let now = now_secs();
    let good = [
        (
            "expired 3 s ago (leeway)",
            token_with("alice", json!({"exp": now - 3})),
        ),
        (
            "room_id of this room",
            token_with("alice", json!({"room_id": "r1"})),
        ),
        (
            "privilege login only",
            token_with(
                "alice",
                json!({"privilege": {"login": true, "publish": false}}),
            ),
        ),
        (
            "privilege without login key",
            token_with("alice", json!({"privilege": {"publish": true}})),
        ),
        (
            "stream_id_list",
            token_with("alice", json!({"stream_id_list": ["s1"]})),
        ),
    ];
    for (what, tok) in good {
        let mut c = server.client(1).await;
        let v = c
            .request("loginRoom", login_fields("r1", "alice", Some(&tok)))
            .await;
        assert_eq!(v["code"], json!(0), "{what}: {v}");
    }
}

#[tokio::test]
async fn switch_room_token_failures_have_their_codes() {
    let server = TestServer::start("");
    let mut alice = server.client(1).await;
    alice.login(1, "alice", "r1").await;
    let mut bob = server.client(1).await;
    bob.login(1, "bob", "r2").await;
    for (what, tok, code) in bad_tokens("r2") {
        let mut f = json!({"fromRoomID": "r1", "toRoomID": "r2"});
        if let Some(t) = tok {
            f["token"] = json!(t);
        }
        let v = alice.request("switchRoom", f).await;
        assert_eq!(v["code"], json!(code), "{what}: {v}");
    }
    // A token bound to the source room is not valid for the target.
    alice
        .fails(
            "switchRoom",
            json!({"fromRoomID": "r1", "toRoomID": "r2",
                   "token": token_with("alice", json!({"room_id": "r1"}))}),
            INVALID,
        )
        .await;
    bob.no_event("roomUserUpdate").await;
    // Still in r1 (a from-room she had left would answer 1002002): the switch works now.
    alice
        .ok(
            "switchRoom",
            json!({"fromRoomID": "r1", "toRoomID": "r2",
                   "token": token_with("alice", json!({"room_id": "r2"}))}),
        )
        .await;
    let e = bob.room_event("roomUserUpdate", "r2").await;
    assert_eq!(e["updateType"], "ADD");
    assert_eq!(e["userList"][0]["userID"], "alice");
}

#[tokio::test]
async fn renew_token() {
    let server = TestServer::start("");
    let mut alice = server.client(1).await;
    alice.enable_multi_room().await;
    alice.login(1, "alice", "r1").await;
    alice.login(1, "alice", "r2").await;
    alice
        .ok(
            "renewToken",
            json!({"roomID": "r1", "token": token(1, "alice")}),
        )
        .await;
    alice
        .ok(
            "renewToken",
            json!({"roomID": "r2", "token": token_with("alice", json!({"room_id": "r2"}))}),
        )
        .await;
    // A room not joined, with a good token.
    alice
        .fails(
            "renewToken",
            json!({"roomID": "r3", "token": token(1, "alice")}),
            1_002_002,
        )
        .await;
    // Bad tokens for a joined room.
    for (what, tok, code) in bad_tokens("r1") {
        let mut f = json!({"roomID": "r1"});
        if let Some(t) = tok {
            f["token"] = json!(t);
        }
        let v = alice.request("renewToken", f).await;
        assert_eq!(v["code"], json!(code), "{what}: {v}");
    }
    // The token is checked before the session state: a bad token for a room
    // not joined answers the token's code.
    alice
        .fails(
            "renewToken",
            json!({"roomID": "r3", "token": sign("wrong", &claims(1, "alice"))}),
            INVALID,
        )
        .await;
    // A failed renewal did not break anything: the room still works.
    alice
        .ok(
            "renewToken",
            json!({"roomID": "r1", "token": token(1, "alice")}),
        )
        .await;
}

#[tokio::test]
async fn token_will_expire_fires_30s_before_exp_and_renewal_stops_it() {
    let server = TestServer::start("");
    let mut alice = server.client(1).await;
    alice.enable_multi_room().await;
    let mut bob = server.client(1).await;
    bob.login(1, "bob", "r1").await;
    let now = now_secs();
    // r1: warned ~1 s from now. r2: would be warned ~2 s from now, but is
    // renewed to +1 h at once. r3: a normal token.
    let short = |s: u64| token_with("alice", json!({"exp": now + s}));
    alice
        .ok("loginRoom", login_fields("r1", "alice", Some(&short(31))))
        .await;
    alice
        .ok("loginRoom", login_fields("r2", "alice", Some(&short(32))))
        .await;
    alice
        .ok(
            "loginRoom",
            login_fields("r3", "alice", Some(&token(1, "alice"))),
        )
        .await;
    alice
        .ok(
            "renewToken",
            json!({"roomID": "r2", "token": token(1, "alice")}),
        )
        .await;

    alice.room_event("tokenWillExpire", "r1").await;
    // Renew r1 too; then wait past r2's original warning time.
    alice
        .ok(
            "renewToken",
            json!({"roomID": "r1", "token": token(1, "alice")}),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    alice.no_event("tokenWillExpire").await;
    // Only the token's holder is told.
    bob.no_event("tokenWillExpire").await;

    // A renewal with another short token arms the warning again.
    alice
        .ok(
            "renewToken",
            json!({"roomID": "r3", "token": token_with("alice", json!({"exp": now_secs() + 31}))}),
        )
        .await;
    alice.room_event("tokenWillExpire", "r3").await;
    alice.no_event("tokenWillExpire").await;
}

#[tokio::test]
async fn identifier_rules_come_before_the_token() {
    let server = TestServer::start("");
    let mut c = server.client(1).await;
    let bad = sign("wrong", &claims(1, "alice"));
    c.fails(
        "loginRoom",
        login_fields("", "alice", Some(&bad)),
        1_002_011,
    )
    .await;
    c.fails("loginRoom", login_fields("a/b", "alice", None), 1_002_012)
        .await;
    c.fails(
        "loginRoom",
        login_fields(&"r".repeat(129), "alice", Some("")),
        1_002_013,
    )
    .await;
    c.fails("loginRoom", login_fields("r1", "", Some(&bad)), 1_002_005)
        .await;
    c.fails("loginRoom", login_fields("r1", "a:b", None), 1_002_006)
        .await;
    c.fails(
        "loginRoom",
        login_fields("r1", &"u".repeat(65), Some("garbage")),
        1_002_007,
    )
    .await;
    let mut f = login_fields("r1", "alice", None);
    f["user"]["userName"] = json!("n".repeat(257));
    c.fails("loginRoom", f, 1_002_010).await;
    // Request shape comes before everything: a mistyped roomID with a bad userID.
    let f = json!({"roomID": 5, "user": {"userID": ""}, "token": bad});
    c.fails("loginRoom", f, 1_000_001).await;
    // switchRoom: the identifiers first too.
    c.login(1, "alice", "r1").await;
    c.fails(
        "switchRoom",
        json!({"fromRoomID": "r1", "toRoomID": "", "token": bad}),
        1_002_011,
    )
    .await;
    c.fails(
        "switchRoom",
        json!({"fromRoomID": "r:1", "toRoomID": "r2"}),
        1_002_012,
    )
    .await;
    c.fails("renewToken", json!({"roomID": "", "token": bad}), 1_002_011)
        .await;
}

#[tokio::test]
async fn the_token_comes_before_the_session_state() {
    let server = TestServer::start("");
    let bad = sign("wrong", &claims(1, "alice"));

    // Multi-room: the same room again with a bad token → token code, not 1002056.
    let mut c = server.client(1).await;
    c.enable_multi_room().await;
    c.login(1, "alice", "r1").await;
    c.fails(
        "loginRoom",
        login_fields("r1", "alice", Some(&bad)),
        INVALID,
    )
    .await;
    c.fails("loginRoom", login_fields("r1", "alice", None), MISSING)
        .await;
    // With a good token the state answers.
    c.fails(
        "loginRoom",
        login_fields("r1", "alice", Some(&token(1, "alice"))),
        1_002_056,
    )
    .await;
    // Another userID on this connection (1002018) with an expired token → expired.
    let expired = sign(
        secret(1),
        &json!({"app_id": 1, "user_id": "zed", "iat": 1, "exp": now_secs() - 60}),
    );
    c.fails(
        "loginRoom",
        login_fields("r2", "zed", Some(&expired)),
        EXPIRED,
    )
    .await;
    c.fails(
        "loginRoom",
        login_fields("r2", "zed", Some(&token(1, "zed"))),
        1_002_018,
    )
    .await;
    // switchRoom from a room not joined, with a bad token → token code, not 1002002.
    c.fails(
        "switchRoom",
        json!({"fromRoomID": "r9", "toRoomID": "r8", "token": bad}),
        INVALID,
    )
    .await;
    // switchRoom to the same room, with a token of another user → 1002077, not 1002064.
    c.fails(
        "switchRoom",
        json!({"fromRoomID": "r1", "toRoomID": "r1", "token": token(1, "bob")}),
        OTHER_USER,
    )
    .await;

    // Single-room: a second login with a bad token → token code, not 1002001.
    let mut s = server.client(1).await;
    s.login(1, "sam", "r1").await;
    s.fails(
        "loginRoom",
        login_fields("r2", "sam", Some(&token(2, "sam"))),
        OTHER_APP,
    )
    .await;
    s.fails(
        "loginRoom",
        login_fields("r2", "sam", Some(&token(1, "sam"))),
        1_002_001,
    )
    .await;

    // App 2 does not permit multi-room: with a bad token the token answers.
    let mut m = server.client(2).await;
    m.enable_multi_room().await;
    m.fails(
        "loginRoom",
        login_fields("a", "alice", Some(&token(1, "alice"))),
        OTHER_APP,
    )
    .await;
    m.fails(
        "loginRoom",
        login_fields("a", "alice", Some(&token(2, "alice"))),
        1_100_001_016,
    )
    .await;

    // Over the app's room maximum (app 3: two rooms), with a bad token.
    let mut t = server.client(3).await;
    t.enable_multi_room().await;
    t.login(3, "tom", "a").await;
    t.login(3, "tom", "b").await;
    t.fails("loginRoom", login_fields("c", "tom", Some("")), MISSING)
        .await;
    t.fails(
        "loginRoom",
        login_fields("c", "tom", Some(&token(3, "tom"))),
        1_000_005_022,
    )
    .await;

    // A full room, with a bad token.
    let mut owner = server.client(1).await;
    let mut f = login_fields("full", "owner", Some(&token(1, "owner")));
    f["config"] = json!({"maxMemberCount": 1});
    owner.ok("loginRoom", f).await;
    let mut late = server.client(1).await;
    late.fails(
        "loginRoom",
        login_fields("full", "late", Some(&token(1, "owner"))),
        OTHER_USER,
    )
    .await;
    late.fails(
        "loginRoom",
        login_fields("full", "late", Some(&token(1, "late"))),
        1_002_034,
    )
    .await;
}
