//! Integration tests of the wire format: RTP parsing of valid, truncated and
//! pseudo-random datagrams, header serialisation round trips, and keyframe
//! detectors fed with garbage.

mod common;

use bytes::Bytes;
use common::Rng;
use stream_router::{Codec, OutPacket, ParseError, RtpPacket, MAX_EXTENSIONS, MAX_HEADER_LEN};

/// A valid packet: CSRC, one-byte extensions, payload and padding.
fn sample() -> Vec<u8> {
    let mut v = vec![0xb1, 0xe0, 0x01, 0x02, 0, 0, 0, 9, 0, 0, 0, 0x42];
    v.extend_from_slice(&[0, 0, 0, 7]); // CSRC
    v.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x85, 0x30, 0x01]);
    v.extend_from_slice(b"hello");
    v.extend_from_slice(&[0, 2]); // padding
    v
}

#[test]
fn valid_sample_parses() {
    let data = Bytes::from(sample());
    let p = RtpPacket::parse(data.clone()).unwrap();
    assert!(p.marker);
    assert_eq!(p.payload_type, 0x60);
    assert_eq!((p.sequence_number, p.timestamp, p.ssrc), (0x0102, 9, 0x42));
    assert_eq!(&p.payload[..], b"hello");
    assert_eq!(p.payload.as_ptr(), data[24..].as_ptr());
    assert_eq!(&p.extensions.get(1).unwrap()[..], &[0x85]);
    assert_eq!(&p.extensions.get(3).unwrap()[..], &[0x01]);
}

#[test]
fn every_truncation_is_handled() {
    let full = sample();
    for len in 0..full.len() {
        let res = RtpPacket::parse(Bytes::copy_from_slice(&full[..len]));
        let expected = match len {
            0..=11 => Some(ParseError::TooShort),
            12..=15 => Some(ParseError::TruncatedCsrc),
            16..=23 => Some(ParseError::BadExtension),
            // The padding count is read from the last byte, which is now a
            // payload byte: 0, or a count larger than what is left.
            _ => Some(ParseError::BadPadding),
        };
        assert_eq!(res.err(), expected, "len {len}");
    }
    assert!(RtpPacket::parse(Bytes::from(full)).is_ok());
}

#[test]
fn pseudo_random_datagrams_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut err) = (0u32, 0u32);
    for i in 0..5000u32 {
        let len = rng.below(80) as usize;
        let mut v = rng.bytes(len);
        // Bias most inputs towards version 2 so parsing goes deep, with the
        // extension bit often set and a real profile.
        if i % 4 != 0 && len > 0 {
            v[0] = 0x80 | (v[0] & 0x3f);
            if len >= 16 && i % 3 == 0 {
                v[0] = (v[0] & 0xf0) | 0x10;
                let profile: [u8; 2] = if i % 2 == 0 {
                    [0xbe, 0xde]
                } else {
                    [0x10, 0x00]
                };
                v[12..14].copy_from_slice(&profile);
                v[14] = 0;
                v[15] = (rng.below(4)) as u8;
            }
        }
        let data = Bytes::from(v);
        match RtpPacket::parse(data.clone()) {
            Ok(p) => {
                ok += 1;
                let range = data.as_ptr_range();
                assert!(range.contains(&p.payload.as_ptr()) || p.payload.is_empty());
                assert!(p.payload.len() <= data.len() - 12);
                assert!(p.extensions.len() <= MAX_EXTENSIONS);
                for e in &p.extensions {
                    assert!(e.value.is_empty() || range.contains(&e.value.as_ptr()));
                }
                // Anything parsed can be re-serialised.
                let out = OutPacket {
                    ssrc: p.ssrc,
                    payload_type: p.payload_type,
                    sequence_number: p.sequence_number,
                    timestamp: p.timestamp,
                    marker: p.marker,
                    extensions: p.extensions.clone(),
                    payload: p.payload.clone(),
                    is_retransmission: false,
                    vp8: None,
                    padding: false,
                };
                let mut buf = [0u8; MAX_HEADER_LEN];
                let n = out.write_header(&mut buf);
                assert!(n >= 12);
                let mut wire = buf[..n].to_vec();
                wire.extend_from_slice(&p.payload);
                let back = RtpPacket::parse(Bytes::from(wire)).unwrap();
                assert_eq!(back.payload, p.payload);
                assert_eq!(back.sequence_number, p.sequence_number);
            }
            Err(_) => err += 1,
        }
        for codec in [Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Av1, Codec::Opus] {
            let _ = codec.is_keyframe_start(&data);
        }
    }
    assert!(ok > 500, "ok = {ok}");
    assert!(err > 500, "err = {err}");
}

#[test]
fn write_header_round_trip_with_remapped_extensions() {
    let mut p = OutPacket {
        ssrc: 0xcafe_babe,
        payload_type: 120,
        sequence_number: 65535,
        timestamp: u32::MAX,
        marker: true,
        payload: Bytes::from_static(b"frame"),
        is_retransmission: true,
        ..OutPacket::default()
    };
    p.extensions.push(9, Bytes::from_static(&[0x85]));
    p.extensions.push(10, Bytes::from_static(&[0x01]));
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = p.write_header(&mut buf);
    assert_eq!(n, 20);
    assert_eq!(
        buf[..n],
        [
            0x90, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xca, 0xfe, 0xba, 0xbe, 0xbe, 0xde,
            0x00, 0x01, 0x90, 0x85, 0xa0, 0x01
        ]
    );
    let mut wire = buf[..n].to_vec();
    wire.extend_from_slice(&p.payload);
    let back = RtpPacket::parse(Bytes::from(wire)).unwrap();
    assert_eq!(back.extensions, p.extensions);
    assert_eq!(&back.payload[..], b"frame");
}
