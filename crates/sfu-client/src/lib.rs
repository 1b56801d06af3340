//! # sfu-client: a Rust client of the SFU
//!
//! Speaks the server's wire contract (`docs/protocol.md`): JSON signaling
//! over WebSocket, plus WebRTC publish and play built on the async
//! `webrtc` 0.21 crate. Made for tests, benches and the load tool, so it
//! exposes what they measure: exact RTP packets in and out, arrival times,
//! feedback counters, connect times. Every socket stays on loopback
//! (`127.0.0.1`, no ICE servers, no mDNS).
//!
//! ## Signaling — [`Client`]
//! - [`Client::connect`]`(addr, app_id)`: `addr` is `host:port` or a
//!   `ws://`/`http://` URL; sends `{"op":"heartbeat"}` every 5 s
//!   ([`ConnectOptions`] to change that and the timeouts).
//! - [`Client::request`]`(op, fields) -> Result<Value>`: one request; the
//!   result is the response without `id`/`code`; a non-zero code is
//!   [`ClientError::Server`]`{code, message}`.
//! - Typed ops: [`Client::enable_multi_room`], [`Client::login_room`],
//!   [`Client::logout_room`], [`Client::switch_room`], [`Client::renew_token`],
//!   [`Client::send_broadcast_message`], [`Client::send_barrage_message`],
//!   [`Client::send_custom_command`], [`Client::set_room_extra_info`],
//!   [`Client::set_stream_extra_info`].
//! - Events ([`Event`]`{name, fields}`) queue in arrival order:
//!   [`Client::next_event`], [`Client::wait_event`] (first of a name, others
//!   stay queued), [`Client::drain_events`].
//!
//! ## Media — [`Publisher`], [`Player`]
//! - [`Client::publish`]`(stream_id, room_id, `[`PublishTracks`]`)`: a
//!   send-only peer connection; resolves once connected
//!   ([`Client::publish_via`] sends its media through a given address).
//!   [`Publisher::write_rtp`]`(kind, packet)` sends one packet as given
//!   (SSRC and payload type set to the track's); PLI/FIR/NACK from the server
//!   are counted and queued ([`Publisher::next_feedback`]).
//! - [`Client::play`]`(stream_id)`: a receive-only peer connection offering
//!   Opus, VP8, VP9 and H.264 ([`Client::play_with`] and [`PlayOptions`] to
//!   narrow the codecs or turn off automatic NACKs); [`Player::recv`] yields every RTP packet as
//!   [`Received`]`{kind, packet, at}`; [`Player::send_pli`],
//!   [`Player::send_nack`].
//! - Negotiation is non-trickle: the offer goes out after local (host-only)
//!   gathering (well under a millisecond), the ICE-lite server's answer
//!   carries its candidate. ICE checks run every 5 ms while connecting.
//! - [`rtcp_tap::FeedbackTap`] is the interceptor that surfaces inbound
//!   PLI/FIR/NACK; test peers built directly on `webrtc` can reuse it.
//!
//! ## Test media — [`media`]
//! [`ClipSource::vp8`], [`ClipSource::h264`], [`ClipSource::opus`] packetize
//! the repository's clips (`media/`, embedded) into RTP, optionally looped
//! forever; [`media::pace`] sends a source in real time.

pub mod codecs;
pub mod error;
pub mod link;
pub mod media;
mod ops;
mod peer;
pub mod play;
pub mod publish;
mod resume;
pub mod rtcp_tap;
pub mod signal;

pub use codecs::{MediaKind, VideoCodec};
pub use error::{ClientError, Result};
pub use media::{pace, ClipSource, Frame};
pub use play::{PlayOptions, Player, Received};
pub use publish::{Feedback, FeedbackEvent, PublishTracks, Publisher};
pub use signal::{Client, ConnectOptions, Event};

/// The `rtc` crate this client's packet types come from (`rtc::rtp::Packet`).
pub use rtc;
