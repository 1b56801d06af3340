//! Sequence numbers across packets a down-track drops on purpose (SVC
//! layers above its operating point, `svc.rs`).
//!
//! A player must not see a gap where a packet was dropped on purpose: it
//! would NACK it and, never getting it, give up on the frame. So each
//! dropped packet shifts the offset of every later one down by one (see
//! `Rewriter::skip`), which splits an epoch into *segments*, each a run
//! of source numbers with one offset. The rewriter holds the running
//! segment (the hot path never looks further); the finished ones are kept
//! here, newest last, for the two things that need older offsets: a
//! packet that arrives late (reordered) into a finished segment, and a
//! NACK for a number sent in one.
//!
//! Fixed capacity: [`SEGMENTS`] segments (1 KiB, allocated the first time
//! a down-track drops a packet). Dropping one temporal layer out of three
//! finishes about 15 segments per second, so this covers the retransmit
//! window; older segments are forgotten and their numbers are no longer
//! answered.

/// Finished segments kept per down-track.
pub(crate) const SEGMENTS: usize = 64;

/// A finished run of source numbers `[from, from + len)` with its offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) from: i64,
    pub(crate) len: u32,
    pub(crate) seq_offset: u16,
}

impl Segment {
    /// The output number of source packet `ext` (in this segment).
    fn contains(&self, ext: i64) -> bool {
        ext >= self.from && ext - self.from < i64::from(self.len)
    }
}

/// The finished segments of the running epoch (a ring, newest last).
#[derive(Debug)]
pub(crate) struct Skips {
    segs: [Segment; SEGMENTS],
    /// Index of the oldest segment and how many there are.
    head: usize,
    len: usize,
}

impl Default for Skips {
    fn default() -> Self {
        Skips {
            segs: [Segment::default(); SEGMENTS],
            head: 0,
            len: 0,
        }
    }
}

impl Skips {
    /// Forgets every segment (a new epoch).
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Appends a finished segment, forgetting the oldest when full.
    pub(crate) fn push(&mut self, seg: Segment) {
        if seg.len == 0 {
            return;
        }
        if self.len == SEGMENTS {
            self.head = (self.head + 1) % SEGMENTS;
            self.len -= 1;
        }
        self.segs[(self.head + self.len) % SEGMENTS] = seg;
        self.len += 1;
    }

    fn newest_first(&self) -> impl Iterator<Item = &Segment> + '_ {
        (0..self.len)
            .rev()
            .map(move |i| &self.segs[(self.head + i) % SEGMENTS])
    }

    /// The sequence offset of source packet `ext`, if it lies in a kept
    /// segment.
    pub(crate) fn offset_of(&self, ext: i64) -> Option<u16> {
        self.newest_first()
            .find(|s| s.contains(ext))
            .map(|s| s.seq_offset)
    }

    /// The source packet a player numbered `out_seq`, if it was sent in a
    /// kept segment (the newest such one).
    pub(crate) fn to_source(&self, out_seq: u16) -> Option<i64> {
        self.newest_first().find_map(|s| {
            let src = out_seq.wrapping_sub(s.seq_offset);
            let mut d = i64::from(src.wrapping_sub(s.from as u16));
            // A segment longer than the number space: its latest match.
            while d + 65_536 < i64::from(s.len) {
                d += 65_536;
            }
            (d < i64::from(s.len)).then_some(s.from + d)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_offsets_and_sources() {
        let mut s = Skips::default();
        s.push(Segment {
            from: 100,
            len: 3,
            seq_offset: 1000,
        });
        // 103 dropped.
        s.push(Segment {
            from: 104,
            len: 2,
            seq_offset: 999,
        });
        s.push(Segment {
            from: 106,
            len: 0,
            seq_offset: 998,
        });
        assert_eq!(s.len, 2);
        assert_eq!(s.offset_of(100), Some(1000));
        assert_eq!(s.offset_of(102), Some(1000));
        assert_eq!(s.offset_of(103), None);
        assert_eq!(s.offset_of(105), Some(999));
        assert_eq!(s.offset_of(99), None);
        // Output 1100..=1102 then 1103..=1104.
        assert_eq!(s.to_source(1102), Some(102));
        assert_eq!(s.to_source(1103), Some(104));
        assert_eq!(s.to_source(1104), Some(105));
        assert_eq!(s.to_source(1105), None);
        assert_eq!(s.to_source(1099), None);
        // Across the 16-bit wrap.
        let mut w = Skips::default();
        w.push(Segment {
            from: 65_534,
            len: 4,
            seq_offset: 10,
        });
        assert_eq!(w.to_source(8), Some(65_534));
        assert_eq!(w.to_source(11), Some(65_537));
        w.clear();
        assert_eq!(w.to_source(8), None);
    }

    #[test]
    fn forgets_the_oldest_when_full() {
        let mut s = Skips::default();
        for i in 0..(SEGMENTS as i64 + 5) {
            s.push(Segment {
                from: i * 10,
                len: 9,
                seq_offset: (1000 - i) as u16,
            });
        }
        assert_eq!(s.len, SEGMENTS);
        assert_eq!(s.offset_of(0), None);
        assert_eq!(s.offset_of(49), None);
        assert_eq!(s.offset_of(50), Some(995));
        let last = SEGMENTS as i64 + 4;
        assert_eq!(s.offset_of(last * 10 + 8), Some((1000 - last) as u16));
    }
}
