//! The router's own RTP packet type and a zero-copy RTP parser.
//!
//! [`RtpPacket`] is what publishers push in. Its payload and header-extension
//! values are [`Bytes`] slices of the received datagram, so parsing and
//! forwarding never copy media. Header extensions live in [`Extensions`], a
//! fixed-capacity inline list (no `Vec`, no allocation).

use bytes::Bytes;

/// Maximum number of header extensions kept per packet; extra ones are
/// dropped (WebRTC senders use far fewer).
pub const MAX_EXTENSIONS: usize = 8;

/// One RTP header extension element (RFC 8285).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extension {
    /// Extension ID on the leg the packet belongs to (1..=255).
    pub id: u8,
    /// Extension data (a slice of the datagram when parsed).
    pub value: Bytes,
}

/// A fixed-capacity inline list of at most [`MAX_EXTENSIONS`] extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    items: [Extension; MAX_EXTENSIONS],
    len: u8,
}

impl Extensions {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an extension; returns false (and drops it) when full.
    pub fn push(&mut self, id: u8, value: Bytes) -> bool {
        match self.items.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = Extension { id, value };
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Number of extensions held.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The extensions as a slice.
    pub fn as_slice(&self) -> &[Extension] {
        self.items.get(..self.len()).unwrap_or(&[])
    }

    /// Iterates over the extensions.
    pub fn iter(&self) -> std::slice::Iter<'_, Extension> {
        self.as_slice().iter()
    }

    /// The value of the first extension with `id`.
    pub fn get(&self, id: u8) -> Option<&Bytes> {
        self.iter().find(|e| e.id == id).map(|e| &e.value)
    }

    /// Removes every extension.
    pub fn clear(&mut self) {
        for e in &mut self.items[..] {
            e.value = Bytes::new();
        }
        self.len = 0;
    }
}

impl<'a> IntoIterator for &'a Extensions {
    type Item = &'a Extension;
    type IntoIter = std::slice::Iter<'a, Extension>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// An RTP packet as received from a publisher (RFC 3550), with CSRCs
/// skipped and padding removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtpPacket {
    /// Marker bit (end of frame for video).
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Header extensions (publisher-leg IDs).
    pub extensions: Extensions,
    /// Media payload, without padding.
    pub payload: Bytes,
}

/// Why a datagram is not a valid RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than the 12-byte fixed header.
    TooShort,
    /// Version field is not 2.
    BadVersion,
    /// The CSRC list runs past the end.
    TruncatedCsrc,
    /// The header extension block runs past the end or is malformed.
    BadExtension,
    /// The padding count is zero or larger than the payload.
    BadPadding,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ParseError::TooShort => "RTP packet shorter than its fixed header",
            ParseError::BadVersion => "RTP version is not 2",
            ParseError::TruncatedCsrc => "RTP CSRC list truncated",
            ParseError::BadExtension => "RTP header extension malformed",
            ParseError::BadPadding => "RTP padding length invalid",
        };
        f.write_str(s)
    }
}

impl std::error::Error for ParseError {}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

impl RtpPacket {
    /// Parses a raw RTP datagram without copying: the payload and extension
    /// values are slices of `data`.
    ///
    /// Supports RFC 8285 one-byte (`0xBEDE`) and two-byte (`0x100x`)
    /// extension blocks; blocks with any other profile are skipped. CSRCs
    /// are skipped and padding is removed.
    pub fn parse(data: Bytes) -> Result<RtpPacket, ParseError> {
        let b = &data[..];
        if b.len() < 12 {
            return Err(ParseError::TooShort);
        }
        let b0 = b[0];
        let b1 = b[1];
        if b0 >> 6 != 2 {
            return Err(ParseError::BadVersion);
        }
        let has_padding = b0 & 0x20 != 0;
        let has_ext = b0 & 0x10 != 0;
        let csrc_count = usize::from(b0 & 0x0f);
        let mut pkt = RtpPacket {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7f,
            sequence_number: be16(b, 2).ok_or(ParseError::TooShort)?,
            timestamp: be32(b, 4).ok_or(ParseError::TooShort)?,
            ssrc: be32(b, 8).ok_or(ParseError::TooShort)?,
            extensions: Extensions::new(),
            payload: Bytes::new(),
        };
        let mut pos = 12 + 4 * csrc_count;
        if pos > b.len() {
            return Err(ParseError::TruncatedCsrc);
        }
        if has_ext {
            let profile = be16(b, pos).ok_or(ParseError::BadExtension)?;
            let words = be16(b, pos + 2).ok_or(ParseError::BadExtension)?;
            let start = pos + 4;
            let end = start + 4 * usize::from(words);
            if end > b.len() {
                return Err(ParseError::BadExtension);
            }
            if profile == 0xBEDE {
                parse_one_byte(&data, start, end, &mut pkt.extensions)?;
            } else if profile & 0xfff0 == 0x1000 {
                parse_two_byte(&data, start, end, &mut pkt.extensions)?;
            }
            pos = end;
        }
        let mut end = b.len();
        if has_padding {
            let pad = usize::from(b[end - 1]);
            if pad == 0 || pad > end - pos {
                return Err(ParseError::BadPadding);
            }
            end -= pad;
        }
        pkt.payload = data.slice(pos..end);
        Ok(pkt)
    }
}

/// RFC 8285 §4.2: `ID(4) | L(4)` then L+1 bytes; ID 0 is padding, ID 15
/// stops parsing.
fn parse_one_byte(
    data: &Bytes,
    mut i: usize,
    end: usize,
    out: &mut Extensions,
) -> Result<(), ParseError> {
    while i < end {
        let Some(&h) = data.get(i) else { break };
        if h == 0 {
            i += 1;
            continue;
        }
        let id = h >> 4;
        if id == 15 {
            break;
        }
        let len = usize::from(h & 0x0f) + 1;
        let (from, to) = (i + 1, i + 1 + len);
        if to > end {
            return Err(ParseError::BadExtension);
        }
        out.push(id, data.slice(from..to));
        i = to;
    }
    Ok(())
}

/// RFC 8285 §4.3: `ID(8) | L(8)` then L bytes; ID 0 is a padding byte.
fn parse_two_byte(
    data: &Bytes,
    mut i: usize,
    end: usize,
    out: &mut Extensions,
) -> Result<(), ParseError> {
    while i < end {
        let Some(&id) = data.get(i) else { break };
        if id == 0 {
            i += 1;
            continue;
        }
        let Some(&len) = data.get(i + 1).filter(|_| i + 1 < end) else {
            return Err(ParseError::BadExtension);
        };
        let (from, to) = (i + 2, i + 2 + usize::from(len));
        if to > end {
            return Err(ParseError::BadExtension);
        }
        out.push(id, data.slice(from..to));
        i = to;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(b0: u8, b1: u8) -> Vec<u8> {
        vec![b0, b1, 0x12, 0x34, 0, 0, 0x03, 0xe8, 0xde, 0xad, 0xbe, 0xef]
    }

    #[test]
    fn parses_fixed_header() {
        let mut v = header(0x80, 0x80 | 111);
        v.extend_from_slice(b"opus");
        let data = Bytes::from(v);
        let p = RtpPacket::parse(data.clone()).unwrap();
        assert!(p.marker);
        assert_eq!(p.payload_type, 111);
        assert_eq!(p.sequence_number, 0x1234);
        assert_eq!(p.timestamp, 1000);
        assert_eq!(p.ssrc, 0xdeadbeef);
        assert!(p.extensions.is_empty());
        assert_eq!(&p.payload[..], b"opus");
        // Zero copy: payload points into the datagram.
        assert_eq!(p.payload.as_ptr(), data[12..].as_ptr());
    }

    #[test]
    fn skips_csrcs_and_removes_padding() {
        let mut v = header(0xa2, 96); // P=1, CC=2
        v.extend_from_slice(&[0; 8]); // two CSRCs
        v.extend_from_slice(b"abc");
        v.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let p = RtpPacket::parse(Bytes::from(v)).unwrap();
        assert_eq!(&p.payload[..], b"abc");
    }

    #[test]
    fn one_byte_extensions() {
        let mut v = header(0x90, 96);
        // 0xBEDE, length 2 words: id1 len1 [0xaa], pad, id2 len2 [1 2 3], pad
        v.extend_from_slice(&[0xbe, 0xde, 0, 2]);
        v.extend_from_slice(&[0x10, 0xaa, 0x00, 0x22, 1, 2, 3, 0]);
        v.extend_from_slice(b"x");
        let data = Bytes::from(v);
        let p = RtpPacket::parse(data.clone()).unwrap();
        assert_eq!(p.extensions.len(), 2);
        assert_eq!(&p.extensions.get(1).unwrap()[..], &[0xaa]);
        assert_eq!(&p.extensions.get(2).unwrap()[..], &[1, 2, 3]);
        assert_eq!(p.extensions.get(1).unwrap().as_ptr(), data[17..].as_ptr());
        assert_eq!(&p.payload[..], b"x");
    }

    #[test]
    fn one_byte_id15_stops() {
        let mut v = header(0x90, 96);
        v.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0xf0, 0x31]);
        let p = RtpPacket::parse(Bytes::from(v)).unwrap();
        assert_eq!(p.extensions.len(), 1);
    }

    #[test]
    fn two_byte_extensions() {
        let mut v = header(0x90, 96);
        v.extend_from_slice(&[0x10, 0x00, 0, 2]);
        v.extend_from_slice(&[20, 0, 0, 200, 3, 7, 8, 9]); // id20 empty, pad, id200 len3
        let p = RtpPacket::parse(Bytes::from(v)).unwrap();
        assert_eq!(p.extensions.len(), 2);
        assert_eq!(p.extensions.get(20).map(|b| b.len()), Some(0));
        assert_eq!(&p.extensions.get(200).unwrap()[..], &[7, 8, 9]);
        assert!(p.payload.is_empty());
    }

    #[test]
    fn unknown_profile_is_skipped() {
        let mut v = header(0x90, 96);
        v.extend_from_slice(&[0x12, 0x34, 0, 1, 1, 2, 3, 4]);
        v.extend_from_slice(b"pl");
        let p = RtpPacket::parse(Bytes::from(v)).unwrap();
        assert!(p.extensions.is_empty());
        assert_eq!(&p.payload[..], b"pl");
    }

    #[test]
    fn extra_extensions_are_dropped() {
        let mut v = header(0x90, 96);
        v.extend_from_slice(&[0xbe, 0xde, 0, 5]);
        for id in 1..=10u8 {
            v.extend_from_slice(&[id << 4, id]);
        }
        let p = RtpPacket::parse(Bytes::from(v)).unwrap();
        assert_eq!(p.extensions.len(), MAX_EXTENSIONS);
        let ids: Vec<u8> = p.extensions.iter().map(|e| e.id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn errors() {
        let e = |v: Vec<u8>| RtpPacket::parse(Bytes::from(v)).unwrap_err();
        assert_eq!(e(vec![0x80; 11]), ParseError::TooShort);
        assert_eq!(e(header(0x40, 0)), ParseError::BadVersion);
        assert_eq!(e(header(0x81, 0)), ParseError::TruncatedCsrc);
        assert_eq!(e(header(0x90, 0)), ParseError::BadExtension);
        let mut v = header(0x90, 0);
        v.extend_from_slice(&[0xbe, 0xde, 0, 2, 0, 0, 0, 0]);
        assert_eq!(e(v), ParseError::BadExtension);
        let mut v = header(0x90, 0);
        v.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x13, 1, 2, 3]); // len 4 > 3 left
        assert_eq!(e(v), ParseError::BadExtension);
        let mut v = header(0x90, 0);
        v.extend_from_slice(&[0x10, 0x00, 0, 1, 0, 0, 0, 5]); // two-byte, id5 no len
        assert_eq!(e(v), ParseError::BadExtension);
        let mut v = header(0xa0, 0);
        v.push(0);
        assert_eq!(e(v), ParseError::BadPadding);
        let mut v = header(0xa0, 0);
        v.extend_from_slice(&[1, 9]);
        assert_eq!(e(v), ParseError::BadPadding);
        // Padding may consume the whole payload.
        let mut v = header(0xa0, 0);
        v.extend_from_slice(&[0, 0, 3]);
        assert!(RtpPacket::parse(Bytes::from(v)).unwrap().payload.is_empty());
    }

    #[test]
    fn extensions_list_ops() {
        let mut e = Extensions::new();
        for i in 0..10u8 {
            assert_eq!(e.push(i, Bytes::new()), usize::from(i) < MAX_EXTENSIONS);
        }
        assert_eq!(e.len(), MAX_EXTENSIONS);
        e.clear();
        assert!(e.is_empty());
        assert_eq!(e.as_slice().len(), 0);
    }
}
