//! The one local teardown of a peer: every end (stop, failure, timeout,
//! panic) undoes what the worker keeps for it here; and the sizes of every
//! map, which a test checks are back to zero.

use room_signal::media::{MediaEvent, MediaId};
use rtc::sansio::Protocol;
use stream_router::MediaKind;

use super::super::directory::Role as ConnRole;
use super::super::notify;
use super::super::peer_states::PeerStates;
use super::super::relay::{Command, Source};
use super::{guarded, Peer, Role, Worker, WorkerStats};

impl Worker {
    /// Connection `id` ended on its own (failure, panic): the directory
    /// forgets it and, unless the control plane ended it first, its session
    /// is told; then the worker lets go of it.
    pub(super) fn end_peer(&mut self, id: MediaId, why: &'static str) {
        self.end_peer_as(id, why, MediaEvent::Failed);
    }

    /// [`Worker::end_peer`], its session told `event`.
    pub(super) fn end_peer_as(&mut self, id: MediaId, why: &'static str, event: MediaEvent) {
        if let Some(removed) = self.shared.remove(id) {
            tracing::info!(worker = self.idx, media = id, stream = %removed.key.stream_id, why, "media connection ended");
            notify(&removed.notify, id, event);
        }
        self.drop_peer(id);
    }

    /// Undo everything this worker keeps for peer `id` (idempotent). The
    /// one local teardown path: stop, failure, timeout and panic end here.
    pub(crate) fn drop_peer(&mut self, id: MediaId) {
        let Some(peer) = self.peers.remove(&id) else {
            return;
        };
        let Peer {
            mut pc,
            key,
            role,
            ufrag,
            addrs,
            ..
        } = peer;
        // Closing or dropping a connection whose handling panicked may
        // panic again: contain it.
        let _ = guarded(move || {
            let _ = pc.close();
            drop(pc);
        });
        for a in &addrs {
            if self.by_addr.get(a) == Some(&id) {
                self.by_addr.remove(a);
            }
        }
        if self.by_ufrag.get(&ufrag) == Some(&id) {
            self.by_ufrag.remove(&ufrag);
        }
        self.nominations.retain(|n| n.id != id);
        match role {
            Role::Publisher {
                stream,
                tracks,
                targets,
                ..
            } => {
                for t in &tracks {
                    if let Some((h, _)) = t.router {
                        self.router_tracks.remove(&h);
                    }
                }
                if matches!(self.sources.get(&key), Some(Source::Local(p)) if *p == id) {
                    self.sources.remove(&key);
                    if let Some(stream) = stream {
                        let _ = self.router.remove_stream(stream);
                    }
                }
                // After its last relayed packet, in the same mailbox.
                for to in targets {
                    self.shared.command(
                        to,
                        Command::RelayEnd {
                            key: key.clone(),
                            publisher: id,
                        },
                    );
                }
            }
            Role::Player { legs, .. } => {
                for l in &legs {
                    self.downtracks.remove(&l.downtrack);
                    let _ = self.router.unsubscribe(l.downtrack);
                }
                // The last player here of a relayed stream: drop the copy.
                if let Some(Source::Relayed(r)) = self.sources.get(&key) {
                    let stream = r.stream;
                    let idle = self
                        .router
                        .subscribers(stream, MediaKind::Audio)
                        .next()
                        .is_none()
                        && self
                            .router
                            .subscribers(stream, MediaKind::Video)
                            .next()
                            .is_none();
                    if idle {
                        self.end_relay_in(&key);
                    }
                }
            }
        }
        tracing::debug!(worker = self.idx, media = id, stream = %key.stream_id, "connection removed");
    }

    /// Its connections by role and state (for `/metrics`).
    pub(crate) fn peer_states(&self) -> PeerStates {
        let mut states = PeerStates::default();
        for peer in self.peers.values() {
            let role = match peer.role {
                Role::Publisher { .. } => ConnRole::Publish,
                Role::Player { .. } => ConnRole::Play,
            };
            states.count(role, peer.state);
        }
        states
    }

    pub(crate) fn stats(&self) -> WorkerStats {
        let (streams, tracks, downtracks) = self.router.counts();
        WorkerStats {
            peers: self.peers.len(),
            by_addr: self.by_addr.len(),
            by_ufrag: self.by_ufrag.len(),
            downtracks: self.downtracks.len(),
            router_tracks: self.router_tracks.len(),
            sources: self.sources.len(),
            nominations: self.nominations.len(),
            tcp_links: self.peers.values().map(|p| p.tcp.len()).sum(),
            router_streams: streams,
            router_track_count: tracks,
            router_downtracks: downtracks,
            router_awaited: self.router.awaited_keys(),
        }
    }
}
