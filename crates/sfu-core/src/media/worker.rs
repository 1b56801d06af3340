//! A media worker: one thread, one socket on the shared UDP port, and the
//! peer connections that reached it. It owns its peers and its stream router
//! outright, so the packet path takes no lock: datagram → demux (STUN checks
//! by ufrag after their MESSAGE-INTEGRITY is verified, everything else by
//! 5-tuple) → `rtc` (SRTP, RTCP, interceptors) → router fan-out → players'
//! `rtc` connections → one `sendmmsg` batch per loop turn → socket. Timers
//! come from a deadline heap.
//!
//! What the worker keeps is derived from its peers: the address and ufrag
//! indexes, the router handles of their tracks and down-tracks, and the
//! source of each router stream ([`Source`]). A peer ends through
//! [`Worker::drop_peer`] only, which undoes all of it; the media plane's
//! [`Directory`](super::directory::Directory) is told first, so each end is
//! reported once. A panic while handling one peer (inside `rtc` or here)
//! ends that peer as a media failure; the worker and its other peers go on.
//!
//! - [`ice`]: which peer a datagram is for (authenticated checks, bound
//!   addresses, stashed nominations);
//! - [`io`]: packets into a peer's `rtc` (with the UDP or TCP transport
//!   context) and its output out (UDP send queue, or an ICE-TCP link);
//! - [`teardown`]: the one local teardown, and the map sizes;
//! - [`plays`]: each new publisher track's codec mapped onto its players'
//!   answers (plays that wait for and survive their publisher);
//! - [`tcp`]: ICE-TCP connections bound to peers (framed reads and writes
//!   on tasks of this worker's runtime, bounded queues).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use room_signal::media::MediaId;
use room_signal::outbox::Outbox;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::sansio::Protocol;
use stream_router::{
    Codec, DownTrackConfig, DownTrackHandle, ExtMap, MediaKind, Router, StreamHandle, StreamKey,
    TrackHandle, TrackInfo,
};
use tokio::net::UdpSocket;

use super::batch::{RecvBatch, SendQueue};
use super::directory::{Adopted, Relaying, Role as ConnRole};
use super::egress::{EgressStats, LegEgress};
use super::peer::Leg;
use super::relay::{Command, MailboxRx, Source};
use super::srtp::KeyCapture;
use super::Shared;

mod ice;
mod io;
mod layers;
mod pause;
pub(crate) use self::pause::LayerPause;
mod plays;
mod tcp;
mod teardown;

use self::ice::Nomination;
pub(crate) use self::io::{drain, send_tcp_framed};
pub(crate) use self::tcp::TcpLink;
use self::tcp::{TcpEvent, TCP_EVENT_QUEUE};

/// Where a router track's packets come from (and keyframe requests go).
pub(crate) enum Origin {
    /// A publisher connection here: (peer, index of its track).
    Publisher(MediaId, usize),
    /// Relayed from publisher `publisher` on worker `from`.
    Relayed {
        key: StreamKey,
        kind: MediaKind,
        /// Its simulcast layer (`TrackInfo::layer`).
        layer: u8,
        from: usize,
        publisher: MediaId,
        /// Its codec profile (see [`peer::codec_profile`](super::peer::codec_profile)).
        profile: u32,
    },
}

/// How long an idle loop sleeps at most (housekeeping).
const HOUSEKEEPING: Duration = Duration::from_millis(500);
/// How often publishers are checked for silence (the error on top of
/// `MediaConfig::publisher_silence_timeout`).
const SILENCE_SWEEP: Duration = Duration::from_millis(100);
/// Mailbox messages taken per wake-up before servicing timers and sockets.
const MAILBOX_BATCH: usize = 64;
/// `recvmmsg` calls (of `batch::RECV_BATCH` datagrams) per wake-up.
const RECV_CALLS: usize = 2;
/// Addresses one peer may be reached at (ICE candidates it checked from);
/// a new one beyond this replaces the oldest.
pub const MAX_PEER_ADDRS: usize = 8;

pub(crate) struct PubTrack {
    pub track_id: String,
    pub receiver_id: RTCRtpReceiverId,
    /// A simulcast encoding: its SSRC and layer (one `PubTrack` per
    /// encoding, all with the same `track_id`).
    pub simulcast: Option<(u32, u8)>,
    pub kind: MediaKind,
    pub codec: Codec,
    /// See [`peer::codec_profile`](super::peer::codec_profile).
    pub profile: u32,
    pub clock_rate: u32,
    pub extensions: ExtMap,
    /// Its router track, and that track's info shared with the relays to
    /// other workers (one pointer per relayed packet, not a copy).
    pub router: Option<(TrackHandle, Arc<TrackInfo>)>,
}

pub(crate) struct PlayLeg {
    pub leg: Leg,
    pub downtrack: DownTrackHandle,
    /// Which path its RTP takes, and its sender-report counts.
    pub egress: LegEgress,
}

pub(crate) enum Role {
    Publisher {
        /// The router stream this publisher feeds (its `Source::Local`).
        stream: Option<StreamHandle>,
        tracks: Vec<PubTrack>,
        /// Other workers with players of this stream.
        targets: Vec<usize>,
        /// Which of its simulcast layers are paused (`worker/pause.rs`).
        pause: Box<LayerPause>,
    },
    Player {
        legs: Vec<PlayLeg>,
        /// Its bandwidth estimate and layer choice.
        bwe: Box<PlayerBwe>,
    },
}

/// A player connection's estimator and its video play's layer choice.
pub(crate) struct PlayerBwe {
    pub bwe: super::bwe::Bwe,
    pub selector: super::bwe::Selector,
    /// The highest layer the player asked for (`u8::MAX`: automatic).
    pub cap: u8,
    /// When the layer was last chosen.
    pub chosen_at: Option<Instant>,
    /// The video layer (or SVC level) last told to the player's client
    /// (`MediaEvent::PlayLayer`, `worker/layers.rs`).
    pub told_layer: Option<u8>,
}

pub(crate) struct Peer {
    /// Boxed, see [`Parked::pc`](super::directory::Parked::pc).
    pub pc: Box<RTCPeerConnection>,
    pub notify: Outbox,
    pub key: StreamKey,
    pub role: Role,
    pub ufrag: String,
    pub pwd: String,
    /// Addresses bound to this peer, oldest first.
    pub addrs: Vec<SocketAddr>,
    /// Has reached `Connected` (reported to its session once).
    pub connected: bool,
    /// The state `rtc` last reported; failed or closed: to be reported and
    /// removed.
    pub state: RTCPeerConnectionState,
    /// The deadline this peer has in the timer heap, if any (so that a busy
    /// peer does not push an entry per loop turn).
    pub armed: Option<Instant>,
    /// The master keys its SRTP contexts were built from (players, when
    /// the fast path is on).
    pub capture: Option<Arc<KeyCapture>>,
    /// Where `rtc` sends its RTP and RTCP (the selected pair): where the
    /// fast path sends too.
    pub send_to: Option<SocketAddr>,
    /// The selected pair is ICE-TCP: `send_to` is reached through `tcp`.
    pub send_tcp: bool,
    /// Its ICE-TCP connections (`tcp.rs`), usually none.
    pub tcp: Vec<TcpLink>,
    /// When `rtc` last took an SRTP or SRTCP datagram from it (`None`
    /// before the first): a publisher silent for longer than
    /// `MediaConfig::publisher_silence_timeout` has failed (see
    /// [`Worker::end_silent_publishers`]).
    pub heard: Option<Instant>,
    /// RTP packets handed to `rtc` since its output was last drained (see
    /// [`RTC_WRITE_BATCH`](super::egress::RTC_WRITE_BATCH)).
    pub unsent: u8,
}

/// Sizes of a worker's maps (tests and diagnostics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub peers: usize,
    pub by_addr: usize,
    pub by_ufrag: usize,
    pub downtracks: usize,
    pub router_tracks: usize,
    pub sources: usize,
    pub nominations: usize,
    /// ICE-TCP connections bound to peers.
    pub tcp_links: usize,
    /// Router streams, tracks, down-tracks, and keys down-tracks wait for.
    pub router_streams: usize,
    pub router_track_count: usize,
    pub router_downtracks: usize,
    pub router_awaited: usize,
}

/// Run `f`, turning a panic into `Err` (the caller ends the peer it was
/// handling). The panic message itself goes to the panic hook.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| ())
}

pub(crate) struct Worker {
    pub idx: usize,
    /// Loop lag and busy time since the last housekeeping tick.
    loop_counts: super::loop_stats::LoopCounts,
    /// This loop turn's outgoing datagrams, sent in batches.
    pub sends: SendQueue,
    nominations: Vec<Nomination>,
    pub socket: UdpSocket,
    local_addr: SocketAddr,
    /// The address ICE-TCP frames are tagged with (see `Shared::tcp_local`).
    tcp_local: Option<SocketAddr>,
    /// Frames and ends from this worker's ICE-TCP readers.
    tcp_events: tokio::sync::mpsc::Receiver<TcpEvent>,
    pub(crate) tcp_events_tx: tokio::sync::mpsc::Sender<TcpEvent>,
    /// The last ICE-TCP connection id given out.
    pub(crate) next_link: u64,
    pub shared: Arc<Shared>,
    pub peers: HashMap<MediaId, Peer>,
    by_addr: HashMap<SocketAddr, MediaId>,
    by_ufrag: HashMap<String, MediaId>,
    pub router: Router,
    pub downtracks: HashMap<DownTrackHandle, (MediaId, usize)>,
    pub router_tracks: HashMap<TrackHandle, Origin>,
    /// What feeds each router stream of this worker.
    pub sources: HashMap<StreamKey, Source>,
    timers: BinaryHeap<Reverse<(Instant, MediaId)>>,
    /// Connections touched this turn: drain their output, re-arm timers.
    pub dirty: Vec<MediaId>,
    /// Players that were only handed RTP this turn: drain their output.
    /// Writing RTP never brings an `rtc` deadline forward (the sender-report
    /// timer it may start is a full interval away, and housekeeping re-arms
    /// every connection twice a second), so their `poll_timeout` — about a
    /// microsecond through every handler — is skipped.
    pub written: Vec<MediaId>,
    /// Where a packet's header is stamped with its transport-wide
    /// sequence number (`twcc.rs`), sized once.
    pub stamped: Vec<u8>,
    /// Players with a bandwidth probe running (`worker/layers.rs`).
    pub probing: Vec<MediaId>,
    /// Simulcast layers of local publishers paused now (`worker/pause.rs`).
    pub layers_paused: u64,
    /// Connections whose handling panicked this turn: ended as failed.
    pub panicked: Vec<MediaId>,
    /// Set by `Command::Shutdown`: close everything, answer, stop.
    pub stopping: Option<tokio::sync::oneshot::Sender<()>>,
    pub nacks: Vec<u16>,
    /// This turn's egress counts (added to the media plane's totals at the
    /// flush).
    pub egress: EgressStats,
    /// Test hook (debug builds): `SFUTEST_CORRUPT_SRTP_KEY` names a stream
    /// whose players' captured keys are spoiled, so that their verification
    /// fails and they stay on `rtc`'s path.
    #[cfg(debug_assertions)]
    pub corrupt_key_stream: Option<String>,
    /// Test hook (debug builds): `SFUTEST_PANIC_STREAM` (not `SFU_…`, which
    /// the configuration reads as overrides) names a stream
    /// whose publisher's handling panics on its first RTP packet.
    #[cfg(debug_assertions)]
    pub panic_stream: Option<String>,
    /// Test hook (debug builds): `SFUTEST_STALL_ON_PING_MS` — the first
    /// readiness ping blocks this worker's thread that long.
    #[cfg(debug_assertions)]
    pub stall_on_ping_ms: Option<u64>,
}

/// Thread body: a current-thread runtime driving one worker.
pub(crate) fn run(idx: usize, socket: StdUdpSocket, shared: Arc<Shared>, mailbox: MailboxRx) {
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
        let mut worker = match Worker::new(idx, socket, shared) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(worker = idx, "media socket: {e}");
                return;
            }
        };
        worker.run(mailbox).await;
    });
}

impl Worker {
    pub(crate) fn new(idx: usize, socket: UdpSocket, shared: Arc<Shared>) -> std::io::Result<Self> {
        let local_addr = socket.local_addr()?;
        let (tcp_events_tx, tcp_events) = tokio::sync::mpsc::channel(TCP_EVENT_QUEUE);
        let tcp_local = shared.tcp_local;
        Ok(Worker {
            tcp_local,
            tcp_events,
            tcp_events_tx,
            next_link: 0,
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
            sources: HashMap::new(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            written: Vec::new(),
            stamped: vec![0; stream_router::MAX_HEADER_LEN + 8],
            probing: Vec::new(),
            layers_paused: 0,
            panicked: Vec::new(),
            stopping: None,
            nacks: Vec::with_capacity(64),
            egress: EgressStats::default(),
            #[cfg(debug_assertions)]
            corrupt_key_stream: std::env::var("SFUTEST_CORRUPT_SRTP_KEY").ok(),
            loop_counts: Default::default(),
            #[cfg(debug_assertions)]
            panic_stream: std::env::var("SFUTEST_PANIC_STREAM").ok(),
            #[cfg(debug_assertions)]
            stall_on_ping_ms: std::env::var("SFUTEST_STALL_ON_PING_MS")
                .ok()
                .and_then(|v| v.parse().ok()),
        })
    }

    async fn run(&mut self, mut mailbox: MailboxRx) {
        let mut recv = RecvBatch::default();
        let mut housekeeping = Instant::now() + HOUSEKEEPING;
        let silence = self.shared.config.publisher_silence_timeout;
        let mut sweep = Instant::now() + SILENCE_SWEEP;
        loop {
            let now = Instant::now();
            let mut wake = housekeeping;
            if silence.is_some() {
                wake = wake.min(sweep);
            }
            if let Some(Reverse((at, _))) = self.timers.peek() {
                wake = wake.min(*at);
            }
            if let Some(at) = self.router.poll_timeout() {
                wake = wake.min(at);
            }
            if let Some(at) = self.nominations.iter().map(|n| n.due).min() {
                wake = wake.min(at);
            }
            if let Some(at) = self.probe_wake(now) {
                wake = wake.min(at);
            }
            // When this turn's work began (the select's wake-up).
            let woke: Instant;
            tokio::select! {
                ready = self.socket.readable() => {
                    woke = Instant::now();
                    if ready.is_ok() {
                        // Up to RECV_CALLS × RECV_BATCH datagrams per turn,
                        // then the router and the sends get their turn.
                        for _ in 0..RECV_CALLS {
                            match recv.recv(&self.socket) {
                                Ok(0) => break,
                                Ok(_) => {
                                    let now = Instant::now();
                                    self.sends.since(now);
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
                ev = self.tcp_events.recv() => {
                    woke = Instant::now();
                    if let Some(ev) = ev {
                        let now = Instant::now();
                        self.sends.since(now);
                        self.on_tcp_event(ev, now);
                        for _ in 1..MAILBOX_BATCH {
                            match self.tcp_events.try_recv() {
                                Ok(ev) => self.on_tcp_event(ev, now),
                                Err(_) => break,
                            }
                        }
                    }
                }
                msg = mailbox.recv() => {
                    woke = Instant::now();
                    let Some(msg) = msg else { return };
                    let now = Instant::now();
                    self.sends.since(now);
                    self.on_inbound(msg, now);
                    for _ in 1..MAILBOX_BATCH {
                        match mailbox.try_recv() {
                            Some(msg) => self.on_inbound(msg, now),
                            None => break,
                        }
                    }
                }
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake.max(now))) => {
                    woke = Instant::now();
                    self.loop_counts.woke_late(woke.saturating_duration_since(wake));
                }
            }
            let now = Instant::now();
            self.sends.since(now);
            self.fire_timers(now);
            self.renominate(now);
            if let Some(silence) = silence.filter(|_| now >= sweep) {
                // A loop that turns late (a stalled thread) may not have
                // read what publishers sent meanwhile: judge them at the
                // next sweep, once it has.
                if now.saturating_duration_since(sweep) < SILENCE_SWEEP {
                    self.end_silent_publishers(now, silence);
                }
                sweep = now + SILENCE_SWEEP;
            }
            if now >= housekeeping {
                self.housekeeping(now);
                housekeeping = now + HOUSEKEEPING;
            }
            self.pace_probes(now);
            self.pump_router(now);
            self.flush().await;
            self.loop_counts.worked(woke.elapsed());
            if let Some(reply) = self.stopping.take() {
                self.close_all().await;
                let _ = reply.send(());
                return;
            }
        }
    }

    /// Shutdown: close every connection (`rtc` queues its DTLS
    /// close_notify), write what that produced, then let go of them all.
    async fn close_all(&mut self) {
        let ids: Vec<MediaId> = self.peers.keys().copied().collect();
        for id in &ids {
            if let Some(peer) = self.peers.get_mut(id) {
                let pc = &mut peer.pc;
                let _ = guarded(|| pc.close());
            }
        }
        self.dirty.extend(ids.iter().copied());
        self.flush().await;
        for id in ids {
            self.drop_peer(id);
        }
        tracing::info!(worker = self.idx, "media worker stopped");
    }

    /// Take over a connection the directory handed to this worker.
    fn adopt(&mut self, ufrag: &str, adopted: Adopted) -> MediaId {
        let Adopted {
            id,
            key,
            role,
            notify,
            parked,
            relay,
            cap,
        } = adopted;
        let role = match role {
            ConnRole::Publish => {
                let stream = self.local_stream(&key, id);
                let targets = match relay {
                    Relaying::To(t) => t,
                    _ => Vec::new(),
                };
                Role::Publisher {
                    stream,
                    tracks: Vec::new(),
                    targets,
                    pause: Box::default(),
                }
            }
            ConnRole::Play => {
                let queue = self.shared.config.player_queue;
                // Exactly as many as it has (a PlayLeg is ~430 bytes; a
                // growing Vec would take room for 4).
                let mut legs = Vec::with_capacity(parked.legs.len());
                // Every player gets an estimator: from TWCC feedback when it
                // negotiated transport-cc, else from its REMBs, else none
                // comes and it stays at the start value (the best layer).
                let ext_id = parked
                    .legs
                    .iter()
                    .find_map(|l| l.extensions.id_of(stream_router::ExtKind::TransportCc));
                let bwe = Box::new(PlayerBwe {
                    bwe: super::bwe::Bwe::new(ext_id),
                    selector: Default::default(),
                    cap,
                    chosen_at: None,
                    told_layer: None,
                });
                for (i, leg) in parked.legs.into_iter().enumerate() {
                    let dt = self.router.subscribe_key(
                        &key,
                        leg.kind,
                        DownTrackConfig {
                            ssrc: leg.ssrc,
                            payload_type: leg.payload_type,
                            extensions: leg.extensions,
                            queue_capacity: queue,
                        },
                    );
                    self.downtracks.insert(dt, (id, i));
                    // The requested cap holds from the start; the estimate
                    // refines it once feedback comes (a player that sends
                    // none keeps it).
                    if leg.kind == MediaKind::Video {
                        let _ = self.router.set_max_layer(dt, cap);
                    }
                    let egress = LegEgress::new(leg.ssrc, leg.clock_rate, Instant::now());
                    legs.push(PlayLeg {
                        leg,
                        downtrack: dt,
                        egress,
                    });
                }
                if let Relaying::From { worker, publisher } = relay {
                    self.shared.command(
                        worker,
                        Command::RelayTo {
                            key: key.clone(),
                            publisher,
                            to: self.idx,
                        },
                    );
                }
                Role::Player { legs, bwe }
            }
        };
        tracing::debug!(worker = self.idx, media = id, "connection adopted");
        self.by_ufrag.insert(ufrag.to_string(), id);
        self.peers.insert(
            id,
            Peer {
                pc: parked.pc,
                notify,
                key,
                role,
                ufrag: ufrag.to_string(),
                pwd: parked.pwd,
                addrs: Vec::new(),
                connected: false,
                state: RTCPeerConnectionState::New,
                armed: None,
                capture: parked.capture,
                send_to: None,
                send_tcp: false,
                tcp: Vec::new(),
                heard: None,
                unsent: 0,
            },
        );
        self.dirty.push(id);
        self.on_player_adopted(id);
        id
    }

    /// The router stream for local publisher `id` of `key`: a relayed copy
    /// (an older publisher elsewhere) or an older local publisher of the
    /// same key gives way; their players stay subscribed.
    pub(super) fn local_stream(&mut self, key: &StreamKey, id: MediaId) -> Option<StreamHandle> {
        match self.sources.get(key) {
            Some(Source::Local(old)) => {
                let old = *old;
                // Its Stop is still in the mailbox: end it now.
                self.end_peer(old, "replaced by a new publisher");
            }
            Some(Source::Relayed(_)) => self.end_relay_in(key),
            None => {}
        }
        let stream = match self.router.add_stream(key.clone()) {
            Ok(s) => Some(s),
            Err(_) => {
                // Not expected (every router stream has a source); recover.
                if let Some(old) = self.router.find_stream(key) {
                    let _ = self.router.remove_stream(old);
                }
                self.router.add_stream(key.clone()).ok()
            }
        };
        self.sources.insert(key.clone(), Source::Local(id));
        stream
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
                let (sends, egress) = (&mut self.sends, &mut self.egress);
                let drained = guarded(|| drain(peer, sends, egress));
                if drained.is_err() {
                    self.panicked.push(*id);
                }
            }
        }
        for id in &dirty {
            let Some(peer) = self.peers.get_mut(id) else {
                continue;
            };
            let (sends, egress) = (&mut self.sends, &mut self.egress);
            let drained = guarded(|| {
                drain(peer, sends, egress);
                peer.pc.poll_timeout()
            });
            match drained {
                Ok(Some(at)) => {
                    if peer.armed.is_none_or(|armed| at < armed) {
                        peer.armed = Some(at);
                        self.timers.push(Reverse((at, *id)));
                    }
                }
                Ok(None) => {}
                Err(()) => self.panicked.push(*id),
            }
            if super::peer_states::is_dead(peer.state) {
                dead.push(*id);
            }
        }
        self.sends.flush(&self.socket).await;
        if self.egress != EgressStats::default() {
            self.shared.egress.add(&self.egress);
            self.egress = EgressStats::default();
        }
        let waited = self.sends.take_latency();
        if !waited.is_empty() {
            self.shared.latency.add(&waited);
        }
        self.dirty = dirty;
        self.dirty.clear();
        self.written = written;
        self.written.clear();
        for id in dead {
            self.end_peer(id, "media connection failed");
        }
        let panicked = std::mem::take(&mut self.panicked);
        for id in panicked {
            self.end_peer(id, "panic while handling the connection");
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
            let pc = &mut peer.pc;
            let fired = guarded(|| {
                if pc.poll_timeout().is_some_and(|t| t <= now) {
                    let _ = pc.handle_timeout(now);
                    true
                } else {
                    false
                }
            });
            match fired {
                Ok(true) => {
                    if guarded(|| self.service(id, now)).is_err() {
                        self.panicked.push(id);
                    }
                }
                Ok(false) => {}
                Err(()) => self.panicked.push(id),
            }
        }
    }

    /// End every publisher that sent media once and nothing for longer
    /// than `silence` since: its process died, or its network is gone. A
    /// live one sends audio every 20 ms, video frames, and sender reports
    /// at least every 1.5 s on an idle track; ICE would take
    /// `ice_failed_timeout` (consent checks come every 4–6 s), and its
    /// signaling may outlive it (a dropped WebSocket keeps the session).
    fn end_silent_publishers(&mut self, now: Instant, silence: Duration) {
        let silent: Vec<MediaId> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(p.role, Role::Publisher { .. }))
            .filter(|(_, p)| {
                p.heard
                    .is_some_and(|at| now.saturating_duration_since(at) > silence)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            self.end_peer(id, "publisher sent no media for publisherSilenceTimeoutMs");
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        if let Some(totals) = self.shared.loops.get(self.idx) {
            totals.add(&mut self.loop_counts);
        }
        // Parked connections that never got a STUN check end as failed.
        self.shared.expire_parked(now);
        let sent = self.sends.stats();
        tracing::trace!(
            worker = self.idx,
            calls = sent.calls,
            messages = sent.messages,
            datagrams = sent.datagrams,
            gso = self.sends.gso(),
            "UDP sends so far"
        );
        self.send_reports(now);
        self.router.measure(now);
        self.update_pauses(now);
        self.report_play_layers();
        self.prune_estimators(now);
        // Timers that were never armed (new peers) get armed by `flush`.
        let ids: Vec<MediaId> = self.peers.keys().copied().collect();
        self.dirty.extend(ids);
    }
}
