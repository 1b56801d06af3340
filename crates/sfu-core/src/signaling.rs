//! One task per signaling WebSocket. It owns the connection's `Session` (so
//! no lock is taken per request), answers requests in order, writes the
//! events other connections queued for it, and enforces the heartbeat
//! timeout, the frame-size limit and the slow-reader policy.

/// Target of log lines a client triggers at will (rate-limited, see
/// [`crate::ratelog`]).
const CLIENT_LOG: &str = "sfu_core::signaling::client";
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use room_signal::outbox::{Inbox, Overflow};
use room_signal::{wire, CloseReason, Session, SignalError};
use tokio::time::{sleep_until, Instant};

use crate::State;

/// Close codes the contract and this server use.
pub mod close_code {
    pub const PROTOCOL: u16 = 1002;
    pub const BAD_UTF8: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const TOO_BIG: u16 = 1009;
    pub const HEARTBEAT_TIMEOUT: u16 = 4008;
    pub const GOING_AWAY: u16 = 1001;
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn text(frame: Bytes) -> Option<Message> {
    Utf8Bytes::try_from(frame).ok().map(Message::Text)
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// An upgrade for an unknown or missing appID: say why, then close (1008).
pub async fn reject_app(mut socket: WebSocket, why: String) {
    if let Some(msg) = text(wire::unknown_app_event(&why)) {
        let _ = socket.send(msg).await;
    }
    close(&mut socket, close_code::POLICY, "unknown appID").await;
}

/// An upgrade refused by a limit (`1001005` the app's session limit): the
/// error event, then close 1013 (try again later).
pub async fn reject_busy(mut socket: WebSocket, error: SignalError) {
    let event = serde_json::json!({"event": "error", "code": error.code, "message": error.message});
    let _ = socket
        .send(Message::Text(Utf8Bytes::from(event.to_string())))
        .await;
    close(&mut socket, close_code::TRY_AGAIN_LATER, "session limit").await;
}

/// What a read error closes the socket with (RFC 6455 section 7.4.1).
fn close_for(e: axum::Error) -> Option<(u16, &'static str)> {
    match e.into_inner().downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => {
            Some((close_code::TOO_BIG, "message larger than 64 KiB"))
        }
        Some(tungstenite::Error::Utf8(_)) => {
            Some((close_code::BAD_UTF8, "text frame is not UTF-8"))
        }
        Some(tungstenite::Error::Protocol(_)) => Some((close_code::PROTOCOL, "protocol error")),
        _ => None,
    }
}

/// Serve one signaling connection (its session already admitted by
/// `Hub::try_connect`) until it ends; `_slot` holds its place under
/// `server.maxWebSocketConnections`.
pub async fn serve<G: Send>(
    mut socket: WebSocket,
    state: Arc<State>,
    mut session: Session,
    mut inbox: Inbox,
    _slot: G,
) {
    let limits = state.hub.limits().clone();
    let heartbeat = Duration::from_millis(limits.heartbeat_timeout_ms);
    let mut silent_until = Instant::now() + heartbeat;
    tracing::debug!(
        conn = session.conn_id(),
        app = session.app().id(),
        "signaling connected"
    );
    let mut stopping = state.stopping.subscribe();
    let reason = loop {
        let timer_at = next_timer(&session);
        tokio::select! {
            () = async { let _ = stopping.wait_for(|s| *s).await.map(drop); } => {
                for frame in session.server_closing().into_iter().filter_map(text) {
                    if write(&mut socket, frame, &inbox.overflow, heartbeat).await.is_err() {
                        break;
                    }
                }
                close(&mut socket, close_code::GOING_AWAY, "server shutting down").await;
                break CloseReason::Disconnected;
            }
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else {
                    if let Some(Err(e)) = incoming {
                        let why = e.to_string();
                        tracing::debug!(target: CLIENT_LOG, conn = session.conn_id(), "websocket error: {why}");
                        if let Some((code, reason)) = close_for(e) {
                            close(&mut socket, code, reason).await;
                        }
                    }
                    break CloseReason::Disconnected;
                };
                let answer = match msg {
                    Message::Text(t) => {
                        silent_until = Instant::now() + heartbeat;
                        if t.len() > limits.max_frame_bytes {
                            close(&mut socket, close_code::TOO_BIG, "frame larger than 64 KiB").await;
                            break CloseReason::Disconnected;
                        }
                        session.handle_text(t.as_str(), unix_ms())
                    }
                    Message::Binary(_) => {
                        silent_until = Instant::now() + heartbeat;
                        Some(Session::binary_frame_error())
                    }
                    Message::Ping(_) => {
                        silent_until = Instant::now() + heartbeat;
                        None
                    }
                    Message::Pong(_) => None,
                    Message::Close(_) => {
                        // tungstenite queued the echo of the client's close
                        // frame (same code); flushing writes it.
                        let _ = futures_util::SinkExt::flush(&mut socket).await;
                        break CloseReason::Disconnected;
                    }
                };
                if let Some(frame) = answer.and_then(text) {
                    if let Err(reason) = write(&mut socket, frame, &inbox.overflow, heartbeat).await {
                        break reason;
                    }
                }
            }
            item = inbox.rx.recv() => {
                let Some(item) = item else { break CloseReason::Disconnected };
                let mut failed = None;
                for frame in session.on_outbound(item, unix_ms()).into_iter().filter_map(text) {
                    if let Err(reason) = write(&mut socket, frame, &inbox.overflow, heartbeat).await {
                        failed = Some(reason);
                        break;
                    }
                }
                if let Some(reason) = failed {
                    break reason;
                }
            }
            () = inbox.overflow.wait() => {
                close(&mut socket, close_code::POLICY, "too slow: send queue overflow").await;
                break CloseReason::SlowConsumer;
            }
            () = sleep_until(silent_until) => {
                tracing::info!(conn = session.conn_id(), user = ?session.user_id(), "heartbeat timeout");
                close(&mut socket, close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout").await;
                break CloseReason::HeartbeatTimeout;
            }
            () = sleep_opt(timer_at) => {
                let mut failed = None;
                for frame in session.on_timer(unix_ms()).into_iter().filter_map(text) {
                    if let Err(reason) = write(&mut socket, frame, &inbox.overflow, heartbeat).await {
                        failed = Some(reason);
                        break;
                    }
                }
                if let Some(reason) = failed {
                    break reason;
                }
            }
        }
    };
    session.close(reason);
    tracing::debug!(conn = session.conn_id(), ?reason, "signaling closed");
}

/// Write one frame unless the client stops reading: a write that waits
/// while the connection's queue overflows, or longer than `limit`, ends the
/// connection (the socket is dropped without a close handshake).
async fn write(
    socket: &mut WebSocket,
    frame: Message,
    overflow: &Overflow,
    limit: Duration,
) -> Result<(), CloseReason> {
    tokio::select! {
        sent = socket.send(frame) => sent.map_err(|_| CloseReason::Disconnected),
        () = overflow.wait() => {
            tracing::warn!(target: CLIENT_LOG, "client stopped reading and its send queue overflowed: dropping the connection");
            Err(CloseReason::SlowConsumer)
        }
        () = tokio::time::sleep(limit) => {
            tracing::warn!(target: CLIENT_LOG, "a write blocked for {limit:?}: dropping the connection");
            Err(CloseReason::SlowConsumer)
        }
    }
}

/// When the session's next timer (`Session::next_deadline_ms`) is due.
pub(crate) fn next_timer(session: &Session) -> Option<Instant> {
    session.next_deadline_ms().map(|at| {
        let now = unix_ms();
        Instant::now() + Duration::from_millis(at.saturating_sub(now))
    })
}

pub(crate) async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
