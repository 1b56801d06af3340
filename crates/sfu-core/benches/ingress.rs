//! What the media worker adds per publisher datagram around `rtc`, one
//! group per piece (issue 10, item 2):
//!
//! * `relay/*`: a publisher's packet relayed to another worker — built,
//!   sent through the target worker's real mailbox and received, in
//!   batches of 64 as a worker drains it. (The message carries the
//!   publisher's track info: by value before, shared after.)
//! * `into_rtc/*`: a received datagram handed to `rtc` as the `BytesMut`
//!   its `handle_read` takes: `copy` allocates one per datagram and copies
//!   the bytes (before); `split` cuts it from the receive batch's own buffer
//!   (after: one buffer per `recvmmsg` call, reclaimed in place once `rtc`
//!   has dropped every datagram of the previous call).
//!
//! Run: `cargo bench -p sfu-core --bench ingress`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sfu_core::media::relay::{mailbox, Inbound, Relay};
use stream_router::{Codec, ExtKind, ExtMap, MediaKind, RtpPacket, StreamKey, TrackInfo};

fn video() -> TrackInfo {
    TrackInfo {
        kind: MediaKind::Video,
        codec: Codec::Vp8,
        clock_rate: 90_000,
        ssrc: 0x1234,
        payload_type: 96,
        extensions: ExtMap::new()
            .with(2, ExtKind::AbsSendTime)
            .with(4, ExtKind::VideoOrientation),
        layer: 0,
    }
}

/// A clone of whatever the relay's `info` field is.
fn share<T: Clone>(t: &T) -> T {
    t.clone()
}

fn relay(c: &mut Criterion) {
    let mut group = c.benchmark_group("relay");
    const BATCH: usize = 64;
    group.throughput(Throughput::Elements(BATCH as u64));
    let (tx, mut rx) = mailbox();
    let key = StreamKey::new(1, "cam");
    let info = video().into();
    let payload = Bytes::from(vec![7u8; 1100]);
    let mut packet = RtpPacket {
        payload_type: 96,
        ssrc: 0x1234,
        payload,
        ..RtpPacket::default()
    };
    packet.extensions.push(4, Bytes::from_static(&[1]));
    let t0 = std::time::Instant::now();
    group.bench_function("send_recv", |b| {
        b.iter(|| {
            for seq in 0..BATCH as u16 {
                let mut p = packet.clone();
                p.sequence_number = seq;
                tx.relay(Relay {
                    key: key.clone(),
                    publisher: 1,
                    from: 0,
                    profile: 0,
                    info: share(&info),
                    received: t0,
                    packet: p,
                });
            }
            for _ in 0..BATCH {
                if let Some(Inbound::Relay(r)) = rx.try_recv() {
                    black_box(&r);
                }
            }
        })
    });
    group.finish();
    eprintln!(
        "size_of::<Relay>() = {} bytes",
        std::mem::size_of::<Relay>()
    );
}

fn into_rtc(c: &mut Criterion) {
    const DATAGRAMS: usize = 32;
    const SIZE: usize = 2048;
    const LEN: usize = 1200;
    let mut group = c.benchmark_group("into_rtc");
    group.throughput(Throughput::Elements(DATAGRAMS as u64));
    // What recvmmsg filled: 32 slots of 2048 bytes, 1200 used in each.
    let received = vec![0x80u8; DATAGRAMS * SIZE];
    // The receive batch's fixed buffers (before).
    let mut fixed = vec![0u8; DATAGRAMS * SIZE];
    group.bench_function("copy", |b| {
        b.iter(|| {
            fixed.copy_from_slice(&received); // the kernel's write
            for i in 0..DATAGRAMS {
                let d = BytesMut::from(&fixed[i * SIZE..i * SIZE + LEN]);
                black_box(d); // rtc reads it and drops it
            }
        })
    });
    let mut chunk = BytesMut::new();
    group.bench_function("split", |b| {
        b.iter(|| {
            // As `RecvBatch::recv` does: room for a full call, in place
            // when the previous call's datagrams are all gone.
            chunk.reserve(DATAGRAMS * SIZE);
            chunk.extend_from_slice(&received); // the kernel's write
            for _ in 0..DATAGRAMS {
                let mut d = chunk.split_to(SIZE);
                d.truncate(LEN);
                black_box(d);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, relay, into_rtc);
criterion_main!(benches);
