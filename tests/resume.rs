//! Resume after a dropped connection (protocol.md, "Resume after a
//! dropped connection"), through a TCP proxy that resets or black-holes
//! the WebSocket: inside `limits.resumeWindowMs` the session, its rooms
//! and its media stay, nobody else notices, and a `resume` gets every
//! event after `lastSeq` exactly once in order with its original `seq`;
//! outside it the session ends with reason 5 (or, for a socket the server
//! still thinks open, by heartbeat timeout with reason 2).

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

/// Wait until the `sfu_sessions_held` gauge reads `n`.
async fn held_sessions(server: &TestServer, n: u64) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let held = sample(&metrics_blocking(server), "sfu_sessions_held");
        if held == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sfu_sessions_held stayed {held}, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    held_sessions(&server, 1).await;
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
    held_sessions(&server, 0).await;
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

    // Dropped again (an end of stream this time, no close frame), a
    // same-userID login kicks the held session: its resume finds no room
    // and replays the KICKOUT.
    proxy.end();
    held_sessions(&server, 1).await;
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

/// How the proxy breaks the WebSocket for two seconds.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Reset, and reset every new connection until it is over.
    Reset,
    /// Hold every byte; the connections stay open.
    Blackhole,
}

/// A member connected to `addr` (the proxy, or the server) that resumes
/// after a drop (a silent link counts as dropped after 1 s).
async fn member_at(addr: &str, user: &str, room: &str) -> sfu_client::Client {
    let options = sfu_client::ConnectOptions {
        heartbeat: Some(Duration::from_millis(200)),
        link_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let client = sfu_client::Client::connect_with(addr, 1, options)
        .await
        .expect("connect");
    client
        .login_room(room, &token(1, user), user, user, true)
        .await
        .expect("login");
    client
}

/// A publisher's and a player's signaling drop for 2 s while broadcasts
/// flow in their room: both get every broadcast exactly once in order and
/// every event `seq` once, nobody sees them leave, and the player's media
/// runs on to the last packet sent.
async fn two_seconds_without_signaling(fault: Fault) {
    use common::media::*;
    let server = TestServer::start(QUIET_LIMITS);
    let proxy = TcpProxy::start(server.addr.parse().expect("server address")).await;
    let sender = member(&server, "sender", &["r1"]).await;
    let anchor = member_at(&proxy.addr(), "anchor", "r1").await;
    let viewer = member_at(&proxy.addr(), "viewer", "r1").await;
    let publisher = anchor
        .publish("cam", Some("r1"), vp8_opus())
        .await
        .expect("publish");
    let mut player = viewer.play("cam").await.expect("play");
    let sending = spawn_sending(publisher, Duration::from_secs(7));
    let playing = tokio::spawn(async move {
        let got = drain(&mut player, Duration::from_secs(2)).await;
        (player, got)
    });
    let broadcasting = {
        let sender = sender.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for i in 0..40 {
                tick.tick().await;
                ids.push(
                    sender
                        .send_broadcast_message("r1", &format!("m{i}"))
                        .await
                        .expect("broadcast"),
                );
            }
            ids
        })
    };
    // The fault's own length, not a synchronisation.
    tokio::time::sleep(Duration::from_secs(1)).await;
    match fault {
        Fault::Reset => {
            proxy.refuse(true);
            proxy.reset();
        }
        Fault::Blackhole => proxy.blackhole(true),
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.refuse(false);
    proxy.blackhole(false);
    let sent_ids = broadcasting.await.expect("broadcasts");
    let last = *sent_ids.last().expect("40 broadcasts");

    for (who, c) in [("anchor", &anchor), ("viewer", &viewer)] {
        let mut events = Vec::new();
        loop {
            let e = c
                .wait_event_where(|_| true, Duration::from_secs(15))
                .await
                .unwrap_or_else(|e| panic!("{who}: {e}"));
            let done = e.name == "IMRecvBroadcastMessage"
                && e.fields["messageList"][0]["messageID"] == last;
            events.push(e);
            if done {
                break;
            }
        }
        let ids: Vec<u64> = events
            .iter()
            .filter(|e| e.name == "IMRecvBroadcastMessage")
            .filter_map(|e| e.fields["messageList"][0]["messageID"].as_u64())
            .collect();
        assert_eq!(ids, sent_ids, "{who}: every broadcast once, in order");
        let seqs: Vec<u64> = events
            .iter()
            .filter_map(|e| e.fields["seq"].as_u64())
            .collect();
        for w in seqs.windows(2) {
            assert_eq!(w[1], w[0] + 1, "{who}: seq {seqs:?}");
        }
        let states: Vec<&str> = events
            .iter()
            .filter(|e| e.name == "roomStateChanged")
            .filter_map(|e| e.fields["reason"].as_str())
            .collect();
        assert_eq!(states, ["RECONNECTING", "RECONNECTED"], "{who} ({fault:?})");
    }
    // (Both kept until the end: dropping them stops the publish or play.)
    let (_publisher, sent) = sending.await.expect("sending");
    let (_player, got) = playing.await.expect("playing");
    check_to_end("viewer", &got, &sent);
    // The sender saw both join (before) and nobody leave or unpublish.
    let seen = sender.drain_events();
    let leaves: Vec<_> = seen
        .iter()
        .filter(|e| {
            matches!(e.name.as_str(), "roomUserUpdate" | "roomStreamUpdate")
                && e.fields["updateType"] == "DELETE"
        })
        .collect();
    assert!(leaves.is_empty(), "{leaves:?}");
    assert!(proxy.accepted() >= 4, "both reconnected through the proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_second_reset_loses_nothing_and_nobody_notices() {
    two_seconds_without_signaling(Fault::Reset).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_second_blackhole_loses_nothing_and_nobody_notices() {
    two_seconds_without_signaling(Fault::Blackhole).await;
}

/// Signaling gone for longer than the window: the server ends the session
/// as a disconnection (stream deleted with reason 5, its player waits),
/// and the client, refused (`1002099`), logs in afresh and says that its
/// publish ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_window_streams_end_with_reason_5_and_the_client_logs_in_afresh() {
    gone_too_long(Fault::Reset, "resumeWindowMs = 1000", 5).await;
}

/// A black-holed socket is silent, not dropped, to the server: its
/// heartbeat timeout ends the session at once (reason 2, no window), and
/// the client, refused, logs in afresh as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_blackhole_ends_the_session_by_heartbeat_timeout_with_reason_2() {
    gone_too_long(Fault::Blackhole, "heartbeatTimeoutMs = 1500", 2).await;
}

async fn gone_too_long(fault: Fault, limits: &str, reason: u32) {
    use common::media::*;
    let server = TestServer::start(&format!("{QUIET_LIMITS}\n{limits}"));
    let proxy = TcpProxy::start(server.addr.parse().expect("server address")).await;
    let sender = member_at(&server.addr, "sender", "r1").await;
    let viewer = member_at(&server.addr, "viewer", "r2").await;
    let anchor = member_at(&proxy.addr(), "anchor", "r1").await;
    let anchor_added = |e: &sfu_client::Event| {
        e.name == "roomUserUpdate"
            && e.fields["updateType"] == "ADD"
            && e.fields["userList"][0]["userID"] == "anchor"
    };
    sender
        .wait_event_where(anchor_added, WAIT)
        .await
        .expect("anchor joined");
    let publisher = anchor
        .publish("cam", Some("r1"), vp8_opus())
        .await
        .expect("publish");
    let _player = viewer.play("cam").await.expect("play");
    match fault {
        Fault::Reset => {
            proxy.refuse(true);
            proxy.reset();
        }
        Fault::Blackhole => proxy.blackhole(true),
    }
    let deleted = sender
        .wait_event_where(
            |e| e.name == "roomStreamUpdate" && e.fields["updateType"] == "DELETE",
            WAIT,
        )
        .await
        .expect("stream deleted after the window");
    assert_eq!(
        deleted.fields["extendedData"],
        format!(r#"{{"stream_delete_reason":[{{"code":{reason},"stream_id":"cam"}}]}}"#)
    );
    let waiting = viewer
        .wait_event("playerStateUpdate", WAIT)
        .await
        .expect("the player waits");
    assert_eq!(
        (&waiting.fields["state"], &waiting.fields["errorCode"]),
        (&json!("PLAY_REQUESTING"), &json!(1_004_002))
    );
    proxy.refuse(false);
    proxy.blackhole(false);
    let mut told = Vec::new();
    while told.last().map(String::as_str) != Some("roomStateChanged RECONNECTED") {
        let e = anchor
            .wait_event_where(
                |e| matches!(e.name.as_str(), "roomStateChanged" | "publisherStateUpdate"),
                WAIT,
            )
            .await
            .expect("the client's own account of the reconnection");
        let what = e.fields["reason"].as_str().or(e.fields["state"].as_str());
        told.push(format!("{} {}", e.name, what.unwrap_or("?")));
    }
    assert_eq!(
        told,
        [
            "roomStateChanged RECONNECTING",
            "publisherStateUpdate NO_PUBLISH",
            "roomStateChanged RECONNECTED"
        ]
    );
    // Logged in afresh: the others see anchor come back.
    sender
        .wait_event_where(anchor_added, WAIT)
        .await
        .expect("anchor back in r1");
    drop(publisher);
}
