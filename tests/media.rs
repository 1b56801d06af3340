//! Media end to end: real WebRTC peer connections (the Rust client on the
//! `webrtc` crate) against the real server on 127.0.0.1.

mod common;

use std::time::Duration;

use common::media::*;
use common::*;
use sfu_client::{ClipSource, MediaKind, PublishTracks, VideoCodec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_room_co_hosting() {
    let server = TestServer::start("");
    let anchor_a = member(&server, "anchor-a", &["room1"]).await;
    let anchor_b = member(&server, "anchor-b", &["room2"]).await;
    let audience_1 = member(&server, "audience-1", &["room1"]).await;
    let audience_2 = member(&server, "audience-2", &["room2"]).await;

    let pub_a = anchor_a
        .publish("a-cam", Some("room1"), vp8_opus())
        .await
        .expect("publish a");
    let pub_b = anchor_b
        .publish("b-cam", Some("room2"), vp8_opus())
        .await
        .expect("publish b");
    // Each audience plays the other room's anchor by stream ID.
    let mut play_b = audience_1.play("b-cam").await.expect("play b");
    let mut play_a = audience_2.play("a-cam").await.expect("play a");

    let (sent_a, sent_b) = tokio::join!(
        send_clips(&pub_a, Duration::from_secs(3)),
        send_clips(&pub_b, Duration::from_secs(3))
    );
    let got_a = drain(&mut play_a, Duration::from_millis(500)).await;
    let got_b = drain(&mut play_b, Duration::from_millis(500)).await;
    for (name, got, sent) in [("a-cam", &got_a, &sent_a), ("b-cam", &got_b, &sent_b)] {
        let video_start = check_run(MediaKind::Video, got, &sent.video);
        assert!(
            sent.video_keyframes.contains(&video_start),
            "{name}: video did not start at a keyframe"
        );
        check_run(MediaKind::Audio, got, &sent.audio);
        let video = got.iter().filter(|r| r.kind == MediaKind::Video).count();
        let audio = got.iter().filter(|r| r.kind == MediaKind::Audio).count();
        eprintln!("{name}: received {video} video + {audio} audio packets");
        assert!(video > 100, "{name}: only {video} video packets");
        assert!(audio > 100, "{name}: only {audio} audio packets");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_is_forwarded_with_the_publishers_codec() {
    let server = TestServer::start("");
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r2"]).await;
    let tracks = PublishTracks {
        video: Some(VideoCodec::H264),
        audio: true,
    };
    let publisher = anchor
        .publish("h264-cam", Some("r1"), tracks)
        .await
        .expect("publish");
    // The player offers VP8, VP9 and H.264; the answer must pick H.264.
    let mut player = viewer.play("h264-cam").await.expect("play");
    let sent = send_clips_with(
        &publisher,
        ClipSource::h264().expect("h264 clip"),
        Duration::from_secs(2),
    )
    .await;
    let got = drain(&mut player, Duration::from_millis(400)).await;
    let start = check_run(MediaKind::Video, &got, &sent.video);
    assert!(
        sent.video_keyframes.contains(&start),
        "H.264 did not start at a keyframe"
    );
    check_run(MediaKind::Audio, &got, &sent.audio);
    let codec = player
        .codec(MediaKind::Video)
        .unwrap_or_default()
        .to_lowercase();
    assert!(codec.contains("h264"), "player negotiated {codec}");
}
