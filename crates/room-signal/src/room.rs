//! A room: its members, the streams listed in it, its extra info and its rate
//! limits. All state sits behind one short mutex that is never held across an
//! `.await` or together with another lock. Events are serialized once per room
//! change and the same bytes are queued to every receiver's outbox.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::config::Limits;
use crate::error::{code, Result, SignalError};
use crate::hooks::{AppHooks, HookKind};
use crate::ids;
use crate::limiter::{self, Limiter};
use crate::outbox::{Outbound, Outbox};
use crate::wire::{self, RoomConfig, User};

mod admin;
pub use admin::{server_user, ExtraInfoEntry, RoomSnapshot, SERVER_USER_ID};

static NEXT_JOIN: AtomicU64 = AtomicU64::new(1);
static NEXT_ROOM: AtomicU64 = AtomicU64::new(1);

/// Why a stream left a room's list (`stream_delete_reason` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    Stopped = 1,
    HeartbeatTimeout = 2,
    RepeatedLogin = 3,
    Kicked = 4,
    Disconnected = 5,
    RemovedByServer = 6,
}

/// A stream as the room lists it (the media lives in the stream router).
#[derive(Debug, Clone)]
pub struct ListedStream {
    pub stream_id: Arc<str>,
    pub user: User,
    pub extra_info: String,
    /// Its video's simulcast encodings (RIDs, as the publisher's offer
    /// lists them); empty for a single encoding.
    pub video_layers: Arc<[Arc<str>]>,
}

impl ListedStream {
    fn to_json(&self) -> Value {
        let mut v =
            json!({"streamID": &*self.stream_id, "user": &self.user, "extraInfo": self.extra_info});
        if !self.video_layers.is_empty() {
            v["videoLayers"] = json!(self.video_layers.iter().map(|l| &**l).collect::<Vec<_>>());
        }
        v
    }
}

#[derive(Debug, Clone)]
struct ExtraInfo {
    key: String,
    value: String,
    update_user: User,
    update_time: u64,
}

struct Member {
    user: User,
    outbox: Outbox,
    user_update: bool,
    join: u64,
    broadcast: Limiter,
    command_to_one: Limiter,
    command_to_many: Limiter,
}

#[derive(Default)]
struct RoomState {
    /// Set when the last member left; a closed room is never joined again.
    closed: bool,
    members: HashMap<Arc<str>, Member>,
    max_members: u32,
    extra: Option<ExtraInfo>,
    streams: Vec<ListedStream>,
    last_message_id: u64,
    last_barrage_id: u64,
}

pub struct Room {
    pub id: Arc<str>,
    /// Distinguishes this room from an earlier one with the same ID.
    epoch: u64,
    limits: Arc<Limits>,
    state: Mutex<RoomState>,
    login: Limiter,
    broadcast: Limiter,
    barrage: Limiter,
    extra_info: Limiter,
    hooks: AppHooks,
}

/// A successful join: the `loginRoom` result and what the join displaced.
pub struct Joined {
    pub join: u64,
    pub result: Map<String, Value>,
    /// Streams of a same-userID connection that this join kicked out.
    pub kicked_streams: Vec<Arc<str>>,
}

/// Join failed because the room was closed under us; look it up again.
pub(crate) const RETRY: u32 = 0;

impl Room {
    pub(crate) fn new(id: Arc<str>, limits: Arc<Limits>, hooks: AppHooks) -> Self {
        Room {
            hooks,
            login: Limiter::per_second(limits.login_per_room_per_sec),
            broadcast: Limiter::per_second(limits.broadcast_per_room_per_sec),
            barrage: Limiter::per_second(limits.barrage_per_room_per_sec),
            extra_info: Limiter::per_second(limits.extra_info_per_room_per_sec),
            epoch: NEXT_ROOM.fetch_add(1, Ordering::Relaxed),
            id,
            limits,
            state: Mutex::new(RoomState::default()),
        }
    }

    fn user_updates_on(&self, members: usize) -> bool {
        members <= self.limits.user_update_max_members as usize
    }

    fn stream_update(
        &self,
        kind: &str,
        streams: &[ListedStream],
        reason: Option<DeleteReason>,
    ) -> Bytes {
        let list: Vec<Value> = streams.iter().map(ListedStream::to_json).collect();
        let extended = match reason {
            Some(r) => json!({"stream_delete_reason": streams.iter()
                .map(|s| json!({"stream_id": &*s.stream_id, "code": r as u32}))
                .collect::<Vec<_>>()})
            .to_string(),
            None => "{}".to_string(),
        };
        wire::event(
            "roomStreamUpdate",
            json!({"roomID": &*self.id, "updateType": kind, "streamList": list, "extendedData": extended}),
        )
    }

    /// A user event for the app's backend (under the room lock: in order).
    fn hook_user(&self, kind: HookKind, user_id: &Arc<str>, reason: Option<DeleteReason>) {
        let reason = reason.map(|r| r as u32);
        self.hooks.emit(kind, &self.id, Some(user_id), None, reason);
    }

    /// A stream event for the app's backend (under the room lock).
    fn hook_stream(&self, kind: HookKind, s: &ListedStream, reason: Option<DeleteReason>) {
        let reason = reason.map(|r| r as u32);
        let user = Some(&s.user.user_id);
        self.hooks
            .emit(kind, &self.id, user, Some(&s.stream_id), reason);
    }

    fn user_update(&self, kind: &str, user: &User) -> Bytes {
        wire::event(
            "roomUserUpdate",
            json!({"roomID": &*self.id, "updateType": kind, "userList": [user]}),
        )
    }

    /// Add `user` (connection `outbox`) to the room. A member with the same
    /// userID on another connection is kicked out (`1002050`).
    pub(crate) fn join(
        &self,
        user: &User,
        outbox: &Outbox,
        config: RoomConfig,
        app_logins: &Limiter,
    ) -> Result<Joined> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(SignalError::new(RETRY, "room closed"));
        }
        let replacing = st.members.contains_key(&user.user_id);
        let others = st.members.len() - usize::from(replacing);
        if (st.max_members > 0 && others >= st.max_members as usize)
            || others >= self.limits.max_room_members as usize
        {
            return Err(SignalError::new(code::ROOM_FULL, "room is full"));
        }
        match limiter::first_refusal(&[&self.login, app_logins]) {
            None => {}
            Some(0) => {
                return Err(SignalError::new(
                    code::RATE_LIMITED_ROOM,
                    "too many logins into this room, retry shortly",
                ))
            }
            Some(_) => {
                return Err(SignalError::new(
                    code::RATE_LIMITED_APP,
                    "too many logins into this app, retry shortly",
                ))
            }
        }
        if st.members.is_empty() {
            st.max_members = config.max_member_count;
            self.hooks
                .emit(HookKind::RoomCreated, &self.id, None, None, None);
        }
        let mut kicked_streams = Vec::new();
        if let Some(old) = st.members.remove(&user.user_id) {
            tracing::info!(room = %self.id, user = %user.user_id, conn = old.outbox.conn_id(),
                "same userID logged in again: kicking the older connection");
            old.outbox.send(Outbound::Kicked {
                room_id: self.id.clone(),
                join: old.join,
                code: code::KICKED_SAME_USER,
                listed: Self::listed_ids(&st),
            });
            kicked_streams =
                self.remove_streams_of(&mut st, &user.user_id, DeleteReason::RepeatedLogin);
            self.hook_user(
                HookKind::UserLoggedOut,
                &user.user_id,
                Some(DeleteReason::RepeatedLogin),
            );
        }
        let join = NEXT_JOIN.fetch_add(1, Ordering::Relaxed);
        let l = &self.limits;
        st.members.insert(
            user.user_id.clone(),
            Member {
                user: user.clone(),
                outbox: outbox.clone(),
                user_update: config.user_update,
                join,
                broadcast: Limiter::per_second(l.broadcast_per_user_per_sec),
                command_to_one: Limiter::per_second(l.command_to_one_per_sec),
                command_to_many: Limiter::per_second(l.command_to_many_per_sec),
            },
        );
        self.hook_user(HookKind::UserLoggedIn, &user.user_id, None);
        let updates_on = self.user_updates_on(st.members.len());
        if !replacing && updates_on {
            let frame = self.user_update("ADD", user);
            for m in st.members.values() {
                if m.user_update && m.user.user_id != user.user_id {
                    m.outbox.send_frame(&frame);
                }
            }
        }
        let result = self.view(&st, &user.user_id, config.user_update && updates_on);
        Ok(Joined {
            join,
            result,
            kicked_streams,
        })
    }

    /// What `user_id` sees of the room: its streams (but the user's own),
    /// extra info and, with `users`, the other members — a login result.
    fn view(&self, st: &RoomState, user_id: &str, users: bool) -> Map<String, Value> {
        let mut result = Map::new();
        result.insert(
            "streamList".into(),
            Value::Array(
                st.streams
                    .iter()
                    .filter(|s| &*s.user.user_id != user_id)
                    .map(ListedStream::to_json)
                    .collect(),
            ),
        );
        result.insert("extraInfoList".into(), extra_list(&st.extra));
        if users {
            let users: Vec<&User> = st
                .members
                .values()
                .filter(|m| &*m.user.user_id != user_id)
                .map(|m| &m.user)
                .collect();
            result.insert("userList".into(), json!(users));
        }
        result
    }

    /// The room as its member `user_id` (of join `join`) sees it now, with
    /// `roomID` (a `resume` result's entry); `None` if that join is gone.
    pub(crate) fn member_view(&self, user_id: &str, join: u64) -> Option<Map<String, Value>> {
        let st = self.state.lock();
        let m = Self::member(&st, user_id, join).ok()?;
        let users = m.user_update && self.user_updates_on(st.members.len());
        let mut view = self.view(&st, user_id, users);
        view.insert("roomID".into(), Value::from(&*self.id));
        Some(view)
    }

    /// Remove `user_id` on the server's initiative: the connection is told
    /// (`roomStateChanged KICKOUT` with `code`), its streams are delisted with
    /// reason 4. Returns the streams and whether the room is now empty, or
    /// `None` if the user is not in the room.
    pub(crate) fn kick(&self, user_id: &str, code: u32) -> Option<(Vec<Arc<str>>, bool)> {
        let join = {
            let st = self.state.lock();
            let m = st.members.get(user_id)?;
            m.outbox.send(Outbound::Kicked {
                room_id: self.id.clone(),
                join: m.join,
                code,
                listed: Self::listed_ids(&st),
            });
            m.join
        };
        Some(self.leave(user_id, join, DeleteReason::Kicked))
    }

    /// Remove the member `user_id` if it is still the join `join`. Its streams
    /// are delisted with `reason`; returns them and whether the room is now empty.
    pub(crate) fn leave(
        &self,
        user_id: &str,
        join: u64,
        reason: DeleteReason,
    ) -> (Vec<Arc<str>>, bool) {
        let mut st = self.state.lock();
        if st.members.get(user_id).is_none_or(|m| m.join != join) {
            return (Vec::new(), false);
        }
        let before = st.members.len();
        let Some(member) = st.members.remove(user_id) else {
            return (Vec::new(), false);
        };
        let streams = self.remove_streams_of(&mut st, user_id, reason);
        self.hook_user(HookKind::UserLoggedOut, &member.user.user_id, Some(reason));
        if self.user_updates_on(before) {
            let frame = self.user_update("DELETE", &member.user);
            for m in st.members.values().filter(|m| m.user_update) {
                m.outbox.send_frame(&frame);
            }
        }
        if st.members.is_empty() {
            st.closed = true;
            self.hooks
                .emit(HookKind::RoomClosed, &self.id, None, None, None);
        }
        (streams, st.closed)
    }

    fn remove_streams_of(
        &self,
        st: &mut RoomState,
        user_id: &str,
        reason: DeleteReason,
    ) -> Vec<Arc<str>> {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut st.streams)
            .into_iter()
            .partition(|s| &*s.user.user_id == user_id);
        st.streams = kept;
        for s in &gone {
            self.hook_stream(HookKind::StreamStopped, s, Some(reason));
        }
        if !gone.is_empty() {
            let frame = self.stream_update("DELETE", &gone, Some(reason));
            for m in st.members.values().filter(|m| &*m.user.user_id != user_id) {
                m.outbox.send_frame(&frame);
            }
        }
        gone.into_iter().map(|s| s.stream_id).collect()
    }

    /// The IDs of the streams listed now.
    fn listed_ids(st: &RoomState) -> Vec<Arc<str>> {
        st.streams.iter().map(|s| s.stream_id.clone()).collect()
    }

    fn member<'a>(st: &'a RoomState, user_id: &str, join: u64) -> Result<&'a Member> {
        st.members
            .get(user_id)
            .filter(|m| m.join == join)
            .ok_or_else(|| SignalError::new(code::SENDER_NOT_IN_ROOM, "not logged into this room"))
    }

    /// List a stream published by member `user_id` and tell the others (ADD).
    /// Members and listed streams right now.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.members.len(), state.streams.len())
    }

    pub fn add_stream(
        &self,
        user_id: &str,
        join: u64,
        stream_id: Arc<str>,
        extra_info: String,
        video_layers: Arc<[Arc<str>]>,
    ) -> Result<()> {
        let mut st = self.state.lock();
        let user = Self::member(&st, user_id, join)
            .map_err(|_| SignalError::new(code::NOT_IN_ROOM, "not logged into this room"))?
            .user
            .clone();
        let listed = ListedStream {
            stream_id,
            user,
            extra_info,
            video_layers,
        };
        self.hook_stream(HookKind::StreamPublished, &listed, None);
        let frame = self.stream_update("ADD", std::slice::from_ref(&listed), None);
        for m in st.members.values().filter(|m| &*m.user.user_id != user_id) {
            m.outbox.send_frame(&frame);
        }
        st.streams.push(listed);
        Ok(())
    }

    /// Delist one stream (DELETE with `reason`); false if it was not listed.
    pub fn remove_stream(&self, stream_id: &str, reason: DeleteReason) -> bool {
        let mut st = self.state.lock();
        let Some(pos) = st.streams.iter().position(|s| &*s.stream_id == stream_id) else {
            return false;
        };
        let gone = st.streams.remove(pos);
        self.hook_stream(HookKind::StreamStopped, &gone, Some(reason));
        let frame = self.stream_update("DELETE", std::slice::from_ref(&gone), Some(reason));
        for m in st
            .members
            .values()
            .filter(|m| m.user.user_id != gone.user.user_id)
        {
            m.outbox.send_frame(&frame);
        }
        true
    }

    /// Does this room list `stream_id`?
    pub fn lists_stream(&self, stream_id: &str) -> bool {
        self.state
            .lock()
            .streams
            .iter()
            .any(|s| &*s.stream_id == stream_id)
    }

    /// Change a listed stream's extra info and tell the others.
    pub fn set_stream_extra_info(&self, stream_id: &str, extra_info: String) -> bool {
        let mut st = self.state.lock();
        let Some(s) = st.streams.iter_mut().find(|s| &*s.stream_id == stream_id) else {
            return false;
        };
        s.extra_info = extra_info;
        let (owner, json) = (s.user.user_id.clone(), s.to_json());
        let frame = wire::event(
            "streamExtraInfoUpdate",
            json!({"roomID": &*self.id, "streamList": [json]}),
        );
        for m in st.members.values().filter(|m| m.user.user_id != owner) {
            m.outbox.send_frame(&frame);
        }
        true
    }

    /// `sendBroadcastMessage`: reliable, ordered, to every member but the sender.
    pub(crate) fn broadcast_message(
        &self,
        user_id: &str,
        join: u64,
        message: &str,
        now_ms: u64,
    ) -> Result<u64> {
        let mut st = self.state.lock();
        let from = Self::member(&st, user_id, join)?;
        ids::message_body(message, self.limits.max_message_bytes)?;
        if !limiter::check_all(&[&from.broadcast, &self.broadcast]) {
            return Err(SignalError::new(
                code::BROADCAST_TOO_FREQUENT,
                "broadcast messages too frequent",
            ));
        }
        let from = from.user.clone();
        Ok(self.send_broadcast(&mut st, &from, message, now_ms))
    }

    /// Number and fan out a broadcast from `from` (checks done).
    fn send_broadcast(&self, st: &mut RoomState, from: &User, message: &str, now_ms: u64) -> u64 {
        st.last_message_id += 1;
        let id = st.last_message_id;
        let frame = wire::event(
            "IMRecvBroadcastMessage",
            json!({"roomID": &*self.id, "messageList": [{
                "fromUser": from, "message": message, "sendTime": now_ms, "messageID": id}]}),
        );
        for m in st
            .members
            .values()
            .filter(|m| m.user.user_id != from.user_id)
        {
            m.outbox.send_frame(&frame);
        }
        id
    }

    /// `sendBarrageMessage`: lossy; skipped for receivers that are behind.
    pub(crate) fn barrage_message(
        &self,
        user_id: &str,
        join: u64,
        message: &str,
        now_ms: u64,
    ) -> Result<String> {
        let mut st = self.state.lock();
        let from = Self::member(&st, user_id, join)?.user.clone();
        ids::message_body(message, self.limits.max_message_bytes)?;
        if !self.barrage.check() {
            return Err(SignalError::new(
                code::RATE_LIMITED_ROOM,
                "barrage rate of the room exceeded: message dropped",
            ));
        }
        st.last_barrage_id += 1;
        let id = format!("{:x}-{}", self.epoch, st.last_barrage_id);
        let frame = wire::event(
            "IMRecvBarrageMessage",
            json!({"roomID": &*self.id, "messageList": [{
                "fromUser": &from, "message": message, "sendTime": now_ms, "messageID": id}]}),
        );
        for m in st
            .members
            .values()
            .filter(|m| m.user.user_id != from.user_id)
        {
            m.outbox.send_lossy(&frame);
        }
        Ok(id)
    }

    /// `sendCustomCommand` to `targets` (empty: everyone else).
    pub(crate) fn custom_command(
        &self,
        user_id: &str,
        join: u64,
        command: &str,
        targets: &[String],
    ) -> Result<()> {
        let st = self.state.lock();
        let from = Self::member(&st, user_id, join)?;
        ids::message_body(command, self.limits.max_message_bytes)?;
        for t in targets {
            ids::command_target(t)?;
        }
        let bucket = if targets.len() == 1 {
            &from.command_to_one
        } else {
            &from.command_to_many
        };
        if !bucket.check() {
            return Err(SignalError::new(
                code::RATE_LIMITED_SIGNALING,
                "custom commands too frequent",
            ));
        }
        let frame = wire::event(
            "IMRecvCustomCommand",
            json!({"roomID": &*self.id, "fromUser": &from.user, "command": command}),
        );
        let from_id = &from.user.user_id;
        if targets.is_empty() {
            for m in st.members.values().filter(|m| &m.user.user_id != from_id) {
                m.outbox.send_frame(&frame);
            }
        } else {
            let mut sent: Vec<&str> = Vec::with_capacity(targets.len());
            for t in targets {
                if t.as_str() == &**from_id || sent.contains(&t.as_str()) {
                    continue;
                }
                if let Some(m) = st.members.get(t.as_str()) {
                    m.outbox.send_frame(&frame);
                    sent.push(t);
                }
            }
        }
        Ok(())
    }

    /// `setRoomExtraInfo`: one key per room; everyone else gets the whole list.
    pub(crate) fn set_extra_info(
        &self,
        user_id: &str,
        join: u64,
        key: &str,
        value: &str,
        now_ms: u64,
    ) -> Result<()> {
        let mut st = self.state.lock();
        let user = Self::member(&st, user_id, join)?.user.clone();
        self.put_extra_info(&mut st, user, key, value, now_ms)
    }

    /// Check and store the room's extra info set by `user`; everyone else
    /// gets the whole list.
    fn put_extra_info(
        &self,
        st: &mut RoomState,
        user: User,
        key: &str,
        value: &str,
        now_ms: u64,
    ) -> Result<()> {
        if key.is_empty() {
            return Err(SignalError::new(
                code::EXTRA_KEY_EMPTY,
                "extra-info key is empty",
            ));
        }
        if key.len() > 10 {
            return Err(SignalError::new(
                code::EXTRA_KEY_TOO_LONG,
                "extra-info key longer than 10 bytes",
            ));
        }
        if value.len() > 128 {
            return Err(SignalError::new(
                code::EXTRA_VALUE_TOO_LONG,
                "extra-info value longer than 128 bytes",
            ));
        }
        if st.extra.as_ref().is_some_and(|e| e.key != key) {
            return Err(SignalError::new(
                code::EXTRA_SECOND_KEY,
                "this room already has another extra-info key",
            ));
        }
        if !self.extra_info.check() {
            return Err(SignalError::new(
                code::RATE_LIMITED_ROOM,
                "room extra info set too frequently",
            ));
        }
        let setter = user.user_id.clone();
        st.extra = Some(ExtraInfo {
            key: key.to_string(),
            value: value.to_string(),
            update_user: user,
            update_time: now_ms,
        });
        let frame = wire::event(
            "roomExtraInfoUpdate",
            json!({"roomID": &*self.id, "roomExtraInfoList": extra_list(&st.extra)}),
        );
        for m in st.members.values().filter(|m| m.user.user_id != setter) {
            m.outbox.send_frame(&frame);
        }
        Ok(())
    }

    /// `roomOnlineUserCountUpdate` to every member (lossy: it repeats anyway).
    pub(crate) fn send_online_count(&self) {
        let st = self.state.lock();
        if st.members.is_empty() {
            return;
        }
        let frame = wire::event(
            "roomOnlineUserCountUpdate",
            json!({"roomID": &*self.id, "count": st.members.len()}),
        );
        for m in st.members.values() {
            m.outbox.send_lossy(&frame);
        }
    }
}

fn extra_list(extra: &Option<ExtraInfo>) -> Value {
    Value::Array(
        extra
            .iter()
            .map(|e| {
                json!({"key": e.key, "value": e.value, "updateUser": &e.update_user, "updateTime": e.update_time})
            })
            .collect(),
    )
}
