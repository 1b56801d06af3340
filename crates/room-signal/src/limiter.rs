//! Token-bucket rate limits (governor's GCRA; burst equals the per-second rate,
//! as the contract says). A rejected check consumes nothing — also when two
//! buckets guard one call ([`check_all`]): governor's state lives in a store of
//! ours that can be snapshotted and restored, so a call refused by the second
//! bucket gives back the cell the first one took.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use governor::clock::DefaultClock;
use governor::nanos::Nanos;
use governor::state::{NotKeyed, StateStore};
use governor::{Quota, RateLimiter};

/// GCRA state: the theoretical arrival time, `u64::MAX` before the first cell.
#[derive(Debug, Clone, Default)]
struct Tat(Arc<AtomicU64>);

const UNSET: u64 = u64::MAX;

impl Tat {
    fn new() -> Self {
        Tat(Arc::new(AtomicU64::new(UNSET)))
    }
}

impl StateStore for Tat {
    type Key = NotKeyed;

    fn measure_and_replace<T, F, E>(&self, _key: &NotKeyed, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut prev = self.0.load(Ordering::Acquire);
        loop {
            let old = (prev != UNSET).then(|| Nanos::from(prev));
            let (outcome, next) = f(old)?;
            match self.0.compare_exchange_weak(
                prev,
                next.as_u64(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(outcome),
                Err(actual) => prev = actual,
            }
        }
    }
}

/// One bucket refilling `per_sec` cells per second with a burst of `per_sec`.
/// A rate of 0 means unlimited.
pub struct Limiter(Option<(RateLimiter<NotKeyed, Tat, DefaultClock>, Tat)>);

impl Limiter {
    pub fn per_second(per_sec: u32) -> Self {
        Limiter(NonZeroU32::new(per_sec).map(|n| {
            let state = Tat::new();
            let limiter =
                RateLimiter::new(Quota::per_second(n), state.clone(), DefaultClock::default());
            (limiter, state)
        }))
    }

    /// Take one cell if there is one.
    pub fn check(&self) -> bool {
        self.0.as_ref().is_none_or(|(l, _)| l.check().is_ok())
    }

    fn snapshot(&self) -> Option<u64> {
        self.0.as_ref().map(|(_, s)| s.0.load(Ordering::Acquire))
    }

    fn restore(&self, snap: Option<u64>) {
        if let (Some((_, s)), Some(v)) = (&self.0, snap) {
            s.0.store(v, Ordering::Release);
        }
    }
}

/// Take one cell from every bucket, or from none of them. Callers hold the
/// lock that serializes these buckets (a room's), so a restore cannot undo
/// someone else's cell.
pub fn check_all(buckets: &[&Limiter]) -> bool {
    first_refusal(buckets).is_none()
}

/// [`check_all`], telling which bucket refused (its index).
pub fn first_refusal(buckets: &[&Limiter]) -> Option<usize> {
    let mut taken: [Option<u64>; 4] = [None; 4];
    for (i, bucket) in buckets.iter().enumerate() {
        let snap = bucket.snapshot();
        if !bucket.check() {
            for (b, s) in buckets.iter().zip(taken).take(i) {
                b.restore(s);
            }
            return Some(i);
        }
        if let Some(slot) = taken.get_mut(i) {
            *slot = snap;
        }
    }
    None
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

    #[test]
    fn a_refused_pair_takes_nothing() {
        let user = Limiter::per_second(2);
        let room = Limiter::per_second(1);
        assert!(check_all(&[&user, &room]));
        // The room bucket is empty: refused, and the user's cell is given back.
        assert!(!check_all(&[&user, &room]));
        assert!(!check_all(&[&user, &room]));
        // So the user still has exactly one cell.
        assert!(user.check());
        assert!(!user.check());
    }
}
