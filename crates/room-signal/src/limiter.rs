//! Token-bucket rate limits (governor's GCRA; burst equals the per-second rate,
//! as the contract says). A rejected check consumes nothing.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// One bucket refilling `per_sec` cells per second with a burst of `per_sec`.
/// A rate of 0 means unlimited.
pub struct Limiter(Option<DefaultDirectRateLimiter>);

impl Limiter {
    pub fn per_second(per_sec: u32) -> Self {
        Limiter(NonZeroU32::new(per_sec).map(|n| RateLimiter::direct(Quota::per_second(n))))
    }

    /// Take one cell if there is one.
    pub fn check(&self) -> bool {
        self.0.as_ref().is_none_or(|l| l.check().is_ok())
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limiter")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_equals_rate() {
        let l = Limiter::per_second(3);
        assert!(l.check() && l.check() && l.check());
        assert!(!l.check());
        let unlimited = Limiter::per_second(0);
        assert!((0..10_000).all(|_| unlimited.check()));
    }
}
