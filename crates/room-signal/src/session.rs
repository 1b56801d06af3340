//! A session is one signaling connection's state: its room mode, its user and
//! the rooms it is in. The connection task owns it (no lock) and feeds it
//! frames, queued items and timer ticks; it answers with frames to write.
//! Ops run in the contract's check order: request shape → identifier rules →
//! token → session state and limits.

/// Target of log lines a client triggers at will (rate-limited by
/// `sfu_core::ratelog`, which limits targets ending in `::client`).
pub(crate) const CLIENT_LOG: &str = "room_signal::session::client";
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::error::{code, Result, SignalError};
use crate::ids;
use crate::limiter::Limiter;
use crate::media::MediaId;
use crate::outbox::{Outbound, Outbox};
use crate::resume::{cannot_resume, ResumeLog};
use crate::room::{self, DeleteReason, Room};
use crate::token;
use crate::wire::{self, User};

/// Why a session ends (maps to the stream delete reason of its publishes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    HeartbeatTimeout,
    Disconnected,
    SlowConsumer,
}

pub(crate) struct JoinedRoom {
    pub(crate) room: Arc<Room>,
    pub(crate) join: u64,
    /// The room token's claims (expiry, publish rights).
    pub(crate) claims: token::Claims,
    pub(crate) warned: bool,
}

/// A stream this connection publishes.
pub(crate) struct Publish {
    pub(crate) stream_id: Arc<str>,
    pub(crate) room_id: Arc<str>,
    pub(crate) media: MediaId,
    /// Its media connection is up (ICE and DTLS).
    pub(crate) connected: bool,
    /// Its simulcast RIDs, in the offer's order (empty without simulcast).
    pub(crate) layers: Arc<[Arc<str>]>,
    /// The RIDs last told paused (`publisherVideoLayersUpdate`).
    pub(crate) paused: u8,
}

/// A stream this connection plays, bound to one of its rooms.
pub(crate) struct Play {
    pub(crate) stream_id: Arc<str>,
    pub(crate) room_id: Arc<str>,
    pub(crate) media: MediaId,
    /// Its media connection is up (ICE and DTLS).
    pub(crate) connected: bool,
    /// Since when (unix ms) it waits for a publisher; `None` while media
    /// flows (or a live stream's play that has not needed to wait).
    pub(crate) waiting_since: Option<u64>,
}

pub struct Session {
    pub(crate) conn_id: u64,
    pub(crate) app: Arc<App>,
    pub(crate) outbox: Outbox,
    pub(crate) multi_room: bool,
    enable_called: bool,
    /// The room mode is fixed by the first successful login.
    mode_locked: bool,
    pub(crate) user: Option<User>,
    /// Joined rooms, earliest first.
    pub(crate) rooms: Vec<JoinedRoom>,
    pub(crate) publishes: Vec<Publish>,
    pub(crate) plays: Vec<Play>,
    requests: Limiter,
    /// Its resume identity, event `seq` and kept events.
    pub(crate) resume: ResumeLog,
}

pub(crate) type OpResult = Result<Option<Map<String, Value>>>;

impl Session {
    pub(crate) fn new(conn_id: u64, app: Arc<App>, outbox: Outbox) -> Self {
        let requests = Limiter::per_second(app.limits.requests_per_connection_per_sec);
        let resume = ResumeLog::new(app.limits.outbox_capacity);
        Session {
            resume,
            conn_id,
            app,
            outbox,
            multi_room: false,
            enable_called: false,
            mode_locked: false,
            user: None,
            rooms: Vec::new(),
            publishes: Vec::new(),
            plays: Vec::new(),
            requests,
        }
    }

    pub fn conn_id(&self) -> u64 {
        self.conn_id
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref().map(|u| &*u.user_id)
    }

    /// Answer one text frame. `None` means no answer (a heartbeat without id).
    pub fn handle_text(&mut self, text: &str, now_ms: u64) -> Option<Bytes> {
        let env = match wire::parse_envelope(text) {
            Ok(env) => env,
            Err(rej) => {
                self.app.requests.count_invalid(rej.error.code);
                return Some(wire::error_response(rej.id, &rej.error));
            }
        };
        if env.op == "heartbeat" {
            return env.id.map(|id| wire::ok_response(Some(id), None));
        }
        let outcome = if self.requests.check() {
            self.dispatch(&env.op, &env.body, now_ms)
        } else {
            Err(SignalError::new(
                code::RATE_LIMITED_SIGNALING,
                "too many requests on this connection",
            ))
        };
        self.app
            .requests
            .count(&env.op, outcome.as_ref().map_or_else(|e| e.code, |_| 0));
        Some(match outcome {
            Ok(result) => {
                let room = env
                    .body
                    .get("roomID")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                tracing::debug!(target: CLIENT_LOG, conn = self.conn_id, op = %env.op, room, user = ?self.user_id(), "op done");
                wire::ok_response(env.id, result)
            }
            Err(e) => {
                tracing::debug!(target: CLIENT_LOG, conn = self.conn_id, op = %env.op, code = e.code, "op failed: {}", e.message);
                wire::error_response(env.id, &e)
            }
        })
    }

    /// The answer to a binary frame: `1000001` with `"id": null`.
    pub fn binary_frame_error() -> Bytes {
        wire::error_response(
            None,
            &SignalError::malformed("binary frames are not supported; send JSON text frames"),
        )
    }

    fn dispatch(&mut self, op: &str, body: &Value, now_ms: u64) -> OpResult {
        match op {
            "enableMultiRoom" => self.enable_multi_room(wire::fields(body)?),
            "loginRoom" => self.login(wire::fields(body)?, now_ms),
            "switchRoom" => self.switch_room(wire::fields(body)?, now_ms),
            "logoutRoom" => self.logout(wire::fields(body)?),
            "renewToken" => self.renew_token(wire::fields(body)?, now_ms),
            "sendBroadcastMessage" => {
                let req: wire::SendMessage = wire::fields(body)?;
                let (room, join) = self.sending_room(&req.room_id)?;
                let user_id = self.user_id().unwrap_or_default();
                let id = room.broadcast_message(user_id, join, &req.message, now_ms)?;
                Ok(Some(one("messageID", json!(id))))
            }
            "sendBarrageMessage" => {
                let req: wire::SendMessage = wire::fields(body)?;
                let (room, join) = self.sending_room(&req.room_id)?;
                let user_id = self.user_id().unwrap_or_default();
                let id = room.barrage_message(user_id, join, &req.message, now_ms)?;
                Ok(Some(one("messageID", json!(id))))
            }
            "sendCustomCommand" => {
                let req: wire::SendCustomCommand = wire::fields(body)?;
                let (room, join) = self.sending_room(&req.room_id)?;
                let user_id = self.user_id().unwrap_or_default();
                room.custom_command(user_id, join, &req.command, &req.to_user_ids)?;
                Ok(None)
            }
            "setRoomExtraInfo" => {
                let req: wire::SetRoomExtraInfo = wire::fields(body)?;
                let (room, join) = self.sending_room(&req.room_id)?;
                let user_id = self.user_id().unwrap_or_default();
                room.set_extra_info(user_id, join, &req.key, &req.value, now_ms)?;
                Ok(None)
            }
            "startPublishingStream" => self.start_publishing(wire::fields(body)?, now_ms),
            "stopPublishingStream" => self.stop_publishing(wire::fields(body)?),
            "startPlayingStream" => self.start_playing(wire::fields(body)?, now_ms),
            "stopPlayingStream" => self.stop_playing(wire::fields(body)?),
            "iceCandidate" => self.ice_candidate(wire::fields(body)?),
            "setStreamExtraInfo" => self.set_stream_extra_info(wire::fields(body)?),
            "setPlayVideoQuality" => self.set_play_video_quality(wire::fields(body)?),
            "resume" => Err(cannot_resume(
                "resume is only allowed as the first request of a connection",
            )),
            _ => Err(SignalError::malformed(format!("unknown op `{op}`"))),
        }
    }

    fn enable_multi_room(&mut self, req: wire::EnableMultiRoom) -> OpResult {
        if self.enable_called || self.mode_locked {
            return Err(SignalError::new(
                code::MULTI_ROOM_TOO_LATE,
                "enableMultiRoom is allowed once, before the first loginRoom",
            ));
        }
        self.enable_called = true;
        self.multi_room = req.enable;
        Ok(None)
    }

    fn verify_token(
        &self,
        token: Option<&str>,
        user_id: &str,
        room_id: &str,
        now_ms: u64,
    ) -> Result<token::Claims> {
        let cfg = &self.app.config;
        token::verify(
            token,
            cfg.app_id,
            &cfg.secret,
            user_id,
            room_id,
            now_ms / 1000,
        )
    }

    pub(crate) fn joined(&self, room_id: &str) -> Option<usize> {
        self.rooms.iter().position(|r| &*r.room.id == room_id)
    }

    /// Join `room_id` as `user`, retrying if the room closes under us.
    fn join(
        &mut self,
        room_id: &str,
        user: &User,
        config: wire::RoomConfig,
        claims: token::Claims,
    ) -> Result<Map<String, Value>> {
        loop {
            let room = self.app.room_for_join(room_id);
            match room.join(user, &self.outbox, config, &self.app.logins) {
                Ok(joined) => {
                    for s in &joined.kicked_streams {
                        self.app.end_stream(s);
                    }
                    tracing::info!(app = self.app.id(), room = room_id, user = %user.user_id,
                        conn = self.conn_id, "login");
                    self.rooms.push(JoinedRoom {
                        room,
                        join: joined.join,
                        claims,
                        warned: false,
                    });
                    self.user = Some(user.clone());
                    self.mode_locked = true;
                    let mut result = joined.result;
                    result.insert("sessionID".into(), self.resume.session_id().into());
                    result.insert("resumeToken".into(), self.resume.token().into());
                    return Ok(result);
                }
                Err(e) if e.code == room::RETRY => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn login(&mut self, req: wire::LoginRoom, now_ms: u64) -> OpResult {
        ids::room_id(&req.room_id)?;
        ids::user_id(&req.user.user_id)?;
        let user_name = req
            .user
            .user_name
            .unwrap_or_else(|| req.user.user_id.clone());
        ids::user_name(&user_name)?;
        let claims = self.verify_token(
            req.token.as_deref(),
            &req.user.user_id,
            &req.room_id,
            now_ms,
        )?;
        if self.multi_room && !self.app.config.multi_room {
            return Err(SignalError::new(
                code::MULTI_ROOM_NOT_PERMITTED,
                "multi-room mode is not permitted for this app",
            ));
        }
        if !self.multi_room && !self.rooms.is_empty() {
            return Err(SignalError::new(
                code::SINGLE_ROOM_ALREADY_IN,
                "single-room mode: already logged into a room (enableMultiRoom first, or switchRoom)",
            ));
        }
        if self.joined(&req.room_id).is_some() {
            return Err(SignalError::new(
                code::ALREADY_IN_ROOM,
                "already logged into this room",
            ));
        }
        if self
            .user
            .as_ref()
            .is_some_and(|u| *u.user_id != *req.user.user_id)
        {
            return Err(SignalError::new(
                code::USER_ID_MISMATCH,
                "userID differs from the one this connection is logged in with",
            ));
        }
        if self.rooms.len() >= usize::from(self.app.config.max_rooms) {
            return Err(SignalError::new(
                code::OVER_MAX_ROOMS,
                format!("at most {} rooms at once", self.app.config.max_rooms),
            ));
        }
        let user = User {
            user_id: Arc::from(req.user.user_id),
            user_name: Arc::from(user_name),
        };
        let result = self.join(&req.room_id, &user, req.config.unwrap_or_default(), claims)?;
        Ok(Some(result))
    }

    fn switch_room(&mut self, req: wire::SwitchRoom, now_ms: u64) -> OpResult {
        ids::room_id(&req.from_room_id)?;
        ids::room_id(&req.to_room_id)?;
        let Some(user) = self.user.clone() else {
            return Err(not_in_room(&req.from_room_id));
        };
        let claims =
            self.verify_token(req.token.as_deref(), &user.user_id, &req.to_room_id, now_ms)?;
        let Some(from) = self.joined(&req.from_room_id) else {
            return Err(not_in_room(&req.from_room_id));
        };
        if req.from_room_id == req.to_room_id || self.joined(&req.to_room_id).is_some() {
            return Err(SignalError::new(
                code::SWITCH_TARGET_INVALID,
                "switchRoom target is already logged in or equals the source",
            ));
        }
        // Join the target first so that a failed switch leaves the user where it was.
        let result = self.join(
            &req.to_room_id,
            &user,
            req.config.unwrap_or_default(),
            claims,
        )?;
        self.leave_at(from, DeleteReason::Stopped);
        Ok(Some(result))
    }

    fn logout(&mut self, req: wire::LogoutRoom) -> OpResult {
        match req.room_id {
            Some(room_id) => {
                ids::room_id(&room_id)?;
                let idx = self.joined(&room_id).ok_or_else(|| not_in_room(&room_id))?;
                self.leave_at(idx, DeleteReason::Stopped);
            }
            None => self.leave_all(DeleteReason::Stopped),
        }
        Ok(None)
    }

    fn renew_token(&mut self, req: wire::RenewToken, now_ms: u64) -> OpResult {
        ids::room_id(&req.room_id)?;
        let Some(user_id) = self.user.as_ref().map(|u| u.user_id.clone()) else {
            return Err(not_in_room(&req.room_id));
        };
        let claims = self.verify_token(req.token.as_deref(), &user_id, &req.room_id, now_ms)?;
        let idx = self
            .joined(&req.room_id)
            .ok_or_else(|| not_in_room(&req.room_id))?;
        if let Some(r) = self.rooms.get_mut(idx) {
            r.claims = claims;
            r.warned = false;
        }
        Ok(None)
    }

    /// The joined room a message goes to, or `1009005`.
    fn sending_room(&self, room_id: &str) -> Result<(Arc<Room>, u64)> {
        ids::room_id(room_id)?;
        self.joined(room_id)
            .and_then(|i| self.rooms.get(i))
            .map(|r| (r.room.clone(), r.join))
            .ok_or_else(|| SignalError::new(code::SENDER_NOT_IN_ROOM, "not logged into this room"))
    }

    fn leave_at(&mut self, idx: usize, reason: DeleteReason) {
        if idx >= self.rooms.len() {
            return;
        }
        let joined = self.rooms.remove(idx);
        let user_id = self
            .user
            .as_ref()
            .map(|u| u.user_id.clone())
            .unwrap_or_else(|| Arc::from(""));
        // Decide about plays bound here while the room still lists its streams.
        // Plays end first, so the app's backend hears of them before the
        // user's logout and the room's close.
        let ending = self.plays_to_end(&joined.room);
        self.rebind_or_end_plays(&joined.room, ending);
        let (streams, empty) = joined.room.leave(&user_id, joined.join, reason);
        for s in &streams {
            self.app.end_stream(s);
        }
        self.publishes.retain(|p| p.room_id != joined.room.id);
        if empty {
            self.app.drop_room(&joined.room);
        }
        tracing::info!(app = self.app.id(), room = %joined.room.id, user = %user_id,
            conn = self.conn_id, ?reason, "logout");
        if self.rooms.is_empty() {
            self.user = None;
        }
    }

    fn leave_all(&mut self, reason: DeleteReason) {
        while !self.rooms.is_empty() {
            self.leave_at(self.rooms.len() - 1, reason);
        }
    }

    /// Handle an item queued by another part of the control plane; returns
    /// the event frames to write (each with its `seq`, and kept for a
    /// resume).
    pub fn on_outbound(&mut self, item: Outbound, now_ms: u64) -> Vec<Bytes> {
        let frames = self.outbound(item, now_ms);
        self.stamp(frames)
    }

    /// Number the event frames `frames` (the contract's `seq`) and keep
    /// them for a resume.
    fn stamp(&mut self, frames: Vec<Bytes>) -> Vec<Bytes> {
        frames.into_iter().map(|f| self.resume.stamp(f)).collect()
    }

    fn outbound(&mut self, item: Outbound, now_ms: u64) -> Vec<Bytes> {
        match item {
            Outbound::Frame(frame) => vec![frame],
            Outbound::Kicked {
                room_id,
                join,
                code,
                listed,
            } => self.on_kicked(&room_id, join, code, &listed),
            Outbound::Media { id, event } => self.on_media_event(id, event),
            Outbound::StreamEnded { stream_id, play } => {
                self.on_stream_ended(&stream_id, play, now_ms)
            }
            Outbound::PublishRemoved { stream_id, media } => {
                self.on_publish_removed(&stream_id, media)
            }
        }
    }

    /// Kicked out of `room_id` when it listed `listed`.
    fn on_kicked(
        &mut self,
        room_id: &str,
        join: u64,
        code: u32,
        listed: &[Arc<str>],
    ) -> Vec<Bytes> {
        let Some(idx) = self.rooms.iter().position(|r| r.join == join) else {
            return Vec::new();
        };
        let joined = self.rooms.remove(idx);
        tracing::info!(app = self.app.id(), room = %room_id, user = ?self.user_id(),
            conn = self.conn_id, code, "kicked out of room");
        let mut frames = vec![wire::event(
            "roomStateChanged",
            json!({"roomID": room_id, "reason": "KICKOUT", "errorCode": code, "extendedData": "{}"}),
        )];
        // The room already delisted our streams there and ended them.
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.publishes)
            .into_iter()
            .partition(|p| *p.room_id == *room_id);
        self.publishes = kept;
        for p in gone {
            frames.push(wire::event(
                "publisherStateUpdate",
                json!({"streamID": &*p.stream_id, "state": "NO_PUBLISH", "errorCode": code}),
            ));
        }
        let ending = self.plays_to_end_if(&joined.room.id, |s| listed.iter().any(|l| **l == *s));
        self.rebind_or_end_plays(&joined.room, ending);
        if self.rooms.is_empty() {
            self.user = None;
        }
        frames
    }

    /// When `on_timer` next has something to do (unix ms).
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let before = self.app.limits.token_will_expire_ms;
        let tokens = self
            .rooms
            .iter()
            .filter(|r| !r.warned)
            .map(|r| r.claims.exp.saturating_mul(1000).saturating_sub(before));
        tokens.chain(self.play_wait_deadlines()).min()
    }

    /// Fire due timers: `tokenWillExpire` for rooms whose token is about
    /// to expire; plays that waited too long for their publisher end.
    pub fn on_timer(&mut self, now_ms: u64) -> Vec<Bytes> {
        let frames = self.timers(now_ms);
        self.stamp(frames)
    }

    fn timers(&mut self, now_ms: u64) -> Vec<Bytes> {
        let before = self.app.limits.token_will_expire_ms;
        let mut out = self.end_expired_waits(now_ms);
        for r in self.rooms.iter_mut().filter(|r| !r.warned) {
            if r.claims.exp.saturating_mul(1000).saturating_sub(before) <= now_ms {
                r.warned = true;
                out.push(wire::event(
                    "tokenWillExpire",
                    json!({"roomID": &*r.room.id}),
                ));
            }
        }
        out
    }

    /// The server is shutting down: `roomStateChanged KICKOUT 1000093` for
    /// every room of this connection, in join order; then the session
    /// leaves them all (streams deleted with reason 5).
    pub fn server_closing(&mut self) -> Vec<Bytes> {
        let frames: Vec<Bytes> = self
            .rooms
            .iter()
            .map(|r| {
                wire::event(
                    "roomStateChanged",
                    json!({"roomID": &*r.room.id, "reason": "KICKOUT",
                           "errorCode": code::SERVER_SHUTTING_DOWN, "extendedData": "{}"}),
                )
            })
            .collect();
        self.leave_all(DeleteReason::Disconnected);
        self.user = None;
        self.stamp(frames)
    }

    /// The connection ended: leave every room.
    pub fn close(&mut self, reason: CloseReason) {
        let reason = match reason {
            CloseReason::HeartbeatTimeout => DeleteReason::HeartbeatTimeout,
            CloseReason::Disconnected | CloseReason::SlowConsumer => DeleteReason::Disconnected,
        };
        self.leave_all(reason);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.leave_all(DeleteReason::Disconnected);
        self.app.session_ended();
    }
}

pub(crate) fn not_in_room(room_id: &str) -> SignalError {
    SignalError::new(
        code::NOT_IN_ROOM,
        format!("not logged into room `{room_id}`"),
    )
}

pub(crate) fn one(key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.into(), value);
    m
}
