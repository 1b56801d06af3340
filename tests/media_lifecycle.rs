//! A stream's media life through the real server: a panic while handling one
//! peer ends that peer only; a stream stopped and republished under the same
//! ID (on the same worker, packets still in flight) reaches every player
//! again; and the per-connection limits on publishes, plays and peer
//! connections not yet connected.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::media::*;
use common::proxy::Proxy;
use common::*;
use serde_json::{json, Value};
use sfu_client::media::ClipSource;
use sfu_client::{Client, MediaKind, Player, Publisher};

fn config(server: &str, limits: &str) -> String {
    format!("[server]\n{server}\n[limits]\n{limits}\n{APPS}")
}

fn delete_reason(fields: &Value) -> Value {
    let ext: Value = serde_json::from_str(fields["extendedData"].as_str().unwrap()).unwrap();
    ext["stream_delete_reason"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_for_one_peer_ends_that_peer_only() {
    // One worker holds every peer; the hook panics while it handles the
    // first RTP packet of stream `boom`'s publisher.
    let mut server = TestServer::start_with_env(
        &config("mediaWorkers = 1", ""),
        &[("SFUTEST_PANIC_STREAM", "boom")],
    );
    let anchor = member(&server, "anchor", &["r1"]).await;
    let victim = member(&server, "victim", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r1"]).await;
    let publisher = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let mut player = viewer.play("cam").await.unwrap();
    let sender = spawn_sending(publisher, Duration::from_secs(4));
    assert!(count_for(&mut player, Duration::from_millis(500)).await > 0);

    let boom = victim
        .publish("boom", Some("r1"), vp8_opus())
        .await
        .unwrap();
    let boom_sender = spawn_sending(boom, Duration::from_secs(1));
    let e = victim
        .wait_event_where(
            |e| e.name == "publisherStateUpdate" && e.fields["streamID"] == "boom",
            Duration::from_secs(5),
        )
        .await
        .expect("the panicked publisher is told");
    assert_eq!(e.fields["state"], "NO_PUBLISH");
    assert_eq!(e.fields["errorCode"], 1_005_003);
    let del = viewer
        .wait_event_where(
            |e| {
                e.name == "roomStreamUpdate"
                    && e.fields["updateType"] == "DELETE"
                    && e.fields["streamList"][0]["streamID"] == "boom"
            },
            Duration::from_secs(3),
        )
        .await
        .expect("the room sees boom deleted");
    assert_eq!(
        delete_reason(&del.fields),
        json!([{"stream_id": "boom", "code": 5}])
    );
    let _ = boom_sender.await;

    // The other peers of that worker never noticed: the player got every
    // packet of cam from its first to the last one sent.
    let (publisher, sent) = sender.await.unwrap();
    let got = drain(&mut player, Duration::from_millis(500)).await;
    check_run(MediaKind::Video, &got, &sent.video);
    check_run(MediaKind::Audio, &got, &sent.audio);
    let audio_got = got.iter().filter(|r| r.kind == MediaKind::Audio).count();
    let start = check_run(MediaKind::Audio, &got, &sent.audio);
    assert_eq!(
        start + audio_got,
        sent.audio.len(),
        "cam's audio stopped early"
    );
    assert!(publisher.is_connected() && player.is_connected());
    for (who, c) in [("anchor", &anchor), ("viewer", &viewer)] {
        let told: Vec<_> = c
            .drain_events()
            .into_iter()
            .filter(|e| e.name == "playerStateUpdate" || e.name == "publisherStateUpdate")
            .collect();
        assert!(told.is_empty(), "{who} was told {told:?}");
    }
    // The worker goes on taking new peers, and `boom`'s ID is free again.
    let late = member(&server, "late", &["r1"]).await;
    let fresh = late.publish("after", Some("r1"), vp8_opus()).await.unwrap();
    let mut fresh_player = viewer.play("after").await.unwrap();
    let fresh_sender = spawn_sending(fresh, Duration::from_secs(1));
    let (_fresh, fresh_sent) = fresh_sender.await.unwrap();
    let got = drain(&mut fresh_player, Duration::from_millis(500)).await;
    check_run(MediaKind::Audio, &got, &fresh_sent.audio);
    let again = late
        .request(
            "startPublishingStream",
            json!({"streamID": "boom", "roomID": "r1", "sdp": "garbage"}),
        )
        .await;
    assert_eq!(code_of(again), 1_005_001, "boom is not claimed any more");
    assert!(server_running(&mut server), "the server died");
}

/// Audio whose payload names the round of the publisher that sent it, and
/// the VP8 clip, in real time until `stop`.
fn spawn_tagged(
    publisher: Publisher,
    round: u8,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Publisher> {
    tokio::spawn(async move {
        let mut video = ClipSource::vp8().expect("vp8 clip").looped();
        let start = tokio::time::Instant::now();
        let (mut video_at, mut audio_at) = (Duration::ZERO, Duration::ZERO);
        let mut seq: u16 = 0;
        while !stop.load(Ordering::Relaxed) {
            if video_at <= audio_at {
                let Some(frame) = video.next() else { break };
                tokio::time::sleep_until(start + video_at).await;
                for p in frame.packets {
                    let _ = publisher.write_rtp(MediaKind::Video, p).await;
                }
                video_at += frame.duration;
            } else {
                tokio::time::sleep_until(start + audio_at).await;
                seq = seq.wrapping_add(1);
                let mut payload = vec![0xA0, round];
                payload.extend_from_slice(&seq.to_be_bytes());
                payload.resize(60, 0);
                let packet = rtc::rtp::Packet {
                    header: rtc::rtp::Header {
                        version: 2,
                        sequence_number: seq,
                        timestamp: u32::from(seq) * 960,
                        ..Default::default()
                    },
                    payload: Bytes::from(payload),
                };
                let _ = publisher.write_rtp(MediaKind::Audio, packet).await;
                audio_at += Duration::from_millis(20);
            }
        }
        publisher
    })
}

/// Wait until `player` gets audio of round `round` and, after it, video.
async fn until_round(who: usize, player: &mut Player, round: u8) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut audio = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(r) = player.recv_timeout(left).await else {
            panic!("player {who} never got round {round}'s media (audio: {audio})");
        };
        match r.kind {
            MediaKind::Audio => {
                let tag = r.packet.payload.get(1).copied();
                // Never an older round once the new one has arrived.
                if audio {
                    assert_eq!(tag, Some(round), "player {who} fell back to round {tag:?}");
                }
                audio |= tag == Some(round);
            }
            MediaKind::Video if audio => return,
            MediaKind::Video => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_republished_while_relayed_packets_are_in_flight_reaches_every_player() {
    let server = TestServer::start_with(&config("mediaWorkers = 2", ""));
    // Publishers send through four proxies in turn: each proxy is one
    // 5-tuple, so one worker, and consecutive publishers of the stream land
    // on one worker or the other, often on the one that was receiving the
    // last publisher's relayed packets. Players spread over both workers.
    let media = server.media.expect("media address");
    let mut proxies = Vec::new();
    for _ in 0..4 {
        proxies.push(Proxy::start(media).await);
    }
    let anchor = member(&server, "anchor", &["r1"]).await;
    let mut viewers = Vec::new();
    for i in 0..8 {
        let room = if i % 2 == 0 { "r1" } else { "r2" };
        viewers.push(member(&server, &format!("v{i}"), &[room]).await);
    }
    for round in 1..=8u8 {
        let via = proxies[usize::from(round) % proxies.len()].addr;
        let publisher = anchor
            .publish_via("live", Some("r1"), vp8_opus(), via)
            .await
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sending = spawn_tagged(publisher, round, stop.clone());
        // The last publisher's end ended its plays: every viewer plays the
        // stream again.
        let mut players = Vec::new();
        for v in &viewers {
            players.push(v.play("live").await.unwrap());
        }
        for (i, p) in players.iter_mut().enumerate() {
            until_round(i, p, round).await;
        }
        // Stop while packets are still in flight to the relays; the next
        // round publishes the same ID at once.
        stop.store(true, Ordering::Relaxed);
        let old = sending.await.unwrap();
        old.stop().await.unwrap();
    }
}

/// An offer that is valid but never connects (nobody sends it a check).
fn publish_offer() -> String {
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    sfu_load::peer::publisher("idle", local, Instant::now())
        .unwrap()
        .1
}

fn play_offer() -> String {
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    sfu_load::peer::player(local, Instant::now()).unwrap().1
}

async fn start_publish(c: &Client, stream: &str, sdp: &str) -> sfu_client::Result<Value> {
    c.request(
        "startPublishingStream",
        json!({"streamID": stream, "roomID": "r1", "sdp": sdp}),
    )
    .await
}

async fn start_play(c: &Client, stream: &str, sdp: &str) -> sfu_client::Result<Value> {
    c.request(
        "startPlayingStream",
        json!({"streamID": stream, "sdp": sdp}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_not_yet_connected_are_limited_per_connection() {
    let server = TestServer::start("maxConnectingPeersPerConnection = 2");
    let c = member(&server, "u", &["r1"]).await;
    let offer = publish_offer();
    start_publish(&c, "a", &offer).await.unwrap();
    start_publish(&c, "b", &offer).await.unwrap();
    let refused = start_publish(&c, "c", &offer).await;
    assert_eq!(code_of(refused), 1_005_010);
    // Plays count too.
    let host = member(&server, "host", &["r1"]).await;
    let _live = host.publish("live", Some("r1"), vp8_opus()).await.unwrap();
    assert_eq!(
        code_of(start_play(&c, "live", &play_offer()).await),
        1_005_010
    );
    // Another connection has its own budget, and a stopped one frees a slot.
    let other = member(&server, "other", &["r1"]).await;
    start_publish(&other, "d", &offer).await.unwrap();
    c.request("stopPublishingStream", json!({"streamID": "a"}))
        .await
        .unwrap();
    start_publish(&c, "c", &offer).await.expect("a freed slot");
    // Connected peers do not count: next to a real publish and play, two
    // connecting ones fit. (The server marks a peer connected when its
    // DTLS is up, a moment before the client sees it: ask until it has.)
    let d = member(&server, "d", &["r1"]).await;
    let _p = d.publish("f", Some("r1"), vp8_opus()).await.unwrap();
    let _q = d.play("live").await.unwrap();
    start_publish(&d, "e", &offer).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match start_publish(&d, "g", &offer).await {
            Ok(_) => break,
            Err(e) if e.code() == Some(1_005_010) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("a second connecting peer next to connected ones: {e}"),
        }
    }
    assert_eq!(code_of(start_publish(&d, "h", &offer).await), 1_005_010);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_are_limited_per_connection() {
    let server = TestServer::start("maxPublishesPerConnection = 2");
    let c = member(&server, "u", &["r1"]).await;
    let offer = publish_offer();
    start_publish(&c, "a", &offer).await.unwrap();
    start_publish(&c, "b", &offer).await.unwrap();
    let refused = start_publish(&c, "c", &offer).await;
    assert_eq!(code_of(refused), 1_003_029);
    // The refusal claimed nothing: another user may publish `c`.
    let other = member(&server, "other", &["r1"]).await;
    start_publish(&other, "c", &offer).await.unwrap();
    c.request("stopPublishingStream", json!({"streamID": "a"}))
        .await
        .unwrap();
    start_publish(&c, "d", &offer).await.expect("a freed slot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plays_are_limited_per_connection() {
    let server = TestServer::start("maxPlaysPerConnection = 2");
    let host = member(&server, "host", &["r1"]).await;
    let mut live = Vec::new();
    for s in ["s1", "s2", "s3"] {
        live.push(host.publish(s, Some("r1"), vp8_opus()).await.unwrap());
    }
    let c = member(&server, "u", &["r1"]).await;
    let offer = play_offer();
    start_play(&c, "s1", &offer).await.unwrap();
    start_play(&c, "s2", &offer).await.unwrap();
    assert_eq!(code_of(start_play(&c, "s3", &offer).await), 1_004_020);
    // Playing a stream again replaces its play: not one more.
    start_play(&c, "s1", &offer).await.expect("a replaced play");
    c.request("stopPlayingStream", json!({"streamID": "s2"}))
        .await
        .unwrap();
    start_play(&c, "s3", &offer).await.expect("a freed slot");
}
