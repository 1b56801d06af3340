//! A bounded FIFO ring buffer.
//!
//! Each down-track's outgoing queue is one of these. Pushing into a full
//! ring hands the value back instead of growing past its capacity, which is
//! how a slow player loses packets without ever blocking the publisher or
//! the other players. Items are small `Copy` entries (see
//! `downtrack::Entry`), so pushing and popping move a few bytes.
//!
//! The buffer starts at [`INITIAL_SLOTS`] and doubles when a push finds it
//! full, up to the capacity: a queue drained every loop turn holds one
//! turn's packets, a handful, so most players never pay for the 512 slots
//! (6 KiB) the SFU's default capacity would take up front. It grows only
//! when a queue holds more than it ever held before, so a steady state
//! allocates nothing.

/// Slots a ring allocates first (a power of two).
pub(crate) const INITIAL_SLOTS: usize = 16;

/// Bounded FIFO queue of small `Copy` items. The buffer is a power of two
/// (index = `pos & (len - 1)`), grown by doubling up to the capacity's
/// power of two; the logical capacity is exactly the one asked for. 32
/// bytes: `u32` positions.
pub(crate) struct Ring<T> {
    buf: Box<[T]>,
    mask: u32,
    cap: u32,
    head: u32,
    len: u32,
}

impl<T: Copy + Default> Ring<T> {
    /// A ring holding up to `capacity` items (at least 1, at most
    /// `u32::MAX`).
    pub(crate) fn new(capacity: usize) -> Self {
        let cap = u32::try_from(capacity.max(1)).unwrap_or(u32::MAX);
        let size = (cap as usize).next_power_of_two().min(INITIAL_SLOTS);
        Ring {
            buf: vec![T::default(); size].into_boxed_slice(),
            mask: (size - 1) as u32,
            cap,
            head: 0,
            len: 0,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.mask as usize
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap as usize
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Appends `value`, or returns it back when the ring is full.
    #[inline]
    pub(crate) fn push(&mut self, value: T) -> Result<(), T> {
        if self.len >= self.cap {
            return Err(value);
        }
        if self.len as usize == self.buf.len() {
            self.grow();
        }
        let i = (self.head as usize + self.len as usize) & self.mask();
        match self.buf.get_mut(i) {
            Some(slot) => {
                *slot = value;
                self.len += 1;
                Ok(())
            }
            None => Err(value),
        }
    }

    /// Doubles the buffer (never past the capacity's power of two: it is
    /// only called while `len < cap`), oldest item first.
    #[cold]
    fn grow(&mut self) {
        let size = (self.buf.len() * 2).min((self.cap as usize).next_power_of_two());
        let mut buf = vec![T::default(); size].into_boxed_slice();
        for (slot, item) in buf.iter_mut().zip(self.iter()) {
            *slot = *item;
        }
        self.buf = buf;
        self.mask = (size - 1) as u32;
        self.head = 0;
    }

    /// Slots allocated now (tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Removes the oldest item.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = *self.buf.get(self.head as usize)?;
        self.head = ((self.head as usize + 1) & self.mask()) as u32;
        self.len -= 1;
        Some(value)
    }

    /// The queued items, oldest first.
    #[inline]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        let (head, mask) = (self.head as usize, self.mask());
        (0..self.len as usize).filter_map(move |i| self.buf.get((head + i) & mask))
    }

    /// Forgets every queued item. The next item goes to the start of the
    /// buffer, so a queue drained as fast as it fills stays in the same
    /// few cache lines.
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_with_wrap_and_overflow() {
        let mut r = Ring::new(3);
        assert_eq!(r.capacity(), 3);
        assert_eq!(r.len(), 0);
        for round in 0..5 {
            assert_eq!(r.push(round * 10), Ok(()));
            assert_eq!(r.push(round * 10 + 1), Ok(()));
            assert_eq!(r.push(round * 10 + 2), Ok(()));
            assert_eq!(r.push(99), Err(99));
            assert_eq!(r.len(), 3);
            assert_eq!(r.pop(), Some(round * 10));
            assert_eq!(r.push(round * 10 + 3), Ok(()));
            assert_eq!(r.pop(), Some(round * 10 + 1));
            assert_eq!(r.pop(), Some(round * 10 + 2));
            assert_eq!(r.pop(), Some(round * 10 + 3));
            assert_eq!(r.pop(), None);
        }
        r.push(1).unwrap();
        r.clear();
        assert_eq!(r.len(), 0);
        assert_eq!(r.iter().count(), 0);
        // Wrapped contents come out in order.
        let mut r = Ring::new(4);
        for i in 0..3 {
            r.push(i).unwrap();
        }
        r.pop();
        r.pop();
        for i in 3..6 {
            r.push(i).unwrap();
        }
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), [2, 3, 4, 5]);
    }

    #[test]
    fn grows_by_doubling_up_to_its_capacity_keeping_order() {
        let mut r = Ring::new(100);
        assert_eq!(r.allocated(), INITIAL_SLOTS);
        // Wrapped before it grows: the order survives the move.
        for i in 0..10 {
            r.push(i).unwrap();
        }
        for i in 0..10 {
            assert_eq!(r.pop(), Some(i));
        }
        for i in 0..100 {
            assert_eq!(r.push(i), Ok(()));
        }
        assert_eq!(r.push(100), Err(100));
        assert_eq!(r.allocated(), 128);
        assert_eq!(
            r.iter().copied().collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>()
        );
        for i in 0..100 {
            assert_eq!(r.pop(), Some(i));
        }
        // A small capacity never allocates past it.
        let r: Ring<u8> = Ring::new(3);
        assert_eq!(r.allocated(), 4);
    }

    #[test]
    fn zero_capacity_means_one() {
        let mut r = Ring::new(0);
        assert_eq!(r.push('a'), Ok(()));
        assert_eq!(r.push('b'), Err('b'));
    }
}
