//! How long forwarded media waits inside the server: for every datagram a
//! worker sends, the time from the worker's wake-up that brought the input
//! (for packets relayed from another worker: that worker's receive) to the
//! `sendmmsg` call that sent it. A fixed-bucket histogram: no allocation,
//! exported at `/metrics` as `sfu_egress_added_latency_seconds`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in µs (the last bucket is unbounded).
pub const BOUNDS_US: [u64; 10] = [
    50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000,
];
const BUCKETS: usize = BOUNDS_US.len() + 1;

/// One worker's counts since they were last added to the totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Datagrams per bucket (not cumulative).
    pub buckets: [u64; BUCKETS],
    pub sum_us: u64,
    pub count: u64,
}

impl Latency {
    /// `n` datagrams that waited `d`.
    pub fn record(&mut self, d: Duration, n: u64) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BOUNDS_US.len());
        self.buckets[i] += n;
        self.sum_us = self.sum_us.saturating_add(us.saturating_mul(n));
        self.count += n;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bucket bound at or below which `q` (0..=1) of the datagrams
    /// fall (`None`: beyond the last bound, or nothing recorded).
    pub fn quantile_bound_us(&self, q: f64) -> Option<u64> {
        let target = (self.count as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target.max(1) {
                return BOUNDS_US.get(i).copied();
            }
        }
        None
    }
}

/// The media plane's totals, added to by every worker at its flushes.
#[derive(Default)]
pub(crate) struct LatencyTotals {
    buckets: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl LatencyTotals {
    pub fn add(&self, l: &Latency) {
        for (t, n) in self.buckets.iter().zip(l.buckets) {
            if n > 0 {
                t.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.sum_us.fetch_add(l.sum_us, Ordering::Relaxed);
        self.count.fetch_add(l.count, Ordering::Relaxed);
    }

    pub fn get(&self) -> Latency {
        Latency {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_us: self.sum_us.load(Ordering::Relaxed),
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_quantiles() {
        let mut l = Latency::default();
        l.record(Duration::from_micros(40), 98);
        l.record(Duration::from_micros(700), 1);
        l.record(Duration::from_millis(80), 1);
        assert_eq!(l.count, 100);
        assert_eq!(l.buckets[0], 98);
        assert_eq!(l.buckets[4], 1);
        assert_eq!(l.buckets[BOUNDS_US.len()], 1);
        assert_eq!(l.quantile_bound_us(0.5), Some(50));
        assert_eq!(l.quantile_bound_us(0.99), Some(1_000));
        assert_eq!(l.quantile_bound_us(1.0), None);
        assert_eq!(l.sum_us, 98 * 40 + 700 + 80_000);
        assert_eq!(Latency::default().quantile_bound_us(0.5), None);
    }
}
