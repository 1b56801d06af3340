//! The router's packet pool: every accepted publisher packet is stored here
//! exactly once, and everything that needs it later — the track's retransmit
//! cache and each down-track queue entry — holds a plain (non-atomic)
//! reference count on its slot instead of a copy.
//!
//! A slot also remembers, per extension of the packet, which forwardable
//! kind it is (resolved once with the publisher's map), and caches the
//! serialised RFC 8285 block for the first few distinct player extension
//! maps it is sent to. Players of a stream usually negotiate the same IDs,
//! so the block is built once per packet and then copied into each header.
//!
//! Slots are reused through a free list. The router reserves capacity for
//! the worst case (every cache slot and every queue entry pointing at a
//! distinct packet) when tracks and down-tracks are created, so the packet
//! path never allocates. Reserved but unused capacity is never touched.

use bytes::Bytes;

use crate::ext::{ExtKind, ExtMap, FORWARDABLE_COUNT};
use crate::out::{put_element, OutPacket, MAX_HEADER_LEN};
use crate::packet::{Extensions, RtpPacket, MAX_EXTENSIONS};

/// Largest extension block cached per player map; larger ones are
/// serialised again for every delivery (still correct, just slower).
const BLOCK_INLINE: usize = 32;
/// Distinct player extension maps cached per packet.
const BLOCKS: usize = 2;
/// `fwd` marker of an extension that is never forwarded.
const NOT_FORWARDED: u8 = u8::MAX;

/// A cached extension block. `key` is the player map's
/// [`PlayerExts::key`]; 0 marks an unused entry (a map with key 0 forwards
/// nothing, so it never looks a block up).
#[derive(Clone, Copy)]
struct Block {
    key: u64,
    len: u8,
    data: [u8; BLOCK_INLINE],
}

impl Block {
    const EMPTY: Block = Block {
        key: 0,
        len: 0,
        data: [0; BLOCK_INLINE],
    };
}

/// A player leg's extension IDs for the forwardable kinds, as used on the
/// data path (see [`ExtMap::forward_ids`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlayerExts {
    /// The IDs, one byte each in `FORWARDABLE` order (the rest zero): the
    /// map is its own key, in one word (the down-track's hot cache lines
    /// have room for no more).
    key: u64,
}

impl PlayerExts {
    /// The map's IDs as one word: equal keys, equal extension blocks.
    #[inline]
    pub(crate) fn key(self) -> u64 {
        self.key
    }

    pub(crate) fn new(map: &ExtMap) -> Self {
        let mut key = [0u8; 8];
        key[..FORWARDABLE_COUNT].copy_from_slice(&map.forward_ids());
        PlayerExts {
            key: u64::from_ne_bytes(key),
        }
    }

    /// The player's ID for forwardable kind `k` (its `FORWARDABLE` index;
    /// 0: not negotiated, or `k` out of range).
    #[inline]
    fn id(self, k: u8) -> u8 {
        match usize::from(k) {
            i if i < FORWARDABLE_COUNT => self.key.to_ne_bytes()[i],
            _ => 0,
        }
    }
}

/// One stored packet and its reference count.
pub(crate) struct Shared {
    pub(crate) pkt: RtpPacket,
    /// Per extension of `pkt`: its index in `ext::FORWARDABLE`, or
    /// `NOT_FORWARDED`.
    fwd: [u8; MAX_EXTENSIONS],
    any_forwarded: bool,
    refs: u32,
    blocks: [Block; BLOCKS],
}

impl Shared {
    fn forwards_any(&self, player: PlayerExts) -> bool {
        self.any_forwarded && player.key != 0
    }

    /// Writes the extension block for `player` at `buf[12..]` (from the
    /// packet's block cache when possible) and returns its length, 0 when
    /// nothing is forwarded to `player` (`buf` is then untouched). The
    /// bytes depend only on this packet and `player`, so a caller writing
    /// several headers in a row for the same pair writes the block once.
    #[inline]
    pub(crate) fn write_ext_block(
        &mut self,
        player: PlayerExts,
        buf: &mut [u8; MAX_HEADER_LEN],
    ) -> usize {
        if self.forwards_any(player) {
            self.ext_block(player, buf)
        } else {
            0
        }
    }

    /// Writes bytes 0..8 of the rewritten header (V=2, X, M, PT, seq, ts)
    /// into `buf` in one store, for an extension block of `ext_len` bytes
    /// already at `buf[12..]`; returns the header's length. With the SSRC
    /// at bytes 8..12 (written by the caller once per player), byte for
    /// byte what [`OutPacket::write_header`] writes for
    /// [`Shared::out_packet`].
    #[inline(always)]
    pub(crate) fn write_fixed_but_ssrc(
        &self,
        ext_len: usize,
        payload_type: u8,
        e: &crate::downtrack::Entry,
        buf: &mut [u8; MAX_HEADER_LEN],
    ) -> usize {
        let b0 = 0x80 | (u64::from(ext_len > 0) << 4);
        let marker = self.pkt.marker | e.marker;
        let b1 = (u64::from(marker) << 7) | u64::from(payload_type & 0x7f);
        let word = (b0 << 56) | (b1 << 48) | (u64::from(e.seq) << 32) | u64::from(e.ts);
        if let Some(fixed) = buf.first_chunk_mut::<8>() {
            *fixed = word.to_be_bytes();
        }
        12 + ext_len
    }

    /// Drops the reference of one delivered queue entry (`id` is this
    /// slot's id); with the last one, the packet is released and the slot
    /// goes to `free`. Same as [`Pool::release`].
    /// Returns whether the slot was freed.
    #[inline]
    pub(crate) fn release_ref(&mut self, id: u32, free: &mut Vec<u32>) -> bool {
        if self.refs <= 1 {
            self.release_last(id, free);
            true
        } else {
            self.refs -= 1;
            false
        }
    }

    #[cold]
    fn release_last(&mut self, id: u32, free: &mut Vec<u32>) {
        if self.refs == 1 {
            self.pkt = RtpPacket::default();
            free.push(id);
        }
        self.refs = self.refs.saturating_sub(1);
    }

    /// Writes the extension block for `player` after the fixed header in
    /// `buf`, from the cache when possible; returns its length.
    #[inline(always)]
    fn ext_block(&mut self, player: PlayerExts, buf: &mut [u8; MAX_HEADER_LEN]) -> usize {
        for b in &self.blocks {
            if b.key == player.key {
                // Fixed-size copy; bytes past `len` are scratch.
                buf[12..12 + BLOCK_INLINE].copy_from_slice(&b.data);
                return usize::from(b.len);
            }
        }
        self.build_block(player, &mut buf[12..])
    }

    /// Serialises the block for a player map not cached yet, and caches it
    /// if it is small and a cache entry is free. Same layout rules as
    /// [`OutPacket::write_header`] (`out::write_block`), in two passes
    /// over at most [`MAX_EXTENSIONS`] elements.
    #[inline(never)]
    fn build_block(&mut self, player: PlayerExts, out: &mut [u8]) -> usize {
        let exts = &self.pkt.extensions;
        // Pass 1: the player-leg ID of each forwarded element (0 = not
        // written) and the layout.
        let mut ids = [0u8; MAX_EXTENSIONS];
        let (mut count, mut bytes, mut one_byte) = (0usize, 0usize, true);
        for (i, (slot, &k)) in ids.iter_mut().zip(&self.fwd).enumerate().take(exts.len()) {
            let id = player.id(k);
            let n = exts.value(i).len();
            if id == 0 || n > 255 {
                continue;
            }
            *slot = id;
            count += 1;
            bytes += n;
            one_byte &= id <= 14 && (1..=16).contains(&n);
        }
        if count == 0 {
            return 0;
        }
        let body = bytes + if one_byte { count } else { 2 * count };
        let len = 4 + body.div_ceil(4) * 4;
        let Some(block) = out.get_mut(..len) else {
            return 0;
        };
        // Pass 2: write. The block is bounded by MAX_HEADER_LEN, so its
        // word count fits u16.
        let profile: u16 = if one_byte { 0xBEDE } else { 0x1000 };
        let words = ((len - 4) / 4) as u16;
        block[0..2].copy_from_slice(&profile.to_be_bytes());
        block[2..4].copy_from_slice(&words.to_be_bytes());
        let mut at = 4;
        for (i, &id) in ids.iter().enumerate().take(exts.len()) {
            if id == 0 {
                continue;
            }
            at = put_element(block, at, id, exts.value(i), one_byte);
        }
        block[at..].fill(0);
        if len <= BLOCK_INLINE {
            // Fixed-size copy (bytes past `len` are scratch, as in
            // `ext_block`).
            let data = out.first_chunk::<BLOCK_INLINE>();
            if let (Some(b), Some(data)) = (self.blocks.iter_mut().find(|b| b.key == 0), data) {
                b.key = player.key;
                b.len = len as u8;
                b.data = *data;
            }
        }
        len
    }

    /// The packet rewritten for `player` as an owned [`OutPacket`]
    /// (clones the payload and forwarded extension handles).
    pub(crate) fn out_packet(
        &self,
        player: PlayerExts,
        ssrc: u32,
        payload_type: u8,
        e: &crate::downtrack::Entry,
    ) -> OutPacket {
        let mut extensions = Extensions::new();
        if self.forwards_any(player) {
            let values = self.pkt.extensions.iter().map(|e| e.value);
            for (value, k) in values.zip(self.fwd) {
                match player.id(k) {
                    0 => {}
                    id => {
                        extensions.push(id, value);
                    }
                }
            }
        }
        OutPacket {
            ssrc,
            payload_type,
            sequence_number: e.seq,
            timestamp: e.ts,
            marker: self.pkt.marker | e.marker,
            extensions,
            payload: self.pkt.payload.clone(),
            is_retransmission: e.rtx,
            vp8: e.vp8,
            padding: false,
        }
    }

    pub(crate) fn payload(&self) -> &Bytes {
        &self.pkt.payload
    }
}

/// Which extensions of `pkt` are forwardable (see `Shared::fwd`).
#[inline]
fn forwarded(pkt: &RtpPacket, map: &ExtMap) -> ([u8; MAX_EXTENSIONS], bool) {
    let mut fwd = [NOT_FORWARDED; MAX_EXTENSIONS];
    let mut any = false;
    for (f, &id) in fwd.iter_mut().zip(pkt.extensions.ids()) {
        if let Some(i) = map.get(id).and_then(ExtKind::forward_index) {
            *f = i;
            any = true;
        }
    }
    (fwd, any)
}

/// Reference-counted packet slots with a free list.
#[derive(Default)]
pub(crate) struct Pool {
    slots: Vec<Shared>,
    free: Vec<u32>,
}

impl Pool {
    /// Makes room for `total` live packets without reallocating.
    pub(crate) fn reserve(&mut self, total: usize) {
        self.slots.reserve(total.saturating_sub(self.slots.len()));
        self.free.reserve(total.saturating_sub(self.free.len()));
    }

    /// Stores `pkt` (received on a leg with extension map `map`) with
    /// `refs` references; returns its id.
    #[inline]
    pub(crate) fn insert(&mut self, pkt: RtpPacket, map: &ExtMap, refs: u32) -> u32 {
        let (fwd, any_forwarded) = forwarded(&pkt, map);
        let shared = Shared {
            pkt,
            fwd,
            any_forwarded,
            refs,
            blocks: [Block::EMPTY; BLOCKS],
        };
        if let Some(id) = self.free.pop() {
            if let Some(slot) = self.slots.get_mut(id as usize) {
                *slot = shared;
                return id;
            }
        }
        let id = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(shared);
        id
    }

    /// Whether slot `id` has exactly one reference (e.g. only the
    /// retransmit cache still holds it).
    #[inline]
    pub(crate) fn is_sole(&self, id: u32) -> bool {
        self.slots.get(id as usize).is_some_and(|s| s.refs == 1)
    }

    /// Replaces the packet of a live slot in place, keeping its references
    /// (the retransmit cache reusing the slot of the packet it evicts:
    /// no free-list round trip, one slot touched per packet).
    #[inline]
    pub(crate) fn replace(&mut self, id: u32, pkt: RtpPacket, map: &ExtMap) {
        if let Some(s) = self.slots.get_mut(id as usize) {
            let (fwd, any_forwarded) = forwarded(&pkt, map);
            s.pkt = pkt;
            s.fwd = fwd;
            s.any_forwarded = any_forwarded;
            for b in &mut s.blocks {
                b.key = 0;
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<&Shared> {
        self.slots.get(id as usize)
    }

    /// The slots and the free list, for releasing references while
    /// holding a slot (see [`Shared::release_ref`]).
    #[inline]
    pub(crate) fn parts(&mut self) -> (&mut [Shared], &mut Vec<u32>) {
        (&mut self.slots, &mut self.free)
    }

    /// Adds `n` references to a live slot.
    #[inline]
    pub(crate) fn retain(&mut self, id: u32, n: u32) {
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.refs += n;
        }
    }

    /// Drops one reference; the packet is released with the last one.
    #[inline]
    pub(crate) fn release(&mut self, id: u32) {
        if let Some(s) = self.slots.get_mut(id as usize) {
            s.release_ref(id, &mut self.free);
        }
    }

    /// Frees a slot that nothing references (a packet too old for the
    /// cache that no down-track queued).
    pub(crate) fn release_if_unused(&mut self, id: u32) {
        if let Some(s) = self.slots.get_mut(id as usize) {
            if s.refs == 0 {
                s.pkt = RtpPacket::default();
                self.free.push(id);
            }
        }
    }

    /// Number of live (referenced) packets.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DownTrackConfig, MediaKind, Router, StreamKey, TrackInfo};
    use std::time::Instant;

    fn pkt(seq: u16) -> RtpPacket {
        let mut p = RtpPacket {
            ssrc: 7,
            payload_type: 111,
            sequence_number: seq,
            payload: Bytes::from_static(b"opus"),
            ..RtpPacket::default()
        };
        p.extensions.push(1, Bytes::from_static(&[0x80]));
        p
    }

    #[test]
    fn references_follow_caches_and_queues() {
        let mut r = Router::new();
        let s = r.add_stream(StreamKey::new(1, "pool")).unwrap();
        let info = TrackInfo {
            kind: MediaKind::Audio,
            codec: crate::Codec::Opus,
            clock_rate: 48_000,
            ssrc: 7,
            payload_type: 111,
            extensions: ExtMap::new().with(1, ExtKind::AudioLevel),
            layer: 0,
        };
        let t = r.add_track(s, info).unwrap();
        let cfg = DownTrackConfig {
            ssrc: 9,
            payload_type: 100,
            extensions: ExtMap::new().with(3, ExtKind::AudioLevel),
            queue_capacity: 4,
        };
        let dts: Vec<_> = (0..3)
            .map(|_| r.subscribe(s, MediaKind::Audio, cfg).unwrap())
            .collect();
        let now = Instant::now();
        for seq in 0..300u16 {
            r.push_rtp(t, pkt(seq), now).unwrap();
            if seq % 2 == 0 {
                r.drain_output(|_, _| {});
            }
        }
        // The cache (128) plus whatever the full queues (4 each) still hold.
        let cached = crate::AUDIO_CACHE_PACKETS;
        assert!(r.pool.live() <= cached + 3 * 4);
        assert!(r.pool.live() >= cached);
        // A packet too old for the cache is pooled only while queued.
        r.drain_output(|_, _| {});
        assert_eq!(r.pool.live(), cached);
        let summary = r.push_rtp(t, pkt(10), now).unwrap();
        assert_eq!(summary.enqueued, 3);
        assert_eq!(r.pool.live(), cached + 1);
        assert_eq!(r.drain_output(|_, _| {}), 3);
        assert_eq!(r.pool.live(), cached);
        r.push_rtp(t, pkt(300), now).unwrap();
        r.unsubscribe(dts[0]).unwrap();
        r.clear_queue(dts[1]);
        r.remove_stream(s).unwrap();
        // dts[2] keeps its queued packets (still sendable) after the
        // stream is gone.
        let pending = r.pending(dts[2]);
        assert_eq!(r.pool.live(), pending);
        assert_eq!(
            r.drain_output(|_, o| assert_eq!(&o.payload[..], b"opus")),
            pending
        );
        assert_eq!(r.pool.live(), 0);
    }
}
