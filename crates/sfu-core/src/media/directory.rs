//! The media plane's directory: the one owner of which peer connections
//! exist, where each lives (parked until its first STUN check, then on one
//! worker), and of each stream's publisher (its codecs and worker) and the
//! workers that have players of it. Everything else — a worker's relay
//! targets, the router's streams — is derived from what the directory says,
//! pushed to the workers as commands.
//!
//! One mutex, taken only for control events (offers, adoption, teardown),
//! never per packet. Every connection ends through [`Directory::remove`],
//! whoever notices first (the control plane's stop, a media failure, a
//! connect timeout, a panic): the first caller gets the entry, later ones
//! get `None`, so an end is reported at most once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use room_signal::media::MediaId;
use room_signal::outbox::Outbox;
use room_signal::{code, SignalError};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use stream_router::StreamKey;

use super::peer::{Leg, Negotiated};

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publish,
    Play,
}

/// A connection built from an offer, waiting for its first STUN check.
pub(crate) struct Parked {
    /// Boxed (an `RTCPeerConnection` is 8.5 KB): the worker's peer map
    /// holds it by pointer, so the map's spare capacity costs bytes, not
    /// kilobytes, per slot.
    pub pc: Box<RTCPeerConnection>,
    /// Our ICE password: checks must carry MESSAGE-INTEGRITY made with it.
    pub pwd: String,
    pub legs: Vec<Leg>,
    pub created: Instant,
    /// The key-capturing crypto provider it was built with (players, when
    /// the egress fast path is on).
    pub capture: Option<Arc<super::srtp::KeyCapture>>,
}

enum Place {
    Parked(Box<Parked>),
    Worker(usize),
}

struct Conn {
    app: u32,
    key: StreamKey,
    role: Role,
    notify: Outbox,
    ufrag: String,
    place: Place,
    /// A play's simulcast cap (`u8::MAX`: automatic), kept for its worker.
    cap: u8,
}

struct Publisher {
    id: MediaId,
    codecs: Vec<Negotiated>,
    worker: Option<usize>,
}

#[derive(Default)]
struct StreamEntry {
    publisher: Option<Publisher>,
    /// Adopted players per worker (index = worker).
    players: Vec<u32>,
}

impl StreamEntry {
    fn is_empty(&self) -> bool {
        self.publisher.is_none() && self.players.iter().all(|n| *n == 0)
    }
}

/// A parked connection handed to the worker that got its first check.
pub(crate) struct Adopted {
    pub id: MediaId,
    pub key: StreamKey,
    pub role: Role,
    pub notify: Outbox,
    pub parked: Parked,
    /// Publisher: the other workers with players (relay to them).
    /// Player: the publisher's worker if it must start relaying here.
    pub relay: Relaying,
    /// A play's simulcast cap (`u8::MAX`: automatic).
    pub cap: u8,
}

pub(crate) enum Relaying {
    /// Publisher: relay to these workers.
    To(Vec<usize>),
    /// Player: publisher `publisher` on `worker` must relay to us.
    From {
        worker: usize,
        publisher: MediaId,
    },
    None,
}

/// What ending a connection leaves for the caller to do.
pub(crate) struct Removed {
    pub key: StreamKey,
    pub notify: Outbox,
    /// The worker that holds it, if it was adopted.
    pub worker: Option<usize>,
    /// A player's end left its worker without players of a stream
    /// published on another worker: (publisher's worker, publisher, worker
    /// that no longer needs the relay).
    pub relay_stop: Option<(usize, MediaId, usize)>,
}

/// Sizes of every map, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectoryStats {
    pub conns: usize,
    pub parked: usize,
    pub streams: usize,
    pub apps: usize,
}

pub(crate) struct Directory {
    conns: HashMap<MediaId, Conn>,
    /// Parked connections by our ICE ufrag (an index of `conns`).
    parked: HashMap<String, MediaId>,
    streams: HashMap<StreamKey, StreamEntry>,
    /// Connections per app (an index of `conns`, for the per-app limit).
    per_app: HashMap<u32, usize>,
    workers: usize,
    max_peers: usize,
    max_peers_per_app: usize,
}

pub(crate) struct NewConn {
    pub id: MediaId,
    pub app: u32,
    pub key: StreamKey,
    pub role: Role,
    pub notify: Outbox,
    pub ufrag: String,
    pub codecs: Option<Vec<Negotiated>>,
    pub parked: Parked,
}

fn peer_limit(what: &str, max: usize) -> SignalError {
    SignalError::new(
        code::PEER_LIMIT,
        format!("{what} holds {max} peer connections already"),
    )
}

impl Directory {
    pub fn new(workers: usize, max_peers: usize, max_peers_per_app: usize) -> Self {
        Directory {
            conns: HashMap::new(),
            parked: HashMap::new(),
            streams: HashMap::new(),
            per_app: HashMap::new(),
            workers,
            max_peers,
            max_peers_per_app,
        }
    }

    /// Would one more connection of `app` fit? (Checked before the offer is
    /// answered, so a refused offer costs no peer connection.)
    pub fn check_room(&self, app: u32) -> Result<(), SignalError> {
        if self.conns.len() >= self.max_peers {
            return Err(peer_limit("the server", self.max_peers));
        }
        if self.per_app.get(&app).copied().unwrap_or(0) >= self.max_peers_per_app {
            return Err(peer_limit("this app", self.max_peers_per_app));
        }
        Ok(())
    }

    /// The codecs the publisher of `key` negotiated, if it is published.
    pub fn codecs(&self, key: &StreamKey) -> Option<Vec<Negotiated>> {
        self.streams
            .get(key)?
            .publisher
            .as_ref()
            .map(|p| p.codecs.clone())
    }

    /// Park a connection until its first check (limits re-checked: the
    /// lock was released while the answer was built).
    pub fn park(&mut self, c: NewConn) -> Result<(), SignalError> {
        self.check_room(c.app)?;
        if c.role == Role::Publish {
            let entry = self.streams.entry(c.key.clone()).or_default();
            entry.publisher = Some(Publisher {
                id: c.id,
                codecs: c.codecs.unwrap_or_default(),
                worker: None,
            });
        }
        *self.per_app.entry(c.app).or_default() += 1;
        self.parked.insert(c.ufrag.clone(), c.id);
        self.conns.insert(
            c.id,
            Conn {
                app: c.app,
                key: c.key,
                role: c.role,
                notify: c.notify,
                ufrag: c.ufrag,
                place: Place::Parked(Box::new(c.parked)),
                cap: u8::MAX,
            },
        );
        Ok(())
    }

    /// Our ICE password of the parked connection with `ufrag` (to check a
    /// first STUN request before anything is bound to its address).
    pub fn parked_pwd(&self, ufrag: &str) -> Option<String> {
        let id = self.parked.get(ufrag)?;
        match &self.conns.get(id)?.place {
            Place::Parked(p) => Some(p.pwd.clone()),
            Place::Worker(_) => None,
        }
    }

    /// The worker holding the adopted connection with `ufrag` (`None`:
    /// parked, or no such connection). A scan: asked once per ICE-TCP
    /// connection, never per packet.
    pub fn worker_of(&self, ufrag: &str) -> Option<usize> {
        if self.parked.contains_key(ufrag) {
            return None;
        }
        self.conns
            .values()
            .find(|c| c.ufrag == ufrag)
            .and_then(|c| match c.place {
                Place::Worker(w) => Some(w),
                Place::Parked(_) => None,
            })
    }

    /// Sets a play's simulcast cap; `Some(worker)` when a worker holds it
    /// already (and must be told), `None` when it is parked (its worker
    /// takes the cap on adoption) or gone.
    pub fn set_cap(&mut self, id: MediaId, cap: u8) -> Option<usize> {
        let conn = self.conns.get_mut(&id)?;
        conn.cap = cap;
        match conn.place {
            Place::Worker(w) => Some(w),
            Place::Parked(_) => None,
        }
    }

    /// Worker `worker` got the first (authenticated) check of the parked
    /// connection with `ufrag`: it takes the connection.
    pub fn adopt(&mut self, ufrag: &str, worker: usize) -> Option<Adopted> {
        let id = self.parked.remove(ufrag)?;
        let conn = self.conns.get_mut(&id)?;
        let parked = match std::mem::replace(&mut conn.place, Place::Worker(worker)) {
            Place::Parked(p) => *p,
            Place::Worker(w) => {
                conn.place = Place::Worker(w);
                return None;
            }
        };
        let (key, role, notify, cap) = (conn.key.clone(), conn.role, conn.notify.clone(), conn.cap);
        let workers = self.workers;
        let entry = self.streams.entry(key.clone()).or_default();
        if entry.players.len() < workers {
            entry.players.resize(workers, 0);
        }
        let relay = match role {
            Role::Publish => {
                if let Some(p) = entry.publisher.as_mut().filter(|p| p.id == id) {
                    p.worker = Some(worker);
                }
                Relaying::To(
                    entry
                        .players
                        .iter()
                        .enumerate()
                        .filter(|(w, n)| *w != worker && **n > 0)
                        .map(|(w, _)| w)
                        .collect(),
                )
            }
            Role::Play => {
                entry.players[worker] += 1;
                match &entry.publisher {
                    Some(Publisher {
                        id: publisher,
                        worker: Some(w),
                        ..
                    }) if *w != worker && entry.players[worker] == 1 => Relaying::From {
                        worker: *w,
                        publisher: *publisher,
                    },
                    _ => Relaying::None,
                }
            }
        };
        Some(Adopted {
            id,
            key,
            role,
            notify,
            parked,
            relay,
            cap,
        })
    }

    /// End connection `id`. `None` if it already ended.
    pub fn remove(&mut self, id: MediaId) -> Option<Removed> {
        let conn = self.conns.remove(&id)?;
        if let Some(n) = self.per_app.get_mut(&conn.app) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_app.remove(&conn.app);
            }
        }
        let worker = match conn.place {
            Place::Parked(_) => {
                self.parked.remove(&conn.ufrag);
                None
            }
            Place::Worker(w) => Some(w),
        };
        let mut relay_stop = None;
        if let Some(entry) = self.streams.get_mut(&conn.key) {
            match conn.role {
                Role::Publish => {
                    if entry.publisher.as_ref().is_some_and(|p| p.id == id) {
                        entry.publisher = None;
                    }
                }
                Role::Play => {
                    if let Some(w) = worker {
                        if let Some(n) = entry.players.get_mut(w) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                relay_stop = match &entry.publisher {
                                    Some(Publisher {
                                        id: p,
                                        worker: Some(pw),
                                        ..
                                    }) if *pw != w => Some((*pw, *p, w)),
                                    _ => None,
                                };
                            }
                        }
                    }
                }
            }
            if entry.is_empty() {
                self.streams.remove(&conn.key);
            }
        }
        Some(Removed {
            key: conn.key,
            notify: conn.notify,
            worker,
            relay_stop,
        })
    }

    /// Parked connections older than `timeout` (no check ever came).
    pub fn expired(&self, now: Instant, timeout: Duration) -> Vec<MediaId> {
        self.conns
            .iter()
            .filter_map(|(id, c)| match &c.place {
                Place::Parked(p) if now.duration_since(p.created) > timeout => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// Parked connections by role, counted as `new` (`/metrics`).
    pub fn parked_states(&self) -> super::peer_states::PeerStates {
        let mut states = super::peer_states::PeerStates::default();
        for c in self.conns.values() {
            if matches!(c.place, Place::Parked(_)) {
                states.count(c.role, RTCPeerConnectionState::New);
            }
        }
        states
    }

    pub fn stats(&self) -> DirectoryStats {
        DirectoryStats {
            conns: self.conns.len(),
            parked: self.parked.len(),
            streams: self.streams.len(),
            apps: self.per_app.len(),
        }
    }
}
