//! A down-track: one player's view of one kind (audio or video) of a stream.
//!
//! It turns publisher packets into packets for the player leg: SSRC, payload
//! type and extension IDs of the player, continuous sequence numbers and
//! timestamps (via [`Rewriter`]), a keyframe gate for video, a bounded
//! outgoing queue, NACK-driven retransmission with a per-sequence rate limit,
//! and sender-report translation. Allocated at subscribe time, except the
//! queue's growth (see `ring`) and the NACK limiter's slots (first NACK).

use std::time::{Duration, Instant};

use crate::cache::NackLimiter;
pub use crate::counters::DownTrackStats;
use crate::counters::Sent;
use crate::ext::ExtMap;
use crate::feedback::SenderReport;
use crate::out::OutPacket;
use crate::packet::RtpPacket;
use crate::pool::{PlayerExts, Pool};
use crate::ring::Ring;
use crate::router::StreamKey;
use crate::seq::Rewriter;
use crate::skips::Skips;
use crate::slab::{StreamHandle, TrackHandle};
use crate::svc::{Admit, Layering, OperatingPoint};
use crate::track::{MediaKind, Track, TrackInfo};

/// While a video down-track waits for a keyframe, it asks for another one if
/// none started within this long (the first PLI may have been lost).
pub const KEYFRAME_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Parameters of a player leg for one kind, from the player's SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownTrackConfig {
    /// SSRC the player leg sends this kind with.
    pub ssrc: u32,
    /// Payload type negotiated with the player.
    pub payload_type: u8,
    /// The player leg's header-extension IDs.
    pub extensions: ExtMap,
    /// Outgoing queue size in packets (0 is treated as 1).
    pub queue_capacity: usize,
}

/// A packet's source as seen by the fan-out loop.
pub(crate) struct Source<'a> {
    pub(crate) handle: TrackHandle,
    pub(crate) info: &'a TrackInfo,
    pub(crate) ext: i64,
    pub(crate) keyframe: bool,
    /// VP8: the payload descriptor's picture numbers.
    pub(crate) vp8: Option<crate::vp8::Vp8Fields>,
    /// SVC: the packet's layers (`None`: not a layered packet).
    pub(crate) layering: Option<Layering>,
    /// SVC: the track's levels are spatial layers (else temporal).
    pub(crate) spatial_levels: bool,
}

/// What [`DownTrack::forward`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarded {
    Queued,
    QueueFull,
    Gated {
        request_keyframe: bool,
    },
    Late,
    /// An SVC layer above the player's operating point.
    Dropped {
        request_keyframe: bool,
    },
}

/// One queued packet: a reference to the shared packet in the router's
/// [`Pool`] plus what is specific to this player (12 bytes; the SSRC,
/// payload type and extension IDs are the down-track's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) slot: u32,
    pub(crate) seq: u16,
    pub(crate) rtx: bool,
    pub(crate) ts: u32,
    pub(crate) vp8: Option<crate::vp8::Vp8Patch>,
    /// Set the marker bit (an SVC picture ends here for this player).
    pub(crate) marker: bool,
}

/// `Entry::slot` of a padding packet (no pool slot).
pub(crate) const PADDING_SLOT: u32 = u32::MAX;

/// Outcome of one NACKed sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    Queued,
    RateLimited,
    Ignored,
}

/// `#[repr(C)]`, hot fields first: in the router's slab (64-byte aligned
/// slots, generation first) a forwarded packet touches the first two cache
/// lines of a down-track in `push_rtp` and again in `drain_output`: the
/// rewriter (line 0, with the generation), the queue's positions, the leg
/// and the sent counters (line 1). Everything after `bytes_sent` is only
/// read on epoch changes, drops, feedback and setup.
#[repr(C)]
pub(crate) struct DownTrack {
    rewriter: Rewriter,
    queue: Ring<Entry>,
    /// The config's extension IDs in the data path's compact form.
    exts: PlayerExts,
    /// The player leg's SSRC and payload type (from the config).
    ssrc: u32,
    payload_type: u8,
    pub(crate) kind: MediaKind,
    /// Whether the handle sits in the router's ready list.
    pub(crate) in_ready: bool,
    /// `DownTrackStats::packets_sent` and `bytes_sent` (kept here, next to
    /// the queue, rather than in `stats`).
    packets_sent: u64,
    bytes_sent: u64,
    /// The other counters (`packets_sent` and `bytes_sent` there stay 0;
    /// see [`DownTrack::stats`]).
    pub(crate) stats: DownTrackStats,
    /// Attached stream; `None` while waiting for a publisher under `key`.
    pub(crate) stream: Option<StreamHandle>,
    pub(crate) key: StreamKey,
    gate_since: Option<Instant>,
    limiter: NackLimiter,
    /// Video: the highest simulcast layer it may receive (`layers.rs`).
    pub(crate) max_layer: u8,
    /// `stats.nacked` when `max_layer` last changed (`Router::svc_recover`).
    pub(crate) nacked_mark: u64,
    /// SVC: its level fell with no loss reported yet; the first NACK
    /// still gets the keyframe (`Router::svc_recover`).
    pub(crate) recover_on_nack: bool,
    /// VP8: picture numbering across epochs (`vp8.rs`).
    vp8: crate::vp8::Vp8Rewriter,
    /// SVC: the layers it forwards now (`svc.rs`).
    point: OperatingPoint,
    /// SVC: offsets of the epoch's finished segments (`skips.rs`),
    /// allocated at the first packet dropped on purpose.
    skips: Option<Box<Skips>>,
}

impl DownTrack {
    pub(crate) fn new(kind: MediaKind, config: DownTrackConfig, key: StreamKey) -> Self {
        let history = match kind {
            MediaKind::Audio => crate::cache::AUDIO_CACHE_PACKETS,
            MediaKind::Video => crate::cache::VIDEO_CACHE_PACKETS,
        };
        DownTrack {
            rewriter: Rewriter::new(config.ssrc),
            queue: Ring::new(config.queue_capacity),
            exts: PlayerExts::new(&config.extensions),
            ssrc: config.ssrc,
            payload_type: config.payload_type,
            kind,
            in_ready: false,
            packets_sent: 0,
            bytes_sent: 0,
            stats: DownTrackStats::default(),
            stream: None,
            key,
            gate_since: None,
            limiter: NackLimiter::new(history),
            max_layer: (crate::track::MAX_LAYERS - 1) as u8,
            vp8: Default::default(),
            point: OperatingPoint::default(),
            skips: None,
            nacked_mark: 0,
            recover_on_nack: false,
        }
    }

    /// The down-track's counters.
    pub(crate) fn stats(&self) -> DownTrackStats {
        DownTrackStats {
            packets_sent: self.packets_sent,
            bytes_sent: self.bytes_sent,
            ..self.stats
        }
    }

    /// The publisher behind this down-track changed (or went away): the next
    /// forwarded packet starts a new epoch, behind a keyframe for video.
    pub(crate) fn source_changed(&mut self) {
        self.rewriter.reset();
        self.gate_since = None;
        if let Some(s) = &mut self.skips {
            s.clear();
        }
    }

    /// The SVC operating point its cap allows: `max_layer` counts spatial
    /// or temporal layers (`svc.rs`); the top level means every layer.
    fn svc_cap(&self, spatial: bool) -> OperatingPoint {
        let level = if usize::from(self.max_layer) >= crate::track::MAX_LAYERS - 1 {
            u8::MAX
        } else {
            self.max_layer
        };
        if spatial {
            OperatingPoint {
                spatial: level,
                temporal: u8::MAX,
            }
        } else {
            OperatingPoint {
                spatial: u8::MAX,
                temporal: level,
            }
        }
    }

    /// The SVC level it forwards now, in `max_layer`'s terms (`None`: not
    /// forwarding a layered stream).
    pub(crate) fn svc_level(&self, spatial: bool) -> Option<u8> {
        self.rewriter.epoch_track()?;
        Some(self.point.level(spatial))
    }

    /// A keyframe request is due: at once the first time, then every
    /// [`KEYFRAME_RETRY_INTERVAL`] while waiting.
    fn keyframe_due(&mut self, now: Instant) -> bool {
        match self.gate_since {
            Some(since) if now.saturating_duration_since(since) < KEYFRAME_RETRY_INTERVAL => false,
            _ => {
                self.gate_since = Some(now);
                true
            }
        }
    }

    /// Queues up to `count` padding packets (a bandwidth probe) numbered
    /// into the player's sequence after the last packet forwarded, the
    /// media after them shifted up (`Rewriter::insert`); returns how many.
    /// Nothing before the first packet forwarded, while a frame is only
    /// partly forwarded (its last packet, with the marker, not yet), nor
    /// beyond the queue's free room less a quarter (media first).
    pub(crate) fn queue_padding(&mut self, count: usize) -> usize {
        let room = self.queue.capacity() - self.queue.capacity() / 4;
        let mut n = 0;
        while n < count && self.queue.len() < room {
            let Some((seq, ts, seg)) = self.rewriter.insert() else {
                break;
            };
            if seg.len > 0 {
                self.skips.get_or_insert_with(Box::default).push(seg);
            }
            let entry = Entry {
                slot: PADDING_SLOT,
                seq,
                rtx: false,
                ts,
                vp8: None,
                marker: false,
            };
            if self.queue.push(entry).is_err() {
                break;
            }
            n += 1;
        }
        n
    }

    /// Drops source packet `ext` on purpose, closing the gap it leaves.
    fn skip(&mut self, ext: i64) {
        self.stats.dropped_layer += 1;
        if let Some(seg) = self.rewriter.skip(ext) {
            // Once per down-track: the first packet it drops.
            self.skips.get_or_insert_with(Box::default).push(seg);
        }
    }

    /// `(seq, ts)` of a reordered packet that belongs to a finished
    /// segment of the epoch.
    fn late(&self, ext: i64, pkt: &RtpPacket) -> Option<(u16, u32)> {
        if !self.rewriter.before_segment(ext) {
            return None;
        }
        let offset = self.skips.as_ref()?.offset_of(ext)?;
        self.rewriter
            .map_with(pkt.sequence_number, pkt.timestamp, offset)
    }

    /// A layer switch was decided: its keyframe was just requested.
    pub(crate) fn switch_started(&mut self) {
        self.gate_since = None;
    }

    /// A packet of the target layer that is not a keyframe arrived while
    /// switching: true when the keyframe should be asked for again (none
    /// came within [`KEYFRAME_RETRY_INTERVAL`]).
    pub(crate) fn switch_wait(&mut self, now: Instant) -> bool {
        let since = *self.gate_since.get_or_insert(now);
        let retry = now.saturating_duration_since(since) >= KEYFRAME_RETRY_INTERVAL;
        if retry {
            self.gate_since = Some(now);
        }
        retry
    }

    /// The track of the running epoch (what it forwards now).
    pub(crate) fn source_track(&self) -> Option<TrackHandle> {
        self.rewriter.epoch_track()
    }

    pub(crate) fn set_payload_type(&mut self, payload_type: u8) {
        self.payload_type = payload_type;
    }

    pub(crate) fn pending(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn queue_capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Whether packets from `source` must wait for a keyframe before an
    /// epoch can start.
    fn gated_for(&self, info: &TrackInfo) -> bool {
        self.kind == MediaKind::Video && info.codec.has_keyframe_detection()
    }

    /// Rewrites `pkt` (stored in the pool under `slot`) for this player and
    /// enqueues it. On `Queued` the caller adds the queue's reference.
    #[inline]
    pub(crate) fn forward(
        &mut self,
        src: &Source<'_>,
        pkt: &RtpPacket,
        slot: u32,
        now: Instant,
    ) -> Forwarded {
        let mut marker = false;
        let (seq, ts) = match self.rewriter.epoch_track() {
            Some(t) if t == src.handle => {
                if let Some(l) = &src.layering {
                    let cap = self.svc_cap(src.spatial_levels);
                    let before = self.point;
                    let admit = self.point.admit(l, cap);
                    if self.point != before
                        && self.point.level(src.spatial_levels) != before.level(src.spatial_levels)
                    {
                        self.stats.layer_switches += 1;
                    }
                    match admit {
                        Admit::Forward => {
                            marker = self.point.marker(l, false);
                            if l.start && l.intra {
                                // A switching point passed: stop asking.
                                self.gate_since = None;
                            }
                        }
                        admit => {
                            self.skip(src.ext);
                            let request_keyframe =
                                admit == Admit::DropWaiting && self.keyframe_due(now);
                            return Forwarded::Dropped { request_keyframe };
                        }
                    }
                }
                match self
                    .rewriter
                    .rewrite(src.ext, pkt.sequence_number, pkt.timestamp, now)
                    .or_else(|| self.late(src.ext, pkt))
                {
                    Some(r) => r,
                    None => {
                        self.stats.dropped_late += 1;
                        return Forwarded::Late;
                    }
                }
            }
            other => {
                if other.is_some() {
                    self.source_changed();
                }
                if self.gated_for(src.info) && !src.keyframe {
                    self.stats.dropped_keyframe_gate += 1;
                    let since = *self.gate_since.get_or_insert(now);
                    let retry = now.saturating_duration_since(since) >= KEYFRAME_RETRY_INTERVAL;
                    if retry {
                        self.gate_since = Some(now);
                    }
                    return Forwarded::Gated {
                        request_keyframe: retry,
                    };
                }
                self.gate_since = None;
                self.vp8.start_epoch();
                if let Some(l) = &src.layering {
                    // Every layer of a keyframe is a switching point.
                    let cap = self.svc_cap(src.spatial_levels);
                    self.point = OperatingPoint::at_keyframe(cap);
                    self.point.admit(l, cap);
                    marker = self.point.marker(l, false);
                }
                self.rewriter.start(
                    src.handle,
                    src.ext,
                    pkt.sequence_number,
                    pkt.timestamp,
                    src.info.clock_rate,
                    now,
                )
            }
        };
        let vp8 = src.vp8.and_then(|f| self.vp8.rewrite(f));
        self.rewriter.note_marker(seq, pkt.marker || marker);
        self.enqueue(Entry {
            slot,
            seq,
            rtx: false,
            ts,
            vp8,
            marker,
        })
    }

    /// Re-enqueues the packet the player numbered `out_seq`, if it belongs
    /// to the current epoch, is still in `track`'s cache and was not resent
    /// within the rate-limit interval (the queue's reference is taken in
    /// `pool`).
    pub(crate) fn resend(
        &mut self,
        out_seq: u16,
        handle: TrackHandle,
        track: &Track,
        pool: &mut Pool,
        now: Instant,
    ) -> Resend {
        self.stats.nacked += 1;
        if self.rewriter.epoch_track() != Some(handle) {
            return Resend::Ignored;
        }
        let Some(ext) = self
            .rewriter
            .to_source(out_seq)
            .or_else(|| self.skips.as_ref()?.to_source(out_seq))
        else {
            return Resend::Ignored;
        };
        let Some((slot, pkt)) = track
            .cache
            .get(ext)
            .and_then(|slot| Some((slot, &pool.get(slot)?.pkt)))
        else {
            return Resend::Ignored;
        };
        // Its number is the one asked for, whatever its segment.
        let (seq, ts) = (out_seq, pkt.timestamp);
        let Some(ts) = self.rewriter.rtp_time(ts) else {
            return Resend::Ignored;
        };
        // The marker it was sent with (SVC: the end of this player's
        // picture, which the publisher did not mark).
        let marker = crate::svc::parse(track.info.codec, &pkt.payload)
            .is_some_and(|l| self.point.marker(&l, false));
        if self.queue.len() >= self.queue.capacity() {
            self.stats.dropped_queue += 1;
            return Resend::Ignored;
        }
        if !self.limiter.allow(seq, now) {
            self.stats.nack_rate_limited += 1;
            return Resend::RateLimited;
        }
        let vp8 = match track.info.codec {
            crate::keyframe::Codec::Vp8 => crate::vp8::parse(&pkt.payload).map(|f| self.vp8.map(f)),
            _ => None,
        };
        let entry = Entry {
            slot,
            seq,
            rtx: true,
            ts,
            vp8,
            marker,
        };
        match self.enqueue(entry) {
            Forwarded::Queued => {
                pool.retain(slot, 1);
                self.stats.nack_answered += 1;
                Resend::Queued
            }
            _ => Resend::Ignored,
        }
    }

    #[inline]
    fn enqueue(&mut self, entry: Entry) -> Forwarded {
        match self.queue.push(entry) {
            Ok(()) => Forwarded::Queued,
            Err(_) => {
                self.stats.dropped_queue += 1;
                Forwarded::QueueFull
            }
        }
    }

    /// The player leg: extension IDs, SSRC and payload type.
    #[inline]
    pub(crate) fn leg(&self) -> (PlayerExts, u32, u8) {
        (self.exts, self.ssrc, self.payload_type)
    }

    /// Takes the oldest queued entry without counting it; the caller must
    /// [`account`](Self::account) it and release its pool reference.
    #[inline]
    pub(crate) fn pop_entry(&mut self) -> Option<Entry> {
        self.queue.pop()
    }

    /// Counts a popped entry as sent.
    #[inline]
    pub(crate) fn account(&mut self, entry: &Entry, payload_len: usize) {
        if entry.slot == PADDING_SLOT {
            self.stats.padding_sent += 1;
        } else if entry.rtx {
            self.stats.retransmitted += 1;
        } else {
            self.packets_sent += 1;
            self.bytes_sent += payload_len as u64;
        }
    }

    /// The queued entries, oldest first. The caller sends them all, then
    /// calls [`drained`](Self::drained).
    #[inline]
    pub(crate) fn queued(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.queue.iter()
    }

    /// Empties the queue after its entries were sent, counting them as
    /// [`account`](Self::account) would (one counter update per queue).
    #[inline]
    pub(crate) fn drained(&mut self, sent: Sent) {
        self.queue.clear();
        self.packets_sent += sent.packets;
        self.bytes_sent += sent.bytes;
        if sent.retransmitted > 0 {
            self.stats.retransmitted += sent.retransmitted;
        }
        if sent.padding > 0 {
            self.stats.padding_sent += sent.padding;
        }
    }

    /// Takes the oldest queued packet as an owned [`OutPacket`], counting it
    /// as sent and releasing its pool reference.
    pub(crate) fn pop(&mut self, pool: &mut Pool) -> Option<OutPacket> {
        let e = self.pop_entry()?;
        let (exts, ssrc, pt) = self.leg();
        let out = match e.slot {
            PADDING_SLOT => Some(OutPacket {
                ssrc,
                payload_type: pt,
                sequence_number: e.seq,
                timestamp: e.ts,
                padding: true,
                ..OutPacket::default()
            }),
            slot => pool.get(slot).map(|s| s.out_packet(exts, ssrc, pt, &e)),
        };
        pool.release(e.slot);
        if let Some(p) = &out {
            self.account(&e, p.payload.len());
        }
        out
    }

    /// Drops every queued packet.
    pub(crate) fn clear_queue(&mut self, pool: &mut Pool) {
        while let Some(e) = self.pop_entry() {
            pool.release(e.slot);
        }
    }

    /// Translates a sender report of `track` for this player leg; `None`
    /// until this down-track forwards from that track.
    pub(crate) fn sender_report(
        &self,
        track: TrackHandle,
        ntp: u64,
        rtp_time: u32,
    ) -> Option<SenderReport> {
        if self.rewriter.epoch_track() != Some(track) {
            return None;
        }
        Some(SenderReport {
            ssrc: self.ssrc,
            ntp,
            rtp_time: self.rewriter.rtp_time(rtp_time)?,
            packet_count: self.packets_sent as u32,
            octet_count: self.bytes_sent as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::ExtKind;
    use crate::keyframe::Codec;
    use crate::slab::Slab;
    use crate::track::Ingest;
    use bytes::Bytes;

    struct Fixture {
        track: Track,
        handle: TrackHandle,
        dt: DownTrack,
        pool: Pool,
        t0: Instant,
    }

    fn fixture(kind: MediaKind, codec: Codec, queue: usize) -> Fixture {
        let mut slab: Slab<()> = Slab::default();
        let stream = StreamHandle(slab.insert(()));
        let handle = TrackHandle(slab.insert(()));
        let info = TrackInfo {
            kind,
            codec,
            clock_rate: 90_000,
            ssrc: 1111,
            payload_type: 96,
            extensions: ExtMap::new()
                .with(1, ExtKind::AudioLevel)
                .with(2, ExtKind::TransportCc)
                .with(3, ExtKind::VideoOrientation),
            layer: 0,
        };
        let config = DownTrackConfig {
            ssrc: 2222,
            payload_type: 100,
            extensions: ExtMap::new()
                .with(7, ExtKind::AudioLevel)
                .with(8, ExtKind::TransportCc),
            queue_capacity: queue,
        };
        Fixture {
            track: Track::new(info, stream),
            handle,
            dt: DownTrack::new(kind, config, StreamKey::new(1, "s")),
            pool: Pool::default(),
            t0: Instant::now(),
        }
    }

    impl Fixture {
        fn push(&mut self, seq: u16, ts: u32, payload: &'static [u8]) -> Forwarded {
            let mut pkt = RtpPacket {
                ssrc: 1111,
                payload_type: 96,
                sequence_number: seq,
                timestamp: ts,
                marker: true,
                payload: Bytes::from_static(payload),
                ..RtpPacket::default()
            };
            pkt.extensions.push(1, Bytes::from_static(&[0x85]));
            pkt.extensions.push(2, Bytes::from_static(&[0, 9]));
            pkt.extensions.push(3, Bytes::from_static(&[1]));
            let (ext, keyframe) = match self.track.ingest(&pkt) {
                Ingest::Accepted {
                    ext,
                    keyframe,
                    cacheable: true,
                } => (ext, keyframe),
                _ => panic!("not cached"),
            };
            let slot = self.track.cache_packet(ext, pkt, &mut self.pool);
            let pkt = self.pool.get(slot).unwrap().pkt.clone();
            let src = Source {
                handle: self.handle,
                info: &self.track.info,
                ext,
                keyframe,
                vp8: None,
                layering: None,
                spatial_levels: false,
            };
            let r = self.dt.forward(&src, &pkt, slot, self.t0);
            if r == Forwarded::Queued {
                self.pool.retain(slot, 1);
            }
            r
        }

        fn pop(&mut self) -> Option<OutPacket> {
            self.dt.pop(&mut self.pool)
        }
    }

    #[test]
    fn hot_fields_fit_two_cache_lines() {
        use std::mem::{offset_of, size_of};
        // The slab puts the value 8 bytes into a 64-byte aligned slot.
        assert_eq!(size_of::<Rewriter>(), 56);
        assert_eq!(offset_of!(DownTrack, queue), 56);
        assert!(offset_of!(DownTrack, bytes_sent) + 8 <= 128 - 8);
        assert_eq!(size_of::<Option<DownTrack>>(), size_of::<DownTrack>());
    }

    #[test]
    fn rewrites_header_and_extensions() {
        let mut f = fixture(MediaKind::Audio, Codec::Opus, 8);
        assert_eq!(f.push(500, 9000, b"a"), Forwarded::Queued);
        assert_eq!(f.push(501, 9960, b"b"), Forwarded::Queued);
        let p0 = f.pop().unwrap();
        let p1 = f.pop().unwrap();
        assert_eq!(f.pop(), None);
        let (seq0, ts0) = Rewriter::initial(2222);
        assert_eq!((p0.ssrc, p0.payload_type, p0.marker), (2222, 100, true));
        assert_eq!((p0.sequence_number, p0.timestamp), (seq0, ts0));
        assert_eq!(p1.sequence_number, seq0.wrapping_add(1));
        assert_eq!(p1.timestamp, ts0.wrapping_add(960));
        // Audio level remapped 1 -> 7; transport-cc stripped even though the
        // player negotiated it; orientation stripped (not negotiated).
        assert_eq!(p0.extensions.len(), 1);
        assert_eq!(&p0.extensions.get(7).unwrap()[..], &[0x85]);
        assert!(!p0.is_retransmission);
        assert_eq!(&p1.payload[..], b"b");
        assert_eq!((f.dt.stats().packets_sent, f.dt.stats().bytes_sent), (2, 2));
    }

    #[test]
    fn video_gate_waits_for_keyframe_and_retries() {
        let mut f = fixture(MediaKind::Video, Codec::Vp8, 8);
        let delta: &[u8] = &[0x10, 0x01];
        let key: &[u8] = &[0x10, 0x00];
        assert_eq!(
            f.push(1, 0, delta),
            Forwarded::Gated {
                request_keyframe: false
            }
        );
        f.t0 += KEYFRAME_RETRY_INTERVAL;
        assert_eq!(
            f.push(2, 0, delta),
            Forwarded::Gated {
                request_keyframe: true
            }
        );
        assert_eq!(
            f.push(3, 0, delta),
            Forwarded::Gated {
                request_keyframe: false
            }
        );
        assert_eq!(f.push(4, 3000, key), Forwarded::Queued);
        assert_eq!(f.push(5, 3000, &[0x00, 0x01]), Forwarded::Queued); // same frame
        assert_eq!(f.push(6, 6000, delta), Forwarded::Queued);
        assert_eq!(f.dt.stats.dropped_keyframe_gate, 3);
        assert_eq!(f.dt.pending(), 3);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let mut f = fixture(MediaKind::Audio, Codec::Opus, 2);
        assert_eq!(f.push(1, 0, b"1"), Forwarded::Queued);
        assert_eq!(f.push(2, 0, b"2"), Forwarded::Queued);
        assert_eq!(f.push(3, 0, b"3"), Forwarded::QueueFull);
        assert_eq!(f.dt.stats.dropped_queue, 1);
        assert_eq!(&f.pop().unwrap().payload[..], b"1");
        assert_eq!(f.push(4, 0, b"4"), Forwarded::Queued);
        let a = f.pop().unwrap();
        let b = f.pop().unwrap();
        // The drop left a visible gap: 2 then 4.
        assert_eq!(b.sequence_number.wrapping_sub(a.sequence_number), 2);
    }

    #[test]
    fn resend_and_rate_limit() {
        let mut f = fixture(MediaKind::Audio, Codec::Opus, 8);
        for seq in 10..15 {
            f.push(seq, u32::from(seq) * 960, b"x");
        }
        let first = f.pop().unwrap().sequence_number;
        while f.pop().is_some() {}
        let lost = first.wrapping_add(2);
        let h = f.handle;
        assert_eq!(
            f.dt.resend(lost, h, &f.track, &mut f.pool, f.t0),
            Resend::Queued
        );
        assert_eq!(
            f.dt.resend(lost, h, &f.track, &mut f.pool, f.t0),
            Resend::RateLimited
        );
        // Not yet sent, before the epoch, and a foreign track: ignored.
        assert_eq!(
            f.dt.resend(first.wrapping_add(5), h, &f.track, &mut f.pool, f.t0),
            Resend::Ignored
        );
        assert_eq!(
            f.dt.resend(first.wrapping_sub(1), h, &f.track, &mut f.pool, f.t0),
            Resend::Ignored
        );
        let later = f.t0 + crate::cache::NACK_RETRANSMIT_INTERVAL;
        assert_eq!(
            f.dt.resend(lost, h, &f.track, &mut f.pool, later),
            Resend::Queued
        );
        let r = f.pop().unwrap();
        assert!(r.is_retransmission);
        assert_eq!(r.sequence_number, lost);
        assert_eq!(
            r.timestamp.wrapping_sub(f.dt.rewriter.rtp_time(0).unwrap()),
            12 * 960
        );
        assert_eq!(f.pop().map(|p| p.sequence_number), Some(lost));
        assert_eq!(f.dt.stats.retransmitted, 2);
        assert_eq!(f.dt.stats.nacked, 5);
        assert_eq!(f.dt.stats.nack_answered, 2);
        assert_eq!(f.dt.stats.nack_rate_limited, 1);
    }

    #[test]
    fn sender_report_translation() {
        let mut f = fixture(MediaKind::Audio, Codec::Opus, 8);
        assert_eq!(f.dt.sender_report(f.handle, 1, 2), None);
        f.push(7, 1000, b"abc");
        let out = f.pop().unwrap();
        let sr = f.dt.sender_report(f.handle, 0xabcd, 1500).unwrap();
        assert_eq!(sr.ssrc, 2222);
        assert_eq!(sr.ntp, 0xabcd);
        assert_eq!(sr.rtp_time, out.timestamp.wrapping_add(500));
        assert_eq!((sr.packet_count, sr.octet_count), (1, 3));
        f.dt.source_changed();
        assert_eq!(f.dt.sender_report(f.handle, 1, 2), None);
    }
}
