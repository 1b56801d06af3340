//! The client's error type.
//!
//! A request either fails on the server, which answers with the contract's
//! `{code, message}` ([`ClientError::Server`]), or locally: the WebSocket
//! broke, the server closed the session, a wait timed out, the server sent
//! something the contract does not allow, or WebRTC failed.

use std::time::Duration;

/// Everything that can go wrong talking to the SFU.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server answered the request with a non-zero `code`.
    #[error("server error {code}: {message}")]
    Server {
        /// The contract's error code (e.g. `1002056`).
        code: u64,
        /// The server's explanation.
        message: String,
    },
    /// Connecting to, reading from or writing to the WebSocket failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The signaling connection is closed. `code` and `reason` are those of
    /// the server's close frame, if it sent one (e.g. `4008` after a
    /// heartbeat timeout, `1008` for an unknown app).
    #[error("connection closed (code {code:?}): {reason}")]
    Closed {
        /// WebSocket close code.
        code: Option<u16>,
        /// WebSocket close reason.
        reason: String,
    },
    /// A wait exceeded its deadline.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// The server sent something the contract does not allow (a response
    /// without `code`, an answer without `sdp`, ...).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The WebRTC stack failed (building the peer connection, negotiating,
    /// connecting, writing media).
    #[error("webrtc: {0}")]
    WebRtc(String),
    /// A caller mistake: an argument the request cannot be built from, or
    /// media written to a track that was not published.
    #[error("invalid use: {0}")]
    Invalid(String),
}

impl ClientError {
    /// The contract's error code, if the server answered with one.
    pub fn code(&self) -> Option<u64> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn webrtc(context: &str, err: impl std::fmt::Display) -> ClientError {
        ClientError::WebRtc(format!("{context}: {err}"))
    }
}

/// Result alias of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
