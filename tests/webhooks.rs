//! Webhooks against a real HTTP receiver on 127.0.0.1: every event of the
//! app, signed (HMAC-SHA256 over timestamp + "." + body), in each room's
//! order, exactly once; a `500` is retried with the same event ID; a
//! receiver that is down for seconds loses nothing; a full queue drops and
//! counts; SIGTERM flushes the last events.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::hooks::{by_room, check_signed, config, line, HookReceiver};
use common::media::*;
use common::*;

const WAIT: Duration = Duration::from_secs(20);

fn metric(server: &TestServer, name: &str) -> u64 {
    sample(&metrics_blocking(server), name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_signed_once_in_room_order_and_only_for_its_app() {
    let hooks = HookReceiver::start().await;
    let server = TestServer::start_with(&config(&hooks.url(), "retryBaseMs = 100"));
    let alice = member(&server, "alice", &["r1"]).await;
    let bob = member(&server, "bob", &["r1", "r2"]).await;
    // Another app's rooms send nothing, even with the same room ID.
    let mut carol = server.client(2).await;
    carol.login(2, "carol", "r1").await;
    let publisher = alice
        .publish("cam", Some("r1"), vp8_opus())
        .await
        .expect("publish");
    let player = bob.play("cam").await.expect("play");
    player.stop().await.expect("stop play");
    publisher.stop().await.expect("stop publish");
    bob.logout_room(Some("r2")).await.expect("logout r2");
    alice.logout_room(None).await.expect("logout");
    // The same userID from a second connection replaces the first (reason 3).
    let mut dave1 = server.client(1).await;
    dave1.login(1, "dave", "r3").await;
    let mut dave2 = server.client(1).await;
    dave2.login(1, "dave", "r3").await;
    dave1.event("roomStateChanged").await;
    bob.close();
    dave2.close_normally();
    carol.close_normally();

    let events = hooks.wait_delivered(20, WAIT).await;
    let rooms = by_room(&events);
    let expect = |lines: &[&str]| lines.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rooms["r1"],
        expect(&[
            "room_created",
            "user_logged_in alice",
            "user_logged_in bob",
            "stream_published alice cam",
            "play_started bob cam",
            "play_stopped bob cam 1",
            "stream_stopped alice cam 1",
            "user_logged_out alice 1",
            "user_logged_out bob 5",
            "room_closed",
        ])
    );
    assert_eq!(
        rooms["r2"],
        expect(&[
            "room_created",
            "user_logged_in bob",
            "user_logged_out bob 1",
            "room_closed",
        ])
    );
    assert_eq!(
        rooms["r3"],
        expect(&[
            "room_created",
            "user_logged_in dave",
            "user_logged_out dave 3",
            "user_logged_in dave",
            "user_logged_out dave 5",
            "room_closed",
        ])
    );
    assert_eq!(rooms.len(), 3, "{rooms:#?}");
    let hits = hooks.hits();
    check_signed(&hits);
    let ids: HashSet<&str> = hits.iter().map(|h| h.event_id.as_str()).collect();
    assert_eq!(ids.len(), 20, "every event ID is its own");
    assert!(hits.iter().all(|h| h.status == 200));
    // Nothing else is on its way: 20 delivered, none queued, none retried.
    let text = metrics_blocking(&server);
    assert_eq!(
        sample(&text, r#"sfu_webhook_events_total{outcome="delivered"}"#),
        20
    );
    assert_eq!(sample(&text, "sfu_webhook_queue_depth"), 0);
    assert_eq!(sample(&text, "sfu_webhook_retries_total"), 0);
    assert_eq!(hooks.hits().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_retried_with_the_same_event_id_and_the_room_waits_for_it() {
    let hooks = HookReceiver::start().await;
    let server = TestServer::start_with(&config(&hooks.url(), "retryBaseMs = 100"));
    hooks.fail_next(2);
    let mut a = server.client(1).await;
    a.login(1, "a", "r1").await;
    let mut b = server.client(1).await;
    b.login(1, "b", "r1").await;
    let events = hooks.wait_delivered(3, WAIT).await;
    assert_eq!(
        by_room(&events)["r1"],
        ["room_created", "user_logged_in a", "user_logged_in b"]
    );
    let hits = hooks.hits();
    check_signed(&hits);
    let statuses: Vec<(u16, &str)> = hits
        .iter()
        .map(|h| (h.status, h.json["event"].as_str().unwrap_or("?")))
        .collect();
    assert_eq!(
        statuses,
        [
            (500, "room_created"),
            (500, "room_created"),
            (200, "room_created"),
            (200, "user_logged_in"),
            (200, "user_logged_in"),
        ]
    );
    // One event, three attempts: same ID and body, each signed anew.
    assert!(hits[..3].iter().all(|h| h.event_id == hits[0].event_id));
    assert!(hits[..3].iter().all(|h| h.body == hits[0].body));
    let ts: Vec<u64> = hits[..3]
        .iter()
        .map(|h| h.timestamp.parse().unwrap())
        .collect();
    assert!(ts[0] < ts[1] && ts[1] < ts[2], "{ts:?}");
    assert_eq!(metric(&server, "sfu_webhook_retries_total"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_seconds_gets_every_event_in_order_when_back() {
    let mut hooks = HookReceiver::start().await;
    let server = TestServer::start_with(&config(&hooks.url(), "retryBaseMs = 200\nmaxRetries = 8"));
    hooks.stop().await;
    let mut clients = Vec::new();
    for (user, room) in [
        ("u1", "a"),
        ("u2", "a"),
        ("u3", "b"),
        ("u4", "c"),
        ("u5", "c"),
    ] {
        let mut c = server.client(1).await;
        c.login(1, user, room).await;
        clients.push(c);
    }
    // u2 and u4 log out while the receiver is down.
    clients[1].ok("logoutRoom", serde_json::json!({})).await;
    clients[3].ok("logoutRoom", serde_json::json!({})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        metric(&server, "sfu_webhook_retries_total") >= 3,
        "the server retried while the receiver was down"
    );
    hooks.restart().await;
    let events = hooks.wait_delivered(10, Duration::from_secs(30)).await;
    let rooms = by_room(&events);
    assert_eq!(
        rooms["a"],
        [
            "room_created",
            "user_logged_in u1",
            "user_logged_in u2",
            "user_logged_out u2 1"
        ]
    );
    assert_eq!(rooms["b"], ["room_created", "user_logged_in u3"]);
    assert_eq!(
        rooms["c"],
        [
            "room_created",
            "user_logged_in u4",
            "user_logged_in u5",
            "user_logged_out u4 1"
        ]
    );
    let hits = hooks.hits();
    check_signed(&hits);
    assert_eq!(hits.len(), 10, "each event once, nothing lost");
    let text = metrics_blocking(&server);
    assert_eq!(
        sample(&text, r#"sfu_webhook_events_total{outcome="failed"}"#),
        0
    );
    assert_eq!(
        sample(&text, r#"sfu_webhook_events_total{outcome="dropped"}"#),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_what_it_cannot_hold() {
    let mut hooks = HookReceiver::start().await;
    let server = TestServer::start_with(&config(
        &hooks.url(),
        "retryBaseMs = 100\nmaxRetries = 50\nlanes = 1\nqueueCapacity = 4",
    ));
    hooks.stop().await;
    // 10 users, each its own room: 20 events into one lane of 4.
    let mut clients = Vec::new();
    for i in 0..10 {
        let mut c = server.client(1).await;
        c.login(1, &format!("u{i}"), &format!("room{i}")).await;
        clients.push(c);
    }
    let dropped = metric(&server, r#"sfu_webhook_events_total{outcome="dropped"}"#);
    // The lane holds 4 and delivers 1 (retrying): 15 or 16 never queued.
    assert!((15..=16).contains(&dropped), "dropped {dropped}");
    hooks.restart().await;
    let kept = 20 - dropped as usize;
    let events = hooks.wait_delivered(kept, Duration::from_secs(30)).await;
    assert_eq!(events.len(), kept);
    // What was kept is the oldest, in order.
    assert_eq!(
        events.iter().map(line).collect::<Vec<_>>()[..4],
        [
            "room_created",
            "user_logged_in u0",
            "room_created",
            "user_logged_in u1"
        ]
    );
    assert_eq!(
        metric(&server, r#"sfu_webhook_events_total{outcome="delivered"}"#),
        kept as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_delivers_the_last_logouts_before_exiting() {
    let hooks = HookReceiver::start().await;
    let mut server = TestServer::start_with(&format!(
        "[server]\nshutdownGraceMs = 3000\n{}",
        config(&hooks.url(), "retryBaseMs = 100")
    ));
    let mut a = server.client(1).await;
    a.login(1, "a", "r1").await;
    let mut b = server.client(1).await;
    b.login(1, "b", "r1").await;
    hooks.wait_delivered(3, WAIT).await;
    assert!(server.terminate(Duration::from_secs(5)).await, "exit 0");
    let rooms = by_room(&hooks.delivered());
    let r1 = &rooms["r1"];
    assert_eq!(r1.len(), 6, "{r1:?}");
    assert_eq!(
        r1[..3],
        ["room_created", "user_logged_in a", "user_logged_in b"]
    );
    let mut outs = r1[3..5].to_vec();
    outs.sort();
    assert_eq!(outs, ["user_logged_out a 5", "user_logged_out b 5"]);
    assert_eq!(r1[5], "room_closed");
    check_signed(&hooks.hits());
}
