//! Bandwidth probes: before a player moves up a layer, its link is shown
//! to carry the higher rate.
//!
//! The estimator (`bwe.rs`) grows while nothing says the path is full,
//! but a player on a low layer sends little, so "nothing says" is weak
//! evidence: switching up on it alone is the probe, and a failed one costs
//! a keyframe burst into a full queue (with SVC, pictures the player can
//! no longer complete). So when the estimate says a higher layer fits (the
//! best one; after a failed probe the next one up), the
//! worker first sends padding (`Router::queue_padding`: RTP packets with
//! only padding, numbered into the player's video sequence, carrying the
//! transport-wide sequence number like everything else) for [`DURATION`],
//! paced so that media plus padding make [`OVERSHOOT`] times what that
//! layer needs. The packets sent during the probe, as the player's TWCC
//! feedback reports them, give the rate its link delivered; the probe
//! succeeds when that is at least [`DELIVERED`] of the rate they were sent
//! at (which proves the delivered rate), their
//! loss stayed under [`MAX_LOSS`] and the estimator saw no overuse. Only
//! a rate proven so (for [`PROVEN_FOR`]) lets the selector move up; a
//! probe stops sending as soon as the feedback shows it lost packets or
//! the estimator saw overuse; a
//! failed probe leaves the estimator's own reaction (it saw the overuse)
//! and the next probe waits longer ([`GAP`], doubled per failure up to
//! four times).

use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// How long a probe sends padding.
pub const DURATION: Duration = Duration::from_millis(400);
/// Feedback for the probe's last packets is awaited this long.
const SETTLE: Duration = Duration::from_millis(400);
/// Media plus padding, relative to what the probed layer needs.
pub const OVERSHOOT: f64 = 1.4;
/// The share of the rate sent during the probe the link must deliver.
pub const DELIVERED: f64 = 0.85;
const MAX_LOSS: f64 = 0.05;
/// A sending probe stops once this many of its packets (and more than
/// [`MAX_LOSS`] of them) are reported lost.
const ABORT_LOST: usize = 3;
/// A proven rate lets the player move up for this long.
pub const PROVEN_FOR: Duration = Duration::from_secs(10);
/// Between two probes (the first); doubled per failure in a row, at most
/// four times.
pub const GAP: Duration = Duration::from_secs(1);
/// On-the-wire size assumed per padding packet: 255 bytes of padding, the
/// 12-byte header, the transport-wide sequence number and the SRTP tag.
pub const PACKET_BYTES: usize = 255 + 12 + 8 + 10;
/// At most this many padding packets per pacing call (a loop that turned
/// late does not burst).
const MAX_BURST: usize = 8;

/// What the probe's packets showed, from the feedback.
#[derive(Debug, Default, Clone, Copy)]
struct Meter {
    bytes: usize,
    /// Every reported packet's bytes (lost ones too) and departures.
    sent_bytes: usize,
    first_departure: Option<Instant>,
    last_departure: Option<Instant>,
    first_arrival: Option<Duration>,
    last_arrival: Option<Duration>,
    reported: usize,
    lost: usize,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Idle,
    /// Sending padding until `until` at `padding` bits/s, with `credit`
    /// bytes not sent yet.
    Sending {
        start: Instant,
        until: Instant,
        target: u64,
        padding: u64,
        credit: f64,
        last: Instant,
    },
    /// Waiting for the feedback of the probe's packets.
    Waiting {
        start: Instant,
        until: Instant,
        target: u64,
    },
}

/// The outcome of a finished probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// The link delivered this rate (bits/s).
    Proven(u64),
    Failed,
}

/// One player's probes.
#[derive(Debug)]
pub struct Prober {
    state: State,
    meter: Meter,
    failures: u32,
    last_end: Option<Instant>,
    proven: Option<(u64, Instant)>,
    /// Probes started, and those that proved their rate.
    pub started: u64,
    pub succeeded: u64,
}

impl Default for Prober {
    fn default() -> Self {
        Prober {
            state: State::Idle,
            meter: Meter::default(),
            failures: 0,
            last_end: None,
            proven: None,
            started: 0,
            succeeded: 0,
        }
    }
}

impl Prober {
    /// The rate proven lately (0: none).
    pub fn proven(&self, now: Instant) -> u64 {
        match self.proven {
            Some((rate, at)) if now.saturating_duration_since(at) < PROVEN_FOR => rate,
            _ => 0,
        }
    }

    /// The last probe failed (the next one tries a smaller step).
    pub fn failed_last(&self) -> bool {
        self.failures > 0
    }

    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Starts a probe of `target` bits/s (media plus padding) for a player
    /// that is sent `sending` bits/s of media, unless one runs or the gap
    /// after the last has not passed. Returns whether it started.
    pub fn start(&mut self, now: Instant, target: u64, sending: u64) -> bool {
        if !self.is_idle() || target <= sending {
            return false;
        }
        let gap = GAP * (1 << self.failures.min(2));
        if self
            .last_end
            .is_some_and(|at| now.saturating_duration_since(at) < gap)
        {
            return false;
        }
        self.meter = Meter::default();
        self.started += 1;
        self.state = State::Sending {
            start: now,
            until: now + DURATION,
            target,
            padding: target - sending,
            credit: 0.0,
            last: now,
        };
        true
    }

    /// Padding packets due now (paced), and the state's next step.
    pub fn pace(&mut self, now: Instant) -> usize {
        let State::Sending {
            start,
            until,
            target,
            padding,
            credit,
            last,
        } = &mut self.state
        else {
            return 0;
        };
        let end = now.min(*until);
        let dt = end.saturating_duration_since(*last).as_secs_f64();
        *last = end;
        *credit += *padding as f64 / 8.0 * dt;
        let n = ((*credit / PACKET_BYTES as f64) as usize).min(MAX_BURST);
        *credit -= (n * PACKET_BYTES) as f64;
        // A burst cut short is not owed later.
        *credit = credit.min((MAX_BURST * PACKET_BYTES) as f64);
        if now >= *until {
            self.state = State::Waiting {
                start: *start,
                until: *until,
                target: *target,
            };
        }
        n
    }

    /// `n` of the packets [`pace`](Self::pace) asked for could not be
    /// queued (the player is inside a frame): owed at the next call.
    pub fn refund(&mut self, n: usize) {
        if let State::Sending { credit, .. } = &mut self.state {
            *credit = (*credit + (n * PACKET_BYTES) as f64).min((MAX_BURST * PACKET_BYTES) as f64);
        }
    }

    /// When [`pace`](Self::pace) or [`judge`](Self::judge) wants to run
    /// next.
    pub fn next_wake(&self, now: Instant) -> Option<Instant> {
        match self.state {
            State::Idle => None,
            State::Sending { .. } => Some(now + Duration::from_millis(5)),
            State::Waiting { until, .. } => Some(until + SETTLE),
        }
    }

    /// Feedback reports (arrived `now`): those of packets sent during the
    /// probe count. A probe whose packets are lost beyond [`MAX_LOSS`]
    /// while it still sends stops at once: it has failed, and every more
    /// packet would only deepen the player's loss.
    pub fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        let (start, until) = match self.state {
            State::Sending { start, until, .. } | State::Waiting { start, until, .. } => {
                (start, until)
            }
            State::Idle => return,
        };
        for r in reports {
            if r.departure < start || r.departure > until {
                continue;
            }
            let m = &mut self.meter;
            m.reported += 1;
            m.sent_bytes += r.size;
            let d = r.departure;
            m.first_departure = Some(m.first_departure.map_or(d, |f| f.min(d)));
            m.last_departure = Some(m.last_departure.map_or(d, |l| l.max(d)));
            match (r.arrived, r.arrival) {
                (true, Some(at)) => {
                    m.bytes += r.size;
                    m.first_arrival = Some(m.first_arrival.map_or(at, |f| f.min(at)));
                    m.last_arrival = Some(m.last_arrival.map_or(at, |l| l.max(at)));
                }
                _ => m.lost += 1,
            }
        }
        let m = &self.meter;
        if m.lost >= ABORT_LOST && m.lost as f64 > MAX_LOSS * m.reported as f64 {
            self.abort(now);
        }
    }

    /// The probe that is sending began at this instant.
    pub fn sending_since(&self) -> Option<Instant> {
        match self.state {
            State::Sending { start, .. } => Some(start),
            _ => None,
        }
    }

    /// Stop sending padding now (the probe has failed already): it is
    /// judged on what it sent once that feedback is in.
    pub fn abort(&mut self, now: Instant) {
        if let State::Sending { start, target, .. } = self.state {
            tracing::debug!(target, "bandwidth probe stopped early");
            self.state = State::Waiting {
                start,
                until: now,
                target,
            };
        }
    }

    /// The verdict of a probe whose feedback has had time to come;
    /// `overused` tells whether the estimator saw overuse since it began
    /// (`since` is its start, for that question).
    pub fn judge(&mut self, now: Instant, overused: impl Fn(Instant) -> bool) -> Option<Verdict> {
        let State::Waiting {
            start,
            until,
            target,
        } = self.state
        else {
            return None;
        };
        if now < until + SETTLE {
            return None;
        }
        self.state = State::Idle;
        self.last_end = Some(now);
        let m = self.meter;
        let span = match (m.first_arrival, m.last_arrival) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => Duration::ZERO,
        };
        let delivered = match span.as_secs_f64() {
            s if s >= DURATION.as_secs_f64() / 2.0 => (m.bytes as f64 * 8.0 / s) as u64,
            _ => 0,
        };
        let sent_span = match (m.first_departure, m.last_departure) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let sent = match sent_span {
            s if s > 0.0 => (m.sent_bytes as f64 * 8.0 / s) as u64,
            _ => 0,
        };
        let loss = m.lost as f64 / m.reported.max(1) as f64;
        // The link carried what was sent (the pacing and the media's own
        // rate decide how close that came to `target`: the proof is what
        // was delivered).
        let ok = m.reported >= 10
            && loss <= MAX_LOSS
            && delivered as f64 >= DELIVERED * sent as f64
            && !overused(start);
        tracing::debug!(
            target,
            sent,
            delivered,
            loss,
            reported = m.reported,
            ok,
            "bandwidth probe"
        );
        if ok {
            self.failures = 0;
            self.succeeded += 1;
            let rate = delivered.min(sent);
            self.proven = Some((rate, now));
            Some(Verdict::Proven(rate))
        } else {
            self.failures += 1;
            Some(Verdict::Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    fn report(id: u64, t0: Instant, sent: Duration, arrival: Option<Duration>) -> PacketReport {
        PacketReport {
            ssrc: 1,
            id,
            rtp_sequence_number: id as u16,
            is_twcc: true,
            twcc_sequence_number: id as u16,
            size: PACKET_BYTES,
            arrived: arrival.is_some(),
            departure: t0 + sent,
            arrival,
            ecn: Ecn::default(),
        }
    }

    /// Runs one probe of 800 kb/s of padding (no media) through a link of
    /// `link` bits/s with a drop-tail queue of 100 ms.
    fn probe(link: f64) -> (Verdict, usize) {
        let t0 = Instant::now();
        let mut p = Prober::default();
        assert!(p.start(t0, 800_000, 0));
        assert!(!p.start(t0, 800_000, 0), "one at a time");
        let mut reports = Vec::new();
        let mut free = Duration::ZERO;
        let mut sent = 0;
        let mut id = 0;
        let per_packet = Duration::from_secs_f64(PACKET_BYTES as f64 * 8.0 / link);
        for ms in (0..=DURATION.as_millis() as u64 + 10).step_by(5) {
            let at = Duration::from_millis(ms);
            for _ in 0..p.pace(t0 + at) {
                let start = free.max(at);
                let arrival = if start - at > Duration::from_millis(100) {
                    None
                } else {
                    free = start + per_packet;
                    Some(free)
                };
                reports.push(report(id, t0, at, arrival));
                id += 1;
                sent += 1;
            }
        }
        p.on_reports(t0 + DURATION, &reports);
        let end = t0 + DURATION;
        assert_eq!(p.judge(end, |_| false), None, "waits for the feedback");
        let v = p.judge(end + SETTLE, |_| false).unwrap();
        (v, sent)
    }

    #[test]
    fn paces_the_padding_and_proves_a_free_link() {
        let (v, sent) = probe(10_000_000.0);
        // 800 kb/s of padding for 400 ms.
        let want = 800_000.0 / 8.0 * DURATION.as_secs_f64() / PACKET_BYTES as f64;
        assert!((sent as f64 - want).abs() <= 2.0, "{sent} vs {want}");
        match v {
            Verdict::Proven(rate) => assert!(rate >= 750_000, "{rate}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn a_narrow_link_fails_and_the_next_probe_waits_longer() {
        let (v, _) = probe(300_000.0);
        assert_eq!(v, Verdict::Failed);
        let t0 = Instant::now();
        let mut p = Prober {
            failures: 2,
            last_end: Some(t0),
            ..Prober::default()
        };
        assert!(!p.start(t0 + GAP * 3, 800_000, 0));
        assert!(p.start(t0 + GAP * 4, 800_000, 0));
        assert_eq!(p.proven(t0), 0);
    }

    #[test]
    fn a_probe_losing_packets_stops_sending_at_once() {
        let t0 = Instant::now();
        let mut p = Prober::default();
        assert!(p.start(t0, 800_000, 0));
        let mut reports = Vec::new();
        let mut id = 0;
        for ms in (0..=100u64).step_by(5) {
            let at = Duration::from_millis(ms);
            for _ in 0..p.pace(t0 + at) {
                // Every other packet lost.
                let arrival = (id % 2 == 0).then_some(at + Duration::from_millis(5));
                reports.push(report(id, t0, at, arrival));
                id += 1;
            }
        }
        let at = t0 + Duration::from_millis(100);
        p.on_reports(at, &reports);
        assert!(p.sending_since().is_none(), "stopped");
        assert_eq!(p.pace(at + Duration::from_millis(50)), 0);
        assert_eq!(p.judge(at + SETTLE, |_| false), Some(Verdict::Failed));
    }

    #[test]
    fn overuse_fails_a_probe_and_proof_expires() {
        let t0 = Instant::now();
        let mut p = Prober::default();
        assert!(p.start(t0, 400_000, 100_000));
        let mut reports = Vec::new();
        let mut id = 0;
        for ms in (0..=410u64).step_by(5) {
            for _ in 0..p.pace(t0 + Duration::from_millis(ms)) {
                let at = Duration::from_millis(ms);
                reports.push(report(id, t0, at, Some(at + Duration::from_millis(3))));
                id += 1;
            }
        }
        p.on_reports(t0 + DURATION, &reports);
        let v = p.judge(t0 + Duration::from_secs(1), |since| since == t0);
        assert_eq!(v, Some(Verdict::Failed));
        // Proof holds PROVEN_FOR.
        p.proven = Some((500_000, t0));
        assert_eq!(p.proven(t0 + PROVEN_FOR / 2), 500_000);
        assert_eq!(p.proven(t0 + PROVEN_FOR), 0);
    }
}
