//! Error codes of the wire contract (ZEGO's numbering) and the error type every
//! op returns. A `SignalError` becomes `{"id", "code", "message"}` on the wire.

use std::fmt;

/// The numeric codes of `protocol.md`, named after what went wrong.
pub mod code {
    pub const MALFORMED: u32 = 1_000_001;
    pub const NOT_LOGGED_IN: u32 = 1_000_002;
    pub const STREAM_ID_TOO_LONG: u32 = 1_000_014;
    pub const STREAM_ID_EMPTY: u32 = 1_000_015;
    pub const STREAM_ID_ILLEGAL: u32 = 1_000_016;
    pub const OVER_MAX_ROOMS: u32 = 1_000_005_022;
    pub const MULTI_ROOM_NOT_PERMITTED: u32 = 1_100_001_016;
    pub const UNKNOWN_APP: u32 = 1_001_004;
    pub const MULTI_ROOM_TOO_LATE: u32 = 1_001_020;
    pub const SINGLE_ROOM_ALREADY_IN: u32 = 1_002_001;
    pub const NOT_IN_ROOM: u32 = 1_002_002;
    pub const USER_ID_EMPTY: u32 = 1_002_005;
    pub const USER_ID_ILLEGAL: u32 = 1_002_006;
    pub const USER_ID_TOO_LONG: u32 = 1_002_007;
    pub const USER_NAME_TOO_LONG: u32 = 1_002_010;
    pub const ROOM_ID_EMPTY: u32 = 1_002_011;
    pub const ROOM_ID_ILLEGAL: u32 = 1_002_012;
    pub const ROOM_ID_TOO_LONG: u32 = 1_002_013;
    pub const EXTRA_KEY_EMPTY: u32 = 1_002_014;
    pub const EXTRA_KEY_TOO_LONG: u32 = 1_002_015;
    pub const EXTRA_VALUE_TOO_LONG: u32 = 1_002_016;
    pub const EXTRA_SECOND_KEY: u32 = 1_002_017;
    pub const USER_ID_MISMATCH: u32 = 1_002_018;
    pub const TOKEN_INVALID: u32 = 1_002_033;
    pub const ROOM_FULL: u32 = 1_002_034;
    pub const KICKED_SAME_USER: u32 = 1_002_050;
    pub const KICKED_BY_SERVER: u32 = 1_002_055;
    pub const ALREADY_IN_ROOM: u32 = 1_002_056;
    pub const SWITCH_TARGET_INVALID: u32 = 1_002_064;
    pub const TOKEN_MISSING: u32 = 1_002_067;
    pub const RATE_LIMITED_APP: u32 = 1_002_071;
    pub const RATE_LIMITED_ROOM: u32 = 1_002_072;
    pub const RATE_LIMITED_SIGNALING: u32 = 1_002_073;
    pub const TOKEN_APP_MISMATCH: u32 = 1_002_076;
    pub const TOKEN_USER_MISMATCH: u32 = 1_002_077;
    pub const TOKEN_EXPIRED: u32 = 1_002_078;
    /// The session cannot be resumed (unknown, expired, wrong token).
    pub const CANNOT_RESUME: u32 = 1_002_099;
    pub const STREAM_ID_TAKEN: u32 = 1_003_028;
    pub const STREAM_EXTRA_MISSING: u32 = 1_003_050;
    pub const STREAM_EXTRA_TOO_LONG: u32 = 1_003_051;
    pub const PUBLISH_FORBIDDEN: u32 = 1_003_072;
    pub const STREAM_NOT_FOUND: u32 = 1_004_002;
    pub const BAD_SDP: u32 = 1_005_001;
    /// Not in the contract: the media connection (ICE/DTLS) failed or timed out.
    pub const MEDIA_DISCONNECTED: u32 = 1_005_003;
    /// Not in the contract: this connection publishes `maxPublishesPerConnection` streams already.
    pub const TOO_MANY_PUBLISHES: u32 = 1_003_029;
    /// Not in the contract: this connection plays `maxPlaysPerConnection` streams already.
    pub const TOO_MANY_PLAYS: u32 = 1_004_020;
    /// Not in the contract: this connection has `maxConnectingPeersPerConnection`
    /// media connections that have not connected yet.
    pub const TOO_MANY_CONNECTING: u32 = 1_005_010;
    /// Not in the contract: the app's or the server's peer-connection limit is reached.
    pub const PEER_LIMIT: u32 = 1_005_011;
    /// Not in the contract: the app's session limit is reached.
    pub const APP_SESSION_LIMIT: u32 = 1_001_005;
    /// Not in the contract: the server's connection limit (WebSocket or HTTP) is reached.
    pub const SERVER_BUSY: u32 = 1_000_090;
    /// Not in the contract: an HTTP request body over `server.maxRequestBodyBytes`.
    pub const BODY_TOO_LARGE: u32 = 1_000_091;
    /// Not in the contract: an HTTP request whose headers or body came too slowly.
    pub const REQUEST_TIMEOUT: u32 = 1_000_092;
    /// Not in the contract: the server is shutting down (SIGTERM/SIGINT).
    pub const SERVER_SHUTTING_DOWN: u32 = 1_000_093;
    pub const MESSAGE_EMPTY: u32 = 1_009_001;
    pub const MESSAGE_TOO_LONG: u32 = 1_009_002;
    pub const SENDER_NOT_IN_ROOM: u32 = 1_009_005;
    pub const TARGET_EMPTY: u32 = 1_009_011;
    pub const TARGET_TOO_LONG: u32 = 1_009_012;
    pub const BROADCAST_TOO_FREQUENT: u32 = 1_009_015;
}

/// A failed op: the contract's code and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalError {
    pub code: u32,
    pub message: String,
}

impl SignalError {
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        SignalError {
            code,
            message: message.into(),
        }
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(code::MALFORMED, message)
    }
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for SignalError {}

pub type Result<T> = std::result::Result<T, SignalError>;
