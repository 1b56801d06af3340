//! The router's ready list: down-tracks with queued packets, in the order
//! they became ready, each at most once (the down-track's `in_ready` flag).
//!
//! A `Vec` plus a head index instead of a `VecDeque`: push and pop are a
//! couple of instructions and inline into the data path. The vector's
//! capacity is kept at least the number of down-tracks, and the consumed
//! prefix is discarded when the list empties or the vector is full, so it
//! never reallocates on the packet path.

use crate::slab::DownTrackHandle;

#[derive(Default)]
pub(crate) struct ReadyList {
    buf: Vec<DownTrackHandle>,
    head: usize,
}

impl ReadyList {
    /// Makes room for `total` entries (the number of down-tracks).
    pub(crate) fn reserve(&mut self, total: usize) {
        self.compact();
        self.buf.reserve(total.saturating_sub(self.buf.len()));
    }

    fn compact(&mut self) {
        if self.head > 0 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }

    #[inline]
    pub(crate) fn push_back(&mut self, h: DownTrackHandle) {
        if self.buf.len() == self.buf.capacity() {
            self.compact();
        }
        self.buf.push(h);
    }

    /// Puts back the entry just popped.
    #[inline]
    pub(crate) fn push_front(&mut self, h: DownTrackHandle) {
        match self.head.checked_sub(1) {
            Some(i) => {
                self.head = i;
                if let Some(slot) = self.buf.get_mut(i) {
                    *slot = h;
                }
            }
            None => self.buf.insert(0, h),
        }
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<DownTrackHandle> {
        let h = *self.buf.get(self.head)?;
        self.head += 1;
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        }
        Some(h)
    }

    pub(crate) fn retain(&mut self, f: impl FnMut(&DownTrackHandle) -> bool) {
        self.compact();
        self.buf.retain(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slab::Slab;

    #[test]
    fn fifo_without_growth() {
        let mut slab: Slab<()> = Slab::default();
        let h: Vec<DownTrackHandle> = (0..4).map(|_| DownTrackHandle(slab.insert(()))).collect();
        let mut r = ReadyList::default();
        r.reserve(4);
        let cap = r.buf.capacity();
        assert_eq!(r.pop_front(), None);
        for round in 0..50 {
            // Partial drains keep a consumed prefix; pushes must compact it.
            r.push_back(h[round % 4]);
            r.push_back(h[(round + 1) % 4]);
            assert_eq!(r.pop_front(), Some(h[round % 4]));
            r.push_front(h[round % 4]);
            assert_eq!(r.pop_front(), Some(h[round % 4]));
            assert_eq!(r.pop_front(), Some(h[(round + 1) % 4]));
            r.push_back(h[2]);
            r.push_back(h[3]);
            assert_eq!(r.pop_front(), Some(h[2]));
            assert_eq!(r.buf.capacity(), cap);
            r.retain(|_| false);
        }
        r.push_back(h[0]);
        r.push_back(h[1]);
        r.retain(|&x| x != h[0]);
        assert_eq!(r.pop_front(), Some(h[1]));
        assert_eq!(r.pop_front(), None);
    }
}
