//! The whole in-process egress path of one forwarded packet, as a media
//! worker runs it, without the socket: the router takes a publisher's
//! packet, `drain_output` lends each player's rewritten header and the
//! shared payload, the worker looks the player leg up (its hash map, as in
//! `egress.rs`), and the leg's [`FastLeg`] writes header + payload into the
//! send queue's buffer and SRTP-protects it there (the batch `sendmmsg`
//! would send). 1 publisher → {1, 10, 100, 1000} players, AES-128-GCM and
//! AES-CM-128-HMAC-SHA1-80.
//!
//! `ideal/*` in the same group is the floor that work is compared with:
//! per delivery, copy a ready header and the payload into a preallocated
//! buffer and AES-GCM seal it (`ring`), nothing else. Throughput is in
//! deliveries per second; `ideal / egress_gcm` is the overhead ratio.
//!
//! Run: `cargo bench --bench egress`.

use std::collections::HashMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sfu_core::media::batch::SendQueue;
use sfu_core::media::egress::FastLeg;
use sfu_core::media::srtp::{MasterKey, Profile, Protector, Rollover};
use stream_router::{
    Codec, DownTrackConfig, DownTrackHandle, ExtKind, ExtMap, MediaKind, Router, RtpPacket,
    StreamKey, TrackHandle, TrackInfo,
};

const PAYLOAD: usize = 1100;
const FRAME_PACKETS: u64 = 5;
const FRAME_TICKS: u32 = 3000;

fn publisher_exts() -> ExtMap {
    ExtMap::new()
        .with(2, ExtKind::AbsSendTime)
        .with(4, ExtKind::VideoOrientation)
}

fn player_exts() -> ExtMap {
    ExtMap::new().with(13, ExtKind::VideoOrientation)
}

/// A VP8 packet as the publisher's connection hands it to the router.
fn packet(k: u64, payload: &Bytes) -> RtpPacket {
    let mut p = RtpPacket {
        marker: k % FRAME_PACKETS == FRAME_PACKETS - 1,
        payload_type: 96,
        sequence_number: (k as u16).wrapping_add(40_000),
        timestamp: ((k / FRAME_PACKETS) as u32).wrapping_mul(FRAME_TICKS),
        ssrc: 0x1000_0000,
        extensions: Default::default(),
        payload: payload.clone(),
    };
    p.extensions
        .push(2, Bytes::from_static(&[0x12, 0x34, 0x56]));
    p.extensions.push(4, Bytes::from_static(&[0x01]));
    p
}

fn payload(keyframe: bool) -> Bytes {
    let mut v = vec![0x5au8; PAYLOAD];
    let descriptor: &[u8] = if keyframe {
        &[0x10, 0x9c, 0x01, 0x2a]
    } else {
        &[0x10, 0x9d, 0x01, 0x2a]
    };
    v[..4].copy_from_slice(descriptor);
    let b = Bytes::from(v);
    // A receive buffer is shared from the start (see the fanout bench).
    black_box(b.clone());
    b
}

fn master(seed: u8) -> MasterKey {
    MasterKey {
        key: [seed; 16],
        salt: [seed.wrapping_add(1); 14],
    }
}

struct Fixture {
    router: Router,
    track: TrackHandle,
    legs: HashMap<DownTrackHandle, FastLeg>,
    sends: SendQueue,
    to: SocketAddr,
    delta: Bytes,
    k: u64,
    t0: Instant,
}

impl Fixture {
    fn new(players: usize, profile: Profile) -> Fixture {
        let mut router = Router::new();
        let stream = router.add_stream(StreamKey::new(1, "cam")).unwrap();
        let track = router
            .add_track(
                stream,
                TrackInfo {
                    kind: MediaKind::Video,
                    codec: Codec::Vp8,
                    clock_rate: 90_000,
                    ssrc: 0x1000_0000,
                    payload_type: 96,
                    extensions: publisher_exts(),
                    layer: 0,
                },
            )
            .unwrap();
        let mut legs = HashMap::new();
        for p in 0..players as u32 {
            let dt = router
                .subscribe(
                    stream,
                    MediaKind::Video,
                    DownTrackConfig {
                        ssrc: 0x2000_0000 + p,
                        payload_type: 120,
                        extensions: player_exts(),
                        queue_capacity: 512,
                    },
                )
                .unwrap();
            let protector = Protector::new(profile, &master(p as u8)).unwrap();
            legs.insert(dt, FastLeg::new(profile, protector, Rollover::default()));
        }
        let mut f = Fixture {
            router,
            track,
            legs,
            sends: SendQueue::new(true),
            to: SocketAddr::from(([127, 0, 0, 1], 5000)),
            delta: payload(false),
            k: 0,
            t0: Instant::now(),
        };
        // The keyframe opens every gate.
        let key = payload(true);
        f.forward(Some(&key));
        f
    }

    /// One packet in, every delivery written and protected; returns how
    /// many datagrams were queued.
    fn forward(&mut self, keyframe: Option<&Bytes>) -> usize {
        let payload = keyframe.unwrap_or(&self.delta);
        let p = packet(self.k, payload);
        let now = self.t0 + Duration::from_micros(self.k * 6_667);
        self.k += 1;
        let _ = self.router.push_rtp(self.track, p, now);
        let Fixture {
            router,
            legs,
            sends,
            to,
            ..
        } = self;
        router.drain_output(|dt, out| {
            if let Some(leg) = legs.get_mut(&dt) {
                leg.send(sends, *to, &out);
            }
        });
        let n = sends.len();
        sends.clear();
        n
    }
}

/// The floor: per delivery, copy a header and the payload into a buffer
/// and seal it with AES-128-GCM.
struct Ideal {
    key: ring::aead::LessSafeKey,
    header: [u8; 20],
    payload: Bytes,
    buf: Vec<u8>,
    seq: u64,
}

impl Ideal {
    fn new() -> Ideal {
        let key = ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &[7; 16]).unwrap();
        Ideal {
            key: ring::aead::LessSafeKey::new(key),
            header: [0x90; 20],
            payload: payload(false),
            buf: vec![0; 2048],
            seq: 0,
        }
    }

    fn deliver(&mut self, players: usize) {
        for _ in 0..players {
            self.seq += 1;
            let (h, p) = (self.header.len(), self.payload.len());
            self.buf[..h].copy_from_slice(&self.header);
            self.buf[h..h + p].copy_from_slice(&self.payload);
            let mut iv = [0u8; 12];
            iv[4..12].copy_from_slice(&self.seq.to_be_bytes());
            let (head, rest) = self.buf.split_at_mut(h);
            let tag = self
                .key
                .seal_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key(iv),
                    ring::aead::Aad::from(&*head),
                    &mut rest[..p],
                )
                .unwrap();
            self.buf[h + p..h + p + 16].copy_from_slice(tag.as_ref());
            black_box(&self.buf[..h + p + 16]);
        }
    }
}

fn egress(c: &mut Criterion) {
    let mut group = c.benchmark_group("egress");
    for players in [1usize, 10, 100, 1000] {
        group.throughput(Throughput::Elements(players as u64));
        for (name, profile) in [
            ("egress_gcm", Profile::AeadAes128Gcm),
            ("egress_cm", Profile::AesCm128HmacSha1_80),
        ] {
            let mut f = Fixture::new(players, profile);
            group.bench_with_input(BenchmarkId::new(name, players), &players, |b, _| {
                b.iter(|| {
                    let n = f.forward(None);
                    debug_assert_eq!(n, players);
                    black_box(n)
                })
            });
        }
        let mut ideal = Ideal::new();
        group.bench_with_input(BenchmarkId::new("ideal", players), &players, |b, &n| {
            b.iter(|| ideal.deliver(n))
        });
    }
    group.finish();
}

criterion_group!(benches, egress);
criterion_main!(benches);
