//! Integration tests of the feedback paths: NACK retransmission and its rate
//! limit, PLI/FIR coalescing timing, keyframe-request retries and
//! sender-report translation.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use stream_router::{
    Feedback, FeedbackSummary, MediaKind, OutPacket, Router, StreamKey, Upstream,
    KEYFRAME_RETRY_INTERVAL, NACK_RETRANSMIT_INTERVAL, PLI_INTERVAL, VIDEO_CACHE_PACKETS,
};

fn payload(i: u16) -> Bytes {
    Bytes::from(vec![0x10, 0x9d, i as u8, (i >> 8) as u8])
}

#[test]
fn nack_retransmits_with_identical_header() {
    let mut r = Router::new();
    let s = r.add_stream(StreamKey::new(1, "nack")).unwrap();
    let v = video_info(0x51);
    let t = r.add_track(s, v).unwrap();
    let dt = r.subscribe(s, MediaKind::Video, player(0x99, 64)).unwrap();
    let other = r.subscribe(s, MediaKind::Video, player(0x98, 64)).unwrap();
    let t0 = Instant::now();
    r.push_rtp(t, packet(&v, 65530, 0, Bytes::from_static(VP8_KEY)), t0)
        .unwrap();
    for i in 1..20u16 {
        let mut p = packet(
            &v,
            65530u16.wrapping_add(i),
            u32::from(i) * 3000,
            payload(i),
        );
        p.extensions.push(4, Bytes::from_static(&[3])); // orientation
        r.push_rtp(t, p, t0).unwrap();
    }
    let sent: Vec<OutPacket> = drain_one(&mut r, dt);
    drain(&mut r);
    assert_eq!(sent.len(), 20);
    let base = sent[0].sequence_number;
    let want = [base.wrapping_add(3), base.wrapping_add(12)];
    let bogus = [
        base.wrapping_sub(1),  // before the first forwarded packet
        base.wrapping_add(20), // not sent yet
        base.wrapping_add(3000),
    ];
    let nacks = [want[0], bogus[0], want[1], bogus[1], bogus[2]];
    let sum = r
        .handle_player_feedback(dt, Feedback::Nack(&nacks), t0)
        .unwrap();
    assert_eq!(
        sum,
        FeedbackSummary {
            retransmitted: 2,
            rate_limited: 0,
            ignored: 3,
            keyframe_requested: false
        }
    );
    let resent: Vec<_> = drain(&mut r);
    assert_eq!(resent.len(), 2);
    for ((h, p), seq) in resent.iter().zip(want) {
        assert_eq!(*h, dt);
        let orig = &sent[usize::from(seq.wrapping_sub(base))];
        assert!(p.is_retransmission);
        let mut as_orig = p.clone();
        as_orig.is_retransmission = false;
        assert_eq!(&as_orig, orig);
        assert_eq!(p.payload.as_ptr(), orig.payload.as_ptr());
    }
    // The other player got nothing.
    assert_eq!(r.pending(other), 0);

    // The same numbers again right away are rate limited; after the
    // interval they are resent.
    let sum = r.handle_player_feedback(dt, Feedback::Nack(&want), t0 + Duration::from_millis(50));
    assert_eq!(sum.unwrap().rate_limited, 2);
    assert!(drain(&mut r).is_empty());
    let sum = r.handle_player_feedback(dt, Feedback::Nack(&want), t0 + NACK_RETRANSMIT_INTERVAL);
    assert_eq!(sum.unwrap().retransmitted, 2);
    assert_eq!(drain(&mut r).len(), 2);
    let st = r.downtrack_stats(dt).unwrap();
    assert_eq!((st.retransmitted, st.packets_sent, st.nacked), (4, 20, 9));
}

#[test]
fn nack_fills_a_gap_left_by_a_full_queue() {
    let mut r = Router::new();
    let s = r.add_stream(StreamKey::new(1, "gap")).unwrap();
    let a = audio_info(5);
    let t = r.add_track(s, a).unwrap();
    let dt = r.subscribe(s, MediaKind::Audio, player(6, 2)).unwrap();
    let now = Instant::now();
    for i in 0..3u16 {
        r.push_rtp(t, packet(&a, i, 0, payload(i)), now).unwrap();
    }
    let out = drain_one(&mut r, dt);
    assert_eq!(out.len(), 2);
    let lost = out[1].sequence_number.wrapping_add(1);
    let sum = r
        .handle_player_feedback(dt, Feedback::Nack(&[lost]), now)
        .unwrap();
    assert_eq!(sum.retransmitted, 1);
    let p = r.poll_output().unwrap().1;
    assert_eq!((p.sequence_number, p.is_retransmission), (lost, true));
    assert_eq!(&p.payload[..], &payload(2)[..]);
}

#[test]
fn nack_outside_cache_is_ignored() {
    let mut r = Router::new();
    let s = r.add_stream(StreamKey::new(1, "old")).unwrap();
    let v = video_info(8);
    let t = r.add_track(s, v).unwrap();
    let dt = r.subscribe(s, MediaKind::Video, player(9, 4)).unwrap();
    let now = Instant::now();
    r.push_rtp(t, packet(&v, 0, 0, Bytes::from_static(VP8_KEY)), now)
        .unwrap();
    let first = r.poll_output().unwrap().1.sequence_number;
    let n = VIDEO_CACHE_PACKETS as u16;
    for i in 1..=n {
        r.push_rtp(t, packet(&v, i, 0, payload(i)), now).unwrap();
        drain(&mut r);
    }
    // Packet 0 was evicted by packet 1024; packet 1 is still cached.
    let nacks = [first, first.wrapping_add(1)];
    let sum = r
        .handle_player_feedback(dt, Feedback::Nack(&nacks), now)
        .unwrap();
    assert_eq!((sum.retransmitted, sum.ignored), (1, 1));
    assert_eq!(
        r.poll_output().unwrap().1.sequence_number,
        first.wrapping_add(1)
    );
    // Audio down-tracks or un-attached ones ignore NACKs gracefully.
    let waiting = r.subscribe_key(&StreamKey::new(2, "nobody"), MediaKind::Audio, player(1, 1));
    let sum = r
        .handle_player_feedback(waiting, Feedback::Nack(&[1, 2, 3]), now)
        .unwrap();
    assert_eq!(sum.ignored, 3);
}

#[test]
fn pli_from_many_players_is_coalesced() {
    let mut r = Router::new();
    let s = r.add_stream(StreamKey::new(1, "pli")).unwrap();
    let v = video_info(0x77);
    let t = r.add_track(s, v).unwrap();
    let a = r.add_track(s, audio_info(0x78)).unwrap();
    let t0 = Instant::now();
    let dts: Vec<_> = (0..5)
        .map(|i| r.subscribe(s, MediaKind::Video, player(i, 8)).unwrap())
        .collect();
    let audio_dt = r.subscribe(s, MediaKind::Audio, player(100, 8)).unwrap();
    let pli = Some((t, Upstream::Pli { media_ssrc: 0x77 }));
    // Five subscriptions: one PLI, sent immediately.
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(r.poll_upstream(t0), pli);
    assert_eq!(r.poll_upstream(t0), None);
    assert_eq!(r.poll_timeout(), None);

    // Every player sends PLI/FIR 10 ms later: coalesced into one PLI due at
    // the end of the 500 ms window.
    let t1 = t0 + Duration::from_millis(10);
    for (i, &dt) in dts.iter().enumerate() {
        let fb = if i % 2 == 0 {
            Feedback::Pli
        } else {
            Feedback::Fir
        };
        let sum = r.handle_player_feedback(dt, fb, t1).unwrap();
        assert!(sum.keyframe_requested);
    }
    assert_eq!(r.poll_upstream(t1), None);
    assert_eq!(r.poll_timeout(), Some(t0 + PLI_INTERVAL));
    assert_eq!(r.poll_upstream(t0 + Duration::from_millis(499)), None);
    let t2 = t0 + PLI_INTERVAL;
    assert_eq!(r.poll_upstream(t2), pli);
    assert_eq!(r.poll_upstream(t2), None);
    assert_eq!(r.poll_timeout(), None);

    // Audio PLI is counted but never goes upstream.
    let sum = r
        .handle_player_feedback(audio_dt, Feedback::Pli, t2)
        .unwrap();
    assert!(!sum.keyframe_requested);
    assert_eq!(r.downtrack_stats(audio_dt).unwrap().keyframe_requests, 1);

    // After a quiet window, the next request goes out immediately.
    let t3 = t2 + Duration::from_secs(2);
    r.handle_player_feedback(dts[0], Feedback::Fir, t3).unwrap();
    assert_eq!(r.poll_upstream(t3), pli);
    let st = r.track_stats(t).unwrap();
    assert_eq!((st.keyframe_requests, st.plis_sent), (5 + 5 + 1, 3));
    assert_eq!(r.track_stats(a).unwrap().plis_sent, 0);
}

#[test]
fn gated_downtrack_retries_keyframe_request() {
    let mut r = Router::new();
    let s = r.add_stream(StreamKey::new(1, "retry")).unwrap();
    let v = video_info(0x42);
    let t = r.add_track(s, v).unwrap();
    r.subscribe(s, MediaKind::Video, player(1, 8)).unwrap();
    let t0 = Instant::now();
    assert!(r.poll_upstream(t0).is_some());
    let mut seq = 0u16;
    let mut push = |r: &mut Router, at: Instant| {
        seq += 1;
        r.push_rtp(t, packet(&v, seq, 0, Bytes::from_static(VP8_DELTA)), at)
            .unwrap()
    };
    // Gated from t0+10ms: no new request until a full retry interval passed.
    let g0 = t0 + Duration::from_millis(10);
    push(&mut r, g0);
    push(&mut r, g0 + Duration::from_millis(900));
    assert_eq!(r.poll_upstream(g0 + Duration::from_millis(900)), None);
    push(&mut r, g0 + KEYFRAME_RETRY_INTERVAL);
    assert_eq!(
        r.poll_upstream(g0 + KEYFRAME_RETRY_INTERVAL),
        Some((t, Upstream::Pli { media_ssrc: 0x42 }))
    );
}

#[test]
fn sender_reports_are_translated_per_downtrack() {
    let mut r = Router::new();
    let s = r.add_stream(StreamKey::new(1, "sr")).unwrap();
    let a = audio_info(0x10);
    let t = r.add_track(s, a).unwrap();
    let d1 = r.subscribe(s, MediaKind::Audio, player(0x21, 8)).unwrap();
    let d2 = r.subscribe(s, MediaKind::Audio, player(0x22, 8)).unwrap();
    let now = Instant::now();
    // Nothing forwarded yet: no report.
    assert_eq!(r.for_each_sender_report(t, 1, 2, |_, _| {}), 0);
    r.push_rtp(t, packet(&a, 3, 48_000, Bytes::from_static(b"12345")), now)
        .unwrap();
    r.push_rtp(t, packet(&a, 4, 48_960, Bytes::from_static(b"678")), now)
        .unwrap();
    let out = drain(&mut r);
    let mut reports = Vec::new();
    let n = r.for_each_sender_report(t, 0xdead_beef_0000_0001, 96_000, |h, sr| {
        reports.push((h, sr))
    });
    assert_eq!(n, 2);
    for (h, sr) in reports {
        let first = out.iter().find(|(d, _)| *d == h).unwrap().1.clone();
        assert_eq!(sr.ssrc, first.ssrc);
        assert_eq!(sr.ntp, 0xdead_beef_0000_0001);
        assert_eq!(sr.rtp_time, first.timestamp.wrapping_add(48_000));
        assert_eq!((sr.packet_count, sr.octet_count), (2, 8));
    }
    assert!(r.sender_report(t, d1, 0, 0).is_some());
    let other = r.add_track(s, audio_info(0x11)).unwrap();
    assert_eq!(r.sender_report(t, d2, 0, 0), None); // stale track
    assert_eq!(r.sender_report(other, d2, 0, 0), None); // not forwarding yet
}
