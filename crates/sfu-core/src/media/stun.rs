//! Just enough STUN (RFC 8489) to route the first datagram of a peer: is it a
//! binding request, and which server ICE ufrag does its USERNAME name? Every
//! other STUN detail is the `rtc` stack's business.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const ATTR_USERNAME: u16 = 0x0006;
const HEADER_LEN: usize = 20;

/// Does `buf` look like a STUN message (first byte 0..=3 and the magic cookie)?
pub fn is_stun(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN && buf[0] <= 3 && buf[4..8] == MAGIC_COOKIE
}

const ATTR_USE_CANDIDATE: u16 = 0x0025;

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
