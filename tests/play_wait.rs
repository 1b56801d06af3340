//! Plays that wait for and survive their publisher (the contract's "Plays
//! that wait"), through the real server with real peer connections: a play
//! that starts before its stream exists, one peer connection kept across
//! three republishes (another connection, another room, another codec) with
//! the received RTP checked packet by packet — one SSRC per kind, sequence
//! numbers consecutive across every republish, timestamps only forward, each
//! publisher's media complete from a keyframe — the wait timeout, and a
//! republished codec the player's answer lacks.

mod common;

use std::time::{Duration, Instant};

use common::media::*;
use common::proxy::Proxy;
use common::*;
use serde_json::json;
use sfu_client::media::ClipSource;
use sfu_client::{Client, Event, MediaKind, PlayOptions, Player, PublishTracks, VideoCodec};

const WAIT: Duration = Duration::from_secs(10);

fn is_player_state(stream: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e: &Event| e.name == "playerStateUpdate" && e.fields["streamID"] == stream
}

/// The next `playerStateUpdate` of `stream`: (state, errorCode).
async fn player_state(c: &Client, stream: &str) -> (String, u64) {
    let e = c
        .wait_event_where(is_player_state(stream), WAIT)
        .await
        .unwrap_or_else(|e| panic!("no playerStateUpdate of {stream}: {e}"));
    (
        e.fields["state"].as_str().unwrap_or_default().to_string(),
        e.fields["errorCode"].as_u64().unwrap_or(u64::MAX),
    )
}

fn requesting() -> (String, u64) {
    ("PLAY_REQUESTING".to_string(), 1_004_002)
}

fn playing() -> (String, u64) {
    ("PLAYING".to_string(), 0)
}

/// Largest step between consecutive packets of `kind` across the whole
/// play: (sequence number step, timestamp step); both are asserted to go
/// forward only.
fn steps(kind: MediaKind, got: &[sfu_client::Received]) -> (u16, u32) {
    let of_kind: Vec<_> = got.iter().filter(|r| r.kind == kind).collect();
    let (mut seq, mut ts) = (0u16, 0u32);
    for w in of_kind.windows(2) {
        let (a, b) = (&w[0].packet.header, &w[1].packet.header);
        let ds = b.sequence_number.wrapping_sub(a.sequence_number);
        let dt = b.timestamp.wrapping_sub(a.timestamp);
        assert!(
            (dt as i32) >= 0,
            "{kind:?} timestamp went back: {} -> {}",
            a.timestamp,
            b.timestamp
        );
        seq = seq.max(ds);
        ts = ts.max(dt);
    }
    (seq, ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_waits_for_its_publisher_and_survives_three_republishes() {
    let server = TestServer::start_with(&format!("[server]\nmediaWorkers = 2\n[limits]\n{APPS}"));
    // Each publisher sends through its own proxy: its own 5-tuple, so the
    // kernel picks its worker independently of the last one's.
    let media = server.media.expect("media address");
    let mut proxies = Vec::new();
    for _ in 0..4 {
        proxies.push(Proxy::start(media).await);
    }
    let viewer = member(&server, "viewer", &["r2"]).await;
    // Nobody publishes `anchor-cam` yet: the play is answered and waits.
    let mut player: Player = viewer.play("anchor-cam").await.unwrap();
    assert_eq!(player_state(&viewer, "anchor-cam").await, requesting());

    // (publisher's user, room, video codec, how it goes away)
    let rounds = [
        ("anchor", "r1", VideoCodec::Vp8, "stop"),
        ("anchor-2", "r1", VideoCodec::Vp8, "disconnect"),
        ("anchor-3", "r3", VideoCodec::Vp8, "stop"),
        ("anchor-4", "r1", VideoCodec::H264, "stop"),
    ];
    let mut everything = Vec::new();
    let mut boundaries = Vec::new();
    let mut video_pts = Vec::new();
    for (i, (user, room, codec, end)) in rounds.into_iter().enumerate() {
        let anchor = member(&server, user, &[room]).await;
        let tracks = PublishTracks {
            video: Some(codec),
            audio: true,
        };
        let publisher = anchor
            .publish_via("anchor-cam", Some(room), tracks, proxies[i].addr)
            .await
            .unwrap();
        let clip = match codec {
            VideoCodec::H264 => ClipSource::h264().unwrap(),
            _ => ClipSource::vp8().unwrap(),
        };
        let sent = send_clips_with(&publisher, clip, Duration::from_millis(1500)).await;
        assert_eq!(
            player_state(&viewer, "anchor-cam").await,
            playing(),
            "round {i}: the waiting play was not told that media flows"
        );
        // Everything sent arrives before the publisher goes away.
        let got = drain(&mut player, Duration::from_millis(400)).await;
        check_to_end(
            &format!("round {i} ({user} in {room}, {codec:?})"),
            &got,
            &sent,
        );
        // The payloads matched this round's clip; its payload type is the
        // one the player's answer gave that codec.
        let pt = got
            .iter()
            .find(|r| r.kind == MediaKind::Video)
            .map(|r| r.packet.header.payload_type);
        video_pts.push((codec, pt));
        boundaries.push(everything.len());
        everything.extend(got);
        match end {
            "stop" => publisher.stop().await.unwrap(),
            _ => {
                anchor.close();
                drop(publisher);
            }
        }
        assert_eq!(
            player_state(&viewer, "anchor-cam").await,
            requesting(),
            "round {i}: the play did not go back to waiting"
        );
        assert!(
            player.is_connected(),
            "round {i}: the player's connection dropped"
        );
    }
    // One peer connection, one SSRC per kind, sequence numbers consecutive
    // from the first packet to the last, across all four publishers.
    for kind in [MediaKind::Audio, MediaKind::Video] {
        let of_kind: Vec<_> = everything.iter().filter(|r| r.kind == kind).collect();
        let ssrc = of_kind[0].packet.header.ssrc;
        assert!(
            of_kind.iter().all(|r| r.packet.header.ssrc == ssrc),
            "{kind:?} SSRC changed"
        );
        let (seq_step, ts_step) = steps(kind, &everything);
        assert_eq!(seq_step, 1, "{kind:?}: a sequence number was skipped");
        println!("{kind:?}: largest sequence step {seq_step}, largest timestamp step {ts_step}");
    }
    println!("republish boundaries at packets {boundaries:?}");
    let vp8 = video_pts[0].1;
    assert!(
        video_pts[..3].iter().all(|(_, pt)| *pt == vp8),
        "{video_pts:?}"
    );
    assert_ne!(
        video_pts[3].1, vp8,
        "H.264 was sent with VP8's payload type"
    );
    // The play never ended: nothing but the states above was pushed.
    let other: Vec<_> = viewer
        .drain_events()
        .into_iter()
        .filter(|e| is_player_state("anchor-cam")(e))
        .collect();
    assert!(other.is_empty(), "unexpected {other:?}");
    player.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_that_waits_too_long_ends_with_no_play() {
    let server = TestServer::start("playWaitMs = 1500");
    let viewer = member(&server, "viewer", &["r1"]).await;
    let started = Instant::now();
    let _ghost = viewer.play("ghost").await.unwrap();
    assert_eq!(player_state(&viewer, "ghost").await, requesting());
    assert_eq!(
        player_state(&viewer, "ghost").await,
        ("NO_PLAY".to_string(), 1_004_002)
    );
    assert!(started.elapsed() >= Duration::from_millis(1500));
    // The play is gone on the server.
    let r = viewer
        .request("stopPlayingStream", json!({"streamID": "ghost"}))
        .await;
    assert_eq!(code_of(r), 1_004_002);

    // A play whose publisher goes away waits the same limit.
    let anchor = member(&server, "anchor", &["r1"]).await;
    let publisher = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let mut player = viewer.play("cam").await.unwrap();
    let sent = send_clips(&publisher, Duration::from_millis(500)).await;
    let got = drain(&mut player, Duration::from_millis(300)).await;
    check_run(MediaKind::Video, &got, &sent.video);
    publisher.stop().await.unwrap();
    assert_eq!(player_state(&viewer, "cam").await, requesting());
    assert_eq!(
        player_state(&viewer, "cam").await,
        ("NO_PLAY".to_string(), 1_004_002)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_republished_codec_missing_from_the_answer_ends_the_play() {
    let server = TestServer::start("");
    let viewer = member(&server, "viewer", &["r1"]).await;
    let anchor = member(&server, "anchor", &["r1"]).await;
    let options = PlayOptions {
        video_codecs: vec![VideoCodec::Vp8],
        ..PlayOptions::default()
    };
    let vp8 = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let mut player = viewer.play_with("cam", options).await.unwrap();
    let sent = send_clips(&vp8, Duration::from_millis(500)).await;
    let got = drain(&mut player, Duration::from_millis(300)).await;
    check_run(MediaKind::Video, &got, &sent.video);
    vp8.stop().await.unwrap();
    assert_eq!(player_state(&viewer, "cam").await, requesting());
    let h264 = PublishTracks {
        video: Some(VideoCodec::H264),
        audio: true,
    };
    let publisher = anchor.publish("cam", Some("r1"), h264).await.unwrap();
    let sending = tokio::spawn(async move {
        send_clips_with(
            &publisher,
            ClipSource::h264().unwrap(),
            Duration::from_secs(2),
        )
        .await;
        publisher
    });
    assert_eq!(
        player_state(&viewer, "cam").await,
        ("NO_PLAY".to_string(), 1_005_001)
    );
    let r = viewer
        .request("stopPlayingStream", json!({"streamID": "cam"}))
        .await;
    assert_eq!(code_of(r), 1_004_002);
    // No H.264 reached the player (the new publisher's audio may have,
    // until its first video packet showed the codec).
    let late = drain(&mut player, Duration::from_millis(300)).await;
    assert!(
        late.iter().all(|r| r.kind == MediaKind::Audio),
        "H.264 reached a VP8-only player"
    );
    let _ = sending.await;
}

/// Send the clip of `codec` and Opus from `publisher` until `stop` is set.
fn send_until(
    publisher: sfu_client::Publisher,
    codec: VideoCodec,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<sfu_client::Publisher> {
    tokio::spawn(async move {
        let clip = match codec {
            VideoCodec::H264 => ClipSource::h264().unwrap(),
            _ => ClipSource::vp8().unwrap(),
        };
        send_clips_until(&publisher, clip, &stop).await;
        publisher
    })
}

/// A WHEP player (aiortc, which decodes) keeps its one peer connection
/// while the stream is republished from another connection and room, then
/// in H.264: it decodes frames after each republish, and the RTP it got
/// has one SSRC per kind, no skipped sequence number, no timestamp going
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whep_player_waits_and_decodes_across_republishes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let server = TestServer::start_with(&format!("[server]\nmediaWorkers = 2\n[limits]\n{APPS}"));
    let anchor = member(&server, "anchor", &["r1"]).await;
    let first = anchor.publish("cam", Some("r1"), vp8_opus()).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut sending = send_until(first, VideoCodec::Vp8, stop.clone());

    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/aiortc_peer.py");
    let mut watcher = tokio::process::Command::new("python3")
        .arg(&script)
        .arg("whep-watch")
        .arg(format!("http://{}", server.addr))
        .arg("cam")
        .arg(token(1, "whep-viewer"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with aiortc (scripts/test installs it)");
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    let mut frames = 0u64;
    // Read the watcher's lines until it reports at least `target` frames.
    async fn frames_at_least(
        lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
        frames: &mut u64,
        target: u64,
        what: &str,
    ) {
        let read = async {
            while *frames < target {
                let line = lines.next_line().await.unwrap().expect("watcher ended");
                if let Some(n) = line.strip_prefix("frames ") {
                    *frames = n.trim().parse().unwrap();
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .unwrap_or_else(|_| panic!("{what}: aiortc decoded only {frames} frames"));
    }
    frames_at_least(&mut lines, &mut frames, 10, "first publisher").await;

    let rounds = [
        ("anchor-2", "r2", VideoCodec::Vp8),
        ("anchor-3", "r1", VideoCodec::H264),
    ];
    let mut clients = vec![anchor];
    for (user, room, codec) in rounds {
        stop.store(true, Ordering::Relaxed);
        sending.await.unwrap().stop().await.unwrap();
        let before = frames;
        let c = member(&server, user, &[room]).await;
        let tracks = PublishTracks {
            video: Some(codec),
            audio: true,
        };
        let publisher = c.publish("cam", Some(room), tracks).await.unwrap();
        stop.store(false, Ordering::Relaxed);
        sending = send_until(publisher, codec, stop.clone());
        frames_at_least(&mut lines, &mut frames, before + 15, user).await;
        clients.push(c);
    }
    stop.store(true, Ordering::Relaxed);
    sending.await.unwrap().stop().await.unwrap();
    // Closing its stdin makes the watcher report and leave.
    let mut stdin = watcher.stdin.take().unwrap();
    stdin.shutdown().await.unwrap();
    drop(stdin);
    let mut report = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        report.push(line);
    }
    let status = watcher.wait().await.unwrap();
    assert!(status.success(), "watcher failed: {report:?}");
    println!("aiortc: {frames} frames decoded; {report:?}");
    assert!(
        report.iter().any(|l| l == "connection connected"),
        "{report:?}"
    );
    for kind in ["audio", "video"] {
        let line = report
            .iter()
            .find(|l| l.starts_with(&format!("rtp {kind} ")))
            .unwrap_or_else(|| panic!("no {kind} RTP: {report:?}"));
        assert!(line.contains(" ssrcs 1 "), "{line}");
        assert!(line.contains(" max-seq-step 1 "), "{line}");
        assert!(line.ends_with(" ts-backwards 0"), "{line}");
    }
}
