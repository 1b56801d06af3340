//! The egress fast path's premise (issue 10), on a real connection: the
//! server's player connection, built as the server builds it but with a
//! key-capturing crypto provider, and a real `rtc` client connected to it in
//! memory (ICE, DTLS, SRTP). RTP the server's `rtc` protects is protected
//! byte for byte the same by our own SRTP with the first master key the
//! provider captured — the egress context's — and the client decrypts it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu_core::media::fast_path::{Verdict, Verifier};

fn header_len(d: &[u8]) -> usize {
    sfu_core::media::fast_path::header_len(d).expect("an RTP header")
}
use sfu_core::media::peer::{self, CandidateAddrs};
use sfu_core::media::srtp::{KeyCapture, Profile, Protector};
use stream_router::MediaKind;

const SERVER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
    7882,
);
const CLIENT: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
    5000,
);

fn settings(crypto: Option<Arc<KeyCapture>>) -> CandidateAddrs {
    CandidateAddrs {
        addrs: vec![SERVER],
        tcp_port: None,
        ice_disconnected: Duration::from_secs(15),
        ice_failed: Duration::from_secs(30),
        crypto: crypto.map(|c| c as _),
        srtp_profiles: Vec::new(),
    }
}

/// Hand everything `from` wants to send to `to`; RTP datagrams the server
/// sends are also returned.
fn carry(
    from: &mut RTCPeerConnection,
    from_addr: SocketAddr,
    to: &mut RTCPeerConnection,
    now: Instant,
) -> Vec<Vec<u8>> {
    let mut rtp = Vec::new();
    while let Some(out) = from.poll_write() {
        let data = out.message.to_vec();
        if data.len() >= 12 && (0x80..0xC0).contains(&data[0]) && !(200..=207).contains(&data[1]) {
            rtp.push(data.clone());
        }
        let _ = to.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: out.transport.peer_addr,
                peer_addr: from_addr,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(&data[..]),
        });
    }
    rtp
}

fn connected(pc: &mut RTCPeerConnection, up: &mut bool) {
    while let Some(event) = pc.poll_event() {
        if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = event {
            *up |= s == RTCPeerConnectionState::Connected;
            assert_ne!(s, RTCPeerConnectionState::Failed, "connection failed");
        }
    }
}

fn tick(pc: &mut RTCPeerConnection, now: Instant) {
    if pc.poll_timeout().is_some_and(|t| t <= now) {
        let _ = pc.handle_timeout(now);
    }
}

#[test]
fn our_srtp_matches_rtc_on_a_live_connection() {
    let now = Instant::now();
    // The stream's codecs, as a publisher's offer negotiates them.
    let (_p, pub_offer, _) = sfu_load::peer::publisher("s", CLIENT, now).unwrap();
    let (_spub, _, codecs) = peer::publisher(
        &pub_offer,
        "pubUfrag00000001",
        "pubPassword000000000000001",
        &settings(None),
        now,
    )
    .unwrap();
    // A player connection of the server, keys captured, and its client.
    let capture = Arc::new(KeyCapture::new(rtc::crypto::default_provider().unwrap()));
    let (mut client, offer) = sfu_load::peer::player(CLIENT, now).unwrap();
    let (mut server, answer, legs) = peer::player(
        &offer,
        "s",
        &codecs,
        "srvUfrag00000001",
        "srvPassword000000000000001",
        &settings(Some(capture.clone())),
        now,
    )
    .unwrap();
    sfu_load::peer::apply_answer(&mut client, answer, now).unwrap();

    let (mut client_up, mut server_up) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(client_up && server_up) {
        assert!(Instant::now() < deadline, "never connected");
        let now = Instant::now();
        tick(&mut client, now);
        tick(&mut server, now);
        carry(&mut client, CLIENT, &mut server, now);
        carry(&mut server, SERVER, &mut client, now);
        connected(&mut client, &mut client_up);
        connected(&mut server, &mut server_up);
        std::thread::sleep(Duration::from_millis(1));
    }
    let leg = legs
        .iter()
        .find(|l| l.kind == MediaKind::Audio)
        .expect("an audio leg");
    let mut sent = Vec::new();
    for seq in 0..20u16 {
        let payload = Bytes::from((0..40 + seq).map(|i| i as u8).collect::<Vec<u8>>());
        sent.push(payload.clone());
        let packet = rtp::Packet {
            header: rtp::Header {
                version: 2,
                payload_type: leg.payload_type,
                sequence_number: 1000 + seq,
                timestamp: 960 * u32::from(seq),
                ssrc: leg.ssrc,
                marker: seq == 0,
                ..Default::default()
            },
            payload,
        };
        server
            .rtp_sender(leg.sender_id)
            .expect("the leg's sender")
            .write_rtp(Instant::now(), packet)
            .unwrap();
    }
    let now = Instant::now();
    let datagrams = carry(&mut server, SERVER, &mut client, now);
    assert_eq!(datagrams.len(), 20, "one SRTP datagram per packet written");
    // The client decrypts them all (the server's SRTP is valid).
    let mut got = Vec::new();
    while let Some(TaggedRTCMessage { message, .. }) = client.poll_read() {
        if let RTCMessage::RtpPacket(_, p) = message {
            got.push(p.payload);
        }
    }
    assert_eq!(got, sent);
    // Our protection, with the first key captured, gives the same bytes.
    let tag = datagrams[0].len() - header_len(&datagrams[0]) - sent[0].len();
    let profile = match tag {
        10 => Profile::AesCm128HmacSha1_80,
        16 => Profile::AeadAes128Gcm,
        n => panic!("unexpected SRTP tag length {n}"),
    };
    eprintln!("negotiated {profile:?}");
    let keys = capture.master_keys(profile);
    assert!(
        keys.len() >= 2,
        "two contexts (egress, ingress) captured: {}",
        keys.len()
    );
    let ours = Protector::new(profile, &keys[0]).unwrap();
    for (d, payload) in datagrams.iter().zip(&sent) {
        let h = header_len(d);
        let mut buf = d[..h].to_vec();
        buf.extend_from_slice(payload);
        let len = buf.len();
        buf.resize(len + profile.tag_len(), 0);
        let n = ours.protect(&mut buf, len, h, 0).unwrap();
        assert_eq!(&buf[..n], &d[..], "our SRTP differs from rtc's");
    }
    // The verifier, fed the same packets, lets the leg switch.
    let mut verifier = Verifier::new(keys.clone());
    for (seq, (d, payload)) in (1000u16..).zip(datagrams.iter().zip(&sent)) {
        verifier.sent_via_rtc(seq, &d[..header_len(d)], payload.clone());
        verifier.observe(d);
    }
    assert_eq!(verifier.verdict(), Verdict::Verified);
    // The other captured key is not the egress one.
    let other = Protector::new(profile, &keys[1]).unwrap();
    let d = &datagrams[0];
    let h = header_len(d);
    let mut buf = d[..h].to_vec();
    buf.extend_from_slice(&sent[0]);
    let len = buf.len();
    buf.resize(len + profile.tag_len(), 0);
    let n = other.protect(&mut buf, len, h, 0).unwrap();
    assert_ne!(&buf[..n], &d[..]);
}
