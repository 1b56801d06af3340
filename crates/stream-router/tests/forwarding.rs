//! Integration tests of the forwarding path through the public API:
//! fan-out, zero copy, header rewriting, numbering continuity, keyframe gate,
//! queue isolation, registry semantics and robustness against garbage.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use stream_router::{
    Codec, Feedback, MediaKind, PushSummary, Router, RouterError, RtpPacket, StreamKey, TrackInfo,
    Upstream,
};

fn key(id: &str) -> StreamKey {
    StreamKey::new(7, id)
}

#[test]
fn fan_out_is_zero_copy_and_rewrites_per_player() {
    let mut r = Router::new();
    let s = r.add_stream(key("cam")).unwrap();
    let info = audio_info(0xA0);
    let t = r.add_track(s, info).unwrap();
    let dts: Vec<_> = (0..10)
        .map(|i| {
            r.subscribe(s, MediaKind::Audio, player(1000 + i, 16))
                .unwrap()
        })
        .collect();
    let datagram = Bytes::from(vec![0xabu8; 200]);
    let payload = datagram.slice(20..180);
    let mut pkt = packet(&info, 77, 4242, payload.clone());
    pkt.marker = true;
    pkt.extensions.push(1, datagram.slice(12..13)); // audio level
    pkt.extensions.push(3, datagram.slice(13..15)); // transport-cc: per hop
    pkt.extensions.push(4, datagram.slice(15..16)); // orientation
    pkt.extensions.push(6, datagram.slice(16..17)); // unknown id
    let now = Instant::now();
    let summary = r.push_rtp(t, pkt, now).unwrap();
    assert_eq!(
        summary,
        PushSummary {
            enqueued: 10,
            ..PushSummary::default()
        }
    );
    let out = drain(&mut r);
    assert_eq!(out.len(), 10);
    for (i, (h, p)) in out.iter().enumerate() {
        assert_eq!(*h, dts[i]);
        assert_eq!(p.ssrc, 1000 + i as u32);
        assert_eq!(p.payload_type, 120);
        assert!(p.marker);
        assert!(!p.is_retransmission);
        assert_eq!(p.payload.as_ptr(), payload.as_ptr());
        assert_eq!(p.payload.len(), 160);
        // Audio level 1 -> 9 and orientation 4 -> 10 (same bytes, no copy);
        // transport-cc and the unknown id stripped.
        let ids: Vec<u8> = p.extensions.iter().map(|e| e.id).collect();
        assert_eq!(ids, [9, 10]);
        assert_eq!(
            p.extensions.get(9).unwrap().as_ptr(),
            datagram[12..].as_ptr()
        );
        assert_eq!(
            p.extensions.get(10).unwrap().as_ptr(),
            datagram[15..].as_ptr()
        );
    }
    assert_eq!(r.poll_output(), None);
    let ts = r.track_stats(t).unwrap();
    assert_eq!((ts.packets_received, ts.bytes_received), (1, 160));
    let ds = r.downtrack_stats(dts[3]).unwrap();
    assert_eq!((ds.packets_sent, ds.bytes_sent), (1, 160));
}

#[test]
fn sequence_and_timestamp_wrap_stay_continuous() {
    let mut r = Router::new();
    let s = r.add_stream(key("wrap")).unwrap();
    let info = audio_info(1);
    let t = r.add_track(s, info).unwrap();
    let dt = r.subscribe(s, MediaKind::Audio, player(5, 4)).unwrap();
    let t0 = Instant::now();
    let mut seq: u16 = 65_000;
    let mut ts: u32 = u32::MAX - 20 * STEP;
    let mut prev: Option<(u16, u32)> = None;
    let (mut seq_wraps, mut ts_wraps) = (0, 0);
    // 70 000 packets: the publisher's and the player's sequence numbers
    // both wrap; with this (large) timestamp step, 70 000 x STEP > 2^32 so
    // the player's timestamps wrap too, whatever their random start.
    const STEP: u32 = 100_000;
    for _ in 0..70_000u32 {
        r.push_rtp(t, packet(&info, seq, ts, Bytes::from_static(b"o")), t0)
            .unwrap();
        let out = drain_one(&mut r, dt);
        assert_eq!(out.len(), 1);
        let (s1, t1) = (out[0].sequence_number, out[0].timestamp);
        if let Some((s0, ts0)) = prev {
            assert_eq!(s1, s0.wrapping_add(1));
            assert_eq!(t1, ts0.wrapping_add(STEP));
            seq_wraps += u32::from(s1 < s0);
            ts_wraps += u32::from(t1 < ts0);
        }
        prev = Some((s1, t1));
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(STEP);
    }
    assert_eq!(seq_wraps, 1);
    assert!(ts_wraps >= 1);
    assert_eq!(r.downtrack_stats(dt).unwrap().packets_sent, 70_000);
}

#[test]
fn reordered_packets_keep_their_position() {
    let mut r = Router::new();
    let s = r.add_stream(key("reorder")).unwrap();
    let info = audio_info(1);
    let t = r.add_track(s, info).unwrap();
    let dt = r.subscribe(s, MediaKind::Audio, player(5, 16)).unwrap();
    let now = Instant::now();
    for seq in [65534u16, 65535, 1, 0, 2] {
        let ts = u32::from(seq.wrapping_sub(65534)) * 960;
        r.push_rtp(t, packet(&info, seq, ts, Bytes::new()), now)
            .unwrap();
    }
    let out = drain_one(&mut r, dt);
    let base = out[0].sequence_number;
    let rel: Vec<u16> = out
        .iter()
        .map(|p| p.sequence_number.wrapping_sub(base))
        .collect();
    assert_eq!(rel, [0, 1, 3, 2, 4]);
    let ts0 = out[0].timestamp;
    let rel_ts: Vec<u32> = out.iter().map(|p| p.timestamp.wrapping_sub(ts0)).collect();
    assert_eq!(rel_ts, [0, 960, 3 * 960, 2 * 960, 4 * 960]);
    // A packet older than the first one forwarded is dropped, not renumbered
    // on top of earlier output.
    let late = r
        .push_rtp(t, packet(&info, 65533, 0, Bytes::new()), now)
        .unwrap();
    assert_eq!(late.late, 1);
    assert_eq!(r.downtrack_stats(dt).unwrap().dropped_late, 1);
    assert!(drain(&mut r).is_empty());
}

#[test]
fn publisher_switch_continues_player_numbering() {
    let mut r = Router::new();
    let s = r.add_stream(key("switch")).unwrap();
    let a = audio_info(0x1111);
    let ta = r.add_track(s, a).unwrap();
    let dt = r.subscribe(s, MediaKind::Audio, player(9, 64)).unwrap();
    let t0 = Instant::now();
    for i in 0..5u16 {
        r.push_rtp(
            ta,
            packet(&a, 1000 + i, 5000 + u32::from(i) * 960, Bytes::new()),
            t0,
        )
        .unwrap();
    }
    let before = drain_one(&mut r, dt);
    let last = before.last().unwrap().clone();

    // New publisher track under the same stream, 100 ms later.
    let b = audio_info(0x2222);
    let tb = r.add_track(s, b).unwrap();
    assert_eq!(
        r.push_rtp(ta, packet(&a, 1005, 0, Bytes::new()), t0),
        Err(RouterError::UnknownTrack)
    );
    let t1 = t0 + Duration::from_millis(100);
    for i in 0..3u16 {
        r.push_rtp(
            tb,
            packet(&b, 40_000 + i, 123_456 + u32::from(i) * 960, Bytes::new()),
            t1,
        )
        .unwrap();
    }
    let after = drain_one(&mut r, dt);
    assert_eq!(after.len(), 3);
    assert_eq!(after[0].ssrc, 9);
    assert_eq!(
        after[0].sequence_number,
        last.sequence_number.wrapping_add(1)
    );
    assert_eq!(after[0].timestamp, last.timestamp.wrapping_add(4800));
    assert_eq!(
        after[2].sequence_number,
        last.sequence_number.wrapping_add(3)
    );
    assert_eq!(
        after[2].timestamp,
        last.timestamp.wrapping_add(4800 + 2 * 960)
    );

    // Remove the stream: the down-track survives, detached, and is
    // re-attached when the key is published again.
    r.remove_stream(s).unwrap();
    assert_eq!(r.remove_stream(s), Err(RouterError::UnknownStream));
    assert_eq!(r.find_stream(&key("switch")), None);
    assert_eq!(r.downtrack_stream(dt), None);
    assert_eq!(
        r.push_rtp(tb, packet(&b, 40_003, 0, Bytes::new()), t1),
        Err(RouterError::UnknownTrack)
    );
    let s2 = r.add_stream(key("switch")).unwrap();
    assert_eq!(r.downtrack_stream(dt), Some(s2));
    assert_eq!(
        r.subscribers(s2, MediaKind::Audio).collect::<Vec<_>>(),
        [dt]
    );
    let c = audio_info(0x3333);
    let tc = r.add_track(s2, c).unwrap();
    // Same instant as the last packet: timestamp still moves forward by 1.
    r.push_rtp(tc, packet(&c, 7, 99, Bytes::new()), t1).unwrap();
    let again = drain_one(&mut r, dt);
    assert_eq!(
        again[0].sequence_number,
        after[2].sequence_number.wrapping_add(1)
    );
    assert_eq!(again[0].timestamp, after[2].timestamp.wrapping_add(1));
}

#[test]
fn video_keyframe_gate_and_late_joiner() {
    let mut r = Router::new();
    let s = r.add_stream(key("gate")).unwrap();
    let v = video_info(0xBEEF);
    let t = r.add_track(s, v).unwrap();
    let t0 = Instant::now();
    assert_eq!(r.poll_upstream(t0), None);
    let d1 = r.subscribe(s, MediaKind::Video, player(1, 64)).unwrap();
    // Subscribing a video down-track asks the publisher for a keyframe.
    assert_eq!(
        r.poll_upstream(t0),
        Some((t, Upstream::Pli { media_ssrc: 0xBEEF }))
    );
    let push = |r: &mut Router, seq: u16, ts: u32, p: &'static [u8]| {
        r.push_rtp(t, packet(&v, seq, ts, Bytes::from_static(p)), t0)
            .unwrap()
    };
    assert_eq!(push(&mut r, 10, 0, VP8_DELTA).gated, 1);
    assert_eq!(push(&mut r, 11, 0, VP8_CONT).gated, 1);
    assert!(drain(&mut r).is_empty());
    assert_eq!(push(&mut r, 12, 3000, VP8_KEY).enqueued, 1);
    assert_eq!(push(&mut r, 13, 3000, VP8_CONT).enqueued, 1);
    assert_eq!(push(&mut r, 14, 6000, VP8_DELTA).enqueued, 1);
    let out = drain_one(&mut r, d1);
    assert_eq!(out.len(), 3);
    assert_eq!(&out[0].payload[..], VP8_KEY);
    assert_eq!(out[1].timestamp, out[0].timestamp);
    assert_eq!(out[2].timestamp, out[0].timestamp.wrapping_add(3000));
    assert_eq!(r.downtrack_stats(d1).unwrap().dropped_keyframe_gate, 2);

    // A late joiner waits for the next keyframe; the first player doesn't.
    let d2 = r.subscribe(s, MediaKind::Video, player(2, 64)).unwrap();
    let sum = push(&mut r, 15, 9000, VP8_DELTA);
    assert_eq!((sum.enqueued, sum.gated), (1, 1));
    let sum = push(&mut r, 16, 12000, VP8_KEY);
    assert_eq!((sum.enqueued, sum.gated), (2, 0));
    let out2 = drain_one(&mut r, d2);
    assert_eq!(out2.len(), 1);
    assert_eq!(&out2[0].payload[..], VP8_KEY);
    assert_eq!(drain_one(&mut r, d1).len(), 2);
    assert_eq!(r.track_stats(t).unwrap().keyframes, 2);
}

#[test]
fn video_publisher_switch_regates_and_requests_keyframe() {
    let mut r = Router::new();
    let s = r.add_stream(key("vswitch")).unwrap();
    let v1 = video_info(1);
    let t1 = r.add_track(s, v1).unwrap();
    let dt = r.subscribe(s, MediaKind::Video, player(50, 64)).unwrap();
    let now = Instant::now();
    assert!(r.poll_upstream(now).is_some());
    r.push_rtp(t1, packet(&v1, 100, 0, Bytes::from_static(VP8_KEY)), now)
        .unwrap();
    r.push_rtp(
        t1,
        packet(&v1, 101, 3000, Bytes::from_static(VP8_DELTA)),
        now,
    )
    .unwrap();
    let last = drain_one(&mut r, dt).pop().unwrap();
    let v2 = video_info(2);
    let t2 = r.add_track(s, v2).unwrap();
    // The replacement track gets a keyframe request right away.
    assert_eq!(
        r.poll_upstream(now),
        Some((t2, Upstream::Pli { media_ssrc: 2 }))
    );
    let later = now + Duration::from_millis(40);
    let sum = r
        .push_rtp(
            t2,
            packet(&v2, 9, 777, Bytes::from_static(VP8_DELTA)),
            later,
        )
        .unwrap();
    assert_eq!(sum.gated, 1);
    r.push_rtp(t2, packet(&v2, 10, 777, Bytes::from_static(VP8_KEY)), later)
        .unwrap();
    let out = drain_one(&mut r, dt);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].sequence_number, last.sequence_number.wrapping_add(1));
    assert_eq!(out[0].timestamp, last.timestamp.wrapping_add(3600)); // 40 ms @ 90 kHz
}

#[test]
fn full_queue_affects_only_that_player() {
    let mut r = Router::new();
    let s = r.add_stream(key("slow")).unwrap();
    let info = audio_info(3);
    let t = r.add_track(s, info).unwrap();
    let fast1 = r.subscribe(s, MediaKind::Audio, player(1, 8)).unwrap();
    let slow = r.subscribe(s, MediaKind::Audio, player(2, 4)).unwrap();
    let fast2 = r.subscribe(s, MediaKind::Audio, player(3, 8)).unwrap();
    let now = Instant::now();
    let mut got1 = Vec::new();
    let mut got2 = Vec::new();
    for i in 0..100u16 {
        let sum = r
            .push_rtp(t, packet(&info, i, u32::from(i), Bytes::new()), now)
            .unwrap();
        let expect_drop = u32::from(i >= 4);
        assert_eq!(
            (sum.enqueued, sum.dropped_queue),
            (3 - expect_drop, expect_drop)
        );
        got1.extend(drain_one(&mut r, fast1));
        got2.extend(drain_one(&mut r, fast2));
    }
    for got in [&got1, &got2] {
        assert_eq!(got.len(), 100);
        let base = got[0].sequence_number;
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, p)| p.sequence_number == base.wrapping_add(i as u16)));
    }
    assert_eq!(r.pending(slow), 4);
    let st = r.downtrack_stats(slow).unwrap();
    assert_eq!((st.dropped_queue, st.packets_sent), (96, 0));
    let slow_out = drain(&mut r);
    assert_eq!(slow_out.len(), 4);
    assert!(slow_out.iter().all(|(h, _)| *h == slow));
    assert_eq!(r.downtrack_stats(fast1).unwrap().dropped_queue, 0);
    assert_eq!(r.track_stats(t).unwrap().packets_received, 100);
    // After draining, the slow player receives again (with a visible gap).
    r.push_rtp(t, packet(&info, 100, 100, Bytes::new()), now)
        .unwrap();
    let next = drain_one(&mut r, slow);
    assert_eq!(
        next[0]
            .sequence_number
            .wrapping_sub(slow_out[3].1.sequence_number),
        97
    );
}

#[test]
fn poll_output_serves_every_ready_downtrack() {
    let mut r = Router::new();
    let s = r.add_stream(key("ready")).unwrap();
    let a = audio_info(1);
    let v = TrackInfo {
        codec: Codec::Other, // not gated
        ..video_info(2)
    };
    let ta = r.add_track(s, a).unwrap();
    let tv = r.add_track(s, v).unwrap();
    let da = r.subscribe(s, MediaKind::Audio, player(10, 8)).unwrap();
    let dv = r.subscribe(s, MediaKind::Video, player(11, 8)).unwrap();
    let now = Instant::now();
    r.push_rtp(ta, packet(&a, 1, 0, Bytes::new()), now).unwrap();
    r.push_rtp(tv, packet(&v, 1, 0, Bytes::new()), now).unwrap();
    r.push_rtp(ta, packet(&a, 2, 0, Bytes::new()), now).unwrap();
    let order: Vec<_> = drain(&mut r)
        .into_iter()
        .map(|(h, p)| (h, p.ssrc))
        .collect();
    assert_eq!(order, [(da, 10), (da, 10), (dv, 11)]);
    // poll_downtrack empties a queue while it is listed as ready.
    r.push_rtp(tv, packet(&v, 2, 0, Bytes::new()), now).unwrap();
    assert!(r.poll_downtrack(dv).is_some());
    assert_eq!(r.poll_output(), None);
    // Unsubscribing removes queued packets from the ready list.
    r.push_rtp(ta, packet(&a, 3, 0, Bytes::new()), now).unwrap();
    r.unsubscribe(da).unwrap();
    assert_eq!(r.poll_output(), None);
    assert_eq!(r.unsubscribe(da), Err(RouterError::UnknownDownTrack));
    assert_eq!(r.poll_downtrack(da), None);
    assert_eq!(r.counts(), (1, 2, 1));
}

#[test]
fn registry_by_key_and_subscription_lifecycle() {
    let mut r = Router::new();
    let k = key("lobby");
    // Playing before publishing: the down-track waits for the key.
    let waiting = r.subscribe_key(&k, MediaKind::Audio, player(1, 8));
    assert_eq!(r.downtrack_stream(waiting), None);
    let s = r.add_stream(k.clone()).unwrap();
    assert_eq!(r.add_stream(k.clone()), Err(RouterError::StreamExists));
    assert_eq!(r.find_stream(&k), Some(s));
    assert_eq!(r.stream_key(s), Some(&k));
    assert_eq!(r.find_stream(&StreamKey::new(8, "lobby")), None);
    assert_eq!(r.downtrack_stream(waiting), Some(s));
    let direct = r.subscribe_key(&k, MediaKind::Audio, player(2, 8));
    assert_eq!(r.downtrack_stream(direct), Some(s));

    // attach() moves a player to another stream with continuous numbering.
    let other = r.add_stream(key("stage")).unwrap();
    let a1 = audio_info(100);
    let a2 = audio_info(200);
    let t1 = r.add_track(s, a1).unwrap();
    let t2 = r.add_track(other, a2).unwrap();
    let now = Instant::now();
    r.push_rtp(t1, packet(&a1, 5, 0, Bytes::new()), now)
        .unwrap();
    let first = drain_one(&mut r, direct).pop().unwrap();
    drain(&mut r);
    r.attach(direct, other).unwrap();
    assert_eq!(
        r.subscribers(s, MediaKind::Audio).collect::<Vec<_>>(),
        [waiting]
    );
    r.push_rtp(t2, packet(&a2, 900, 0, Bytes::new()), now)
        .unwrap();
    let moved = drain_one(&mut r, direct).pop().unwrap();
    assert_eq!(moved.sequence_number, first.sequence_number.wrapping_add(1));
    assert_eq!(drain(&mut r).len(), 0);

    // Stale handles are errors, never panics.
    r.remove_stream(other).unwrap();
    assert_eq!(r.add_track(other, a2), Err(RouterError::UnknownStream));
    assert_eq!(
        r.subscribe(other, MediaKind::Audio, player(3, 1)),
        Err(RouterError::UnknownStream)
    );
    assert_eq!(r.attach(direct, other), Err(RouterError::UnknownStream));
    assert_eq!(r.remove_track(t2), Err(RouterError::UnknownTrack));
    assert_eq!(r.track_info(t2), None);
    assert_eq!(r.stream_track(other, MediaKind::Audio), None);
    assert_eq!(r.stream_track(s, MediaKind::Audio), Some(t1));
    r.remove_track(t1).unwrap();
    assert_eq!(r.stream_track(s, MediaKind::Audio), None);
    r.unsubscribe(direct).unwrap();
    assert_eq!(r.attach(direct, s), Err(RouterError::UnknownDownTrack));
    assert_eq!(
        r.handle_player_feedback(direct, Feedback::Pli, now),
        Err(RouterError::UnknownDownTrack)
    );
    // Re-adding the removed key still works (nobody is waiting any more).
    assert!(r.add_stream(key("stage")).is_ok());
}

#[test]
fn foreign_and_duplicate_packets_are_not_forwarded() {
    let mut r = Router::new();
    let s = r.add_stream(key("dup")).unwrap();
    let info = audio_info(1);
    let t = r.add_track(s, info).unwrap();
    r.subscribe(s, MediaKind::Audio, player(2, 8)).unwrap();
    let now = Instant::now();
    let mut p = packet(&info, 1, 0, Bytes::new());
    assert_eq!(r.push_rtp(t, p.clone(), now).unwrap().enqueued, 1);
    assert!(r.push_rtp(t, p.clone(), now).unwrap().duplicate);
    p.ssrc = 99;
    assert!(r.push_rtp(t, p.clone(), now).unwrap().rejected);
    p.ssrc = 1;
    p.payload_type = 97;
    p.sequence_number = 2;
    assert!(r.push_rtp(t, p, now).unwrap().rejected);
    assert_eq!(drain(&mut r).len(), 1);
    let st = r.track_stats(t).unwrap();
    assert_eq!((st.packets_received, st.duplicates, st.rejected), (1, 1, 2));
}

#[test]
fn garbage_input_never_panics() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut r = Router::new();
    let s = r.add_stream(key("garbage")).unwrap();
    let infos = [audio_info(1), video_info(2)];
    let mut tracks = [
        r.add_track(s, infos[0]).unwrap(),
        r.add_track(s, infos[1]).unwrap(),
    ];
    let codecs = [
        Codec::Vp8,
        Codec::Vp9,
        Codec::H264,
        Codec::Av1,
        Codec::Other,
    ];
    let mut dts = Vec::new();
    for i in 0..6u32 {
        let kind = if i % 2 == 0 {
            MediaKind::Audio
        } else {
            MediaKind::Video
        };
        dts.push(r.subscribe(s, kind, player(i, (i as usize) % 3)).unwrap());
    }
    let t0 = Instant::now();
    for step in 0..20_000u64 {
        let now = t0 + Duration::from_millis(rng.below(100_000));
        let k = rng.below(2) as usize;
        let mut p = RtpPacket {
            marker: rng.below(2) == 0,
            payload_type: if rng.below(4) == 0 {
                rng.next_u64() as u8
            } else {
                infos[k].payload_type
            },
            sequence_number: rng.next_u64() as u16,
            timestamp: rng.next_u64() as u32,
            ssrc: if rng.below(8) == 0 {
                rng.next_u64() as u32
            } else {
                infos[k].ssrc
            },
            extensions: Default::default(),
            payload: Bytes::new(),
        };
        let len = rng.below(12) as usize;
        p.payload = Bytes::from(rng.bytes(len));
        for _ in 0..rng.below(12) {
            p.extensions
                .push(rng.next_u64() as u8, Bytes::from(rng.bytes(3)));
        }
        let _ = r.push_rtp(tracks[k], p, now);
        let dt = dts[rng.below(dts.len() as u64) as usize];
        let nacks: Vec<u16> = (0..rng.below(40)).map(|_| rng.next_u64() as u16).collect();
        let fb = match rng.below(3) {
            0 => Feedback::Pli,
            1 => Feedback::Fir,
            _ => Feedback::Nack(&nacks),
        };
        let _ = r.handle_player_feedback(dt, fb, now);
        let _ = r.sender_report(tracks[k], dt, rng.next_u64(), rng.next_u64() as u32);
        while r.poll_upstream(now).is_some() {}
        let _ = r.poll_timeout();
        if rng.below(3) == 0 {
            drain(&mut r);
        }
        if step % 5000 == 4999 {
            // Replace the video track with a different codec mid-stream.
            let info = TrackInfo {
                codec: codecs[(step / 5000) as usize % codecs.len()],
                ..infos[1]
            };
            tracks[1] = r.add_track(s, info).unwrap();
        }
    }
    // Garbage must not have corrupted bookkeeping: the queues drain fully.
    drain(&mut r);
    assert!(dts.iter().all(|&d| r.pending(d) == 0));
}

#[test]
fn keys_are_waited_for_only_while_down_tracks_wait() {
    let mut r = Router::new();
    // A stream nobody plays leaves nothing behind.
    let s = r.add_stream(key("alone")).unwrap();
    r.remove_stream(s).unwrap();
    assert_eq!(r.awaited_keys(), 0);
    // A played stream's down-tracks wait under its key until they go.
    let s = r.add_stream(key("played")).unwrap();
    let dt = r.subscribe_key(&key("played"), MediaKind::Audio, player(5, 8));
    r.remove_stream(s).unwrap();
    assert!(r.is_awaited(&key("played")));
    assert_eq!(r.awaited_keys(), 1);
    r.unsubscribe(dt).unwrap();
    assert_eq!(r.awaited_keys(), 0);
    assert_eq!(r.counts(), (0, 0, 0));
}

/// H.264 with SPS/PPS in band: a late joiner starts at the SPS of the
/// next keyframe, never at its IDR (which would leave the decoder without
/// parameter sets); a stream without in-band SPS starts at its IDR.
#[test]
fn h264_late_joiner_gets_sps_and_pps_before_the_idr() {
    const SPS: &[u8] = &[0x67, 0x42, 0xe0, 0x1f];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
    const IDR_START: &[u8] = &[0x7c, 0x85, 0x88]; // FU-A, S=1, IDR
    const IDR_END: &[u8] = &[0x7c, 0x45, 0x00]; // FU-A, E=1
    const DELTA: &[u8] = &[0x41, 0x9a];
    let mut r = Router::new();
    let s = r.add_stream(key("h264")).unwrap();
    let v = TrackInfo {
        codec: Codec::H264,
        ..video_info(0x4264)
    };
    let t = r.add_track(s, v).unwrap();
    let t0 = Instant::now();
    let push = |r: &mut Router, seq: u16, ts: u32, p: &'static [u8]| {
        r.push_rtp(t, packet(&v, seq, ts, Bytes::from_static(p)), t0)
            .unwrap()
    };
    push(&mut r, 1, 0, SPS);
    push(&mut r, 2, 0, PPS);
    // The player subscribes between the SPS and the IDR of one keyframe.
    let d = r.subscribe(s, MediaKind::Video, player(1, 64)).unwrap();
    assert_eq!(push(&mut r, 3, 0, IDR_START).gated, 1);
    assert_eq!(push(&mut r, 4, 0, IDR_END).gated, 1);
    assert_eq!(push(&mut r, 5, 3000, DELTA).gated, 1);
    for (seq, p) in [(6, SPS), (7, PPS), (8, IDR_START), (9, IDR_END)] {
        assert_eq!(push(&mut r, seq, 6000, p).enqueued, 1);
    }
    let out = drain_one(&mut r, d);
    let firsts: Vec<&[u8]> = out.iter().map(|p| &p.payload[..]).collect();
    assert_eq!(firsts, [SPS, PPS, IDR_START, IDR_END]);
    // One keyframe per access unit, not one per SPS and one per IDR.
    assert_eq!(r.track_stats(t).unwrap().keyframes, 2);

    // An IDR with no SPS before it (parameter sets out of band) opens the
    // gate by itself.
    let d2 = r.subscribe(s, MediaKind::Video, player(2, 64)).unwrap();
    assert_eq!(push(&mut r, 10, 9000, IDR_START).gated, 0);
    assert_eq!(&drain_one(&mut r, d2)[0].payload[..], IDR_START);
}

/// `Router::totals` keeps every counter of removed tracks and down-tracks.
#[test]
fn totals_outlive_removed_tracks_and_downtracks() {
    let mut r = Router::new();
    let s = r.add_stream(key("totals")).unwrap();
    let a = audio_info(0xA0);
    let t = r.add_track(s, a).unwrap();
    let t0 = Instant::now();
    let d1 = r.subscribe(s, MediaKind::Audio, player(1, 64)).unwrap();
    let d2 = r.subscribe(s, MediaKind::Audio, player(2, 64)).unwrap();
    for seq in 0..5u16 {
        r.push_rtp(
            t,
            packet(&a, seq, u32::from(seq) * 960, Bytes::from_static(b"opus")),
            t0,
        )
        .unwrap();
    }
    // A foreign SSRC and a duplicate are counted, not forwarded.
    let _ = r.push_rtp(
        t,
        packet(&audio_info(0xBAD), 9, 0, Bytes::from_static(b"x")),
        t0,
    );
    let _ = r.push_rtp(t, packet(&a, 4, 3840, Bytes::from_static(b"opus")), t0);
    assert_eq!(drain(&mut r).len(), 10);
    r.unsubscribe(d1).unwrap();
    let before = r.totals();
    assert_eq!(before.ingress.packets_received, 5);
    assert_eq!(before.ingress.bytes_received, 20);
    assert_eq!((before.ingress.rejected, before.ingress.duplicates), (1, 1));
    assert_eq!(before.egress.packets_sent, 10);
    assert_eq!(before.egress.bytes_sent, 40);
    r.remove_track(t).unwrap();
    r.unsubscribe(d2).unwrap();
    assert_eq!(r.totals(), before);
    assert_eq!(r.counts(), (1, 0, 0));
}
