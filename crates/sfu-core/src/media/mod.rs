//! The media plane: WebRTC publish and play on one UDP port.
//!
//! - [`MediaPlane`] implements the control plane's `MediaControl`: it builds
//!   `rtc` peer connections for offers ([`peer`]) and hands them to the
//!   workers; it is the only place with locks, and none is taken per packet.
//! - [`worker`]: event loops, one per thread, each with its own socket on the
//!   shared port (`SO_REUSEPORT`), its own peers and its own stream router.
//! - [`stun`]: first-datagram demux by ICE ufrag; [`ice_tcp`]: the ICE-TCP
//!   listener (RFC 6544 passive candidates, [`tcp_framing`]: RFC 4571
//!   frames), whose connections feed the same peers; [`convert`]: packets
//!   between the stack and the router.
//! - [`egress`]: how each player leg's RTP leaves — through `rtc`, or on
//!   the fast path, written and protected in place in the send queue once
//!   verified; [`srtp`]: SRTP protection of our own and the provider
//!   wrapper that captures a connection's master keys; [`fast_path`]: when
//!   a leg may switch to our protection (verified byte for byte on its
//!   first packets through `rtc`); [`sender_report`]: every player leg's
//!   sender reports; [`latency`]: how long sent datagrams waited inside.

pub mod batch;
pub mod bwe;
pub mod codec_match;
pub mod convert;
pub mod directory;
pub mod dtls_compat;
pub mod egress;
pub mod fast_path;
pub mod ice_tcp;
pub mod latency;
pub mod loop_stats;
pub mod offer_check;
pub mod peer;
pub mod peer_states;
pub mod probe;
pub mod relay;
pub mod sender_report;
mod service;
pub mod srtp;
pub mod stun;
pub mod tcp_framing;
pub mod twcc;
pub mod worker;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use parking_lot::Mutex;
use room_signal::media::{
    Accepted, MediaControl, MediaEvent, MediaId, PlayRequest, PublishRequest,
};
use room_signal::outbox::{Outbound, Outbox};
use room_signal::SignalError;
use stream_router::StreamKey;

use self::directory::{Directory, DirectoryStats, NewConn, Parked, Role};
use self::peer::CandidateAddrs;

/// How the media plane is set up.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Where the shared UDP socket binds (port 0: any free port).
    pub udp_bind: SocketAddr,
    /// The ICE-TCP port, on the UDP socket's address (0: any free port;
    /// `None`: no ICE-TCP, answers carry the UDP candidate only).
    pub tcp_port: Option<u16>,
    /// ICE-TCP connections open at once; more are closed at once.
    pub max_tcp_connections: usize,
    /// Address announced in answers for NAT 1:1 deployments.
    pub public_ip: Option<IpAddr>,
    /// Event-loop threads (each with a socket on the shared port).
    pub workers: usize,
    /// Packets queued per player down-track before drops.
    pub player_queue: usize,
    /// A connection that never sees its first STUN check within this fails.
    pub connect_timeout: Duration,
    /// No ICE traffic for this long: the connection is disconnected...
    pub ice_disconnected_timeout: Duration,
    /// ...and for this long: failed (its publish or play ends).
    pub ice_failed_timeout: Duration,
    /// A publisher that has sent media (SRTP or SRTCP) and then sends none
    /// for this long has failed: its publish ends at once, so its players
    /// wait for the next publisher within about this long of it going away
    /// (the ICE timeouts above are far longer, as they must be: consent
    /// checks come only every 4–6 s). `None`: off, only ICE ends it.
    pub publisher_silence_timeout: Option<Duration>,
    /// Send runs of datagrams to one address with UDP GSO (see `batch`).
    pub udp_gso: bool,
    /// Peer connections the server holds at once (`1005011` beyond).
    pub max_peers: usize,
    /// Peer connections one app holds at once (`1005011` beyond).
    pub max_peers_per_app: usize,
    /// Players' RTP protected and written in place by us once verified
    /// against `rtc`'s output (`egress`); off: everything through `rtc`.
    pub fast_path: bool,
    /// SRTP profiles offered in DTLS, preferred first.
    pub srtp_profiles: Vec<srtp::Profile>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            udp_bind: SocketAddr::from(([0, 0, 0, 0], 7882)),
            tcp_port: None,
            max_tcp_connections: 10_000,
            public_ip: None,
            workers: 1,
            player_queue: 512,
            connect_timeout: Duration::from_secs(30),
            ice_disconnected_timeout: Duration::from_secs(15),
            ice_failed_timeout: Duration::from_secs(30),
            publisher_silence_timeout: Some(Duration::from_millis(1500)),
            udp_gso: true,
            max_peers: 20_000,
            max_peers_per_app: 10_000,
            fast_path: true,
            srtp_profiles: vec![
                srtp::Profile::AeadAes128Gcm,
                srtp::Profile::AesCm128HmacSha1_80,
            ],
        }
    }
}

/// State shared by the control-plane calls and the workers (never per packet).
pub(crate) struct Shared {
    pub config: MediaConfig,
    pub candidates: CandidateAddrs,
    /// The one owner of which connections and streams exist, and where.
    pub directory: Mutex<Directory>,
    /// Each worker's mailbox (commands and relayed packets, in order).
    mailboxes: Vec<relay::Mailbox>,
    next_id: AtomicU64,
    /// Every worker's egress counts, summed.
    pub egress: egress::EgressTotals,
    /// How long sent datagrams waited in the workers, summed.
    pub latency: latency::LatencyTotals,
    /// Each worker's event-loop lag and busy time (one slot per worker).
    pub loops: Vec<loop_stats::LoopTotals>,
    /// ICE-TCP connections open (accepted and not closed yet).
    pub tcp_open: Arc<AtomicUsize>,
    /// The address ICE-TCP packets are tagged with for `rtc` (the host
    /// candidate's address on the TCP port), if ICE-TCP is on.
    pub tcp_local: Option<SocketAddr>,
}

impl Shared {
    pub fn command(&self, worker: usize, cmd: relay::Command) {
        if let Some(m) = self.mailboxes.get(worker) {
            m.command(cmd);
        }
    }

    /// Queue a relayed packet for `worker`; dropped if that worker is behind.
    pub fn relay(&self, worker: usize, relay: relay::Relay) -> bool {
        self.mailboxes.get(worker).is_some_and(|m| m.relay(relay))
    }

    /// End connection `id` in the directory (the first caller wins) and
    /// tell the publisher's worker when a worker no longer needs its relay.
    /// The worker that holds the connection is not told: the caller does
    /// that (or is that worker).
    pub fn remove(&self, id: MediaId) -> Option<directory::Removed> {
        let removed = self.directory.lock().remove(id)?;
        if let Some((worker, publisher, to)) = removed.relay_stop {
            self.command(
                worker,
                relay::Command::RelayStop {
                    key: removed.key.clone(),
                    publisher,
                    to,
                },
            );
        }
        Some(removed)
    }

    /// Parked connections that never got a STUN check: failed.
    pub fn expire_parked(&self, now: Instant) {
        let timeout = self.config.connect_timeout;
        let expired = self.directory.lock().expired(now, timeout);
        for id in expired {
            if let Some(removed) = self.remove(id) {
                tracing::info!(media = id, "no ICE check before the connect timeout");
                notify(&removed.notify, id, MediaEvent::Failed);
            }
        }
    }
}

/// Sizes of every map of the media plane (tests and diagnostics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaStats {
    pub directory: DirectoryStats,
    pub workers: Vec<worker::WorkerStats>,
}

/// The media plane handle the control plane talks to.
pub struct MediaPlane {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    /// The ICE-TCP listener's address, and what stops it.
    tcp_addr: Option<SocketAddr>,
    tcp_stop: Option<tokio::sync::watch::Sender<bool>>,
    /// The worker threads, joined at shutdown.
    threads: parking_lot::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| CHARS[rand::random_range(0..CHARS.len())] as char)
        .collect()
}

fn bind_socket(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

impl MediaPlane {
    /// Bind the media port and start the workers.
    pub fn start(config: MediaConfig) -> anyhow::Result<Arc<MediaPlane>> {
        let workers = config.workers.max(1);
        // The shared DTLS certificate, made now rather than on the first offer.
        peer::certificate();
        // SO_REUSEPORT would let a second server share the port and steal
        // its datagrams: make sure nobody holds it first.
        if config.udp_bind.port() != 0 {
            UdpSocket::bind(config.udp_bind)
                .with_context(|| format!("UDP {} is already in use", config.udp_bind))?;
        }
        let first = bind_socket(config.udp_bind)
            .with_context(|| format!("binding UDP {}", config.udp_bind))?;
        let local_addr = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(
                bind_socket(local_addr).with_context(|| format!("binding UDP {local_addr}"))?,
            );
        }
        // Host candidate: the bound address (or the primary interface's when
        // bound to all of them), plus the public address for NAT 1:1.
        let host = match local_addr.ip() {
            ip if !ip.is_unspecified() => ip,
            _ => primary_ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        };
        let mut announced = vec![SocketAddr::new(host, local_addr.port())];
        if let Some(public) = config.public_ip.filter(|p| *p != host) {
            announced.push(SocketAddr::new(public, local_addr.port()));
        }
        // ICE-TCP on the UDP socket's address (port 0: any free port).
        let tcp_listener = match config.tcp_port {
            Some(port) => {
                let at = SocketAddr::new(config.udp_bind.ip(), port);
                Some(ice_tcp::bind(at).with_context(|| format!("binding TCP {at}"))?)
            }
            None => None,
        };
        let tcp_addr = match &tcp_listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let mut mailboxes = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = relay::mailbox();
            mailboxes.push(tx);
            receivers.push(rx);
        }
        let shared = Arc::new(Shared {
            candidates: CandidateAddrs {
                addrs: announced.clone(),
                tcp_port: tcp_addr.map(|a| a.port()),
                ice_disconnected: config.ice_disconnected_timeout,
                ice_failed: config.ice_failed_timeout,
                // FFmpeg's P-224 certificates (`dtls_compat.rs`).
                crypto: dtls_compat::shared(),
                srtp_profiles: config.srtp_profiles.clone(),
            },
            directory: Mutex::new(Directory::new(
                workers,
                config.max_peers,
                config.max_peers_per_app,
            )),
            config,
            mailboxes,
            next_id: AtomicU64::new(1),
            egress: Default::default(),
            latency: Default::default(),
            loops: (0..workers).map(|_| Default::default()).collect(),
            tcp_open: Arc::new(AtomicUsize::new(0)),
            tcp_local: tcp_addr.map(|a| SocketAddr::new(host, a.port())),
        });
        let mut threads = Vec::new();
        for (idx, (socket, mailbox)) in sockets.into_iter().zip(receivers).enumerate() {
            let shared = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("media-{idx}"))
                    .spawn(move || worker::run(idx, socket, shared, mailbox))
                    .context("spawning a media worker")?,
            );
        }
        let mut tcp_stop = None;
        if let Some(listener) = tcp_listener {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            tcp_stop = Some(stop);
            let (shared, open) = (shared.clone(), shared.tcp_open.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("media-tcp".into())
                    .spawn(move || ice_tcp::run(listener, shared, open, stopped))
                    .context("spawning the ICE-TCP listener")?,
            );
        }
        tracing::info!(%local_addr, ?tcp_addr, ?announced, workers, "media plane listening");
        Ok(Arc::new(MediaPlane {
            shared,
            local_addr,
            tcp_addr,
            tcp_stop,
            threads: parking_lot::Mutex::new(threads),
        }))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The ICE-TCP listener's address, if ICE-TCP is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// ICE-TCP connections open now (waiting for their first check, or
    /// bound to a peer).
    pub fn ice_tcp_connections(&self) -> usize {
        self.shared.tcp_open.load(Ordering::Relaxed)
    }

    fn next_id(&self) -> MediaId {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Egress counts so far (every worker's, summed at its loop turns).
    pub fn egress(&self) -> egress::EgressStats {
        self.shared.egress.get()
    }

    /// Each worker's loop lag and busy time so far (see [`loop_stats`]).
    pub fn loops(&self) -> Vec<loop_stats::WorkerLoop> {
        self.shared.loops.iter().map(|l| l.get()).collect()
    }

    /// The wait of every datagram sent so far (see [`latency`]).
    pub fn latency(&self) -> latency::Latency {
        self.shared.latency.get()
    }

    /// Sizes of every map of the media plane: the directory's, and each
    /// worker's (asked through its mailbox, so everything queued before is
    /// processed first).
    pub async fn stats(&self) -> MediaStats {
        let directory = self.shared.directory.lock().stats();
        let mut workers = Vec::new();
        for w in 0..self.shared.mailboxes.len() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.shared.command(w, relay::Command::Stats(tx));
            workers.push(rx.await.unwrap_or_default());
        }
        MediaStats { directory, workers }
    }
}

impl MediaPlane {
    /// How many media workers there are.
    pub fn workers(&self) -> usize {
        self.shared.mailboxes.len()
    }

    /// Ask every worker at once (`make` builds each one's command around
    /// its reply channel); each worker's answer, or `None` if it gave none
    /// within `within` of the asking.
    async fn ask_all<T>(
        &self,
        within: std::time::Duration,
        make: impl Fn(tokio::sync::oneshot::Sender<T>) -> relay::Command,
    ) -> Vec<Option<T>> {
        let asked: Vec<_> = (0..self.shared.mailboxes.len())
            .map(|w| {
                let (tx, rx) = tokio::sync::oneshot::channel();
                self.shared.command(w, make(tx));
                rx
            })
            .collect();
        let deadline = tokio::time::Instant::now() + within;
        let mut answers = Vec::with_capacity(asked.len());
        for rx in asked {
            answers.push(
                tokio::time::timeout_at(deadline, rx)
                    .await
                    .ok()
                    .and_then(Result::ok),
            );
        }
        answers
    }

    /// Every worker's router counters, summed, and the connections by
    /// state (parked ones from the directory, the rest from the workers; a
    /// worker that does not answer within `within` adds nothing this time).
    pub async fn totals(
        &self,
        within: std::time::Duration,
    ) -> (stream_router::RouterTotals, peer_states::PeerStates) {
        let mut sum = stream_router::RouterTotals::default();
        let mut states = self.shared.directory.lock().parked_states();
        for (t, s) in self
            .ask_all(within, relay::Command::Totals)
            .await
            .into_iter()
            .flatten()
        {
            sum.add(&t);
            states.add(&s);
        }
        (sum, states)
    }

    /// The media of `app`'s streams, from the workers that publish them
    /// (a worker that does not answer within `within` adds nothing).
    pub async fn published_media(
        &self,
        app: u32,
        within: std::time::Duration,
    ) -> Vec<relay::PublishedMedia> {
        self.ask_all(within, |reply| relay::Command::StreamMedia { app, reply })
            .await
            .into_iter()
            .flatten()
            .flatten()
            .collect()
    }

    /// Close every peer connection and stop the workers: each is asked to
    /// close its connections and end its loop; the threads are joined.
    /// True if every worker finished within `within`.
    pub async fn shutdown(&self, within: std::time::Duration) -> bool {
        if let Some(stop) = &self.tcp_stop {
            let _ = stop.send(true);
        }
        let done = self.ask_all(within, relay::Command::Shutdown).await;
        let all = done.iter().all(Option::is_some);
        if all {
            let threads = std::mem::take(&mut *self.threads.lock());
            let _ = tokio::task::spawn_blocking(move || {
                for t in threads {
                    let _ = t.join();
                }
            })
            .await;
        }
        all
    }

    /// The workers that did not answer a ping within `within` (all asked
    /// at once): an empty list means every worker's loop is turning.
    pub async fn unanswering_workers(&self, within: std::time::Duration) -> Vec<usize> {
        let answers = self.ask_all(within, relay::Command::Ping).await;
        (0..answers.len())
            .filter(|w| answers[*w].is_none())
            .collect()
    }
}

/// The address of the interface that routes to the outside, for answers
/// when binding the unspecified address. `connect` on UDP sends nothing.
fn primary_ip() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    s.local_addr()
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
}

impl MediaControl for MediaPlane {
    fn publish(&self, req: PublishRequest<'_>) -> Result<Accepted, SignalError> {
        self.shared.directory.lock().check_room(req.app_id)?;
        let (ufrag, pwd) = (random_token(16), random_token(32));
        let now = Instant::now();
        let (pc, answer_sdp, codecs) =
            peer::publisher(req.offer_sdp, &ufrag, &pwd, &self.shared.candidates, now)?;
        let id = self.next_id();
        self.shared.directory.lock().park(NewConn {
            id,
            app: req.app_id,
            key: StreamKey::new(req.app_id, req.stream_id),
            role: Role::Publish,
            notify: req.notify,
            ufrag,
            codecs: Some(codecs),
            parked: Parked {
                pc: Box::new(pc),
                pwd,
                legs: Vec::new(),
                created: now,
                capture: None,
            },
        })?;
        Ok(Accepted { id, answer_sdp })
    }

    fn play(&self, req: PlayRequest<'_>) -> Result<Accepted, SignalError> {
        let key = StreamKey::new(req.app_id, req.stream_id);
        // No publisher yet is fine: the play waits for one.
        let codecs = {
            let directory = self.shared.directory.lock();
            directory.check_room(req.app_id)?;
            directory.codecs(&key).unwrap_or_default()
        };
        let (ufrag, pwd) = (random_token(16), random_token(32));
        let now = Instant::now();
        // A player's own provider records its SRTP master keys for the
        // egress fast path (`egress.rs`).
        let capture = match self.shared.config.fast_path {
            true => dtls_compat::shared().map(|p| Arc::new(srtp::KeyCapture::new(p))),
            false => None,
        };
        let candidates = match &capture {
            Some(c) => self.shared.candidates.with_crypto(c.clone()),
            None => self.shared.candidates.clone(),
        };
        let (pc, answer_sdp, legs) = peer::player(
            req.offer_sdp,
            req.stream_id,
            &codecs,
            &ufrag,
            &pwd,
            &candidates,
            now,
        )?;
        let id = self.next_id();
        self.shared.directory.lock().park(NewConn {
            id,
            app: req.app_id,
            key,
            role: Role::Play,
            notify: req.notify,
            ufrag,
            codecs: None,
            parked: Parked {
                pc: Box::new(pc),
                pwd,
                legs,
                created: now,
                capture,
            },
        })?;
        Ok(Accepted { id, answer_sdp })
    }

    fn add_candidate(&self, _id: MediaId, candidate: &str) -> Result<(), SignalError> {
        // The server is ICE-lite: it answers the client's checks and needs no
        // remote candidates. Accept well-formed ones, refuse garbage.
        let c = candidate.trim().trim_start_matches("a=");
        if c.is_empty() || c.starts_with("candidate:") {
            Ok(())
        } else {
            Err(SignalError::malformed(
                "candidate must start with `candidate:`",
            ))
        }
    }

    fn set_play_quality(&self, id: MediaId, cap: u8) {
        let worker = self.shared.directory.lock().set_cap(id, cap);
        if let Some(w) = worker {
            self.shared.command(w, relay::Command::PlayCap { id, cap });
        }
    }

    fn stop(&self, id: MediaId) {
        if let Some(removed) = self.shared.remove(id) {
            if let Some(w) = removed.worker {
                self.shared.command(w, relay::Command::Stop(id));
            }
        }
    }
}

/// Tell a session about one of its connections.
pub(crate) fn notify(outbox: &Outbox, id: MediaId, event: MediaEvent) {
    outbox.send(Outbound::Media { id, event });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_announce_the_host_and_the_public_address() {
        let plane = MediaPlane::start(MediaConfig {
            udp_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_ip: Some(IpAddr::from([203, 0, 113, 7])),
            workers: 2,
            ..MediaConfig::default()
        })
        .unwrap();
        let port = plane.local_addr().port();
        assert_ne!(port, 0);
        assert_eq!(
            plane.shared.candidates.addrs,
            vec![
                SocketAddr::from(([127, 0, 0, 1], port)),
                SocketAddr::from(([203, 0, 113, 7], port)),
            ]
        );
        // The port is taken: a second media plane refuses to share it.
        let again = MediaPlane::start(MediaConfig {
            udp_bind: plane.local_addr(),
            ..MediaConfig::default()
        });
        assert!(again.is_err());
        // No ICE-TCP unless asked for.
        assert_eq!(plane.tcp_addr(), None);
        assert_eq!(plane.shared.candidates.tcp_port, None);
    }

    #[test]
    fn ice_tcp_listens_on_the_udp_address_and_is_announced() {
        let plane = MediaPlane::start(MediaConfig {
            udp_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tcp_port: Some(0),
            ..MediaConfig::default()
        })
        .unwrap();
        let tcp = plane.tcp_addr().unwrap();
        assert_eq!(tcp.ip(), IpAddr::from([127, 0, 0, 1]));
        assert_ne!(tcp.port(), 0);
        assert_eq!(plane.shared.candidates.tcp_port, Some(tcp.port()));
        assert_eq!(plane.shared.tcp_local, Some(tcp));
        assert_eq!(plane.ice_tcp_connections(), 0);
        // Its port is taken: a second media plane does not start.
        let again = MediaPlane::start(MediaConfig {
            udp_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tcp_port: Some(tcp.port()),
            ..MediaConfig::default()
        });
        assert!(again.is_err());
    }
}
