//! The clear part of an SRTP packet. SRTP encrypts only the payload, so a
//! player can count a packet, and measure loss and jitter from its sequence
//! number and timestamp, without decrypting it; only the packets sampled
//! for latency (whose send time is inside the payload) go through `rtc`.

/// Bytes of SRTP authentication tag after the payload: AEAD AES-GCM, the
/// profile `rtc` prefers and negotiates with our server (AES-CM with
/// HMAC-SHA1-80 would be 10).
pub const SRTP_TAG: usize = 16;

/// What the load tool reads of an RTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    /// Fixed header, CSRCs and extension block.
    pub len: usize,
}

/// The header of an RTP (not RTCP, STUN or DTLS) datagram, if it is one.
pub fn parse(b: &[u8]) -> Option<RtpHeader> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let payload_type = b[1] & 0x7f;
    if (64..96).contains(&payload_type) {
        return None; // RTCP (RFC 5761: packet types 192..=223)
    }
    let mut len = 12 + 4 * usize::from(b[0] & 0x0f);
    if b[0] & 0x10 != 0 {
        let words = b.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if len > b.len() {
        return None;
    }
    Some(RtpHeader {
        payload_type,
        sequence_number: u16::from_be_bytes([b[2], b[3]]),
        timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rtp_and_refuses_the_rest() {
        // V=2, X=1, CC=1, M=1 PT=96, seq 0x1234, ts 0x01020304, one CSRC,
        // a one-word extension block, 3 payload bytes.
        let mut p = vec![0x91, 0x80 | 96, 0x12, 0x34, 1, 2, 3, 4, 9, 9, 9, 9];
        p.extend_from_slice(&[7, 7, 7, 7]); // CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]);
        p.extend_from_slice(&[1, 2, 3]);
        let h = parse(&p).unwrap();
        assert_eq!(h.payload_type, 96);
        assert_eq!(h.sequence_number, 0x1234);
        assert_eq!(h.timestamp, 0x0102_0304);
        assert_eq!(h.len, 12 + 4 + 8);
        // RTCP sender report, STUN, DTLS, truncated extension: not RTP.
        assert_eq!(parse(&[0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(
            parse(&[0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0]),
            None
        );
        assert_eq!(parse(&[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(parse(&p[..18]), None);
    }
}
