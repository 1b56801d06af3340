//! Fan-out throughput of the data plane, as the I/O layer drives it.
//!
//! Each iteration pushes one realistic VP8 video packet per publisher
//! (≈1100-byte payload sliced from a shared receive buffer, abs-send-time,
//! transport-cc, video-orientation and playout-delay extensions, increasing
//! sequence numbers and timestamps, a keyframe only at the start so every
//! gate is open) through `RtpPacket::parse` + `Router::push_rtp`, then drains
//! every output as the I/O layer would:
//!
//! * `router/*`: `Router::drain_output`, the fast egress path: each packet is
//!   lent with its header already serialised (rewrite + queueing + header
//!   serialisation), header and payload go through `black_box`.
//! * `router_poll/*`: the compatibility path, `poll_output` plus
//!   `OutPacket::write_header` into a `MAX_HEADER_LEN` buffer.
//!
//! `baseline/*` is the ideal fan-out the router is compared with: clone the
//! same payload `Bytes` handle into N preallocated `VecDeque`s, then pop them
//! all. Throughput is in deliveries (packets handed to a player) per second,
//! so `router / baseline` is the router's efficiency relative to the ideal.
//!
//! Run: `cargo bench -p stream-router --bench fanout`.

use std::collections::VecDeque;
use std::hint::black_box;
use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use stream_router::{
    Codec, DownTrackConfig, ExtKind, ExtMap, MediaKind, OutPacket, Router, RtpPacket, StreamKey,
    TrackHandle, TrackInfo, MAX_HEADER_LEN,
};

/// Players' outgoing queue size: the SFU's default `player_queue`.
const QUEUE: usize = 512;
/// Payload bytes per video packet.
const PAYLOAD: usize = 1100;
/// Packets per video frame (≈1.3 Mbit/s at 30 fps).
const FRAME_PACKETS: u64 = 5;
/// RTP ticks per frame at 90 kHz and 30 fps.
const FRAME_TICKS: u32 = 3000;
/// Distinct delta-frame datagrams in the receive buffer (a multiple of
/// `FRAME_PACKETS`, so pool slot and position in the frame agree).
const POOL: usize = 250;
/// Wall time between two packets of one publisher.
const PACKET_INTERVAL: Duration = Duration::from_micros(6_667);

const PT_VP8: u8 = 96;

fn publisher_exts() -> ExtMap {
    ExtMap::new()
        .with(2, ExtKind::AbsSendTime)
        .with(3, ExtKind::TransportCc)
        .with(4, ExtKind::VideoOrientation)
        .with(6, ExtKind::PlayoutDelay)
}

/// A player leg with its own extension IDs (so forwarded ones are remapped).
fn player(ssrc: u32) -> DownTrackConfig {
    DownTrackConfig {
        ssrc,
        payload_type: 120,
        extensions: ExtMap::new()
            .with(11, ExtKind::AbsSendTime)
            .with(12, ExtKind::TransportCc)
            .with(13, ExtKind::VideoOrientation)
            .with(14, ExtKind::PlayoutDelay),
        queue_capacity: QUEUE,
    }
}

fn video_info(ssrc: u32) -> TrackInfo {
    TrackInfo {
        kind: MediaKind::Video,
        codec: Codec::Vp8,
        clock_rate: 90_000,
        ssrc,
        payload_type: PT_VP8,
        extensions: publisher_exts(),
        layer: 0,
    }
}

/// Serialises one publisher datagram (header + extensions + payload) onto
/// `wire`; sequence number and timestamp are overwritten after parsing.
fn write_datagram(wire: &mut Vec<u8>, index: usize, keyframe: bool) -> Range<usize> {
    let first_of_frame = index as u64 % FRAME_PACKETS == 0;
    let mut payload = vec![(index % 251) as u8; PAYLOAD];
    // VP8 payload descriptor: S=1 PID=0 on the first packet of a frame,
    // then the payload header's P bit (0 = keyframe).
    let descriptor: &[u8] = match (first_of_frame, keyframe) {
        (_, true) => &[0x10, 0x9c, 0x01, 0x2a],
        (true, false) => &[0x10, 0x9d, 0x01, 0x2a],
        (false, false) => &[0x00, 0x55, 0x66, 0x77],
    };
    payload[..descriptor.len()].copy_from_slice(descriptor);
    let mut p = OutPacket {
        ssrc: 0,
        payload_type: PT_VP8,
        marker: index as u64 % FRAME_PACKETS == FRAME_PACKETS - 1,
        payload: Bytes::from(payload),
        ..OutPacket::default()
    };
    p.extensions
        .push(2, Bytes::from_static(&[0x12, 0x34, 0x56])); // abs-send-time
    p.extensions.push(3, Bytes::from_static(&[0x00, 0x2a])); // transport-cc
    p.extensions.push(4, Bytes::from_static(&[0x01])); // video orientation
    p.extensions
        .push(6, Bytes::from_static(&[0x00, 0x00, 0x0a])); // playout delay
    let mut hdr = [0u8; MAX_HEADER_LEN];
    let n = p.write_header(&mut hdr);
    let start = wire.len();
    wire.extend_from_slice(&hdr[..n]);
    wire.extend_from_slice(&p.payload);
    start..wire.len()
}

/// The shared receive buffer: `POOL` delta-frame datagrams back to back,
/// then one keyframe datagram.
struct RxBuffer {
    wire: Bytes,
    deltas: Vec<Range<usize>>,
    keyframe: Range<usize>,
}

impl RxBuffer {
    fn new() -> Self {
        let mut wire = Vec::with_capacity((POOL + 1) * (PAYLOAD + 64));
        let deltas = (0..POOL)
            .map(|i| write_datagram(&mut wire, i, false))
            .collect();
        let keyframe = write_datagram(&mut wire, 0, true);
        let wire = Bytes::from(wire);
        // A Vec-backed `Bytes` allocates its shared refcount on first clone;
        // a receive buffer is shared from the start.
        black_box(wire.clone());
        RxBuffer {
            wire,
            deltas,
            keyframe,
        }
    }

    fn delta(&self, k: u64) -> Bytes {
        self.wire.slice(self.deltas[k as usize % POOL].clone())
    }
}

/// One publisher: its track and its packet counter.
struct Publisher {
    track: TrackHandle,
    ssrc: u32,
    k: u64,
}

impl Publisher {
    /// Parses the publisher's next datagram from the receive buffer, as the
    /// I/O layer would, with a continuous sequence number and timestamp.
    fn next(&mut self, rx: &RxBuffer) -> RtpPacket {
        let datagram = if self.k == 0 {
            rx.wire.slice(rx.keyframe.clone())
        } else {
            rx.delta(self.k)
        };
        let mut pkt = RtpPacket::parse(datagram).expect("valid datagram");
        pkt.ssrc = self.ssrc;
        pkt.sequence_number = (self.k as u16).wrapping_add(40_000); // wraps in the run
        pkt.timestamp = ((self.k / FRAME_PACKETS) as u32)
            .wrapping_mul(FRAME_TICKS)
            .wrapping_add(0xffff_0000);
        self.k += 1;
        pkt
    }
}

struct Fixture {
    router: Router,
    publishers: Vec<Publisher>,
    t0: Instant,
    deliveries: usize,
}

impl Fixture {
    /// `streams` publishers, each played by `players` video down-tracks;
    /// the keyframe is already forwarded, so every gate is open.
    fn new(rx: &RxBuffer, streams: usize, players: usize) -> Self {
        Self::with_layers(rx, streams, players, 1)
    }

    /// The same with each stream sent as `layers` simulcast layers (one
    /// publisher track each) and its players spread evenly over them: a
    /// round (one packet per layer) still delivers one packet per player.
    fn with_layers(rx: &RxBuffer, streams: usize, players: usize, layers: u8) -> Self {
        let mut router = Router::new();
        let mut publishers = Vec::with_capacity(streams * usize::from(layers));
        for s in 0..streams as u32 {
            let stream = router
                .add_stream(StreamKey::new(1, format!("cam-{s}")))
                .unwrap();
            for l in 0..layers {
                let ssrc = 0x1000_0000 + s + (u32::from(l) << 20);
                let info = TrackInfo {
                    layer: l,
                    ..video_info(ssrc)
                };
                let track = router.add_track(stream, info).unwrap();
                publishers.push(Publisher { track, ssrc, k: 0 });
            }
            for p in 0..players as u32 {
                let dt = router
                    .subscribe(
                        stream,
                        MediaKind::Video,
                        player(0x2000_0000 + s * 10_000 + p),
                    )
                    .unwrap();
                router.set_max_layer(dt, (p % u32::from(layers)) as u8);
            }
        }
        let mut f = Fixture {
            router,
            publishers,
            t0: Instant::now(),
            deliveries: streams * players,
        };
        // Keyframe, then a few frames: gates open, output checked once.
        for _ in 0..3 * FRAME_PACKETS {
            assert_eq!(f.round(rx), f.deliveries);
        }
        f
    }

    /// One iteration: one packet per publisher in, every output drained
    /// with `drain_output` (or `poll_output` + `write_header` if `poll`).
    fn round(&mut self, rx: &RxBuffer) -> usize {
        self.round_with(rx, false)
    }

    fn round_with(&mut self, rx: &RxBuffer, poll: bool) -> usize {
        let now = self.t0 + PACKET_INTERVAL * self.publishers[0].k as u32;
        for p in &mut self.publishers {
            let pkt = p.next(rx);
            let summary = self.router.push_rtp(p.track, pkt, now).unwrap();
            black_box(summary);
        }
        while self.router.poll_upstream(now).is_some() {}
        if !poll {
            return self.router.drain_output(|dt, out| {
                black_box(out.header);
                black_box((dt, out.payload.as_ptr(), out.payload.len()));
            });
        }
        let mut header = [0u8; MAX_HEADER_LEN];
        let mut n = 0;
        while let Some((dt, out)) = self.router.poll_output() {
            let len = out.write_header(&mut header);
            black_box(&header[..len]);
            black_box((dt, out.payload.as_ptr(), out.payload.len()));
            n += 1;
        }
        n
    }
}

/// The ideal fan-out: a `Bytes` handle cloned into preallocated queues.
struct Baseline {
    queues: Vec<VecDeque<Bytes>>,
    streams: usize,
    players: usize,
    k: u64,
}

impl Baseline {
    fn new(streams: usize, players: usize) -> Self {
        Baseline {
            queues: (0..streams * players)
                .map(|_| VecDeque::with_capacity(QUEUE))
                .collect(),
            streams,
            players,
            k: 0,
        }
    }

    fn round(&mut self, rx: &RxBuffer) -> usize {
        for s in 0..self.streams {
            let payload = rx.delta(self.k + s as u64);
            let start = s * self.players;
            for q in &mut self.queues[start..start + self.players] {
                q.push_back(payload.clone());
            }
        }
        self.k += 1;
        let mut n = 0;
        for q in &mut self.queues {
            while let Some(b) = q.pop_front() {
                black_box((b.as_ptr(), b.len()));
                n += 1;
            }
        }
        n
    }
}

fn fanout(c: &mut Criterion) {
    let rx = RxBuffer::new();
    let mut group = c.benchmark_group("fanout");
    let cases: [(usize, usize, &str); 5] = [
        (1, 1, "1"),
        (1, 10, "10"),
        (1, 100, "100"),
        (1, 1000, "1000"),
        (100, 10, "100x10"),
    ];
    for (streams, players, label) in cases {
        let deliveries = streams * players;
        group.throughput(Throughput::Elements(deliveries as u64));

        let mut f = Fixture::new(&rx, streams, players);
        group.bench_function(BenchmarkId::new("router", label), |b| {
            b.iter(|| {
                let n = f.round(&rx);
                assert_eq!(n, f.deliveries);
                n
            })
        });
        group.bench_function(BenchmarkId::new("router_poll", label), |b| {
            b.iter(|| {
                let n = f.round_with(&rx, true);
                assert_eq!(n, f.deliveries);
                n
            })
        });
        drop(f);

        let mut base = Baseline::new(streams, players);
        group.bench_function(BenchmarkId::new("baseline", label), |b| {
            b.iter(|| {
                let n = base.round(&rx);
                assert_eq!(n, deliveries);
                n
            })
        });
    }
    group.finish();

    // Simulcast: three layers, the players spread over them, against the
    // single-layer fan-out above (per delivered packet).
    let mut group = c.benchmark_group("simulcast");
    for players in [10usize, 100, 1000] {
        group.throughput(Throughput::Elements(players as u64));
        for (name, layers) in [("single_layer", 1u8), ("three_layers", 3)] {
            let mut f = Fixture::with_layers(&rx, 1, players, layers);
            group.bench_function(BenchmarkId::new(name, players), |b| {
                b.iter(|| {
                    let n = f.round(&rx);
                    assert_eq!(n, f.deliveries);
                    n
                })
            });
        }
    }
    group.finish();
}

/// One VP9 picture of three spatial layers (two packets each) as
/// datagrams, non-scalable (no layer indices) when `layered` is false.
fn vp9_picture(i: usize, layered: bool) -> Vec<Bytes> {
    let key = i == 0;
    let tid = if key { 0 } else { [0u8, 2, 1, 2][i % 4] };
    let mut out = Vec::new();
    for sid in 0..3u8 {
        for part in 0..2 {
            let mut b0 = 0x80 | if key { 0 } else { 0x40 } | if part == 0 { 0x08 } else { 0x04 };
            let mut payload = vec![0u8; PAYLOAD];
            let [hi, lo] = ((i as u16) & 0x7fff).to_be_bytes();
            if layered {
                b0 |= 0x20;
                payload[..5].copy_from_slice(&[
                    b0,
                    0x80 | hi,
                    lo,
                    (tid << 5) | (sid << 1),
                    i as u8,
                ]);
            } else {
                payload[..3].copy_from_slice(&[b0, 0x80 | hi, lo]);
            }
            let p = OutPacket {
                payload_type: PT_VP8,
                sequence_number: (i * 6 + out.len()) as u16,
                timestamp: (i as u32).wrapping_mul(FRAME_TICKS),
                marker: sid == 2 && part == 1,
                payload: Bytes::from(payload),
                ..OutPacket::default()
            };
            let mut hdr = [0u8; MAX_HEADER_LEN];
            let n = p.write_header(&mut hdr);
            let mut wire = hdr[..n].to_vec();
            wire.extend_from_slice(&p.payload);
            out.push(Bytes::from(wire));
        }
    }
    out
}

/// SVC: one VP9 track, `players` spread over the three spatial levels (or
/// all on the top one, or a non-scalable VP9 stream); one round pushes a
/// picture's six packets.
struct SvcFixture {
    router: Router,
    track: TrackHandle,
    pictures: Vec<Vec<Bytes>>,
    i: usize,
    t0: Instant,
}

impl SvcFixture {
    fn new(players: usize, layered: bool, spread: bool) -> Self {
        let mut router = Router::new();
        let stream = router.add_stream(StreamKey::new(1, "svc")).unwrap();
        let info = TrackInfo {
            codec: stream_router::Codec::Vp9,
            ssrc: 0x3000_0000,
            ..video_info(0x3000_0000)
        };
        let track = router.add_track(stream, info).unwrap();
        for p in 0..players as u32 {
            let dt = router
                .subscribe(stream, MediaKind::Video, player(0x4000_0000 + p))
                .unwrap();
            if spread {
                router.set_max_layer(dt, (p % 3) as u8);
            }
        }
        let pictures = (0..64).map(|i| vp9_picture(i, layered)).collect();
        let mut f = SvcFixture {
            router,
            track,
            pictures,
            i: 0,
            t0: Instant::now(),
        };
        for _ in 0..8 {
            f.round();
        }
        f
    }

    fn round(&mut self) -> usize {
        let now = self.t0 + PACKET_INTERVAL * self.i as u32;
        // Picture 0 (the keyframe) once; then 1..64 again and again, with
        // numbers that keep going up.
        let k = if self.i == 0 {
            0
        } else {
            1 + (self.i - 1) % 63
        };
        for (j, d) in self.pictures[k].iter().enumerate() {
            let mut pkt = RtpPacket::parse(d.clone()).expect("valid");
            pkt.ssrc = 0x3000_0000;
            pkt.sequence_number = (self.i * 6 + j) as u16;
            pkt.timestamp = (self.i as u32).wrapping_mul(FRAME_TICKS);
            black_box(self.router.push_rtp(self.track, pkt, now).unwrap());
        }
        self.i += 1;
        while self.router.poll_upstream(now).is_some() {}
        self.router.drain_output(|dt, out| {
            black_box(out.header);
            black_box((dt, out.payload.as_ptr(), out.payload.len()));
        })
    }
}

fn svc(c: &mut Criterion) {
    // Per delivered packet: a non-scalable VP9 stream, SVC with every
    // player on the top level (nothing dropped), and players spread over
    // the three levels (drops, gaps closed, markers set).
    let mut group = c.benchmark_group("svc");
    for players in [10usize, 100] {
        for (name, layered, spread) in [
            ("vp9_single", false, false),
            ("svc_top", true, false),
            ("svc_spread", true, true),
        ] {
            let mut f = SvcFixture::new(players, layered, spread);
            let per_round = f.round();
            group.throughput(Throughput::Elements(per_round as u64));
            group.bench_function(BenchmarkId::new(name, players), |b| b.iter(|| f.round()));
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = fanout, svc
}
criterion_main!(benches);
