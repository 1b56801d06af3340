//! What the client remembers so that a dropped connection can be resumed
//! (the contract's "Resume after a dropped connection"): the session's
//! `sessionID`/`resumeToken`, the last event `seq`, and per room the lists
//! the application has been told of (streams, users) with the `loginRoom`
//! fields to log in again. After a resume with `gap: true`, or a fresh
//! login after `1002099`, [`Tracked::diff`] turns the server's lists into
//! the `roomStreamUpdate`/`roomUserUpdate` events the application missed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::signal::Event;

/// One room the session is in.
#[derive(Debug, Clone)]
pub(crate) struct RoomTrack {
    pub(crate) room_id: String,
    /// The `loginRoom` fields it was joined with (for a fresh login).
    pub(crate) login: Value,
    /// Streams listed to us, by ID (`{streamID, user, extraInfo}`).
    streams: BTreeMap<String, Value>,
    /// Users listed to us, by ID, when the login asked for them.
    users: Option<BTreeMap<String, Value>>,
}

/// Everything remembered for a resume.
#[derive(Debug, Default)]
pub(crate) struct Tracked {
    pub(crate) session: Option<(String, String)>,
    pub(crate) last_seq: u64,
    pub(crate) multi_room: bool,
    /// Joined rooms, earliest first.
    pub(crate) rooms: Vec<RoomTrack>,
    pub(crate) publishing: BTreeSet<String>,
    pub(crate) playing: BTreeSet<String>,
}

fn by_id(list: Option<&Value>, key: &str) -> BTreeMap<String, Value> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v.get(key)?.as_str()?.to_string(), v.clone())))
        .collect()
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

impl Tracked {
    /// A request `op` with `fields` succeeded with `result`.
    pub(crate) fn request_done(&mut self, op: &str, fields: &Map<String, Value>, result: &Value) {
        if let (Some(id), Some(token)) = (
            str_field(result, "sessionID"),
            str_field(result, "resumeToken"),
        ) {
            self.session = Some((id.to_string(), token.to_string()));
        }
        let field = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_string);
        match op {
            "enableMultiRoom" => {
                self.multi_room = fields.get("enable").and_then(Value::as_bool) == Some(true)
            }
            "loginRoom" => {
                if let Some(room) = field("roomID") {
                    self.joined(room, Value::Object(fields.clone()), result);
                }
            }
            "switchRoom" => {
                if let (Some(from), Some(to)) = (field("fromRoomID"), field("toRoomID")) {
                    let mut login = self
                        .rooms
                        .iter()
                        .find(|r| r.room_id == from)
                        .map(|r| r.login.clone())
                        .unwrap_or_else(|| json!({}));
                    login["roomID"] = json!(to);
                    if let Some(token) = fields.get("token") {
                        login["token"] = token.clone();
                    }
                    self.rooms.retain(|r| r.room_id != from);
                    self.joined(to, login, result);
                }
            }
            "logoutRoom" => match field("roomID") {
                Some(room) => self.rooms.retain(|r| r.room_id != room),
                None => self.rooms.clear(),
            },
            "renewToken" => {
                if let (Some(room), Some(token)) = (field("roomID"), fields.get("token")) {
                    if let Some(r) = self.rooms.iter_mut().find(|r| r.room_id == room) {
                        r.login["token"] = token.clone();
                    }
                }
            }
            "startPublishingStream" => {
                self.publishing.extend(field("streamID"));
            }
            "stopPublishingStream" => {
                if let Some(s) = field("streamID") {
                    self.publishing.remove(&s);
                }
            }
            "startPlayingStream" => {
                self.playing.extend(field("streamID"));
            }
            "stopPlayingStream" => {
                if let Some(s) = field("streamID") {
                    self.playing.remove(&s);
                }
            }
            _ => {}
        }
    }

    fn joined(&mut self, room_id: String, login: Value, result: &Value) {
        let users = result.get("userList").map(|l| by_id(Some(l), "userID"));
        self.rooms.retain(|r| r.room_id != room_id);
        self.rooms.push(RoomTrack {
            streams: by_id(result.get("streamList"), "streamID"),
            users,
            room_id,
            login,
        });
    }

    fn room(&mut self, fields: &Value) -> Option<&mut RoomTrack> {
        let room = str_field(fields, "roomID")?;
        self.rooms.iter_mut().find(|r| r.room_id == room)
    }

    /// An event arrived: note its `seq` and what it changes in the lists.
    pub(crate) fn event(&mut self, e: &Event) {
        if let Some(seq) = e.fields.get("seq").and_then(Value::as_u64) {
            if seq <= self.last_seq {
                tracing::warn!(seq, last = self.last_seq, "event seq did not increase");
            }
            self.last_seq = self.last_seq.max(seq);
        }
        let add = str_field(&e.fields, "updateType") == Some("ADD");
        match e.name.as_str() {
            "roomStreamUpdate" => {
                let list = by_id(e.fields.get("streamList"), "streamID");
                if let Some(r) = self.room(&e.fields) {
                    for (id, s) in list {
                        if add {
                            r.streams.insert(id, s);
                        } else {
                            r.streams.remove(&id);
                        }
                    }
                }
            }
            "roomUserUpdate" => {
                let list = by_id(e.fields.get("userList"), "userID");
                if let Some(users) = self.room(&e.fields).and_then(|r| r.users.as_mut()) {
                    for (id, u) in list {
                        if add {
                            users.insert(id, u);
                        } else {
                            users.remove(&id);
                        }
                    }
                }
            }
            "roomStateChanged" if str_field(&e.fields, "reason") == Some("KICKOUT") => {
                if let Some(room) = str_field(&e.fields, "roomID") {
                    self.rooms.retain(|r| r.room_id != room);
                }
            }
            "publisherStateUpdate" if str_field(&e.fields, "state") == Some("NO_PUBLISH") => {
                if let Some(s) = str_field(&e.fields, "streamID") {
                    self.publishing.remove(s);
                }
            }
            "playerStateUpdate" if str_field(&e.fields, "state") == Some("NO_PLAY") => {
                if let Some(s) = str_field(&e.fields, "streamID") {
                    self.playing.remove(s);
                }
            }
            _ => {}
        }
    }

    /// `room`'s lists as the server gives them now (`view`: a `resume`
    /// entry or a `loginRoom` result): updates ours and returns the
    /// `roomStreamUpdate`/`roomUserUpdate` events the application missed.
    pub(crate) fn diff(&mut self, room: &str, view: &Value) -> Vec<Event> {
        let Some(r) = self.rooms.iter_mut().find(|r| r.room_id == room) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        let streams = by_id(view.get("streamList"), "streamID");
        push_changes(
            &mut events,
            room,
            "roomStreamUpdate",
            "streamList",
            &r.streams,
            &streams,
        );
        r.streams = streams;
        if let (Some(old), Some(list)) = (r.users.as_ref(), view.get("userList")) {
            let users = by_id(Some(list), "userID");
            push_changes(&mut events, room, "roomUserUpdate", "userList", old, &users);
            r.users = Some(users);
        }
        events
    }
}

/// ADD then DELETE events for what `new` has that `old` lacks and back.
fn push_changes(
    events: &mut Vec<Event>,
    room: &str,
    name: &str,
    list: &str,
    old: &BTreeMap<String, Value>,
    new: &BTreeMap<String, Value>,
) {
    let added: Vec<&Value> = new
        .iter()
        .filter(|(id, _)| !old.contains_key(*id))
        .map(|(_, v)| v)
        .collect();
    let gone: Vec<&Value> = old
        .iter()
        .filter(|(id, _)| !new.contains_key(*id))
        .map(|(_, v)| v)
        .collect();
    for (kind, items) in [("ADD", added), ("DELETE", gone)] {
        if items.is_empty() {
            continue;
        }
        let mut fields = json!({"roomID": room, "updateType": kind, list: items, "resync": true});
        if name == "roomStreamUpdate" {
            fields["extendedData"] = json!("{}");
        }
        events.push(Event {
            name: name.to_string(),
            fields,
        });
    }
}

/// A local `roomStateChanged` (no `seq`: it is the client's own).
pub(crate) fn room_state(room: &str, reason: &str, code: u64) -> Event {
    Event {
        name: "roomStateChanged".into(),
        fields: json!({"roomID": room, "reason": reason, "errorCode": code, "extendedData": "{}"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_lists_and_diffs_what_was_missed() {
        let mut t = Tracked::default();
        let fields = json!({"roomID": "r1", "token": "t", "user": {"userID": "u"}, "config": {"userUpdate": true}});
        let Value::Object(fields) = fields else {
            unreachable!()
        };
        t.request_done(
            "loginRoom",
            &fields,
            &json!({"sessionID": "s", "resumeToken": "k",
                    "streamList": [{"streamID": "a"}], "userList": [{"userID": "x"}]}),
        );
        assert_eq!(t.session, Some(("s".into(), "k".into())));
        t.event(&Event {
            name: "roomStreamUpdate".into(),
            fields: json!({"seq": 1, "roomID": "r1", "updateType": "ADD", "streamList": [{"streamID": "b"}]}),
        });
        assert_eq!(t.last_seq, 1);
        // The server now lists b and c (a went, c came) and users x, y.
        let events = t.diff(
            "r1",
            &json!({"streamList": [{"streamID": "b"}, {"streamID": "c"}],
                    "userList": [{"userID": "x"}, {"userID": "y"}]}),
        );
        let got: Vec<(String, String, usize)> = events
            .iter()
            .map(|e| {
                let list = if e.name == "roomStreamUpdate" {
                    "streamList"
                } else {
                    "userList"
                };
                (
                    e.name.clone(),
                    e.fields["updateType"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    e.fields[list].as_array().map_or(0, Vec::len),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("roomStreamUpdate".into(), "ADD".into(), 1),
                ("roomStreamUpdate".into(), "DELETE".into(), 1),
                ("roomUserUpdate".into(), "ADD".into(), 1),
            ]
        );
        assert!(t
            .diff(
                "r1",
                &json!({"streamList": [{"streamID": "b"}, {"streamID": "c"}]})
            )
            .is_empty());
    }
}
