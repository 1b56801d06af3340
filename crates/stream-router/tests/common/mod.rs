//! Shared fixtures for the integration tests: track/down-track descriptions,
//! packet builders, a drain helper and a tiny deterministic PRNG.
#![allow(dead_code)]

use bytes::Bytes;
use stream_router::{
    Codec, DownTrackConfig, DownTrackHandle, ExtKind, ExtMap, MediaKind, OutPacket, Router,
    RtpPacket, TrackInfo, MAX_HEADER_LEN,
};

pub const PT_OPUS: u8 = 111;
pub const PT_VP8: u8 = 96;

/// Publisher-leg extension IDs used by the fixtures.
pub fn publisher_exts() -> ExtMap {
    ExtMap::new()
        .with(1, ExtKind::AudioLevel)
        .with(3, ExtKind::TransportCc)
        .with(4, ExtKind::VideoOrientation)
        .with(5, ExtKind::AbsSendTime)
}

pub fn audio_info(ssrc: u32) -> TrackInfo {
    TrackInfo {
        kind: MediaKind::Audio,
        codec: Codec::Opus,
        clock_rate: 48_000,
        ssrc,
        payload_type: PT_OPUS,
        extensions: publisher_exts(),
        layer: 0,
    }
}

pub fn video_info(ssrc: u32) -> TrackInfo {
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

/// A player leg: audio level on 9, orientation on 10, transport-cc on 2.
pub fn player(ssrc: u32, queue_capacity: usize) -> DownTrackConfig {
    DownTrackConfig {
        ssrc,
        payload_type: 120,
        extensions: ExtMap::new()
            .with(9, ExtKind::AudioLevel)
            .with(10, ExtKind::VideoOrientation)
            .with(2, ExtKind::TransportCc),
        queue_capacity,
    }
}

pub fn packet(info: &TrackInfo, seq: u16, ts: u32, payload: Bytes) -> RtpPacket {
    RtpPacket {
        marker: false,
        payload_type: info.payload_type,
        sequence_number: seq,
        timestamp: ts,
        ssrc: info.ssrc,
        extensions: Default::default(),
        payload,
    }
}

/// VP8 payloads: start of partition 0 with P=0 (keyframe) or P=1.
pub const VP8_KEY: &[u8] = &[0x10, 0x9c, 0x01, 0x2a];
pub const VP8_DELTA: &[u8] = &[0x10, 0x9d, 0x01, 0x2a];
/// A continuation packet (S=0) of any frame.
pub const VP8_CONT: &[u8] = &[0x00, 0x55, 0x66];

pub fn drain(router: &mut Router) -> Vec<(DownTrackHandle, OutPacket)> {
    std::iter::from_fn(|| router.poll_output()).collect()
}

pub fn drain_one(router: &mut Router, dt: DownTrackHandle) -> Vec<OutPacket> {
    std::iter::from_fn(|| router.poll_downtrack(dt)).collect()
}

/// xorshift64*: deterministic pseudo-random numbers for fuzz-style tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// A datagram as a publisher sends it: `p`'s header, then its payload.
pub fn datagram(p: &OutPacket) -> Bytes {
    let mut hdr = [0u8; MAX_HEADER_LEN];
    let n = p.write_header(&mut hdr);
    let mut wire = hdr[..n].to_vec();
    wire.extend_from_slice(&p.payload);
    Bytes::from(wire)
}
