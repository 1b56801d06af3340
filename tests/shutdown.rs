//! SIGTERM during a publish and a play: every signaling client is told
//! (`roomStateChanged KICKOUT 1000093` for each of its rooms, then close
//! 1001), the media stops, and the process exits 0 within
//! `server.shutdownGraceMs`; the webhook receiver gets every room's last
//! events (stream stopped, play stopped, logouts with reason 5, room
//! closed) before the exit.

mod common;

use std::time::{Duration, Instant};

use common::hooks::{by_room, check_signed, config, HookReceiver};
use common::media::*;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_every_client_closes_media_and_exits_zero_in_grace() {
    let grace = Duration::from_millis(3_000);
    let hooks = HookReceiver::start().await;
    let mut server = TestServer::start_with(&format!(
        "[server]\nmediaWorkers = 2\nshutdownGraceMs = {}\n{}",
        grace.as_millis(),
        config(&hooks.url(), "retryBaseMs = 100")
    ));
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r2"]).await;
    let publisher = anchor
        .publish("cam", Some("r1"), vp8_opus())
        .await
        .expect("publish");
    let mut player = viewer.play("cam").await.expect("play");
    let sending = tokio::spawn(async move {
        send_clips(&publisher, Duration::from_secs(8)).await;
    });
    while player.packets(sfu_client::MediaKind::Video) == 0 {
        player
            .recv_timeout(Duration::from_secs(5))
            .await
            .expect("media before the shutdown");
    }
    // A member of two rooms on a plain WebSocket sees exactly what is sent.
    let mut two = server.client(1).await;
    two.enable_multi_room().await;
    two.login(1, "carol", "r1").await;
    two.login(1, "carol", "r2").await;
    // Everything so far reached the receiver, in each room's order.
    let before = by_room(&hooks.wait_delivered(8, Duration::from_secs(20)).await);
    assert_eq!(
        before["r1"],
        [
            "room_created",
            "user_logged_in anchor",
            "stream_published anchor cam",
            "user_logged_in carol"
        ]
    );
    assert_eq!(
        before["r2"],
        [
            "room_created",
            "user_logged_in viewer",
            "play_started viewer cam",
            "user_logged_in carol"
        ]
    );

    let asked = Instant::now();
    assert!(
        server.terminate(grace + Duration::from_secs(2)).await,
        "exit status not 0"
    );
    let took = asked.elapsed();
    eprintln!("exited {took:?} after SIGTERM");
    assert!(took < grace + Duration::from_secs(1), "{took:?}");

    let mut told: Vec<String> = Vec::new();
    for _ in 0..2 {
        let e = two.event("roomStateChanged").await;
        assert_eq!(
            (&e["reason"], &e["errorCode"]),
            (&json!("KICKOUT"), &json!(1000093)),
            "{e}"
        );
        told.push(e["roomID"].as_str().unwrap().to_string());
    }
    assert_eq!(told, ["r1", "r2"]);
    assert_eq!(two.closed_code(WAIT).await, Some(1001));
    // The Rust clients were told too, and their media ended.
    for c in [&anchor, &viewer] {
        let e = c
            .wait_event("roomStateChanged", WAIT)
            .await
            .expect("told of the shutdown")
            .fields;
        assert_eq!(e["errorCode"], 1000093, "{e}");
    }
    while player.recv_timeout(Duration::from_secs(2)).await.is_some() {}
    sending.abort();

    // The last events were delivered before the exit: the stream stopped
    // before its publisher's logout, the play ended before its player's,
    // every logout with reason 5, each room closed last.
    let rooms = by_room(&hooks.delivered());
    eprintln!("{rooms:#?}");
    assert_eq!(rooms.len(), 2, "{rooms:?}");
    for (room, first, ender) in [
        (
            "r1",
            "stream_stopped anchor cam 5",
            "user_logged_out anchor 5",
        ),
        (
            "r2",
            "play_stopped viewer cam 5",
            "user_logged_out viewer 5",
        ),
    ] {
        let events = &rooms[room][4..];
        let mut got = events.to_vec();
        got.sort();
        let mut want = vec![first, ender, "user_logged_out carol 5", "room_closed"];
        want.sort();
        assert_eq!(got, want, "{room}: {events:?}");
        let at = |e: &str| events.iter().position(|x| x == e);
        assert!(at(first) < at(ender), "{room}: {events:?}");
        assert_eq!(events.last().map(String::as_str), Some("room_closed"));
    }
    check_signed(&hooks.hits());
}
