//! Zero allocations on the fast egress path: the same kind of steady-state
//! load as `alloc.rs` (parse, fan-out to 100 down-tracks, NACK/PLI), drained
//! with `Router::drain_output`, under a counting global allocator.

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

fn datagram(i: usize) -> Bytes {
    let (a, v) = (audio_info(0xA), video_info(0xB));
    let (info, payload): (_, &[u8]) = match i % 2 {
        0 => (&a, &[0xfc; 80]),
        _ if i == 1 => (&v, VP8_KEY),
        _ => (&v, &[0x10, 0x9d, 0x01, 0x2a, 0x77, 0x77]),
    };
    let mut p = OutPacket {
        ssrc: info.ssrc,
        payload_type: info.payload_type,
        sequence_number: ((i / 2) as u16).wrapping_add(65_000),
        timestamp: (i as u32 / 2).wrapping_mul(960),
        payload: Bytes::copy_from_slice(payload),
        ..OutPacket::default()
    };
    p.extensions.push(1, Bytes::from_static(&[0x90]));
    p.extensions.push(3, Bytes::from_static(&[0, 1]));
    p.extensions.push(4, Bytes::from_static(&[0x01]));
    let mut hdr = [0u8; MAX_HEADER_LEN];
    let n = p.write_header(&mut hdr);
    let mut v = hdr[..n].to_vec();
    v.extend_from_slice(&p.payload);
    Bytes::from(v)
}

#[test]
fn zero_allocations_with_drain_output() {
    let mut r = Router::new();
    let s = r.add_stream(StreamKey::new(1, "alloc-drain")).unwrap();
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
    let total = 24_000;
    let wire: Vec<Bytes> = (0..total).map(datagram).collect();
    // Vec-backed Bytes allocate their refcount on first clone: do it now.
    let _promoted: Vec<Bytes> = wire.to_vec();
    let t0 = Instant::now();
    let mut last = [0u16; PER_KIND];
    let mut run = |r: &mut Router, i: usize| -> (u64, u64) {
        let now = t0 + Duration::from_millis(i as u64 * 10);
        let pkt = RtpPacket::parse(wire[i].clone()).unwrap();
        r.push_rtp(if i % 2 == 0 { ta } else { tv }, pkt, now)
            .unwrap();
        if i % 100 == 1 {
            let k = (i / 100) % PER_KIND;
            let nacks = [last[k].wrapping_sub(3), last[k].wrapping_sub(7)];
            r.handle_player_feedback(video_dts[k], Feedback::Nack(&nacks), now)
                .unwrap();
            r.handle_player_feedback(video_dts[k], Feedback::Pli, now)
                .unwrap();
        }
        while r.poll_upstream(now).is_some() {}
        let (mut fresh, mut rtx) = (0, 0);
        r.drain_output(|dt, o| {
            assert!(o.header.len() > 12);
            if o.is_retransmission {
                rtx += 1;
            } else {
                fresh += 1;
                if let Some(k) = video_dts.iter().position(|&d| d == dt) {
                    last[k] = o.sequence_number;
                }
            }
        });
        (fresh, rtx)
    };
    // Long enough for every video down-track to NACK a cached packet (one
    // every 100 pushes, in turn): its NACK limiter is allocated by its
    // first NACK.
    let warmup = 5200;
    for i in 0..warmup {
        run(&mut r, i);
    }
    ALLOCS.store(0, Ordering::SeqCst);
    ACTIVE.with(|a| a.set(true));
    let (mut delivered, mut retransmitted) = (0u64, 0u64);
    for i in warmup..total {
        let (f, x) = run(&mut r, i);
        delivered += f;
        retransmitted += x;
    }
    ACTIVE.with(|a| a.set(false));
    assert_eq!(delivered, ((total - warmup) * PER_KIND) as u64);
    assert!(retransmitted > 0);
    assert_eq!(ALLOCS.load(Ordering::SeqCst), 0);
}
