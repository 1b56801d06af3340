//! Media end to end: real WebRTC peer connections (the Rust client on the
//! `webrtc` crate) against the real server on 127.0.0.1.

mod common;

use std::time::Duration;

use common::media::*;
use common::*;
use sfu_client::MediaKind;

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
