//! ICE on the worker's socket: which peer a datagram is for. A binding
//! request names its peer by ufrag and proves it with MESSAGE-INTEGRITY;
//! only then is its source address bound (at most [`MAX_PEER_ADDRS`] per
//! peer). Nominations that arrive before the pair is up are stashed and
//! handed over again. ICE-TCP connections are authenticated the same way
//! ([`Worker::authenticate`], `tcp.rs`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use room_signal::media::MediaId;

use super::super::stun;
use super::{Worker, MAX_PEER_ADDRS};

/// A nominating check received before the connection was up. `rtc`'s lite
/// agent ignores a USE-CANDIDATE check whose pair has not succeeded yet, and
/// the client would only retry after ~500 ms; handing the same check to the
/// connection again a little later gets it answered as soon as the pair is up
/// (see `rtc-notes.md`, pitfall 3).
pub(super) struct Nomination {
    pub(super) id: MediaId,
    pub(super) from: SocketAddr,
    /// Came on an ICE-TCP connection (else UDP).
    pub(super) tcp: bool,
    pub(super) data: Vec<u8>,
    pub(super) due: Instant,
    pub(super) left: u8,
}

/// When a stashed nomination is handed over again.
const RENOMINATE_EVERY: Duration = Duration::from_millis(15);
const RENOMINATE_TIMES: u8 = 12;
const MAX_NOMINATIONS: usize = 1024;

impl Worker {
    pub(super) fn on_datagram(&mut self, from: SocketAddr, data: BytesMut, now: Instant) {
        // A binding request is routed by the ufrag it names, once its
        // MESSAGE-INTEGRITY proves the sender knows that peer's password:
        // only then is its address bound to the peer. Everything else goes
        // by address, and an unknown address is dropped.
        let id = match stun::server_ufrag(&data) {
            Some(ufrag) => match self.check(ufrag, from, &data) {
                Some(id) => id,
                None => return,
            },
            None => match self.by_addr.get(&from) {
                Some(id) => *id,
                None => return,
            },
        };
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        let connected = peer.connected;
        self.stash_nomination(id, from, false, connected, &data, now);
        self.feed(id, from, false, data, now);
    }

    /// Keep a nominating check of a peer that is not connected yet, to be
    /// handed over again (see [`Nomination`]).
    pub(super) fn stash_nomination(
        &mut self,
        id: MediaId,
        from: SocketAddr,
        tcp: bool,
        connected: bool,
        data: &[u8],
        now: Instant,
    ) {
        if !connected && stun::is_nomination(data) && self.nominations.len() < MAX_NOMINATIONS {
            self.nominations.push(Nomination {
                id,
                from,
                tcp,
                data: data.to_vec(),
                due: now + RENOMINATE_EVERY,
                left: RENOMINATE_TIMES,
            });
        }
    }

    /// An authenticated binding request for `ufrag` from `from`: the peer
    /// it belongs to (adopted from the parked table on its first check),
    /// with `from` bound to it.
    pub(super) fn check(&mut self, ufrag: &str, from: SocketAddr, data: &[u8]) -> Option<MediaId> {
        let id = self.authenticate(ufrag, data)?;
        if self.by_addr.get(&from) != Some(&id) {
            self.bind_addr(id, from);
        }
        Some(id)
    }

    /// The peer a binding request for `ufrag` belongs to, if its
    /// MESSAGE-INTEGRITY verifies with that peer's password (a parked
    /// connection is adopted by this worker on it). Binds nothing.
    pub(super) fn authenticate(&mut self, ufrag: &str, data: &[u8]) -> Option<MediaId> {
        let id = match self.by_ufrag.get(ufrag) {
            Some(id) => {
                let peer = self.peers.get(id)?;
                if !stun::verify_integrity(data, peer.pwd.as_bytes()) {
                    return None;
                }
                *id
            }
            None => {
                let pwd = self.shared.directory.lock().parked_pwd(ufrag)?;
                if !stun::verify_integrity(data, pwd.as_bytes()) {
                    return None;
                }
                let adopted = self.shared.directory.lock().adopt(ufrag, self.idx)?;
                self.adopt(ufrag, adopted)
            }
        };
        Some(id)
    }

    /// Bind `from` to peer `id` (taking it from another peer if it was
    /// bound elsewhere: the client's NAT reused the port).
    pub(super) fn bind_addr(&mut self, id: MediaId, from: SocketAddr) {
        if let Some(old) = self.by_addr.insert(from, id) {
            if let Some(p) = self.peers.get_mut(&old) {
                p.addrs.retain(|a| *a != from);
            }
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.addrs.push(from);
        if peer.addrs.len() > MAX_PEER_ADDRS {
            let oldest = peer.addrs.remove(0);
            if self.by_addr.get(&oldest) == Some(&id) {
                self.by_addr.remove(&oldest);
            }
        }
    }

    /// Hand stashed nominations over again while their connection is not up.
    pub(super) fn renominate(&mut self, now: Instant) {
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
            self.feed(n.id, n.from, n.tcp, BytesMut::from(&n.data[..]), now);
            n.left -= 1;
            n.due = now + RENOMINATE_EVERY;
            n.left > 0
        });
        stash.append(&mut self.nominations);
        self.nominations = stash;
    }
}
