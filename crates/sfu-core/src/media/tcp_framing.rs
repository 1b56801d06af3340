//! RFC 4571 framing for ICE-TCP (RFC 6544): every packet on the stream is
//! preceded by its length as a 16-bit big-endian integer.
//!
//! [`FrameReader`] takes bytes as the socket delivers them (any split: half a
//! length prefix, several frames in one read) and yields whole frames. It
//! holds at most one frame plus one read's worth of bytes: a length over
//! [`MAX_FRAME_LEN`] or a zero length is an error, and the caller closes the
//! connection — media packets are MTU-sized, so anything larger is a broken
//! or hostile client, never something to buffer.

use std::fmt;

/// The largest packet accepted or sent in one frame: an Ethernet MTU plus
/// headroom for a TURN-less DTLS record or a browser's larger RTP packet.
pub const MAX_FRAME_LEN: usize = 1500 + 548;

/// Length of the RFC 4571 prefix.
pub const PREFIX_LEN: usize = 2;

/// Why a stream is no longer readable as RFC 4571 frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A zero-length frame: no ICE, DTLS or SRTP packet is empty.
    Empty,
    /// A frame longer than [`MAX_FRAME_LEN`].
    TooLong(usize),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Empty => write!(f, "zero-length RFC 4571 frame"),
            FrameError::TooLong(n) => {
                write!(f, "RFC 4571 frame of {n} bytes (max {MAX_FRAME_LEN})")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Reassembles RFC 4571 frames from a byte stream.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out as frames (compacted lazily).
    start: usize,
}

impl FrameReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next whole frame, `Ok(None)` while more bytes are needed, or an
    /// error once the stream is not valid framing (every later call repeats
    /// it: the reader does not resynchronise).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let avail = &self.buf[self.start..];
        let Some(prefix) = avail.get(..PREFIX_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLong(len));
        }
        if avail.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        let from = self.start + PREFIX_LEN;
        self.start = from + len;
        Ok(Some(&self.buf[from..from + len]))
    }

    /// Bytes held but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Append `packet` framed to `out`; an error (nothing written) when it does
/// not fit one frame.
pub fn encode(packet: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    if packet.is_empty() {
        return Err(FrameError::Empty);
    }
    if packet.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLong(packet.len()));
    }
    // MAX_FRAME_LEN < u16::MAX, so the cast is exact.
    out.extend_from_slice(&(packet.len() as u16).to_be_bytes());
    out.extend_from_slice(packet);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(packets: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in packets {
            encode(p, &mut out).unwrap();
        }
        out
    }

    fn drain(r: &mut FrameReader) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut frames = Vec::new();
        while let Some(f) = r.next_frame()? {
            frames.push(f.to_vec());
        }
        Ok(frames)
    }

    #[test]
    fn several_frames_in_one_read() {
        let mut r = FrameReader::new();
        r.push(&framed(&[b"abc", b"d", &[7u8; 1200]]));
        let frames = drain(&mut r).unwrap();
        assert_eq!(
            frames,
            vec![b"abc".to_vec(), b"d".to_vec(), vec![7u8; 1200]]
        );
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn every_split_of_the_stream_gives_the_same_frames() {
        let stream = framed(&[b"hello", &[1u8; 300], b"x"]);
        for cut in 0..=stream.len() {
            let mut r = FrameReader::new();
            r.push(&stream[..cut]);
            let mut frames = drain(&mut r).unwrap();
            r.push(&stream[cut..]);
            frames.extend(drain(&mut r).unwrap());
            assert_eq!(frames.len(), 3, "cut at {cut}");
            assert_eq!(frames[0], b"hello");
            assert_eq!(frames[1], vec![1u8; 300]);
            assert_eq!(frames[2], b"x");
        }
    }

    #[test]
    fn byte_by_byte() {
        let stream = framed(&[b"abcdef", b"gh"]);
        let mut r = FrameReader::new();
        let mut frames = Vec::new();
        for b in &stream {
            r.push(std::slice::from_ref(b));
            frames.extend(drain(&mut r).unwrap());
        }
        assert_eq!(frames, vec![b"abcdef".to_vec(), b"gh".to_vec()]);
    }

    #[test]
    fn oversize_length_is_an_error_before_the_body_arrives() {
        let mut r = FrameReader::new();
        r.push(&u16::MAX.to_be_bytes());
        assert_eq!(r.next_frame(), Err(FrameError::TooLong(65535)));
        // It stays an error: no resynchronisation on a broken stream.
        r.push(b"more");
        assert_eq!(r.next_frame(), Err(FrameError::TooLong(65535)));

        let mut r = FrameReader::new();
        r.push(&((MAX_FRAME_LEN + 1) as u16).to_be_bytes());
        assert!(matches!(r.next_frame(), Err(FrameError::TooLong(_))));
    }

    #[test]
    fn the_largest_frame_is_accepted() {
        let big = vec![9u8; MAX_FRAME_LEN];
        let mut r = FrameReader::new();
        r.push(&framed(&[&big]));
        assert_eq!(r.next_frame().unwrap(), Some(&big[..]));
    }

    #[test]
    fn zero_length_is_an_error() {
        let mut r = FrameReader::new();
        r.push(&[0, 0, 1, 2]);
        assert_eq!(r.next_frame(), Err(FrameError::Empty));
    }

    #[test]
    fn a_good_frame_before_a_bad_length_is_still_delivered() {
        let mut stream = framed(&[b"ok"]);
        stream.extend_from_slice(&[0xff, 0xff]);
        let mut r = FrameReader::new();
        r.push(&stream);
        assert_eq!(r.next_frame().unwrap(), Some(&b"ok"[..]));
        assert!(r.next_frame().is_err());
    }

    #[test]
    fn encode_refuses_what_does_not_fit() {
        let mut out = Vec::new();
        assert_eq!(encode(&[], &mut out), Err(FrameError::Empty));
        assert!(encode(&vec![0u8; MAX_FRAME_LEN + 1], &mut out).is_err());
        assert!(out.is_empty());
        encode(b"\x01\x02", &mut out).unwrap();
        assert_eq!(out, vec![0, 2, 1, 2]);
    }

    #[test]
    fn buffer_does_not_grow_past_one_frame_and_one_read() {
        let one: &[u8] = &[3u8; 1000];
        let stream = framed(&[one; 50]);
        let mut r = FrameReader::new();
        for chunk in stream.chunks(777) {
            r.push(chunk);
            drain(&mut r).unwrap();
            assert!(r.buf.len() <= MAX_FRAME_LEN + PREFIX_LEN + 777);
        }
        assert_eq!(r.buffered(), 0);
    }
}
