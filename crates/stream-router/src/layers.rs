//! Simulcast: which of a stream's video layers each player receives.
//!
//! A stream's video may arrive as up to [`MAX_LAYERS`] encodings, each its
//! own publisher track (`TrackInfo::layer`, 0 lowest). Each video
//! subscriber has a *cap*, the highest layer it may take (set by the
//! I/O layer from the player's request and its bandwidth estimate,
//! [`Router::set_max_layer`]; default: the top layer). From the cap and the
//! layers that are live the router derives the *target*: the highest live
//! layer at or below the cap, else the lowest live layer. The fan-out keeps
//! forwarding the current layer until a keyframe of the target arrives,
//! then switches on that packet: the down-track starts a new epoch, so its
//! sequence numbers and timestamps run on without a gap (see `seq.rs`).
//! Until then it asks for the target's keyframe (coalesced per track, and
//! again every [`KEYFRAME_RETRY_INTERVAL`](crate::KEYFRAME_RETRY_INTERVAL)).
//!
//! A layer is *live* while it has a track that received a packet within
//! [`LAYER_STALL`] (checked by [`Router::measure`]): a browser that stops
//! sending its top layer (its own bandwidth or CPU limit) moves that
//! layer's players down instead of freezing them.
//!
//! A layer its publisher was asked to pause is *held* ([`Router::set_held`]):
//! not live, so nobody is switched to it, but still in
//! [`Router::layer_rates`] at the bitrate it had, so that a player's
//! estimate can choose it again; the layers players choose are the
//! stream's demand ([`Router::layer_demand`]), from which the I/O layer
//! decides what to pause and resume.
//!
//! The fan-out list of a stream's kind holds one [`Sub`] per down-track
//! with its current and target layer, so a packet of one layer skips the
//! players of other layers without touching their down-tracks.

use std::time::{Duration, Instant};

use crate::router::Router;
use crate::slab::{DownTrackHandle, StreamHandle, TrackHandle};
use crate::track::{MediaKind, MAX_LAYERS};

/// A layer that received nothing for this long is no longer live.
pub const LAYER_STALL: Duration = Duration::from_millis(1_500);

/// No layer (the stream has no live video track).
pub(crate) const NO_LAYER: u8 = u8::MAX;

/// One subscriber of a stream's kind, as the fan-out sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sub {
    pub(crate) dt: DownTrackHandle,
    /// The layer it forwards (or waits for its first keyframe of).
    pub(crate) layer: u8,
    /// The layer it should forward: it switches on the target's next
    /// keyframe.
    pub(crate) target: u8,
}

impl Sub {
    /// A new subscriber: audio has the one layer 0; video gets its layer
    /// from `Router::retarget`.
    pub(crate) fn new(dt: DownTrackHandle, kind: MediaKind) -> Self {
        let layer = match kind {
            MediaKind::Audio => 0,
            MediaKind::Video => NO_LAYER,
        };
        Sub {
            dt,
            layer,
            target: layer,
        }
    }
}

/// Where a video down-track stands, as [`Router::downtrack_layer`] tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerState {
    /// The layer it forwards (`None`: no live layer).
    pub current: Option<u8>,
    /// The layer it will switch to on that layer's next keyframe (equal to
    /// `current` when not switching).
    pub target: Option<u8>,
    /// Its cap ([`Router::set_max_layer`]).
    pub max: u8,
}

/// The target for a cap: the highest live layer at or below it, else the
/// lowest live layer; [`NO_LAYER`] when none is live.
pub(crate) fn resolve(max: u8, live: [bool; MAX_LAYERS]) -> u8 {
    let below = (0..MAX_LAYERS)
        .rev()
        .find(|&l| live[l] && l <= usize::from(max));
    let any = (0..MAX_LAYERS).find(|&l| live[l]);
    below.or(any).map_or(NO_LAYER, |l| l as u8)
}

fn some(layer: u8) -> Option<u8> {
    (layer != NO_LAYER).then_some(layer)
}

impl Router {
    /// Which video layers of `stream` are live.
    pub fn live_layers(&self, stream: StreamHandle) -> [bool; MAX_LAYERS] {
        let mut live = [false; MAX_LAYERS];
        if let Some(s) = self.streams.get(stream.0) {
            for (l, t) in s.tracks[1..].iter().enumerate() {
                live[l] = t
                    .and_then(|t| self.tracks.get(t.0))
                    .is_some_and(|t| !t.stalled);
            }
        }
        live
    }

    /// The scalable (SVC) video track of `stream`: its only layer track,
    /// live, when that track's last measured period had several levels.
    /// Never one layer of a simulcast stream, even when the others
    /// stalled or are paused: its layers are then taken whole.
    pub(crate) fn svc_track(&self, stream: StreamHandle) -> Option<&crate::track::Track> {
        let s = self.streams.get(stream.0)?;
        if s.is_simulcast() || !self.live_layers(stream)[0] {
            return None;
        }
        let t = self.tracks.get(s.tracks[1]?.0)?;
        t.svc.top_level().is_some().then_some(t)
    }

    /// The measured bitrate of each live video layer of `stream` (0 until
    /// measured; `None`: no live track of that layer). For a scalable
    /// track, its levels (`svc.rs`): the bitrate of each layer with those
    /// below it.
    pub fn layer_rates(&self, stream: StreamHandle) -> [Option<u64>; MAX_LAYERS] {
        if let Some(rates) = self.svc_track(stream).and_then(|t| t.svc.level_rates()) {
            return rates;
        }
        let live = self.live_layers(stream);
        let mut rates = [None; MAX_LAYERS];
        if let Some(s) = self.streams.get(stream.0) {
            for l in 0..MAX_LAYERS {
                rates[l] = match live[l] {
                    true => s.tracks[1 + l]
                        .and_then(|t| self.tracks.get(t.0))
                        .map(|t| t.rate.bits_per_second()),
                    false => s.held[l],
                };
            }
        }
        rates
    }

    /// Sets the video layers of `stream` that its publisher was asked to
    /// pause, each with the bitrate it had (the I/O layer decides, from
    /// [`Router::layer_demand`] on every router with players of the
    /// stream). A held layer that sends nothing stays in
    /// [`Router::layer_rates`] at that rate, so that a player's estimate
    /// can still choose it, and that choice is the demand that resumes it;
    /// players are never switched to it before it is live again.
    pub fn set_held(&mut self, stream: StreamHandle, held: [Option<u64>; MAX_LAYERS]) {
        if let Some(s) = self.streams.get_mut(stream.0) {
            s.held = held;
        }
    }

    /// Which video layers of `stream` this router's players want: for
    /// each video player, the highest layer at or below its cap
    /// ([`Router::set_max_layer`]) that the stream has (a track, live or
    /// not, or a held layer); the lowest such layer when its cap is below
    /// them all. All `false` without video players.
    pub fn layer_demand(&self, stream: StreamHandle) -> [bool; MAX_LAYERS] {
        let mut demand = [false; MAX_LAYERS];
        let Some(s) = self.streams.get(stream.0) else {
            return demand;
        };
        let mut exists = [false; MAX_LAYERS];
        for (l, e) in exists.iter_mut().enumerate() {
            *e = s.tracks[1 + l].is_some() || s.held[l].is_some();
        }
        for sub in &s.subs[MediaKind::Video.index()] {
            let Some(dt) = self.downtracks.get(sub.dt.0) else {
                continue;
            };
            let wanted = resolve(dt.max_layer, exists);
            if wanted != NO_LAYER {
                demand[usize::from(wanted)] = true;
            }
        }
        demand
    }

    /// The track of `stream`'s video layer `layer`.
    pub fn stream_layer(&self, stream: StreamHandle, layer: u8) -> Option<TrackHandle> {
        let s = self.streams.get(stream.0)?;
        *s.tracks.get(1 + usize::from(layer))?
    }

    /// Re-derives every video subscriber's target of `stream` (layers came,
    /// went or stalled). A subscriber whose current layer is no longer live
    /// moves to its target at once (behind a keyframe, as after a
    /// publisher change); one whose target changed asks for its keyframe.
    pub(crate) fn retarget(&mut self, stream: StreamHandle) {
        let live = self.live_layers(stream);
        let Router {
            streams,
            downtracks,
            tracks,
            pli_list,
            ..
        } = self;
        let Some(s) = streams.get_mut(stream.0) else {
            return;
        };
        let k = MediaKind::Video.index();
        for sub in s.subs[k].iter_mut() {
            let Some(dt) = downtracks.get_mut(sub.dt.0) else {
                continue;
            };
            let target = resolve(dt.max_layer, live);
            let current_live = sub.layer != NO_LAYER && live[usize::from(sub.layer)];
            // Not forwarding yet (waiting for a first keyframe): nothing to
            // keep showing, so it waits for the target's keyframe instead.
            let idle = dt.source_track().is_none();
            if !current_live || idle {
                if sub.layer != NO_LAYER {
                    dt.source_changed();
                }
                sub.layer = target;
            }
            if target != sub.target {
                sub.target = target;
                dt.switch_started();
                if let Some(h) = s.tracks.get(1 + usize::from(target)).copied().flatten() {
                    if let Some(t) = tracks.get_mut(h.0) {
                        if t.request_keyframe() {
                            pli_list.push(h);
                        }
                    }
                }
            }
        }
    }

    /// Caps the simulcast layer a video down-track receives (0 lowest; a
    /// cap above the top layer means "the best there is", the default).
    /// The switch happens on the new target layer's next keyframe, which is
    /// requested now. Returns where the down-track stands.
    pub fn set_max_layer(&mut self, downtrack: DownTrackHandle, max: u8) -> Option<LayerState> {
        let dt = self.downtracks.get_mut(downtrack.0)?;
        if dt.kind != MediaKind::Video {
            return None;
        }
        if dt.max_layer != max {
            let lower = max < dt.max_layer;
            dt.max_layer = max;
            // SVC: a higher cap asks for a switch-up point at once.
            dt.switch_started();
            if let Some(stream) = dt.stream {
                if lower {
                    self.svc_recover(stream, downtrack);
                } else {
                    dt.nacked_mark = dt.stats.nacked;
                    dt.recover_on_nack = false;
                }
                self.retarget(stream);
            }
        }
        self.downtrack_layer(downtrack)
    }

    /// An SVC player whose level falls after it lost packets (it sent a
    /// NACK since its cap last changed) gets a keyframe: the layers it
    /// keeps depend on the pictures before, and a picture it will now
    /// never complete (a lost packet of its top layer frame, that layer no
    /// longer sent) would stall its decoder until it asks itself, seconds
    /// later. A down-switch with no loss reported yet gets one on the
    /// first NACK after it (congestion drops a level at once, its loss is
    /// reported a round trip later); a clean one needs none.
    fn svc_recover(&mut self, stream: StreamHandle, downtrack: DownTrackHandle) {
        let svc = self.svc_track(stream).is_some();
        let Some(dt) = self.downtracks.get_mut(downtrack.0) else {
            return;
        };
        let lossy = dt.stats.nacked > dt.nacked_mark;
        dt.nacked_mark = dt.stats.nacked;
        dt.recover_on_nack = svc && !lossy;
        if !lossy || !svc {
            return;
        }
        let Some(track) = self.streams.get(stream.0).and_then(|s| s.tracks[1]) else {
            return;
        };
        if let Some(t) = self.tracks.get_mut(track.0) {
            if t.request_keyframe() {
                self.pli_list.push(track);
            }
        }
    }

    /// The layer a video down-track forwards and the one it is switching
    /// to; `None` for audio and stale handles.
    pub fn downtrack_layer(&self, downtrack: DownTrackHandle) -> Option<LayerState> {
        let dt = self.downtracks.get(downtrack.0)?;
        if dt.kind != MediaKind::Video {
            return None;
        }
        let sub = dt.stream.and_then(|s| self.streams.get(s.0)).and_then(|s| {
            s.subs[MediaKind::Video.index()]
                .iter()
                .find(|s| s.dt == downtrack)
        });
        if let Some(t) = dt.stream.and_then(|s| self.svc_track(s)) {
            // One track: the level is the down-track's operating point.
            let current = dt.svc_level(t.svc.spatial());
            let top = t.svc.top_level().unwrap_or(0);
            return Some(LayerState {
                current,
                target: current.map(|_| dt.max_layer.min(top)),
                max: dt.max_layer,
            });
        }
        Some(LayerState {
            current: sub.and_then(|s| some(s.layer)),
            target: sub.and_then(|s| some(s.target)),
            max: dt.max_layer,
        })
    }

    /// Marks tracks that received nothing within [`LAYER_STALL`] as
    /// stalled and retargets their streams' players (from `measure`).
    pub(crate) fn check_stalls(&mut self, now: Instant) {
        let mut changed: Vec<StreamHandle> = Vec::new();
        for t in self.tracks.values_mut() {
            if t.info.kind != MediaKind::Video || t.stalled {
                continue;
            }
            // A track that never received a packet is live until it did:
            // add_track starts live so that its first packet is not lost.
            let idle = t
                .last_packet
                .is_some_and(|at| now.saturating_duration_since(at) >= LAYER_STALL);
            if idle {
                t.stalled = true;
                if !changed.contains(&t.stream) {
                    changed.push(t.stream);
                }
            }
        }
        for s in changed {
            self.retarget(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_is_the_best_live_layer_under_the_cap() {
        let all = [true; MAX_LAYERS];
        assert_eq!(resolve(2, all), 2);
        assert_eq!(resolve(u8::MAX - 1, all), 2);
        assert_eq!(resolve(1, all), 1);
        assert_eq!(resolve(0, all), 0);
        // Top layer not sent: the cap falls to the next one.
        assert_eq!(resolve(2, [true, true, false]), 1);
        // Only layers above the cap: the lowest of them.
        assert_eq!(resolve(0, [false, true, true]), 1);
        assert_eq!(resolve(2, [false; MAX_LAYERS]), NO_LAYER);
    }
}
