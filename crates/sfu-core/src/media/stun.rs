//! Just enough STUN (RFC 8489) to route a binding request to its peer: is
//! it one, which server ICE ufrag does its USERNAME name, and does its
//! MESSAGE-INTEGRITY prove that the sender knows that peer's ICE password?
//! Every other STUN detail is the `rtc` stack's business.

use hmac::{Hmac, Mac};
use sha1::Sha1;

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const ATTR_USERNAME: u16 = 0x0006;
const HEADER_LEN: usize = 20;

/// Does `buf` look like a STUN message (first byte 0..=3 and the magic cookie)?
pub fn is_stun(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN && buf[0] <= 3 && buf[4..8] == MAGIC_COOKIE
}

const ATTR_USE_CANDIDATE: u16 = 0x0025;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const INTEGRITY_LEN: usize = 20;

/// Does the binding request carry a MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489
/// §14.5) made with `password`, the short-term credential of our side? The
/// HMAC covers the message up to the attribute, with the header's length
/// field as if the attribute ended the message.
pub fn verify_integrity(buf: &[u8], password: &[u8]) -> bool {
    if !is_stun(buf) || u16::from_be_bytes([buf[0], buf[1]]) != BINDING_REQUEST {
        return false;
    }
    let body_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let Some(end) = HEADER_LEN.checked_add(body_len) else {
        return false;
    };
    if buf.len() < end {
        return false;
    }
    let mut at = HEADER_LEN;
    while at + 4 <= end {
        let typ = u16::from_be_bytes([buf[at], buf[at + 1]]);
        let len = usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
        if typ == ATTR_MESSAGE_INTEGRITY {
            if len != INTEGRITY_LEN || at + 4 + INTEGRITY_LEN > end {
                return false;
            }
            let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(password) else {
                return false;
            };
            let covered_len = (at + 4 + INTEGRITY_LEN - HEADER_LEN) as u16;
            mac.update(&buf[0..2]);
            mac.update(&covered_len.to_be_bytes());
            mac.update(&buf[4..at]);
            return mac
                .verify_slice(&buf[at + 4..at + 4 + INTEGRITY_LEN])
                .is_ok();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    false
}

/// The value of attribute `want` of a binding request, if present.
fn attribute(buf: &[u8], want: u16) -> Option<&[u8]> {
    if !is_stun(buf) || u16::from_be_bytes([buf[0], buf[1]]) != BINDING_REQUEST {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let body = buf.get(HEADER_LEN..HEADER_LEN.checked_add(body_len)?)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let typ = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + len)?;
        if typ == want {
            return Some(value);
        }
        let padded = 4 + len.div_ceil(4) * 4;
        rest = rest.get(padded..)?;
    }
    None
}

/// The server-side ufrag of a binding request's USERNAME (`server:client`).
pub fn server_ufrag(buf: &[u8]) -> Option<&str> {
    let username = std::str::from_utf8(attribute(buf, ATTR_USERNAME)?).ok()?;
    username.split(':').next().filter(|u| !u.is_empty())
}

/// The server-side ufrag when `buf` is a binding request (and nothing
/// else): what the first frame of an ICE-TCP connection must be before the
/// connection is routed to a peer's worker (a STUN response or indication
/// from an unknown client names no peer of ours).
pub fn binding_request_ufrag(buf: &[u8]) -> Option<&str> {
    if !is_stun(buf) || u16::from_be_bytes([buf[0], buf[1]]) != BINDING_REQUEST {
        return None;
    }
    server_ufrag(buf)
}

/// Is this a binding request that nominates its pair (USE-CANDIDATE)?
pub fn is_nomination(buf: &[u8]) -> bool {
    attribute(buf, ATTR_USE_CANDIDATE).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(username: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&0x0024u16.to_be_bytes()); // PRIORITY first
        attrs.extend_from_slice(&4u16.to_be_bytes());
        attrs.extend_from_slice(&[0, 0, 0, 1]);
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while !attrs.len().is_multiple_of(4) {
            attrs.push(0);
        }
        let mut msg = Vec::new();
        msg.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
        msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        msg.extend_from_slice(&MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attrs);
        msg
    }

    #[test]
    fn finds_the_server_ufrag() {
        assert_eq!(server_ufrag(&binding(b"srv1:cli")), Some("srv1"));
        assert_eq!(server_ufrag(&binding(b"abc")), Some("abc"));
        assert_eq!(server_ufrag(&binding(b":cli")), None);
    }

    #[test]
    fn only_binding_requests_name_a_peer_for_tcp() {
        assert_eq!(binding_request_ufrag(&binding(b"srv1:cli")), Some("srv1"));
        let mut response = binding(b"srv1:cli");
        response[0..2].copy_from_slice(&0x0101u16.to_be_bytes());
        assert_eq!(binding_request_ufrag(&response), None);
        assert_eq!(binding_request_ufrag(b"\x16\xfe\xfd garbage"), None);
        assert_eq!(binding_request_ufrag(&[]), None);
    }

    #[test]
    fn spots_nominations() {
        let mut m = binding(b"srv:cli");
        assert!(!is_nomination(&m));
        // Append an empty USE-CANDIDATE attribute.
        m.extend_from_slice(&ATTR_USE_CANDIDATE.to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        let len = u16::from_be_bytes([m[2], m[3]]) + 4;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        assert!(is_nomination(&m));
        assert_eq!(server_ufrag(&m), Some("srv"));
    }

    /// A binding request signed the way ICE agents sign it.
    fn signed(username: &[u8], password: &[u8]) -> Vec<u8> {
        let mut m = binding(username);
        let at = m.len();
        let len = (at + 24 - HEADER_LEN) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        let mut mac = Hmac::<Sha1>::new_from_slice(password).unwrap();
        mac.update(&m);
        let tag = mac.finalize().into_bytes();
        m.extend_from_slice(&ATTR_MESSAGE_INTEGRITY.to_be_bytes());
        m.extend_from_slice(&(INTEGRITY_LEN as u16).to_be_bytes());
        m.extend_from_slice(&tag);
        // A FINGERPRINT after it is outside the HMAC.
        m.extend_from_slice(&[0x80, 0x28, 0, 4, 1, 2, 3, 4]);
        let len = (m.len() - HEADER_LEN) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn checks_message_integrity() {
        let m = signed(b"srv:cli", b"the-server-password-123");
        assert!(verify_integrity(&m, b"the-server-password-123"));
        assert!(!verify_integrity(&m, b"another-password-45678"));
        // Any change to the covered bytes breaks it.
        let mut tampered = m.clone();
        tampered[30] ^= 1;
        assert!(!verify_integrity(&tampered, b"the-server-password-123"));
        // No MESSAGE-INTEGRITY at all, or a truncated one.
        assert!(!verify_integrity(&binding(b"srv:cli"), b"x"));
        for n in 0..m.len() {
            assert!(!verify_integrity(&m[..n], b"the-server-password-123"));
        }
    }

    #[test]
    fn checks_a_real_agents_request() {
        use rtc::stun::integrity::MessageIntegrity;
        use rtc::stun::message::{Message, Setter, TransactionId, BINDING_REQUEST as BR};
        use rtc::stun::textattrs::Username;
        let provider = rtc::crypto::default_provider().unwrap();
        let mut msg = Message::new();
        let setters: Vec<Box<dyn Setter>> = vec![
            Box::new(BR),
            Box::new(TransactionId(rand::random())),
            Box::new(Username::new(
                rtc::stun::attributes::ATTR_USERNAME,
                "srv:cli".into(),
            )),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                "pass-word-0123456789ab".into(),
                provider.crypto(),
            )),
            Box::new(rtc::stun::fingerprint::FINGERPRINT),
        ];
        msg.build(&setters).unwrap();
        assert!(verify_integrity(&msg.raw, b"pass-word-0123456789ab"));
        assert!(!verify_integrity(&msg.raw, b"pass-word-0123456789ac"));
        assert_eq!(server_ufrag(&msg.raw), Some("srv"));
    }

    #[test]
    fn garbage_is_not_stun() {
        assert!(!is_stun(&[0x80, 96, 0, 1]));
        assert_eq!(server_ufrag(&[]), None);
        let mut m = binding(b"srv:cli");
        m[3] = 200; // length beyond the datagram
        assert_eq!(server_ufrag(&m), None);
        let mut seed = 12345u32;
        for n in 0..2000 {
            let mut buf = binding(b"srv:cli");
            for b in buf.iter_mut().skip(20) {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if seed.is_multiple_of(7) {
                    *b = (seed >> 16) as u8;
                }
            }
            buf.truncate(n % buf.len());
            let _ = server_ufrag(&buf);
        }
    }
}
