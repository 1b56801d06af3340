//! The media port's first-datagram demux: STUN recognition, the server ufrag
//! of a binding request's USERNAME, USE-CANDIDATE, MESSAGE-INTEGRITY, and the
//! ICE-TCP (RFC 4571) framing in front of it. Invariants: no panic; a ufrag
//! is only found in a binding request, is non-empty, has no `:` and is a
//! slice of the datagram; a binding request signed here with the fuzzed
//! password verifies, and fails with another password; framing gives back
//! exactly the packets that were framed.

#![no_main]

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sfu_core::media::stun;
use sfu_core::media::tcp_framing::{self, FrameReader};
use sha1::Sha1;

fn check_datagram(buf: &[u8]) {
    let is_stun = stun::is_stun(buf);
    let binding = is_stun && buf[0] == 0 && buf[1] == 1;
    if let Some(u) = stun::server_ufrag(buf) {
        assert!(binding, "ufrag out of a non-binding-request");
        assert!(!u.is_empty() && !u.contains(':'));
        let range = buf.as_ptr_range();
        assert!(
            range.contains(&u.as_ptr()),
            "ufrag is not a slice of the datagram"
        );
        assert_eq!(stun::binding_request_ufrag(buf), Some(u));
    } else {
        assert_eq!(stun::binding_request_ufrag(buf), None);
    }
    if stun::is_nomination(buf) {
        assert!(binding);
    }
    if stun::verify_integrity(buf, b"fuzz-password") {
        assert!(binding);
    }
}

/// A binding request with `attrs` (type, value) then a MESSAGE-INTEGRITY
/// made with `password`, as an ICE agent would send it.
fn signed(attrs: &[(u16, &[u8])], password: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (typ, value) in attrs {
        body.extend_from_slice(&typ.to_be_bytes());
        body.extend_from_slice(&(value.len() as u16).to_be_bytes());
        body.extend_from_slice(value);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    }
    let mut msg = vec![0x00, 0x01];
    msg.extend_from_slice(&((body.len() + 24) as u16).to_be_bytes());
    msg.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    msg.extend_from_slice(b"fuzztransact");
    msg.extend_from_slice(&body);
    let mut mac = Hmac::<Sha1>::new_from_slice(password).expect("any key length");
    mac.update(&msg);
    let tag = mac.finalize().into_bytes();
    msg.extend_from_slice(&0x0008u16.to_be_bytes());
    msg.extend_from_slice(&20u16.to_be_bytes());
    msg.extend_from_slice(&tag);
    msg
}

fuzz_target!(|data: &[u8]| {
    // 1. The raw bytes as one datagram.
    check_datagram(data);

    // 2. A well-formed, signed binding request built from the input:
    //    [ufrag len][ufrag][password len][password][attribute bytes...].
    let mut rest = data;
    let mut take = |n: usize| {
        let n = n.min(rest.len());
        let (a, b) = rest.split_at(n);
        rest = b;
        a
    };
    let ulen = take(1).first().copied().unwrap_or(0) as usize % 64;
    let username = take(ulen).to_vec();
    let plen = take(1).first().copied().unwrap_or(0) as usize % 64;
    let password = take(plen).to_vec();
    let mut attrs: Vec<(u16, &[u8])> = Vec::new();
    let mut extra = rest;
    while extra.len() >= 3 && attrs.len() < 8 {
        let typ = u16::from_be_bytes([extra[0], extra[1]]);
        let len = (extra[2] as usize % 40).min(extra.len() - 3);
        // MESSAGE-INTEGRITY and USERNAME come from us.
        if typ != 0x0008 && typ != 0x0006 {
            attrs.push((typ, &extra[3..3 + len]));
        }
        extra = &extra[3 + len..];
    }
    attrs.insert(0, (0x0006, &username));
    let msg = signed(&attrs, &password);
    check_datagram(&msg);
    assert!(stun::is_stun(&msg));
    assert!(
        stun::verify_integrity(&msg, &password),
        "our own signature is refused"
    );
    let mut other = password.clone();
    other.push(b'x');
    assert!(
        !stun::verify_integrity(&msg, &other),
        "another password verifies"
    );
    let want = std::str::from_utf8(&username)
        .ok()
        .and_then(|u| u.split(':').next())
        .filter(|u| !u.is_empty());
    assert_eq!(stun::server_ufrag(&msg), want);
    assert_eq!(
        stun::is_nomination(&msg),
        attrs.iter().any(|(t, _)| *t == 0x0025)
    );

    // 3. ICE-TCP framing: the input as a byte stream cut at arbitrary
    //    points, then a round trip of framed packets.
    let mut reader = FrameReader::new();
    for chunk in data.chunks(7) {
        reader.push(chunk);
        while let Ok(Some(frame)) = reader.next_frame() {
            check_datagram(frame);
        }
    }
    let mut packets: Vec<&[u8]> = Vec::new();
    let mut stream = Vec::new();
    for p in data.split(|b| *b == 0xff) {
        match tcp_framing::encode(p, &mut stream) {
            Ok(()) => packets.push(p),
            Err(_) => assert!(p.is_empty() || p.len() > tcp_framing::MAX_FRAME_LEN),
        }
    }
    let mut reader = FrameReader::new();
    let mut got = Vec::new();
    for chunk in stream.chunks(5) {
        reader.push(chunk);
        while let Some(frame) = reader.next_frame().expect("our framing is valid") {
            got.push(frame.to_vec());
        }
    }
    assert_eq!(got.len(), packets.len());
    for (g, p) in got.iter().zip(&packets) {
        assert_eq!(g.as_slice(), *p);
    }
});
