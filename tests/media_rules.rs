//! The contract's publish/play rules with real media: one user publishing
//! into two rooms, logout stopping exactly the right publishes and plays,
//! publisher disconnect, duplicate stream IDs and bad media requests.

mod common;

use std::time::Duration;

use common::media::*;
use common::*;
use serde_json::{json, Value};
use sfu_client::{Client, MediaKind, PublishTracks, VideoCodec};

fn delete_reason(fields: &Value) -> Value {
    let ext: Value = serde_json::from_str(fields["extendedData"].as_str().unwrap()).unwrap();
    ext["stream_delete_reason"].clone()
}

async fn stream_event(c: &Client, kind: &str, room: &str, stream: &str) -> Value {
    let (kind, room, stream) = (kind.to_string(), room.to_string(), stream.to_string());
    c.wait_event_where(
        move |e| {
            e.name == "roomStreamUpdate"
                && e.fields["updateType"] == kind.as_str()
                && e.fields["roomID"] == room.as_str()
                && e.fields["streamList"][0]["streamID"] == stream.as_str()
        },
        Duration::from_secs(3),
    )
    .await
    .expect("roomStreamUpdate")
    .fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_publishes_into_two_rooms() {
    let server = TestServer::start("");
    let host = member(&server, "host", &["r1", "r2"]).await;
    let w1 = member(&server, "w1", &["r1"]).await;
    let w2 = member(&server, "w2", &["r2"]).await;
    let p1 = host
        .publish("host-r1", Some("r1"), vp8_opus())
        .await
        .expect("publish r1");
    let p2 = host
        .publish("host-r2", Some("r2"), vp8_opus())
        .await
        .expect("publish r2");
    // Each room lists only its own stream.
    stream_event(&w1, "ADD", "r1", "host-r1").await;
    stream_event(&w2, "ADD", "r2", "host-r2").await;
    assert!(w1
        .drain_events()
        .iter()
        .all(|e| e.fields["streamList"][0]["streamID"] != "host-r2"));
    // A late joiner of r2 sees host-r2 in its login result.
    let late = member(&server, "late", &["r2"]).await;
    let _ = late;
    let mut play1 = w1.play("host-r1").await.expect("play r1");
    let mut play2 = w2.play("host-r2").await.expect("play r2");
    let (s1, s2) = tokio::join!(
        send_clips(&p1, Duration::from_secs(2)),
        send_clips(&p2, Duration::from_secs(2))
    );
    let g1 = drain(&mut play1, Duration::from_millis(400)).await;
    let g2 = drain(&mut play2, Duration::from_millis(400)).await;
    check_run(MediaKind::Video, &g1, &s1.video);
    check_run(MediaKind::Video, &g2, &s2.video);
    check_run(MediaKind::Audio, &g1, &s1.audio);
    check_run(MediaKind::Audio, &g2, &s2.audio);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_stops_only_that_rooms_publishes_and_plays() {
    let server = TestServer::start("");
    let user = member(&server, "u", &["r1", "r2"]).await;
    let w1 = member(&server, "w1", &["r1"]).await;
    let w2 = member(&server, "w2", &["r2"]).await;
    let other = member(&server, "other", &["r1"]).await;
    let stranger = member(&server, "stranger", &["r3"]).await;

    let s1 = user.publish("u-r1", Some("r1"), vp8_opus()).await.unwrap();
    let s2 = user.publish("u-r2", Some("r2"), vp8_opus()).await.unwrap();
    let x = other.publish("x", Some("r1"), vp8_opus()).await.unwrap();
    let y = stranger.publish("y", Some("r3"), vp8_opus()).await.unwrap();
    // x is listed in r1: its play binds to r1. y is listed in no room of the
    // user: its play binds to the earliest room, r1.
    let mut play_x = user.play("x").await.unwrap();
    let mut play_y = user.play("y").await.unwrap();
    let mut watch_s2 = w2.play("u-r2").await.unwrap();
    let senders: Vec<_> = [s1, s2, x, y]
        .into_iter()
        .map(|p| spawn_sending(p, Duration::from_secs(4)))
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(count_for(&mut play_x, Duration::from_millis(300)).await > 10);
    assert!(count_for(&mut play_y, Duration::from_millis(300)).await > 10);
    w1.drain_events();
    w2.drain_events();

    user.logout_room(Some("r1")).await.unwrap();
    // r1's publish is deleted with reason 1; r2's is not.
    let del = stream_event(&w1, "DELETE", "r1", "u-r1").await;
    assert_eq!(
        delete_reason(&del),
        json!([{"stream_id": "u-r1", "code": 1}])
    );
    // The play of x (listed in r1) stopped; the play of y moved to r2 and goes on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = count_for(&mut play_x, Duration::from_millis(100)).await;
    assert_eq!(
        count_for(&mut play_x, Duration::from_millis(500)).await,
        0,
        "play of x still flowing"
    );
    assert!(
        count_for(&mut play_y, Duration::from_millis(500)).await > 10,
        "play of y stopped"
    );
    assert!(
        count_for(&mut watch_s2, Duration::from_millis(500)).await > 10,
        "u-r2 stopped"
    );
    assert!(
        w2.drain_events()
            .iter()
            .all(|e| e.name != "roomStreamUpdate"),
        "r2 saw a stream update"
    );

    // Leaving the last room stops the remaining play and publish.
    user.logout_room(Some("r2")).await.unwrap();
    stream_event(&w2, "DELETE", "r2", "u-r2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = count_for(&mut play_y, Duration::from_millis(100)).await;
    assert_eq!(
        count_for(&mut play_y, Duration::from_millis(500)).await,
        0,
        "play of y still flowing"
    );
    for s in senders {
        s.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_disconnect_ends_plays_everywhere() {
    let server = TestServer::start("");
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer_same = member(&server, "v1", &["r1"]).await;
    let viewer_other = member(&server, "v2", &["r2"]).await;
    let publisher = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let mut p1 = viewer_same.play("cam").await.unwrap();
    let mut p2 = viewer_other.play("cam").await.unwrap();
    let sender = spawn_sending(publisher, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(count_for(&mut p1, Duration::from_millis(200)).await > 0);
    assert!(count_for(&mut p2, Duration::from_millis(200)).await > 0);
    viewer_same.drain_events();

    // The anchor's signaling connection goes away without a word (its
    // publisher, still sending, is dropped only at the end).
    anchor.close();
    let started = std::time::Instant::now();
    for viewer in [&viewer_same, &viewer_other] {
        let e = viewer
            .wait_event_where(
                |e| e.name == "playerStateUpdate" && e.fields["streamID"] == "cam",
                Duration::from_secs(2),
            )
            .await
            .expect("NO_PLAY within 2 s");
        assert_eq!(e.fields["state"], "NO_PLAY");
        assert_eq!(e.fields["errorCode"], 1_004_002);
    }
    let del = stream_event(&viewer_same, "DELETE", "r1", "cam").await;
    assert_eq!(
        delete_reason(&del),
        json!([{"stream_id": "cam", "code": 5}])
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    sender.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_id_cannot_be_published_twice() {
    let server = TestServer::start("");
    let a = member(&server, "a", &["r1"]).await;
    let b = member(&server, "b", &["r2"]).await;
    let _first = a.publish("same", Some("r1"), vp8_opus()).await.unwrap();
    let again = b.publish("same", Some("r2"), vp8_opus()).await;
    assert_eq!(code_of(again.map(|_| ())), 1_003_028);
    // Another app may use the same ID.
    let c = Client::connect(&server.addr, 3).await.unwrap();
    c.login_room("r1", &token(3, "c"), "c", "c", false)
        .await
        .unwrap();
    c.publish("same", Some("r1"), vp8_opus())
        .await
        .expect("other app");
}

const NO_CODEC_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
a=rtpmap:0 PCMU/8000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=setup:actpass\r\na=rtcp-mux\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_media_requests_get_their_codes() {
    let server = TestServer::start("");
    let c = member(&server, "u", &["r1", "r2"]).await;
    let req = |fields: Value| c.request("startPublishingStream", fields);
    let code = |r: sfu_client::Result<Value>| code_of(r);
    assert_eq!(
        code(req(json!({"streamID": "s", "roomID": "r1", "sdp": "garbage"})).await),
        1_005_001
    );
    assert_eq!(
        code(req(json!({"streamID": "s", "roomID": "r1", "sdp": ""})).await),
        1_005_001
    );
    assert_eq!(
        code(req(json!({"streamID": "s", "roomID": "r1", "sdp": NO_CODEC_OFFER})).await),
        1_005_001
    );
    // roomID is required in multi-room mode; a room not joined is 1002002.
    assert_eq!(
        code(req(json!({"streamID": "s", "sdp": "x"})).await),
        1_000_001
    );
    assert_eq!(
        code(req(json!({"streamID": "s", "roomID": "r9", "sdp": "x"})).await),
        1_002_002
    );
    assert_eq!(
        code(req(json!({"streamID": "a b", "roomID": "r1", "sdp": "x"})).await),
        1_000_016
    );
    assert_eq!(
        code(req(json!({"streamID": "", "roomID": "r1", "sdp": "x"})).await),
        1_000_015
    );
    assert_eq!(
        code(req(json!({"streamID": "s".repeat(257), "roomID": "r1", "sdp": "x"})).await),
        1_000_014
    );
    assert_eq!(
        code(
            req(
                json!({"streamID": "s", "roomID": "r1", "sdp": "x", "extraInfo": "e".repeat(1025)})
            )
            .await
        ),
        1_003_051
    );
    // The failed publishes left nothing behind: the ID is still free.
    let _kept = c
        .publish("s", Some("r1"), vp8_opus())
        .await
        .expect("publish after failures");
    assert_eq!(
        code(
            c.request("setStreamExtraInfo", json!({"streamID": "s"}))
                .await
        ),
        1_003_050
    );
    c.request(
        "setStreamExtraInfo",
        json!({"streamID": "s", "extraInfo": "hello"}),
    )
    .await
    .unwrap();
    assert_eq!(
        code(
            c.request("stopPublishingStream", json!({"streamID": "nope"}))
                .await
        ),
        1_004_002
    );
    assert_eq!(
        code(
            c.request(
                "startPlayingStream",
                json!({"streamID": "nope", "sdp": "x"})
            )
            .await
        ),
        1_004_002
    );
    assert_eq!(
        code(
            c.request(
                "startPlayingStream",
                json!({"streamID": "s", "sdp": "garbage"})
            )
            .await
        ),
        1_005_001
    );
    assert_eq!(
        code(
            c.request("stopPlayingStream", json!({"streamID": "s"}))
                .await
        ),
        1_004_002
    );
    assert_eq!(
        code(
            c.request(
                "iceCandidate",
                json!({"streamID": "s", "candidate": "bogus"})
            )
            .await
        ),
        1_000_001
    );
    c.request(
        "iceCandidate",
        json!({"streamID": "s", "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}),
    )
    .await
    .unwrap();
    // Playing needs a room; publishing needs the token's privilege.
    let lonely = Client::connect(&server.addr, 1).await.unwrap();
    assert_eq!(
        code(
            lonely
                .request("startPlayingStream", json!({"streamID": "s", "sdp": "x"}))
                .await
        ),
        1_000_002
    );
    let viewer = Client::connect(&server.addr, 1).await.unwrap();
    let mut viewer_claims = claims(1, "viewer");
    viewer_claims["privilege"] = json!({"login": true, "publish": false});
    viewer
        .login_room(
            "r1",
            &sign(secret(1), &viewer_claims),
            "viewer",
            "viewer",
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        code_of(viewer.publish("v", None, vp8_opus()).await.map(|_| ())),
        1_003_072
    );
    let limited = Client::connect(&server.addr, 1).await.unwrap();
    let mut limited_claims = claims(1, "limited");
    limited_claims["stream_id_list"] = json!(["allowed"]);
    limited
        .login_room(
            "r1",
            &sign(secret(1), &limited_claims),
            "limited",
            "limited",
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        code_of(limited.publish("other", None, vp8_opus()).await.map(|_| ())),
        1_003_072
    );
    limited
        .publish(
            "allowed",
            None,
            PublishTracks {
                video: Some(VideoCodec::Vp8),
                audio: false,
            },
        )
        .await
        .expect("allowed stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_media_port_hurts_nobody() {
    let server = TestServer::start("");
    let media = server.media.expect("media address");
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r1"]).await;
    let publisher = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let mut player = viewer.play("cam").await.unwrap();
    let sender = spawn_sending(publisher, Duration::from_secs(3));
    // Meanwhile a stranger sprays the port: random bytes, truncated STUN,
    // DTLS and RTP headers, a binding request for an unknown ufrag.
    let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seed = 7u32;
    for i in 0..3000u32 {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let len = (seed >> 20) as usize % 1400;
        let mut buf: Vec<u8> = (0..len)
            .map(|j| (seed.rotate_left(j as u32 % 31) >> 3) as u8)
            .collect();
        match i % 5 {
            0 if !buf.is_empty() => buf[0] = 0x00, // STUN-looking
            1 if !buf.is_empty() => buf[0] = 22,   // DTLS-looking
            2 if buf.len() > 1 => {
                buf[0] = 0x80; // RTP/RTCP-looking
                buf[1] = if i % 2 == 0 { 96 } else { 200 };
            }
            3 => {
                let mut stun = vec![0, 1, 0, 12, 0x21, 0x12, 0xA4, 0x42];
                stun.extend_from_slice(&[1; 12]);
                stun.extend_from_slice(&[0, 6, 0, 8]);
                stun.extend_from_slice(b"nope:you");
                buf = stun;
            }
            _ => {}
        }
        let _ = junk.send_to(&buf, media).await;
    }
    let (_publisher, sent) = sender.await.unwrap();
    let got = drain(&mut player, Duration::from_millis(400)).await;
    check_run(MediaKind::Video, &got, &sent.video);
    check_run(MediaKind::Audio, &got, &sent.audio);
    // The server still accepts new peers.
    let late = member(&server, "late", &["r2"]).await;
    let _again = late.play("cam").await;
}
