//! Outgoing packets: what a down-track hands to the I/O layer.
//!
//! An [`OutPacket`] carries the rewritten header fields and the *same*
//! payload buffer the publisher's packet arrived in. The I/O layer serialises
//! the header with [`OutPacket::write_header`] into its own small buffer and
//! sends header + payload with vectored I/O (or SRTP-protects them), so the
//! media bytes are never copied by the router.
//!
//! [`Router::drain_output`](crate::Router::drain_output) is the faster path:
//! it lends each packet as an [`Outgoing`] whose header is already
//! serialised (the forwarded extension block is built once per packet and
//! player extension map, then copied), with no `OutPacket` built at all.

use bytes::Bytes;

use crate::packet::{Extensions, MAX_EXTENSIONS};

/// Upper bound of [`OutPacket::header_len`]: fixed header, extension block
/// header and [`MAX_EXTENSIONS`] two-byte elements of 255 bytes, padded.
pub const MAX_HEADER_LEN: usize = 12 + 4 + MAX_EXTENSIONS * (2 + 255) + 3;

/// A packet rewritten for one player leg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutPacket {
    /// The player leg's SSRC.
    pub ssrc: u32,
    /// The player leg's payload type.
    pub payload_type: u8,
    /// Rewritten, continuous sequence number.
    pub sequence_number: u16,
    /// Rewritten timestamp.
    pub timestamp: u32,
    /// Marker bit, as received.
    pub marker: bool,
    /// Forwardable extensions, remapped to the player leg's IDs.
    pub extensions: Extensions,
    /// The publisher's payload buffer (not a copy).
    pub payload: Bytes,
    /// True when this is a NACK-triggered resend of an earlier packet.
    pub is_retransmission: bool,
    /// VP8: the picture numbers to write into the sender's copy of the
    /// payload (see [`Vp8Patch::apply`](crate::Vp8Patch::apply)).
    pub vp8: Option<crate::vp8::Vp8Patch>,
    /// A padding-only packet (a bandwidth probe, [`Router::queue_padding`](
    /// crate::Router::queue_padding)): the P bit is set and `payload` is
    /// all padding (empty here: the sender adds its own).
    pub padding: bool,
}

/// A rewritten packet lent to the callback of
/// [`Router::drain_output`](crate::Router::drain_output): the serialised
/// RTP header (exactly the bytes [`OutPacket::write_header`] would produce)
/// and the publisher's payload buffer. Send `header` followed by `payload`.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The rewritten RTP header, extension block included.
    pub header: &'a [u8],
    /// The publisher's payload buffer (not a copy); clone it to keep it.
    pub payload: &'a Bytes,
    /// The player leg's SSRC (also in `header`).
    pub ssrc: u32,
    /// Rewritten sequence number (also in `header`).
    pub sequence_number: u16,
    /// Rewritten timestamp (also in `header`).
    pub timestamp: u32,
    /// True when this is a NACK-triggered resend of an earlier packet.
    pub is_retransmission: bool,
    /// VP8: the picture numbers to write into the sender's copy of the
    /// payload, which is otherwise the publisher's as received (see
    /// [`Vp8Patch::apply`](crate::Vp8Patch::apply)).
    pub vp8: Option<crate::vp8::Vp8Patch>,
    /// A padding-only packet (P bit set in `header`; `payload` is
    /// [`PADDING_LEN`] bytes of padding, its last byte their count).
    pub padding: bool,
}

/// Payload length of a padding packet on the fast path (the most one
/// padding count byte can say).
pub const PADDING_LEN: usize = 255;

/// The payload of every padding packet: zeros, then the count.
pub(crate) static PADDING: [u8; PADDING_LEN] = {
    let mut p = [0u8; PADDING_LEN];
    p[PADDING_LEN - 1] = PADDING_LEN as u8;
    p
};

/// Length of the RFC 8285 block for `items` (4-byte block header included,
/// padded to 4 bytes; 0 when nothing is writable) and whether the one-byte
/// form fits every element. ID 0 and values over 255 bytes are skipped.
fn block_layout<'a>(items: impl Iterator<Item = (u8, &'a [u8])>) -> (usize, bool) {
    let (mut count, mut bytes, mut one_byte) = (0usize, 0usize, true);
    for (id, v) in items {
        if id == 0 || v.len() > 255 {
            continue;
        }
        count += 1;
        bytes += v.len();
        one_byte &= id <= 14 && (1..=16).contains(&v.len());
    }
    if count == 0 {
        return (0, true);
    }
    let body = bytes + if one_byte { count } else { 2 * count };
    (4 + body.div_ceil(4) * 4, one_byte)
}

/// Writes the block laid out by [`block_layout`] into `out` (exactly `len`
/// bytes long).
fn write_block_at<'a>(items: impl Iterator<Item = (u8, &'a [u8])>, one_byte: bool, out: &mut [u8]) {
    let profile: u16 = if one_byte { 0xBEDE } else { 0x1000 };
    // The block is bounded by MAX_HEADER_LEN: its word count fits u16.
    let words = ((out.len() - 4) / 4) as u16;
    out[0..2].copy_from_slice(&profile.to_be_bytes());
    out[2..4].copy_from_slice(&words.to_be_bytes());
    let mut i = 4;
    for (id, value) in items {
        if id == 0 || value.len() > 255 {
            continue;
        }
        i = put_element(out, i, id, value, one_byte);
    }
    out[i..].fill(0);
}

/// Writes one RFC 8285 element (`id`, `value`) at `at` in the one-byte or
/// two-byte form; returns where the next one starts. The caller has laid
/// the block out, so it fits.
#[inline(always)]
pub(crate) fn put_element(
    out: &mut [u8],
    at: usize,
    id: u8,
    value: &[u8],
    one_byte: bool,
) -> usize {
    let at = if one_byte {
        out[at] = (id << 4) | (value.len() as u8).wrapping_sub(1);
        at + 1
    } else {
        out[at] = id;
        out[at + 1] = value.len() as u8;
        at + 2
    };
    copy_value(&mut out[at..at + value.len()], value);
    at + value.len()
}

/// `dst.copy_from_slice(src)` for equal lengths, without a `memcpy` call
/// for the short values extensions usually carry.
#[inline(always)]
fn copy_value(dst: &mut [u8], src: &[u8]) {
    match (dst, src) {
        ([d0], [s0]) => *d0 = *s0,
        ([d0, d1], [s0, s1]) => (*d0, *d1) = (*s0, *s1),
        ([d0, d1, d2], [s0, s1, s2]) => (*d0, *d1, *d2) = (*s0, *s1, *s2),
        ([d0, d1, d2, d3], [s0, s1, s2, s3]) => (*d0, *d1, *d2, *d3) = (*s0, *s1, *s2, *s3),
        (d, s) => d.copy_from_slice(s),
    }
}

/// Writes the 12-byte fixed RTP header (version 2, no padding, no CSRCs).
#[inline]
pub(crate) fn write_fixed(
    out: &mut [u8; 12],
    has_ext: bool,
    marker: bool,
    payload_type: u8,
    sequence_number: u16,
    timestamp: u32,
    ssrc: u32,
) {
    out[0] = 0x80 | if has_ext { 0x10 } else { 0 };
    out[1] = (u8::from(marker) << 7) | (payload_type & 0x7f);
    out[2..4].copy_from_slice(&sequence_number.to_be_bytes());
    out[4..8].copy_from_slice(&timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Bytes 0..8 of a padding packet's header (V=2, P=1, no extension block)
/// into `buf`, whose bytes 8..12 hold the player's SSRC; returns 12.
pub(crate) fn write_padding_header(
    payload_type: u8,
    seq: u16,
    ts: u32,
    buf: &mut [u8; MAX_HEADER_LEN],
) -> usize {
    buf[0] = 0xa0;
    buf[1] = payload_type & 0x7f;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    12
}

impl OutPacket {
    fn items(&self) -> impl Iterator<Item = (u8, &[u8])> + Clone + '_ {
        self.extensions.items()
    }

    /// Number of bytes [`OutPacket::write_header`] writes.
    pub fn header_len(&self) -> usize {
        12 + block_layout(self.items()).0
    }

    /// Serialises the RTP header (version 2, no padding, no CSRCs, with an
    /// RFC 8285 extension block when there are extensions: one-byte form when
    /// every ID is 1..=14 and every value 1..=16 bytes, two-byte form
    /// otherwise; ID 0 and values over 255 bytes are skipped).
    ///
    /// Returns the number of bytes written, or 0 (writing nothing) if `buf`
    /// is shorter than [`OutPacket::header_len`]. A buffer of
    /// [`MAX_HEADER_LEN`] bytes always suffices.
    pub fn write_header(&self, buf: &mut [u8]) -> usize {
        let (ext_len, one_byte) = block_layout(self.items());
        let Some((fixed, rest)) = buf
            .get_mut(..12 + ext_len)
            .and_then(|b| b.split_first_chunk_mut::<12>())
        else {
            return 0;
        };
        write_fixed(
            fixed,
            ext_len > 0,
            self.marker,
            self.payload_type,
            self.sequence_number,
            self.timestamp,
            self.ssrc,
        );
        if self.padding {
            fixed[0] |= 0x20;
        }
        if ext_len > 0 {
            write_block_at(self.items(), one_byte, rest);
        }
        12 + ext_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::RtpPacket;

    fn out(exts: &[(u8, &'static [u8])]) -> OutPacket {
        let mut p = OutPacket {
            ssrc: 0x0102_0304,
            payload_type: 96,
            sequence_number: 0xfffe,
            timestamp: 0xa0b0_c0d0,
            marker: true,
            payload: Bytes::from_static(b"payload"),
            ..OutPacket::default()
        };
        for (id, v) in exts {
            p.extensions.push(*id, Bytes::from_static(v));
        }
        p
    }

    fn round_trip(p: &OutPacket) -> RtpPacket {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = p.write_header(&mut buf);
        assert_eq!(n, p.header_len());
        let mut v = buf[..n].to_vec();
        v.extend_from_slice(&p.payload);
        RtpPacket::parse(Bytes::from(v)).unwrap()
    }

    #[test]
    fn plain_header_bytes() {
        let p = out(&[]);
        let mut buf = [0xffu8; 20];
        assert_eq!(p.write_header(&mut buf), 12);
        assert_eq!(
            buf[..12],
            [
                0x80,
                0x80 | 96,
                0xff,
                0xfe,
                0xa0,
                0xb0,
                0xc0,
                0xd0,
                1,
                2,
                3,
                4
            ]
        );
        assert_eq!(buf[12], 0xff); // untouched
    }

    #[test]
    fn one_byte_form_bytes() {
        let p = out(&[(1, &[0x7f]), (14, &[1, 2])]);
        let mut buf = [0xffu8; 32];
        assert_eq!(p.write_header(&mut buf), 24);
        assert_eq!(buf[0], 0x90);
        assert_eq!(
            buf[12..24],
            [0xbe, 0xde, 0, 2, 0x10, 0x7f, 0xe1, 1, 2, 0, 0, 0]
        );
        let back = round_trip(&p);
        assert_eq!(&back.extensions.get(14).unwrap()[..], &[1, 2]);
        assert_eq!(back.sequence_number, 0xfffe);
        assert!(back.marker);
        assert_eq!(&back.payload[..], b"payload");
    }

    #[test]
    fn two_byte_form_when_needed() {
        // ID > 14 forces the two-byte form; so does an empty value.
        for exts in [
            &[(1u8, &[9u8][..]), (20, &[1, 2, 3])][..],
            &[(2, &[][..])][..],
        ] {
            let p = out(exts);
            let mut buf = [0u8; 64];
            let n = p.write_header(&mut buf);
            assert_eq!(buf[12..14], [0x10, 0x00]);
            assert_eq!(n % 4, 0);
            let back = round_trip(&p);
            assert_eq!(back.extensions.len(), exts.len());
            for (id, v) in exts {
                assert_eq!(&back.extensions.get(*id).unwrap()[..], *v);
            }
        }
    }

    #[test]
    fn unencodable_extensions_are_skipped() {
        static BIG: [u8; 300] = [0; 300];
        let p = out(&[(0, &[1]), (3, &BIG)]);
        assert_eq!(p.header_len(), 12);
        let p = out(&[(0, &[1]), (3, &BIG), (4, &[5])]);
        assert_eq!(p.header_len(), 20);
        assert_eq!(round_trip(&p).extensions.len(), 1);
    }

    #[test]
    fn short_buffer_writes_nothing() {
        let p = out(&[(1, &[1])]);
        let mut buf = [0xaau8; 19];
        assert_eq!(p.write_header(&mut buf), 0);
        assert!(buf.iter().all(|&b| b == 0xaa));
    }

    #[test]
    fn max_header_len_is_enough() {
        static V: [u8; 255] = [7; 255];
        let exts: Vec<(u8, &'static [u8])> = (1..=8).map(|i| (i, &V[..])).collect();
        let p = out(&exts);
        assert_eq!(p.header_len(), 12 + 4 + 8 * 257);
        assert!(p.header_len() <= MAX_HEADER_LEN);
        let mut buf = [0u8; MAX_HEADER_LEN];
        assert!(p.write_header(&mut buf) > 0);
        assert_eq!(round_trip(&p).extensions.len(), 8);
    }
}
