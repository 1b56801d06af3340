//! The [`Router`] and its control plane: the stream registry keyed by
//! [`StreamKey`], publisher tracks, and player subscriptions (down-tracks).
//!
//! Everything here runs at setup time and may allocate (slab growth, ready
//! list reservation). The per-packet data path lives in `datapath.rs`, in a
//! second `impl Router` block.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::counters::RouterTotals;
use crate::downtrack::{DownTrack, DownTrackConfig, DownTrackStats};
use crate::keyframe::Codec;
use crate::layers::Sub;
use crate::pool::Pool;
use crate::ready::ReadyList;
use crate::slab::{DownTrackHandle, Slab, StreamHandle, TrackHandle};
use crate::track::{MediaKind, Track, TrackInfo, TrackStats, MAX_LAYERS};

/// Registry key of a stream: application ID plus stream ID. Rooms do not
/// appear here: a stream published from one room is played from any room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// Application (tenant) ID.
    pub app: u32,
    /// Stream ID, unique within the application.
    pub stream_id: Arc<str>,
}

impl StreamKey {
    /// Builds a key.
    pub fn new(app: u32, stream_id: impl Into<Arc<str>>) -> Self {
        StreamKey {
            app,
            stream_id: stream_id.into(),
        }
    }
}

/// Errors of router calls; all of them leave the router unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterError {
    /// `add_stream` with a key that is already published.
    StreamExists,
    /// Stale or foreign stream handle.
    UnknownStream,
    /// Stale or foreign track handle.
    UnknownTrack,
    /// Stale or foreign down-track handle.
    UnknownDownTrack,
}

impl std::fmt::Display for RouterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RouterError::StreamExists => "a stream with this key already exists",
            RouterError::UnknownStream => "unknown or removed stream",
            RouterError::UnknownTrack => "unknown or removed track",
            RouterError::UnknownDownTrack => "unknown or removed down-track",
        })
    }
}

impl std::error::Error for RouterError {}

pub(crate) struct Stream {
    pub(crate) key: StreamKey,
    /// Current publisher track per slot: audio, then one per video layer
    /// (`TrackInfo::slot`).
    pub(crate) tracks: [Option<TrackHandle>; 1 + MAX_LAYERS],
    /// Down-tracks per kind (indexed by `MediaKind::index`) with their
    /// layers, in subscription order (the fan-out order).
    pub(crate) subs: [Vec<Sub>; 2],
    /// Video layers its publisher was asked to pause, with the bitrate
    /// each had ([`Router::set_held`]).
    pub(crate) held: [Option<u64>; MAX_LAYERS],
}

impl Stream {
    /// Its video comes as several simulcast layers: more than one layer
    /// track (live or not), or a layer held paused.
    pub(crate) fn is_simulcast(&self) -> bool {
        self.tracks[1..].iter().filter(|t| t.is_some()).count() > 1
            || self.held.iter().any(Option::is_some)
    }
}

/// A publisher track as [`Router::stream_media`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackMedia {
    pub kind: MediaKind,
    /// Simulcast layer (0 for audio and single-encoding video).
    pub layer: u8,
    pub codec: Codec,
    /// Received bitrate over the last [`Router::measure`] interval.
    pub bits_per_second: u64,
    pub stats: TrackStats,
    /// Down-tracks of this router that forward this track.
    pub players: usize,
    /// A scalable (SVC) video track: its levels.
    pub svc: Option<SvcMedia>,
}

/// The levels of a scalable track (`svc.rs`): spatial layers when it has
/// several, else temporal ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SvcMedia {
    pub spatial: bool,
    /// Per level, lowest first: the bitrate of that layer with those below
    /// it, and the down-tracks of this router whose operating point is
    /// that level (`None`: no such level).
    pub levels: [Option<(u64, usize)>; MAX_LAYERS],
}

/// The data plane of one event loop: streams, tracks, down-tracks, and the
/// queues between them. See the crate docs for the calling protocol.
#[derive(Default)]
pub struct Router {
    pub(crate) streams: Slab<Stream>,
    pub(crate) tracks: Slab<Track>,
    pub(crate) downtracks: Slab<DownTrack>,
    registry: HashMap<StreamKey, StreamHandle>,
    /// Down-tracks whose key has no stream: re-attached by `add_stream`.
    waiting: HashMap<StreamKey, Vec<DownTrackHandle>>,
    /// Down-tracks with queued packets, each at most once (`in_ready`);
    /// capacity kept >= number of down-tracks so pushes never allocate.
    pub(crate) ready: ReadyList,
    /// Tracks with a pending keyframe request, each at most once
    /// (`pli_listed`); capacity kept >= number of tracks.
    pub(crate) pli_list: Vec<TrackHandle>,
    /// Every packet still cached or queued, stored once.
    pub(crate) pool: Pool,
    /// The tracks' cache sizes: packets the pool holds in any case.
    pool_budget: usize,
    /// The largest queue capacity of any down-track so far. The pool
    /// reserves `pool_budget` plus this: every cached packet and one full
    /// queue of packets gone from the caches. Each queue entry references
    /// at most one packet, so more players that far behind at once grow the
    /// pool (it keeps its size); queues drained every loop turn, as the SFU
    /// drains them, only reference packets still cached or just pushed.
    /// Reserving every queue's capacity instead cost ~450 bytes of pool per
    /// queue entry: 450 KiB of address space per player at 512 entries.
    largest_queue: usize,
    /// Header buffer of `drain_output` (`MAX_HEADER_LEN`, sized on first use).
    pub(crate) scratch: Vec<u8>,
    /// The counters of removed tracks and down-tracks (see [`Router::totals`]).
    retired: RouterTotals,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes a stream under `key`. Down-tracks waiting for that key
    /// (subscribed by key, or left by a removed stream) are attached to it.
    pub fn add_stream(&mut self, key: StreamKey) -> Result<StreamHandle, RouterError> {
        if self.registry.contains_key(&key) {
            return Err(RouterError::StreamExists);
        }
        let handle = StreamHandle(self.streams.insert(Stream {
            key: key.clone(),
            tracks: [None; 1 + MAX_LAYERS],
            subs: [Vec::new(), Vec::new()],
            held: [None; MAX_LAYERS],
        }));
        let mut subs: [Vec<Sub>; 2] = [Vec::new(), Vec::new()];
        for h in self.waiting.remove(&key).unwrap_or_default() {
            if let Some(dt) = self.downtracks.get_mut(h.0) {
                dt.stream = Some(handle);
                dt.source_changed();
                subs[dt.kind.index()].push(Sub::new(h, dt.kind));
            }
        }
        if let Some(s) = self.streams.get_mut(handle.0) {
            s.subs = subs;
        }
        self.registry.insert(key, handle);
        Ok(handle)
    }

    /// The stream currently published under `key`.
    pub fn find_stream(&self, key: &StreamKey) -> Option<StreamHandle> {
        self.registry.get(key).copied()
    }

    /// The key of a stream.
    pub fn stream_key(&self, stream: StreamHandle) -> Option<&StreamKey> {
        self.streams.get(stream.0).map(|s| &s.key)
    }

    /// Unpublishes a stream: its tracks are removed (their handles go stale)
    /// and its down-tracks are detached but stay valid, keeping their
    /// sequence/timestamp state and queued packets. They wait under the same
    /// key and are re-attached automatically if a stream with that key is
    /// added again, continuing seamlessly.
    pub fn remove_stream(&mut self, stream: StreamHandle) -> Result<(), RouterError> {
        let s = self
            .streams
            .remove(stream.0)
            .ok_or(RouterError::UnknownStream)?;
        if self.registry.get(&s.key) == Some(&stream) {
            self.registry.remove(&s.key);
        }
        for t in s.tracks.into_iter().flatten() {
            self.drop_track(t);
            self.pli_list.retain(|&h| h != t);
        }
        // Only a stream with subscribers leaves a key waited for (an empty
        // entry would outlive every down-track).
        let mut detached = Vec::new();
        for h in s.subs.into_iter().flatten().map(|sub| sub.dt) {
            if let Some(dt) = self.downtracks.get_mut(h.0) {
                dt.stream = None;
                dt.source_changed();
                detached.push(h);
            }
        }
        if !detached.is_empty() {
            self.waiting.entry(s.key).or_default().append(&mut detached);
        }
        Ok(())
    }

    /// Adds a publisher track to a stream, replacing (and invalidating) the
    /// stream's previous track of the same kind (video: of the same
    /// simulcast layer). Down-tracks that forwarded the old one switch to it
    /// on its first packet (video: first keyframe), continuing their
    /// numbering; for video a keyframe request is queued upstream and the
    /// players' layers are re-chosen (`layers.rs`).
    pub fn add_track(
        &mut self,
        stream: StreamHandle,
        info: TrackInfo,
    ) -> Result<TrackHandle, RouterError> {
        if self.streams.get(stream.0).is_none() {
            return Err(RouterError::UnknownStream);
        }
        let track = Track::new(info, stream);
        self.grow_pool(track.cache.capacity());
        let handle = TrackHandle(self.tracks.insert(track));
        let (k, slot) = (info.kind.index(), info.slot());
        let (old, has_subs) = match self.streams.get_mut(stream.0) {
            Some(s) => (s.tracks[slot].replace(handle), !s.subs[k].is_empty()),
            None => (None, false),
        };
        if let Some(old) = old {
            self.drop_track(old);
            self.pli_list.retain(|&h| h != old);
        }
        self.reset_subscribers(stream, &info);
        let needed = self.tracks.len().saturating_sub(self.pli_list.len());
        self.pli_list.reserve(needed);
        if info.kind == MediaKind::Video {
            self.retarget(stream);
            if has_subs {
                self.request_keyframe(handle);
            }
        }
        Ok(handle)
    }

    /// Removes a publisher track (e.g. the publisher stopped its video).
    /// Down-tracks stay subscribed and resume with the next track added.
    pub fn remove_track(&mut self, track: TrackHandle) -> Result<(), RouterError> {
        let t = self.drop_track(track).ok_or(RouterError::UnknownTrack)?;
        self.pli_list.retain(|&h| h != track);
        let slot = t.info.slot();
        if let Some(s) = self.streams.get_mut(t.stream.0) {
            if s.tracks[slot] == Some(track) {
                s.tracks[slot] = None;
            }
        }
        self.reset_subscribers(t.stream, &t.info);
        if t.info.kind == MediaKind::Video {
            self.retarget(t.stream);
        }
        Ok(())
    }

    /// Removes a track from the slab, releasing its cached packets.
    fn drop_track(&mut self, track: TrackHandle) -> Option<Track> {
        let mut t = self.tracks.remove(track.0)?;
        self.retired.add_track(&t.stats);
        t.release_cache(&mut self.pool);
        self.pool_budget = self.pool_budget.saturating_sub(t.cache.capacity());
        Some(t)
    }

    /// Raises the pool budget by `n` cached packets and reserves it (with
    /// one full queue), so that the packet path grows the pool only when
    /// players fall a whole queue behind the caches.
    fn grow_pool(&mut self, n: usize) {
        self.pool_budget += n;
        self.reserve_pool();
    }

    fn reserve_pool(&mut self) {
        // +1: a packet too old for the cache is pooled while it fans out.
        self.pool.reserve(self.pool_budget + self.largest_queue + 1);
    }

    /// The down-tracks that forwarded the track `info` replaces (or that
    /// is gone) start a new epoch on its successor.
    fn reset_subscribers(&mut self, stream: StreamHandle, info: &TrackInfo) {
        if let Some(s) = self.streams.get(stream.0) {
            for sub in &s.subs[info.kind.index()] {
                if info.kind == MediaKind::Video && sub.layer != info.layer {
                    continue;
                }
                if let Some(dt) = self.downtracks.get_mut(sub.dt.0) {
                    dt.source_changed();
                }
            }
        }
    }

    /// The stream's current track of `kind` (video: its top layer).
    pub fn stream_track(&self, stream: StreamHandle, kind: MediaKind) -> Option<TrackHandle> {
        let s = self.streams.get(stream.0)?;
        match kind {
            MediaKind::Audio => s.tracks[0],
            MediaKind::Video => s.tracks[1..].iter().rev().find_map(|t| *t),
        }
    }

    /// A track's description.
    pub fn track_info(&self, track: TrackHandle) -> Option<&TrackInfo> {
        self.tracks.get(track.0).map(|t| &t.info)
    }

    /// A track's counters.
    pub fn track_stats(&self, track: TrackHandle) -> Option<TrackStats> {
        self.tracks.get(track.0).map(|t| t.stats)
    }

    /// Subscribes a player to one kind of a stream. The down-track's queue
    /// and NACK history are allocated here. For video, forwarding starts at
    /// the next keyframe and a keyframe request is queued upstream.
    pub fn subscribe(
        &mut self,
        stream: StreamHandle,
        kind: MediaKind,
        config: DownTrackConfig,
    ) -> Result<DownTrackHandle, RouterError> {
        let key = self
            .streams
            .get(stream.0)
            .ok_or(RouterError::UnknownStream)?
            .key
            .clone();
        let h = self.new_downtrack(kind, config, key);
        self.link(h, stream);
        Ok(h)
    }

    /// Subscribes by key: attached now if the stream exists, otherwise the
    /// down-track waits and is attached when a stream with `key` is added.
    pub fn subscribe_key(
        &mut self,
        key: &StreamKey,
        kind: MediaKind,
        config: DownTrackConfig,
    ) -> DownTrackHandle {
        let h = self.new_downtrack(kind, config, key.clone());
        match self.find_stream(key) {
            Some(stream) => self.link(h, stream),
            None => self.waiting.entry(key.clone()).or_default().push(h),
        }
        h
    }

    /// Moves a down-track to another stream (e.g. switching what a player
    /// watches). Its numbering continues as for a publisher switch.
    pub fn attach(
        &mut self,
        downtrack: DownTrackHandle,
        stream: StreamHandle,
    ) -> Result<(), RouterError> {
        if self.downtracks.get(downtrack.0).is_none() {
            return Err(RouterError::UnknownDownTrack);
        }
        let key = self
            .streams
            .get(stream.0)
            .ok_or(RouterError::UnknownStream)?
            .key
            .clone();
        self.unlink(downtrack);
        if let Some(dt) = self.downtracks.get_mut(downtrack.0) {
            dt.key = key;
            dt.source_changed();
        }
        self.link(downtrack, stream);
        Ok(())
    }

    /// Removes a down-track; its queued packets are discarded.
    pub fn unsubscribe(&mut self, downtrack: DownTrackHandle) -> Result<(), RouterError> {
        if self.downtracks.get(downtrack.0).is_none() {
            return Err(RouterError::UnknownDownTrack);
        }
        self.unlink(downtrack);
        self.ready.retain(|&h| h != downtrack);
        if let Some(mut dt) = self.downtracks.remove(downtrack.0) {
            self.retired.add_downtrack(&dt.stats());
            dt.clear_queue(&mut self.pool);
        }
        Ok(())
    }

    fn new_downtrack(
        &mut self,
        kind: MediaKind,
        config: DownTrackConfig,
        key: StreamKey,
    ) -> DownTrackHandle {
        let dt = DownTrack::new(kind, config, key);
        if dt.queue_capacity() > self.largest_queue {
            self.largest_queue = dt.queue_capacity();
            self.reserve_pool();
        }
        let h = DownTrackHandle(self.downtracks.insert(dt));
        self.ready.reserve(self.downtracks.len());
        h
    }

    /// Adds a (detached) down-track to `stream`'s subscribers.
    fn link(&mut self, h: DownTrackHandle, stream: StreamHandle) {
        let Some(dt) = self.downtracks.get_mut(h.0) else {
            return;
        };
        let Some(s) = self.streams.get_mut(stream.0) else {
            return;
        };
        let k = dt.kind.index();
        dt.stream = Some(stream);
        s.subs[k].push(Sub::new(h, dt.kind));
        if dt.kind == MediaKind::Video {
            // Chooses its layer and asks for that layer's keyframe.
            self.retarget(stream);
        }
    }

    /// Removes a down-track from its stream's subscribers or the waiting map.
    fn unlink(&mut self, h: DownTrackHandle) {
        let Some(dt) = self.downtracks.get_mut(h.0) else {
            return;
        };
        let k = dt.kind.index();
        match dt.stream.take() {
            Some(stream) => {
                if let Some(s) = self.streams.get_mut(stream.0) {
                    s.subs[k].retain(|x| x.dt != h);
                }
            }
            None => {
                if let Some(list) = self.waiting.get_mut(&dt.key) {
                    list.retain(|&x| x != h);
                    if list.is_empty() {
                        self.waiting.remove(&dt.key);
                    }
                }
            }
        }
    }

    /// Registers a keyframe request for `track` (coalesced, see
    /// [`Router::poll_upstream`]): e.g. one relayed from a player on
    /// another event loop.
    pub fn request_keyframe(&mut self, track: TrackHandle) {
        if let Some(t) = self.tracks.get_mut(track.0) {
            if t.request_keyframe() {
                self.pli_list.push(track);
            }
        }
    }

    /// Changes the payload type a down-track sends with (a new publisher's
    /// codec has another payload type in the player's answer). Applies to
    /// every packet it sends from now on, queued ones included.
    pub fn set_payload_type(
        &mut self,
        downtrack: DownTrackHandle,
        payload_type: u8,
    ) -> Result<(), RouterError> {
        let dt = self
            .downtracks
            .get_mut(downtrack.0)
            .ok_or(RouterError::UnknownDownTrack)?;
        dt.set_payload_type(payload_type);
        Ok(())
    }

    /// The stream a down-track is attached to (`None` while waiting).
    pub fn downtrack_stream(&self, downtrack: DownTrackHandle) -> Option<StreamHandle> {
        self.downtracks.get(downtrack.0)?.stream
    }

    /// A down-track's counters.
    pub fn downtrack_stats(&self, downtrack: DownTrackHandle) -> Option<DownTrackStats> {
        self.downtracks.get(downtrack.0).map(|d| d.stats())
    }

    /// Number of packets queued on a down-track (0 for a stale handle).
    pub fn pending(&self, downtrack: DownTrackHandle) -> usize {
        self.downtracks.get(downtrack.0).map_or(0, |d| d.pending())
    }

    /// Down-tracks of `kind` attached to `stream`, in fan-out order.
    pub fn subscribers(
        &self,
        stream: StreamHandle,
        kind: MediaKind,
    ) -> impl Iterator<Item = DownTrackHandle> + '_ {
        self.streams
            .get(stream.0)
            .map(|s| s.subs[kind.index()].as_slice())
            .unwrap_or(&[])
            .iter()
            .map(|sub| sub.dt)
    }

    /// Are down-tracks waiting for a stream to be added under `key`?
    pub fn is_awaited(&self, key: &StreamKey) -> bool {
        self.waiting.get(key).is_some_and(|l| !l.is_empty())
    }

    /// Number of keys that down-tracks wait for.
    pub fn awaited_keys(&self) -> usize {
        self.waiting.len()
    }

    /// Every counter of every track and down-track this router ever had,
    /// summed (O(live tracks + down-tracks); for scrapes, not per packet).
    pub fn totals(&self) -> RouterTotals {
        let mut t = self.retired;
        for track in self.tracks.values() {
            t.add_track(&track.stats);
        }
        for dt in self.downtracks.values() {
            t.add_downtrack(&dt.stats());
        }
        for &h in self.registry.values() {
            let Some(s) = self.streams.get(h.0) else {
                continue;
            };
            let subs = &s.subs[MediaKind::Video.index()];
            if subs.is_empty() {
                continue;
            }
            if let Some(track) = self.svc_track(h) {
                // A level's packets go to every player at or above it.
                let spatial = track.svc.spatial();
                let top = track.svc.top_level().unwrap_or(0);
                let best = subs
                    .iter()
                    .filter_map(|x| self.downtracks.get(x.dt.0)?.svc_level(spatial))
                    .max();
                for l in 0..=top {
                    match best.is_some_and(|b| b >= l) {
                        true => t.layers_forwarded += 1,
                        false => t.layers_unused += 1,
                    }
                }
                continue;
            }
            let live = self.live_layers(h);
            if live.iter().filter(|l| **l).count() < 2 {
                continue;
            }
            for (l, _) in live.iter().enumerate().filter(|(_, l)| **l) {
                match subs.iter().any(|x| usize::from(x.layer) == l) {
                    true => t.layers_forwarded += 1,
                    false => t.layers_unused += 1,
                }
            }
        }
        t
    }

    /// Sample every track's received bitrate (call it periodically, e.g.
    /// from housekeeping; O(tracks)).
    pub fn measure(&mut self, now: Instant) {
        for track in self.tracks.values_mut() {
            track.rate.sample(track.stats.bytes_received, now);
            track.svc.sample(now);
        }
        self.check_stalls(now);
    }

    /// The current publisher tracks of `stream` (audio, then each video
    /// layer from the lowest): codec, received bitrate, counters and the
    /// players that forward it.
    pub fn stream_media(&self, stream: StreamHandle) -> [Option<TrackMedia>; 1 + MAX_LAYERS] {
        let Some(s) = self.streams.get(stream.0) else {
            return [None; 1 + MAX_LAYERS];
        };
        s.tracks.map(|t| {
            let track = self.tracks.get(t?.0)?;
            let subs = &s.subs[track.info.kind.index()];
            let players = match track.info.kind {
                MediaKind::Audio => subs.len(),
                MediaKind::Video => subs.iter().filter(|x| x.layer == track.info.layer).count(),
            };
            let svc = track.svc.level_rates().map(|rates| {
                let spatial = track.svc.spatial();
                let mut levels = [None; MAX_LAYERS];
                for (l, (out, rate)) in levels.iter_mut().zip(rates).enumerate() {
                    let on = subs
                        .iter()
                        .filter_map(|x| self.downtracks.get(x.dt.0)?.svc_level(spatial))
                        .filter(|&x| usize::from(x) == l)
                        .count();
                    *out = rate.map(|r| (r, on));
                }
                SvcMedia { spatial, levels }
            });
            Some(TrackMedia {
                kind: track.info.kind,
                layer: track.info.layer,
                codec: track.info.codec,
                bits_per_second: track.rate.bits_per_second(),
                stats: track.stats,
                players,
                svc,
            })
        })
    }

    /// Number of live streams, tracks and down-tracks.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.streams.len(), self.tracks.len(), self.downtracks.len())
    }
}
