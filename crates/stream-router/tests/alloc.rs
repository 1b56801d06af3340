//! Proves the steady-state data path allocates nothing: a counting global
//! allocator (this file owns it) watches one million packet deliveries —
//! parse, fan-out to 100 down-tracks, drain — plus NACK/PLI handling.

mod common;
mod counting;

use counting::{Counting, ACTIVE, ALLOCS};

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use stream_router::{Feedback, MediaKind, OutPacket, Router, RtpPacket, StreamKey, MAX_HEADER_LEN};

#[global_allocator]
static GLOBAL: Counting = Counting;

const PER_KIND: usize = 50;
/// Long enough for every video down-track to NACK a cached packet (one
/// every 100 pushes, in turn; the first one's first NACK finds nothing
/// cached): its NACK limiter is allocated by its first NACK.
const WARMUP_PUSHES: usize = 5200;
const MEASURED_PUSHES: usize = 20_000; // x 50 subscribers = 1 000 000 deliveries

/// Serialises `count` alternating audio/video datagrams back to back into
/// one buffer; returns it and each datagram's byte range.
fn datagrams(count: usize) -> (Bytes, Vec<std::ops::Range<usize>>) {
    let (a, v) = (audio_info(0xA), video_info(0xB));
    let mut wire = Vec::new();
    let mut ranges = Vec::with_capacity(count);
    let mut hdr = [0u8; MAX_HEADER_LEN];
    for i in 0..count {
        let (info, payload): (_, &[u8]) = if i % 2 == 0 {
            (&a, &[0xfc; 80])
        } else if i == 1 {
            (&v, VP8_KEY)
        } else {
            (
                &v,
                &[0x10, 0x9d, 0x01, 0x2a, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77],
            )
        };
        let seq = (i / 2) as u16;
        let mut p = OutPacket {
            ssrc: info.ssrc,
            payload_type: info.payload_type,
            sequence_number: seq.wrapping_add(60_000), // wraps during the run
            timestamp: (i as u32 / 2).wrapping_mul(960),
            marker: i % 2 == 1,
            payload: Bytes::copy_from_slice(payload),
            ..OutPacket::default()
        };
        p.extensions.push(1, Bytes::from_static(&[0x90])); // audio level
        p.extensions.push(3, Bytes::from_static(&[0, 1])); // transport-cc
        p.extensions.push(4, Bytes::from_static(&[0x01])); // orientation
        let n = p.write_header(&mut hdr);
        let start = wire.len();
        wire.extend_from_slice(&hdr[..n]);
        wire.extend_from_slice(&p.payload);
        ranges.push(start..wire.len());
    }
    (Bytes::from(wire), ranges)
}

#[test]
fn zero_allocations_per_forwarded_packet() {
    let mut r = Router::new();
    let s = r.add_stream(StreamKey::new(1, "alloc")).unwrap();
    let ta = r.add_track(s, audio_info(0xA)).unwrap();
    let tv = r.add_track(s, video_info(0xB)).unwrap();
    let mut video_dts = Vec::new();
    for i in 0..PER_KIND as u32 {
        r.subscribe(s, MediaKind::Audio, player(1000 + i, 64))
            .unwrap();
        video_dts.push(
            r.subscribe(s, MediaKind::Video, player(2000 + i, 64))
                .unwrap(),
        );
    }
    let (wire, ranges) = datagrams(WARMUP_PUSHES + MEASURED_PUSHES);
    let _promote = wire.clone(); // Vec-backed Bytes allocate their refcount on first clone.
    let t0 = Instant::now();
    let mut hdr = [0u8; MAX_HEADER_LEN];
    let mut run = |r: &mut Router, i: usize, now: Instant| -> (u64, u64) {
        let pkt = RtpPacket::parse(wire.slice(ranges[i].clone())).unwrap();
        let track = if i % 2 == 0 { ta } else { tv };
        r.push_rtp(track, pkt, now).unwrap();
        if i % 100 == 1 {
            // A player NACKs two packets and asks for a keyframe.
            let dt = video_dts[(i / 100) % PER_KIND];
            assert!(r.sender_report(tv, dt, 0, 0).is_some());
            let p = r.poll_downtrack(dt).unwrap();
            let nacks = [
                p.sequence_number.wrapping_sub(3),
                p.sequence_number.wrapping_sub(7),
            ];
            r.handle_player_feedback(dt, Feedback::Nack(&nacks), now)
                .unwrap();
            r.handle_player_feedback(dt, Feedback::Pli, now).unwrap();
        }
        while r.poll_upstream(now).is_some() {}
        let (mut fresh, mut rtx) = (0, 0);
        while let Some((_, p)) = r.poll_output() {
            assert!(p.write_header(&mut hdr) > 12);
            if p.is_retransmission {
                rtx += 1;
            } else {
                fresh += 1;
            }
        }
        (fresh, rtx)
    };
    for i in 0..WARMUP_PUSHES {
        run(&mut r, i, t0 + Duration::from_millis(i as u64 * 10));
    }

    // The counter itself works: one allocation is seen as one.
    ALLOCS.store(0, Ordering::SeqCst);
    ACTIVE.with(|a| a.set(true));
    let probe = std::hint::black_box(Vec::<u8>::with_capacity(16));
    ACTIVE.with(|a| a.set(false));
    drop(probe);
    assert_eq!(ALLOCS.swap(0, Ordering::SeqCst), 1);

    ACTIVE.with(|a| a.set(true));
    let (mut delivered, mut retransmitted) = (0u64, 0u64);
    for i in WARMUP_PUSHES..WARMUP_PUSHES + MEASURED_PUSHES {
        let (f, x) = run(&mut r, i, t0 + Duration::from_millis(i as u64 * 10));
        delivered += f;
        retransmitted += x;
    }
    ACTIVE.with(|a| a.set(false));
    let allocs = ALLOCS.load(Ordering::SeqCst);

    // Every 100 pushes one packet was taken directly by poll_downtrack;
    // everything else came through poll_output.
    let direct = (MEASURED_PUSHES / 100) as u64;
    assert_eq!(delivered + direct, (MEASURED_PUSHES * PER_KIND) as u64);
    assert_eq!(retransmitted, 2 * direct);
    let per_million = allocs as f64 * 1e6 / (delivered + direct) as f64;
    println!(
        "allocations per 1M forwarded packets: {per_million} \
         ({allocs} allocations, {} deliveries, {retransmitted} retransmissions)",
        delivered + direct
    );
    assert_eq!(allocs, 0);
}
