//! The router's own RTP packet type and a zero-copy RTP parser.
//!
//! [`RtpPacket`] is what publishers push in. Its payload is a [`Bytes`]
//! slice of the received datagram, so parsing and forwarding never copy
//! media. Header extensions live in [`Extensions`], a fixed-capacity inline
//! list (no `Vec`, no allocation); parsed values are `(offset, length)`
//! pairs into the datagram, which the list holds once, so parsing bumps
//! one reference count (the payload's) instead of one per extension, and
//! none at all for a packet without extensions or padding.

use bytes::{Buf, Bytes};

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

/// Where one extension's value lives.
#[derive(Debug, Clone)]
enum Value {
    /// `len` bytes at `off` in the list's shared buffer (a parsed value:
    /// no `Bytes` handle of its own, so no reference count to bump).
    At { off: u32, len: u32 },
    /// A buffer of its own (a pushed value).
    Own(Bytes),
}

/// A fixed-capacity inline list of at most [`MAX_EXTENSIONS`] extensions.
///
/// Values parsed by [`RtpPacket::parse`] are kept as offsets into the
/// datagram (held once for all of them); values given to
/// [`Extensions::push`] keep their own `Bytes`. Either way, the accessors
/// hand out `Bytes` views of the original memory (no copy).
#[derive(Clone)]
pub struct Extensions {
    /// Buffer the `Value::At` values point into (empty if none).
    buf: Bytes,
    ids: [u8; MAX_EXTENSIONS],
    values: [Value; MAX_EXTENSIONS],
    len: u8,
}

impl Default for Extensions {
    fn default() -> Self {
        const EMPTY: Value = Value::At { off: 0, len: 0 };
        Extensions {
            buf: Bytes::new(),
            ids: [0; MAX_EXTENSIONS],
            values: [EMPTY; MAX_EXTENSIONS],
            len: 0,
        }
    }
}

impl Extensions {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an extension; returns false (and drops it) when full.
    pub fn push(&mut self, id: u8, value: Bytes) -> bool {
        self.push_value(id, Value::Own(value))
    }

    #[inline]
    fn push_value(&mut self, id: u8, value: Value) -> bool {
        let i = usize::from(self.len);
        match (self.ids.get_mut(i), self.values.get_mut(i)) {
            (Some(slot_id), Some(slot)) => {
                *slot_id = id;
                *slot = value;
                self.len += 1;
                true
            }
            _ => false,
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

    /// The extension IDs, in order.
    pub fn ids(&self) -> &[u8] {
        self.ids.get(..self.len()).unwrap_or(&[])
    }

    /// The value of the `i`-th extension, borrowed.
    #[inline]
    pub(crate) fn value(&self, i: usize) -> &[u8] {
        match self.values.get(i) {
            Some(Value::At { off, len }) => {
                let (off, len) = (*off as usize, *len as usize);
                self.buf.get(off..off + len).unwrap_or(&[])
            }
            Some(Value::Own(b)) => b,
            None => &[],
        }
    }

    /// The value of the `i`-th extension as a `Bytes` view of the same
    /// memory (a reference-count bump, no copy).
    fn value_bytes(&self, i: usize) -> Bytes {
        match self.values.get(i) {
            Some(Value::At { off, len }) => {
                let (off, len) = (*off as usize, *len as usize);
                match off.checked_add(len).filter(|&end| end <= self.buf.len()) {
                    Some(end) => self.buf.slice(off..end),
                    None => Bytes::new(),
                }
            }
            Some(Value::Own(b)) => b.clone(),
            None => Bytes::new(),
        }
    }

    /// `(id, value)` of each extension, values borrowed.
    #[inline]
    pub(crate) fn items(&self) -> impl Iterator<Item = (u8, &[u8])> + Clone + '_ {
        self.ids()
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, self.value(i)))
    }

    /// Iterates over the extensions (each value a `Bytes` view of the
    /// original memory).
    pub fn iter(&self) -> ExtensionIter<'_> {
        ExtensionIter {
            list: self,
            next: 0,
        }
    }

    /// The value of the first extension with `id`.
    pub fn get(&self, id: u8) -> Option<Bytes> {
        let i = self.ids().iter().position(|&x| x == id)?;
        Some(self.value_bytes(i))
    }

    /// Removes every extension.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

impl PartialEq for Extensions {
    /// Same IDs and values in the same order, wherever the values live.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.items().eq(other.items())
    }
}

impl Eq for Extensions {}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.items()).finish()
    }
}

/// Iterator over an [`Extensions`] list, see [`Extensions::iter`].
#[derive(Debug, Clone)]
pub struct ExtensionIter<'a> {
    list: &'a Extensions,
    next: usize,
}

impl Iterator for ExtensionIter<'_> {
    type Item = Extension;
    fn next(&mut self) -> Option<Extension> {
        let i = self.next;
        let id = *self.list.ids().get(i)?;
        self.next += 1;
        Some(Extension {
            id,
            value: self.list.value_bytes(i),
        })
    }
}

impl<'a> IntoIterator for &'a Extensions {
    type Item = Extension;
    type IntoIter = ExtensionIter<'a>;
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
    pub fn parse(mut data: Bytes) -> Result<RtpPacket, ParseError> {
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
        let sequence_number = be16(b, 2).ok_or(ParseError::TooShort)?;
        let timestamp = be32(b, 4).ok_or(ParseError::TooShort)?;
        let ssrc = be32(b, 8).ok_or(ParseError::TooShort)?;
        let mut pos = 12 + 4 * csrc_count;
        if pos > b.len() {
            return Err(ParseError::TruncatedCsrc);
        }
        let mut spans = Spans::default();
        if has_ext {
            let profile = be16(b, pos).ok_or(ParseError::BadExtension)?;
            let words = be16(b, pos + 2).ok_or(ParseError::BadExtension)?;
            let start = pos + 4;
            let end = start + 4 * usize::from(words);
            if end > b.len() || u32::try_from(end).is_err() {
                return Err(ParseError::BadExtension);
            }
            if profile == 0xBEDE {
                parse_one_byte(b, start, end, &mut spans)?;
            } else if profile & 0xfff0 == 0x1000 {
                parse_two_byte(b, start, end, &mut spans)?;
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
        // The packet is built once, in place (no default list to drop and
        // overwrite).
        let (extensions, payload) = if spans.len > 0 {
            // The datagram is held once for every parsed value.
            let payload = data.slice(pos..end);
            (spans.into_extensions(data), payload)
        } else if end == data.len() {
            // Nothing else points into the datagram: it becomes the payload
            // in place, without a reference-count bump.
            data.advance(pos);
            (Extensions::new(), data)
        } else {
            (Extensions::new(), data.slice(pos..end))
        };
        Ok(RtpPacket {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7f,
            sequence_number,
            timestamp,
            ssrc,
            extensions,
            payload,
        })
    }
}

/// Extensions found by the parser: ID and `(offset, length)` in the
/// datagram, gathered in plain arrays and turned into an [`Extensions`]
/// once.
#[derive(Default)]
struct Spans {
    ids: [u8; MAX_EXTENSIONS],
    at: [(u32, u32); MAX_EXTENSIONS],
    len: u8,
}

impl Spans {
    /// Records the value at `from..to` of the datagram (dropped when the
    /// list is full, as [`Extensions::push`] does).
    #[inline]
    fn push(&mut self, id: u8, from: usize, to: usize) {
        let i = usize::from(self.len);
        if let (Some(slot_id), Some(at)) = (self.ids.get_mut(i), self.at.get_mut(i)) {
            *slot_id = id;
            // Fits: `parse` refuses extension blocks ending past u32::MAX.
            *at = (from as u32, (to - from) as u32);
            self.len += 1;
        }
    }

    /// The list of the recorded values, pointing into `buf`.
    #[inline]
    fn into_extensions(self, buf: Bytes) -> Extensions {
        let at = self.at;
        Extensions {
            buf,
            ids: self.ids,
            values: std::array::from_fn(|i| {
                let (off, len) = at.get(i).copied().unwrap_or_default();
                Value::At { off, len }
            }),
            len: self.len,
        }
    }
}

/// RFC 8285 §4.2: `ID(4) | L(4)` then L+1 bytes; ID 0 is padding, ID 15
/// stops parsing.
fn parse_one_byte(
    data: &[u8],
    mut i: usize,
    end: usize,
    out: &mut Spans,
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
        out.push(id, from, to);
        i = to;
    }
    Ok(())
}

/// RFC 8285 §4.3: `ID(8) | L(8)` then L bytes; ID 0 is a padding byte.
fn parse_two_byte(
    data: &[u8],
    mut i: usize,
    end: usize,
    out: &mut Spans,
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
        out.push(id, from, to);
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
        assert_eq!(e.iter().count(), 0);
    }
}
