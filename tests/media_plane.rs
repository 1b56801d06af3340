//! The media plane's bookkeeping, in process: after thousands of publishes,
//! plays and stops spread over two workers, every map it keeps is back to
//! its empty size (read through `MediaPlane::stats`); a STUN check that
//! fails MESSAGE-INTEGRITY binds nothing; the addresses one peer holds are
//! bounded; the peer-connection limits refuse with `1005011` and free their
//! slots again.
//!
//! Two kinds of cycles: ICE-only ones (a signed binding request from the
//! client's socket is what adopts a parked connection onto the worker that
//! receives it; enough to build every index, down-track and relay request)
//! and full ones with real `rtc` client connections (ICE, DTLS, SRTP) whose
//! players must receive the publisher's RTP, relayed across workers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use room_signal::media::{Accepted, MediaControl, MediaEvent, PlayRequest, PublishRequest};
use room_signal::outbox::{self, Inbox, Outbound};
use rtc::ice::attributes::control::AttrControlling;
use rtc::ice::attributes::priority::PriorityAttr;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{Message, Setter, TransactionId, BINDING_REQUEST, BINDING_SUCCESS};
use rtc::stun::textattrs::Username;
use sfu_core::media::{MediaConfig, MediaPlane, MediaStats};
use sfu_load::peer::{self as client, PubTracks, OPUS_PT, VP8_PT};
use tokio::net::UdpSocket;

const APP: u32 = 1;

fn plane(workers: usize, max_peers: usize, max_peers_per_app: usize) -> Arc<MediaPlane> {
    MediaPlane::start(MediaConfig {
        udp_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers,
        udp_gso: false,
        max_peers,
        max_peers_per_app,
        ..MediaConfig::default()
    })
    .expect("media plane")
}

fn sdp_attr<'a>(sdp: &'a str, name: &str) -> &'a str {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in\n{sdp}"))
}

/// Our ICE credentials in an answer, and the client's ufrag in its offer.
struct Creds {
    username: String,
    pwd: String,
}

fn creds(offer: &str, answer: &str) -> Creds {
    Creds {
        username: format!(
            "{}:{}",
            sdp_attr(answer, "a=ice-ufrag:"),
            sdp_attr(offer, "a=ice-ufrag:")
        ),
        pwd: sdp_attr(answer, "a=ice-pwd:").to_string(),
    }
}

/// A binding request as a controlling ICE agent sends it, signed with `pwd`.
fn binding(c: &Creds, pwd: &str) -> (Vec<u8>, TransactionId) {
    let provider = rtc::crypto::default_provider().expect("crypto provider");
    let tid = TransactionId(rand::random());
    let mut msg = Message::new();
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(tid),
        Box::new(Username::new(
            rtc::stun::attributes::ATTR_USERNAME,
            c.username.clone(),
        )),
        Box::new(PriorityAttr(0x6e7f_00ff)),
        Box::new(AttrControlling(rand::random())),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            pwd.to_string(),
            provider.crypto(),
        )),
        Box::new(rtc::stun::fingerprint::FINGERPRINT),
    ];
    msg.build(&setters).expect("binding request");
    (msg.raw, tid)
}

/// Send a signed check from `socket` and wait for its success response:
/// the connection is then adopted by the worker that got it.
async fn check(socket: &UdpSocket, server: SocketAddr, c: &Creds) {
    let (req, tid) = binding(c, &c.pwd);
    socket.send_to(&req, server).await.expect("send check");
    let mut buf = vec![0u8; 1500];
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let (n, _) = socket.recv_from(&mut buf).await.expect("recv");
            let mut m = Message::new();
            if m.unmarshal_binary(&buf[..n]).is_ok()
                && m.typ == BINDING_SUCCESS
                && m.transaction_id == tid
            {
                return;
            }
        }
    })
    .await;
    assert!(answered.is_ok(), "no binding response for {}", c.username);
}

fn publish(plane: &MediaPlane, stream: &str, offer: &str) -> (Accepted, Inbox) {
    let (notify, inbox) = outbox::channel(0, 16);
    let accepted = plane
        .publish(PublishRequest {
            app_id: APP,
            stream_id: stream,
            offer_sdp: offer,
            notify,
        })
        .expect("publish");
    (accepted, inbox)
}

fn play(plane: &MediaPlane, stream: &str, offer: &str) -> (Accepted, Inbox) {
    let (notify, inbox) = outbox::channel(0, 16);
    let accepted = plane
        .play(PlayRequest {
            app_id: APP,
            stream_id: stream,
            offer_sdp: offer,
            notify,
        })
        .expect("play");
    (accepted, inbox)
}

/// Media events a connection's session was told about.
fn events(inbox: &mut Inbox) -> Vec<MediaEvent> {
    let mut out = Vec::new();
    while let Ok(item) = inbox.rx.try_recv() {
        if let Outbound::Media { event, .. } = item {
            out.push(event);
        }
    }
    out
}

/// The plane's stats once every queued stop has run. A stop can queue a
/// command for another worker (a relay's end), so ask until two answers
/// agree; each answer comes after everything queued before it.
async fn settled(plane: &MediaPlane) -> MediaStats {
    let mut last = plane.stats().await;
    for _ in 0..10 {
        let now = plane.stats().await;
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn assert_empty(stats: &MediaStats) {
    let empty = MediaStats {
        directory: Default::default(),
        workers: vec![Default::default(); stats.workers.len()],
    };
    assert_eq!(stats, &empty, "maps left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_ice_cycles_leave_every_map_empty() {
    let plane = plane(2, 20_000, 10_000);
    let server = plane.local_addr();
    let mut sockets = Vec::new();
    for _ in 0..16 {
        sockets.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    // One offer of each kind serves every cycle: the server's ICE
    // credentials are its own per connection.
    let now = Instant::now();
    let local = sockets[0].local_addr().unwrap();
    let (_p, pub_offer, _) = client::publisher("cycle", local, now).unwrap();
    let (_q, play_offer) = client::player(local, now).unwrap();

    let mut held_by = [false; 2];
    let mut spread = 0usize;
    for i in 0..10_000usize {
        let stream = format!("s{}", i % 3);
        let (publisher, mut pub_inbox) = publish(&plane, &stream, &pub_offer);
        // Most publishers are reached; some stay parked until stopped.
        let reached = i % 11 != 0;
        if reached {
            let c = creds(&pub_offer, &publisher.answer_sdp);
            check(&sockets[i % 16], server, &c).await;
        }
        let mut players = Vec::new();
        for k in 0..(1 + i % 3) {
            let (player, inbox) = play(&plane, &stream, &play_offer);
            if (i + k) % 7 != 0 {
                let c = creds(&play_offer, &player.answer_sdp);
                check(&sockets[(i + 5 * k + 3) % 16], server, &c).await;
            }
            players.push((player, inbox));
        }
        if i % 97 == 0 {
            let stats = plane.stats().await;
            for (w, s) in stats.workers.iter().enumerate() {
                held_by[w] |= s.peers > 0;
            }
            // Both workers holding this cycle's connections at once: a
            // player sits on another worker than its publisher, whose
            // worker was asked to relay to it.
            spread += usize::from(stats.workers.iter().all(|w| w.peers > 0));
        }
        // Both stop orders: the publisher first, or its players first.
        if i % 2 == 0 {
            plane.stop(publisher.id);
        }
        for (player, mut inbox) in players {
            plane.stop(player.id);
            assert_eq!(events(&mut inbox), vec![], "a stopped player was told");
        }
        if i % 2 == 1 {
            plane.stop(publisher.id);
        }
        assert_eq!(
            events(&mut pub_inbox),
            vec![],
            "a stopped publisher was told"
        );
    }
    assert_eq!(held_by, [true, true], "both workers adopt connections");
    assert!(spread > 0, "some cycles spanned both workers");
    assert_empty(&settled(&plane).await);
}

/// A real `rtc` client connection on its own socket, driven by `pump`.
struct Peer {
    pc: RTCPeerConnection,
    socket: std::net::UdpSocket,
    local: SocketAddr,
    tracks: Option<PubTracks>,
    connected: bool,
    failed: bool,
    rtp: usize,
    seq: u16,
}

impl Peer {
    fn socket() -> (std::net::UdpSocket, SocketAddr) {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let local = socket.local_addr().unwrap();
        (socket, local)
    }

    fn publisher(plane: &MediaPlane, stream: &str) -> (Peer, Accepted, Inbox) {
        let (socket, local) = Self::socket();
        let now = Instant::now();
        let (mut pc, offer, tracks) = client::publisher(stream, local, now).unwrap();
        let (accepted, inbox) = publish(plane, stream, &offer);
        client::apply_answer(&mut pc, accepted.answer_sdp.clone(), now).unwrap();
        (Peer::with(pc, socket, local, Some(tracks)), accepted, inbox)
    }

    fn player(plane: &MediaPlane, stream: &str) -> (Peer, Accepted, Inbox) {
        let (socket, local) = Self::socket();
        let now = Instant::now();
        let (mut pc, offer) = client::player(local, now).unwrap();
        let (accepted, inbox) = play(plane, stream, &offer);
        client::apply_answer(&mut pc, accepted.answer_sdp.clone(), now).unwrap();
        (Peer::with(pc, socket, local, None), accepted, inbox)
    }

    fn with(
        pc: RTCPeerConnection,
        socket: std::net::UdpSocket,
        local: SocketAddr,
        tracks: Option<PubTracks>,
    ) -> Peer {
        Peer {
            pc,
            socket,
            local,
            tracks,
            connected: false,
            failed: false,
            rtp: 0,
            seq: rand::random(),
        }
    }

    /// One turn: datagrams in, events, RTP received, timers, datagrams out.
    fn pump(&mut self, now: Instant) {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = self.socket.recv_from(&mut buf) {
            let _ = self.pc.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: self.local,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(&buf[..n]),
            });
        }
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.pc.handle_timeout(now);
        }
        while let Some(event) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                match state {
                    RTCPeerConnectionState::Connected => self.connected = true,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        self.failed = true
                    }
                    _ => {}
                }
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            if let RTCMessage::RtpPacket(..) = message {
                self.rtp += 1;
            }
        }
        while let Some(out) = self.pc.poll_write() {
            let _ = self.socket.send_to(&out.message, out.transport.peer_addr);
        }
    }

    /// A publisher's media for one turn: an Opus packet and a one-packet
    /// VP8 keyframe.
    fn send_media(&mut self, now: Instant) {
        let Some(tracks) = &self.tracks else { return };
        let (audio, video) = (tracks.audio, tracks.video);
        self.seq = self.seq.wrapping_add(1);
        let ts = u32::from(self.seq).wrapping_mul(960);
        let mut vp8 = BytesMut::with_capacity(64);
        vp8.put_u8(0x10); // S bit: start of a partition
        vp8.put_u8(0x00); // P bit clear: a keyframe
        vp8.put_bytes(0, 62);
        for (sender, ssrc, pt, payload) in [
            (audio.0, audio.1, OPUS_PT, Bytes::from_static(&[0xfc; 40])),
            (video.0, video.1, VP8_PT, vp8.freeze()),
        ] {
            let header = rtp::Header {
                version: 2,
                marker: true,
                payload_type: pt,
                sequence_number: self.seq,
                timestamp: ts,
                ssrc,
                ..Default::default()
            };
            if let Some(mut s) = self.pc.rtp_sender(sender) {
                let _ = s.write_rtp(now, rtp::Packet { header, payload });
            }
        }
    }
}

/// Drive `peers` (publishers send media every turn) until `done` holds.
async fn drive(peers: &mut [&mut Peer], what: &str, done: impl Fn(&[&mut Peer]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut turn = 0u32;
    while !done(peers) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let now = Instant::now();
        turn += 1;
        for p in peers.iter_mut() {
            if p.connected && turn % 10 == 0 {
                p.send_media(now);
            }
            p.pump(now);
        }
        // The loop's tick: sockets are read again a couple of ms later.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_cycles_with_relays_leave_every_map_empty() {
    let plane = plane(2, 20_000, 10_000);
    let mut relayed = 0usize;
    for i in 0..40usize {
        // Two stream IDs: each is republished every other cycle, often on
        // the other worker, while players of the last publisher's worker
        // may still have relay state being torn down.
        let stream = format!("live{}", i % 2);
        let (mut publisher, pub_id, mut pub_inbox) = {
            let (p, a, inbox) = Peer::publisher(&plane, &stream);
            (p, a.id, inbox)
        };
        let (mut a, a_acc, mut a_inbox) = Peer::player(&plane, &stream);
        let (mut b, b_acc, mut b_inbox) = Peer::player(&plane, &stream);
        {
            let mut all = [&mut publisher, &mut a, &mut b];
            drive(&mut all, "connections and media", |p| {
                p.iter().all(|p| p.connected) && p[1].rtp >= 3 && p[2].rtp >= 3
            })
            .await;
            assert!(all.iter().all(|p| !p.failed));
        }
        let stats = plane.stats().await;
        let streams: usize = stats.workers.iter().map(|w| w.router_streams).sum();
        relayed += usize::from(streams > 1);
        assert_eq!(stats.directory.conns, 3);
        assert_eq!(events(&mut pub_inbox), vec![MediaEvent::Connected]);
        // Players are also told that media flows (once per publisher track
        // that reached them: the session reports it only after a wait).
        for inbox in [&mut a_inbox, &mut b_inbox] {
            // And, from housekeeping (twice a second, so maybe not yet),
            // the video layer they receive: the stream's one layer.
            let (layers, mut got): (Vec<_>, Vec<_>) = events(inbox)
                .into_iter()
                .partition(|e| matches!(e, MediaEvent::PlayLayer { .. }));
            assert!(
                layers
                    .iter()
                    .all(|e| *e == MediaEvent::PlayLayer { layer: 0 }),
                "{layers:?}"
            );
            got.dedup();
            got.sort_by_key(|e| *e != MediaEvent::Connected);
            got.dedup();
            assert_eq!(got, vec![MediaEvent::Connected, MediaEvent::Playing]);
        }
        if i % 2 == 0 {
            plane.stop(pub_id);
        }
        plane.stop(a_acc.id);
        plane.stop(b_acc.id);
        if i % 2 == 1 {
            plane.stop(pub_id);
        }
        for inbox in [&mut pub_inbox, &mut a_inbox, &mut b_inbox] {
            assert_eq!(events(inbox), vec![], "a stop is not reported back");
        }
    }
    assert!(relayed > 0, "some players were relayed from another worker");
    assert_empty(&settled(&plane).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_checks_bind_nothing_and_addresses_are_bounded() {
    let plane = plane(1, 100, 100);
    let server = plane.local_addr();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let now = Instant::now();
    let (_p, offer, _) = client::publisher("forged", socket.local_addr().unwrap(), now).unwrap();
    let (publisher, mut inbox) = publish(&plane, "forged", &offer);
    let c = creds(&offer, &publisher.answer_sdp);
    // The right ufrag with a wrong password: dropped, the connection stays
    // parked and no address is bound.
    for _ in 0..50 {
        let (forged, _) = binding(&c, "not-the-password-of-this-peer");
        socket.send_to(&forged, server).await.unwrap();
    }
    let stats = plane.stats().await;
    assert_eq!(stats.directory.parked, 1);
    assert_eq!(stats.workers[0].peers, 0);
    assert_eq!(stats.workers[0].by_addr, 0);
    // Checked from 20 addresses: the peer holds the last 8 only.
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        check(&s, server, &c).await;
        sockets.push(s);
    }
    let stats = plane.stats().await;
    assert_eq!(stats.directory.parked, 0);
    assert_eq!(stats.workers[0].peers, 1);
    assert_eq!(stats.workers[0].by_addr, 8);
    // Forged checks from a new address after adoption bind nothing either.
    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (forged, _) = binding(&c, "still-not-the-password-0");
    other.send_to(&forged, server).await.unwrap();
    assert_eq!(plane.stats().await.workers[0].by_addr, 8);
    plane.stop(publisher.id);
    assert_eq!(events(&mut inbox), vec![]);
    assert_empty(&settled(&plane).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_connection_limits_refuse_and_free_their_slots() {
    // Three peers per app, four on the server.
    let plane = plane(1, 4, 3);
    let now = Instant::now();
    let local = SocketAddr::from(([127, 0, 0, 1], 9));
    let (_p, offer, _) = client::publisher("limit", local, now).unwrap();
    let req = |app: u32, stream: &str| {
        let (notify, _inbox) = outbox::channel(0, 4);
        plane.publish(PublishRequest {
            app_id: app,
            stream_id: stream,
            offer_sdp: &offer,
            notify,
        })
    };
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(req(1, &format!("a{n}")).expect("within the app's limit").id);
    }
    let refused = req(1, "a3").expect_err("over the app's limit");
    assert_eq!(refused.code, room_signal::code::PEER_LIMIT);
    // Another app still has room on the server: one slot.
    let other = req(2, "b0").expect("within the server's limit").id;
    let refused = req(2, "b1").expect_err("over the server's limit");
    assert_eq!(refused.code, room_signal::code::PEER_LIMIT);
    // A play counts the same way.
    let (notify, _inbox) = outbox::channel(0, 4);
    let refused = plane
        .play(PlayRequest {
            app_id: 1,
            stream_id: "a0",
            offer_sdp: &client::player(local, now).unwrap().1,
            notify,
        })
        .expect_err("a play over the limit");
    assert_eq!(refused.code, room_signal::code::PEER_LIMIT);
    // Freed slots are usable again.
    plane.stop(ids[0]);
    ids[0] = req(1, "a0").expect("a freed app slot").id;
    plane.stop(other);
    req(2, "b1").expect("a freed server slot");
    let stats = plane.stats().await;
    assert_eq!(stats.directory.conns, 4);
    assert_eq!(stats.directory.parked, 4);
}
