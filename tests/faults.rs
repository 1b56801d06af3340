//! Fault injection on the media path (issue 14): players behind an
//! impairment relay (`common::impair`) that loses, bursts, reorders,
//! duplicates and delays what the server sends them; a publisher behind
//! one that does it to what it sends; and a publisher whose media path
//! goes away without a goodbye. Figures: docs/testing.md.
//!
//! What the relay did is known exactly (it records every copy of every
//! sequence number it got and whether it let it through), so the tests
//! assert exact outcomes: a player receives a packet if and only if some
//! copy of it passed the relay, with the payload that was published; the
//! server's retransmission count is the copies beyond the first the relays
//! saw; its per-player queues drop nothing.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::impair::{Fate, Impairment, Loss, Phase, Relay, Towards};
use common::media::*;
use common::*;
use sfu_client::{ClipSource, MediaKind, PlayOptions, Received};

const QUEUE_FULL: &str = r#"sfu_rtp_dropped_packets_total{reason="player_queue_full"}"#;
const RETRANSMITTED: &str = "sfu_rtp_retransmitted_packets_total";
const FORWARDED: &str = "sfu_rtp_forwarded_packets_total";

/// A first phase without impairment, so that a player's first packets (its
/// first keyframe, the start of every check) arrive as sent.
const CLEAN_START: Phase = Phase {
    name: "clean start",
    impairment: Impairment::CLEAN,
    packets: 60,
};

/// What one phase did to one kind of a player's stream.
#[derive(Debug, Default, Clone, Copy)]
struct PhaseOutcome {
    /// Packets the server sent (first copies).
    sent: usize,
    /// Their first copy was dropped by the relay.
    first_lost: usize,
    /// ...and a later copy (a retransmission) reached the player.
    repaired: usize,
    /// No copy passed: lost for good.
    unrecoverable: usize,
    /// Keyframes (their first packet) the player received.
    keyframes: usize,
    /// Offset (from the player's first packet) of the last packet lost for
    /// good.
    last_unrecoverable: Option<usize>,
}

/// Check what a player received of `kind` against what was published and
/// what the relay did, and count it per phase:
/// - one SSRC; every payload is the published one at its sequence number
///   (the player's first packet, which came through the clean start, fixes
///   the alignment), duplicates identical;
/// - a sequence number arrived if and only if some copy passed the relay:
///   nothing that got through was lost after it, nothing lost was made up;
/// - the server sent every packet to the last one published.
fn outcomes(
    who: &str,
    kind: MediaKind,
    relay: &Relay,
    phases: usize,
    got: &[Received],
    sent: &[Bytes],
    keyframes: &[usize],
) -> Vec<PhaseOutcome> {
    let got: Vec<&Received> = got.iter().filter(|r| r.kind == kind).collect();
    assert!(!got.is_empty(), "{who}: no {kind:?} received");
    let ssrc = got[0].packet.header.ssrc;
    let first = got[0].packet.header.sequence_number;
    let offset = |seq: u16| -> usize {
        let d = seq.wrapping_sub(first) as i16;
        assert!(
            d >= 0,
            "{who}: {kind:?} {seq} precedes the first packet {first}"
        );
        d as usize
    };
    let start = sent
        .iter()
        .position(|s| *s == got[0].packet.payload)
        .unwrap_or_else(|| panic!("{who}: first {kind:?} payload never published"));
    let mut received: BTreeMap<usize, &Bytes> = BTreeMap::new();
    for r in &got {
        assert_eq!(r.packet.header.ssrc, ssrc, "{who}: {kind:?} SSRC changed");
        let off = offset(r.packet.header.sequence_number);
        let payload = &r.packet.payload;
        assert_eq!(
            sent.get(start + off),
            Some(payload),
            "{who}: {kind:?} packet {off} is not the one published"
        );
        received.insert(off, payload);
    }
    let fates: BTreeMap<usize, Fate> = relay
        .fates(ssrc)
        .into_iter()
        .map(|(seq, f)| (offset(seq), f))
        .collect();
    let missing: Vec<usize> = fates
        .iter()
        .filter(|(off, f)| f.passed > 0 && !received.contains_key(off))
        .map(|(off, _)| *off)
        .collect();
    assert!(
        missing.is_empty(),
        "{who}: {kind:?} passed the relay but never reached the player: {missing:?}"
    );
    let made_up: Vec<usize> = received
        .keys()
        .filter(|off| fates.get(off).is_none_or(|f| f.passed == 0))
        .copied()
        .collect();
    assert!(
        made_up.is_empty(),
        "{who}: {kind:?} received but never passed: {made_up:?}"
    );
    assert_eq!(
        fates.keys().next(),
        Some(&0),
        "{who}: {kind:?} relay saw earlier packets"
    );
    assert_eq!(
        fates.keys().next_back().map(|last| start + last + 1),
        Some(sent.len()),
        "{who}: the server did not forward {kind:?} to the last packet published"
    );
    assert_eq!(
        fates.len(),
        sent.len() - start,
        "{who}: {kind:?} sequence gap at the server"
    );
    let mut out = vec![PhaseOutcome::default(); phases];
    for (off, f) in &fates {
        let o = &mut out[f.phase];
        o.sent += 1;
        o.first_lost += usize::from(f.first_lost);
        o.repaired += usize::from(f.first_lost && f.passed > 0);
        if f.passed == 0 {
            o.unrecoverable += 1;
            o.last_unrecoverable = Some(*off);
        }
        o.keyframes += usize::from(keyframes.contains(&(start + off)) && f.passed > 0);
    }
    out
}

/// A received keyframe after offset `after`: where decoding resumes.
fn keyframe_after(got: &[Received], sent: &Sent, after: usize) -> bool {
    let video: Vec<&Received> = got.iter().filter(|r| r.kind == MediaKind::Video).collect();
    let first = video[0].packet.header.sequence_number;
    let Some(start) = sent
        .video
        .iter()
        .position(|s| *s == video[0].packet.payload)
    else {
        return false;
    };
    video.iter().any(|r| {
        let off = r.packet.header.sequence_number.wrapping_sub(first) as usize;
        off > after && sent.video_keyframes.contains(&(start + off))
    })
}

fn print(who: &str, kind: MediaKind, phases: &[Phase], out: &[PhaseOutcome]) {
    for (p, o) in phases.iter().zip(out) {
        eprintln!(
            "{who} {kind:?} [{}]: {} sent, {} first copies lost, {} repaired, {} lost for good, {} keyframes",
            p.name, o.sent, o.first_lost, o.repaired, o.unrecoverable, o.keyframes
        );
    }
}

/// 5 % random loss (seeded) on 15 s of media to two players: at least 95 % of the
/// video packets whose first copy the relay dropped reach the player as a
/// retransmission (the relay loses retransmissions at 5 % too; the
/// player's NACK generator asks again). Everything that passed arrived;
/// the server's retransmissions are exactly the copies the relays saw
/// twice or more; no player queue dropped anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_random_loss_is_repaired_by_nack() {
    let server = TestServer::start("");
    let media = server.media.expect("media address");
    let phases = vec![
        CLEAN_START,
        Phase {
            name: "5 % random loss",
            impairment: Impairment::loss(Loss::Random(0.05)),
            packets: u32::MAX,
        },
    ];
    let anchor = member(&server, "anchor", &["r1"]).await;
    let publisher = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let mut viewers = Vec::new();
    for seed in [1u64, 2] {
        let relay = Relay::start(media, phases.clone(), seed).await;
        let client = member(&server, &format!("viewer{seed}"), &["r2"]).await;
        let options = PlayOptions {
            server_addr: Some(relay.addr),
            ..PlayOptions::default()
        };
        let player = client.play_with("cam", options).await.unwrap();
        viewers.push((relay, client, player));
    }
    let sender = spawn_sending(publisher, Duration::from_secs(15));
    let (_publisher, sent) = sender.await.unwrap();
    let (mut lost, mut repaired, mut resent, mut distinct) = (0, 0, 0, 0);
    for (i, (relay, _client, player)) in viewers.iter_mut().enumerate() {
        let who = format!("player {}", i + 1);
        let got = drain(player, Duration::from_millis(800)).await;
        assert_eq!(relay.phase(), 1, "{who}: the loss phase never began");
        let video = outcomes(
            &who,
            MediaKind::Video,
            relay,
            phases.len(),
            &got,
            &sent.video,
            &sent.video_keyframes,
        );
        let audio = outcomes(
            &who,
            MediaKind::Audio,
            relay,
            phases.len(),
            &got,
            &sent.audio,
            &[],
        );
        print(&who, MediaKind::Video, &phases, &video);
        print(&who, MediaKind::Audio, &phases, &audio);
        let o = video[1];
        assert!(
            o.first_lost >= 10,
            "{who}: only {} video packets lost",
            o.first_lost
        );
        assert!(o.keyframes >= 5, "{who}: only {} keyframes", o.keyframes);
        if let Some(at) = o.last_unrecoverable {
            assert!(
                keyframe_after(&got, &sent, at),
                "{who}: no keyframe after the last loss"
            );
        }
        lost += o.first_lost;
        repaired += o.repaired;
        resent += relay.resent();
        distinct += relay.distinct();
        eprintln!("{who}: relay counts {:?}", relay.counts());
    }
    let ratio = repaired as f64 / lost as f64;
    eprintln!(
        "5 % random loss: {repaired} of {lost} lost video packets repaired by NACK ({:.1} %)",
        ratio * 100.0
    );
    assert!(ratio >= 0.95, "only {repaired} of {lost} repaired");
    let text = metrics_blocking(&server);
    assert_eq!(sample(&text, RETRANSMITTED), resent, "retransmissions");
    assert_eq!(sample(&text, FORWARDED), distinct, "forwarded packets");
    assert_eq!(sample(&text, QUEUE_FULL), 0, "player queue drops");
}

/// One player through a run of impairment phases, each followed by a clean
/// stretch: 20 % loss in bursts (Gilbert–Elliott, mean burst 4 packets),
/// reordering (10 % held back 15 ms), duplication (10 %), 100 ms jitter.
/// In every phase the player gets every packet that got through and a
/// keyframe; after the bursts' last packet lost for good, a keyframe (the
/// picture decodes again); every clean stretch arrives complete; phases
/// that lose nothing arrive complete despite the disorder. No player queue
/// dropped anything, and the retransmissions are exactly what the relay saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_keep_decoding_through_impairment_phases() {
    let server = TestServer::start("");
    let media = server.media.expect("media address");
    let impaired = 300;
    // Clean stretches of 1.5 s or so: a keyframe in each (one a second).
    let clean = |name| Phase {
        name,
        impairment: Impairment::CLEAN,
        packets: 160,
    };
    let phases = vec![
        CLEAN_START,
        Phase {
            name: "20 % loss in bursts",
            impairment: Impairment::loss(Loss::bursts(0.2, 4.0)),
            packets: 2 * impaired,
        },
        clean("clean after bursts"),
        Phase {
            name: "reordering",
            impairment: Impairment {
                reorder: 0.1,
                reorder_by: Duration::from_millis(15),
                ..Impairment::CLEAN
            },
            packets: impaired,
        },
        clean("clean after reordering"),
        Phase {
            name: "duplication",
            impairment: Impairment {
                duplicate: 0.1,
                ..Impairment::CLEAN
            },
            packets: impaired,
        },
        clean("clean after duplication"),
        Phase {
            name: "100 ms jitter",
            impairment: Impairment {
                jitter: Duration::from_millis(100),
                ..Impairment::CLEAN
            },
            packets: impaired,
        },
        Phase {
            name: "clean to the end",
            impairment: Impairment::CLEAN,
            packets: u32::MAX,
        },
    ];
    let relay = Relay::start(media, phases.clone(), 3).await;
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r2"]).await;
    let publisher = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let options = PlayOptions {
        server_addr: Some(relay.addr),
        ..PlayOptions::default()
    };
    let mut player = viewer.play_with("cam", options).await.unwrap();
    let sender = spawn_sending(publisher, Duration::from_secs(23));
    let (_publisher, sent) = sender.await.unwrap();
    let got = drain(&mut player, Duration::from_millis(800)).await;
    assert_eq!(relay.phase(), phases.len() - 1, "not every phase ran");
    let n = phases.len();
    let video = outcomes(
        "player",
        MediaKind::Video,
        &relay,
        n,
        &got,
        &sent.video,
        &sent.video_keyframes,
    );
    let audio = outcomes(
        "player",
        MediaKind::Audio,
        &relay,
        n,
        &got,
        &sent.audio,
        &[],
    );
    print("player", MediaKind::Video, &phases, &video);
    print("player", MediaKind::Audio, &phases, &audio);
    eprintln!("relay counts {:?}", relay.counts());
    for (p, o) in phases.iter().zip(&video) {
        assert!(o.keyframes >= 1, "[{}]: no keyframe arrived", p.name);
        if p.impairment.loss == Loss::None {
            assert_eq!(o.first_lost, 0, "[{}]", p.name);
            assert_eq!(o.unrecoverable, 0, "[{}]: lost packets", p.name);
        }
        if let Some(at) = o.last_unrecoverable {
            assert!(
                keyframe_after(&got, &sent, at),
                "[{}]: no keyframe after the last packet lost for good",
                p.name
            );
        }
    }
    // The bursts were real: near the 20 % asked for, over both streams.
    let (lost, of) = (
        video[1].first_lost + audio[1].first_lost,
        video[1].sent + audio[1].sent,
    );
    eprintln!(
        "bursts: {lost} of {of} packets lost ({:.1} %), {} of the {} video ones repaired",
        100.0 * lost as f64 / of as f64,
        video[1].repaired,
        video[1].first_lost
    );
    assert!(lost * 10 >= of, "bursts lost only {lost} of {of}");
    let counts = relay.counts();
    assert!(counts.duplicated >= 10 && counts.reordered >= 10 && counts.delayed >= 100);
    let text = metrics_blocking(&server);
    assert_eq!(
        sample(&text, RETRANSMITTED),
        relay.resent(),
        "retransmissions"
    );
    assert_eq!(
        sample(&text, FORWARDED),
        relay.distinct(),
        "forwarded packets"
    );
    assert_eq!(sample(&text, QUEUE_FULL), 0, "player queue drops");
}

/// The same impairments on a publisher's uplink (its player's path is
/// clean): 5 % random loss, reordering, duplication, 100 ms jitter. The
/// player gets, with its published payload, every video packet some copy of
/// which reached the server (one the player NACKs and the server lacks is
/// asked of the publisher, whose retransmission crosses the relay again);
/// the server forwards each packet once, duplicates not; no player queue
/// drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_players_stream_survives_an_impaired_publisher_uplink() {
    let server = TestServer::start("");
    let media = server.media.expect("media address");
    let phase = |name, impairment| Phase {
        name,
        impairment,
        packets: 300,
    };
    let phases = vec![
        CLEAN_START,
        Phase {
            packets: 600,
            ..phase("5 % random loss", Impairment::loss(Loss::Random(0.05)))
        },
        phase(
            "reordering",
            Impairment {
                reorder: 0.1,
                reorder_by: Duration::from_millis(15),
                ..Impairment::CLEAN
            },
        ),
        phase(
            "duplication",
            Impairment {
                duplicate: 0.1,
                ..Impairment::CLEAN
            },
        ),
        phase(
            "100 ms jitter",
            Impairment {
                jitter: Duration::from_millis(100),
                ..Impairment::CLEAN
            },
        ),
        Phase {
            name: "clean to the end",
            impairment: Impairment::CLEAN,
            packets: u32::MAX,
        },
    ];
    let relay = Relay::start_towards(media, phases.clone(), 4, Towards::Server).await;
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r2"]).await;
    let publisher = anchor
        .publish_via("cam", Some("r1"), vp8_opus(), relay.addr)
        .await
        .unwrap();
    let mut player = viewer.play("cam").await.unwrap();
    let ssrc = publisher.ssrc(MediaKind::Video).expect("video SSRC");
    let sender = spawn_sending(publisher, Duration::from_secs(19));
    let (_publisher, sent) = sender.await.unwrap();
    let got = drain(&mut player, Duration::from_millis(800)).await;
    assert_eq!(relay.phase(), phases.len() - 1, "not every phase ran");
    // The relay's offsets are the publisher's: offset k is sent.video[k].
    let fates = relay.fates(ssrc);
    let first = *fates.keys().next().expect("video through the relay");
    let passed: BTreeMap<usize, Fate> = fates
        .iter()
        .map(|(seq, f)| (seq.wrapping_sub(first) as usize, *f))
        .collect();
    let video: Vec<&Received> = got.iter().filter(|r| r.kind == MediaKind::Video).collect();
    assert!(!video.is_empty(), "no video");
    let start = sent
        .video
        .iter()
        .position(|s| *s == video[0].packet.payload)
        .expect("the first video payload was published");
    let first_out = video[0].packet.header.sequence_number;
    let mut received: BTreeMap<usize, usize> = BTreeMap::new();
    for r in &video {
        let k = start + r.packet.header.sequence_number.wrapping_sub(first_out) as usize;
        assert_eq!(
            sent.video.get(k),
            Some(&r.packet.payload),
            "video packet {k} is not the one published"
        );
        *received.entry(k).or_default() += 1;
    }
    let twice: Vec<usize> = received
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| *k)
        .collect();
    assert!(twice.is_empty(), "received twice: {twice:?}");
    let missing: Vec<usize> = passed
        .iter()
        .filter(|(k, f)| **k >= start && f.passed > 0 && !received.contains_key(k))
        .map(|(k, _)| *k)
        .collect();
    for (p, name) in phases.iter().enumerate().map(|(i, p)| (i, p.name)) {
        let of = |pred: &dyn Fn(&Fate) -> bool| {
            passed.values().filter(|f| f.phase == p && pred(f)).count()
        };
        eprintln!(
            "uplink [{name}]: {} video sent, {} first copies lost, {} lost for good, {} missing at the player",
            of(&|_| true),
            of(&|f| f.first_lost),
            of(&|f| f.passed == 0),
            missing.iter().filter(|k| passed[k].phase == p).count(),
        );
    }
    eprintln!(
        "uplink relay counts {:?}, {} copies resent by the publisher",
        relay.counts(),
        relay.resent()
    );
    assert!(
        missing.is_empty(),
        "reached the server but not the player: {missing:?}"
    );
    assert_eq!(start, 0, "the player's video starts at packet {start}");
    // Forwarded once each: what the player got, less what was resent.
    let audio: std::collections::BTreeSet<u16> = got
        .iter()
        .filter(|r| r.kind == MediaKind::Audio)
        .map(|r| r.packet.header.sequence_number)
        .collect();
    let text = metrics_blocking(&server);
    assert_eq!(
        sample(&text, FORWARDED),
        (received.len() + audio.len()) as u64,
        "forwarded packets"
    );
    assert_eq!(sample(&text, QUEUE_FULL), 0, "player queue drops");
}

fn is_requesting(e: &sfu_client::Event) -> bool {
    e.name == "playerStateUpdate" && e.fields["state"] == "PLAY_REQUESTING"
}

/// A publisher's media path goes away mid-stream without a goodbye: the
/// relay in front of it drops everything both ways, while its WebSocket
/// stays open (a frozen process, a dead network; and a dropped WebSocket
/// will keep its session for a while once sessions resume). The server
/// notices by the media alone: its player gets `PLAY_REQUESTING 1004002`
/// within 2 s of the cut, the publisher `NO_PUBLISH 1005003`; a new
/// publisher of the ID resumes the waiting player (`PLAYING 0`, media).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_cut_mid_stream_sends_its_players_waiting_within_2s() {
    let server = TestServer::start("");
    let media = server.media.expect("media address");
    let relay = Relay::start(
        media,
        vec![Phase {
            name: "clean",
            impairment: Impairment::CLEAN,
            packets: u32::MAX,
        }],
        0,
    )
    .await;
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r2"]).await;
    let publisher = anchor
        .publish_via("cam", Some("r1"), vp8_opus(), relay.addr)
        .await
        .unwrap();
    let mut player = viewer.play("cam").await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sending = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let vp8 = ClipSource::vp8().expect("vp8 clip");
            send_clips_until(&publisher, vp8, &stop).await;
            publisher
        })
    };
    // Mid-stream: the player has had a second of video.
    let mut video = 0;
    while video < 50 {
        let r = player
            .recv_timeout(Duration::from_secs(3))
            .await
            .expect("media before the cut");
        video += usize::from(r.kind == MediaKind::Video);
    }
    relay.cut();
    let cut = Instant::now();
    let event = viewer
        .wait_event_where(is_requesting, Duration::from_secs(40))
        .await
        .expect("PLAY_REQUESTING");
    let took = cut.elapsed();
    eprintln!("PLAY_REQUESTING {took:?} after the publisher's media path was cut");
    assert_eq!(event.fields["errorCode"], 1_004_002, "{event:?}");
    assert_eq!(event.fields["streamID"], "cam", "{event:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let ended = anchor
        .wait_event_where(
            |e| e.name == "publisherStateUpdate" && e.fields["state"] == "NO_PUBLISH",
            Duration::from_secs(2),
        )
        .await
        .expect("NO_PUBLISH to the publisher");
    assert_eq!(ended.fields["errorCode"], 1_005_003, "{ended:?}");
    stop.store(true, Ordering::Relaxed);
    let _ = sending.await;
    // A new publisher of the ID resumes the waiting player.
    while player.try_recv().is_some() {}
    let again = member(&server, "anchor2", &["r1"]).await;
    let publisher = again.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let sender = spawn_sending(publisher, Duration::from_secs(2));
    let playing = viewer
        .wait_event_where(
            |e| e.name == "playerStateUpdate" && e.fields["state"] == "PLAYING",
            Duration::from_secs(5),
        )
        .await
        .expect("PLAYING again");
    assert_eq!(playing.fields["errorCode"], 0, "{playing:?}");
    let (_publisher, sent) = sender.await.unwrap();
    let got = drain(&mut player, Duration::from_millis(500)).await;
    check_to_end("the resumed player", &got, &sent);
}

/// The other side of the silence rule: a publisher that stops sending media
/// but is still there (its sender reports go on, about every second) is not
/// ended: neither it nor its player gets a state change for 3 s (twice the
/// silence timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_publisher_is_not_taken_for_a_dead_one() {
    let server = TestServer::start("");
    let anchor = member(&server, "anchor", &["r1"]).await;
    let viewer = member(&server, "viewer", &["r2"]).await;
    let publisher = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let mut player = viewer.play("cam").await.unwrap();
    let sent = send_clips(&publisher, Duration::from_secs(1)).await;
    let got = drain(&mut player, Duration::from_millis(300)).await;
    check_to_end("the player", &got, &sent);
    let quiet = viewer
        .wait_event_where(|e| e.name == "playerStateUpdate", Duration::from_secs(3))
        .await;
    assert!(quiet.is_err(), "the idle publisher's player got {quiet:?}");
    let ended: Vec<_> = anchor
        .drain_events()
        .into_iter()
        .filter(|e| e.name == "publisherStateUpdate")
        .collect();
    assert!(ended.is_empty(), "the idle publisher got {ended:?}");
    assert!(
        publisher.is_connected(),
        "the idle publisher was disconnected"
    );
}

/// The environment variable that turns [`publisher_child`] into a
/// publisher: the signaling address of the server to publish to.
const CHILD_SERVER: &str = "SFU_FAULTS_CHILD_SERVER";

/// Not a test on its own: run by [`a_publisher_killed_mid_stream_sends_its_players_waiting_within_2s`]
/// in a child process (this test binary, with [`CHILD_SERVER`] set), it
/// publishes `cam` and sends the clips until it is killed. Without the
/// variable it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_child() {
    let Ok(addr) = std::env::var(CHILD_SERVER) else {
        return;
    };
    let client = sfu_client::Client::connect(&addr, 1)
        .await
        .expect("connect");
    client
        .login_room("r1", &token(1, "child"), "child", "child", true)
        .await
        .expect("login");
    let publisher = client.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    println!("publishing");
    let never = AtomicBool::new(false);
    send_clips_until(&publisher, ClipSource::vp8().expect("vp8 clip"), &never).await;
}

/// A publisher in a child process killed with SIGKILL mid-stream: no
/// goodbye on either path. Its player gets `PLAY_REQUESTING 1004002` within
/// 2 s of the kill. (The kernel closes the dead process's WebSocket, but a
/// dropped WebSocket keeps its session for a resume: the media silence
/// tells the server, as in the cut test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_killed_mid_stream_sends_its_players_waiting_within_2s() {
    use std::io::BufRead;
    let server = TestServer::start("");
    let viewer = member(&server, "viewer", &["r2"]).await;
    let mut child = Child(
        std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "publisher_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_SERVER, &server.addr)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the publisher"),
    );
    let stdout = child.0.stdout.take().expect("its stdout");
    let ready = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.ends_with("publishing"))
    });
    let ready = tokio::time::timeout(Duration::from_secs(20), ready).await;
    assert!(
        matches!(ready, Ok(Ok(true))),
        "the child never published: {ready:?}"
    );
    let mut player = viewer.play("cam").await.unwrap();
    let mut video = 0;
    while video < 50 {
        let r = player
            .recv_timeout(Duration::from_secs(5))
            .await
            .expect("media before the kill");
        video += usize::from(r.kind == MediaKind::Video);
    }
    child.0.kill().expect("SIGKILL");
    let killed = Instant::now();
    let event = viewer
        .wait_event_where(is_requesting, Duration::from_secs(40))
        .await
        .expect("PLAY_REQUESTING");
    let took = killed.elapsed();
    eprintln!("PLAY_REQUESTING {took:?} after the publisher was killed");
    assert_eq!(event.fields["errorCode"], 1_004_002, "{event:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

/// A child process, killed (SIGKILL) and reaped when dropped, so that a
/// failing test leaves none behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
