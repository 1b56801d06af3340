//! The JSON wire format: request envelopes, per-op field structs, and the
//! builders for responses and events. Parsing never panics; every failure is
//! a `1000001` with a message naming the field.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{code, SignalError};

/// `{userID, userName}` as it appears in events and results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    #[serde(rename = "userID")]
    pub user_id: Arc<str>,
    #[serde(rename = "userName")]
    pub user_name: Arc<str>,
}

/// A request whose `id` and `op` could be read; `body` holds the rest.
#[derive(Debug)]
pub struct Envelope {
    pub id: Option<u64>,
    pub op: String,
    pub body: Value,
}

/// A request that could not be read far enough to dispatch: the error and
/// the id to answer with (`None` → `"id": null`).
#[derive(Debug)]
pub struct Rejected {
    pub id: Option<u64>,
    pub error: SignalError,
}

/// Read the envelope of one text frame.
pub fn parse_envelope(text: &str) -> Result<Envelope, Rejected> {
    let value: Value = serde_json::from_str(text).map_err(|e| Rejected {
        id: None,
        error: SignalError::malformed(format!("invalid JSON: {e}")),
    })?;
    let Value::Object(map) = value else {
        return Err(Rejected {
            id: None,
            error: SignalError::malformed("request must be a JSON object"),
        });
    };
    // `"id": null` counts as no id; any other id that is not a u64 (`-5`,
    // `5.0`, `18446744073709551616`, `"7"`) is unreadable: answered with
    // `"id": null`, whatever the op (heartbeats included).
    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(id) => Some(id),
            None => {
                return Err(Rejected {
                    id: None,
                    error: SignalError::malformed("field `id` must be an unsigned integer"),
                })
            }
        },
    };
    let op = match map.get("op") {
        Some(Value::String(op)) => op.clone(),
        Some(_) => {
            return Err(Rejected {
                id,
                error: SignalError::malformed("field `op` must be a string"),
            })
        }
        None => {
            return Err(Rejected {
                id,
                error: SignalError::malformed("missing field `op`"),
            })
        }
    };
    if id.is_none() && op != "heartbeat" {
        return Err(Rejected {
            id: None,
            error: SignalError::malformed("missing field `id`"),
        });
    }
    Ok(Envelope {
        id,
        op,
        body: Value::Object(map),
    })
}

/// Deserialize an op's fields, turning serde's complaint into a `1000001`.
pub fn fields<T: DeserializeOwned>(body: &Value) -> Result<T, SignalError> {
    T::deserialize(body).map_err(|e| SignalError::malformed(e.to_string()))
}

#[derive(Debug, Deserialize)]
pub struct EnableMultiRoom {
    pub enable: bool,
}

#[derive(Debug, Deserialize)]
pub struct UserIn {
    #[serde(rename = "userID")]
    pub user_id: String,
    #[serde(rename = "userName")]
    pub user_name: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomConfig {
    #[serde(default)]
    pub user_update: bool,
    #[serde(default)]
    pub max_member_count: u32,
}

#[derive(Debug, Deserialize)]
pub struct LoginRoom {
    #[serde(rename = "roomID")]
    pub room_id: String,
    pub token: Option<String>,
    pub user: UserIn,
    pub config: Option<RoomConfig>,
}

#[derive(Debug, Deserialize)]
pub struct SwitchRoom {
    #[serde(rename = "fromRoomID")]
    pub from_room_id: String,
    #[serde(rename = "toRoomID")]
    pub to_room_id: String,
    pub token: Option<String>,
    pub config: Option<RoomConfig>,
}

#[derive(Debug, Deserialize)]
pub struct LogoutRoom {
    #[serde(rename = "roomID")]
    pub room_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RenewToken {
    #[serde(rename = "roomID")]
    pub room_id: String,
    pub token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SendMessage {
    #[serde(rename = "roomID")]
    pub room_id: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
pub struct SendCustomCommand {
    #[serde(rename = "roomID")]
    pub room_id: String,
    pub command: String,
    #[serde(rename = "toUserIDs")]
    pub to_user_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct SetRoomExtraInfo {
    #[serde(rename = "roomID")]
    pub room_id: String,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub struct StartPublishing {
    #[serde(rename = "streamID")]
    pub stream_id: String,
    #[serde(rename = "roomID")]
    pub room_id: Option<String>,
    pub sdp: String,
    #[serde(rename = "extraInfo")]
    pub extra_info: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StartPlaying {
    #[serde(rename = "streamID")]
    pub stream_id: String,
    pub sdp: String,
    /// Simulcast quality cap (`setPlayVideoQuality`); automatic if absent.
    #[serde(rename = "videoQuality", default)]
    pub video_quality: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SetPlayVideoQuality {
    #[serde(rename = "streamID")]
    pub stream_id: String,
    pub quality: String,
}

/// The highest simulcast layer a play's `videoQuality` allows: `auto`
/// (`u8::MAX`: the best its bandwidth allows), `low` 0, `medium` 1,
/// `high` 2.
pub fn video_quality_cap(q: &str) -> Option<u8> {
    match q {
        "auto" => Some(u8::MAX),
        "low" => Some(0),
        "medium" => Some(1),
        "high" => Some(2),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
pub struct StreamOnly {
    #[serde(rename = "streamID")]
    pub stream_id: String,
}

#[derive(Debug, Deserialize)]
pub struct IceCandidate {
    #[serde(rename = "streamID")]
    pub stream_id: String,
    pub candidate: String,
    #[serde(rename = "sdpMid")]
    pub sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex")]
    pub sdp_mline_index: Option<u16>,
}

#[derive(Debug, Deserialize)]
pub struct SetStreamExtraInfo {
    #[serde(rename = "streamID")]
    pub stream_id: String,
    #[serde(rename = "extraInfo")]
    pub extra_info: Option<String>,
}

fn to_bytes(value: &Value) -> Bytes {
    // Serializing a `Value` cannot fail (all keys are strings).
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// `{"id", "code": 0, ...result}`.
pub fn ok_response(id: Option<u64>, result: Option<Map<String, Value>>) -> Bytes {
    let mut map = result.unwrap_or_default();
    map.insert("id".into(), id.map_or(Value::Null, Value::from));
    map.insert("code".into(), Value::from(0));
    to_bytes(&Value::Object(map))
}

/// `{"id", "code", "message"}`.
pub fn error_response(id: Option<u64>, error: &SignalError) -> Bytes {
    to_bytes(&serde_json::json!({
        "id": id,
        "code": error.code,
        "message": error.message,
    }))
}

/// `{"event": name, ...fields}`, serialized once and shared by every receiver.
pub fn event(name: &str, fields: Value) -> Bytes {
    let mut map = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    map.insert("event".into(), Value::from(name));
    to_bytes(&Value::Object(map))
}

/// The connection-level error sent before closing an upgrade for an unknown app.
pub fn unknown_app_event(message: &str) -> Bytes {
    to_bytes(&serde_json::json!({
        "event": "error",
        "code": code::UNKNOWN_APP,
        "message": message,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        assert_eq!(parse_envelope("nope").unwrap_err().id, None);
        assert_eq!(parse_envelope("[1]").unwrap_err().id, None);
        let r = parse_envelope(r#"{"op":"loginRoom"}"#).unwrap_err();
        assert_eq!((r.id, r.error.code), (None, code::MALFORMED));
        let r = parse_envelope(r#"{"id":"7","op":"loginRoom"}"#).unwrap_err();
        assert_eq!(r.id, None);
        let r = parse_envelope(r#"{"id":7}"#).unwrap_err();
        assert_eq!((r.id, r.error.code), (Some(7), code::MALFORMED));
        let r = parse_envelope(r#"{"id":7,"op":5}"#).unwrap_err();
        assert_eq!(r.id, Some(7));
        let e = parse_envelope(r#"{"op":"heartbeat"}"#).unwrap();
        assert_eq!((e.id, e.op.as_str()), (None, "heartbeat"));
        let e = parse_envelope(r#"{"id":3,"op":"logoutRoom"}"#).unwrap();
        assert_eq!(e.id, Some(3));
    }

    #[test]
    fn unreadable_ids_are_answered_with_null_even_for_heartbeats() {
        for id in ["-5", "5.0", "18446744073709551616", "\"7\"", "[]"] {
            for op in ["heartbeat", "logoutRoom"] {
                let r = parse_envelope(&format!(r#"{{"id":{id},"op":"{op}"}}"#)).unwrap_err();
                assert_eq!((r.id, r.error.code), (None, code::MALFORMED), "{id} {op}");
            }
        }
        let e = parse_envelope(r#"{"id":null,"op":"heartbeat"}"#).unwrap();
        assert_eq!(e.id, None);
        let r = parse_envelope(r#"{"id":null,"op":"logoutRoom"}"#).unwrap_err();
        assert_eq!(r.id, None);
        let e = parse_envelope(r#"{"id":18446744073709551615,"op":"heartbeat"}"#).unwrap();
        assert_eq!(e.id, Some(u64::MAX));
    }

    #[test]
    fn field_errors_name_the_field() {
        let e = parse_envelope(r#"{"id":1,"op":"sendBroadcastMessage","roomID":"r"}"#).unwrap();
        let err = fields::<SendMessage>(&e.body).unwrap_err();
        assert_eq!(err.code, code::MALFORMED);
        assert!(err.message.contains("message"), "{}", err.message);
        let e = parse_envelope(r#"{"id":1,"op":"x","roomID":5,"message":"m"}"#).unwrap();
        assert!(fields::<SendMessage>(&e.body).is_err());
    }

    #[test]
    fn responses_and_events() {
        let r = ok_response(Some(4), None);
        let v: Value = serde_json::from_slice(&r).unwrap();
        assert_eq!(v, serde_json::json!({"id": 4, "code": 0}));
        let r = error_response(None, &SignalError::malformed("x"));
        let v: Value = serde_json::from_slice(&r).unwrap();
        assert_eq!(v["id"], Value::Null);
        let e = event("tokenWillExpire", serde_json::json!({"roomID": "r"}));
        let v: Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "tokenWillExpire", "roomID": "r"})
        );
    }
}

/// The RIDs of a publish offer's simulcast video (`a=simulcast:send`, in
/// the offer's order, alternatives and paused ones included, at most 8):
/// what a stream's listing shows as `videoLayers`. Empty without
/// simulcast.
pub fn simulcast_rids(sdp: &str) -> std::sync::Arc<[std::sync::Arc<str>]> {
    let mut video = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            video = m.starts_with("video");
            continue;
        }
        let Some(rest) = line.strip_prefix("a=simulcast:") else {
            continue;
        };
        if !video {
            continue;
        }
        let mut parts = rest.split_whitespace();
        while let Some(dir) = parts.next() {
            let list = parts.next().unwrap_or_default();
            if dir == "send" {
                return list
                    .split([';', ','])
                    .map(|r| r.trim_start_matches('~'))
                    .filter(|r| !r.is_empty() && r.len() <= 16)
                    .take(8)
                    .map(std::sync::Arc::from)
                    .collect();
            }
        }
    }
    std::sync::Arc::from([])
}

#[cfg(test)]
mod simulcast_tests {
    use super::simulcast_rids;

    #[test]
    fn rids_of_the_video_section() {
        let sdp = "v=0\r\nm=audio 9 X 111\r\na=simulcast:send x;y\r\nm=video 9 X 96\r\na=rid:q send\r\na=simulcast:send q;h;~f\r\n";
        let rids = simulcast_rids(sdp);
        let got: Vec<&str> = rids.iter().map(|r| &**r).collect();
        assert_eq!(got, ["q", "h", "f"]);
        assert!(simulcast_rids("v=0\r\nm=video 9 X 96\r\n").is_empty());
        // Firefox lists alternatives with commas; a receive list is not ours.
        let got = simulcast_rids("m=video 9 X 96\r\na=simulcast:recv a send l,m").len();
        assert_eq!(got, 2);
    }
}
