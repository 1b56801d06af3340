//! Per-player send-side bandwidth estimation and simulcast layer choice.
//!
//! Every packet a player connection sends carries a transport-wide
//! sequence number (`twcc.rs`) and is recorded here with its size and
//! departure instant (`rtc`'s `History`); the player's TWCC feedback joins
//! arrivals to departures and drives `rtc`'s delay- and loss-based `Gcc`
//! estimator, which needs nothing but those reports and the time.
//!
//! [`Selector`] turns the estimate into the highest simulcast layer the
//! player can take (within its own requested cap): down at once when the
//! current layer no longer fits, up only after the higher layer has fit
//! with headroom for [`UP_HOLD`], and not within [`UP_AFTER_DOWN`] of a
//! down-switch, so a player on a fluctuating link does not flap.

use std::time::{Duration, Instant};

use rtc::interceptor::{convert_twcc, BandwidthEstimator, Gcc, History};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use stream_router::MAX_LAYERS;

/// Where a player's estimate starts: enough for the top layer of a
/// typical 720p simulcast publish, so an unconstrained player starts (and
/// stays) there; a constrained one is brought down by its feedback.
pub const INITIAL_BITRATE: f64 = 2_500_000.0;
pub const MIN_BITRATE: f64 = 100_000.0;
pub const MAX_BITRATE: f64 = 20_000_000.0;
/// Packets unacknowledged for this long are forgotten.
const HISTORY_HORIZON: Duration = Duration::from_secs(2);
/// A higher layer must fit, with [`UP_HEADROOM`], this long before a switch up.
pub const UP_HOLD: Duration = Duration::from_secs(2);
/// No switch up this soon after a switch down.
pub const UP_AFTER_DOWN: Duration = Duration::from_secs(4);
/// Budget share a layer may use to stay on it.
const FIT: f64 = 0.95;
/// ... and to move up to it.
const UP_HEADROOM: f64 = 0.80;
/// The bitrate assumed for a layer not measured yet (it just started).
const UNMEASURED_LAYER: [u64; MAX_LAYERS] = [150_000, 500_000, 1_200_000];

/// One player connection's estimator.
pub struct Bwe {
    /// The player's transport-wide-cc extension ID.
    pub ext_id: u8,
    next_seq: u16,
    history: History,
    gcc: Gcc,
    last_prune: Option<Instant>,
    /// Feedback packets taken, and the packets they reported lost.
    pub feedbacks: u64,
    pub lost: u64,
}

impl Bwe {
    pub fn new(ext_id: u8) -> Self {
        Bwe {
            ext_id,
            next_seq: 0,
            history: History::new(),
            gcc: Gcc::new(INITIAL_BITRATE, MIN_BITRATE, MAX_BITRATE),
            last_prune: None,
            feedbacks: 0,
            lost: 0,
        }
    }

    /// A packet of `size` bytes (as sent, before SRTP) leaves now: its
    /// transport-wide sequence number, to be written into it.
    #[inline]
    pub fn on_sent(&mut self, ssrc: u32, rtp_seq: u16, size: usize, now: Instant) -> u16 {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.history
            .add_outgoing(ssrc, rtp_seq, true, seq, size, now);
        seq
    }

    /// The player's TWCC feedback arrived now.
    pub fn on_feedback(&mut self, feedback: &TransportLayerCc, now: Instant) {
        self.feedbacks += 1;
        for ack in convert_twcc(feedback) {
            self.history.on_twcc_feedback(now, ack);
        }
        let reports = self.history.take_reports();
        self.lost += reports.iter().filter(|r| !r.arrived).count() as u64;
        self.gcc.on_reports(now, &reports);
    }

    /// Forget packets never acknowledged (called on housekeeping).
    pub fn prune(&mut self, now: Instant) {
        if self
            .last_prune
            .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_millis(500))
        {
            return;
        }
        self.last_prune = Some(now);
        if let Some(cutoff) = now.checked_sub(HISTORY_HORIZON) {
            self.history.prune_before(cutoff);
        }
    }

    /// The estimate, bits per second.
    pub fn estimate(&self) -> u64 {
        self.gcc.target_bitrate() as u64
    }
}

/// The layer choice of one video play.
#[derive(Debug, Default)]
pub struct Selector {
    layer: Option<u8>,
    /// Since when the candidate layer above has fit.
    up_since: Option<(u8, Instant)>,
    last_down: Option<Instant>,
    /// Switches decided (for the metric).
    pub switches: u64,
}

impl Selector {
    /// The layer to take now, given the estimate left for video `budget`,
    /// the layers' measured bitrates (`None`: not live) and the player's
    /// own cap.
    pub fn choose(
        &mut self,
        now: Instant,
        budget: u64,
        rates: [Option<u64>; MAX_LAYERS],
        cap: u8,
    ) -> Option<u8> {
        let need = |l: usize| -> Option<f64> {
            let rate = rates[l]?;
            Some(if rate == 0 { UNMEASURED_LAYER[l] } else { rate } as f64)
        };
        let budget = budget as f64;
        let live: Vec<u8> = (0..MAX_LAYERS)
            .filter(|&l| rates[l].is_some())
            .map(|l| l as u8)
            .collect();
        let lowest = *live.first()?;
        let under_cap = |l: u8| l <= cap || l == lowest;
        // The best layer that fits, for staying and for moving up.
        let fits = |share: f64| {
            live.iter()
                .rev()
                .copied()
                .find(|&l| under_cap(l) && need(usize::from(l)).is_some_and(|n| n <= budget * share))
                .unwrap_or(lowest)
        };
        let (stay, up) = (fits(FIT), fits(UP_HEADROOM));
        let current = match self.layer {
            Some(l) if live.contains(&l) && under_cap(l) => l,
            // First choice, or the layer went away / above the cap: take
            // the best that fits now.
            _ => return Some(self.set(stay, now)),
        };
        if stay < current {
            self.up_since = None;
            self.last_down = Some(now);
            return Some(self.set(stay, now));
        }
        if up > current {
            let recently_down = self
                .last_down
                .is_some_and(|at| now.saturating_duration_since(at) < UP_AFTER_DOWN);
            let since = match self.up_since {
                Some((l, at)) if l == up => at,
                _ => {
                    self.up_since = Some((up, now));
                    now
                }
            };
            if !recently_down && now.saturating_duration_since(since) >= UP_HOLD {
                self.up_since = None;
                return Some(self.set(up, now));
            }
        } else {
            self.up_since = None;
        }
        Some(current)
    }

    fn set(&mut self, layer: u8, _now: Instant) -> u8 {
        if self.layer.is_some_and(|l| l != layer) {
            self.switches += 1;
        }
        self.layer = Some(layer);
        layer
    }

    /// The layer chosen last.
    pub fn layer(&self) -> Option<u8> {
        self.layer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: [Option<u64>; MAX_LAYERS] = [Some(150_000), Some(400_000), Some(900_000)];

    /// A recorded trace: (seconds, budget) steps, the choice every 100 ms.
    fn run(trace: &[(f64, u64)], until: f64) -> Vec<(f64, u8)> {
        let t0 = Instant::now();
        let mut s = Selector::default();
        let mut out = Vec::new();
        let mut t = 0.0;
        while t <= until {
            let budget = trace.iter().rev().find(|(at, _)| *at <= t).map_or(0, |x| x.1);
            let l = s.choose(t0 + Duration::from_secs_f64(t), budget, RATES, 2).unwrap();
            if out.last().is_none_or(|(_, last)| *last != l) {
                out.push((t, l));
            }
            t = ((t + 0.1) * 10.0f64).round() / 10.0;
        }
        out
    }

    #[test]
    fn drops_at_once_climbs_after_the_hold() {
        // 3 Mb/s, then 500 kb/s at 5 s, then 3 Mb/s again at 10 s.
        let got = run(&[(0.0, 3_000_000), (5.0, 500_000), (10.0, 3_000_000)], 20.0);
        // Layer 1 (400 kb/s) fits 500 kb/s at 95 %.
        assert_eq!(got, vec![(0.0, 2), (5.0, 1), (12.0, 2)], "{got:?}");
    }

    #[test]
    fn does_not_flap_on_a_budget_around_a_layer() {
        // Oscillates between just enough and just too little for layer 2
        // every 700 ms: it goes down and stays down.
        let mut trace = Vec::new();
        for i in 0..30 {
            let at = f64::from(i) * 0.7;
            trace.push((at, if i % 2 == 0 { 1_000_000 } else { 900_000 }));
        }
        let got = run(&trace, 20.0);
        assert!(got.len() <= 3, "flapped: {got:?}");
        assert_eq!(got.last().map(|x| x.1), Some(1), "{got:?}");
    }

    #[test]
    fn respects_the_cap_and_missing_layers() {
        let t0 = Instant::now();
        let mut s = Selector::default();
        assert_eq!(s.choose(t0, 10_000_000, RATES, 1), Some(1));
        assert_eq!(s.choose(t0, 10_000_000, [Some(150_000), None, Some(900_000)], 1), Some(0));
        // Too little for any layer: the lowest there is.
        assert_eq!(s.choose(t0, 10_000, RATES, 2), Some(0));
        assert_eq!(s.choose(t0, 10_000, [None; MAX_LAYERS], 2), None);
    }
}
