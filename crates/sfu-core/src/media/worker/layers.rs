//! Which simulcast layer each player's video gets: its estimate
//! (`bwe.rs`) against the layers' measured bitrates, within the quality
//! the player asked for, applied through the router's per-down-track cap
//! (the router switches on the new layer's keyframe).

use std::time::{Duration, Instant};

use room_signal::media::{MediaEvent, MediaId};
use stream_router::MediaKind;

use super::super::probe;
use super::{Role, Worker};

/// Layers are chosen again at most this often per player (feedback comes
/// every 50–100 ms).
const CHOOSE_INTERVAL: Duration = Duration::from_millis(200);
/// What the estimate is assumed to leave for audio when the stream's audio
/// rate is not measured yet.
const AUDIO_RESERVE: u64 = 64_000;

impl Worker {
    /// Choose player `id`'s video layer from its estimate (after feedback).
    pub(crate) fn choose_layer(&mut self, id: MediaId, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Role::Player { legs, bwe: b } = &mut peer.role else {
            return;
        };
        if b.chosen_at
            .is_some_and(|at| now.saturating_duration_since(at) < CHOOSE_INTERVAL)
        {
            return;
        }
        let Some(video) = legs.iter().find(|l| l.leg.kind == MediaKind::Video) else {
            return;
        };
        let dt = video.downtrack;
        let Some(stream) = self.router.downtrack_stream(dt) else {
            return;
        };
        b.chosen_at = Some(now);
        let audio = self.router.stream_media(stream)[0]
            .map_or(AUDIO_RESERVE, |a| a.bits_per_second.max(AUDIO_RESERVE / 2));
        let budget = b.bwe.estimate().saturating_sub(audio);
        let rates = self.router.layer_rates(stream);
        let before = b.selector.layer();
        // Moving up needs a probe's proof, where the player's feedback
        // can give one (transport-cc); REMB-only players go on the estimate.
        let proven = match b.bwe.ext_id {
            Some(_) => b.bwe.prober.proven(now).saturating_sub(audio),
            None => u64::MAX,
        };
        if b.bwe.ext_id.is_some() && b.bwe.prober.is_idle() {
            if let (Some((_, need)), Some(current)) = (
                b.selector
                    .candidate(now, budget, rates, b.cap, b.bwe.prober.failed_last()),
                before.and_then(|l| rates[usize::from(l)]),
            ) {
                if need > proven {
                    let target = ((need + audio) as f64 * probe::OVERSHOOT) as u64;
                    if b.bwe.prober.start(now, target, current + audio) {
                        tracing::debug!(media = id, target, need, "bandwidth probe started");
                        if !self.probing.contains(&id) {
                            self.probing.push(id);
                        }
                    }
                }
            }
        }
        if let Some(layer) = b.selector.choose(now, budget, proven, rates, b.cap) {
            if before != Some(layer) {
                tracing::debug!(
                    media = id,
                    estimate = b.bwe.estimate(),
                    layer,
                    ?rates,
                    "player layer chosen"
                );
            }
            // For charts (BENCHMARKS.md): RUST_LOG=sfu_core::media::worker::layers=trace.
            tracing::trace!(media = id, estimate = b.bwe.estimate(), layer, "estimate");
            let _ = self.router.set_max_layer(dt, layer);
        }
    }

    /// Player `id` asked for at most layer `cap` (`u8::MAX`: automatic).
    pub(crate) fn set_play_cap(&mut self, id: MediaId, cap: u8, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Role::Player { legs, bwe } = &mut peer.role else {
            return;
        };
        bwe.cap = cap;
        bwe.chosen_at = None;
        // At once, and refined by the estimate from here on.
        if let Some(v) = legs.iter().find(|l| l.leg.kind == MediaKind::Video) {
            let _ = self.router.set_max_layer(v.downtrack, cap);
        }
        self.choose_layer(id, now);
    }

    /// Housekeeping: tell each video player's client the layer (or SVC
    /// level) it receives now, when that changed since last told.
    pub(crate) fn report_play_layers(&mut self) {
        for (&id, peer) in self.peers.iter_mut() {
            let Role::Player { legs, bwe } = &mut peer.role else {
                continue;
            };
            let Some(video) = legs.iter().find(|l| l.leg.kind == MediaKind::Video) else {
                continue;
            };
            let Some(layer) = self
                .router
                .downtrack_layer(video.downtrack)
                .and_then(|s| s.current)
            else {
                continue;
            };
            if bwe.told_layer != Some(layer) {
                bwe.told_layer = Some(layer);
                super::super::notify(&peer.notify, id, MediaEvent::PlayLayer { layer });
            }
        }
    }

    /// When a running probe next wants to pace or judge.
    pub(crate) fn probe_wake(&self, now: Instant) -> Option<Instant> {
        self.probing
            .iter()
            .filter_map(|id| match &self.peers.get(id)?.role {
                Role::Player { bwe, .. } => bwe.bwe.prober.next_wake(now),
                _ => None,
            })
            .min()
    }

    /// Queue the padding running probes owe by now, and judge those
    /// whose feedback is in (each loop turn; O(probing players)).
    pub(crate) fn pace_probes(&mut self, now: Instant) {
        if self.probing.is_empty() {
            return;
        }
        let mut i = 0;
        while let Some(&id) = self.probing.get(i) {
            let Some(Role::Player { legs, bwe }) = self.peers.get_mut(&id).map(|p| &mut p.role)
            else {
                self.probing.swap_remove(i);
                continue;
            };
            let n = bwe.bwe.prober.pace(now);
            if n > 0 {
                if let Some(v) = legs.iter().find(|l| l.leg.kind == MediaKind::Video) {
                    let queued = self.router.queue_padding(v.downtrack, n);
                    bwe.bwe.prober.refund(n - queued);
                }
            }
            if let Some(verdict) = bwe.bwe.judge_probe(now) {
                match verdict {
                    probe::Verdict::Proven(_) => self.egress.probes_proven += 1,
                    probe::Verdict::Failed => self.egress.probes_failed += 1,
                }
                // Chosen again with the verdict.
                bwe.chosen_at = None;
            }
            if bwe.bwe.prober.is_idle() {
                self.probing.swap_remove(i);
                self.choose_layer(id, now);
            } else {
                i += 1;
            }
        }
    }

    /// Housekeeping: forget unacknowledged packets of every estimator.
    pub(crate) fn prune_estimators(&mut self, now: Instant) {
        for peer in self.peers.values_mut() {
            if let Role::Player { bwe, .. } = &mut peer.role {
                bwe.bwe.prune(now);
            }
        }
    }
}
