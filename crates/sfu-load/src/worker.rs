//! A load worker: one OS thread with one `mio` poll loop driving many sans-IO
//! `rtc` peer connections, each on its own non-blocking UDP socket (all of
//! them talk to the same server address, so the socket is the demux key).
//! Publishers are paced from the loop (VP8 frames at 30 fps, Opus every
//! 20 ms); players count packets and read the embedded send timestamp
//! without decoding anything. Timers come from a deadline heap with one
//! live entry per connection.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::peer::{PubTracks, AUDIO_CLOCK, OPUS_PT, VIDEO_CLOCK, VP8_PT};
use crate::rtp_header::{self, RtpHeader};
use crate::stats::{self, Latency, PlayerStats, OPUS_TS_OFFSET, VP8_TS_OFFSET};

/// Token of the waker that announces new connections.
pub const WAKE: Token = Token(usize::MAX);
const FPS: u32 = 30;
const AUDIO_PTIME: Duration = Duration::from_millis(20);
const MAX_RTP_PAYLOAD: usize = 1100;
/// A player decrypts (and takes the latency of) one RTP packet in this many.
const DECRYPT_EVERY: u32 = 4;
/// Longest sleep, so stop flags and new peers are noticed promptly.
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// Counters shared by all workers and the control task.
#[derive(Default)]
pub struct Shared {
    pub stop: AtomicBool,
    /// While true, players accumulate their statistics (the flip to true
    /// resets them).
    pub measuring: AtomicBool,
    pub pkts_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub pkts_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub pubs_connected: AtomicUsize,
    pub players_connected: AtomicUsize,
    pub failed: AtomicUsize,
}

/// What a publisher sends.
#[derive(Debug, Clone, Copy)]
pub struct MediaPlan {
    pub video_kbps: u32,
    pub audio_kbps: u32,
}

/// A connection handed to a worker after its answer was applied.
pub struct NewPeer {
    pub name: String,
    pub pc: RTCPeerConnection,
    pub socket: std::net::UdpSocket,
    pub role: NewRole,
}

pub enum NewRole {
    Publisher(PubTracks),
    Player,
}

struct Sending {
    tracks: PubTracks,
    /// Per video encoding (`tracks.layers`).
    video_seq: Vec<u16>,
    audio_seq: u16,
    frame: u32,
    audio_frame: u32,
    started: Option<Instant>,
}

enum Role {
    Publisher(Box<Sending>),
    Player(PlayerStats),
}

struct Peer {
    pc: RTCPeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
    role: Role,
    connected: bool,
    dead: bool,
    armed: Option<Instant>,
    /// RTP datagrams received (players), for sampling decryption.
    rtp_seen: u32,
}

/// Local counters, flushed to the shared atomics once per loop turn.
#[derive(Default)]
struct Tally {
    pkts_in: u64,
    bytes_in: u64,
    pkts_out: u64,
    bytes_out: u64,
}

/// One worker's result: its players' statistics and measured latencies.
#[derive(Default)]
pub struct WorkerResult {
    pub players: Vec<PlayerStats>,
    pub latency: Latency,
}

struct Worker {
    poll: Poll,
    peers: Vec<Peer>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    shared: Arc<Shared>,
    plan: MediaPlan,
    tally: Tally,
    measuring: bool,
    latency: Latency,
    buf: Vec<u8>,
}

/// Run a worker until `shared.stop`; new connections come through `rx`
/// (each followed by a wake of `WAKE`).
pub fn run(
    poll: Poll,
    rx: Receiver<NewPeer>,
    shared: Arc<Shared>,
    plan: MediaPlan,
) -> WorkerResult {
    let mut w = Worker {
        poll,
        peers: Vec::new(),
        timers: BinaryHeap::new(),
        shared,
        plan,
        tally: Tally::default(),
        measuring: false,
        latency: Latency::default(),
        buf: vec![0u8; 2048],
    };
    let mut events = Events::with_capacity(1024);
    while !w.shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut wake_at = now + MAX_SLEEP;
        if let Some(Reverse((at, _))) = w.timers.peek() {
            wake_at = wake_at.min(*at);
        }
        if let Some(at) = w.next_media() {
            wake_at = wake_at.min(at);
        }
        let sleep = wake_at.saturating_duration_since(now);
        if let Err(e) = w.poll.poll(&mut events, Some(sleep)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                tracing::error!("poll: {e}");
                break;
            }
        }
        let measuring = w.shared.measuring.load(Ordering::Relaxed);
        if measuring && !w.measuring {
            w.reset_stats();
        }
        w.measuring = measuring;
        for ev in events.iter() {
            if ev.token() == WAKE {
                while let Ok(p) = rx.try_recv() {
                    w.adopt(p);
                }
            } else {
                w.drain_socket(ev.token().0);
            }
        }
        let now = Instant::now();
        w.fire_timers(now);
        w.send_media(now);
        w.flush_tally();
    }
    w.finish()
}

impl Worker {
    fn adopt(&mut self, new: NewPeer) {
        let idx = self.peers.len();
        let local = match new.socket.local_addr() {
            Ok(a) => a,
            Err(_) => return,
        };
        let mut socket = UdpSocket::from_std(new.socket);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut socket, Token(idx), Interest::READABLE)
        {
            tracing::warn!("register socket: {e}");
            return;
        }
        let role = match new.role {
            NewRole::Publisher(tracks) => Role::Publisher(Box::new(Sending {
                video_seq: tracks.layers.iter().map(|_| rand::random()).collect(),
                tracks,
                audio_seq: rand::random(),
                frame: 0,
                audio_frame: 0,
                started: None,
            })),
            NewRole::Player => Role::Player(PlayerStats {
                name: new.name,
                ..Default::default()
            }),
        };
        self.peers.push(Peer {
            pc: new.pc,
            socket,
            local,
            role,
            connected: false,
            dead: false,
            armed: None,
            rtp_seen: 0,
        });
        // Kick ICE: the agent starts checking on its first timeout.
        let now = Instant::now();
        let _ = self.peers[idx].pc.handle_timeout(now);
        self.service(idx, now);
    }

    /// Feed everything the socket holds to its connection, then service the
    /// connection once (not once per datagram: `poll_event` and
    /// `poll_timeout` walk every handler of the connection).
    ///
    /// A connected player's RTP is counted from its clear header; only one
    /// packet in [`DECRYPT_EVERY`] goes through `rtc` (SRTP and the whole
    /// read pipeline cost more than the server spends to send it), and those
    /// give the latency samples.
    fn drain_socket(&mut self, idx: usize) {
        let mut fed = false;
        let (wall_now, clock_now) = (stats::unix_micros(), Instant::now());
        loop {
            let Some(peer) = self.peers.get_mut(idx) else {
                return;
            };
            let (n, from) = match peer.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break, // WouldBlock: drained
            };
            let now = Instant::now();
            if let (true, Role::Player(stats)) = (peer.connected, &mut peer.role) {
                if let Some(h) = rtp_header::parse(&self.buf[..n]) {
                    peer.rtp_seen = peer.rtp_seen.wrapping_add(1);
                    if peer.rtp_seen % DECRYPT_EVERY != 0 {
                        let payload = n.saturating_sub(h.len + rtp_header::SRTP_TAG);
                        self.tally.pkts_in += 1;
                        self.tally.bytes_in += payload as u64 + 12;
                        if self.measuring {
                            let since = now.saturating_duration_since(clock_now);
                            let arrival = wall_now + since.as_micros() as u64;
                            record(stats, &h, payload, arrival);
                        }
                        continue;
                    }
                }
            }
            fed = true;
            let msg = TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: peer.local,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(&self.buf[..n]),
            };
            if let Err(e) = peer.pc.handle_read(msg) {
                tracing::trace!("datagram refused: {e}");
            }
        }
        if fed {
            self.service(idx, Instant::now());
        }
    }

    /// Drain events, messages and output of connection `idx`; re-arm its timer.
    fn service(&mut self, idx: usize, now: Instant) {
        let Some(peer) = self.peers.get_mut(idx) else {
            return;
        };
        while let Some(event) = peer.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                match state {
                    RTCPeerConnectionState::Connected if !peer.connected => {
                        peer.connected = true;
                        let counter = match &mut peer.role {
                            Role::Publisher(_) => &self.shared.pubs_connected,
                            Role::Player(p) => {
                                p.connected = true;
                                &self.shared.players_connected
                            }
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                        if !peer.dead =>
                    {
                        peer.dead = true;
                        self.shared.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        }
        // Arrival times come from the instant each datagram was read, which
        // the message carries, mapped onto the wall clock once.
        let (wall_now, clock_now) = (stats::unix_micros(), Instant::now());
        while let Some(TaggedRTCMessage {
            message,
            now: read_at,
        }) = peer.pc.poll_read()
        {
            let RTCMessage::RtpPacket(_, packet) = message else {
                continue;
            };
            self.tally.pkts_in += 1;
            self.tally.bytes_in += packet.payload.len() as u64 + 12;
            let Role::Player(stats) = &mut peer.role else {
                continue;
            };
            if !self.measuring {
                continue;
            }
            let waited = clock_now.saturating_duration_since(read_at).as_micros() as u64;
            let arrival = wall_now.saturating_sub(waited);
            let h = RtpHeader {
                payload_type: packet.header.payload_type,
                sequence_number: packet.header.sequence_number,
                timestamp: packet.header.timestamp,
                len: 12,
            };
            let Some(offset) = record(stats, &h, packet.payload.len(), arrival) else {
                continue;
            };
            if let Some(sent) = stats::read_ts(&packet.payload, offset) {
                self.latency.record(arrival.saturating_sub(sent));
            }
        }
        while let Some(out) = peer.pc.poll_write() {
            match peer.socket.send_to(&out.message, out.transport.peer_addr) {
                Ok(_) => {}
                Err(e) => tracing::trace!("send: {e}"),
            }
        }
        if let Some(at) = peer.pc.poll_timeout() {
            if peer.armed.is_none_or(|a| at < a || a <= now) {
                peer.armed = Some(at);
                self.timers.push(Reverse((at, idx)));
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, idx))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(idx) else {
                continue;
            };
            if peer.armed != Some(at) {
                continue; // superseded by an earlier deadline
            }
            peer.armed = None;
            if peer.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = peer.pc.handle_timeout(now);
            }
            self.service(idx, now);
        }
    }

    /// The earliest instant a connected publisher has media due.
    fn next_media(&self) -> Option<Instant> {
        self.peers
            .iter()
            .filter_map(|p| match &p.role {
                Role::Publisher(s) if p.connected && !p.dead => {
                    let start = s.started?;
                    let v = start + Duration::from_secs(1) * s.frame / FPS;
                    let a = start + AUDIO_PTIME * s.audio_frame;
                    Some(v.min(a))
                }
                _ => None,
            })
            .min()
    }

    fn send_media(&mut self, now: Instant) {
        let plan = self.plan;
        for idx in 0..self.peers.len() {
            let peer = &mut self.peers[idx];
            if !peer.connected || peer.dead {
                continue;
            }
            let Role::Publisher(s) = &mut peer.role else {
                continue;
            };
            let start = *s.started.get_or_insert(now);
            let mut sent = false;
            while start + Duration::from_secs(1) * s.frame / FPS <= now {
                let ts = s.frame.wrapping_mul(VIDEO_CLOCK / FPS);
                let key = s.frame % FPS == 0;
                for (layer, seq) in s.tracks.layers.iter().zip(s.video_seq.iter_mut()) {
                    let kbps = plan.video_kbps as usize * layer.share as usize / 100;
                    let bytes = (kbps * 1000 / 8 / FPS as usize).max(16);
                    let count = bytes.div_ceil(MAX_RTP_PAYLOAD);
                    let size = (bytes / count).max(VP8_TS_OFFSET + 8);
                    for k in 0..count {
                        let payload = vp8_payload(k == 0, key, size);
                        let mut header = rtp::Header {
                            version: 2,
                            marker: k + 1 == count,
                            payload_type: VP8_PT,
                            sequence_number: *seq,
                            timestamp: ts,
                            ssrc: layer.ssrc,
                            ..Default::default()
                        };
                        // MID and RID for the first second, as browsers do
                        // until the receiver has seen them.
                        if let (Some((mid, mid_value, rid)), true) =
                            (&s.tracks.rid_ext, s.frame < FPS)
                        {
                            let _ = header.set_extension(*mid, mid_value.clone());
                            let _ = header
                                .set_extension(*rid, Bytes::from_static(layer.rid.as_bytes()));
                        }
                        *seq = seq.wrapping_add(1);
                        self.tally.pkts_out += 1;
                        self.tally.bytes_out += size as u64 + 12;
                        if let Some(mut sender) = peer.pc.rtp_sender(s.tracks.video.0) {
                            let _ = sender.write_rtp(now, rtp::Packet { header, payload });
                        }
                    }
                }
                s.frame += 1;
                sent = true;
            }
            while start + AUDIO_PTIME * s.audio_frame <= now {
                let size = (plan.audio_kbps as usize * 1000 / 8 / 50).max(OPUS_TS_OFFSET + 8);
                let mut p = BytesMut::with_capacity(size);
                p.put_u64(stats::unix_micros());
                p.resize(size, 0);
                let header = rtp::Header {
                    version: 2,
                    marker: s.audio_frame == 0,
                    payload_type: OPUS_PT,
                    sequence_number: s.audio_seq,
                    timestamp: s.audio_frame.wrapping_mul(AUDIO_CLOCK / 50),
                    ssrc: s.tracks.audio.1,
                    ..Default::default()
                };
                s.audio_seq = s.audio_seq.wrapping_add(1);
                s.audio_frame += 1;
                self.tally.pkts_out += 1;
                self.tally.bytes_out += size as u64 + 12;
                if let Some(mut sender) = peer.pc.rtp_sender(s.tracks.audio.0) {
                    let _ = sender.write_rtp(
                        now,
                        rtp::Packet {
                            header,
                            payload: p.freeze(),
                        },
                    );
                }
                sent = true;
            }
            if sent {
                self.service(idx, now);
            }
        }
    }

    fn flush_tally(&mut self) {
        let t = std::mem::take(&mut self.tally);
        let s = &self.shared;
        if t.pkts_in > 0 {
            s.pkts_in.fetch_add(t.pkts_in, Ordering::Relaxed);
            s.bytes_in.fetch_add(t.bytes_in, Ordering::Relaxed);
        }
        if t.pkts_out > 0 {
            s.pkts_out.fetch_add(t.pkts_out, Ordering::Relaxed);
            s.bytes_out.fetch_add(t.bytes_out, Ordering::Relaxed);
        }
    }

    fn reset_stats(&mut self) {
        self.latency.clear();
        for p in &mut self.peers {
            if let Role::Player(stats) = &mut p.role {
                stats.video = Default::default();
                stats.audio = Default::default();
            }
        }
    }

    fn finish(mut self) -> WorkerResult {
        self.flush_tally();
        let players = self
            .peers
            .drain(..)
            .filter_map(|mut p| {
                let _ = p.pc.close();
                match p.role {
                    Role::Player(s) => Some(s),
                    Role::Publisher(_) => None,
                }
            })
            .collect();
        WorkerResult {
            players,
            latency: std::mem::take(&mut self.latency),
        }
    }
}

/// A synthetic VP8 RTP payload: payload descriptor (S bit on the first
/// packet of a frame), a 3-byte frame header whose bit 0 is 0 on keyframes,
/// the 8-byte send timestamp, zero padding to `size`.
fn vp8_payload(first: bool, key: bool, size: usize) -> Bytes {
    let mut p = BytesMut::with_capacity(size);
    p.put_u8(if first { 0x10 } else { 0x00 });
    p.put_u8(if key { 0x00 } else { 0x01 });
    p.put_u16(0);
    p.put_u64(stats::unix_micros());
    p.resize(size, 0);
    p.freeze()
}

/// Build a poll and its waker for a new worker.
pub fn poll_and_waker() -> std::io::Result<(Poll, Arc<Waker>)> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    Ok((poll, waker))
}

/// Count one received RTP packet of a player (header fields and payload
/// length); returns the offset of the send timestamp in its payload.
fn record(
    stats: &mut PlayerStats,
    h: &RtpHeader,
    payload: usize,
    arrival_us: u64,
) -> Option<usize> {
    let (track, clock, offset) = match h.payload_type {
        VP8_PT => (&mut stats.video, VIDEO_CLOCK, VP8_TS_OFFSET),
        OPUS_PT => (&mut stats.audio, AUDIO_CLOCK, OPUS_TS_OFFSET),
        _ => return None,
    };
    track.on_packet(
        h.sequence_number,
        h.timestamp,
        clock,
        arrival_us,
        payload + 12,
    );
    Some(offset)
}
