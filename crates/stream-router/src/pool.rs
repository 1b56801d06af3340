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

use crate::ext::{ExtKind, ExtMap};
use crate::out::{write_block, write_fixed, OutPacket, MAX_HEADER_LEN};
use crate::packet::{Extensions, RtpPacket, MAX_EXTENSIONS};

/// Largest extension block cached per player map; larger ones are
/// serialised again for every delivery (still correct, just slower).
const BLOCK_INLINE: usize = 32;
/// Distinct player extension maps cached per packet.
const BLOCKS: usize = 2;
/// `fwd` marker of an extension that is never forwarded.
const NOT_FORWARDED: u8 = u8::MAX;

#[derive(Clone, Copy)]
struct Block {
    used: bool,
    key: u32,
    len: u8,
    data: [u8; BLOCK_INLINE],
}

impl Block {
    const EMPTY: Block = Block {
        used: false,
        key: 0,
        len: 0,
        data: [0; BLOCK_INLINE],
    };
}

/// A player leg's extension IDs for the forwardable kinds, as used on the
/// data path (see [`ExtMap::forward_ids`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlayerExts {
    ids: [u8; 4],
    key: u32,
}

impl PlayerExts {
    pub(crate) fn new(map: &ExtMap) -> Self {
        let ids = map.forward_ids();
        PlayerExts {
            ids,
            key: u32::from_ne_bytes(ids),
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
    /// The forwarded extensions of this packet as the player sees them.
    fn items(&self, player: PlayerExts) -> impl Iterator<Item = (u8, &[u8])> + Clone + '_ {
        self.pkt
            .extensions
            .iter()
            .zip(self.fwd)
            .filter_map(move |(e, k)| {
                let id = *player.ids.get(usize::from(k))?;
                (id != 0).then_some((id, &e.value[..]))
            })
    }

    fn forwards_any(&self, player: PlayerExts) -> bool {
        self.any_forwarded && player.key != 0
    }

    /// Serialises the rewritten header for `player` into `buf`; returns its
    /// length. Byte-for-byte what [`OutPacket::write_header`] writes for
    /// [`Shared::out_packet`].
    #[inline]
    pub(crate) fn write_header(
        &mut self,
        player: PlayerExts,
        ssrc: u32,
        payload_type: u8,
        seq: u16,
        ts: u32,
        buf: &mut [u8; MAX_HEADER_LEN],
    ) -> usize {
        let ext_len = if self.forwards_any(player) {
            self.ext_block(player, buf)
        } else {
            0
        };
        let (fixed, _) = buf.split_at_mut(12);
        if let Ok(fixed) = <&mut [u8; 12]>::try_from(fixed) {
            let marker = self.pkt.marker;
            write_fixed(fixed, ext_len > 0, marker, payload_type, seq, ts, ssrc);
        }
        12 + ext_len
    }

    /// Writes the extension block for `player` after the fixed header in
    /// `buf`, from the cache when possible; returns its length.
    #[inline(always)]
    fn ext_block(&mut self, player: PlayerExts, buf: &mut [u8; MAX_HEADER_LEN]) -> usize {
        for b in &self.blocks {
            if b.used && b.key == player.key {
                // Fixed-size copy; bytes past `len` are scratch.
                buf[12..12 + BLOCK_INLINE].copy_from_slice(&b.data);
                return usize::from(b.len);
            }
        }
        self.build_block(player, &mut buf[12..])
    }

    /// Serialises the block for a player map not cached yet, and caches it
    /// if it is small and a cache entry is free.
    #[cold]
    #[inline(never)]
    fn build_block(&mut self, player: PlayerExts, out: &mut [u8]) -> usize {
        // Gather the forwarded elements first: the writer then walks a
        // short slice instead of re-running the remapping iterator.
        let mut items: [(u8, &[u8]); MAX_EXTENSIONS] = [(0, &[]); MAX_EXTENSIONS];
        let mut n = 0;
        for (slot, item) in items.iter_mut().zip(self.items(player)) {
            *slot = item;
            n += 1;
        }
        let len = write_block(items.get(..n).unwrap_or(&[]).iter().copied(), out).unwrap_or(0);
        if let (Some(b), Some(src)) = (
            self.blocks.iter_mut().find(|b| !b.used),
            out.get(..len).filter(|_| len <= BLOCK_INLINE),
        ) {
            b.used = true;
            b.key = player.key;
            b.len = len as u8;
            b.data[..len].copy_from_slice(src);
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
        seq: u16,
        ts: u32,
        rtx: bool,
    ) -> OutPacket {
        let mut extensions = Extensions::new();
        if self.forwards_any(player) {
            for (e, k) in self.pkt.extensions.iter().zip(self.fwd) {
                match player.ids.get(usize::from(k)) {
                    Some(&id) if id != 0 => {
                        extensions.push(id, e.value.clone());
                    }
                    _ => {}
                }
            }
        }
        OutPacket {
            ssrc,
            payload_type,
            sequence_number: seq,
            timestamp: ts,
            marker: self.pkt.marker,
            extensions,
            payload: self.pkt.payload.clone(),
            is_retransmission: rtx,
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
    for (f, e) in fwd.iter_mut().zip(pkt.extensions.iter()) {
        if let Some(i) = map.get(e.id).and_then(ExtKind::forward_index) {
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
                b.used = false;
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<&Shared> {
        self.slots.get(id as usize)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut Shared> {
        self.slots.get_mut(id as usize)
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
            if s.refs == 1 {
                s.pkt = RtpPacket::default();
                self.free.push(id);
            }
            s.refs = s.refs.saturating_sub(1);
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
