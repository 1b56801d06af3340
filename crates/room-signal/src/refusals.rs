//! Counts of requests refused by a resource limit, per app: what the
//! limits cost users, without a log line per refusal (a client could drive
//! those). `/metrics` (issue 13) will export them; until then tests and
//! operators read them through [`Hub::refusals`](crate::Hub::refusals).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::code;

/// The limit codes counted, in the order [`Refusals::snapshot`] reports.
pub const COUNTED: [u32; 5] = [
    code::APP_SESSION_LIMIT,
    code::TOO_MANY_PUBLISHES,
    code::TOO_MANY_PLAYS,
    code::TOO_MANY_CONNECTING,
    code::PEER_LIMIT,
];

/// One counter per limit code of [`COUNTED`].
#[derive(Debug, Default)]
pub struct Refusals {
    counts: [AtomicU64; COUNTED.len()],
}

impl Refusals {
    /// Count a refusal with `code`; other codes are not limits and are
    /// ignored. Returns whether it was counted.
    pub fn count(&self, code: u32) -> bool {
        match COUNTED.iter().position(|c| *c == code) {
            Some(i) => {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Refusals so far of `code`.
    pub fn get(&self, code: u32) -> u64 {
        COUNTED
            .iter()
            .position(|c| *c == code)
            .map_or(0, |i| self.counts[i].load(Ordering::Relaxed))
    }

    /// (code, count) for every counted code.
    pub fn snapshot(&self) -> Vec<(u32, u64)> {
        COUNTED
            .iter()
            .zip(&self.counts)
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_limit_codes_only() {
        let r = Refusals::default();
        assert!(r.count(code::PEER_LIMIT));
        assert!(r.count(code::PEER_LIMIT));
        assert!(r.count(code::TOO_MANY_PLAYS));
        assert!(!r.count(code::MALFORMED));
        assert_eq!(r.get(code::PEER_LIMIT), 2);
        assert_eq!(r.get(code::TOO_MANY_PLAYS), 1);
        assert_eq!(r.get(code::MALFORMED), 0);
        assert_eq!(r.snapshot().iter().map(|(_, n)| n).sum::<u64>(), 3);
    }
}
