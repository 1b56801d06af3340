//! A publisher's track: what it carries ([`TrackInfo`]), what it received
//! ([`TrackStats`]), its retransmit cache, and the coalescing state of
//! keyframe requests sent to its publisher.
//!
//! The track is where each incoming packet is validated, numbered (extended
//! sequence), deduplicated and cached exactly once, before the router fans it
//! out to the down-tracks.

use std::time::Instant;

use crate::cache::{RetransmitCache, AUDIO_CACHE_PACKETS, VIDEO_CACHE_PACKETS};
use crate::ext::ExtMap;
use crate::feedback::PLI_INTERVAL;
use crate::keyframe::{h264_start, Codec, H264Start};
use crate::packet::RtpPacket;
use crate::pool::Pool;
use crate::seq::SeqExtender;
use crate::slab::StreamHandle;

/// Simulcast layers a stream's video can have (spatial encodings, each its
/// own SSRC and track; layer 0 is the lowest resolution).
pub const MAX_LAYERS: usize = 3;

/// Audio or video. A stream has one audio track and up to [`MAX_LAYERS`]
/// video tracks (one per simulcast layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Audio: never keyframe-gated.
    Audio,
    /// Video: keyframe-gated, larger retransmit cache.
    Video,
}

impl MediaKind {
    pub(crate) fn index(self) -> usize {
        match self {
            MediaKind::Audio => 0,
            MediaKind::Video => 1,
        }
    }
}

/// Description of a publisher's track, from its SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackInfo {
    /// Audio or video.
    pub kind: MediaKind,
    /// Codec (drives keyframe detection).
    pub codec: Codec,
    /// RTP clock rate in Hz (48000 for Opus, 90000 for video).
    pub clock_rate: u32,
    /// The publisher's SSRC; packets with another SSRC are rejected.
    pub ssrc: u32,
    /// The publisher's payload type; packets with another PT (RTX, RED,
    /// FEC...) are rejected.
    pub payload_type: u8,
    /// The publisher leg's header-extension IDs.
    pub extensions: ExtMap,
    /// Simulcast layer (video: 0 = lowest, below [`MAX_LAYERS`]; audio and
    /// single-encoding video: 0).
    pub layer: u8,
}

impl TrackInfo {
    /// The stream's track slot of this track: audio 0, video layer `l` at
    /// `1 + l` (layers beyond [`MAX_LAYERS`] share the top slot).
    pub(crate) fn slot(&self) -> usize {
        match self.kind {
            MediaKind::Audio => 0,
            MediaKind::Video => 1 + usize::from(self.layer).min(MAX_LAYERS - 1),
        }
    }
}

/// Counters of one publisher track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackStats {
    /// Packets accepted (not rejected, not duplicates).
    pub packets_received: u64,
    /// Payload bytes of accepted packets.
    pub bytes_received: u64,
    /// Packets refused for a foreign SSRC or payload type.
    pub rejected: u64,
    /// Packets dropped because the same sequence number is already cached.
    pub duplicates: u64,
    /// Accepted packets that start a keyframe (video only).
    pub keyframes: u64,
    /// Keyframe requests registered (subscribe, player PLI/FIR, gate retry).
    pub keyframe_requests: u64,
    /// PLIs actually emitted upstream after coalescing.
    pub plis_sent: u64,
}

/// Outcome of [`Track::ingest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ingest {
    /// Foreign SSRC/PT.
    Rejected,
    /// Already cached.
    Duplicate,
    /// Accepted under extended sequence number `ext`. If `cacheable`, the
    /// caller stores it with [`Track::cache_packet`]; otherwise it is too
    /// old for the cache and only forwarded.
    Accepted {
        ext: i64,
        keyframe: bool,
        cacheable: bool,
    },
}

pub(crate) struct Track {
    pub(crate) info: TrackInfo,
    pub(crate) stream: StreamHandle,
    seq: SeqExtender,
    pub(crate) cache: RetransmitCache,
    pub(crate) stats: TrackStats,
    pli_pending: bool,
    /// Whether this track sits in the router's pending-PLI list.
    pub(crate) pli_listed: bool,
    pli_last_sent: Option<Instant>,
    /// H.264: the RTP timestamp of the last access unit that began with an
    /// SPS. Its IDR is not a second keyframe start: the gate opens at the
    /// SPS, so that a player gets SPS and PPS before its first IDR.
    sps_timestamp: Option<u32>,
    /// Received bitrate, sampled by `Router::measure`.
    pub(crate) rate: crate::rate::RateMeter,
    /// When the last packet was accepted (see `layers.rs`).
    pub(crate) last_packet: Option<Instant>,
    /// No packet within `LAYER_STALL`: the layer is not live.
    pub(crate) stalled: bool,
    /// SVC: bytes and bitrate per layer (`svc.rs`).
    pub(crate) svc: crate::svc::LayerBytes,
    /// AV1: the dependency descriptor's structure in force (`dd.rs`).
    pub(crate) av1: crate::dd::Av1Layers,
}

impl Track {
    pub(crate) fn new(info: TrackInfo, stream: StreamHandle) -> Self {
        let size = match info.kind {
            MediaKind::Audio => AUDIO_CACHE_PACKETS,
            MediaKind::Video => VIDEO_CACHE_PACKETS,
        };
        Track {
            info,
            stream,
            seq: SeqExtender::default(),
            cache: RetransmitCache::new(size),
            stats: TrackStats::default(),
            pli_pending: false,
            pli_listed: false,
            pli_last_sent: None,
            sps_timestamp: None,
            rate: Default::default(),
            last_packet: None,
            stalled: false,
            svc: Default::default(),
            av1: Default::default(),
        }
    }

    /// The SVC layers of `pkt` (`svc.rs`): from the payload descriptor
    /// (VP8, VP9), or for AV1 from the dependency descriptor extension
    /// through the structure this track last received (`dd.rs`).
    #[inline]
    pub(crate) fn layering(&mut self, pkt: &RtpPacket) -> Option<crate::svc::Layering> {
        match self.info.codec {
            crate::keyframe::Codec::Av1 => {
                let id = self
                    .info
                    .extensions
                    .id_of(crate::ext::ExtKind::DependencyDescriptor)?;
                let exts = &pkt.extensions;
                let i = exts.ids().iter().position(|&x| x == id)?;
                self.av1.layering(exts.value(i), pkt.timestamp)
            }
            codec => crate::svc::parse(codec, &pkt.payload),
        }
    }

    /// Validates, numbers and deduplicates one incoming packet, counting
    /// it. The packet is only looked at: an accepted one is then moved once,
    /// straight into its pool slot (see [`Track::cache_packet`]).
    pub(crate) fn ingest(&mut self, pkt: &RtpPacket) -> Ingest {
        if pkt.ssrc != self.info.ssrc || pkt.payload_type != self.info.payload_type {
            self.stats.rejected += 1;
            return Ingest::Rejected;
        }
        let ext = self.seq.peek(pkt.sequence_number);
        if self.cache.get(ext).is_some() {
            self.stats.duplicates += 1;
            return Ingest::Duplicate;
        }
        self.seq.extend(pkt.sequence_number);
        self.stats.packets_received += 1;
        self.stats.bytes_received += pkt.payload.len() as u64;
        let keyframe = self.info.kind == MediaKind::Video
            && match self.info.codec {
                Codec::H264 => match h264_start(&pkt.payload) {
                    Some(H264Start::Sps) => {
                        self.sps_timestamp = Some(pkt.timestamp);
                        true
                    }
                    // An IDR without its SPS in band opens the gate itself.
                    Some(H264Start::Idr) => self.sps_timestamp != Some(pkt.timestamp),
                    None => false,
                },
                codec => codec.is_keyframe_start(&pkt.payload),
            };
        if keyframe {
            self.stats.keyframes += 1;
        }
        let highest = self.seq.highest().unwrap_or(ext);
        let cap = self.cache.capacity() as i64;
        Ingest::Accepted {
            ext,
            keyframe,
            cacheable: highest - ext < cap,
        }
    }

    /// Stores a packet [`ingest`](Self::ingest) accepted as cacheable under
    /// `ext`, in `pool` (the cache holding one reference); returns its slot.
    #[inline(always)]
    pub(crate) fn cache_packet(&mut self, ext: i64, pkt: RtpPacket, pool: &mut Pool) -> u32 {
        // Steady state: the packet this one evicts is referenced by the
        // cache only, so its pool slot is reused in place.
        if let Some(old) = self.cache.occupant(ext).filter(|&id| pool.is_sole(id)) {
            pool.replace(old, pkt, &self.info.extensions);
            self.cache.insert(ext, old);
            return old;
        }
        let id = pool.insert(pkt, &self.info.extensions, 1);
        if let Some(evicted) = self.cache.insert(ext, id) {
            pool.release(evicted);
        }
        id
    }

    /// Releases the packets held by the retransmit cache (the track is
    /// being removed).
    pub(crate) fn release_cache(&mut self, pool: &mut Pool) {
        self.cache.drain(|id| pool.release(id));
    }

    /// Registers a keyframe request. Returns true when the track must be
    /// added to the router's pending list.
    pub(crate) fn request_keyframe(&mut self) -> bool {
        self.stats.keyframe_requests += 1;
        self.pli_pending = true;
        !std::mem::replace(&mut self.pli_listed, true)
    }

    /// When the pending request may be sent: `None` if nothing is pending,
    /// `Some(None)` if right away, `Some(Some(t))` if at `t`.
    pub(crate) fn pli_deadline(&self) -> Option<Option<Instant>> {
        if !self.pli_pending {
            return None;
        }
        Some(self.pli_last_sent.and_then(|t| t.checked_add(PLI_INTERVAL)))
    }

    /// Emits the pending PLI if the coalescing window allows it at `now`.
    pub(crate) fn take_pli(&mut self, now: Instant) -> Option<u32> {
        match self.pli_deadline()? {
            Some(t) if now < t => None,
            _ => {
                self.pli_pending = false;
                self.pli_listed = false;
                self.pli_last_sent = Some(now);
                self.stats.plis_sent += 1;
                Some(self.info.ssrc)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slab::Slab;
    use bytes::Bytes;
    use std::time::Duration;

    fn track(kind: MediaKind, codec: Codec) -> Track {
        let mut s: Slab<()> = Slab::default();
        let info = TrackInfo {
            kind,
            codec,
            clock_rate: 90_000,
            ssrc: 42,
            payload_type: 96,
            extensions: ExtMap::new(),
            layer: 0,
        };
        Track::new(info, StreamHandle(s.insert(())))
    }

    fn pkt(seq: u16, payload: &'static [u8]) -> RtpPacket {
        RtpPacket {
            ssrc: 42,
            payload_type: 96,
            sequence_number: seq,
            payload: Bytes::from_static(payload),
            ..RtpPacket::default()
        }
    }

    /// What happened to a packet: [`Track::ingest`], then
    /// [`Track::cache_packet`] if cacheable.
    #[allow(clippy::large_enum_variant)]
    enum Ingested {
        Rejected,
        Duplicate,
        Cached { ext: i64, keyframe: bool },
        Uncached { ext: i64, pkt: RtpPacket },
    }

    fn ingest_into(t: &mut Track, pkt: RtpPacket, pool: &mut Pool) -> Ingested {
        match t.ingest(&pkt) {
            Ingest::Rejected => Ingested::Rejected,
            Ingest::Duplicate => Ingested::Duplicate,
            Ingest::Accepted {
                ext,
                keyframe,
                cacheable: true,
            } => {
                let slot = t.cache_packet(ext, pkt, pool);
                assert_eq!(t.cache.get(ext), Some(slot));
                Ingested::Cached { ext, keyframe }
            }
            Ingest::Accepted { ext, .. } => Ingested::Uncached { ext, pkt },
        }
    }

    #[test]
    fn ingest_validates_dedups_and_caches() {
        let mut t = track(MediaKind::Video, Codec::Av1);
        let mut pool = Pool::default();
        let mut ingest = |t: &mut Track, p| ingest_into(t, p, &mut pool);
        assert_eq!(t.cache.capacity(), VIDEO_CACHE_PACKETS);
        let mut bad = pkt(1, b"x");
        bad.ssrc = 7;
        assert!(matches!(ingest(&mut t, bad), Ingested::Rejected));
        let mut bad = pkt(1, b"x");
        bad.payload_type = 97;
        assert!(matches!(ingest(&mut t, bad), Ingested::Rejected));
        assert!(matches!(
            ingest(&mut t, pkt(65535, &[0x08])),
            Ingested::Cached {
                ext: 65535,
                keyframe: true
            }
        ));
        assert!(matches!(
            ingest(&mut t, pkt(0, &[0x00])),
            Ingested::Cached {
                ext: 65536,
                keyframe: false
            }
        ));
        assert!(matches!(
            ingest(&mut t, pkt(0, b"dup")),
            Ingested::Duplicate
        ));
        // Jump ahead by more than the cache: the old number is uncacheable.
        assert!(matches!(
            ingest(&mut t, pkt(2000, b"")),
            Ingested::Cached { .. }
        ));
        match ingest(&mut t, pkt(1, &[0, 1, 2, 3])) {
            Ingested::Uncached { ext, pkt, .. } => {
                assert_eq!(ext, 65537);
                assert_eq!(&pkt.payload[..], &[0, 1, 2, 3]);
            }
            _ => panic!("expected uncached"),
        }
        let s = t.stats;
        assert_eq!(
            (
                s.packets_received,
                s.bytes_received,
                s.rejected,
                s.duplicates,
                s.keyframes
            ),
            (4, 6, 2, 1, 1)
        );
    }

    #[test]
    fn audio_is_never_a_keyframe() {
        let mut t = track(MediaKind::Audio, Codec::Opus);
        assert_eq!(t.cache.capacity(), AUDIO_CACHE_PACKETS);
        let mut pool = Pool::default();
        assert!(matches!(
            ingest_into(&mut t, pkt(5, &[0x08]), &mut pool),
            Ingested::Cached {
                keyframe: false,
                ..
            }
        ));
    }

    #[test]
    fn pli_coalescing_state() {
        let mut t = track(MediaKind::Video, Codec::Vp8);
        let t0 = Instant::now();
        assert_eq!(t.take_pli(t0), None);
        assert!(t.request_keyframe());
        assert!(!t.request_keyframe());
        assert_eq!(t.pli_deadline(), Some(None));
        assert_eq!(t.take_pli(t0), Some(42));
        assert_eq!(t.take_pli(t0), None);
        assert!(t.request_keyframe());
        assert_eq!(t.pli_deadline(), Some(Some(t0 + PLI_INTERVAL)));
        assert_eq!(t.take_pli(t0 + Duration::from_millis(499)), None);
        assert_eq!(t.take_pli(t0 + PLI_INTERVAL), Some(42));
        assert_eq!((t.stats.keyframe_requests, t.stats.plis_sent), (3, 2));
    }
}
