//! A media worker: one thread, one socket on the shared UDP port, and the
//! peer connections that reached it. It owns its peers and its stream router
//! outright, so the packet path takes no lock: datagram → demux (5-tuple,
//! else STUN ufrag) → `rtc` (SRTP, RTCP, interceptors) → router fan-out →
//! players' `rtc` connections → one `sendmmsg` batch per loop turn → socket.
//! Timers come from a deadline heap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use room_signal::media::{MediaEvent, MediaId};
use room_signal::outbox::Outbox;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use stream_router::{
    Codec, DownTrackConfig, DownTrackHandle, ExtMap, Feedback, MediaKind, Router, RtpPacket,
    StreamHandle, StreamKey, TrackHandle, TrackInfo, Upstream,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::batch::{RecvBatch, SendQueue};
use super::convert::{self, PlayerFeedback};
use super::peer::{self, Leg};
use super::{notify, PendingRole, Shared};

/// Messages from the control plane and other workers to a worker.
pub enum Command {
    /// End connection `id` (asked for: no event is reported).
    Stop(MediaId),
    /// Worker `to` has players of `key`: relay this worker's publisher to it.
    RelayTo { key: StreamKey, to: usize },
    /// A player elsewhere needs a keyframe of `key`'s `kind` track.
    RelayPli { key: StreamKey, kind: MediaKind },
    /// The publisher of `key` on worker `from` is gone.
    RelayEnd { key: StreamKey },
}

/// A publisher's packet relayed to a worker that has players of it (one
/// hop per worker, never one per player). Carries its track's description
/// so that the receiving worker can (re)create the track on the fly.
pub struct Relay {
    pub key: StreamKey,
    pub from: usize,
    pub info: TrackInfo,
    pub packet: RtpPacket,
}

/// Where a router track's packets come from (and keyframe requests go).
enum Origin {
    /// A publisher connection here: (peer, index of its track).
    Publisher(MediaId, usize),
    /// Relayed from the publisher's worker.
    Relayed {
        key: StreamKey,
        kind: MediaKind,
        from: usize,
    },
}

/// A stream relayed into this worker.
struct RelayIn {
    stream: StreamHandle,
    tracks: Vec<(TrackHandle, TrackInfo)>,
}

/// How long an idle loop sleeps at most (housekeeping).
const HOUSEKEEPING: Duration = Duration::from_millis(500);
/// Relayed packets taken per wake-up before servicing timers and commands.
const RECV_BATCH: usize = 64;
/// `recvmmsg` calls (of `batch::RECV_BATCH` datagrams) per wake-up.
const RECV_CALLS: usize = 2;

struct PubTrack {
    track_id: String,
    receiver_id: RTCRtpReceiverId,
    kind: MediaKind,
    codec: Codec,
    clock_rate: u32,
    extensions: ExtMap,
    router: Option<TrackHandle>,
}

struct PlayLeg {
    leg: Leg,
    downtrack: DownTrackHandle,
}

enum Role {
    Publisher {
        stream: Option<StreamHandle>,
        tracks: Vec<PubTrack>,
    },
    Player {
        legs: Vec<PlayLeg>,
    },
}

struct Peer {
    pc: RTCPeerConnection,
    notify: Outbox,
    key: StreamKey,
    role: Role,
    ufrag: String,
    addrs: Vec<SocketAddr>,
    connected: bool,
    /// Failed or closed on its own: to be reported and removed.
    dead: bool,
    /// The deadline this peer has in the timer heap, if any (so that a busy
    /// peer does not push an entry per loop turn).
    armed: Option<Instant>,
}

/// A nominating check received before the connection was up. `rtc`'s lite
/// agent ignores a USE-CANDIDATE check whose pair has not succeeded yet, and
/// the client would only retry after ~500 ms; handing the same check to the
/// connection again a little later gets it answered as soon as the pair is up
/// (see `rtc-notes.md`, pitfall 3).
struct Nomination {
    id: MediaId,
    from: SocketAddr,
    data: Vec<u8>,
    due: Instant,
    left: u8,
}

/// When a stashed nomination is handed over again.
const RENOMINATE_EVERY: Duration = Duration::from_millis(15);
const RENOMINATE_TIMES: u8 = 12;

struct Worker {
    idx: usize,
    /// This loop turn's outgoing datagrams, sent in batches.
    sends: SendQueue,
    nominations: Vec<Nomination>,
    socket: UdpSocket,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    peers: HashMap<MediaId, Peer>,
    by_addr: HashMap<SocketAddr, MediaId>,
    by_ufrag: HashMap<String, MediaId>,
    router: Router,
    downtracks: HashMap<DownTrackHandle, (MediaId, usize)>,
    router_tracks: HashMap<TrackHandle, Origin>,
    /// Local publisher streams → workers they are relayed to.
    relay_out: HashMap<StreamHandle, Vec<usize>>,
    relay_in: HashMap<StreamKey, RelayIn>,
    timers: BinaryHeap<Reverse<(Instant, MediaId)>>,
    /// Connections touched this turn: drain their output, re-arm timers.
    dirty: Vec<MediaId>,
    /// Players that were only handed RTP this turn: drain their output.
    /// Writing RTP never brings an `rtc` deadline forward (the sender-report
    /// timer it may start is a full interval away, and housekeeping re-arms
    /// every connection twice a second), so their `poll_timeout` — about a
    /// microsecond through every handler — is skipped.
    written: Vec<MediaId>,
    nacks: Vec<u16>,
}

/// Thread body: a current-thread runtime driving one worker.
pub(crate) fn run(
    idx: usize,
    socket: StdUdpSocket,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    relays: mpsc::Receiver<Relay>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(worker = idx, "cannot start media worker: {e}");
            return;
        }
    };
    runtime.block_on(async move {
        let socket = match UdpSocket::from_std(socket) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(worker = idx, "media socket: {e}");
                return;
            }
        };
        let local_addr = match socket.local_addr() {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(worker = idx, "media socket: {e}");
                return;
            }
        };
        let mut worker = Worker {
            idx,
            sends: SendQueue::new(shared.config.udp_gso),
            nominations: Vec::new(),
            socket,
            local_addr,
            shared,
            peers: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            router: Router::new(),
            downtracks: HashMap::new(),
            router_tracks: HashMap::new(),
            relay_out: HashMap::new(),
            relay_in: HashMap::new(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            written: Vec::new(),
            nacks: Vec::with_capacity(64),
        };
        worker.run(commands, relays).await;
    });
}

impl Worker {
    async fn run(
        &mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut relays: mpsc::Receiver<Relay>,
    ) {
        let mut recv = RecvBatch::default();
        let mut housekeeping = Instant::now() + HOUSEKEEPING;
        loop {
            let now = Instant::now();
            let mut wake = housekeeping;
            if let Some(Reverse((at, _))) = self.timers.peek() {
                wake = wake.min(*at);
            }
            if let Some(at) = self.router.poll_timeout() {
                wake = wake.min(at);
            }
            if let Some(at) = self.nominations.iter().map(|n| n.due).min() {
                wake = wake.min(at);
            }
            tokio::select! {
                ready = self.socket.readable() => {
                    if ready.is_ok() {
                        // Up to RECV_CALLS × RECV_BATCH datagrams per turn,
                        // then the router and the sends get their turn.
                        for _ in 0..RECV_CALLS {
                            match recv.recv(&self.socket) {
                                Ok(0) => break,
                                Ok(_) => {
                                    let now = Instant::now();
                                    for (from, data) in recv.datagrams() {
                                        self.on_datagram(from, data, now);
                                    }
                                }
                                Err(e) => {
                                    tracing::trace!("recvmmsg: {e}");
                                    break;
                                }
                            }
                        }
                    }
                }
                cmd = commands.recv() => {
                    match cmd {
                        Some(cmd) => self.on_command(cmd, Instant::now()),
                        None => return,
                    }
                }
                relay = relays.recv() => {
                    if let Some(relay) = relay {
                        let now = Instant::now();
                        self.on_relay(relay, now);
                        for _ in 1..RECV_BATCH {
                            match relays.try_recv() {
                                Ok(relay) => self.on_relay(relay, now),
                                Err(_) => break,
                            }
                        }
                    }
                }
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake.max(now))) => {}
            }
            let now = Instant::now();
            self.fire_timers(now);
            self.renominate(now);
            if now >= housekeeping {
                self.housekeeping(now);
                housekeeping = now + HOUSEKEEPING;
            }
            self.pump_router(now);
            self.flush().await;
        }
    }

    fn on_datagram(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        let id = match self.by_addr.get(&from) {
            Some(id) => *id,
            None => {
                let Some(ufrag) = super::stun::server_ufrag(data) else {
                    return; // unknown address and not a binding request: drop
                };
                let id = match self.by_ufrag.get(ufrag) {
                    Some(id) => *id,
                    None => match self.adopt(ufrag) {
                        Some(id) => id,
                        None => return,
                    },
                };
                self.by_addr.insert(from, id);
                if let Some(p) = self.peers.get_mut(&id) {
                    p.addrs.push(from);
                }
                id
            }
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.connected && super::stun::is_nomination(data) && self.nominations.len() < 1024 {
            self.nominations.push(Nomination {
                id,
                from,
                data: data.to_vec(),
                due: now + RENOMINATE_EVERY,
                left: RENOMINATE_TIMES,
            });
        }
        self.feed(id, from, data, now);
    }

    /// Hand one datagram to connection `id`.
    fn feed(&mut self, id: MediaId, from: SocketAddr, data: &[u8], now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        if let Err(e) = peer.pc.handle_read(msg) {
            tracing::trace!(media = id, "datagram refused: {e}");
        }
        self.service(id, now);
    }

    /// Take a pending connection whose ufrag the first STUN check named.
    fn adopt(&mut self, ufrag: &str) -> Option<MediaId> {
        let pending = self.shared.pending.lock().remove(ufrag)?;
        if !self.shared.adopted(pending.id, self.idx) {
            return None;
        }
        let id = pending.id;
        let role = match pending.role {
            PendingRole::Publish => {
                let stream = match self.router.add_stream(pending.key.clone()) {
                    Ok(s) => Some(s),
                    Err(_) => {
                        // A stale stream under the same key: replace it.
                        if let Some(old) = self.router.find_stream(&pending.key) {
                            let _ = self.router.remove_stream(old);
                        }
                        self.router.add_stream(pending.key.clone()).ok()
                    }
                };
                if let Some(stream) = stream {
                    let targets = self
                        .shared
                        .publisher_adopted(&pending.key, pending.id, self.idx);
                    self.relay_out.insert(stream, targets);
                }
                Role::Publisher {
                    stream,
                    tracks: Vec::new(),
                }
            }
            PendingRole::Play(legs) => {
                let queue = self.shared.config.player_queue;
                let mut play_legs = Vec::new();
                for (i, leg) in legs.into_iter().enumerate() {
                    let dt = self.router.subscribe_key(
                        &pending.key,
                        leg.kind,
                        DownTrackConfig {
                            ssrc: leg.ssrc,
                            payload_type: leg.payload_type,
                            extensions: leg.extensions,
                            queue_capacity: queue,
                        },
                    );
                    self.downtracks.insert(dt, (id, i));
                    play_legs.push(PlayLeg { leg, downtrack: dt });
                }
                if let Some(owner) = self.shared.player_adopted(&pending.key, self.idx) {
                    self.shared.command(
                        owner,
                        Command::RelayTo {
                            key: pending.key.clone(),
                            to: self.idx,
                        },
                    );
                }
                Role::Player { legs: play_legs }
            }
        };
        tracing::debug!(worker = self.idx, media = id, "connection adopted");
        self.by_ufrag.insert(ufrag.to_string(), id);
        self.peers.insert(
            id,
            Peer {
                pc: pending.pc,
                notify: pending.notify,
                key: pending.key,
                role,
                ufrag: ufrag.to_string(),
                addrs: Vec::new(),
                connected: false,
                dead: false,
                armed: None,
            },
        );
        Some(id)
    }

    /// Drain a peer's events and messages after an input.
    fn service(&mut self, id: MediaId, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        while let Some(event) = peer.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => match state {
                    RTCPeerConnectionState::Connected if !peer.connected => {
                        peer.connected = true;
                        notify(&peer.notify, id, MediaEvent::Connected);
                        tracing::debug!(media = id, "connected");
                    }
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        peer.dead = true
                    }
                    _ => {}
                },
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    if let Role::Publisher { tracks, .. } = &mut peer.role {
                        let Some(mut receiver) = peer.pc.rtp_receiver(init.receiver_id) else {
                            continue;
                        };
                        let Some(kind) = peer::media_kind(receiver.track().kind()) else {
                            continue;
                        };
                        let codec = receiver
                            .get_parameters()
                            .rtp_parameters
                            .codecs
                            .first()
                            .cloned();
                        let extensions = peer::receiver_extensions(&mut peer.pc, init.receiver_id);
                        let (codec, clock_rate) = codec
                            .map(|c| {
                                (
                                    peer::codec_of(&c.rtp_codec.mime_type),
                                    c.rtp_codec.clock_rate,
                                )
                            })
                            .unwrap_or((Codec::Other, 90_000));
                        tracks.push(PubTrack {
                            track_id: init.track_id.to_string(),
                            receiver_id: init.receiver_id,
                            kind,
                            codec,
                            clock_rate,
                            extensions,
                            router: None,
                        });
                    }
                }
                _ => {}
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = peer.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(track_id, packet) => {
                    let Role::Publisher {
                        stream: Some(stream),
                        tracks,
                    } = &mut peer.role
                    else {
                        continue;
                    };
                    let Some((i, t)) = tracks
                        .iter_mut()
                        .enumerate()
                        .find(|(_, t)| t.track_id == track_id)
                    else {
                        continue;
                    };
                    let track = match t.router {
                        Some(h) => h,
                        None => {
                            let info = TrackInfo {
                                kind: t.kind,
                                codec: t.codec,
                                clock_rate: t.clock_rate,
                                ssrc: packet.header.ssrc,
                                payload_type: packet.header.payload_type,
                                extensions: t.extensions,
                            };
                            let Ok(h) = self.router.add_track(*stream, info) else {
                                continue;
                            };
                            t.router = Some(h);
                            self.router_tracks.insert(h, Origin::Publisher(id, i));
                            h
                        }
                    };
                    let packet = convert::to_router(packet);
                    if let Some(targets) = self.relay_out.get(stream).filter(|t| !t.is_empty()) {
                        if let Some(info) = self.router.track_info(track).copied() {
                            for &to in targets {
                                self.shared.relay(
                                    to,
                                    Relay {
                                        key: peer.key.clone(),
                                        from: self.idx,
                                        info,
                                        packet: packet.clone(),
                                    },
                                );
                            }
                        }
                    }
                    let _ = self.router.push_rtp(track, packet, now);
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    let Role::Player { legs } = &peer.role else {
                        continue;
                    };
                    for p in &packets {
                        let Some(fb) = convert::player_feedback(p.as_ref(), &mut self.nacks) else {
                            continue;
                        };
                        let (ssrc, is_nack) = match fb {
                            PlayerFeedback::KeyFrame { media_ssrc } => (media_ssrc, false),
                            PlayerFeedback::Nack { media_ssrc } => (media_ssrc, true),
                        };
                        let Some(leg) = legs.iter().find(|l| l.leg.ssrc == ssrc) else {
                            continue;
                        };
                        let feedback = if is_nack {
                            Feedback::Nack(&self.nacks)
                        } else {
                            Feedback::Pli
                        };
                        let _ = self
                            .router
                            .handle_player_feedback(leg.downtrack, feedback, now);
                    }
                }
                _ => {}
            }
        }
        self.dirty.push(id);
    }

    /// Move router output into the players' connections and keyframe
    /// requests into the publishers'.
    fn pump_router(&mut self, now: Instant) {
        while let Some((dt, out)) = self.router.poll_output() {
            let Some(&(id, leg)) = self.downtracks.get(&dt) else {
                continue;
            };
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            let Role::Player { legs } = &peer.role else {
                continue;
            };
            if legs.get(leg).is_none() {
                continue;
            }
            // `rtc` routes an outgoing packet by its SSRC and ignores the
            // track id here, so an empty (unallocated) one saves a String
            // per packet per player.
            let msg = TaggedRTCMessage {
                now,
                message: RTCMessage::RtpPacket(String::new(), convert::to_rtc(out)),
            };
            if peer.connected {
                let _ = peer.pc.handle_write(msg);
                self.written.push(id);
            }
        }
        while let Some((track, Upstream::Pli { media_ssrc })) = self.router.poll_upstream(now) {
            match self.router_tracks.get(&track) {
                Some(Origin::Publisher(id, t)) => {
                    let (id, t) = (*id, *t);
                    self.send_pli(id, t, media_ssrc, now);
                }
                Some(Origin::Relayed { key, kind, from }) => {
                    let cmd = Command::RelayPli {
                        key: key.clone(),
                        kind: *kind,
                    };
                    self.shared.command(*from, cmd);
                }
                None => {}
            }
        }
    }

    /// Ask publisher `id` for a keyframe on its track `t`.
    fn send_pli(&mut self, id: MediaId, t: usize, media_ssrc: u32, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Role::Publisher { tracks, .. } = &peer.role else {
            return;
        };
        let Some(receiver_id) = tracks.get(t).map(|t| t.receiver_id) else {
            return;
        };
        if let Some(mut receiver) = peer.pc.rtp_receiver(receiver_id) {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            let _ = receiver.write_rtcp(now, vec![Box::new(pli)]);
            self.dirty.push(id);
        }
    }

    fn on_command(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::Stop(id) => self.remove(id, false),
            Command::RelayTo { key, to } => {
                if let Some(stream) = self.router.find_stream(&key) {
                    if let Some(targets) = self.relay_out.get_mut(&stream) {
                        if !targets.contains(&to) {
                            targets.push(to);
                        }
                    }
                }
            }
            Command::RelayPli { key, kind } => {
                let Some(track) = self
                    .router
                    .find_stream(&key)
                    .and_then(|s| self.router.stream_track(s, kind))
                else {
                    return;
                };
                let ssrc = self.router.track_info(track).map(|i| i.ssrc);
                if let (Some(Origin::Publisher(id, t)), Some(ssrc)) =
                    (self.router_tracks.get(&track), ssrc)
                {
                    let (id, t) = (*id, *t);
                    self.send_pli(id, t, ssrc, now);
                }
            }
            Command::RelayEnd { key } => {
                if let Some(r) = self.relay_in.remove(&key) {
                    for (t, _) in &r.tracks {
                        self.router_tracks.remove(t);
                    }
                    let _ = self.router.remove_stream(r.stream);
                }
            }
        }
    }

    /// A packet of a stream published on another worker.
    fn on_relay(&mut self, relay: Relay, now: Instant) {
        if !self.relay_in.contains_key(&relay.key) {
            let stream = match self.router.find_stream(&relay.key) {
                Some(s) => s,
                None => match self.router.add_stream(relay.key.clone()) {
                    Ok(s) => s,
                    Err(_) => return,
                },
            };
            self.relay_in.insert(
                relay.key.clone(),
                RelayIn {
                    stream,
                    tracks: Vec::new(),
                },
            );
        }
        let Some(r) = self.relay_in.get_mut(&relay.key) else {
            return;
        };
        let existing = r
            .tracks
            .iter()
            .find(|(_, info)| {
                info.kind == relay.info.kind
                    && info.ssrc == relay.info.ssrc
                    && info.payload_type == relay.info.payload_type
            })
            .map(|(h, _)| *h);
        let track = match existing {
            Some(h) => h,
            None => {
                let Ok(h) = self.router.add_track(r.stream, relay.info) else {
                    return;
                };
                r.tracks.retain(|(_, info)| info.kind != relay.info.kind);
                r.tracks.push((h, relay.info));
                self.router_tracks.insert(
                    h,
                    Origin::Relayed {
                        key: relay.key.clone(),
                        kind: relay.info.kind,
                        from: relay.from,
                    },
                );
                h
            }
        };
        let _ = self.router.push_rtp(track, relay.packet, now);
    }

    /// Send what the touched connections want to send; re-arm their timers.
    async fn flush(&mut self) {
        self.dirty.sort_unstable();
        self.dirty.dedup();
        self.written.sort_unstable();
        self.written.dedup();
        let dirty = std::mem::take(&mut self.dirty);
        let written = std::mem::take(&mut self.written);
        let mut dead = Vec::new();
        for id in &written {
            if dirty.binary_search(id).is_ok() {
                continue; // drained below, with its timer
            }
            if let Some(peer) = self.peers.get_mut(id) {
                while let Some(out) = peer.pc.poll_write() {
                    self.sends.push(out.transport.peer_addr, out.message);
                }
            }
        }
        for id in &dirty {
            let Some(peer) = self.peers.get_mut(id) else {
                continue;
            };
            while let Some(out) = peer.pc.poll_write() {
                self.sends.push(out.transport.peer_addr, out.message);
            }
            if let Some(at) = peer.pc.poll_timeout() {
                if peer.armed.is_none_or(|armed| at < armed) {
                    peer.armed = Some(at);
                    self.timers.push(Reverse((at, *id)));
                }
            }
            if peer.dead {
                dead.push(*id);
            }
        }
        self.sends.flush(&self.socket).await;
        self.dirty = dirty;
        self.dirty.clear();
        self.written = written;
        self.written.clear();
        for id in dead {
            self.remove(id, true);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            if peer.armed == Some(at) {
                // Its heap entry is gone: the next flush arms the peer again.
                peer.armed = None;
                self.dirty.push(id);
            }
            // A stale entry (the deadline moved later) costs one extra check.
            if peer.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = peer.pc.handle_timeout(now);
                self.service(id, now);
            }
        }
    }

    /// Hand stashed nominations over again while their connection is not up.
    fn renominate(&mut self, now: Instant) {
        if self.nominations.is_empty() {
            return;
        }
        let mut stash = std::mem::take(&mut self.nominations);
        stash.retain_mut(|n| {
            let alive = self.peers.get(&n.id).is_some_and(|p| !p.connected);
            if !alive {
                return false;
            }
            if n.due > now {
                return true;
            }
            self.feed(n.id, n.from, &n.data, now);
            n.left -= 1;
            n.due = now + RENOMINATE_EVERY;
            n.left > 0
        });
        stash.append(&mut self.nominations);
        self.nominations = stash;
    }

    fn housekeeping(&mut self, now: Instant) {
        // Pending connections that never got a STUN check.
        let timeout = self.shared.config.connect_timeout;
        let expired: Vec<_> = {
            let mut pending = self.shared.pending.lock();
            let stale: Vec<String> = pending
                .iter()
                .filter(|(_, p)| now.duration_since(p.created) > timeout)
                .map(|(u, _)| u.clone())
                .collect();
            stale
                .into_iter()
                .filter_map(|u| pending.remove(&u))
                .collect()
        };
        for p in expired {
            tracing::info!(media = p.id, "no ICE check before the connect timeout");
            self.shared.forget(p.id);
            notify(&p.notify, p.id, MediaEvent::Failed);
        }
        let sent = self.sends.stats();
        tracing::debug!(
            worker = self.idx,
            calls = sent.calls,
            messages = sent.messages,
            datagrams = sent.datagrams,
            gso = self.sends.gso(),
            "UDP sends so far"
        );
        // Timers that were never armed (new peers) get armed by `flush`.
        let ids: Vec<MediaId> = self.peers.keys().copied().collect();
        self.dirty.extend(ids);
    }

    /// Drop connection `id`; `report` tells its session it failed.
    fn remove(&mut self, id: MediaId, report: bool) {
        let Some(mut peer) = self.peers.remove(&id) else {
            return;
        };
        let _ = peer.pc.close();
        for a in &peer.addrs {
            self.by_addr.remove(a);
        }
        self.by_ufrag.remove(&peer.ufrag);
        match &peer.role {
            Role::Publisher { stream, tracks } => {
                for t in tracks {
                    if let Some(h) = t.router {
                        self.router_tracks.remove(&h);
                    }
                }
                if let Some(s) = stream {
                    for to in self.relay_out.remove(s).unwrap_or_default() {
                        self.shared.command(
                            to,
                            Command::RelayEnd {
                                key: peer.key.clone(),
                            },
                        );
                    }
                    let _ = self.router.remove_stream(*s);
                }
            }
            Role::Player { legs } => {
                for l in legs {
                    self.downtracks.remove(&l.downtrack);
                    let _ = self.router.unsubscribe(l.downtrack);
                }
            }
        }
        if report {
            self.shared.forget(id);
            notify(&peer.notify, id, MediaEvent::Failed);
        }
        tracing::debug!(worker = self.idx, media = id, stream = %peer.key.stream_id, report, "connection removed");
    }
}
