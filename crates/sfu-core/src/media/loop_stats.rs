//! How each media worker's event loop keeps up: the *lag* of its timer
//! wake-ups (how late after the deadline it asked for it actually ran —
//! a loaded or starved thread wakes late) and its *busy time* (from the
//! wake-up to the end of that turn's work). A worker keeps both locally
//! and adds them to its slot here at each housekeeping tick, so the loop
//! pays no atomic per turn. Exported per worker (a bounded label: the
//! worker index) as `sfu_media_worker_loop_lag_seconds` and
//! `sfu_media_worker_busy_seconds_total`; busy ratio = rate(busy) / 1 s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::latency::{Latency, LatencyTotals};

/// One worker's loop counts since its last housekeeping tick.
#[derive(Debug, Default)]
pub(crate) struct LoopCounts {
    pub lag: Latency,
    pub busy: Duration,
}

impl LoopCounts {
    /// A timer wake-up that ran `late` after its deadline.
    pub fn woke_late(&mut self, late: Duration) {
        self.lag.record(late, 1);
    }

    /// One turn's work took `d`.
    pub fn worked(&mut self, d: Duration) {
        self.busy += d;
    }
}

/// One worker's totals (one slot per worker in the media plane).
#[derive(Default)]
pub(crate) struct LoopTotals {
    lag: LatencyTotals,
    busy_us: AtomicU64,
}

impl LoopTotals {
    /// Add and reset `counts`.
    pub fn add(&self, counts: &mut LoopCounts) {
        self.lag.add(&counts.lag);
        let us = u64::try_from(counts.busy.as_micros()).unwrap_or(u64::MAX);
        self.busy_us.fetch_add(us, Ordering::Relaxed);
        *counts = LoopCounts::default();
    }

    pub fn get(&self) -> WorkerLoop {
        WorkerLoop {
            lag: self.lag.get(),
            busy: Duration::from_micros(self.busy_us.load(Ordering::Relaxed)),
        }
    }
}

/// A worker's loop totals at one scrape.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerLoop {
    pub lag: Latency,
    pub busy: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_reset() {
        let totals = LoopTotals::default();
        let mut c = LoopCounts::default();
        c.woke_late(Duration::from_micros(30));
        c.woke_late(Duration::from_millis(3));
        c.worked(Duration::from_millis(2));
        c.worked(Duration::from_millis(5));
        totals.add(&mut c);
        assert_eq!(c.lag.count, 0);
        assert_eq!(c.busy, Duration::ZERO);
        c.worked(Duration::from_millis(1));
        totals.add(&mut c);
        let t = totals.get();
        assert_eq!(t.lag.count, 2);
        assert_eq!(t.lag.buckets[0], 1);
        assert_eq!(t.busy, Duration::from_millis(8));
    }
}
