//! Forwarding quality with real peer connections: loss on the way to one
//! player is repaired by NACK from the server's cache, and a stalled player
//! costs the other players nothing.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::media::*;
use common::proxy::{Proxy, BLACKHOLE, DROP_NTH_ONCE};
use common::*;
use sfu_client::{MediaKind, PlayOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_retransmission_fills_the_gaps() {
    let server = TestServer::start("");
    let proxy = Proxy::start(server.media.expect("media address")).await;
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r2"]).await;
    let publisher = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let options = PlayOptions {
        server_addr: Some(proxy.addr),
        ..PlayOptions::default()
    };
    let mut player = viewer.play_with("cam", options).await.unwrap();
    let sender = spawn_sending(publisher, Duration::from_secs(4));
    // Once the video SSRC is known, drop every 7th video packet once.
    let mut early = Vec::new();
    while player.ssrc(MediaKind::Video).is_none() {
        early.push(
            player
                .recv_timeout(Duration::from_secs(3))
                .await
                .expect("first packets"),
        );
    }
    proxy
        .ssrc
        .store(player.ssrc(MediaKind::Video).unwrap(), Ordering::Relaxed);
    proxy.nth.store(7, Ordering::Relaxed);
    proxy.mode.store(DROP_NTH_ONCE, Ordering::Relaxed);
    let (_publisher, sent) = sender.await.unwrap();
    let mut got = early;
    got.extend(drain(&mut player, Duration::from_millis(800)).await);
    let dropped = proxy.dropped.load(Ordering::Relaxed);
    let video = check_complete(MediaKind::Video, &got, &sent.video);
    let retransmitted: usize = proxy
        .dropped_seqs
        .lock()
        .iter()
        .filter(|seq| {
            got.iter()
                .any(|r| r.kind == MediaKind::Video && r.packet.header.sequence_number == **seq)
        })
        .count();
    eprintln!("video packets: {video} distinct, {dropped} dropped by the proxy, {retransmitted} of them repaired");
    assert!(dropped >= 15, "only {dropped} packets dropped");
    assert_eq!(
        retransmitted as u64, dropped,
        "some dropped packets were never retransmitted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_player_costs_the_others_nothing() {
    let server = TestServer::start("");
    let stall = Proxy::start(server.media.expect("media address")).await;
    let anchor = member(&server, "anchor", &["r1"]).await;
    let a = member(&server, "a", &["r1"]).await;
    let b = member(&server, "b", &["r2"]).await;
    let s = member(&server, "stalled", &["r3"]).await;
    let publisher = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let mut pa = a.play("cam").await.unwrap();
    let mut pb = b.play("cam").await.unwrap();
    let options = PlayOptions {
        server_addr: Some(stall.addr),
        ..PlayOptions::default()
    };
    let mut ps = s.play_with("cam", options).await.unwrap();
    let sender = spawn_sending(publisher, Duration::from_secs(4));
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The stalled player's network goes dark; its client stops reading too.
    stall.mode.store(BLACKHOLE, Ordering::Relaxed);
    let _ = count_for(&mut ps, Duration::from_millis(50)).await;
    let (_publisher, sent) = sender.await.unwrap();
    let ga = drain(&mut pa, Duration::from_millis(400)).await;
    let gb = drain(&mut pb, Duration::from_millis(400)).await;
    for (name, got) in [("a", &ga), ("b", &gb)] {
        let start = check_run(MediaKind::Video, got, &sent.video);
        let video = got.iter().filter(|r| r.kind == MediaKind::Video).count();
        assert_eq!(
            start + video,
            sent.video.len(),
            "player {name} missed the end"
        );
        check_run(MediaKind::Audio, got, &sent.audio);
        eprintln!("player {name}: {video} video packets, everything after its first keyframe");
    }
    assert!(stall.dropped.load(Ordering::Relaxed) > 100);
}
