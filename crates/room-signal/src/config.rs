//! Apps and limits as the operator configures them. Keys are camelCase on the
//! wire and in `sfu.toml`, matching the contract (`appID`, `multiRoom`, ...).

use serde::{Deserialize, Serialize};

/// One tenant of the server: its own rooms, users, streams and secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppConfig {
    #[serde(rename = "appID")]
    pub app_id: u32,
    pub secret: String,
    /// May connections of this app log into several rooms at once?
    #[serde(default)]
    pub multi_room: bool,
    /// Rooms one connection may be in at once in multi-room mode.
    #[serde(default = "default_max_rooms")]
    pub max_rooms: u8,
    /// Where the app's events are POSTed (webhooks); empty: none are sent.
    /// `http://` or `https://`.
    #[serde(default, rename = "webhookURL")]
    pub webhook_url: String,
    /// The HMAC-SHA256 key of the webhooks' `X-Sfu-Signature`; empty: the
    /// app's `secret`.
    #[serde(default)]
    pub webhook_secret: String,
}

impl AppConfig {
    /// The key that signs this app's webhooks.
    pub fn webhook_key(&self) -> &str {
        if self.webhook_secret.is_empty() {
            &self.secret
        } else {
            &self.webhook_secret
        }
    }
}

fn default_max_rooms() -> u8 {
    5
}

/// Every limit and timeout of the control plane. Defaults are the contract's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Limits {
    /// Largest text frame accepted from a client, in bytes.
    pub max_frame_bytes: usize,
    /// Largest message, barrage or command body, in bytes.
    pub max_message_bytes: usize,
    pub broadcast_per_room_per_sec: u32,
    pub broadcast_per_user_per_sec: u32,
    pub barrage_per_room_per_sec: u32,
    pub command_to_one_per_sec: u32,
    pub command_to_many_per_sec: u32,
    pub extra_info_per_room_per_sec: u32,
    pub login_per_room_per_sec: u32,
    /// Logins per second into all rooms of one app (`1002071`).
    pub login_per_app_per_sec: u32,
    /// Requests one connection may make per second before `1002073`.
    pub requests_per_connection_per_sec: u32,
    /// Hard cap on a room's members whatever `maxMemberCount` says.
    pub max_room_members: u32,
    /// `roomUserUpdate` is off in rooms with more members than this.
    pub user_update_max_members: u32,
    /// Silence after which a session ends (close code 4008).
    pub heartbeat_timeout_ms: u64,
    /// How long before a room token's `exp` `tokenWillExpire` fires.
    pub token_will_expire_ms: u64,
    /// Period of `roomOnlineUserCountUpdate`.
    pub online_count_interval_ms: u64,
    /// Frames queued for one connection before it is dropped as too slow.
    pub outbox_capacity: usize,
    /// Streams one connection may publish at once (`1003029`).
    pub max_publishes_per_connection: usize,
    /// Streams one connection may play at once (`1004020`).
    pub max_plays_per_connection: usize,
    /// Publishes and plays of one connection whose media has not connected
    /// yet (`1005010`).
    pub max_connecting_peers_per_connection: usize,
    /// Signaling and WHIP/WHEP sessions one app may have at once (`1001005`).
    pub max_sessions_per_app: usize,
    /// How long a play waits for its stream's publisher before it ends
    /// with `NO_PLAY 1004002` (ZEGO's 20 minutes).
    pub play_wait_ms: u64,
    /// How long a session whose WebSocket dropped (no client close frame of
    /// 1000/1001) is kept for a `resume`; then it ends as a disconnection.
    pub resume_window_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_message_bytes: 1024,
            broadcast_per_room_per_sec: 10,
            broadcast_per_user_per_sec: 2,
            barrage_per_room_per_sec: 20,
            command_to_one_per_sec: 200,
            command_to_many_per_sec: 10,
            extra_info_per_room_per_sec: 10,
            login_per_room_per_sec: 200,
            login_per_app_per_sec: 2000,
            requests_per_connection_per_sec: 500,
            max_room_members: 10_000,
            user_update_max_members: 500,
            heartbeat_timeout_ms: 30_000,
            token_will_expire_ms: 30_000,
            online_count_interval_ms: 30_000,
            outbox_capacity: 1024,
            max_publishes_per_connection: 8,
            max_plays_per_connection: 32,
            max_connecting_peers_per_connection: 8,
            max_sessions_per_app: 20_000,
            play_wait_ms: 1_200_000,
            resume_window_ms: 30_000,
        }
    }
}

/// The control plane's whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SignalConfig {
    pub apps: Vec<AppConfig>,
    pub limits: Limits,
}

impl SignalConfig {
    /// The `--dev` app: `1` / `devsecret` / multi-room, five rooms.
    pub fn dev() -> Self {
        SignalConfig {
            apps: vec![AppConfig {
                app_id: 1,
                secret: "devsecret".into(),
                multi_room: true,
                max_rooms: 5,
                webhook_url: String::new(),
                webhook_secret: String::new(),
            }],
            limits: Limits::default(),
        }
    }
}
