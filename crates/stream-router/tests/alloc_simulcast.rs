//! The simulcast data path allocates nothing either: three VP8 layers with
//! picture numbers, 30 players spread over them and moved between layers
//! all the time (caps changed, switches made on keyframes, VP8 numbers
//! rewritten), drained with `drain_output`.

mod common;
mod counting;

use counting::{Counting, ACTIVE, ALLOCS};

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use stream_router::{MediaKind, OutPacket, Router, RtpPacket, StreamKey, TrackInfo};

#[global_allocator]
static GLOBAL: Counting = Counting;

const PLAYERS: u32 = 30;
const ROUNDS: usize = 20_000;
/// A keyframe on every layer this often (rounds).
const GOP: usize = 30;

/// Datagram of layer `l`, round `i`: VP8 with a 15-bit PictureID and a
/// TL0PICIDX, numbered per layer (far apart, as browsers number them).
fn datagram(info: &TrackInfo, l: u8, i: usize) -> Bytes {
    let pic = (i as u16).wrapping_add(u16::from(l) * 9_000) & 0x7fff;
    let [hi, lo] = pic.to_be_bytes();
    let key = i % GOP == 0;
    let payload = vec![
        0x90,
        0xC0,
        0x80 | hi,
        lo,
        (i as u8).wrapping_add(l * 50),
        if key { 0x9c } else { 0x9d },
        0x01,
        0x2a,
        0x77,
        0x77,
    ];
    let p = OutPacket {
        ssrc: info.ssrc,
        payload_type: info.payload_type,
        sequence_number: (i as u16).wrapping_add(u16::from(l) * 20_000),
        timestamp: (i as u32).wrapping_mul(3000),
        marker: true,
        payload: Bytes::from(payload),
        ..OutPacket::default()
    };
    common::datagram(&p)
}

#[test]
fn zero_allocations_while_players_switch_layers() {
    let mut r = Router::new();
    let s = r.add_stream(StreamKey::new(1, "sim-alloc")).unwrap();
    let infos = [0u8, 1, 2].map(|l| TrackInfo {
        layer: l,
        ..video_info(0x100 + u32::from(l))
    });
    let tracks = infos.map(|i| r.add_track(s, i).unwrap());
    let dts: Vec<_> = (0..PLAYERS)
        .map(|p| {
            let dt = r
                .subscribe(s, MediaKind::Video, player(3000 + p, 64))
                .unwrap();
            r.set_max_layer(dt, (p % 3) as u8);
            dt
        })
        .collect();
    // Every datagram made up front: making them allocates.
    let wire: Vec<[Bytes; 3]> = (0..2 * ROUNDS)
        .map(|i| [0u8, 1, 2].map(|l| datagram(&infos[usize::from(l)], l, i)))
        .collect();
    for w in &wire {
        std::hint::black_box(w.clone()); // promote the refcounts
    }
    let t0 = Instant::now();
    let run = |r: &mut Router, i: usize| -> usize {
        let now = t0 + Duration::from_millis(i as u64 * 33);
        for l in 0..3 {
            let pkt = RtpPacket::parse(wire[i][l].clone()).unwrap();
            r.push_rtp(tracks[l], pkt, now).unwrap();
        }
        // Every 10 rounds one player gets another cap.
        if i % 10 == 5 {
            let k = i / 10;
            let dt = dts[k % dts.len()];
            // Its cap moves on by one each time its turn comes.
            r.set_max_layer(dt, ((k % dts.len() + k / dts.len()) % 3) as u8);
        }
        while r.poll_upstream(now).is_some() {}
        r.drain_output(|_, out| {
            std::hint::black_box((out.header, out.vp8));
        })
    };
    for i in 0..ROUNDS {
        run(&mut r, i);
    }
    let switches_before: u64 = dts
        .iter()
        .map(|&d| r.downtrack_stats(d).unwrap().layer_switches)
        .sum();
    ACTIVE.with(|a| a.set(true));
    let mut delivered = 0;
    for i in ROUNDS..2 * ROUNDS {
        delivered += run(&mut r, i);
    }
    ACTIVE.with(|a| a.set(false));
    let allocs = ALLOCS.load(Ordering::SeqCst);
    let switches: u64 = dts
        .iter()
        .map(|&d| r.downtrack_stats(d).unwrap().layer_switches)
        .sum::<u64>()
        - switches_before;
    assert!(switches > 1_000, "players switched layers: {switches}");
    // One packet per player per round, plus one in a round where a player
    // moves to a layer pushed after its old one (the old layer's packet,
    // then the new one's keyframe).
    let base = ROUNDS * PLAYERS as usize;
    assert!(
        (base..=base + switches as usize).contains(&delivered),
        "{delivered} deliveries, {switches} switches"
    );
    assert_eq!(allocs, 0, "allocations while switching layers");
}
