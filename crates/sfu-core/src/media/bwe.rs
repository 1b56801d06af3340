//! Per-player send-side bandwidth estimation and simulcast layer choice.
//!
//! Every packet a player connection sends carries a transport-wide
//! sequence number (`twcc.rs`) and is recorded here with its size and
//! departure instant (`rtc`'s `History`); the player's TWCC feedback joins
//! arrivals to departures. [`Estimator`] takes its signals from `rtc`'s
//! GCC parts — the delay trend of arrival groups (`SlopeEstimator`), the
//! adaptive-threshold overuse detector, the received rate and the
//! loss-based controller — and does its own rate control: `rtc`'s `Gcc`
//! rate controller, once it has backed off, climbs by 12 kb/s per 200 ms
//! for good, which takes a minute to get from a low to a high simulcast
//! layer; ours backs off on overuse to 85 % of what the link delivered
//! (the received rate, or lower, the rate packets arrived at by the
//! player's clock over the last 250 ms, which is the link's rate as soon
//! as its queue is full), holds
//! while the queue drains, then grows by [`INCREASE_PER_SECOND`]. Heavy
//! loss ([`HEAVY_LOSS`] over the last reports) counts as overuse: a
//! drop-tail bottleneck with a short queue fills in a fraction of a second,
//! after which its delay stops growing and only loss tells.
//!
//! [`Selector`] turns the estimate into the highest simulcast layer the
//! player can take (within its own requested cap): down at once when the
//! current layer no longer fits, up only after the higher layer has fit
//! with headroom for [`UP_HOLD`] (for a probed player: a probe proved its
//! rate, then [`PROBED_HOLD`]), and not within [`UP_AFTER_DOWN`] of a
//! down-switch, so a player on a fluctuating link does not flap.

use std::time::{Duration, Instant};

use rtc::interceptor::{
    convert_twcc, History, LossController, OveruseDetector, PacketReport, RateCalculator,
    SlopeEstimator, Usage,
};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use stream_router::MAX_LAYERS;

use super::probe::{Prober, Verdict};

/// Where a player's estimate starts: enough for the top layer of a
/// typical 720p simulcast publish, so an unconstrained player starts (and
/// stays) there; a constrained one is brought down by its feedback.
pub const INITIAL_BITRATE: f64 = 2_500_000.0;
pub const MIN_BITRATE: f64 = 100_000.0;
pub const MAX_BITRATE: f64 = 20_000_000.0;
/// Growth of the estimate per second of normal delay.
pub const INCREASE_PER_SECOND: f64 = 1.20;
/// On overuse the estimate falls to this share of the received rate.
const DECREASE_FACTOR: f64 = 0.85;
/// After a decrease, no increase for this long (the queue drains).
const HOLD_AFTER_DECREASE: Duration = Duration::from_secs(1);
/// Growth stops at this multiple of the received rate.
const MAX_OVER_RECEIVED: f64 = 4.0;
/// A smoothed loss fraction above this backs off like overuse.
pub const HEAVY_LOSS: f64 = 0.10;
/// Rate changes are this far apart at least (decreases excepted).
const CHANGE_INTERVAL: Duration = Duration::from_millis(200);
/// Packets unacknowledged for this long are forgotten.
const HISTORY_HORIZON: Duration = Duration::from_secs(2);
/// A player that negotiated transport-cc and sends no feedback must not
/// make its history hold 2 s of packets: beyond this many records, the
/// ones older than [`CAPPED_HORIZON`] go (at most every 100 ms).
const HISTORY_CAP: usize = 1024;
const CAPPED_HORIZON: Duration = Duration::from_millis(500);
/// A higher layer must fit, with [`UP_HEADROOM`], this long before a switch up.
pub const UP_HOLD: Duration = Duration::from_secs(2);
/// ... or, for a player whose probes prove rates (transport-cc), this
/// long once proven.
pub const PROBED_HOLD: Duration = Duration::from_millis(500);
/// No switch up this soon after a switch down.
pub const UP_AFTER_DOWN: Duration = Duration::from_secs(5);
/// After a switch up, the new layer's rate is taken as it was measured
/// before the switch for this long (its keyframe inflates the next
/// measurements: without this, a player flaps straight back down).
const SETTLE_UP: Duration = Duration::from_secs(3);
/// A switch up that lasted this long worked.
const UP_LASTS: Duration = Duration::from_secs(10);
/// Budget share a layer may use to stay on it.
const FIT: f64 = 0.95;
/// ... and to move up to it.
const UP_HEADROOM: f64 = 0.80;
/// The bitrate assumed for a layer not measured yet (it just started).
const UNMEASURED_LAYER: [u64; MAX_LAYERS] = [150_000, 500_000, 1_200_000];

/// One player connection's estimator.
pub struct Bwe {
    /// The player's transport-wide-cc extension ID (`None`: it did not
    /// negotiate transport-cc; only REMB, if it sends that, informs).
    pub ext_id: Option<u8>,
    /// The last REMB the player sent (receiver-side estimate), used while
    /// no TWCC feedback came.
    remb: Option<u64>,
    next_seq: u16,
    history: History,
    estimator: Estimator,
    last_prune: Option<Instant>,
    /// Feedback packets taken, and the packets they reported lost.
    pub feedbacks: u64,
    pub lost: u64,
    /// Its bandwidth probes (`probe.rs`).
    pub prober: Prober,
}

impl Bwe {
    pub fn new(ext_id: Option<u8>) -> Self {
        Bwe {
            ext_id,
            remb: None,
            next_seq: 0,
            history: History::new(),
            estimator: Estimator::new(INITIAL_BITRATE),
            last_prune: None,
            feedbacks: 0,
            lost: 0,
            prober: Prober::default(),
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
        if self.history.len() > HISTORY_CAP
            && self
                .last_prune
                .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_millis(100))
        {
            self.last_prune = Some(now);
            if let Some(cutoff) = now.checked_sub(CAPPED_HORIZON) {
                self.history.prune_before(cutoff);
            }
        }
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
        self.estimator.on_reports(now, &reports);
        self.prober.on_reports(now, &reports);
        // The estimator saw overuse: a sending probe has failed already.
        if self
            .prober
            .sending_since()
            .is_some_and(|start| self.estimator.decreased_since(start))
        {
            self.prober.abort(now);
        }
    }

    /// The verdict of a probe whose feedback is in: a proven rate also
    /// lifts the estimate to it (the path carried it).
    pub fn judge_probe(&mut self, now: Instant) -> Option<Verdict> {
        let estimator = &self.estimator;
        let v = self
            .prober
            .judge(now, |since| estimator.decreased_since(since))?;
        if let Verdict::Proven(rate) = v {
            self.estimator.raise(rate as f64);
        }
        Some(v)
    }

    /// The player's REMB (players that do not negotiate transport-cc,
    /// e.g. aiortc): its bitrate is the estimate until TWCC feedback comes.
    pub fn on_remb(&mut self, bitrate: f32) {
        if bitrate.is_finite() && bitrate >= 0.0 {
            self.remb = Some((bitrate as f64).clamp(MIN_BITRATE, MAX_BITRATE) as u64);
        }
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
        match self.remb {
            Some(remb) if self.feedbacks == 0 => remb,
            _ => self.estimator.target() as u64,
        }
    }
}

/// Delay- and loss-based send-side estimate from per-packet reports.
pub struct Estimator {
    slope: SlopeEstimator,
    detector: OveruseDetector,
    received: RateCalculator,
    arrivals: ArrivalRate,
    loss: LossController,
    delay_target: f64,
    last_change: Option<Instant>,
    last_decrease: Option<Instant>,
    /// Loss fraction of the recent reports (smoothed per batch).
    recent_loss: f64,
}

impl Estimator {
    pub fn new(initial: f64) -> Self {
        Estimator {
            slope: SlopeEstimator::new(),
            detector: OveruseDetector::new(),
            received: RateCalculator::default(),
            arrivals: ArrivalRate::default(),
            loss: LossController::new(initial, MIN_BITRATE, MAX_BITRATE),
            delay_target: initial,
            last_change: None,
            last_decrease: None,
            recent_loss: 0.0,
        }
    }

    /// Reports of packets the receiver accounted for, in send order.
    pub fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        let mut usage = self.detector.usage();
        for r in reports {
            if r.arrived {
                self.received.add(now, r.size);
                if let Some(at) = r.arrival {
                    self.arrivals.add(at, r.size);
                }
            }
            if let Some(trend) = self.slope.accumulate(r) {
                usage = self.detector.update(trend.at, trend.estimate_ms);
            }
        }
        let received = self.received.rate_bits_per_second(now);
        // What a decrease starts from: the lower of the received rate
        // (over 500 ms of feedback) and the rate packets reached the player
        // lately by its own clock. A full bottleneck queue drains at the
        // link's rate, so the second is the link's rate as soon as loss or
        // delay shows, while the first still holds what came before.
        let delivered = match (received, self.arrivals.rate()) {
            (Some(rx), Some(at)) => Some(rx.min(at)),
            (rx, at) => rx.or(at),
        };
        let since = |at: Option<Instant>| at.map(|at| now.saturating_duration_since(at));
        let lost = reports.iter().filter(|r| !r.arrived).count();
        let batch_loss = lost as f64 / reports.len() as f64;
        self.recent_loss = 0.5 * self.recent_loss + 0.5 * batch_loss;
        let usage = if self.recent_loss > HEAVY_LOSS {
            Usage::Over
        } else {
            usage
        };
        match usage {
            Usage::Over => {
                // Once per interval: the evidence of one queue is acted on once.
                if let (Some(rx), false) = (
                    delivered,
                    since(self.last_decrease).is_some_and(|d| d < CHANGE_INTERVAL),
                ) {
                    self.delay_target = self.delay_target.min(rx * DECREASE_FACTOR);
                    self.last_decrease = Some(now);
                    self.last_change = Some(now);
                }
            }
            Usage::Normal => {
                let held = since(self.last_decrease).is_some_and(|d| d < HOLD_AFTER_DECREASE);
                let elapsed = since(self.last_change).unwrap_or(CHANGE_INTERVAL);
                if !held && elapsed >= CHANGE_INTERVAL {
                    let growth = INCREASE_PER_SECOND.powf(elapsed.as_secs_f64().min(1.0));
                    // Never far beyond what the path has shown it carries:
                    // enough to move up a layer or two, not to 20 Mb/s.
                    let ceiling = received.map_or(f64::MAX, |rx| rx * MAX_OVER_RECEIVED);
                    self.delay_target =
                        (self.delay_target * growth).min(ceiling.max(self.delay_target));
                    self.last_change = Some(now);
                }
            }
            // The queue drains: keep the rate until it has.
            _ => {}
        }
        self.delay_target = self.delay_target.clamp(MIN_BITRATE, MAX_BITRATE);
        self.loss.update(now, lost, reports.len());
    }

    /// Whether it backed off (saw overuse) at or after `t`.
    pub fn decreased_since(&self, t: Instant) -> bool {
        self.last_decrease.is_some_and(|at| at >= t)
    }

    /// A probe showed the path carries `rate`: the delay-based estimate
    /// is at least that.
    pub fn raise(&mut self, rate: f64) {
        self.delay_target = self.delay_target.max(rate).clamp(MIN_BITRATE, MAX_BITRATE);
    }

    /// The estimate: the more pessimistic of the delay- and loss-based ones.
    pub fn target(&self) -> f64 {
        self.delay_target
            .min(self.loss.target())
            .clamp(MIN_BITRATE, MAX_BITRATE)
    }
}

/// How far back [`ArrivalRate`] looks, by the player's clock.
const ARRIVAL_WINDOW: Duration = Duration::from_millis(250);
/// ... and the least it needs to say anything.
const ARRIVAL_MIN_SPAN: Duration = Duration::from_millis(60);
const ARRIVAL_MIN_PACKETS: usize = 5;
/// Samples kept at most (a 250 ms window at 20 Mb/s of 1200-byte packets
/// is ~520): the meter's memory is bounded whatever the player reports.
const ARRIVAL_CAP: usize = 1024;

/// The rate packets arrived at the player over the last
/// [`ARRIVAL_WINDOW`] of its arrival clock (TWCC arrival times).
#[derive(Debug, Default)]
struct ArrivalRate {
    samples: std::collections::VecDeque<(Duration, usize)>,
    bytes: usize,
    latest: Duration,
}

impl ArrivalRate {
    fn add(&mut self, at: Duration, size: usize) {
        // A clock that jumped back (a new reference time base): start over.
        if at + Duration::from_secs(1) < self.latest {
            self.samples.clear();
            self.bytes = 0;
            self.latest = at;
        }
        self.latest = self.latest.max(at);
        if self.samples.len() >= ARRIVAL_CAP {
            if let Some((_, s)) = self.samples.pop_front() {
                self.bytes -= s;
            }
        }
        self.samples.push_back((at, size));
        self.bytes += size;
        let cutoff = self.latest.saturating_sub(ARRIVAL_WINDOW);
        while let Some(&(t, s)) = self.samples.front() {
            if t >= cutoff {
                break;
            }
            self.samples.pop_front();
            self.bytes -= s;
        }
    }

    /// Bits per second, `None` while the window holds too little.
    fn rate(&self) -> Option<f64> {
        let (first, _) = *self.samples.front()?;
        let span = self.latest.saturating_sub(first);
        if self.samples.len() < ARRIVAL_MIN_PACKETS || span < ARRIVAL_MIN_SPAN {
            return None;
        }
        // The first packet's bytes arrived before the span began.
        let bytes = self.bytes - self.samples.front().map_or(0, |s| s.1);
        Some(bytes as f64 * 8.0 / span.as_secs_f64())
    }
}

/// The layer choice of one video play.
#[derive(Debug, Default)]
pub struct Selector {
    layer: Option<u8>,
    /// Since when the candidate layer above has fit.
    up_since: Option<(u8, Instant)>,
    last_down: Option<Instant>,
    /// The last switch up, and how many switches up in a row did not last
    /// [`UP_LASTS`] (then the hold before the next is doubled).
    last_up: Option<Instant>,
    /// The layer switched up to and its bitrate then: for [`SETTLE_UP`]
    /// after the switch that layer's need is taken as at most this (its
    /// measured rate jumps with the keyframe that starts it).
    up_rate: Option<(u8, f64)>,
    failed_ups: u32,
    /// Switches decided (for the metric).
    pub switches: u64,
}

impl Selector {
    /// The layer to take now, given the estimate left for video `budget`,
    /// the video rate a probe proved lately (`u64::MAX`: the player is
    /// not probed, the estimate alone decides), the layers' measured
    /// bitrates (`None`: not live) and the player's own cap.
    pub fn choose(
        &mut self,
        now: Instant,
        budget: u64,
        proven: u64,
        rates: [Option<u64>; MAX_LAYERS],
        cap: u8,
    ) -> Option<u8> {
        let settling = self
            .last_up
            .is_some_and(|at| now.saturating_duration_since(at) < SETTLE_UP);
        let up_rate = self.up_rate.filter(|_| settling);
        let need = |l: usize| -> Option<f64> {
            let rate = rates[l]?;
            let rate = if rate == 0 { UNMEASURED_LAYER[l] } else { rate } as f64;
            Some(match up_rate {
                Some((u, r)) if usize::from(u) == l => rate.min(r),
                _ => rate,
            })
        };
        let budget = budget as f64;
        // Live layers, lowest first (no allocation: at most MAX_LAYERS).
        let live = || (0..MAX_LAYERS as u8).filter(|&l| rates[usize::from(l)].is_some());
        let lowest = live().next()?;
        let under_cap = |l: u8| l <= cap || l == lowest;
        // The best layer that fits, for staying and for moving up (which
        // also needs the rate proven by a probe, `probe.rs`).
        let fits = |share: f64, budget: f64| {
            live()
                .rev()
                .find(|&l| {
                    under_cap(l) && need(usize::from(l)).is_some_and(|n| n <= budget * share)
                })
                .unwrap_or(lowest)
        };
        let (stay, up) = (
            fits(FIT, budget),
            fits(UP_HEADROOM, budget.min(proven as f64)),
        );
        let current = match self.layer {
            Some(l) if rates.get(usize::from(l)).is_some_and(Option::is_some) && under_cap(l) => l,
            // First choice, or the layer went away / above the cap: take
            // the best that fits now.
            _ => return Some(self.set(stay, now)),
        };
        if stay < current {
            self.up_since = None;
            self.last_down = Some(now);
            let failed = self
                .last_up
                .is_some_and(|at| now.saturating_duration_since(at) < UP_LASTS);
            self.failed_ups = if failed { self.failed_ups + 1 } else { 0 };
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
            // A probe's proof is stronger evidence than the estimate
            // holding: a shorter wait.
            let hold = if proven == u64::MAX {
                UP_HOLD
            } else {
                PROBED_HOLD
            };
            let hold = hold * (1 << self.failed_ups.min(1));
            if !recently_down && now.saturating_duration_since(since) >= hold {
                self.up_since = None;
                self.last_up = Some(now);
                self.up_rate = need(usize::from(up)).map(|r| (up, r));
                return Some(self.set(up, now));
            }
        } else {
            self.up_since = None;
        }
        Some(current)
    }

    /// The layer a probe should aim at, and the video rate that layer
    /// needs (with headroom): what the probe should prove. The best layer
    /// above the current one that the estimate lets it move up to, or
    /// with `next_only` (the last probe failed) the next one. When the
    /// estimate allows none, still the next one: a player on a low layer
    /// sends little, so its estimate grows slowly and says little about
    /// its link (after congestion it would take 10 s and more to climb
    /// back); the probe asks the link itself. `None` at the top (within
    /// the cap) or too soon after a down-switch.
    pub fn candidate(
        &self,
        now: Instant,
        budget: u64,
        rates: [Option<u64>; MAX_LAYERS],
        cap: u8,
        next_only: bool,
    ) -> Option<(u8, u64)> {
        let current = self.layer?;
        if self
            .last_down
            .is_some_and(|at| now.saturating_duration_since(at) < UP_AFTER_DOWN)
        {
            return None;
        }
        let mut above = (current + 1..MAX_LAYERS as u8)
            .filter(|&l| l <= cap)
            .filter_map(|l| {
                let rate = rates[usize::from(l)]?;
                let rate = if rate == 0 {
                    UNMEASURED_LAYER[usize::from(l)]
                } else {
                    rate
                };
                Some((l, (rate as f64 / UP_HEADROOM) as u64))
            });
        let next = above.next()?;
        if next_only || next.1 > budget {
            return Some(next);
        }
        Some(
            above
                .take_while(|&(_, need)| need <= budget)
                .last()
                .unwrap_or(next),
        )
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
            let budget = trace
                .iter()
                .rev()
                .find(|(at, _)| *at <= t)
                .map_or(0, |x| x.1);
            let l = s
                .choose(t0 + Duration::from_secs_f64(t), budget, u64::MAX, RATES, 2)
                .unwrap();
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
    fn backs_off_a_layer_that_keeps_failing() {
        // Layer 2 fits for 2.5 s, then not for 1 s, over and over: the
        // hold before trying it again grows, so it is tried less often.
        let mut trace = Vec::new();
        for i in 0..20 {
            let at = f64::from(i) * 3.5;
            trace.push((at, 3_000_000));
            trace.push((at + 2.5, 500_000));
        }
        let got = run(&trace, 60.0);
        let ups = got.windows(2).filter(|w| w[1].1 > w[0].1).count();
        assert!(ups <= 6, "{ups} switches up in 60 s: {got:?}");
    }

    /// The estimator on a simulated path, closed loop: a 30 fps sender at
    /// min(estimate, 1.2 Mb/s), free for 2 s, then into a 500 kb/s
    /// bottleneck with a 300 ms drop-tail queue for 8 s, then free again.
    /// Feedback every 50 ms.
    #[test]
    fn estimate_follows_a_bottleneck_down_and_back_up() {
        use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;
        let t0 = Instant::now();
        let mut e = Estimator::new(INITIAL_BITRATE);
        let ms = |x: u64| Duration::from_millis(x);
        let mut free_at = Duration::ZERO; // when the bottleneck is idle again
        let mut pending: std::collections::VecDeque<PacketReport> = Default::default();
        let (mut dropped_below, mut back_above) = (None, None);
        let mut id = 0u64;
        let frame = Duration::from_micros(33_333);
        let mut next_feedback = ms(50);
        const CUT: Duration = Duration::from_secs(2);
        const RESTORE: Duration = Duration::from_secs(10);
        for f in 0..660u32 {
            let at = frame * f;
            let rate = e.target().min(1_200_000.0);
            let packets = ((rate / 30.0 / 8.0) / 1_000.0).ceil().max(1.0) as u64;
            for k in 0..packets {
                let sent = at + Duration::from_micros(500 * k);
                let (arrived, arrival) = if sent >= CUT && sent < RESTORE {
                    let start = free_at.max(sent);
                    if start + ms(16) - sent > ms(300) {
                        (false, None)
                    } else {
                        free_at = start + ms(16); // 1000 bytes at 500 kb/s
                        (true, Some(free_at + ms(5)))
                    }
                } else {
                    (true, Some(sent + ms(5)))
                };
                pending.push_back(PacketReport {
                    ssrc: 1,
                    id,
                    rtp_sequence_number: id as u16,
                    is_twcc: true,
                    twcc_sequence_number: id as u16,
                    size: 1_000,
                    arrived,
                    departure: t0 + sent,
                    arrival,
                    ecn: Ecn::default(),
                });
                id += 1;
            }
            while next_feedback <= at + frame {
                let now = next_feedback;
                let mut batch = Vec::new();
                while let Some(r) = pending.front() {
                    let known = r.arrival.unwrap_or(r.departure - t0 + ms(300));
                    if known > now {
                        break;
                    }
                    batch.extend(pending.pop_front());
                }
                e.on_reports(t0 + now, &batch);
                let t = now.as_secs_f64();
                let (cut, restore) = (CUT.as_secs_f64(), RESTORE.as_secs_f64());
                if t > cut && dropped_below.is_none() && e.target() < 500_000.0 {
                    dropped_below = Some(t - cut);
                }
                if t > restore && back_above.is_none() && e.target() > 1_100_000.0 {
                    back_above = Some(t - restore);
                }
                if t < restore && t > cut + 1.0 {
                    // Held near the bottleneck while it lasts.
                    assert!(e.target() < 900_000.0, "{t:.2}: {}", e.target());
                }
                next_feedback += ms(50);
            }
        }
        let down = dropped_below.expect("never fell below the bottleneck");
        // The rate packets reached the receiver at tells the link's rate
        // at the first loss (the received rate over 500 ms still holds
        // what came before the cut).
        assert!(down < 0.6, "fell below 500 kb/s only after {down:.2} s");
        let up = back_above.expect("never climbed back");
        assert!(
            up < 10.0,
            "climbed back above 1.1 Mb/s only after {up:.1} s"
        );
    }

    #[test]
    fn arrival_rate_reads_the_link_and_survives_a_clock_jump() {
        let mut a = ArrivalRate::default();
        assert_eq!(a.rate(), None);
        // 1000-byte packets every 16 ms: 500 kb/s, whatever came before.
        for i in 0..100u64 {
            a.add(Duration::from_millis(10 * i), 5_000);
        }
        for i in 0..40u64 {
            a.add(Duration::from_millis(1_000 + 16 * i), 1_000);
        }
        let r = a.rate().unwrap();
        assert!((r - 500_000.0).abs() < 1_000.0, "{r}");
        // The player's clock base changes: the old samples go.
        a.add(Duration::from_millis(5), 1_000);
        assert_eq!(a.rate(), None);
        assert!(a.samples.len() <= ARRIVAL_CAP);
    }

    /// A player that never answers: the history stays bounded.
    #[test]
    fn history_is_bounded_without_feedback() {
        let t0 = Instant::now();
        let mut b = Bwe::new(Some(3));
        for i in 0..20_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 500); // 2000 pkt/s
            b.on_sent(1, i as u16, 1_200, now);
        }
        assert!(b.history.len() <= 2 * HISTORY_CAP, "{}", b.history.len());
    }

    #[test]
    fn respects_the_cap_and_missing_layers() {
        let t0 = Instant::now();
        let mut s = Selector::default();
        assert_eq!(s.choose(t0, 10_000_000, u64::MAX, RATES, 1), Some(1));
        assert_eq!(
            s.choose(
                t0,
                10_000_000,
                u64::MAX,
                [Some(150_000), None, Some(900_000)],
                1
            ),
            Some(0)
        );
        // Too little for any layer: the lowest there is.
        assert_eq!(s.choose(t0, 10_000, u64::MAX, RATES, 2), Some(0));
        assert_eq!(s.choose(t0, 10_000, u64::MAX, [None; MAX_LAYERS], 2), None);
    }

    #[test]
    fn moves_up_only_to_a_proven_rate() {
        let t0 = Instant::now();
        let mut s = Selector::default();
        assert_eq!(s.choose(t0, 100_000, 0, RATES, 2), Some(0));
        let later = t0 + UP_AFTER_DOWN + UP_HOLD * 2;
        // The estimate says layer 2 fits, nothing is proven: it stays, and
        // the probe to make is for layer 2 (900 kb/s / 0.8), or after a
        // failed one for layer 1 (400 kb/s / 0.8).
        assert_eq!(
            s.candidate(later, 2_000_000, RATES, 2, false),
            Some((2, 1_125_000))
        );
        assert_eq!(
            s.candidate(later, 2_000_000, RATES, 2, true),
            Some((1, 500_000))
        );
        for i in 0..20 {
            let at = later + Duration::from_millis(200 * i);
            assert_eq!(s.choose(at, 2_000_000, 0, RATES, 2), Some(0));
        }
        // Proven 600 kb/s: layer 1 after the (shorter) hold of a proof, not 2.
        let at = later + Duration::from_secs(5);
        s.choose(at, 2_000_000, 600_000, RATES, 2);
        assert_eq!(
            s.choose(at + PROBED_HOLD / 2, 2_000_000, 600_000, RATES, 2),
            Some(0)
        );
        let at = at + PROBED_HOLD;
        assert_eq!(s.choose(at, 2_000_000, 600_000, RATES, 2), Some(1));
        assert_eq!(
            s.candidate(at, 2_000_000, RATES, 2, false),
            Some((2, 1_125_000))
        );
        // The cap bounds the candidate; an estimate too low for the next
        // layer still probes it (the link is asked, not the estimate).
        assert_eq!(s.candidate(at, 2_000_000, RATES, 1, false), None);
        assert_eq!(
            s.candidate(at, 1_000_000, RATES, 2, false),
            Some((2, 1_125_000))
        );
    }

    #[test]
    fn a_player_brought_down_probes_the_next_layer_after_the_wait() {
        let t0 = Instant::now();
        let mut s = Selector::default();
        assert_eq!(s.choose(t0, 2_000_000, u64::MAX, RATES, 2), Some(2));
        // Congestion: down to layer 0 on a 300 kb/s estimate.
        assert_eq!(s.choose(t0, 300_000, u64::MAX, RATES, 2), Some(0));
        // No probe while the down-switch is recent, then the next layer
        // although the estimate is below what it needs.
        assert_eq!(
            s.candidate(t0 + UP_AFTER_DOWN / 2, 300_000, RATES, 2, false),
            None
        );
        assert_eq!(
            s.candidate(t0 + UP_AFTER_DOWN, 300_000, RATES, 2, false),
            Some((1, 500_000))
        );
        // Top layer within the cap: nothing to probe.
        assert_eq!(
            s.candidate(t0 + UP_AFTER_DOWN, 300_000, RATES, 0, false),
            None
        );
    }

    #[test]
    fn a_keyframe_burst_after_a_switch_up_does_not_switch_back() {
        let t0 = Instant::now();
        let mut s = Selector::default();
        let budget = 1_300_000;
        assert_eq!(s.choose(t0, 100_000, u64::MAX, RATES, 2), Some(0));
        let t1 = t0 + UP_AFTER_DOWN;
        s.choose(t1, budget, u64::MAX, RATES, 2);
        assert_eq!(s.choose(t1 + UP_HOLD, budget, u64::MAX, RATES, 2), Some(2));
        // Layer 2 measures 1.6 Mb/s just after (its keyframe): it stays.
        let burst = [Some(150_000), Some(400_000), Some(1_600_000)];
        let t2 = t1 + UP_HOLD + Duration::from_millis(500);
        assert_eq!(s.choose(t2, budget, u64::MAX, burst, 2), Some(2));
        // Still that high once settled: down.
        assert_eq!(
            s.choose(t2 + SETTLE_UP, budget, u64::MAX, burst, 2),
            Some(1)
        );
    }
}
