//! Generational slab storage and the public handle types built on it.
//!
//! Streams, tracks and down-tracks live in `Vec`-backed slabs addressed by
//! `(index, generation)` handles. Removing an entry bumps the slot's
//! generation, so a stale handle simply fails to resolve (`None`) instead of
//! aliasing a newer entry or panicking. Slots are reused, so the slabs only
//! grow at setup time, never on the packet path.

/// Untyped generational index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RawHandle {
    index: u32,
    generation: u32,
}

impl RawHandle {
    /// A placeholder that no slab of this size issues (used only where a
    /// separate flag says the handle is absent).
    pub(crate) const NONE: RawHandle = RawHandle {
        index: u32::MAX,
        generation: u32::MAX,
    };
}

/// `repr(C)` with the generation first, on its own 64-byte boundary: the
/// generation check and the first bytes of the value (a down-track's hot
/// fields) share one cache line.
#[repr(C, align(64))]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A `Vec` of reusable, generation-checked slots.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores `value`, reusing a free slot when there is one.
    pub(crate) fn insert(&mut self, value: T) -> RawHandle {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            if let Some(slot) = self.slots.get_mut(index as usize) {
                slot.value = Some(value);
                return RawHandle {
                    index,
                    generation: slot.generation,
                };
            }
        }
        let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(Slot {
            generation: 0,
            value: Some(value),
        });
        RawHandle {
            index,
            generation: 0,
        }
    }

    pub(crate) fn get(&self, h: RawHandle) -> Option<&T> {
        self.slots
            .get(h.index as usize)
            .filter(|s| s.generation == h.generation)
            .and_then(|s| s.value.as_ref())
    }

    pub(crate) fn get_mut(&mut self, h: RawHandle) -> Option<&mut T> {
        self.slots
            .get_mut(h.index as usize)
            .filter(|s| s.generation == h.generation)
            .and_then(|s| s.value.as_mut())
    }

    /// Removes and returns the entry; the handle (and every copy of it)
    /// becomes stale.
    pub(crate) fn remove(&mut self, h: RawHandle) -> Option<T> {
        let slot = self
            .slots
            .get_mut(h.index as usize)
            .filter(|s| s.generation == h.generation)?;
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(h.index);
        self.len -= 1;
        Some(value)
    }

    /// Every live entry.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.value.as_ref())
    }

    /// Every live entry, mutably.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().filter_map(|s| s.value.as_mut())
    }

    /// Number of live entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// A generational index: it stays `Copy`-cheap and becomes stale
        /// (every API taking it returns an error or `None`) once the entry is
        /// removed, even if the slot is reused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub(crate) RawHandle);

        impl $name {
            /// Slot index, dense from 0: usable to key caller-side tables.
            pub fn index(self) -> u32 {
                self.0.index
            }

            /// Generation of the slot when this handle was issued.
            pub fn generation(self) -> u32 {
                self.0.generation
            }
        }
    };
}

handle!(
    /// A published stream in a [`Router`](crate::Router).
    StreamHandle
);
handle!(
    /// A publisher's audio or video track.
    TrackHandle
);
handle!(
    /// One player's subscription to one kind (audio or video) of a stream.
    DownTrackHandle
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_handles_do_not_resolve() {
        let mut s = Slab::default();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!(s.len(), 2);
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(a), None);
        let c = s.insert("c");
        // Slot reused with a new generation.
        assert_eq!(c.index, a.index);
        assert_ne!(c.generation, a.generation);
        assert_eq!(s.get(a), None);
        assert_eq!(s.get_mut(a), None);
        assert_eq!(s.get(c), Some(&"c"));
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.len(), 2);
        let bogus = RawHandle {
            index: 99,
            generation: 0,
        };
        assert_eq!(s.get(bogus), None);
        assert_eq!(s.remove(bogus), None);
    }

    #[test]
    fn public_handles_expose_index() {
        let mut s = Slab::default();
        let h = StreamHandle(s.insert(1));
        assert_eq!(h.index(), 0);
        assert_eq!(h.generation(), 0);
    }
}
