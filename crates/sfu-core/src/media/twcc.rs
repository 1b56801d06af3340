//! The transport-wide sequence number (draft-holmer-rmcat-transport-wide-
//! cc-extensions-01) written into every packet a player connection sends,
//! on either egress path: the router's header is copied once into the send
//! buffer anyway, so the extension is added during that copy.
//!
//! The router writes one-byte (`0xBEDE`) or two-byte (`0x100x`) extension
//! blocks. The element is inserted right after the block's last element
//! and the block re-padded, which is byte for byte how `rtc` serialises
//! the same header (so the fast path's verification still matches); a
//! header without a block gets one.

/// At most this many bytes [`stamp`] adds to a header (one extension word,
/// plus the block's own header word when the packet had no block).
pub fn added_len(header: &[u8]) -> usize {
    if header.first().is_some_and(|b| b & 0x10 != 0) {
        4
    } else {
        8
    }
}

/// End (offset in `block`) of the last element of an RFC 8285 block body.
fn elements_end(block: &[u8], two_byte: bool) -> Option<usize> {
    let (mut i, mut end) = (0, 0);
    while i < block.len() {
        let b = block[i];
        if b == 0 {
            i += 1; // padding
            continue;
        }
        let (len, head) = if two_byte {
            (usize::from(*block.get(i + 1)?), 2)
        } else {
            if b >> 4 == 15 {
                break;
            }
            (usize::from(b & 0x0f) + 1, 1)
        };
        i += head + len;
        if i > block.len() {
            return None;
        }
        end = i;
    }
    Some(end)
}

/// Writes `header` (a complete RTP header, as the router made it) into
/// `out` with the transport-wide sequence number `seq` under extension
/// `id` (1..=14) and returns the new header's length (at most
/// `header.len() + added_len(header)`). `None` if the header is malformed
/// or `out` too short (the caller then sends it unstamped).
pub fn stamp(header: &[u8], id: u8, seq: u16, out: &mut [u8]) -> Option<usize> {
    let first = *header.first()?;
    let fixed = 12 + 4 * usize::from(first & 0x0f);
    if header.len() < fixed || !(1..=14).contains(&id) {
        return None;
    }
    let [hi, lo] = seq.to_be_bytes();
    if first & 0x10 == 0 {
        let n = header.len() + 8;
        let out = out.get_mut(..n)?;
        out[..fixed].copy_from_slice(&header[..fixed]);
        out[0] |= 0x10;
        out[fixed..fixed + 8].copy_from_slice(&[0xBE, 0xDE, 0, 1, (id << 4) | 1, hi, lo, 0]);
        out[fixed + 8..].copy_from_slice(&header[fixed..]);
        return Some(n);
    }
    let profile = u16::from_be_bytes([*header.get(fixed)?, *header.get(fixed + 1)?]);
    let words = usize::from(u16::from_be_bytes([
        *header.get(fixed + 2)?,
        *header.get(fixed + 3)?,
    ]));
    let body = fixed + 4;
    if header.len() != body + 4 * words {
        return None;
    }
    let (two_byte, element): (bool, &[u8]) = match profile {
        0xBEDE => (false, &[(id << 4) | 1, hi, lo]),
        p if p & 0xfff0 == 0x1000 => (true, &[id, 2, hi, lo]),
        _ => return None,
    };
    let used = body + elements_end(&header[body..], two_byte)?;
    let content = used + element.len();
    let padded = body + (content - body).div_ceil(4) * 4;
    let new_words = u16::try_from((padded - body) / 4).ok()?;
    let out = out.get_mut(..padded)?;
    out[..used].copy_from_slice(&header[..used]);
    out[fixed + 2..fixed + 4].copy_from_slice(&new_words.to_be_bytes());
    out[used..content].copy_from_slice(element);
    out[content..].fill(0);
    Some(padded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stream_router::RtpPacket;

    fn parse(h: &[u8]) -> RtpPacket {
        let mut d = h.to_vec();
        d.extend_from_slice(b"payload");
        RtpPacket::parse(bytes::Bytes::from(d)).unwrap()
    }

    fn twcc_of(p: &RtpPacket, id: u8) -> Option<u16> {
        p.extensions
            .get(id)
            .map(|v| u16::from_be_bytes([v[0], v[1]]))
    }

    #[test]
    fn adds_a_block_to_a_bare_header() {
        let h = [0x80, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        let mut out = [0u8; 64];
        let n = stamp(&h, 5, 0xABCD, &mut out).unwrap();
        assert_eq!(n, h.len() + added_len(&h));
        let p = parse(&out[..n]);
        assert_eq!((p.sequence_number, p.ssrc), (1, 3));
        assert_eq!(twcc_of(&p, 5), Some(0xABCD));
    }

    #[test]
    fn appends_to_one_and_two_byte_blocks() {
        // One-byte block: audio level (id 1, one byte) + 2 bytes padding.
        let h = [
            0x90, 111, 0, 7, 0, 0, 0, 9, 0, 0, 0, 4, 0xBE, 0xDE, 0, 1, 0x10, 0x7f, 0, 0,
        ];
        let mut out = [0u8; 64];
        let n = stamp(&h, 3, 77, &mut out).unwrap();
        // Right after the audio level, then padded: as rtc writes it.
        assert_eq!(n, h.len() + 4);
        assert_eq!(&out[16..24], &[0x10, 0x7f, 0x31, 0, 77, 0, 0, 0]);
        let p = parse(&out[..n]);
        assert_eq!(twcc_of(&p, 3), Some(77));
        assert_eq!(p.extensions.get(1).unwrap(), &[0x7f][..]);
        // Two-byte block.
        let h = [
            0x90, 96, 0, 7, 0, 0, 0, 9, 0, 0, 0, 4, 0x10, 0x00, 0, 1, 4, 1, 0x55, 0,
        ];
        let n = stamp(&h, 3, 78, &mut out).unwrap();
        assert_eq!(twcc_of(&parse(&out[..n]), 3), Some(78));
    }

    /// The fast path's verification compares our bytes with `rtc`'s: a
    /// stamped header must be exactly what `rtc` re-serialises.
    #[test]
    fn stamped_headers_are_what_rtc_writes() {
        use rtc::shared::marshal::{Marshal, Unmarshal};
        let headers: [&[u8]; 3] = [
            &[0x80, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
            &[
                0x90, 111, 0, 7, 0, 0, 0, 9, 0, 0, 0, 4, 0xBE, 0xDE, 0, 1, 0x10, 0x7f, 0, 0,
            ],
            &[
                0x90, 96, 0, 7, 0, 0, 0, 9, 0, 0, 0, 4, 0xBE, 0xDE, 0, 2, 0x40, 0x01, 0x10, 0x7f,
                0x72, 1, 2, 3,
            ],
        ];
        for h in headers {
            let mut out = [0u8; 64];
            let n = stamp(h, 3, 0x1234, &mut out).unwrap();
            let mut reader = &out[..n];
            let parsed = rtc::rtp::header::Header::unmarshal(&mut reader).unwrap();
            assert_eq!(parsed.marshal().unwrap().as_ref(), &out[..n], "{h:02x?}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_stamp() {
        let mut out = [0u8; 64];
        assert_eq!(stamp(&[0x80, 96], 3, 1, &mut out), None);
        let h = [0x80, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        assert_eq!(stamp(&h, 15, 1, &mut out), None);
        assert_eq!(stamp(&h, 3, 1, &mut out[..10]), None);
        // Block length beyond the header.
        let h = [
            0x90, 96, 0, 7, 0, 0, 0, 9, 0, 0, 0, 4, 0xBE, 0xDE, 0, 2, 0x10, 0, 0, 0,
        ];
        assert_eq!(stamp(&h, 3, 1, &mut out), None);
    }
}
