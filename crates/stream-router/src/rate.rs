//! A track's received bitrate, measured over the interval between two
//! [`crate::Router::measure`] calls (the caller's housekeeping period):
//! counters only, nothing per packet.

use std::time::Instant;

/// Bytes seen at the last sample and the rate since the one before.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RateMeter {
    last: Option<(Instant, u64)>,
    bits_per_second: u64,
}

impl RateMeter {
    /// Take a sample of the cumulative byte counter `bytes` at `now`.
    /// Samples closer than 100 ms to the last one are ignored (too short
    /// an interval to say anything).
    pub(crate) fn sample(&mut self, bytes: u64, now: Instant) {
        match self.last {
            None => self.last = Some((now, bytes)),
            Some((at, before)) => {
                let elapsed = now.saturating_duration_since(at);
                if elapsed.as_millis() < 100 {
                    return;
                }
                let bits = bytes.saturating_sub(before).saturating_mul(8) as u128;
                self.bits_per_second = u64::try_from(bits * 1_000_000 / elapsed.as_micros().max(1))
                    .unwrap_or(u64::MAX);
                self.last = Some((now, bytes));
            }
        }
    }

    /// The rate over the last measured interval (0 before two samples).
    pub(crate) fn bits_per_second(&self) -> u64 {
        self.bits_per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rate_over_the_last_interval() {
        let t0 = Instant::now();
        let mut m = RateMeter::default();
        m.sample(1_000, t0);
        assert_eq!(m.bits_per_second(), 0);
        m.sample(63_500, t0 + Duration::from_millis(500));
        assert_eq!(m.bits_per_second(), 1_000_000);
        // Too soon: ignored, the last rate stays.
        m.sample(70_000, t0 + Duration::from_millis(550));
        assert_eq!(m.bits_per_second(), 1_000_000);
        m.sample(63_500, t0 + Duration::from_millis(1_500));
        assert_eq!(m.bits_per_second(), 0);
    }
}
