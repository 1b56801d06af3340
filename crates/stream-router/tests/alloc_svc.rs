//! The SVC data path allocates nothing per packet: one VP9 track with
//! three spatial and three temporal layers, 30 players whose caps change
//! all the time (layers dropped, numbers closed over the gaps, markers
//! set, switch-ups on keyframes), drained with `drain_output`. A
//! down-track's segment table is allocated at its first drop, in warm-up.

mod common;
mod counting;

use counting::{Counting, ACTIVE, ALLOCS};

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use stream_router::{Codec, MediaKind, OutPacket, Router, RtpPacket, StreamKey, TrackInfo};

#[global_allocator]
static GLOBAL: Counting = Counting;

const PLAYERS: u32 = 30;
const PICTURES: usize = 5_000;
/// A keyframe this often (pictures).
const GOP: usize = 60;
const TIDS: [u8; 4] = [0, 2, 1, 2];

/// The six datagrams of picture `i`: S0..S2, two packets each.
fn picture(info: &TrackInfo, i: usize) -> Vec<Bytes> {
    let key = i % GOP == 0;
    let tid = if key { 0 } else { TIDS[i % 4] };
    let [hi, lo] = ((i as u16) & 0x7fff).to_be_bytes();
    let mut out = Vec::new();
    for sid in 0..3u8 {
        for part in 0..2 {
            let mut b0 = 0xa0 | if key { 0 } else { 0x40 };
            if part == 0 {
                b0 |= 0x08;
            } else {
                b0 |= 0x04;
            }
            let l = (tid << 5) | (sid << 1);
            let mut payload = vec![b0, 0x80 | hi, lo, l, i as u8];
            if key && sid == 0 && part == 0 {
                payload[0] |= 0x02;
                payload.push(0x40);
            }
            payload.extend([0x55; 20]);
            let n = out.len();
            let p = OutPacket {
                ssrc: info.ssrc,
                payload_type: info.payload_type,
                sequence_number: ((i * 6 + n) as u16).wrapping_add(60_000),
                timestamp: (i as u32).wrapping_mul(3000),
                marker: sid == 2 && part == 1,
                payload: Bytes::from(payload),
                ..OutPacket::default()
            };
            out.push(datagram(&p));
        }
    }
    out
}

#[test]
fn zero_allocations_while_players_change_svc_layers() {
    let mut r = Router::new();
    let s = r.add_stream(StreamKey::new(1, "svc-alloc")).unwrap();
    let info = TrackInfo {
        codec: Codec::Vp9,
        ..video_info(0x900)
    };
    let track = r.add_track(s, info).unwrap();
    let dts: Vec<_> = (0..PLAYERS)
        .map(|p| {
            let dt = r
                .subscribe(s, MediaKind::Video, player(3000 + p, 64))
                .unwrap();
            r.set_max_layer(dt, (p % 3) as u8);
            dt
        })
        .collect();
    let wire: Vec<Vec<Bytes>> = (0..2 * PICTURES).map(|i| picture(&info, i)).collect();
    for w in &wire {
        std::hint::black_box(w.clone());
    }
    let t0 = Instant::now();
    let run = |r: &mut Router, i: usize| -> usize {
        let now = t0 + Duration::from_millis(i as u64 * 33);
        for w in &wire[i] {
            let pkt = RtpPacket::parse(w.clone()).unwrap();
            r.push_rtp(track, pkt, now).unwrap();
        }
        if i % 10 == 5 {
            let k = i / 10;
            let dt = dts[k % dts.len()];
            r.set_max_layer(dt, ((k % dts.len() + k / dts.len()) % 3) as u8);
        }
        if i % 15 == 0 {
            r.measure(now);
        }
        while r.poll_upstream(now).is_some() {}
        r.drain_output(|_, out| {
            std::hint::black_box((out.header, out.payload));
        })
    };
    for i in 0..PICTURES {
        run(&mut r, i);
    }
    ACTIVE.with(|a| a.set(true));
    let mut delivered = 0;
    for i in PICTURES..2 * PICTURES {
        delivered += run(&mut r, i);
    }
    ACTIVE.with(|a| a.set(false));
    let allocs = ALLOCS.load(Ordering::SeqCst);
    let dropped: u64 = dts
        .iter()
        .map(|&d| r.downtrack_stats(d).unwrap().dropped_layer)
        .sum();
    // Something was forwarded, something dropped, and nothing allocated.
    assert!(delivered > PICTURES * PLAYERS as usize, "{delivered}");
    assert!(dropped > 0);
    assert_eq!(
        allocs, 0,
        "allocations while forwarding {delivered} packets"
    );
}
