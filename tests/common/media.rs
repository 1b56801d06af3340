//! Media helpers for end-to-end tests: log in with the Rust client, send the
//! test clips in real time while recording exactly what was sent, and check
//! what a player received against it.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use sfu_client::{Client, ClipSource, MediaKind, Player, PublishTracks, Publisher, Received};

use super::{token, TestServer};

/// A client of app 1 logged into `rooms` (multi-room when more than one).
pub async fn member(server: &TestServer, user: &str, rooms: &[&str]) -> Client {
    member_logins(server, user, rooms).await.0
}

/// [`member`], also returning each `loginRoom` result, in `rooms` order.
pub async fn member_logins(
    server: &TestServer,
    user: &str,
    rooms: &[&str],
) -> (Client, Vec<serde_json::Value>) {
    let client = Client::connect(&server.addr, 1).await.expect("connect");
    if rooms.len() > 1 {
        client
            .enable_multi_room(true)
            .await
            .expect("enableMultiRoom");
    }
    let mut results = Vec::new();
    for room in rooms {
        let result = client
            .login_room(room, &token(1, user), user, user, true)
            .await
            .expect("login");
        results.push(result);
    }
    (client, results)
}

/// Whether the server's process is still running.
pub fn server_running(server: &mut TestServer) -> bool {
    matches!(server.child.try_wait(), Ok(None))
}

/// What a publisher sent, per kind, in order.
#[derive(Default, Debug)]
pub struct Sent {
    pub video: Vec<Bytes>,
    pub audio: Vec<Bytes>,
    /// Index into `video` of each keyframe's first packet.
    pub video_keyframes: Vec<usize>,
}

/// Send VP8 video and Opus audio from the clips in real time for `duration`.
pub async fn send_clips(publisher: &Publisher, duration: Duration) -> Sent {
    send_clips_with(publisher, ClipSource::vp8().expect("vp8 clip"), duration).await
}

/// Send `video` (looped) and Opus audio in real time for `duration`.
pub async fn send_clips_with(publisher: &Publisher, video: ClipSource, duration: Duration) -> Sent {
    send_clips_while(publisher, video, |at| at < duration).await
}

/// Send `video` (looped) and Opus audio in real time until `stop` is set:
/// one continuous RTP stream per kind, however long.
pub async fn send_clips_until(
    publisher: &Publisher,
    video: ClipSource,
    stop: &std::sync::atomic::AtomicBool,
) -> Sent {
    send_clips_while(publisher, video, |_| {
        !stop.load(std::sync::atomic::Ordering::Relaxed)
    })
    .await
}

/// Send `video` (looped) and Opus audio in real time while `go(media time)`.
async fn send_clips_while(
    publisher: &Publisher,
    video: ClipSource,
    go: impl Fn(Duration) -> bool,
) -> Sent {
    let mut video = video.looped();
    let mut audio = ClipSource::opus().expect("opus clip").looped();
    let mut sent = Sent::default();
    let start = tokio::time::Instant::now();
    let (mut video_at, mut audio_at) = (Duration::ZERO, Duration::ZERO);
    while go(video_at.min(audio_at)) {
        if video_at <= audio_at {
            let Some(frame) = video.next() else { break };
            tokio::time::sleep_until(start + video_at).await;
            if frame.keyframe {
                sent.video_keyframes.push(sent.video.len());
            }
            for p in frame.packets {
                sent.video.push(p.payload.clone());
                publisher
                    .write_rtp(MediaKind::Video, p)
                    .await
                    .expect("write video");
            }
            video_at += frame.duration;
        } else {
            let Some(frame) = audio.next() else { break };
            tokio::time::sleep_until(start + audio_at).await;
            for p in frame.packets {
                sent.audio.push(p.payload.clone());
                publisher
                    .write_rtp(MediaKind::Audio, p)
                    .await
                    .expect("write audio");
            }
            audio_at += frame.duration;
        }
    }
    sent
}

/// Everything a player has received so far, waiting `settle` for stragglers.
pub async fn drain(player: &mut Player, settle: Duration) -> Vec<Received> {
    let mut got = Vec::new();
    while let Some(r) = player.recv_timeout(settle).await {
        got.push(r);
    }
    got
}

/// Check one kind of received packets against what was sent: one SSRC,
/// sequence numbers consecutive, and payloads a contiguous run of the sent
/// ones (so identical bytes, in order, nothing lost or duplicated).
/// Returns the index in `sent` where the run starts.
pub fn check_run(kind: MediaKind, received: &[Received], sent: &[Bytes]) -> usize {
    let got: Vec<&Received> = received.iter().filter(|r| r.kind == kind).collect();
    assert!(!got.is_empty(), "no {kind:?} packets received");
    let ssrc = got[0].packet.header.ssrc;
    assert!(
        got.iter().all(|r| r.packet.header.ssrc == ssrc),
        "{kind:?} SSRC changed"
    );
    for w in got.windows(2) {
        assert_eq!(
            w[1].packet.header.sequence_number,
            w[0].packet.header.sequence_number.wrapping_add(1),
            "{kind:?} sequence numbers not consecutive"
        );
    }
    let first = &got[0].packet.payload;
    let start = sent
        .iter()
        .position(|s| s == first)
        .unwrap_or_else(|| panic!("first {kind:?} payload was never sent"));
    for (i, r) in got.iter().enumerate() {
        assert_eq!(
            Some(&r.packet.payload),
            sent.get(start + i),
            "{kind:?} packet {i} differs from what was sent"
        );
    }
    start
}

/// [`check_run`] for both kinds, and more: the video run starts at a
/// keyframe and both runs go on to the last packet sent, so the player got
/// everything after its first keyframe. `who` names the player in failures.
/// The clips loop, so a payload may have been sent more than once (the
/// run of a late player starts in a later lap): the run may start at any
/// sent copy of its first payload, and [`check_to_end`] takes the latest
/// one from which every payload matches.
pub fn check_to_end(who: &str, received: &[Received], sent: &Sent) {
    let video = aligned_run(who, MediaKind::Video, received, &sent.video);
    assert!(
        sent.video_keyframes.contains(&video),
        "{who}: video starts at packet {video}, not at a keyframe"
    );
    let audio = aligned_run(who, MediaKind::Audio, received, &sent.audio);
    for (kind, start, all) in [
        (MediaKind::Video, video, &sent.video),
        (MediaKind::Audio, audio, &sent.audio),
    ] {
        let got = received.iter().filter(|r| r.kind == kind).count();
        assert_eq!(
            start + got,
            all.len(),
            "{who}: {kind:?} stops {} packets before the end",
            all.len() - start - got
        );
    }
}

/// [`check_run`]'s checks, the run starting at whichever sent copy of its
/// first payload makes every payload match. Returns that start.
fn aligned_run(who: &str, kind: MediaKind, received: &[Received], sent: &[Bytes]) -> usize {
    let got: Vec<&Received> = received.iter().filter(|r| r.kind == kind).collect();
    assert!(!got.is_empty(), "{who}: no {kind:?} packets received");
    let ssrc = got[0].packet.header.ssrc;
    assert!(
        got.iter().all(|r| r.packet.header.ssrc == ssrc),
        "{who}: {kind:?} SSRC changed"
    );
    for (i, w) in got.windows(2).enumerate() {
        assert_eq!(
            w[1].packet.header.sequence_number,
            w[0].packet.header.sequence_number.wrapping_add(1),
            "{who}: {kind:?} sequence numbers not consecutive at packet {i}"
        );
    }
    let matches_from = |start: usize| {
        got.iter()
            .enumerate()
            .all(|(i, r)| sent.get(start + i) == Some(&r.packet.payload))
    };
    // The latest start: a run that goes on to the end is in the last lap.
    (0..sent.len())
        .rev()
        .find(|&start| matches_from(start))
        .unwrap_or_else(|| {
            panic!(
                "{who}: the {} {kind:?} packets are no run of what was sent",
                got.len()
            )
        })
}

pub fn vp8_opus() -> PublishTracks {
    PublishTracks::vp8_opus()
}

/// Send the clips from `publisher` in the background for `duration`.
pub fn spawn_sending(
    publisher: Publisher,
    duration: Duration,
) -> tokio::task::JoinHandle<(Publisher, Sent)> {
    tokio::spawn(async move {
        let sent = send_clips(&publisher, duration).await;
        (publisher, sent)
    })
}

/// Packets a player receives within `window`.
pub async fn count_for(player: &mut Player, window: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + window;
    let mut n = 0;
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, player.recv()).await {
        n += 1;
    }
    n
}

/// The `code` of a failed client call.
pub fn code_of<T: std::fmt::Debug>(r: sfu_client::Result<T>) -> u64 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("not a server error: {e}")),
    }
}

/// Like [`check_run`] but for a player that may get packets twice or out
/// of order (retransmissions): deduplicated and sorted by sequence number,
/// the payloads must be a contiguous run of what was sent. Returns how
/// many distinct packets arrived.
pub fn check_complete(kind: MediaKind, received: &[Received], sent: &[Bytes]) -> usize {
    let mut got: Vec<&Received> = received.iter().filter(|r| r.kind == kind).collect();
    assert!(!got.is_empty(), "no {kind:?} packets received");
    let first = got[0].packet.header.sequence_number;
    got.sort_by_key(|r| r.packet.header.sequence_number.wrapping_sub(first));
    got.dedup_by_key(|r| r.packet.header.sequence_number);
    for w in got.windows(2) {
        assert_eq!(
            w[1].packet.header.sequence_number,
            w[0].packet.header.sequence_number.wrapping_add(1),
            "{kind:?}: a gap was never filled"
        );
    }
    let start = sent
        .iter()
        .position(|s| *s == got[0].packet.payload)
        .unwrap_or_else(|| panic!("first {kind:?} payload was never sent"));
    for (i, r) in got.iter().enumerate() {
        assert_eq!(
            Some(&r.packet.payload),
            sent.get(start + i),
            "{kind:?} packet {i} differs"
        );
    }
    got.len()
}
