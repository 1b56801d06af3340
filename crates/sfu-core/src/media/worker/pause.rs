//! Pausing simulcast layers nobody takes. A publisher's worker owns the
//! decision for its stream: from the layers its own players want and those
//! every other worker with players of the stream reports
//! ([`Command::LayerDemand`], each worker its own, since the publisher's
//! worker relays every layer), a layer above the lowest that nobody has
//! wanted for [`PAUSE_AFTER`] is paused, and resumed as soon as one player
//! wants it again. The publisher is told over signaling
//! ([`MediaEvent::VideoLayers`]; the SDK sets `encodings[i].active`), and
//! every router with the stream holds the paused layer at the bitrate it
//! had ([`Router::set_held`](stream_router::Router::set_held)), so that a
//! player's estimate can still choose it: that choice is the demand that
//! resumes it. A resumed layer stays held until it is live again (or for
//! [`RESUME_GRACE`]), so the choice does not fall back while the
//! publisher's encoder restarts.
//!
//! A publisher that cannot be told (WHIP) or does not act on it simply
//! goes on sending: a paused layer that is live is forwarded like any.

use std::time::{Duration, Instant};

use room_signal::media::MediaEvent;
use stream_router::MAX_LAYERS;

use super::super::relay::{Command, Source};
use super::{Role, Worker};

/// A layer nobody wanted for this long is paused.
pub const PAUSE_AFTER: Duration = Duration::from_secs(4);
/// A resumed layer is held this long at most while it comes back.
pub const RESUME_GRACE: Duration = Duration::from_secs(3);

/// Where one layer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Hold {
    /// Sent as the publisher likes; unwanted since then, if so.
    #[default]
    Active,
    Unwanted(Instant),
    /// The publisher was asked to stop it; it had this bitrate.
    Paused(u64),
    /// Asked to send it again (at this time); held at its old bitrate.
    Resuming(u64, Instant),
}

/// The pause state of one local publisher's video layers.
#[derive(Debug, Default)]
pub(crate) struct LayerPause {
    layers: [Hold; MAX_LAYERS],
    /// What other workers' players want (worker index, layers).
    remote: Vec<(usize, [bool; MAX_LAYERS])>,
}

/// What one [`LayerPause::step`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// The paused layers (a bit per layer), when the publisher must be told.
    pub tell: Option<u8>,
    /// The held rates, when the routers must be told.
    pub held: Option<[Option<u64>; MAX_LAYERS]>,
}

impl LayerPause {
    /// Worker `from` reported what its players want.
    pub(crate) fn set_remote(&mut self, from: usize, demand: [bool; MAX_LAYERS]) {
        match self.remote.iter_mut().find(|(w, _)| *w == from) {
            Some(entry) => entry.1 = demand,
            None => self.remote.push((from, demand)),
        }
    }

    /// Worker `from` has no players of the stream any more.
    pub(crate) fn forget(&mut self, from: usize) {
        self.remote.retain(|(w, _)| *w != from);
    }

    /// The held rates the routers have: paused and resuming layers'.
    pub(crate) fn held(&self) -> [Option<u64>; MAX_LAYERS] {
        self.layers.map(|h| match h {
            Hold::Paused(rate) | Hold::Resuming(rate, _) => Some(rate),
            _ => None,
        })
    }

    /// The paused layers, a bit per layer.
    pub(crate) fn paused(&self) -> u8 {
        self.layers
            .iter()
            .enumerate()
            .filter(|(_, h)| matches!(h, Hold::Paused(_)))
            .fold(0, |m, (l, _)| m | 1 << l)
    }

    /// One look at the stream (every housekeeping turn): `local`, what this
    /// worker's players want; `exists`, the layers the publisher sends
    /// (has tracks for); `live` and `rates` as the router measures them.
    pub(crate) fn step(
        &mut self,
        now: Instant,
        local: [bool; MAX_LAYERS],
        exists: [bool; MAX_LAYERS],
        live: [bool; MAX_LAYERS],
        rates: [Option<u64>; MAX_LAYERS],
    ) -> Changes {
        let (before, held_before) = (self.paused(), self.held());
        let mut wanted = local;
        for (_, d) in &self.remote {
            for (w, d) in wanted.iter_mut().zip(d) {
                *w |= *d;
            }
        }
        // The lowest layer the publisher sends is never paused.
        let lowest = exists.iter().position(|&e| e);
        for l in 0..MAX_LAYERS {
            let hold = &mut self.layers[l];
            if !exists[l] || Some(l) == lowest {
                *hold = Hold::Active;
                continue;
            }
            *hold = match *hold {
                Hold::Active | Hold::Unwanted(_) if wanted[l] => Hold::Active,
                // Only a layer that sends can be paused (one the publisher
                // stopped itself has no rate to hold).
                Hold::Active | Hold::Unwanted(_) if !live[l] => Hold::Active,
                Hold::Active => Hold::Unwanted(now),
                Hold::Unwanted(since) if now.saturating_duration_since(since) >= PAUSE_AFTER => {
                    match rates[l] {
                        Some(rate) if rate > 0 => Hold::Paused(rate),
                        _ => Hold::Unwanted(since),
                    }
                }
                Hold::Unwanted(since) => Hold::Unwanted(since),
                Hold::Paused(rate) if wanted[l] => Hold::Resuming(rate, now),
                Hold::Paused(rate) => Hold::Paused(rate),
                Hold::Resuming(..) if live[l] => Hold::Active,
                Hold::Resuming(_, at) if now.saturating_duration_since(at) >= RESUME_GRACE => {
                    Hold::Active
                }
                Hold::Resuming(rate, at) => Hold::Resuming(rate, at),
            };
        }
        let (after, held) = (self.paused(), self.held());
        Changes {
            tell: (after != before).then_some(after),
            held: (held != held_before).then_some(held),
        }
    }
}

impl Worker {
    /// Housekeeping: decide the pauses of every local publisher's layers,
    /// tell publishers and routers what changed, and report this worker's
    /// demand for streams relayed from other workers.
    pub(crate) fn update_pauses(&mut self, now: Instant) {
        let Worker {
            idx,
            peers,
            router,
            shared,
            layers_paused,
            ..
        } = self;
        *layers_paused = 0;
        for (&id, peer) in peers.iter_mut() {
            let Role::Publisher {
                stream: Some(stream),
                targets,
                pause,
                ..
            } = &mut peer.role
            else {
                continue;
            };
            let stream = *stream;
            let exists = std::array::from_fn(|l| router.stream_layer(stream, l as u8).is_some());
            let changes = pause.step(
                now,
                router.layer_demand(stream),
                exists,
                router.live_layers(stream),
                router.layer_rates(stream),
            );
            *layers_paused += u64::from(pause.paused().count_ones());
            if let Some(paused) = changes.tell {
                tracing::debug!(media = id, paused, "publisher's paused layers");
                super::super::notify(&peer.notify, id, MediaEvent::VideoLayers { paused });
            }
            if let Some(held) = changes.held {
                router.set_held(stream, held);
                for &to in targets.iter() {
                    let key = peer.key.clone();
                    let cmd = Command::RelayHeld {
                        key,
                        publisher: id,
                        from: *idx,
                        held,
                    };
                    shared.command(to, cmd);
                }
            }
        }
        for (key, source) in self.sources.iter_mut() {
            let Source::Relayed(r) = source else {
                continue;
            };
            let demand = self.router.layer_demand(r.stream);
            if demand != r.demand_sent {
                r.demand_sent = demand;
                let cmd = Command::LayerDemand {
                    key: key.clone(),
                    publisher: r.publisher,
                    from: self.idx,
                    demand,
                };
                self.shared.command(r.from, cmd);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [bool; 3] = [true; 3];
    const RATES: [Option<u64>; 3] = [Some(150_000), Some(450_000), Some(1_300_000)];

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn unwanted_layers_pause_after_a_while_and_resume_at_once() {
        let t0 = Instant::now();
        let mut p = LayerPause::default();
        let low = [true, false, false];
        assert_eq!(p.step(t0, low, ALL, ALL, RATES), Changes::default());
        // Not yet: a player's choice may come back within PAUSE_AFTER.
        let c = p.step(secs(t0, 3.9), low, ALL, ALL, RATES);
        assert_eq!(c, Changes::default());
        let c = p.step(secs(t0, 4.0), low, ALL, ALL, RATES);
        assert_eq!(c.tell, Some(0b110));
        assert_eq!(c.held, Some([None, Some(450_000), Some(1_300_000)]));
        // Silent now, still paused and held at the old rates.
        let silent = [true, false, false];
        let none = [Some(150_000), Some(450_000), Some(1_300_000)];
        assert_eq!(
            p.step(secs(t0, 5.0), low, ALL, silent, none),
            Changes::default()
        );
        // A player (on another worker) wants the top layer: resumed at once,
        // still held while it comes back; layer 1 stays paused.
        p.set_remote(3, [false, false, true]);
        let c = p.step(secs(t0, 5.5), low, ALL, silent, none);
        assert_eq!(c.tell, Some(0b010));
        assert_eq!(c.held, None, "the resuming layer is still held");
        let c = p.step(secs(t0, 6.0), low, ALL, [true, false, true], RATES);
        assert_eq!(c.held, Some([None, Some(450_000), None]));
        assert_eq!(p.paused(), 0b010);
        // That worker's players leave: the top layer pauses again later.
        p.forget(3);
        assert_eq!(
            p.step(secs(t0, 6.5), low, ALL, [true, false, true], RATES)
                .tell,
            None
        );
        let c = p.step(secs(t0, 10.5), low, ALL, [true, false, true], RATES);
        assert_eq!(c.tell, Some(0b110));
    }

    #[test]
    fn the_lowest_layer_and_stopped_layers_are_never_paused() {
        let t0 = Instant::now();
        let mut p = LayerPause::default();
        let nobody = [false; 3];
        // The publisher sends layers 1 and 2 only, and stopped layer 2
        // itself (its own bandwidth): nothing to pause.
        let exists = [false, true, true];
        let live = [false, true, false];
        p.step(t0, nobody, exists, live, RATES);
        let c = p.step(secs(t0, 60.0), nobody, exists, live, RATES);
        assert_eq!(c, Changes::default());
        assert_eq!(p.paused(), 0);
    }

    #[test]
    fn a_resumed_layer_that_never_comes_back_is_let_go() {
        let t0 = Instant::now();
        let mut p = LayerPause::default();
        let low = [true, false, false];
        p.step(t0, low, ALL, ALL, RATES);
        p.step(secs(t0, 4.0), low, ALL, ALL, RATES);
        let silent = [true, false, false];
        let top = [true, false, true];
        assert_eq!(
            p.step(secs(t0, 5.0), top, ALL, silent, RATES).tell,
            Some(0b010)
        );
        let c = p.step(secs(t0, 8.0), top, ALL, silent, RATES);
        // Not live 3 s after the resume: no longer held (absent, like a
        // layer the publisher stopped itself).
        assert_eq!(c.held, Some([None, Some(450_000), None]));
    }
}
