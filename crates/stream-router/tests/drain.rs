//! `Router::drain_output` (the fast egress path) must hand out exactly what
//! `poll_output` + `OutPacket::write_header` would: same down-tracks in the
//! same order, byte-identical headers, the same payload buffers, the same
//! retransmission flags and the same counters.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use stream_router::{
    Codec, DownTrackConfig, DownTrackHandle, ExtKind, ExtMap, Feedback, MediaKind, Router,
    RtpPacket, StreamKey, TrackHandle, TrackInfo, MAX_HEADER_LEN,
};

/// What one delivery looked like on the wire.
#[derive(Debug, PartialEq, Eq)]
struct Sent {
    dt: DownTrackHandle,
    header: Vec<u8>,
    payload_ptr: usize,
    payload_len: usize,
    rtx: bool,
}

fn via_poll(r: &mut Router) -> Vec<Sent> {
    let mut buf = [0u8; MAX_HEADER_LEN];
    std::iter::from_fn(|| r.poll_output())
        .map(|(dt, p)| {
            let n = p.write_header(&mut buf);
            assert!(n >= 12);
            Sent {
                dt,
                header: buf[..n].to_vec(),
                payload_ptr: p.payload.as_ptr() as usize,
                payload_len: p.payload.len(),
                rtx: p.is_retransmission,
            }
        })
        .collect()
}

fn via_drain(r: &mut Router) -> Vec<Sent> {
    let mut out = Vec::new();
    let n = r.drain_output(|dt, o| {
        let parsed = RtpPacket::parse(Bytes::copy_from_slice(o.header)).unwrap();
        assert_eq!(parsed.sequence_number, o.sequence_number);
        assert_eq!(parsed.timestamp, o.timestamp);
        assert_eq!(parsed.ssrc, o.ssrc);
        out.push(Sent {
            dt,
            header: o.header.to_vec(),
            payload_ptr: o.payload.as_ptr() as usize,
            payload_len: o.payload.len(),
            rtx: o.is_retransmission,
        });
    });
    assert_eq!(n, out.len());
    out
}

/// Player legs with different extension maps: the shared fixture map, the
/// same map again, a two-byte-form map (ID > 14), a map with every
/// forwardable kind, and one with none.
fn player_cfg(i: u32, queue: usize) -> DownTrackConfig {
    let extensions = match i % 5 {
        0 | 1 => player(0, 0).extensions,
        2 => ExtMap::new()
            .with(200, ExtKind::AudioLevel)
            .with(15, ExtKind::VideoOrientation)
            .with(16, ExtKind::DependencyDescriptor),
        3 => ExtMap::new()
            .with(1, ExtKind::AudioLevel)
            .with(2, ExtKind::VideoOrientation)
            .with(3, ExtKind::PlayoutDelay)
            .with(4, ExtKind::AbsCaptureTime)
            .with(5, ExtKind::DependencyDescriptor),
        _ => ExtMap::new(),
    };
    DownTrackConfig {
        ssrc: 5000 + i,
        payload_type: 100 + (i % 3) as u8,
        extensions,
        queue_capacity: queue,
    }
}

fn publisher_map() -> ExtMap {
    publisher_exts()
        .with(6, ExtKind::PlayoutDelay)
        .with(7, ExtKind::AbsCaptureTime)
        .with(8, ExtKind::DependencyDescriptor)
}

struct Side {
    r: Router,
    tracks: [TrackHandle; 2],
    dts: Vec<DownTrackHandle>,
}

fn setup() -> Side {
    let mut r = Router::new();
    let s = r.add_stream(StreamKey::new(1, "drain")).unwrap();
    let infos = [
        TrackInfo {
            extensions: publisher_map(),
            ..audio_info(0xA)
        },
        TrackInfo {
            extensions: publisher_map(),
            ..video_info(0xB)
        },
    ];
    let tracks = [
        r.add_track(s, infos[0]).unwrap(),
        r.add_track(s, infos[1]).unwrap(),
    ];
    let mut dts = Vec::new();
    for i in 0..12u32 {
        let kind = if i % 2 == 0 {
            MediaKind::Audio
        } else {
            MediaKind::Video
        };
        // Small queues on some players so drops happen.
        let queue = if i % 4 == 3 { 3 } else { 64 };
        dts.push(r.subscribe(s, kind, player_cfg(i, queue)).unwrap());
    }
    Side { r, tracks, dts }
}

#[test]
fn drain_output_matches_poll_output() {
    let mut a = setup();
    let mut b = setup();
    let mut rng = Rng(0x5eed_f00d);
    let t0 = Instant::now();
    let wire = Bytes::from(rng.bytes(4096));
    let _promote = wire.clone();
    let (mut total, mut rtx, mut with_ext) = (0usize, 0usize, 0usize);
    let mut last_seq = vec![0u16; a.dts.len()];
    for step in 0..6000u32 {
        let now = t0 + Duration::from_millis(u64::from(step) * 5);
        let k = (step % 2) as usize;
        let seq = (step / 2) as u16;
        let mut pkt = RtpPacket {
            marker: rng.below(4) == 0,
            payload_type: if k == 0 { PT_OPUS } else { PT_VP8 },
            sequence_number: seq.wrapping_add(65_000),
            timestamp: (step / 2).wrapping_mul(960),
            ssrc: if k == 0 { 0xA } else { 0xB },
            extensions: Default::default(),
            payload: Bytes::new(),
        };
        let off = rng.below(3000) as usize;
        let len = rng.below(200) as usize;
        pkt.payload = if k == 1 && step % 50 == 1 {
            Bytes::from_static(VP8_KEY)
        } else {
            wire.slice(off..off + len)
        };
        for _ in 0..rng.below(6) {
            // Publisher IDs 1..=8: forwardable, per-hop and unknown ones;
            // values up to 40 bytes (blocks too big for the inline cache).
            let id = 1 + rng.below(8) as u8;
            let vlen = match rng.below(4) {
                0 => 0,
                1 => 40,
                _ => 1 + rng.below(16) as usize,
            };
            let at = rng.below(1000) as usize;
            pkt.extensions.push(id, wire.slice(at..at + vlen));
        }
        let track = a.tracks[k];
        assert_eq!(
            a.r.push_rtp(track, pkt.clone(), now),
            b.r.push_rtp(b.tracks[k], pkt, now)
        );
        if rng.below(10) == 0 {
            // NACK numbers the player saw recently (player numbering).
            let i = rng.below(a.dts.len() as u64) as usize;
            let last = last_seq[i];
            let nacks: Vec<u16> = (0..rng.below(6))
                .map(|_| last.wrapping_sub(rng.below(40) as u16))
                .collect();
            let fa =
                a.r.handle_player_feedback(a.dts[i], Feedback::Nack(&nacks), now);
            let fb =
                b.r.handle_player_feedback(b.dts[i], Feedback::Nack(&nacks), now);
            assert_eq!(fa, fb);
        }
        if step % 3 != 0 {
            let x = via_poll(&mut a.r);
            let y = via_drain(&mut b.r);
            assert_eq!(x, y, "step {step}");
            total += x.len();
            rtx += x.iter().filter(|s| s.rtx).count();
            with_ext += x.iter().filter(|s| s.header[0] & 0x10 != 0).count();
            for sent in &x {
                if let Some(i) = a.dts.iter().position(|&d| d == sent.dt) {
                    last_seq[i] = u16::from_be_bytes([sent.header[2], sent.header[3]]);
                }
            }
        }
        if step == 4000 {
            // Churn: a player leaves, the video track is replaced.
            a.r.unsubscribe(a.dts[5]).unwrap();
            b.r.unsubscribe(b.dts[5]).unwrap();
            let s = a.r.downtrack_stream(a.dts[1]).unwrap();
            let info = TrackInfo {
                codec: Codec::Other,
                ..*a.r.track_info(a.tracks[1]).unwrap()
            };
            a.tracks[1] = a.r.add_track(s, info).unwrap();
            let s = b.r.downtrack_stream(b.dts[1]).unwrap();
            b.tracks[1] = b.r.add_track(s, info).unwrap();
        }
    }
    assert_eq!(via_poll(&mut a.r), via_drain(&mut b.r));
    for (da, db) in a.dts.iter().zip(&b.dts) {
        assert_eq!(a.r.downtrack_stats(*da), b.r.downtrack_stats(*db));
    }
    assert!(total > 20_000, "{total}");
    assert!(rtx > 50, "{rtx}");
    assert!(with_ext > 5_000, "{with_ext}");
}
