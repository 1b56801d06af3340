//! Sequence-indexed rings for loss repair: the per-track retransmit cache and
//! the per-down-track NACK rate limiter.
//!
//! Both are power-of-two arrays indexed by `sequence & mask`, allocated once
//! when the track or down-track is created. A slot remembers the full
//! (extended) sequence number it holds, so a lookup never returns a packet
//! that merely shares the low bits.

use std::time::{Duration, Instant};

use crate::packet::RtpPacket;

/// Retransmit-cache size for video tracks (packets).
pub const VIDEO_CACHE_PACKETS: usize = 1024;
/// Retransmit-cache size for audio tracks (packets).
pub const AUDIO_CACHE_PACKETS: usize = 128;
/// The same player sequence number is retransmitted to the same down-track
/// at most once per this interval; repeated NACKs inside it are ignored.
pub const NACK_RETRANSMIT_INTERVAL: Duration = Duration::from_millis(100);

/// The last `N` packets of a track keyed by extended sequence number.
/// Storing the [`RtpPacket`] means a retransmission is a `Bytes` clone.
pub(crate) struct RetransmitCache {
    slots: Box<[Option<(i64, RtpPacket)>]>,
    mask: usize,
}

impl RetransmitCache {
    /// A cache of `size` packets, rounded up to a power of two.
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(1).next_power_of_two();
        RetransmitCache {
            slots: (0..size).map(|_| None).collect(),
            mask: size - 1,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn index(&self, ext: i64) -> usize {
        (ext as u64 as usize) & self.mask
    }

    /// Stores `pkt` under `ext`, evicting whatever shared its slot, and
    /// returns a reference to the stored packet. (The `Err` arm, which hands
    /// the packet back, is unreachable since the index is masked; boxing it
    /// would cost an allocation, hence the lint exception.)
    #[allow(clippy::result_large_err)]
    pub(crate) fn insert(&mut self, ext: i64, pkt: RtpPacket) -> Result<&RtpPacket, RtpPacket> {
        let i = self.index(ext);
        match self.slots.get_mut(i) {
            Some(slot) => Ok(&slot.insert((ext, pkt)).1),
            None => Err(pkt),
        }
    }

    /// The packet with extended sequence number `ext`, if still cached.
    pub(crate) fn get(&self, ext: i64) -> Option<&RtpPacket> {
        match self.slots.get(self.index(ext))? {
            Some((e, p)) if *e == ext => Some(p),
            _ => None,
        }
    }
}

/// Remembers when each recent player sequence number was last retransmitted
/// to one down-track (times in ms since the first retransmission, wrapping).
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
            slots: vec![(EMPTY, 0); size].into_boxed_slice(),
            mask: size - 1,
            base: None,
        }
    }

    /// Whether `seq` may be retransmitted at `now`; if so, records it.
    pub(crate) fn allow(&mut self, seq: u16, now: Instant) -> bool {
        let base = *self.base.get_or_insert(now);
        let now_ms = now.saturating_duration_since(base).as_millis() as u32;
        let interval_ms = NACK_RETRANSMIT_INTERVAL.as_millis() as u32;
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

    fn pkt(seq: u16) -> RtpPacket {
        RtpPacket {
            sequence_number: seq,
            ..RtpPacket::default()
        }
    }

    #[test]
    fn cache_hits_only_exact_sequence() {
        let mut c = RetransmitCache::new(100);
        assert_eq!(c.capacity(), 128);
        for ext in 0..200i64 {
            let p = c.insert(ext, pkt(ext as u16)).unwrap();
            assert_eq!(p.sequence_number, ext as u16);
        }
        assert_eq!(c.get(199).unwrap().sequence_number, 199);
        assert_eq!(c.get(72).unwrap().sequence_number, 72);
        assert!(c.get(71).is_none()); // evicted by 199
        assert!(c.get(200).is_none()); // not yet seen
        assert!(c.get(-1).is_none());
        assert!(c.get(i64::MIN).is_none());
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
