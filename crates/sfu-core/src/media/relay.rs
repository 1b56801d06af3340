//! Between workers: one ordered mailbox per worker carries both commands
//! and relayed packets, so a `RelayEnd` can never overtake the packets its
//! publisher sent before it. Commands are never dropped; relayed packets
//! are, once a worker has `RELAY_BACKLOG` of them queued (a lossy path, like
//! the network).
//!
//! Every relayed packet and relay command names the publisher connection it
//! belongs to. Connection ids only grow, so a packet of an older publisher
//! of the same stream ID (stopped and republished elsewhere, or on this very
//! worker) is recognised and dropped instead of replacing the new
//! publisher's tracks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use room_signal::media::MediaId;
use stream_router::{MediaKind, RtpPacket, StreamHandle, StreamKey, TrackHandle, TrackInfo};
use tokio::sync::{mpsc, oneshot};

use super::peer_states::PeerStates;
use super::worker::{Origin, Role, Worker, WorkerStats};

/// Relayed packets queued for one worker before drops.
pub const RELAY_BACKLOG: usize = 4096;

/// A message to a worker. Relays are by far the common message, so they
/// are not boxed (a box would be one allocation per relayed packet).
#[allow(clippy::large_enum_variant)]
pub enum Inbound {
    Command(Command),
    Relay(Relay),
}

/// Control messages from the control plane and other workers.
pub enum Command {
    /// The control plane ended connection `id` (no event is reported).
    Stop(MediaId),
    /// Play `id` asked for at most simulcast layer `cap` (`u8::MAX`: auto).
    PlayCap { id: MediaId, cap: u8 },
    /// Worker `to` has players of `key`: relay publisher `publisher` to it.
    RelayTo {
        key: StreamKey,
        publisher: MediaId,
        to: usize,
    },
    /// Worker `to` has no players of `key` any more.
    RelayStop {
        key: StreamKey,
        publisher: MediaId,
        to: usize,
    },
    /// A player elsewhere needs a keyframe of `key`'s `kind` track (video:
    /// of simulcast layer `layer`).
    RelayPli {
        key: StreamKey,
        publisher: MediaId,
        kind: MediaKind,
        layer: u8,
    },
    /// Publisher `publisher` of `key` is gone (sent after its last packet).
    RelayEnd { key: StreamKey, publisher: MediaId },
    /// Worker `from`'s players of `key` want these simulcast layers (sent
    /// to the publisher's worker when it changes; `worker/pause.rs`).
    LayerDemand {
        key: StreamKey,
        publisher: MediaId,
        from: usize,
        demand: [bool; stream_router::MAX_LAYERS],
    },
    /// The publisher's worker paused (or resumed) layers of `key`: the
    /// rates its routers hold them at (`Router::set_held`).
    RelayHeld {
        key: StreamKey,
        publisher: MediaId,
        from: usize,
        held: [Option<u64>; stream_router::MAX_LAYERS],
    },
    /// Report the sizes of every map.
    Stats(oneshot::Sender<WorkerStats>),
    /// Answer at once (readiness: the worker's loop is turning).
    Ping(oneshot::Sender<()>),
    /// The router's cumulative counters (for `/metrics`).
    /// Router counters and connections by state (`/metrics`).
    Totals(oneshot::Sender<(stream_router::RouterTotals, PeerStates)>),
    /// The server is shutting down: close every connection (DTLS close
    /// alerts are sent), answer, and end the worker's loop.
    Shutdown(oneshot::Sender<()>),
    /// The streams of `app` published on this worker, with their tracks
    /// (admin API).
    StreamMedia {
        app: u32,
        reply: oneshot::Sender<Vec<PublishedMedia>>,
    },
    /// An ICE-TCP connection whose first frame is a binding request for a
    /// peer this worker holds or may adopt (`worker/tcp.rs`).
    IceTcp(Box<super::ice_tcp::TcpAccepted>),
}

/// A stream published on a worker, as the admin API shows its media.
#[derive(Debug, Clone)]
pub struct PublishedMedia {
    pub stream_id: Arc<str>,
    /// Its tracks: audio, then each video (simulcast) layer from the
    /// lowest, where the publisher sends them.
    pub tracks: [Option<stream_router::TrackMedia>; 1 + stream_router::MAX_LAYERS],
}

/// A publisher's packet relayed to a worker that has players of it (one
/// hop per worker, never one per player). Carries its track's description
/// so that the receiving worker can (re)create the track on the fly.
pub struct Relay {
    pub key: StreamKey,
    pub publisher: MediaId,
    pub from: usize,
    /// The track's codec profile (see `peer::codec_profile`).
    pub profile: u32,
    /// The publisher's track, shared (not copied) by every relayed packet.
    pub info: Arc<TrackInfo>,
    /// When the publisher's worker received it (for the added latency).
    pub received: std::time::Instant,
    pub packet: RtpPacket,
}

/// The sending side of a worker's mailbox.
#[derive(Clone)]
pub struct Mailbox {
    tx: mpsc::UnboundedSender<Inbound>,
    backlog: Arc<AtomicUsize>,
}

/// The receiving side, owned by the worker.
pub struct MailboxRx {
    rx: mpsc::UnboundedReceiver<Inbound>,
    backlog: Arc<AtomicUsize>,
}

pub fn mailbox() -> (Mailbox, MailboxRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(AtomicUsize::new(0));
    (
        Mailbox {
            tx,
            backlog: backlog.clone(),
        },
        MailboxRx { rx, backlog },
    )
}

impl Mailbox {
    pub fn command(&self, cmd: Command) {
        let _ = self.tx.send(Inbound::Command(cmd));
    }

    /// Queue a relayed packet; false (dropped) if the worker is behind.
    pub fn relay(&self, relay: Relay) -> bool {
        if self.backlog.fetch_add(1, Ordering::Relaxed) >= RELAY_BACKLOG {
            self.backlog.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        if self.tx.send(Inbound::Relay(relay)).is_err() {
            self.backlog.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

impl MailboxRx {
    pub async fn recv(&mut self) -> Option<Inbound> {
        let msg = self.rx.recv().await;
        self.taken(&msg);
        msg
    }

    pub fn try_recv(&mut self) -> Option<Inbound> {
        let msg = self.rx.try_recv().ok();
        self.taken(&msg);
        msg
    }

    fn taken(&self, msg: &Option<Inbound>) {
        if let Some(Inbound::Relay(_)) = msg {
            self.backlog.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What feeds the router stream of a key on this worker.
pub enum Source {
    /// A publisher connection on this worker (its peer holds the stream).
    Local(MediaId),
    /// Relayed from the publisher's worker.
    Relayed(RelayIn),
}

/// A stream relayed into this worker.
pub struct RelayIn {
    pub publisher: MediaId,
    pub from: usize,
    pub stream: StreamHandle,
    pub tracks: Vec<(TrackHandle, TrackInfo)>,
    /// The layers this worker's players want, as last told the
    /// publisher's worker.
    pub demand_sent: [bool; stream_router::MAX_LAYERS],
}

impl Worker {
    pub(super) fn on_inbound(&mut self, msg: Inbound, now: std::time::Instant) {
        match msg {
            Inbound::Relay(relay) => self.on_relay(relay, now),
            Inbound::Command(cmd) => self.on_command(cmd),
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Stop(id) => self.drop_peer(id),
            Command::PlayCap { id, cap } => self.set_play_cap(id, cap, std::time::Instant::now()),
            Command::RelayTo { key, publisher, to } => {
                let Some((targets, pause)) = self.local_publisher(&key, publisher) else {
                    return;
                };
                if !targets.contains(&to) {
                    targets.push(to);
                }
                // Its routers must know the paused layers before the rest.
                let held = pause.held();
                if held.iter().any(Option::is_some) {
                    let cmd = Command::RelayHeld {
                        key,
                        publisher,
                        from: self.idx,
                        held,
                    };
                    self.shared.command(to, cmd);
                }
            }
            Command::RelayStop { key, publisher, to } => {
                if let Some((targets, pause)) = self.local_publisher(&key, publisher) {
                    targets.retain(|t| *t != to);
                    pause.forget(to);
                }
            }
            Command::LayerDemand {
                key,
                publisher,
                from,
                demand,
            } => {
                if let Some((_, pause)) = self.local_publisher(&key, publisher) {
                    pause.set_remote(from, demand);
                }
            }
            Command::RelayHeld {
                key,
                publisher,
                from,
                held,
            } => {
                // It may come before the relay's first packet.
                if let Some(stream) = self.relay_in(&key, publisher, from) {
                    self.router.set_held(stream, held);
                }
            }
            Command::RelayPli {
                key,
                publisher,
                kind,
                layer,
            } => {
                if !matches!(self.sources.get(&key), Some(Source::Local(p)) if *p == publisher) {
                    return;
                }
                // Through the router's aggregation, like a local player's
                // request: one PLI per track per interval, whichever worker
                // asked.
                if let Some(track) = self.router.find_stream(&key).and_then(|s| match kind {
                    MediaKind::Audio => self.router.stream_track(s, kind),
                    MediaKind::Video => self.router.stream_layer(s, layer),
                }) {
                    self.router.request_keyframe(track);
                }
            }
            Command::RelayEnd { key, publisher } => {
                if matches!(self.sources.get(&key), Some(Source::Relayed(r)) if r.publisher == publisher)
                {
                    self.end_relay_in(&key);
                }
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            Command::Totals(reply) => {
                let mut totals = self.router.totals();
                totals.layers_paused = self.layers_paused;
                let _ = reply.send((totals, self.peer_states()));
            }
            Command::Shutdown(reply) => {
                self.stopping = Some(reply);
            }
            Command::StreamMedia { app, reply } => {
                let _ = reply.send(self.published_media(app));
            }
            Command::IceTcp(accepted) => self.on_tcp_accepted(accepted, std::time::Instant::now()),
            Command::Ping(reply) => {
                // Test hook (debug builds): a worker whose loop stalls.
                #[cfg(debug_assertions)]
                if let Some(ms) = self.stall_on_ping_ms.take() {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                let _ = reply.send(());
            }
        }
    }

    /// The streams of `app` whose publisher is on this worker.
    fn published_media(&self, app: u32) -> Vec<PublishedMedia> {
        self.sources
            .iter()
            .filter(|(key, _)| key.app == app)
            .filter_map(|(key, source)| {
                let Source::Local(id) = source else {
                    return None;
                };
                let Role::Publisher { stream, .. } = &self.peers.get(id)?.role else {
                    return None;
                };
                Some(PublishedMedia {
                    stream_id: key.stream_id.clone(),
                    tracks: self.router.stream_media((*stream)?),
                })
            })
            .collect()
    }

    /// Local publisher `publisher` of `key`: its relay targets and the
    /// pause state of its layers.
    fn local_publisher(
        &mut self,
        key: &StreamKey,
        publisher: MediaId,
    ) -> Option<(&mut Vec<usize>, &mut super::worker::LayerPause)> {
        let peer = self.peers.get_mut(&publisher)?;
        if peer.key != *key {
            return None;
        }
        match &mut peer.role {
            Role::Publisher { targets, pause, .. } => Some((targets, pause)),
            Role::Player { .. } => None,
        }
    }

    /// Forget the relayed copy of `key`: its tracks go, its players stay
    /// subscribed (waiting in the router for the next source of `key`).
    pub(super) fn end_relay_in(&mut self, key: &StreamKey) {
        if let Some(Source::Relayed(r)) = self.sources.remove(key) {
            for (t, _) in &r.tracks {
                self.router_tracks.remove(t);
            }
            let _ = self.router.remove_stream(r.stream);
        }
    }

    /// Make sure this worker has the relayed copy of `key` for publisher
    /// `publisher` on worker `from`: made when this worker has players of
    /// the key; a newer publisher of the key replaces an older one's
    /// tracks. Its router stream, or `None` for a stale publisher (or a key
    /// published here, or nobody plays it). The common case, the copy is
    /// there already, is one map lookup (once per relayed packet).
    fn relay_in(
        &mut self,
        key: &StreamKey,
        publisher: MediaId,
        from: usize,
    ) -> Option<StreamHandle> {
        match self.sources.get(key) {
            // A publisher of this key lives here: the packet is stale.
            Some(Source::Local(_)) => None,
            Some(Source::Relayed(r)) if r.publisher == publisher => Some(r.stream),
            // A newer publisher of the same stream ID: it replaces the old.
            Some(Source::Relayed(r)) if r.publisher < publisher => {
                self.replace_relay_in(key, publisher, from)
            }
            Some(Source::Relayed(_)) => None,
            None => {
                // Only a worker with players of the key keeps a copy.
                if !self.router.is_awaited(key) {
                    return None;
                }
                let stream = self.router.add_stream(key.clone()).ok()?;
                self.sources.insert(
                    key.clone(),
                    Source::Relayed(RelayIn {
                        publisher,
                        from,
                        stream,
                        tracks: Vec::new(),
                        demand_sent: [false; stream_router::MAX_LAYERS],
                    }),
                );
                Some(stream)
            }
        }
    }

    /// A newer publisher of `key` takes over its relayed copy: the old
    /// one's tracks and held layers go.
    fn replace_relay_in(
        &mut self,
        key: &StreamKey,
        publisher: MediaId,
        from: usize,
    ) -> Option<StreamHandle> {
        let Some(Source::Relayed(r)) = self.sources.get_mut(key) else {
            return None;
        };
        for (t, _) in r.tracks.drain(..) {
            self.router_tracks.remove(&t);
            let _ = self.router.remove_track(t);
        }
        self.router
            .set_held(r.stream, [None; stream_router::MAX_LAYERS]);
        r.publisher = publisher;
        r.from = from;
        r.demand_sent = [false; stream_router::MAX_LAYERS];
        Some(r.stream)
    }

    /// A packet of a stream published on another worker.
    fn on_relay(&mut self, relay: Relay, now: std::time::Instant) {
        self.sends.since(relay.received);
        if self
            .relay_in(&relay.key, relay.publisher, relay.from)
            .is_none()
        {
            return;
        }
        let Some(Source::Relayed(r)) = self.sources.get_mut(&relay.key) else {
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
                let Ok(h) = self.router.add_track(r.stream, *relay.info) else {
                    return;
                };
                // add_track replaced the stream's track of that kind.
                let (gone, kept): (Vec<_>, Vec<_>) = r.tracks.drain(..).partition(|(_, info)| {
                    info.kind == relay.info.kind && info.layer == relay.info.layer
                });
                r.tracks = kept;
                r.tracks.push((h, *relay.info));
                for (t, _) in gone {
                    self.router_tracks.remove(&t);
                }
                self.router_tracks.insert(
                    h,
                    Origin::Relayed {
                        key: relay.key.clone(),
                        kind: relay.info.kind,
                        layer: relay.info.layer,
                        from: relay.from,
                        publisher: relay.publisher,
                        profile: relay.profile,
                    },
                );
                let stream = r.stream;
                self.on_track_added(stream, relay.info.kind, relay.info.codec, relay.profile);
                h
            }
        };
        let _ = self.router.push_rtp(track, relay.packet, now);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use bytes::Bytes;
    use stream_router::{
        Codec, DownTrackConfig, ExtMap, MediaKind, RtpPacket, StreamKey, TrackInfo,
    };

    use super::*;
    use crate::media::{MediaConfig, MediaPlane};

    fn video(ssrc: u32) -> TrackInfo {
        TrackInfo {
            kind: MediaKind::Video,
            codec: Codec::Vp8,
            clock_rate: 90_000,
            ssrc,
            payload_type: 96,
            extensions: ExtMap::new(),
            layer: 0,
        }
    }

    fn relay(key: &StreamKey, publisher: MediaId, ssrc: u32, seq: u16) -> Inbound {
        Inbound::Relay(Relay {
            key: key.clone(),
            publisher,
            from: 0,
            profile: 0,
            info: Arc::new(video(ssrc)),
            received: std::time::Instant::now(),
            packet: RtpPacket {
                payload_type: 96,
                sequence_number: seq,
                ssrc,
                // A VP8 keyframe start (S bit, then a P=0 payload header).
                payload: Bytes::from_static(&[0x10, 0x00, 0x9d, 0x01, 0x2a, 0, 0, 0, 0]),
                ..RtpPacket::default()
            },
        })
    }

    fn end(key: &StreamKey, publisher: MediaId) -> Inbound {
        Inbound::Command(Command::RelayEnd {
            key: key.clone(),
            publisher,
        })
    }

    /// The video track currently feeding `key`'s router stream, by SSRC.
    fn feeding(w: &Worker, key: &StreamKey) -> Option<u32> {
        let stream = w.router.find_stream(key)?;
        let track = w.router.stream_track(stream, MediaKind::Video)?;
        w.router.track_info(track).map(|i| i.ssrc)
    }

    /// Worker 1 of a one-worker plane (its worker 0 the other end of
    /// relays), with the plane that must outlive it.
    async fn worker() -> (std::sync::Arc<MediaPlane>, Worker) {
        let plane = MediaPlane::start(MediaConfig {
            udp_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 1,
            ..MediaConfig::default()
        })
        .unwrap();
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let w = Worker::new(1, socket, plane.shared.clone()).unwrap();
        (plane, w)
    }

    /// A local video player of `key` (a down-track waiting for the key).
    fn player_of(w: &mut Worker, key: &StreamKey) -> stream_router::DownTrackHandle {
        w.router.subscribe_key(
            key,
            MediaKind::Video,
            DownTrackConfig {
                ssrc: 42,
                payload_type: 96,
                extensions: ExtMap::new(),
                queue_capacity: 16,
            },
        )
    }

    fn relayed_from(w: &Worker, key: &StreamKey) -> Option<MediaId> {
        match w.sources.get(key) {
            Some(Source::Relayed(r)) => Some(r.publisher),
            _ => None,
        }
    }

    /// Late packets of an older publisher of the same stream ID never
    /// replace a newer one, whether the newer one is relayed from another
    /// worker or publishes on this very worker; an old publisher's end
    /// leaves the new one alone.
    #[tokio::test]
    async fn stale_relays_never_replace_a_newer_publisher() {
        let (_plane, mut w) = worker().await;
        let now = Instant::now();
        let key = StreamKey::new(1, "cam");

        // Nobody plays `cam` here: relayed packets are not kept.
        w.on_inbound(relay(&key, 5, 111, 1), now);
        assert!(w.sources.is_empty());
        assert_eq!(w.router.counts().0, 0);

        // A local player of `cam` (a down-track waiting for the key).
        let dt = player_of(&mut w, &key);
        w.on_inbound(relay(&key, 5, 111, 2), now);
        assert_eq!(relayed_from(&w, &key), Some(5));
        assert_eq!(feeding(&w, &key), Some(111));

        // An older publisher's straggler is dropped.
        w.on_inbound(relay(&key, 3, 333, 9), now);
        assert_eq!(feeding(&w, &key), Some(111));

        // The stream was stopped and republished on another worker: the
        // newer publisher's first packet may arrive before the old one's end.
        w.on_inbound(relay(&key, 9, 222, 1), now);
        assert_eq!(relayed_from(&w, &key), Some(9));
        assert_eq!(feeding(&w, &key), Some(222));
        w.on_inbound(relay(&key, 5, 111, 3), now);
        w.on_inbound(end(&key, 5), now);
        assert_eq!(relayed_from(&w, &key), Some(9));
        assert_eq!(feeding(&w, &key), Some(222));

        // Republished once more, now on this worker: the relayed copy gives
        // way and the player stays subscribed to the key.
        let stream = w.local_stream(&key, 12).unwrap();
        assert!(matches!(w.sources.get(&key), Some(Source::Local(12))));
        assert_eq!(w.router.downtrack_stream(dt), Some(stream));
        // Packets of the relayed publisher still in flight, then its end.
        w.on_inbound(relay(&key, 9, 222, 2), now);
        w.on_inbound(end(&key, 9), now);
        assert!(matches!(w.sources.get(&key), Some(Source::Local(12))));
        assert_eq!(w.router.find_stream(&key), Some(stream));
        assert_eq!(
            feeding(&w, &key),
            None,
            "a stale relay fed the local stream"
        );
        assert!(w.router_tracks.is_empty());
    }

    fn demand_sent(w: &Worker, key: &StreamKey) -> Option<[bool; 3]> {
        match w.sources.get(key) {
            Some(Source::Relayed(r)) => Some(r.demand_sent),
            _ => None,
        }
    }

    /// A worker that starts relaying a stream whose upper layer is paused
    /// learns it before any packet (the layer never sends, so no track of
    /// it would ever come): its players can want that layer, and it tells
    /// the publisher's worker what they want. A stale publisher's held
    /// rates are ignored.
    #[tokio::test]
    async fn paused_layers_reach_a_relaying_worker_before_its_packets() {
        let (_plane, mut w) = worker().await;
        let now = Instant::now();
        let key = StreamKey::new(1, "cam");
        let held = |publisher| {
            Inbound::Command(Command::RelayHeld {
                key: key.clone(),
                publisher,
                from: 0,
                held: [None, None, Some(900_000)],
            })
        };
        // Nobody plays it here: nothing is kept.
        w.on_inbound(held(5), now);
        assert!(w.sources.is_empty());
        let dt = player_of(&mut w, &key);
        w.on_inbound(held(5), now);
        assert_eq!(relayed_from(&w, &key), Some(5));
        let stream = w.router.find_stream(&key).unwrap();
        assert_eq!(w.router.layer_rates(stream)[2], Some(900_000));
        // The layer-0 packets come; the uncapped player wants layer 2.
        w.on_inbound(relay(&key, 5, 111, 1), now);
        assert_eq!(feeding(&w, &key), Some(111));
        assert_eq!(demand_sent(&w, &key), Some([false; 3]));
        w.update_pauses(now);
        assert_eq!(demand_sent(&w, &key), Some([false, false, true]));
        // Capped low: layer 0, told on the next turn.
        w.router.set_max_layer(dt, 0);
        w.update_pauses(now);
        assert_eq!(demand_sent(&w, &key), Some([true, false, false]));
        // An older publisher's message changes nothing.
        w.on_inbound(
            Inbound::Command(Command::RelayHeld {
                key: key.clone(),
                publisher: 3,
                from: 0,
                held: [None, Some(1), Some(2)],
            }),
            now,
        );
        assert_eq!(w.router.layer_rates(stream)[1], None);
        assert_eq!(w.router.layer_rates(stream)[2], Some(900_000));
    }

    #[test]
    fn the_mailbox_keeps_order_and_bounds_relays() {
        let (tx, mut rx) = mailbox();
        let key = StreamKey::new(1, "s");
        for seq in 0..RELAY_BACKLOG as u16 + 10 {
            let Inbound::Relay(r) = relay(&key, 1, 1, seq) else {
                unreachable!()
            };
            let queued = tx.relay(r);
            assert_eq!(queued, usize::from(seq) < RELAY_BACKLOG);
        }
        tx.command(Command::RelayEnd {
            key: key.clone(),
            publisher: 1,
        });
        let mut seqs = Vec::new();
        while let Some(msg) = rx.try_recv() {
            match msg {
                Inbound::Relay(r) => seqs.push(r.packet.sequence_number),
                Inbound::Command(Command::RelayEnd { .. }) => {
                    assert_eq!(seqs.len(), RELAY_BACKLOG, "the end overtook packets");
                }
                Inbound::Command(_) => panic!("unexpected command"),
            }
        }
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
        // Taking them freed the backlog.
        let Inbound::Relay(r) = relay(&key, 1, 1, 0) else {
            unreachable!()
        };
        assert!(tx.relay(r));
    }
}
