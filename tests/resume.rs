//! Resume after a dropped connection (protocol.md, "Resume after a
//! dropped connection"), through a TCP proxy that resets or black-holes
//! the WebSocket: inside `limits.resumeWindowMs` the session, its rooms
//! and its media stay, nobody else notices, and a `resume` gets every
//! event after `lastSeq` exactly once in order with its original `seq`;
//! outside it the session ends with reason 5.

mod common;

use std::time::Duration;

use common::tcp_proxy::TcpProxy;
use common::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// Limits without the periodic online count (an event at a random time)
/// and with room for the tests' broadcasts.
const QUIET_LIMITS: &str =
    "onlineCountIntervalMs = 3600000\nbroadcastPerUserPerSec = 1000\nbroadcastPerRoomPerSec = 1000";

fn proxy_url(proxy: &TcpProxy, app: u32) -> String {
    format!("ws://{}/ws?appID={app}", proxy.addr)
}

fn seq(e: &Value) -> u64 {
    e["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("event without seq: {e}"))
}

/// The next `n` events, in arrival order, whatever their names.
async fn next_events(c: &mut Client, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < n {
        got.push(c.next_event().await);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_connection_resumes_with_every_later_event_once_in_order() {
    let server = TestServer::start(QUIET_LIMITS);
    let proxy = TcpProxy::start(server.addr.parse().expect("server address")).await;
    let mut bob = Client::connect(&proxy_url(&proxy, 1)).await;
    let login = bob.login(1, "bob", "r1").await;
    let session_id = login["sessionID"].as_str().expect("sessionID").to_string();
    let resume_token = login["resumeToken"]
        .as_str()
        .expect("resumeToken")
        .to_string();
    assert!(
        resume_token.len() >= 32,
        "≥ 128 random bits: {resume_token}"
    );
    let mut alice = server.client(1).await;
    alice.login(1, "alice", "r1").await;
    let add = bob.user_update("r1", "ADD", "alice").await;
    assert_eq!(seq(&add), 1);
    let say = |text: &str| json!({"roomID": "r1", "message": text});
    alice.ok("sendBroadcastMessage", say("m1")).await;
    let m1 = bob.event("IMRecvBroadcastMessage").await;
    assert_eq!(seq(&m1), 2);

    // The connection dies; meanwhile the room goes on.
    proxy.reset();
    assert_eq!(bob.closed_code(WAIT).await, None, "reset, no close frame");
    alice.ok("sendBroadcastMessage", say("m2")).await;
    alice.ok("sendBroadcastMessage", say("m3")).await;
    let mut carol = server.client(1).await;
    carol.login(1, "carol", "r1").await;

    // A wrong token, another app, a lastSeq beyond the session: 1002099,
    // and the session is untouched.
    let mut stranger = server.client(1).await;
    let wrong = json!({"sessionID": session_id, "resumeToken": "0".repeat(64), "lastSeq": 0});
    stranger.fails("resume", wrong, 1_002_099).await;
    let mut other_app = server.client(2).await;
    let creds =
        |last: u64| json!({"sessionID": session_id, "resumeToken": resume_token, "lastSeq": last});
    other_app.fails("resume", creds(0), 1_002_099).await;
    let mut ahead = server.client(1).await;
    ahead.fails("resume", creds(99), 1_002_099).await;
    // A refused resume leaves a usable fresh connection.
    stranger.login(1, "stranger", "r2").await;

    // bob processed m1 (seq 2) last: everything after it comes back.
    let mut bob = Client::connect(&proxy_url(&proxy, 1)).await;
    let resumed = bob.ok("resume", creds(2)).await;
    assert_eq!(resumed["gap"], json!(false), "{resumed}");
    assert_eq!(resumed["publishing"], json!([]));
    assert_eq!(resumed["playing"], json!([]));
    let rooms = resumed["rooms"].as_array().expect("rooms");
    assert_eq!(rooms.len(), 1, "{resumed}");
    assert_eq!(rooms[0]["roomID"], "r1");
    let mut users: Vec<&str> = rooms[0]["userList"]
        .as_array()
        .expect("userList (the login asked for users)")
        .iter()
        .filter_map(|u| u["userID"].as_str())
        .collect();
    users.sort();
    assert_eq!(users, ["alice", "carol"]);
    let replayed = next_events(&mut bob, 3).await;
    let got: Vec<(u64, Value)> = replayed
        .iter()
        .map(|e| {
            let what = match e["event"].as_str() {
                Some("IMRecvBroadcastMessage") => e["messageList"][0]["message"].clone(),
                _ => e["userList"][0]["userID"].clone(),
            };
            (seq(e), what)
        })
        .collect();
    assert_eq!(
        got,
        [(3, json!("m2")), (4, json!("m3")), (5, json!("carol"))]
    );
    // Live events go on from there; a second resume on this connection
    // is refused.
    alice.ok("sendBroadcastMessage", say("m4")).await;
    let m4 = bob.event("IMRecvBroadcastMessage").await;
    assert_eq!(
        (seq(&m4), &m4["messageList"][0]["message"]),
        (6, &json!("m4"))
    );
    bob.fails("resume", creds(6), 1_002_099).await;
    // Nobody saw bob leave.
    alice.ok("sendBroadcastMessage", say("ping")).await;
    carol.event("IMRecvBroadcastMessage").await;
    assert!(
        alice
            .events_named("roomUserUpdate")
            .iter()
            .all(|e| e["updateType"] == "ADD"),
        "{:?}",
        alice.events_named("roomUserUpdate")
    );

    // Dropped again, a same-userID login kicks the held session: its
    // resume finds no room and replays the KICKOUT.
    proxy.reset();
    assert_eq!(bob.closed_code(WAIT).await, None);
    let mut bob_elsewhere = server.client(1).await;
    bob_elsewhere.login(1, "bob", "r1").await;
    let mut bob = Client::connect(&proxy_url(&proxy, 1)).await;
    let resumed = bob.ok("resume", creds(7)).await;
    assert_eq!(resumed["rooms"], json!([]), "{resumed}");
    let kick = bob.event("roomStateChanged").await;
    assert_eq!(
        (seq(&kick), &kick["reason"], &kick["errorCode"]),
        (8, &json!("KICKOUT"), &json!(1_002_050)),
        "{kick}"
    );

    // A close frame 1000 is a real leave: carol is gone well inside the
    // 30 s window (WAIT is 10 s).
    carol.close_normally();
    alice.user_update("r1", "DELETE", "carol").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_window_the_session_ends() {
    let server = TestServer::start(&format!("{QUIET_LIMITS}\nresumeWindowMs = 1000"));
    let proxy = TcpProxy::start(server.addr.parse().expect("server address")).await;
    let mut alice = server.client(1).await;
    alice.login(1, "alice", "r1").await;

    let mut bob = Client::connect(&proxy_url(&proxy, 1)).await;
    let login = bob.login(1, "bob", "r1").await;
    alice.user_update("r1", "ADD", "bob").await;
    proxy.reset();
    // Held for the window, then gone as a disconnection.
    let gone = alice.user_update("r1", "DELETE", "bob").await;
    assert!(gone.get("seq").is_some(), "{gone}");
    let mut late = Client::connect(&proxy_url(&proxy, 1)).await;
    let creds =
        json!({"sessionID": login["sessionID"], "resumeToken": login["resumeToken"], "lastSeq": 0});
    late.fails("resume", creds, 1_002_099).await;
}
