//! The router's per-packet data path: fan-out of publisher packets
//! ([`Router::push_rtp`]), draining of rewritten packets
//! ([`Router::drain_output`], [`Router::poll_output`],
//! [`Router::poll_downtrack`]), player feedback
//! ([`Router::handle_player_feedback`]), coalesced keyframe requests
//! ([`Router::poll_upstream`]) and sender-report translation.
//!
//! Nothing here allocates: queues, caches, the ready list and the
//! pending-PLI list were all sized at setup time. Each accepted packet is
//! stored once in the router's pool; caches and queues hold references.

use std::time::Instant;

use crate::counters::Sent;
use crate::downtrack::{Forwarded, Resend, Source, PADDING_SLOT};
use crate::feedback::{Feedback, FeedbackSummary, SenderReport, Upstream};
use crate::out::{OutPacket, Outgoing, MAX_HEADER_LEN};
use crate::packet::RtpPacket;
use crate::router::{Router, RouterError};
use crate::slab::{DownTrackHandle, TrackHandle};
use crate::track::{Ingest, MediaKind};

/// What [`Router::push_rtp`] did with one packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushSummary {
    /// Down-tracks the packet was queued on.
    pub enqueued: u32,
    /// Down-tracks whose queue was full (packet dropped for them only).
    pub dropped_queue: u32,
    /// Video down-tracks still waiting for a keyframe.
    pub gated: u32,
    /// Down-tracks that started on a later packet of this source.
    pub late: u32,
    /// SVC down-tracks whose operating point excludes the packet's layer.
    pub dropped_layer: u32,
    /// The packet's SSRC or payload type is not the track's.
    pub rejected: bool,
    /// The same sequence number was already received.
    pub duplicate: bool,
}

impl Router {
    /// Fans a publisher packet out to every down-track of its stream and
    /// kind: each one rewrites it (no payload copy) and queues it. The
    /// packet is also kept in the track's retransmit cache.
    pub fn push_rtp(
        &mut self,
        track: TrackHandle,
        packet: RtpPacket,
        now: Instant,
    ) -> Result<PushSummary, RouterError> {
        let Router {
            streams,
            tracks,
            downtracks,
            ready,
            pli_list,
            pool,
            ..
        } = self;
        let t = tracks.get_mut(track.0).ok_or(RouterError::UnknownTrack)?;
        if t.stalled && t.info.ssrc == packet.ssrc {
            // A stalled (or paused) layer that sends again is live before
            // its packet fans out: its players are retargeted first, so
            // that the keyframe it resumes with (a browser resuming an
            // encoding starts with one) is their switch point rather than
            // a wasted one. Rare; the packet then takes the common path.
            t.stalled = false;
            let stream = t.stream;
            self.retarget(stream);
            return self.push_rtp(track, packet, now);
        }
        let mut summary = PushSummary::default();
        let vp8 = match t.info.codec {
            crate::keyframe::Codec::Vp8 => crate::vp8::parse(&packet.payload),
            _ => None,
        };
        let layering = t.layering(&packet);
        let payload_len = packet.payload.len();
        let (ext, keyframe, slot, uncached) = match t.ingest(&packet) {
            Ingest::Rejected => {
                summary.rejected = true;
                return Ok(summary);
            }
            Ingest::Duplicate => {
                summary.duplicate = true;
                return Ok(summary);
            }
            // The packet moves once, from the argument into its pool slot.
            Ingest::Accepted {
                ext,
                keyframe,
                cacheable: true,
            } => (ext, keyframe, t.cache_packet(ext, packet, pool), false),
            Ingest::Accepted { ext, keyframe, .. } => (
                ext,
                keyframe,
                pool.insert(packet, &t.info.extensions, 0),
                true,
            ),
        };
        t.last_packet = Some(now);
        if let Some(l) = &layering {
            t.svc.count(l, payload_len);
        }
        // Audio and video layer 0 share the value 0; see `layers.rs`.
        let layer = t.info.layer;
        let mut want_keyframe = false;
        if let (Some(stream), Some(shared)) = (streams.get_mut(t.stream.0), pool.get(slot)) {
            // A simulcast layer goes to its players whole, its own
            // (temporal) layers too: their cap chose the simulcast layer.
            let layering = layering.filter(|_| !stream.is_simulcast());
            let src = Source {
                handle: track,
                info: &t.info,
                ext,
                keyframe,
                vp8,
                layering,
                spatial_levels: t.svc.spatial(),
            };
            for sub in stream.subs[t.info.kind.index()].iter_mut() {
                if sub.layer != layer {
                    // Another layer's player, unless it switches to this one.
                    if sub.target != layer {
                        continue;
                    }
                    let Some(dt) = downtracks.get_mut(sub.dt.0) else {
                        continue;
                    };
                    if !keyframe {
                        want_keyframe |= dt.switch_wait(now);
                        continue;
                    }
                    dt.source_changed();
                    dt.stats.layer_switches += 1;
                    sub.layer = layer;
                }
                let h = sub.dt;
                let Some(dt) = downtracks.get_mut(h.0) else {
                    continue;
                };
                match dt.forward(&src, &shared.pkt, slot, now) {
                    Forwarded::Queued => {
                        summary.enqueued += 1;
                        if !dt.in_ready {
                            dt.in_ready = true;
                            ready.push_back(h);
                        }
                    }
                    Forwarded::QueueFull => summary.dropped_queue += 1,
                    Forwarded::Gated { request_keyframe } => {
                        summary.gated += 1;
                        want_keyframe |= request_keyframe;
                    }
                    Forwarded::Late => summary.late += 1,
                    Forwarded::Dropped { request_keyframe } => {
                        summary.dropped_layer += 1;
                        want_keyframe |= request_keyframe;
                    }
                }
            }
        }
        // One reference per queue entry, taken once for the whole fan-out.
        pool.retain(slot, summary.enqueued);
        if uncached {
            pool.release_if_unused(slot);
        }
        if want_keyframe && t.request_keyframe() {
            pli_list.push(track);
        }
        Ok(summary)
    }

    /// Next outgoing packet of any down-track. Down-tracks with pending
    /// packets sit in a ready list; one down-track's packets come out
    /// consecutively in queue order, then the next down-track's.
    pub fn poll_output(&mut self) -> Option<(DownTrackHandle, OutPacket)> {
        while let Some(h) = self.ready.pop_front() {
            let Some(dt) = self.downtracks.get_mut(h.0) else {
                continue;
            };
            let Some(p) = dt.pop(&mut self.pool) else {
                dt.in_ready = false;
                continue;
            };
            if dt.pending() > 0 {
                self.ready.push_front(h);
            } else {
                dt.in_ready = false;
            }
            return Some((h, p));
        }
        None
    }

    /// Next outgoing packet of one down-track (`None` if empty or stale).
    pub fn poll_downtrack(&mut self, downtrack: DownTrackHandle) -> Option<OutPacket> {
        self.downtracks.get_mut(downtrack.0)?.pop(&mut self.pool)
    }

    /// Hands every queued packet to `f`, in [`Router::poll_output`] order,
    /// and returns how many there were: the fast egress path.
    ///
    /// Each packet is lent as an [`Outgoing`]: its RTP header already
    /// serialised (byte for byte what [`OutPacket::write_header`] would
    /// write) in a router-owned buffer, and the publisher's payload `Bytes`.
    /// Nothing is built, cloned or allocated per packet; `f` sends (or
    /// copies) the two slices, and clones `payload` only if it must keep it.
    /// Counters are updated as for `poll_output`. (The first call sizes the
    /// router's header buffer, once.)
    pub fn drain_output(&mut self, mut f: impl FnMut(DownTrackHandle, Outgoing<'_>)) -> usize {
        let Router {
            downtracks,
            ready,
            pool,
            scratch,
            ..
        } = self;
        // A static buffer: nothing allocated.
        let padding = &bytes::Bytes::from_static(&crate::out::PADDING);
        if scratch.len() < MAX_HEADER_LEN {
            // Once per router.
            scratch.resize(MAX_HEADER_LEN, 0);
        }
        let Some(buf) = scratch.first_chunk_mut::<MAX_HEADER_LEN>() else {
            return 0;
        };
        let mut n = 0;
        let (slots, free) = pool.parts();
        // (pool slot << 64 | player map key) whose extension block sits at
        // `buf[12..]`, and its length: consecutive deliveries of one packet
        // to players with the same map reuse it instead of copying it.
        // Key 0 (slot 0, a map forwarding nothing) has no block: length 0.
        let mut block = 0u128;
        let mut ext_len = 0;
        while let Some(h) = ready.pop_front() {
            let Some(dt) = downtracks.get_mut(h.0) else {
                continue;
            };
            dt.in_ready = false;
            let (exts, ssrc, payload_type) = dt.leg();
            let map = u128::from(exts.key());
            // The SSRC is the player's: written once for its whole queue.
            buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
            let mut sent = Sent::default();
            for e in dt.queued() {
                if e.slot == PADDING_SLOT {
                    let len = crate::out::write_padding_header(payload_type, e.seq, e.ts, buf);
                    sent.count(e, 0);
                    f(
                        h,
                        Outgoing {
                            header: buf.get(..len).unwrap_or_default(),
                            payload: padding,
                            ssrc,
                            sequence_number: e.seq,
                            timestamp: e.ts,
                            is_retransmission: false,
                            vp8: None,
                            padding: true,
                        },
                    );
                    // The block at buf[12..] was not touched, but the
                    // fixed header was: the next packet rewrites it anyway.
                    continue;
                }
                let Some(shared) = slots.get_mut(e.slot as usize) else {
                    continue;
                };
                let key = (u128::from(e.slot) << 64) | map;
                if key != block {
                    ext_len = shared.write_ext_block(exts, buf);
                    block = key;
                }
                let len = shared.write_fixed_but_ssrc(ext_len, payload_type, e, buf);
                let payload = shared.payload();
                sent.count(e, payload.len());
                f(
                    h,
                    Outgoing {
                        header: buf.get(..len).unwrap_or_default(),
                        payload,
                        ssrc,
                        sequence_number: e.seq,
                        timestamp: e.ts,
                        is_retransmission: e.rtx,
                        vp8: e.vp8,
                        padding: false,
                    },
                );
                if shared.release_ref(e.slot, free) {
                    // The slot may be reused once freed.
                    (block, ext_len) = (0, 0);
                }
            }
            n += sent.total();
            dt.drained(sent);
        }
        n
    }

    /// Queues up to `count` padding packets on the video down-track
    /// `downtrack` (a bandwidth probe of the player's link, paced by the
    /// caller): RTP packets with the player's SSRC and payload type, the P
    /// bit and only padding ([`PADDING_LEN`](crate::PADDING_LEN) bytes on
    /// `drain_output`), numbered into its sequence so that the player sees
    /// no gap (see `seq.rs`), between two frames. Returns how many were
    /// queued: none before the down-track forwarded its first packet, in
    /// the middle of a frame (the caller tries again, a few milliseconds
    /// later), or when its queue is three-quarters full.
    pub fn queue_padding(&mut self, downtrack: DownTrackHandle, count: usize) -> usize {
        let Some(dt) = self.downtracks.get_mut(downtrack.0) else {
            return 0;
        };
        if dt.kind != MediaKind::Video {
            return 0;
        }
        let n = dt.queue_padding(count);
        if n > 0 && !dt.in_ready {
            dt.in_ready = true;
            self.ready.push_back(downtrack);
        }
        n
    }

    /// Handles RTCP feedback from the player of `downtrack`.
    ///
    /// PLI/FIR on a video down-track register a keyframe request for the
    /// stream's current video track (coalesced, see
    /// [`Router::poll_upstream`]); on audio they are counted and ignored.
    /// NACKed numbers (player numbering) are mapped back to the publisher's,
    /// looked up in the retransmit cache and re-queued with the same
    /// rewritten header, flagged `is_retransmission`; each number is resent
    /// at most once per [`NACK_RETRANSMIT_INTERVAL`](crate::NACK_RETRANSMIT_INTERVAL).
    pub fn handle_player_feedback(
        &mut self,
        downtrack: DownTrackHandle,
        feedback: Feedback<'_>,
        now: Instant,
    ) -> Result<FeedbackSummary, RouterError> {
        let Router {
            streams,
            tracks,
            downtracks,
            ready,
            pli_list,
            pool,
            ..
        } = self;
        let dt = downtracks
            .get_mut(downtrack.0)
            .ok_or(RouterError::UnknownDownTrack)?;
        // What it forwards; a video down-track still waiting for its first
        // keyframe asks its layer's track.
        let track = dt.source_track().or_else(|| {
            let s = streams.get(dt.stream?.0)?;
            let sub = s.subs[dt.kind.index()].iter().find(|x| x.dt == downtrack)?;
            let slot = match dt.kind {
                MediaKind::Audio => 0,
                MediaKind::Video => 1 + usize::from(sub.layer),
            };
            *s.tracks.get(slot)?
        });
        let mut summary = FeedbackSummary::default();
        let wants_keyframe = match feedback {
            Feedback::Pli | Feedback::Fir => {
                dt.stats.keyframe_requests += 1;
                dt.kind == MediaKind::Video
            }
            Feedback::Nack(seqs) => {
                let source = track.and_then(|h| Some((h, tracks.get(h.0)?)));
                for &seq in seqs {
                    let outcome = match source {
                        Some((h, t)) => dt.resend(seq, h, t, pool, now),
                        None => {
                            dt.stats.nacked += 1;
                            Resend::Ignored
                        }
                    };
                    match outcome {
                        Resend::Queued => summary.retransmitted += 1,
                        Resend::RateLimited => summary.rate_limited += 1,
                        Resend::Ignored => summary.ignored += 1,
                    }
                }
                if summary.retransmitted > 0 && !dt.in_ready {
                    dt.in_ready = true;
                    ready.push_back(downtrack);
                }
                // Loss reported after an SVC level fell (`svc_recover`).
                std::mem::take(&mut dt.recover_on_nack)
            }
        };
        if wants_keyframe {
            if let Some((h, t)) = track.and_then(|h| Some((h, tracks.get_mut(h.0)?))) {
                if t.request_keyframe() {
                    pli_list.push(h);
                }
                summary.keyframe_requested = true;
            }
        }
        Ok(summary)
    }

    /// Next message for a publisher, if one is due at `now`.
    ///
    /// Keyframe requests are coalesced per track: the first one is due
    /// immediately; further requests within
    /// [`PLI_INTERVAL`](crate::PLI_INTERVAL) of the last PLI sent become a
    /// single PLI due when that interval ends (see [`Router::poll_timeout`]).
    pub fn poll_upstream(&mut self, now: Instant) -> Option<(TrackHandle, Upstream)> {
        let mut i = 0;
        while let Some(&h) = self.pli_list.get(i) {
            let Some(t) = self.tracks.get_mut(h.0) else {
                self.pli_list.swap_remove(i);
                continue;
            };
            if t.pli_deadline().is_none() {
                t.pli_listed = false;
                self.pli_list.swap_remove(i);
                continue;
            }
            match t.take_pli(now) {
                Some(media_ssrc) => {
                    self.pli_list.swap_remove(i);
                    return Some((h, Upstream::Pli { media_ssrc }));
                }
                None => i += 1,
            }
        }
        None
    }

    /// Earliest instant at which [`Router::poll_upstream`] will have a
    /// *deferred* (coalesced) PLI to emit. Requests due immediately are not
    /// reported here: call `poll_upstream` after every input (as usual in a
    /// sans-IO loop) and again when this deadline passes.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pli_list
            .iter()
            .filter_map(|h| self.tracks.get(h.0)?.pli_deadline()?)
            .min()
    }

    /// Translates the publisher's sender report for `track` (NTP time and
    /// matching RTP time) into the report `downtrack` should send: its SSRC,
    /// the RTP time shifted by its timestamp offset, and its own packet and
    /// octet counts. `None` if the handles are stale or the down-track has
    /// not forwarded anything from this track yet.
    pub fn sender_report(
        &self,
        track: TrackHandle,
        downtrack: DownTrackHandle,
        ntp: u64,
        rtp_time: u32,
    ) -> Option<SenderReport> {
        self.downtracks
            .get(downtrack.0)?
            .sender_report(track, ntp, rtp_time)
    }

    /// Calls `f` with the translated sender report of every down-track
    /// currently forwarding `track`; returns how many there were.
    pub fn for_each_sender_report(
        &self,
        track: TrackHandle,
        ntp: u64,
        rtp_time: u32,
        mut f: impl FnMut(DownTrackHandle, SenderReport),
    ) -> usize {
        let Some(t) = self.tracks.get(track.0) else {
            return 0;
        };
        let mut n = 0;
        for h in self.subscribers(t.stream, t.info.kind) {
            if let Some(sr) = self.sender_report(track, h, ntp, rtp_time) {
                f(h, sr);
                n += 1;
            }
        }
        n
    }

    /// Drops every packet queued on `downtrack` (e.g. after a long stall,
    /// to skip ahead). Returns false for a stale handle.
    pub fn clear_queue(&mut self, downtrack: DownTrackHandle) -> bool {
        match self.downtracks.get_mut(downtrack.0) {
            Some(dt) => {
                dt.clear_queue(&mut self.pool);
                true
            }
            None => false,
        }
    }
}
