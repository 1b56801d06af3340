//! The egress fast path end to end: players on independent WebRTC stacks
//! receive exactly what was published while the server protects their RTP
//! itself, and `/metrics` says which path carried every packet. Each SRTP
//! profile is tested, and a verification made to fail (a test hook spoils
//! the captured keys) leaves the player on `rtc`'s path, still playing.

mod common;

use std::time::Duration;

use common::media::*;
use common::*;
use sfu_client::MediaKind;

async fn metrics(server: &TestServer) -> String {
    let r = common::http::request(&server.addr, "GET", "/metrics", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

use common::egress::{CM, FAILED, FAST, GCM, MISMATCH, RTC};

/// Publish the clips for 3 s to one Rust-client player; check it got
/// every packet from a keyframe on; return the server's metrics and how
/// many packets the player received.
async fn play_through(server: &TestServer) -> (String, usize) {
    let anchor = member(server, "anchor", &["r1"]).await;
    let viewer = member(server, "viewer", &["r2"]).await;
    let publisher = anchor
        .publish("cam", Some("r1"), vp8_opus())
        .await
        .expect("publish");
    let mut player = viewer.play("cam").await.expect("play");
    let sent = send_clips(&publisher, Duration::from_secs(3)).await;
    let got = drain(&mut player, Duration::from_millis(500)).await;
    let start = check_run(MediaKind::Video, &got, &sent.video);
    assert!(
        sent.video_keyframes.contains(&start),
        "video not from a keyframe"
    );
    check_run(MediaKind::Audio, &got, &sent.audio);
    assert!(got.len() > 200, "only {} packets", got.len());
    (metrics(server).await, got.len())
}

/// Every packet the player got was counted on one path, the fast path
/// carried all but a leg's first few, and both legs were verified with
/// `profile`.
fn assert_fast(text: &str, received: usize, profile: &str) {
    let (fast, rtc) = (sample(text, FAST), sample(text, RTC));
    eprintln!("received {received}: fast {fast}, rtc {rtc}\n{text}");
    assert_eq!(sample(text, profile), 2, "both legs verified\n{text}");
    assert_eq!(sample(text, MISMATCH), 0);
    assert_eq!(sample(text, FAILED), 0);
    assert_eq!(fast + rtc, received as u64, "every packet counted once");
    // Verification takes 3 matches per leg (a keyframe burst may hand rtc
    // a few more before the first comparison).
    assert!(rtc <= 2 * 16, "{rtc} packets through rtc");
    assert!(fast > rtc, "the fast path carried the stream");
    // Ours, about one per second per leg (rtc's interceptor is gone).
    assert!(sample(text, "sfu_egress_sender_reports_total") >= 2);
    // Every datagram sent had its wait recorded (RTP, RTCP and STUN).
    assert!(sample(text, "sfu_egress_added_latency_seconds_count") >= received as u64);
    assert!(
        sample(
            text,
            r#"sfu_egress_added_latency_seconds_bucket{le="+Inf"}"#
        ) >= received as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_carries_a_player_with_aes_gcm() {
    let server = TestServer::start_with(&format!(
        "[server]\nsrtpProfiles = [\"AEAD_AES_128_GCM\"]\n[limits]\n{APPS}"
    ));
    let (text, received) = play_through(&server).await;
    assert_fast(&text, received, GCM);
    assert_eq!(sample(&text, CM), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_carries_a_player_with_aes_cm() {
    let server = TestServer::start_with(&format!(
        "[server]\nsrtpProfiles = [\"AES_CM_128_HMAC_SHA1_80\"]\n[limits]\n{APPS}"
    ));
    let (text, received) = play_through(&server).await;
    assert_fast(&text, received, CM);
    assert_eq!(sample(&text, GCM), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_verification_stays_on_rtc_and_still_plays() {
    let server = TestServer::start_with_env(
        &format!("[limits]\n{APPS}"),
        &[("SFUTEST_CORRUPT_SRTP_KEY", "cam")],
    );
    let (text, received) = play_through(&server).await;
    eprintln!("{text}");
    assert_eq!(sample(&text, MISMATCH), 2, "both legs fell back");
    assert_eq!(sample(&text, GCM) + sample(&text, CM), 0);
    assert_eq!(sample(&text, FAST), 0);
    assert_eq!(sample(&text, RTC), received as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_fast_path_off_everything_goes_through_rtc() {
    let server = TestServer::start_with(&format!(
        "[server]\negressFastPath = false\n[limits]\n{APPS}"
    ));
    let (text, received) = play_through(&server).await;
    assert_eq!(sample(&text, FAST), 0);
    assert_eq!(
        sample(&text, GCM) + sample(&text, CM) + sample(&text, MISMATCH),
        0
    );
    assert_eq!(sample(&text, RTC), received as u64);
}
