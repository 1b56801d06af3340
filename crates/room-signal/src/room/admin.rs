//! What the server's admin API reads and does in one room: a snapshot of
//! its members, streams and extra info, and extra info and broadcast
//! messages sent by the server itself (as the reserved user
//! [`SERVER_USER_ID`], which no client may log in as).

use super::*;

/// The userID the server acts as in rooms. `ids::user_id` refuses it for
/// clients, so a member can never be mistaken for the server.
pub use crate::ids::SERVER_USER_ID;

/// The user that server-sent messages and extra info come from.
pub fn server_user() -> User {
    User {
        user_id: Arc::from(SERVER_USER_ID),
        user_name: Arc::from("server"),
    }
}

/// One room's extra-info entry as the admin API lists it.
#[derive(Debug, Clone)]
pub struct ExtraInfoEntry {
    pub key: String,
    pub value: String,
    pub update_user: User,
    /// Unix milliseconds.
    pub update_time: u64,
}

/// A room at one instant: members in join order, listed streams in
/// publish order, extra info.
#[derive(Debug, Clone)]
pub struct RoomSnapshot {
    pub room_id: Arc<str>,
    pub users: Vec<User>,
    pub streams: Vec<ListedStream>,
    pub extra_info: Vec<ExtraInfoEntry>,
}

/// The members, earliest join first.
fn in_join_order(st: &RoomState) -> impl Iterator<Item = &Member> {
    let mut members: Vec<&Member> = st.members.values().collect();
    members.sort_by_key(|m| m.join);
    members.into_iter()
}

impl Room {
    /// The room as it is now.
    pub fn snapshot(&self) -> RoomSnapshot {
        let st = self.state.lock();
        RoomSnapshot {
            room_id: self.id.clone(),
            users: in_join_order(&st).map(|m| m.user.clone()).collect(),
            streams: st.streams.clone(),
            extra_info: st
                .extra
                .iter()
                .map(|e| ExtraInfoEntry {
                    key: e.key.clone(),
                    value: e.value.clone(),
                    update_user: e.update_user.clone(),
                    update_time: e.update_time,
                })
                .collect(),
        }
    }

    /// The listing of `stream_id`, if this room lists it.
    pub fn listed(&self, stream_id: &str) -> Option<ListedStream> {
        let st = self.state.lock();
        st.streams
            .iter()
            .find(|s| &*s.stream_id == stream_id)
            .cloned()
    }

    /// The userIDs of the members, in join order.
    pub fn member_ids(&self) -> Vec<Arc<str>> {
        let st = self.state.lock();
        in_join_order(&st).map(|m| m.user.user_id.clone()).collect()
    }

    /// `setRoomExtraInfo` by the server: the same rules and room rate limit
    /// as a member's; every member gets `roomExtraInfoUpdate` with
    /// `updateUser` the server user.
    pub fn server_set_extra_info(&self, key: &str, value: &str, now_ms: u64) -> Result<()> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(SignalError::new(code::NOT_IN_ROOM, "the room is closed"));
        }
        self.put_extra_info(&mut st, server_user(), key, value, now_ms)
    }

    /// A broadcast message from the server to every member, numbered in
    /// the room's sequence; the room's broadcast rate limit applies.
    pub fn server_broadcast(&self, message: &str, now_ms: u64) -> Result<u64> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(SignalError::new(code::NOT_IN_ROOM, "the room is closed"));
        }
        ids::message_body(message, self.limits.max_message_bytes)?;
        if !self.broadcast.check() {
            return Err(SignalError::new(
                code::BROADCAST_TOO_FREQUENT,
                "broadcast messages too frequent",
            ));
        }
        Ok(self.send_broadcast(&mut st, &server_user(), message, now_ms))
    }
}
