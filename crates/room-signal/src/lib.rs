//! # room-signal: the control plane
//!
//! Rooms, sessions, multi-room login rules, real-time messages, tokens and
//! the JSON wire protocol of `protocol.md`. No sockets and no media types:
//! the I/O edge (`sfu-core`) feeds a [`Session`] the frames of one WebSocket
//! and writes back what it returns; events for other connections travel
//! through their [`outbox::Outbox`] as pre-serialized bytes.
//!
//! - [`config`]: apps and limits as configured.
//! - [`app`]: the [`Hub`] of apps; an [`App`]'s rooms and stream IDs.
//! - [`room`]: one room's members, streams, extra info, fan-out.
//! - [`session`]: one connection's ops, in the contract's check order.
//! - [`wire`]: request parsing, response and event encoding.
//! - [`token`]: JWT verification and minting.
//! - [`media`]: the seam to the media plane (`MediaControl`).
//! - [`hooks`]: events for the app's backend (webhooks), emitted in room order.
//! - `session_media`: publish/play ops and the play-binding rules.
//! - [`resume`]: event `seq`, the events kept for a resume, the takeover.
//! - [`ids`], [`error`], [`limiter`], [`outbox`]: the small pieces.

pub mod app;
pub mod config;
pub mod error;
pub mod hooks;
pub mod ids;
pub mod limiter;
pub mod media;
pub mod outbox;
pub mod refusals;
pub mod requests;
pub mod resume;
pub mod room;
pub mod session;
mod session_media;
pub mod simulcast;
pub mod token;
pub mod wire;

pub use app::{App, Hub, HubStats};
pub use config::{AppConfig, Limits, SignalConfig};
pub use error::{code, SignalError};
pub use hooks::{HookEvent, HookKind, Hooks, NoHooks};
pub use session::{CloseReason, Session};
