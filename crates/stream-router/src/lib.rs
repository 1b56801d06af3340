//! `stream-router`: the SFU's data plane. Pure, sans-IO and deterministic:
//! RTP packets go in, rewritten packets come out. No sockets, threads or
//! clock (every time-dependent call takes `now: Instant`), no WebRTC stack
//! types, and no heap allocation or payload copy per forwarded packet once
//! streams and subscriptions are set up.
//!
//! # Model
//!
//! * A **stream** is published under a [`StreamKey`] `(app, stream_id)` —
//!   not a room — so a stream published in one room is played from any room
//!   without copies. It has at most one audio and one video **track**
//!   ([`TrackInfo`]); adding a track of a kind replaces the previous one.
//! * A player **plays** a stream through one **down-track** per kind
//!   ([`DownTrackConfig`]: the player leg's SSRC, payload type, extension IDs
//!   and queue size). Handles ([`StreamHandle`], [`TrackHandle`],
//!   [`DownTrackHandle`]) are generational: stale ones yield errors/`None`.
//!
//! # Calling protocol (one [`Router`] per event loop)
//!
//! ```text
//! setup:    add_stream(key) / add_track(stream, info)
//!           subscribe(stream, kind, cfg) or subscribe_key(&key, kind, cfg)
//! input:    push_rtp(track, RtpPacket::parse(datagram)?, now)
//!           handle_player_feedback(downtrack, Feedback::{Pli, Fir, Nack(&seqs)}, now)
//! output:   drain_output(|dt, out| send out.header + out.payload)       (fast path)
//!           or: while let Some((dt, pkt)) = poll_output() { pkt.write_header(..); send }
//!           while let Some((track, Upstream::Pli{media_ssrc})) = poll_upstream(now) { send PLI }
//!           SRs: for_each_sender_report(track, ntp, rtp_time, |dt, sr| ..)
//! timers:   sleep until poll_timeout() (deferred PLIs), then poll_upstream(now)
//! ```
//!
//! Call `poll_upstream` after every input: keyframe requests that are due
//! immediately are not reported by `poll_timeout`.
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use stream_router::*;
//!
//! let mut router = Router::new();
//! let stream = router.add_stream(StreamKey::new(1, "alice-cam"))?;
//! let audio = TrackInfo {
//!     kind: MediaKind::Audio, codec: Codec::Opus, clock_rate: 48_000,
//!     ssrc: 0x1234, payload_type: 111,
//!     extensions: ExtMap::new().with(1, ExtKind::AudioLevel), layer: 0,
//! };
//! let track = router.add_track(stream, audio)?;
//! let player = DownTrackConfig {
//!     ssrc: 0xBEEF, payload_type: 109,
//!     extensions: ExtMap::new().with(3, ExtKind::AudioLevel),
//!     queue_capacity: 128,
//! };
//! let down = router.subscribe(stream, MediaKind::Audio, player)?;
//!
//! // 12-byte header (PT 111, seq 7, ts 960, SSRC 0x1234) + payload.
//! let datagram = Bytes::from_static(&[
//!     0x80, 111, 0, 7, 0, 0, 0x03, 0xc0, 0, 0, 0x12, 0x34, 0xde, 0xad,
//! ]);
//! let summary = router.push_rtp(track, RtpPacket::parse(datagram)?, Instant::now())?;
//! assert_eq!(summary.enqueued, 1);
//!
//! let (to, out) = router.poll_output().unwrap();
//! assert_eq!((to, out.ssrc, out.payload_type), (down, 0xBEEF, 109));
//! let mut header = [0u8; MAX_HEADER_LEN];
//! let n = out.write_header(&mut header);
//! // send &header[..n] followed by &out.payload[..] (same buffer as received)
//! assert_eq!((n, &out.payload[..]), (12, &[0xde, 0xad][..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Egress: `drain_output` (fast) and `poll_output` (owned)
//!
//! [`Router::drain_output`] hands every queued packet to a callback as an
//! [`Outgoing`]: the rewritten header already serialised (byte for byte what
//! [`OutPacket::write_header`] writes) plus the publisher's payload `Bytes`,
//! both borrowed for the call. It builds, clones and drops nothing per
//! packet and is several times faster per delivery; the I/O layer should use
//! it (clone `payload` only to keep it past the callback).
//! [`Router::poll_output`] / [`Router::poll_downtrack`] return owned
//! [`OutPacket`]s (payload and extension `Bytes` cloned) and remain for
//! callers that need one packet at a time.
//!
//! ```
//! # use stream_router::*;
//! # fn send(_: &[u8], _: &[u8]) {}
//! # let mut router = Router::new();
//! router.drain_output(|downtrack, out| {
//!     send(out.header, &out.payload); // vectored write / SRTP
//! });
//! ```
//!
//! Internally each accepted packet is stored once in a pool; the retransmit
//! cache and every player queue hold reference-counted 12-byte entries
//! (pool slot, rewritten seq/ts, retransmission flag). The forwarded
//! extension block is serialised once per packet and distinct player
//! extension map, then copied into each header.
//!
//! # Behaviour
//!
//! * **Rewriting**: SSRC and payload type become the player leg's; header
//!   extensions are remapped to the player's IDs, per-hop ones (transport-cc,
//!   abs-send-time, MID, RID) and un-negotiated ones are stripped.
//! * **Numbering**: each down-track's sequence numbers and timestamps start
//!   at values derived from its SSRC (SplitMix64 of the SSRC: deterministic
//!   but spread out) and stay continuous across publisher changes (new
//!   track, stream removed and re-added, [`Router::attach`] to another
//!   stream): the next source continues at `last seq + 1` and
//!   `last ts + elapsed × clock rate` (≥ 1). Reordered packets keep their
//!   relative position; packets older than the first one forwarded from the
//!   current source are dropped (`dropped_late`). 16/32-bit wraps are
//!   handled by extended sequence numbers and wrapping offsets.
//! * **Keyframe gate**: a video down-track (VP8/VP9/H.264/AV1) starts — and
//!   restarts after a source change — on the first packet of a keyframe;
//!   everything after it passes. Subscribing, (re)attaching and adding a
//!   video track request a keyframe upstream; while still gated, a
//!   down-track asks again every [`KEYFRAME_RETRY_INTERVAL`]. Audio and
//!   unknown codecs are not gated.
//! * **Queues**: each down-track has a bounded ring, grown up to its
//!   capacity as it fills (the pool reserves every cached packet plus one
//!   full queue).
//!   When full, the new packet is dropped for that player only
//!   (`dropped_queue`); the publisher and other players are unaffected.
//!   The gate is *not* re-armed after a drop: the player sees a sequence gap
//!   and NACKs it (served from the cache) or sends a PLI itself; re-gating
//!   would turn one drop into a freeze until the next keyframe.
//! * **NACK**: each track caches its last [`VIDEO_CACHE_PACKETS`] /
//!   [`AUDIO_CACHE_PACKETS`] packets. NACKed numbers of the current source
//!   still in the cache are re-queued with the same rewritten header and
//!   `is_retransmission = true`; each is resent to a given player at most
//!   once per [`NACK_RETRANSMIT_INTERVAL`] (100 ms, about one RTT), so a
//!   NACK storm yields at most one copy per cached packet per interval.
//! * **PLI coalescing**: PLI/FIR from any number of players, plus the
//!   router's own requests, produce at most one upstream PLI per track per
//!   [`PLI_INTERVAL`] (500 ms). The first is due immediately; later ones in
//!   the window are merged into one PLI due when the window ends.
//! * **Sender reports**: [`Router::sender_report`] maps the publisher's
//!   `(ntp, rtp_time)` to each down-track's SSRC and timestamp offset, with
//!   the down-track's own packet/octet counts.
//!
//! # Zero copy, zero allocation
//!
//! [`RtpPacket::parse`] slices the datagram; [`OutPacket::payload`] is the
//! same buffer. Note that a `Bytes` built from a `Vec` allocates its shared
//! refcount on first clone (a `bytes` detail, once per received datagram,
//! not per player); slicing datagrams out of a shared receive buffer avoids
//! even that. `tests/alloc.rs` (`poll_output`) and `tests/alloc_drain.rs`
//! (`drain_output`) check zero allocations per forwarded packet.

mod cache;
mod counters;
mod datapath;
mod dd;
mod downtrack;
mod ext;
mod feedback;
mod keyframe;
mod layers;
mod out;
mod packet;
mod pool;
mod rate;
mod ready;
mod ring;
mod router;
mod seq;
mod skips;
mod slab;
mod svc;
mod track;
mod vp8;

pub use cache::{AUDIO_CACHE_PACKETS, NACK_RETRANSMIT_INTERVAL, VIDEO_CACHE_PACKETS};
pub use counters::RouterTotals;
pub use datapath::PushSummary;
pub use downtrack::{DownTrackConfig, DownTrackStats, KEYFRAME_RETRY_INTERVAL};
pub use ext::{ExtKind, ExtMap};
pub use feedback::{
    nack_sequence_numbers, Feedback, FeedbackSummary, SenderReport, Upstream, PLI_INTERVAL,
};
pub use keyframe::Codec;
pub use layers::{LayerState, LAYER_STALL};
pub use out::{OutPacket, Outgoing, MAX_HEADER_LEN, PADDING_LEN};
pub use packet::{Extension, ExtensionIter, Extensions, ParseError, RtpPacket, MAX_EXTENSIONS};
pub use router::{Router, RouterError, StreamKey, SvcMedia, TrackMedia};
pub use slab::{DownTrackHandle, StreamHandle, TrackHandle};
pub use track::{MediaKind, TrackInfo, TrackStats, MAX_LAYERS};
pub use vp8::Vp8Patch;
