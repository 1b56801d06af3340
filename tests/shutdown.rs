//! SIGTERM during a publish and a play: every signaling client is told
//! (`roomStateChanged KICKOUT 1000093` for each of its rooms, then close
//! 1001), the media stops, and the process exits 0 within
//! `server.shutdownGraceMs`.

mod common;

use std::time::{Duration, Instant};

use common::media::*;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_every_client_closes_media_and_exits_zero_in_grace() {
    let grace = Duration::from_millis(3_000);
    let mut server = TestServer::start_with(&format!(
        "[server]\nmediaWorkers = 2\nshutdownGraceMs = {}\n{}",
        grace.as_millis(),
        common::APPS
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
}
