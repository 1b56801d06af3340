//! `GET /metrics` during a real publish and play (Rust clients, one
//! publisher, one player in another room): the gauges show the sessions,
//! rooms, stream and play, and the packet counters match what the
//! publisher sent and the player received, exactly.

mod common;

use std::time::Duration;

use common::media::*;
use common::*;
use sfu_client::MediaKind;

async fn scrape(server: &TestServer) -> String {
    let r = common::http::request(&server.addr, "GET", "/metrics", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_packets_equal_what_the_player_received() {
    // One media worker: with two, the player's worker counts the relayed
    // copies again in `sfu_rtp_received_*` (documented), so "received"
    // would be a multiple of what was published.
    let server = TestServer::start_with(&format!("[server]\nmediaWorkers = 1\n{}", common::APPS));
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r2"]).await;
    let publisher = anchor
        .publish("cam", Some("r1"), vp8_opus())
        .await
        .expect("publish");
    let mut player = viewer.play("cam").await.expect("play");
    let sent = send_clips(&publisher, Duration::from_secs(3)).await;
    let got = drain(&mut player, Duration::from_millis(500)).await;
    let start = check_run(MediaKind::Video, &got, &sent.video);
    check_run(MediaKind::Audio, &got, &sent.audio);
    let text = scrape(&server).await;
    eprintln!("{text}");

    for (name, v) in [
        ("sfu_sessions", 2),
        ("sfu_rooms", 2),
        ("sfu_room_members", 2),
        ("sfu_streams", 1),
        ("sfu_plays", 1),
        (r#"sfu_plays_by_state{state="live"}"#, 1),
        (r#"sfu_plays_by_state{state="waiting"}"#, 0),
        ("sfu_websockets", 2),
        (
            r#"sfu_peer_connections{role="publish",state="connected"}"#,
            1,
        ),
        (r#"sfu_peer_connections{role="play",state="connected"}"#, 1),
        (r#"sfu_peer_connections{role="play",state="new"}"#, 0),
    ] {
        assert_eq!(sample(&text, name), v, "{name}");
    }
    let published = (sent.video.len() + sent.audio.len()) as u64;
    assert_eq!(sample(&text, "sfu_rtp_received_packets_total"), published);
    let bytes: usize = sent.video.iter().chain(&sent.audio).map(|p| p.len()).sum();
    assert_eq!(sample(&text, "sfu_rtp_received_bytes_total"), bytes as u64);
    // Every packet the player got, and only those, was forwarded (no loss
    // on loopback, so no retransmission either).
    let forwarded = sample(&text, "sfu_rtp_forwarded_packets_total");
    let retransmitted = sample(&text, "sfu_rtp_retransmitted_packets_total");
    assert_eq!(forwarded + retransmitted, got.len() as u64);
    assert_eq!(retransmitted, 0);
    let nacked = sample(&text, "sfu_nack_sequence_numbers_received_total");
    let answered = sample(
        &text,
        r#"sfu_nack_sequence_numbers_total{outcome="answered"}"#,
    );
    assert_eq!((nacked, answered), (0, 0));
    // The video before the player's first keyframe waited at the gate.
    assert_eq!(
        sample(
            &text,
            r#"sfu_rtp_dropped_packets_total{reason="keyframe_gate"}"#
        ),
        start as u64
    );
    assert_eq!(
        sample(
            &text,
            r#"sfu_rtp_dropped_packets_total{reason="player_queue_full"}"#
        ),
        0
    );
    // The egress paths account for the same packets.
    let fast = sample(&text, common::egress::FAST);
    let rtc = sample(&text, common::egress::RTC);
    assert_eq!(fast + rtc, got.len() as u64);
    assert!(sample(&text, "process_resident_memory_bytes") > 1 << 20);
    // Both logins, the publish and the play, answered with 0.
    for op in ["loginRoom", "startPublishingStream", "startPlayingStream"] {
        let row = format!(r#"sfu_signaling_requests_total{{op="{op}",code="0"}}"#);
        let want = if op == "loginRoom" { 2 } else { 1 };
        assert_eq!(sample(&text, &row), want, "{row}");
    }
    assert!(text.contains("process_cpu_seconds_total "), "{text}");
    // Each media worker reports its loop: busy time and timer lag.
    let busy: f64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("sfu_media_worker_busy_seconds_total{worker=\""))
        .filter_map(|l| l.split_once(' ')?.1.trim().parse::<f64>().ok())
        .sum();
    assert!(busy > 0.0, "the workers forwarded media: busy {busy}");
    let wakes: u64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("sfu_media_worker_loop_lag_seconds_count{worker=\""))
        .filter_map(|l| l.split_once(' ')?.1.trim().parse::<u64>().ok())
        .sum();
    assert!(wakes > 0, "timer wake-ups are measured");

    // A play of a stream nobody publishes waits.
    let waiting = viewer.play("nobody").await.expect("a play that waits");
    let text = scrape(&server).await;
    assert_eq!(sample(&text, r#"sfu_plays_by_state{state="live"}"#), 1);
    assert_eq!(sample(&text, r#"sfu_plays_by_state{state="waiting"}"#), 1);
    drop(waiting);

    // Once everyone left, the gauges are back to zero; counters stay.
    drop(player);
    publisher.stop().await.ok();
    drop(anchor);
    drop(viewer);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&server).await;
        if sample(&text, "sfu_sessions") == 0 && sample(&text, "sfu_plays") == 0 {
            assert_eq!(sample(&text, "sfu_streams"), 0);
            assert_eq!(sample(&text, "sfu_rooms"), 0);
            assert_eq!(sample(&text, "sfu_rtp_forwarded_packets_total"), forwarded);
            let peers: u64 = text
                .lines()
                .filter(|l| l.starts_with("sfu_peer_connections{"))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
                .sum();
            assert_eq!(peers, 0, "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gauges never returned to 0:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
