//! What the control plane tells an application's backend (webhooks, ZEGO's
//! "server callbacks"): rooms created and closed, users in and out, streams
//! published and stopped, plays started and stopped.
//!
//! The control plane only *emits* [`HookEvent`]s through [`Hooks`]; delivery
//! (HTTP, signatures, retries) is the I/O edge's job (`sfu-core::webhooks`).
//! Room events are emitted under the room's lock, so their order is the
//! room's own order; an implementation must not block (queue and return).

use std::sync::Arc;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// A room got its first member.
    RoomCreated,
    /// A room's last member left.
    RoomClosed,
    UserLoggedIn,
    /// `reason`: the leave reason (see [`HookEvent::reason`]).
    UserLoggedOut,
    StreamPublished,
    /// `reason`: the `stream_delete_reason` code.
    StreamStopped,
    PlayStarted,
    /// `reason`: why the play ended (see [`HookEvent::reason`]).
    PlayStopped,
}

impl HookKind {
    /// The `event` field of the webhook body.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::RoomCreated => "room_created",
            HookKind::RoomClosed => "room_closed",
            HookKind::UserLoggedIn => "user_logged_in",
            HookKind::UserLoggedOut => "user_logged_out",
            HookKind::StreamPublished => "stream_published",
            HookKind::StreamStopped => "stream_stopped",
            HookKind::PlayStarted => "play_started",
            HookKind::PlayStopped => "play_stopped",
        }
    }
}

/// One event for an app's backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEvent {
    pub kind: HookKind,
    pub app_id: u32,
    pub room_id: Arc<str>,
    pub user_id: Option<Arc<str>>,
    pub stream_id: Option<Arc<str>>,
    /// `user_logged_out` and `stream_stopped`: 1 logged out / stopped,
    /// 2 heartbeat timeout, 3 the same userID logged in elsewhere, 4 kicked
    /// by the server, 5 connection lost, 6 stream removed by the server.
    /// `play_stopped`: 1 stopped by the player, 5 the player left the room
    /// or its connection ended, else the error code the player was given.
    pub reason: Option<u32>,
}

/// Where the control plane sends its events. `emit` must return at once.
pub trait Hooks: Send + Sync {
    fn emit(&self, event: HookEvent);
}

/// No webhooks.
pub struct NoHooks;

impl Hooks for NoHooks {
    fn emit(&self, _event: HookEvent) {}
}

/// The [`Hooks`] of one app, which stamps its app ID on each event.
#[derive(Clone)]
pub(crate) struct AppHooks {
    pub(crate) app_id: u32,
    pub(crate) sink: Arc<dyn Hooks>,
}

impl AppHooks {
    pub(crate) fn emit(
        &self,
        kind: HookKind,
        room_id: &Arc<str>,
        user_id: Option<&Arc<str>>,
        stream_id: Option<&Arc<str>>,
        reason: Option<u32>,
    ) {
        self.sink.emit(HookEvent {
            kind,
            app_id: self.app_id,
            room_id: room_id.clone(),
            user_id: user_id.cloned(),
            stream_id: stream_id.cloned(),
            reason,
        });
    }
}

/// Collects events (tests).
#[derive(Default)]
pub struct RecordedHooks(pub parking_lot::Mutex<Vec<HookEvent>>);

impl Hooks for RecordedHooks {
    fn emit(&self, event: HookEvent) {
        self.0.lock().push(event);
    }
}
