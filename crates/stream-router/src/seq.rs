//! Sequence-number and timestamp rewriting for one down-track.
//!
//! A player must see one continuous RTP stream even though the publisher
//! behind it may change (a new track under the same stream key, a stream
//! re-added after removal). The [`Rewriter`] keeps an *epoch* per source:
//! fixed offsets `out = in + offset` (wrapping), chosen when the epoch's
//! first packet is forwarded so that the output continues at `last seq + 1`
//! and `last ts + elapsed wall time x clock rate` (at least +1).
//!
//! Input sequence numbers are first *extended* to 64 bits per track
//! ([`SeqExtender`]), which makes "older than the epoch start" and "inside
//! the retransmit window" plain integer comparisons across 16-bit wraps.

use std::time::{Duration, Instant};

use crate::slab::TrackHandle;

/// Extends 16-bit RTP sequence numbers to a monotonic 64-bit space using
/// serial-number arithmetic around the highest number seen.
#[derive(Debug, Default)]
pub(crate) struct SeqExtender {
    highest: Option<i64>,
}

impl SeqExtender {
    /// The extended value of `seq` (the closest one to the highest seen),
    /// updating the highest.
    pub(crate) fn extend(&mut self, seq: u16) -> i64 {
        let ext = self.peek(seq);
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }

    /// Like [`SeqExtender::extend`] without updating state.
    pub(crate) fn peek(&self, seq: u16) -> i64 {
        match self.highest {
            None => i64::from(seq),
            Some(h) => {
                let delta = seq.wrapping_sub(h as u16) as i16;
                h + i64::from(delta)
            }
        }
    }

    pub(crate) fn highest(&self) -> Option<i64> {
        self.highest
    }
}

/// SplitMix64: a tiny deterministic mixer used to derive a down-track's
/// initial sequence number and timestamp from its SSRC.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// RTP clock ticks in `elapsed` at `clock_rate`, clamped to 1..=2^31-1 so the
/// new timestamp is always strictly "after" the previous one in RTP serial
/// arithmetic.
pub(crate) fn elapsed_ticks(elapsed: Duration, clock_rate: u32) -> u32 {
    let ticks = elapsed.as_nanos().saturating_mul(u128::from(clock_rate)) / 1_000_000_000;
    ticks.clamp(1, i32::MAX as u128) as u32
}

/// Offsets of the current epoch plus output continuity across epochs.
///
/// Flat and `#[repr(C)]` (56 bytes): everything a forwarded packet reads
/// or writes sits together at the start of the down-track. `last_at` is a
/// plain `Instant` so that its niche (the largest in `DownTrack`) is the one
/// `Option<DownTrack>` uses, keeping the slab's occupancy check on the same
/// cache line.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Rewriter {
    /// When the output position was produced (meaningless until
    /// `has_last`).
    last_at: Instant,
    /// Extended sequence number of the epoch's first and highest packets.
    first_ext: i64,
    highest_ext: i64,
    /// Source track of the epoch (meaningless unless `has_epoch`).
    track: TrackHandle,
    ts_offset: u32,
    /// The output position: the highest sequence number sent so far and
    /// its timestamp; before anything was sent, the initial ones.
    last_ts: u32,
    seq_offset: u16,
    last_seq: u16,
    has_epoch: bool,
    has_last: bool,
    /// The packet at `last_seq` ends a frame (its marker as sent): where
    /// padding may go (`insert`).
    last_marker: bool,
}

impl Rewriter {
    /// A rewriter whose very first output seq/ts derive from `seed`.
    pub(crate) fn new(seed: u32) -> Self {
        let r = splitmix64(u64::from(seed));
        Rewriter {
            last_at: Instant::now(),
            first_ext: 0,
            highest_ext: 0,
            track: TrackHandle(crate::slab::RawHandle::NONE),
            ts_offset: 0,
            last_ts: (r >> 32) as u32,
            seq_offset: 0,
            last_seq: r as u16,
            has_epoch: false,
            has_last: false,
            last_marker: false,
        }
    }

    /// Track of the running epoch, if forwarding has started.
    #[inline]
    pub(crate) fn epoch_track(&self) -> Option<TrackHandle> {
        self.has_epoch.then_some(self.track)
    }

    /// Ends the epoch (the source changed); output continuity is kept.
    pub(crate) fn reset(&mut self) {
        self.has_epoch = false;
    }

    /// Starts an epoch whose first forwarded packet is `(ext, seq, ts)` of
    /// `track`, and returns its rewritten `(seq, ts)`.
    pub(crate) fn start(
        &mut self,
        track: TrackHandle,
        ext: i64,
        seq: u16,
        ts: u32,
        clock_rate: u32,
        now: Instant,
    ) -> (u16, u32) {
        let (out_seq, out_ts) = if self.has_last {
            let ticks = elapsed_ticks(now.saturating_duration_since(self.last_at), clock_rate);
            (
                self.last_seq.wrapping_add(1),
                self.last_ts.wrapping_add(ticks),
            )
        } else {
            (self.last_seq, self.last_ts)
        };
        self.track = track;
        self.seq_offset = out_seq.wrapping_sub(seq);
        self.ts_offset = out_ts.wrapping_sub(ts);
        self.first_ext = ext;
        self.highest_ext = ext;
        self.has_epoch = true;
        self.last_seq = out_seq;
        self.last_ts = out_ts;
        self.last_at = now;
        self.has_last = true;
        (out_seq, out_ts)
    }

    /// Rewrites a packet of the running epoch. `None` when there is no
    /// epoch or the packet predates the epoch's first packet (its output
    /// number would collide with the previous source's).
    #[inline]
    pub(crate) fn rewrite(
        &mut self,
        ext: i64,
        seq: u16,
        ts: u32,
        now: Instant,
    ) -> Option<(u16, u32)> {
        if !self.has_epoch || ext < self.first_ext {
            return None;
        }
        let out = (
            seq.wrapping_add(self.seq_offset),
            ts.wrapping_add(self.ts_offset),
        );
        if ext > self.highest_ext {
            self.highest_ext = ext;
            self.last_seq = out.0;
            self.last_ts = out.1;
            self.last_at = now;
        }
        Some(out)
    }

    /// Drops source packet `ext` on purpose (an SVC layer the player does
    /// not take): later packets are numbered one lower, so the player sees
    /// no gap. This finishes the running segment (returned, for
    /// `skips.rs`; empty when nothing was forwarded since the last skip)
    /// and starts the next one after `ext`. `None` (nothing changes) when
    /// `ext` is not past the highest packet seen: its number is taken, the
    /// player will see a gap.
    pub(crate) fn skip(&mut self, ext: i64) -> Option<crate::skips::Segment> {
        if !self.has_epoch || ext <= self.highest_ext {
            return None;
        }
        let seg = crate::skips::Segment {
            from: self.first_ext,
            len: u32::try_from(ext - self.first_ext).unwrap_or(u32::MAX),
            seq_offset: self.seq_offset,
        };
        self.first_ext = ext + 1;
        self.highest_ext = ext;
        self.seq_offset = self.seq_offset.wrapping_sub(1);
        Some(seg)
    }

    /// Numbers a packet of the router's own (padding) right after the
    /// last one sent: the media after it move up by one. Finishes the
    /// running segment (returned, as for [`skip`](Self::skip)) and returns
    /// the new packet's `(seq, ts)` (the last one's timestamp). `None`
    /// before anything was forwarded in this epoch.
    pub(crate) fn insert(&mut self) -> Option<(u16, u32, crate::skips::Segment)> {
        // Between two frames only: a receiver assembles a frame from
        // consecutive numbers, and padding inside one would break it.
        if !self.has_epoch || !self.has_last || !self.last_marker {
            return None;
        }
        let seg = crate::skips::Segment {
            from: self.first_ext,
            len: u32::try_from(self.highest_ext + 1 - self.first_ext).unwrap_or(0),
            seq_offset: self.seq_offset,
        };
        self.first_ext = self.highest_ext + 1;
        self.seq_offset = self.seq_offset.wrapping_add(1);
        self.last_seq = self.last_seq.wrapping_add(1);
        Some((self.last_seq, self.last_ts, seg))
    }

    /// The packet just numbered `seq` was queued with `marker`: if it is
    /// the newest, it tells whether the output stands between frames.
    #[inline]
    pub(crate) fn note_marker(&mut self, seq: u16, marker: bool) {
        if seq == self.last_seq {
            self.last_marker = marker;
        }
    }

    /// Whether `ext` lies before the running segment (a reordered packet,
    /// numbered by an older segment if any).
    #[inline]
    pub(crate) fn before_segment(&self, ext: i64) -> bool {
        self.has_epoch && ext < self.first_ext
    }

    /// Maps an output (player) sequence number back to the source's
    /// extended sequence number, if it belongs to the running segment and
    /// was already forwarded (or skipped as lost) in it.
    pub(crate) fn to_source(&self, out_seq: u16) -> Option<i64> {
        if !self.has_epoch || !self.has_last {
            return None;
        }
        let src = out_seq.wrapping_sub(self.seq_offset);
        let delta = src.wrapping_sub(self.highest_ext as u16) as i16;
        let ext = self.highest_ext + i64::from(delta);
        (self.first_ext..=self.highest_ext)
            .contains(&ext)
            .then_some(ext)
    }

    /// Rewritten `(seq, ts)` of source packet `(seq, ts)` numbered with
    /// sequence offset `seq_offset` (that of its segment).
    pub(crate) fn map_with(&self, seq: u16, ts: u32, seq_offset: u16) -> Option<(u16, u32)> {
        self.has_epoch.then(|| {
            (
                seq.wrapping_add(seq_offset),
                ts.wrapping_add(self.ts_offset),
            )
        })
    }

    /// Translates a source RTP time (e.g. from a sender report).
    pub(crate) fn rtp_time(&self, ts: u32) -> Option<u32> {
        self.has_epoch.then(|| ts.wrapping_add(self.ts_offset))
    }

    /// The first output `(seq, ts)` of a rewriter seeded with `seed`.
    #[cfg(test)]
    pub(crate) fn initial(seed: u32) -> (u16, u32) {
        let r = Rewriter::new(seed);
        (r.last_seq, r.last_ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slab::{RawHandle, Slab};

    fn track() -> TrackHandle {
        let mut s: Slab<()> = Slab::default();
        let h: RawHandle = s.insert(());
        TrackHandle(h)
    }

    #[test]
    fn extender_wraps_and_reorders() {
        let mut x = SeqExtender::default();
        assert_eq!(x.extend(65534), 65534);
        assert_eq!(x.extend(65535), 65535);
        assert_eq!(x.extend(0), 65536);
        assert_eq!(x.extend(65533), 65533); // late, before the wrap
        assert_eq!(x.highest(), Some(65536));
        assert_eq!(x.extend(5), 65541);
        assert_eq!(x.peek(65535), 65535);
        let mut y = SeqExtender::default();
        assert_eq!(y.extend(3), 3);
        assert_eq!(y.extend(65535), -1); // reordered across the wrap, backwards
        assert_eq!(y.highest(), Some(3));
    }

    #[test]
    fn ticks_clamped() {
        assert_eq!(elapsed_ticks(Duration::ZERO, 90_000), 1);
        assert_eq!(elapsed_ticks(Duration::from_millis(20), 48_000), 960);
        assert_eq!(elapsed_ticks(Duration::from_secs(1), 90_000), 90_000);
        assert_eq!(elapsed_ticks(Duration::from_secs(1), 0), 1);
        assert_eq!(elapsed_ticks(Duration::MAX, u32::MAX), i32::MAX as u32);
    }

    #[test]
    fn seed_is_deterministic() {
        assert_eq!(Rewriter::initial(1234), Rewriter::initial(1234));
        assert_ne!(Rewriter::initial(1234), Rewriter::initial(1235));
    }

    #[test]
    fn epochs_continue_output() {
        let t = track();
        let t0 = Instant::now();
        let mut r = Rewriter::new(7);
        assert_eq!(r.rewrite(0, 0, 0, t0), None);
        let (s0, ts0) = r.start(t, 100, 100, 5000, 90_000, t0);
        assert_eq!((s0, ts0), Rewriter::initial(7));
        assert_eq!(r.epoch_track(), Some(t));
        assert_eq!(
            r.rewrite(101, 101, 8000, t0),
            Some((s0.wrapping_add(1), ts0.wrapping_add(3000)))
        );
        // Reordered but inside the epoch: same offsets.
        assert_eq!(
            r.rewrite(103, 103, 8000, t0),
            Some((s0.wrapping_add(3), ts0.wrapping_add(3000)))
        );
        assert_eq!(
            r.rewrite(102, 102, 8000, t0),
            Some((s0.wrapping_add(2), ts0.wrapping_add(3000)))
        );
        // Before the epoch start: refused.
        assert_eq!(r.rewrite(99, 99, 2000, t0), None);
        assert_eq!(r.to_source(s0.wrapping_add(2)), Some(102));
        assert_eq!(r.to_source(s0.wrapping_sub(1)), None);
        assert_eq!(r.to_source(s0.wrapping_add(4)), None);
        assert_eq!(
            r.map_with(102, 8000, r.seq_offset),
            Some((s0.wrapping_add(2), ts0.wrapping_add(3000)))
        );
        assert_eq!(r.rtp_time(5000), Some(ts0));

        // New source 100 ms later: seq +1 after the highest, ts +9000.
        r.reset();
        assert_eq!(r.to_source(s0), None);
        assert_eq!(r.rtp_time(1), None);
        let t1 = t0 + Duration::from_millis(100);
        let (s1, ts1) = r.start(t, 40_000, 40_000, 1, 90_000, t1);
        assert_eq!(s1, s0.wrapping_add(4));
        assert_eq!(ts1, ts0.wrapping_add(3000).wrapping_add(9000));
        // Skipping 40_001 and 40_002: 40_003 follows 40_000 directly.
        let seg = r.skip(40_001).unwrap();
        assert_eq!((seg.from, seg.len), (40_000, 1));
        let seg = r.skip(40_002).unwrap();
        assert_eq!(seg.len, 0);
        assert_eq!(r.skip(40_002), None);
        assert!(r.before_segment(40_000));
        assert!(!r.before_segment(40_003));
        let (s3, _) = r.rewrite(40_003, 40_003, 1, t1).unwrap();
        assert_eq!(s3, s1.wrapping_add(1));
        assert_eq!(r.to_source(s3), Some(40_003));
        assert_eq!(r.to_source(s1), None);
        // And same instant: ts moves by at least one tick.
        r.reset();
        let (s2, ts2) = r.start(t, 0, 0, 0, 90_000, t1);
        assert_eq!((s2, ts2), (s3.wrapping_add(1), ts1.wrapping_add(1)));
    }
}
