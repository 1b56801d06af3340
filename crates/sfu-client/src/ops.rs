//! Typed helpers for the contract's signaling ops.
//!
//! Each is a thin wrapper over [`Client::request`] that builds the fields
//! with the contract's names and, where the op has a result the caller
//! needs, reads it (e.g. the broadcast `messageID`).

use serde_json::{json, Value};

use crate::error::{ClientError, Result};
use crate::signal::Client;

impl Client {
    /// `enableMultiRoom`: only before the connection's first login.
    pub async fn enable_multi_room(&self, enable: bool) -> Result<()> {
        self.request("enableMultiRoom", json!({ "enable": enable }))
            .await
            .map(drop)
    }

    /// `loginRoom`; returns `{streamList, extraInfoList, userList?}`.
    pub async fn login_room(
        &self,
        room_id: &str,
        token: &str,
        user_id: &str,
        user_name: &str,
        user_update: bool,
    ) -> Result<Value> {
        let fields = json!({
            "roomID": room_id,
            "token": token,
            "user": { "userID": user_id, "userName": user_name },
            "config": { "userUpdate": user_update },
        });
        self.request("loginRoom", fields).await
    }

    /// `logoutRoom`: one room, or every room with `None`.
    pub async fn logout_room(&self, room_id: Option<&str>) -> Result<()> {
        let fields = match room_id {
            Some(room) => json!({ "roomID": room }),
            None => json!({}),
        };
        self.request("logoutRoom", fields).await.map(drop)
    }

    /// `switchRoom`; returns what `loginRoom` would for `to`.
    pub async fn switch_room(&self, from: &str, to: &str, token: &str) -> Result<Value> {
        let fields = json!({ "fromRoomID": from, "toRoomID": to, "token": token });
        self.request("switchRoom", fields).await
    }

    /// `renewToken` for one room.
    pub async fn renew_token(&self, room_id: &str, token: &str) -> Result<()> {
        let fields = json!({ "roomID": room_id, "token": token });
        self.request("renewToken", fields).await.map(drop)
    }

    /// `sendBroadcastMessage`; returns the `messageID` receivers will see.
    pub async fn send_broadcast_message(&self, room_id: &str, message: &str) -> Result<u64> {
        let res = self
            .request(
                "sendBroadcastMessage",
                json!({ "roomID": room_id, "message": message }),
            )
            .await?;
        res.get("messageID").and_then(Value::as_u64).ok_or_else(|| {
            ClientError::Protocol(format!(
                "broadcast response without numeric messageID: {res}"
            ))
        })
    }

    /// `sendBarrageMessage`; returns its string `messageID`.
    pub async fn send_barrage_message(&self, room_id: &str, message: &str) -> Result<String> {
        let res = self
            .request(
                "sendBarrageMessage",
                json!({ "roomID": room_id, "message": message }),
            )
            .await?;
        res.get("messageID")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                ClientError::Protocol(format!("barrage response without string messageID: {res}"))
            })
    }

    /// `sendCustomCommand` to `to_user_ids` (empty = everyone else in the room).
    pub async fn send_custom_command(
        &self,
        room_id: &str,
        command: &str,
        to_user_ids: &[&str],
    ) -> Result<()> {
        let fields = json!({ "roomID": room_id, "command": command, "toUserIDs": to_user_ids });
        self.request("sendCustomCommand", fields).await.map(drop)
    }

    /// `setRoomExtraInfo`.
    pub async fn set_room_extra_info(&self, room_id: &str, key: &str, value: &str) -> Result<()> {
        let fields = json!({ "roomID": room_id, "key": key, "value": value });
        self.request("setRoomExtraInfo", fields).await.map(drop)
    }

    /// `setStreamExtraInfo`.
    pub async fn set_stream_extra_info(&self, stream_id: &str, extra_info: &str) -> Result<()> {
        let fields = json!({ "streamID": stream_id, "extraInfo": extra_info });
        self.request("setStreamExtraInfo", fields).await.map(drop)
    }

    /// An explicit `{"op":"heartbeat"}` with an id (answered with `code: 0`).
    pub async fn heartbeat(&self) -> Result<()> {
        self.request("heartbeat", json!({})).await.map(drop)
    }
}
