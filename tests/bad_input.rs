//! Bad input end to end: malformed frames and their `"id": null` answers,
//! binary and oversized frames, heartbeats, unknown apps, the per-connection
//! request flood guard, every identifier and body rule with its code, room
//! capacity, and a garbage storm the server must survive.

mod common;

use common::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const MALFORMED: u64 = 1_000_001;

/// Send `frames` back to back, then read one response per frame.
async fn pipelined(c: &mut Client, frames: &[String]) -> Vec<Value> {
    for f in frames {
        c.send_text(f);
    }
    let mut out = Vec::with_capacity(frames.len());
    for _ in frames {
        out.push(c.response().await);
    }
    out
}

/// The response to one raw text frame.
async fn raw(c: &mut Client, text: &str) -> Value {
    c.send_text(text);
    c.response().await
}

fn assert_error(v: &Value, id: Value, code: u64) {
    assert_eq!(v["id"], id, "{v}");
    assert_eq!(v["code"], json!(code), "{v}");
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {v}"
    );
}

fn login_fields(room: &str, user: &str) -> Value {
    json!({"roomID": room, "token": token(1, user), "user": {"userID": user, "userName": user}})
}

#[tokio::test]
async fn malformed_requests() {
    let server = TestServer::start("");
    let mut c = server.client(1).await;
    assert_error(&raw(&mut c, "{not json").await, Value::Null, MALFORMED);
    assert_error(&raw(&mut c, "").await, Value::Null, MALFORMED);
    assert_error(
        &raw(&mut c, r#"[1, {"id": 4}]"#).await,
        Value::Null,
        MALFORMED,
    );
    assert_error(&raw(&mut c, "42").await, Value::Null, MALFORMED);
    assert_error(
        &raw(&mut c, r#"{"op":"logoutRoom"}"#).await,
        Value::Null,
        MALFORMED,
    );
    assert_error(
        &raw(&mut c, r#"{"id":"7","op":"logoutRoom"}"#).await,
        Value::Null,
        MALFORMED,
    );
    assert_error(
        &raw(&mut c, r#"{"id":-7,"op":"logoutRoom"}"#).await,
        Value::Null,
        MALFORMED,
    );
    // The id could be read: the answer carries it.
    assert_error(&raw(&mut c, r#"{"id":7}"#).await, json!(7), MALFORMED);
    assert_error(
        &raw(&mut c, r#"{"id":8,"op":"noSuchOp"}"#).await,
        json!(8),
        MALFORMED,
    );
    assert_error(
        &raw(&mut c, r#"{"id":9,"op":12}"#).await,
        json!(9),
        MALFORMED,
    );
    // Missing and mistyped fields.
    let no_user = json!({"roomID": "r1", "token": token(1, "alice")});
    c.fails("loginRoom", no_user, MALFORMED).await;
    let mut typed = login_fields("r1", "alice");
    typed["roomID"] = json!(5);
    c.fails("loginRoom", typed, MALFORMED).await;
    let mut typed = login_fields("r1", "alice");
    typed["config"] = json!({"maxMemberCount": 1e20});
    c.fails("loginRoom", typed, MALFORMED).await;
    c.fails("enableMultiRoom", json!({"enable": "yes"}), MALFORMED)
        .await;
    c.fails("sendBroadcastMessage", json!({"roomID": "r1"}), MALFORMED)
        .await;
    c.fails(
        "sendCustomCommand",
        json!({"roomID": "r1", "command": "c", "toUserIDs": "bob"}),
        MALFORMED,
    )
    .await;
    // None of this hurt the connection.
    c.login(1, "alice", "r1").await;
}

#[tokio::test]
async fn binary_frames_and_heartbeats() {
    let server = TestServer::start("");
    let mut c = server.client(1).await;
    c.send_raw(Message::Binary(
        br#"{"id":1,"op":"logoutRoom"}"#.to_vec().into(),
    ));
    assert_error(&c.response().await, Value::Null, MALFORMED);
    c.send_raw(Message::Binary(vec![0xff, 0xfe, 0x00, 0xc3, 0x28].into()));
    assert_error(&c.response().await, Value::Null, MALFORMED);
    // Still open and answering.
    c.ok("logoutRoom", json!({})).await;

    // A heartbeat without id gets no answer: the next response is request 9's.
    c.send_text(r#"{"op":"heartbeat"}"#);
    c.send_text(r#"{"id":9,"op":"logoutRoom"}"#);
    let v = c.response().await;
    assert_eq!(v, json!({"id": 9, "code": 0}));
    // With an id it is answered.
    c.send_text(r#"{"id":10,"op":"heartbeat"}"#);
    assert_eq!(c.response().await, json!({"id": 10, "code": 0}));
    c.no_event("error").await;
    assert!(c.closed.is_none());
}

#[tokio::test]
async fn oversized_frame_closes_only_that_socket() {
    let server = TestServer::start("");
    let mut big = server.client(1).await;
    big.login(1, "big", "r1").await;
    let mut bob = server.client(1).await;
    bob.login(1, "bob", "r1").await;
    let mut carol = server.client(1).await;
    carol.login(1, "carol", "r1").await;
    let e = bob.room_event("roomUserUpdate", "r1").await;
    assert_eq!(
        (&e["updateType"], &e["userList"][0]["userID"]),
        (&json!("ADD"), &json!("carol"))
    );

    // Exactly 64 KiB is allowed (and answered as the invalid JSON it is).
    let exact = format!("{{{}", "x".repeat(64 * 1024 - 1));
    assert_eq!(exact.len(), 65_536);
    assert_error(&raw(&mut big, &exact).await, Value::Null, MALFORMED);
    // One byte more closes the socket with 1009.
    let over = format!(
        r#"{{"id":1,"op":"sendBroadcastMessage","roomID":"r1","message":"{}"}}"#,
        "m".repeat(64 * 1024)
    );
    big.send_text(&over);
    assert_eq!(big.closed_code(WAIT).await, Some(1009));

    // The closed connection left the room; the others carry on.
    let e = bob.room_event("roomUserUpdate", "r1").await;
    assert_eq!(e["updateType"], "DELETE");
    assert_eq!(e["userList"][0]["userID"], "big");
    carol
        .ok(
            "sendBroadcastMessage",
            json!({"roomID": "r1", "message": "still here"}),
        )
        .await;
    let got = bob.room_event("IMRecvBroadcastMessage", "r1").await;
    assert_eq!(got["messageList"][0]["message"], "still here");
    assert_eq!(got["messageList"][0]["fromUser"]["userID"], "carol");
}

#[tokio::test]
async fn unknown_missing_or_bad_app_id_is_rejected() {
    let server = TestServer::start("");
    for query in [
        "/ws?appID=999",
        "/ws",
        "/ws?appID=abc",
        "/ws?appID=-1",
        "/ws?appID=",
    ] {
        let mut c = Client::connect(&format!("ws://{}{query}", server.addr)).await;
        let e = c.event("error").await;
        assert_eq!(e["code"], json!(1_001_004), "{query}: {e}");
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{query}: {e}"
        );
        assert_eq!(c.closed_code(WAIT).await, Some(1008), "{query}");
    }
}

#[tokio::test]
async fn request_flood_is_limited_per_connection() {
    let server = TestServer::start("requestsPerConnectionPerSec = 20");
    let mut other = server.client(1).await;
    let mut flood = server.client(1).await;
    let frames: Vec<String> = (1..=40)
        .map(|id| json!({"id": id, "op": "logoutRoom"}).to_string())
        .collect();
    let answers = pipelined(&mut flood, &frames).await;
    let ids: Vec<Value> = answers.iter().map(|v| v["id"].clone()).collect();
    assert_eq!(
        ids,
        (1..=40).map(|i| json!(i)).collect::<Vec<_>>(),
        "out of order"
    );
    // The burst equals the rate: the first 20 pass.
    for v in &answers[..20] {
        assert_eq!(v["code"], json!(0), "{v}");
    }
    let limited = answers
        .iter()
        .filter(|v| v["code"] == json!(1_002_073))
        .count();
    assert!(limited > 0, "no request was limited: {answers:?}");
    for v in &answers {
        assert!(
            v["code"] == json!(0) || v["code"] == json!(1_002_073),
            "{v}"
        );
    }
    // Another connection has its own budget: 20 requests in a row all pass.
    for _ in 0..20 {
        other.ok("logoutRoom", json!({})).await;
    }
}

#[tokio::test]
async fn identifier_rules() {
    let server = TestServer::start("");
    let mut c = server.client(1).await;
    let login = |room: &str, user: &str, name: &str| json!({"roomID": room, "token": token(1, user), "user": {"userID": user, "userName": name}});
    let long_room = "r".repeat(129);
    let wide_room = "é".repeat(65);
    let long_user = "u".repeat(65);
    let wide_user = "é".repeat(33);
    let cases = [
        ("", "u", 1_002_011),
        ("a/b", "u", 1_002_012),
        ("a:b", "u", 1_002_012),
        ("a\u{1}b", "u", 1_002_012),
        (long_room.as_str(), "u", 1_002_013),
        (wide_room.as_str(), "u", 1_002_013),
        ("r1", "", 1_002_005),
        ("r1", "a/b", 1_002_006),
        ("r1", "a:b", 1_002_006),
        ("r1", "a\nb", 1_002_006),
        ("r1", long_user.as_str(), 1_002_007),
        ("r1", wide_user.as_str(), 1_002_007),
    ];
    for (room, user, code) in cases {
        let v = c.request("loginRoom", login(room, user, "name")).await;
        assert_eq!(v["code"], json!(code), "room {room:?} user {user:?}: {v}");
    }
    c.fails("loginRoom", login("r1", "u", &"n".repeat(257)), 1_002_010)
        .await;
    // The limits themselves are allowed.
    let user = "u".repeat(64);
    c.ok(
        "loginRoom",
        login(&"r".repeat(128), &user, &"n".repeat(256)),
    )
    .await;
}

#[tokio::test]
async fn message_bodies_and_rooms_not_joined() {
    let server = TestServer::start("");
    let mut alice = server.client(1).await;
    alice.login(1, "alice", "r1").await;
    let mut bob = server.client(1).await;
    bob.login(1, "bob", "r1").await;
    for op in ["sendBroadcastMessage", "sendBarrageMessage"] {
        alice
            .fails(op, json!({"roomID": "r1", "message": ""}), 1_009_001)
            .await;
        let long = "m".repeat(1025);
        alice
            .fails(op, json!({"roomID": "r1", "message": long}), 1_009_002)
            .await;
        // 1024 bytes of multi-byte UTF-8 is fine; one byte more is not.
        let exact = "é".repeat(512);
        alice
            .ok(op, json!({"roomID": "r1", "message": exact}))
            .await;
        let over = format!("{}x", "é".repeat(512));
        alice
            .fails(op, json!({"roomID": "r1", "message": over}), 1_009_002)
            .await;
        // Not in the room: 1009005 before any content check.
        alice
            .fails(op, json!({"roomID": "r2", "message": ""}), 1_009_005)
            .await;
        alice
            .fails(
                op,
                json!({"roomID": "r2", "message": "m".repeat(2000)}),
                1_009_005,
            )
            .await;
    }
    let got = bob.room_event("IMRecvBroadcastMessage", "r1").await;
    assert_eq!(got["messageList"][0]["message"], "é".repeat(512));
    bob.room_event("IMRecvBarrageMessage", "r1").await;
    alice
        .fails(
            "sendCustomCommand",
            json!({"roomID": "r1", "command": "", "toUserIDs": []}),
            1_009_001,
        )
        .await;
    alice
        .fails(
            "sendCustomCommand",
            json!({"roomID": "r1", "command": "c".repeat(1025), "toUserIDs": []}),
            1_009_002,
        )
        .await;
    alice
        .fails(
            "sendCustomCommand",
            json!({"roomID": "r2", "command": "", "toUserIDs": [""]}),
            1_009_005,
        )
        .await;
    alice
        .fails(
            "setRoomExtraInfo",
            json!({"roomID": "r2", "key": "", "value": "v"}),
            1_009_005,
        )
        .await;
    // Nothing of the failures reached bob.
    bob.no_event("IMRecvBroadcastMessage").await;
    for name in [
        "IMRecvBroadcastMessage",
        "IMRecvBarrageMessage",
        "IMRecvCustomCommand",
        "roomExtraInfoUpdate",
    ] {
        assert_eq!(bob.events_named(name), Vec::<Value>::new(), "{name}");
    }
}

#[tokio::test]
async fn room_extra_info_rules() {
    let server = TestServer::start("");
    let mut alice = server.client(1).await;
    alice.login(1, "alice", "r1").await;
    let mut bob = server.client(1).await;
    bob.login(1, "bob", "r1").await;
    let set = |key: &str, value: &str| json!({"roomID": "r1", "key": key, "value": value});
    alice
        .fails("setRoomExtraInfo", set("", "v"), 1_002_014)
        .await;
    alice
        .fails("setRoomExtraInfo", set(&"k".repeat(11), "v"), 1_002_015)
        .await;
    alice
        .fails("setRoomExtraInfo", set("k", &"v".repeat(129)), 1_002_016)
        .await;
    alice
        .ok("setRoomExtraInfo", set(&"k".repeat(10), &"v".repeat(128)))
        .await;
    let e = bob.room_event("roomExtraInfoUpdate", "r1").await;
    assert_eq!(e["roomExtraInfoList"][0]["value"], "v".repeat(128));
    // One key per room: another key fails, the same key again is fine.
    alice
        .fails("setRoomExtraInfo", set("other", "v"), 1_002_017)
        .await;
    bob.fails("setRoomExtraInfo", set("other", "v"), 1_002_017)
        .await;
    bob.ok("setRoomExtraInfo", set(&"k".repeat(10), "second"))
        .await;
    let e = alice.room_event("roomExtraInfoUpdate", "r1").await;
    assert_eq!(
        e["roomExtraInfoList"],
        json!([{
        "key": "k".repeat(10), "value": "second",
        "updateUser": {"userID": "bob", "userName": "bob name"},
        "updateTime": e["roomExtraInfoList"][0]["updateTime"].clone()}])
    );
    bob.no_event("roomExtraInfoUpdate").await;
}

#[tokio::test]
async fn custom_command_targets() {
    let server = TestServer::start("");
    let mut alice = server.client(1).await;
    alice.login(1, "alice", "r1").await;
    let mut bob = server.client(1).await;
    bob.login(1, "bob", "r1").await;
    let mut carol = server.client(1).await;
    carol.login(1, "carol", "r1").await;
    let mut dave = server.client(1).await;
    dave.login(1, "dave", "r2").await;
    let cmd = |to: Value| json!({"roomID": "r1", "command": "hi", "toUserIDs": to});
    alice
        .fails("sendCustomCommand", cmd(json!([""])), 1_009_011)
        .await;
    alice
        .fails("sendCustomCommand", cmd(json!(["bob", ""])), 1_009_011)
        .await;
    alice
        .fails("sendCustomCommand", cmd(json!(["u".repeat(65)])), 1_009_012)
        .await;
    // Targets not in the room (dave is in r2) are skipped silently; a target
    // listed twice gets the command once.
    alice
        .ok(
            "sendCustomCommand",
            cmd(json!(["ghost", "bob", "dave", "bob", "nobody"])),
        )
        .await;
    let got = bob.room_event("IMRecvCustomCommand", "r1").await;
    assert_eq!(got["command"], "hi");
    assert_eq!(got["fromUser"]["userID"], "alice");
    bob.no_event("IMRecvCustomCommand").await;
    assert!(
        bob.events_named("IMRecvCustomCommand").is_empty(),
        "bob got it twice"
    );
    carol.no_event("IMRecvCustomCommand").await;
    dave.no_event("IMRecvCustomCommand").await;
    alice.no_event("IMRecvCustomCommand").await;
}

#[tokio::test]
async fn room_full() {
    let server = TestServer::start("");
    let mut first = server.client(1).await;
    let mut f = login_fields("r1", "first");
    f["config"] = json!({"maxMemberCount": 2});
    first.ok("loginRoom", f).await;
    let mut second = server.client(1).await;
    second.login(1, "second", "r1").await;
    let mut third = server.client(1).await;
    third
        .fails("loginRoom", login_fields("r1", "third"), 1_002_034)
        .await;
    // The limit is the room's, not a limit on later logins elsewhere.
    third.login(1, "third", "r2").await;
    // Once someone leaves there is room again.
    second.ok("logoutRoom", json!({"roomID": "r1"})).await;
    let mut fourth = server.client(1).await;
    fourth.login(1, "fourth", "r1").await;
    let mut fifth = server.client(1).await;
    fifth
        .fails("loginRoom", login_fields("r1", "fifth"), 1_002_034)
        .await;
}

/// A tiny deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

fn garbage(rng: &mut Rng, i: usize) -> Message {
    let nested =
        |open: &str, close: &str, n: usize| format!("{}{}", open.repeat(n), close.repeat(n));
    let text = match i % 20 {
        0 => nested("[", "]", 10_000),
        1 => format!("{}1{}", r#"{"a":"#.repeat(5_000), "}".repeat(5_000)),
        2 => r#"{"id":1e999999,"op":"logoutRoom"}"#.into(),
        3 => r#"{"id":18446744073709551616,"op":"logoutRoom"}"#.into(),
        4 => format!(r#"{{"id":{},"op":"loginRoom","roomID":{}}}"#, i, "9".repeat(5000)),
        5 => "null".into(),
        6 => r#"{"id":null,"op":null}"#.into(),
        7 => format!(r#"{{"id":{i},"op":"loginRoom","roomID":"\u0000\u001f","user":{{"userID":"\u0007"}},"token":"\b"}}"#),
        8 => format!("{{\"id\":{i},\"op\":\"sendBroadcastMessage\",\"roomID\":\"r\u{1}\",\"message\":\"\u{0}\"}}"),
        9 => "\u{0}\u{1}\u{2}\u{7f}\u{feff}".into(),
        10 => {
            let n = 1 + rng.below(300);
            (0..n).map(|_| (0x20 + rng.below(95) as u8) as char).collect()
        }
        11 => {
            let n = rng.below(2000);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            return Message::Binary(bytes.into());
        }
        12 => format!(r#"{{"id":{i},"op":"sendCustomCommand","roomID":"r","command":"c","toUserIDs":{}}}"#, nested("[", "]", 3000)),
        13 => format!(r#"{{"id":{i},"op":"{}"}}"#, "z".repeat(rng.below(1000))),
        14 => r#"{"id":1,"op":"loginRoom","id":2,"op":"nope"}"#.into(),
        15 => "\"just a string with \\u0000 and \\ud800\"".into(),
        16 => format!(r#"{{"id":{i},"op":"enableMultiRoom","enable":[true]}}"#),
        17 => format!(r#"{{"id":{i},"op":"logoutRoom","roomID":{{"$ne":null}}}}"#),
        18 => format!(r#"{{"id":{i},"op":"renewToken","roomID":"r","token":"{}"}}"#, "e30.".repeat(1000)),
        _ => return Message::Binary(vec![0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf8, 0x88, 0x80, 0x80, 0x80].into()),
    };
    Message::Text(text.into())
}

#[tokio::test]
async fn garbage_storm_does_not_hurt_the_server() {
    let server = TestServer::start("");
    let mut bad = server.client(1).await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..200 {
        bad.send_raw(garbage(&mut rng, i));
    }
    // Every frame is answered exactly once (none is a bare heartbeat), in order.
    bad.send_text(r#"{"id":424242,"op":"logoutRoom"}"#);
    let mut answered = 0;
    loop {
        let v = bad.response().await;
        if v["id"] == json!(424242) {
            assert_eq!(v["code"], json!(0), "{v}");
            break;
        }
        assert!(v["code"].as_u64().is_some(), "{v}");
        answered += 1;
    }
    assert_eq!(answered, 200);

    // A fresh client is served as usual.
    let mut alice = server.client(1).await;
    alice.login(1, "alice", "fresh").await;
    let mut bob = server.client(1).await;
    bob.login(1, "bob", "fresh").await;
    let sent = alice
        .ok(
            "sendBroadcastMessage",
            json!({"roomID": "fresh", "message": "alive"}),
        )
        .await;
    let got = bob.room_event("IMRecvBroadcastMessage", "fresh").await;
    assert_eq!(got["messageList"][0]["messageID"], sent["messageID"]);
    // And so is the connection that sent the garbage.
    bad.login(1, "carol", "fresh").await;
    assert!(bad.closed.is_none());
}
