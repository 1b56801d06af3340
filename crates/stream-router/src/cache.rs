//! Sequence-indexed rings for loss repair: the per-track retransmit cache and
//! the per-down-track NACK rate limiter.
//!
//! Both are power-of-two arrays indexed by `sequence & mask`, allocated once:
//! the cache when its track is created, the limiter at the down-track's
//! first NACK. A slot remembers the full
//! (extended) sequence number it holds, so a lookup never returns a packet
//! that merely shares the low bits.

use std::time::{Duration, Instant};

/// Retransmit-cache size for video tracks (packets).
pub const VIDEO_CACHE_PACKETS: usize = 1024;
/// Retransmit-cache size for audio tracks (packets).
pub const AUDIO_CACHE_PACKETS: usize = 128;
/// The same player sequence number is retransmitted to the same down-track
/// at most once per this interval; repeated NACKs inside it are ignored.
pub const NACK_RETRANSMIT_INTERVAL: Duration = Duration::from_millis(100);

/// The last `N` packets of a track keyed by extended sequence number. A slot
/// holds the packet's id in the router's [`Pool`](crate::pool::Pool) (and
/// one reference to it), so a retransmission is a reference-count bump.
pub(crate) struct RetransmitCache {
    slots: Box<[Option<(i64, u32)>]>,
    mask: usize,
}

impl RetransmitCache {
    /// A cache of `size` packets, rounded up to a power of two.
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(1).next_power_of_two();
        RetransmitCache {
            slots: vec![None; size].into_boxed_slice(),
            mask: size - 1,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn index(&self, ext: i64) -> usize {
        (ext as u64 as usize) & self.mask
    }

    /// Stores pool id `id` under `ext`; returns the id it evicted, whose
    /// reference the caller must release.
    pub(crate) fn insert(&mut self, ext: i64, id: u32) -> Option<u32> {
        let i = self.index(ext);
        let slot = self.slots.get_mut(i)?;
        slot.replace((ext, id)).map(|(_, old)| old)
    }

    /// The pool id of the packet with extended sequence number `ext`, if
    /// still cached.
    #[inline]
    pub(crate) fn get(&self, ext: i64) -> Option<u32> {
        match self.slots.get(self.index(ext))? {
            Some((e, id)) if *e == ext => Some(*id),
            _ => None,
        }
    }

    /// The pool id held by the slot `ext` maps to, whatever its sequence
    /// number (the packet `insert(ext, ..)` would evict).
    #[inline]
    pub(crate) fn occupant(&self, ext: i64) -> Option<u32> {
        self.slots.get(self.index(ext))?.map(|(_, id)| id)
    }

    /// Empties the cache, handing every held pool id to `release`.
    pub(crate) fn drain(&mut self, mut release: impl FnMut(u32)) {
        for slot in self.slots.iter_mut() {
            if let Some((_, id)) = slot.take() {
                release(id);
            }
        }
    }
}

/// Remembers when each recent player sequence number was last retransmitted
/// to one down-track (times in ms since the first retransmission, wrapping).
/// The slots (8 bytes per cached packet: 8 KiB for video) are allocated by
/// the first NACK: a player that never loses a packet never pays for them.
pub(crate) struct NackLimiter {
    slots: Box<[(u32, u32)]>,
    mask: usize,
    base: Option<Instant>,
}

const EMPTY: u32 = u32::MAX;

impl NackLimiter {
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(1).next_power_of_two();
        NackLimiter {
            slots: Box::default(),
            mask: size - 1,
            base: None,
        }
    }

    /// Whether `seq` may be retransmitted at `now`; if so, records it.
    pub(crate) fn allow(&mut self, seq: u16, now: Instant) -> bool {
        let base = *self.base.get_or_insert(now);
        let now_ms = now.saturating_duration_since(base).as_millis() as u32;
        let interval_ms = NACK_RETRANSMIT_INTERVAL.as_millis() as u32;
        if self.slots.is_empty() {
            self.slots = vec![(EMPTY, 0); self.mask + 1].into_boxed_slice();
        }
        let Some(slot) = self.slots.get_mut(usize::from(seq) & self.mask) else {
            return false;
        };
        if slot.0 == u32::from(seq) && now_ms.wrapping_sub(slot.1) < interval_ms {
            return false;
        }
        *slot = (u32::from(seq), now_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_hits_only_exact_sequence() {
        let mut c = RetransmitCache::new(100);
        assert_eq!(c.capacity(), 128);
        for ext in 0..200i64 {
            let evicted = c.insert(ext, ext as u32);
            assert_eq!(evicted, (ext >= 128).then(|| (ext - 128) as u32));
            assert_eq!(c.get(ext), Some(ext as u32));
        }
        assert_eq!(c.get(199), Some(199));
        assert_eq!(c.get(72), Some(72));
        assert!(c.get(71).is_none()); // evicted by 199
        assert!(c.get(200).is_none()); // not yet seen
        assert!(c.get(-1).is_none());
        assert!(c.get(i64::MIN).is_none());
        let mut released = Vec::new();
        c.drain(|id| released.push(id));
        assert_eq!(released.len(), 128);
        assert!(c.get(199).is_none());
    }

    #[test]
    fn limiter_once_per_interval() {
        let t0 = Instant::now();
        let mut l = NackLimiter::new(16);
        assert!(l.allow(5, t0));
        assert!(!l.allow(5, t0));
        assert!(l.allow(6, t0));
        assert!(!l.allow(5, t0 + Duration::from_millis(99)));
        assert!(l.allow(5, t0 + Duration::from_millis(100)));
        assert!(!l.allow(5, t0 + Duration::from_millis(150)));
        // 21 shares slot 5 (mask 15): evicts the record for 5.
        assert!(l.allow(21, t0 + Duration::from_millis(150)));
        assert!(l.allow(5, t0 + Duration::from_millis(150)));
        // A time before the base saturates to 0 instead of panicking.
        assert!(l.allow(9, t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0)));
    }
}
