//! One task per signaling session. It owns the `Session` (so no lock is
//! taken per request), answers requests in order, writes the events other
//! connections queued for it, and enforces the heartbeat timeout, the
//! frame-size limit and the slow-reader policy. When the WebSocket drops
//! (no close frame 1000/1001 from the client) a session in a room is held
//! for `limits.resumeWindowMs`: the task keeps taking its events (numbered
//! and kept by the session) and timers without a socket until a new
//! connection resumes it ([`crate::resume`]) or the window ends.

/// Target of log lines a client triggers at will (rate-limited, see
/// [`crate::ratelog`]).
const CLIENT_LOG: &str = "sfu_core::signaling::client";
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use room_signal::outbox::{Inbox, Overflow};
use room_signal::resume::{cannot_resume, ResumeRequest};
use room_signal::{wire, CloseReason, Session, SignalError};
use tokio::sync::oneshot;
use tokio::time::{sleep_until, Instant};

use crate::resume::Takeover;
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
        // The peer's end of stream without a close frame is a drop, not a
        // protocol error: the session is held for a resume.
        Some(tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        )) => None,
        Some(tungstenite::Error::Protocol(_)) => Some((close_code::PROTOCOL, "protocol error")),
        _ => None,
    }
}

/// What one turn of a connection's loop leads to.
enum Step {
    Continue,
    /// The session ends for this reason.
    End(CloseReason),
    /// This connection's socket now serves another (resumed) session; its
    /// own, still empty session ends.
    HandedOver,
}

/// One session and the socket serving it, if any: `None` while the session
/// is held for a resume after its WebSocket dropped.
struct Conn {
    state: Arc<State>,
    session: Session,
    inbox: Inbox,
    socket: Option<WebSocket>,
    /// No request has been read from `socket` yet (`resume` is allowed).
    fresh: bool,
    silent_until: Instant,
    /// Set while held: the session ends (reason 5) at this instant.
    held_until: Option<Instant>,
    heartbeat: Duration,
    max_frame: usize,
}

/// Serve one signaling connection (its session already admitted by
/// `Hub::try_connect`) until its session ends or the connection hands its
/// socket to the session it resumes; `_slot` holds its place under
/// `server.maxWebSocketConnections` (a held session keeps it).
pub async fn serve<G: Send>(
    socket: WebSocket,
    state: Arc<State>,
    session: Session,
    inbox: Inbox,
    _slot: G,
) {
    let limits = state.hub.limits().clone();
    let heartbeat = Duration::from_millis(limits.heartbeat_timeout_ms);
    let app_id = session.app().id();
    let session_id = session.session_id().to_string();
    let mut takeovers = state.resumes.register(app_id, &session_id);
    tracing::debug!(
        conn = session.conn_id(),
        app = app_id,
        "signaling connected"
    );
    let mut c = Conn {
        state: state.clone(),
        session,
        inbox,
        socket: Some(socket),
        fresh: true,
        silent_until: Instant::now() + heartbeat,
        held_until: None,
        heartbeat,
        max_frame: limits.max_frame_bytes,
    };
    let mut stopping = state.stopping.subscribe();
    let step = loop {
        let timer_at = next_timer(&c.session);
        let step = tokio::select! {
            () = async { let _ = stopping.wait_for(|s| *s).await.map(drop); } => {
                let frames = c.session.server_closing();
                if c.send(frames).await.is_continue() {
                    if let Some(socket) = c.socket.as_mut() {
                        close(socket, close_code::GOING_AWAY, "server shutting down").await;
                    }
                }
                Step::End(CloseReason::Disconnected)
            }
            incoming = recv(&mut c.socket) => c.on_incoming(incoming).await,
            item = c.inbox.rx.recv() => match item {
                Some(item) => {
                    let frames = c.session.on_outbound(item, unix_ms());
                    c.send(frames).await
                }
                None => Step::End(CloseReason::Disconnected),
            },
            () = c.inbox.overflow.wait() => {
                if let Some(socket) = c.socket.as_mut() {
                    close(socket, close_code::POLICY, "too slow: send queue overflow").await;
                }
                Step::End(CloseReason::SlowConsumer)
            }
            () = sleep_until(c.silent_until), if c.socket.is_some() => {
                tracing::info!(conn = c.session.conn_id(), user = ?c.session.user_id(), "heartbeat timeout");
                if let Some(socket) = c.socket.as_mut() {
                    close(socket, close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout").await;
                }
                Step::End(CloseReason::HeartbeatTimeout)
            }
            () = sleep_opt(timer_at) => {
                let frames = c.session.on_timer(unix_ms());
                c.send(frames).await
            }
            Some(takeover) = takeovers.recv() => c.take_over(takeover).await,
            () = sleep_opt(c.held_until) => {
                tracing::info!(conn = c.session.conn_id(), user = ?c.session.user_id(),
                    "resume window over: the session ends");
                Step::End(CloseReason::Disconnected)
            }
        };
        if !step.is_continue() {
            break step;
        }
    };
    c.hold(None);
    state.resumes.unregister(app_id, &session_id);
    takeovers.close();
    while let Ok(t) = takeovers.try_recv() {
        let _ = t
            .reply
            .send(Err((t.socket, cannot_resume("the session just ended"))));
    }
    let reason = match step {
        Step::End(reason) => reason,
        Step::Continue | Step::HandedOver => CloseReason::Disconnected,
    };
    c.session.close(reason);
    tracing::debug!(conn = c.session.conn_id(), ?reason, "signaling closed");
}

impl Step {
    fn is_continue(&self) -> bool {
        matches!(self, Step::Continue)
    }
}

/// The next message of `socket`; never, while there is none.
async fn recv(socket: &mut Option<WebSocket>) -> Option<Result<Message, axum::Error>> {
    match socket {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

impl Conn {
    /// Write `frames` (already numbered and kept by the session) to the
    /// socket, if there is one.
    async fn send(&mut self, frames: Vec<Bytes>) -> Step {
        let Some(socket) = self.socket.as_mut() else {
            return Step::Continue;
        };
        for frame in frames.into_iter().filter_map(text) {
            if let Err(reason) = write(socket, frame, &self.inbox.overflow, self.heartbeat).await {
                return self.dropped(reason);
            }
        }
        Step::Continue
    }

    /// The socket is gone: a session in a room is held for a resume
    /// (nothing changes for anyone else meanwhile), any other ends.
    fn dropped(&mut self, reason: CloseReason) -> Step {
        self.socket = None;
        if reason != CloseReason::Disconnected || !self.session.resumable() {
            return Step::End(reason);
        }
        let window = Duration::from_millis(self.state.hub.limits().resume_window_ms);
        tracing::debug!(target: CLIENT_LOG, conn = self.session.conn_id(), user = ?self.session.user_id(),
            "websocket dropped: session held for a resume for {window:?}");
        self.hold(Some(Instant::now() + window));
        Step::Continue
    }

    /// Start (`Some`) or end (`None`) holding the session, counted for
    /// `/metrics`.
    fn hold(&mut self, until: Option<Instant>) {
        use std::sync::atomic::Ordering::Relaxed;
        match (self.held_until.is_some(), until.is_some()) {
            (false, true) => {
                self.state.held_sessions.fetch_add(1, Relaxed);
            }
            (true, false) => {
                self.state.held_sessions.fetch_sub(1, Relaxed);
            }
            _ => {}
        }
        self.held_until = until;
    }

    async fn on_incoming(&mut self, incoming: Option<Result<Message, axum::Error>>) -> Step {
        let Some(Ok(msg)) = incoming else {
            if let Some(Err(e)) = incoming {
                let why = e.to_string();
                tracing::debug!(target: CLIENT_LOG, conn = self.session.conn_id(), "websocket error: {why}");
                if let Some((code, reason)) = close_for(e) {
                    if let Some(socket) = self.socket.as_mut() {
                        close(socket, code, reason).await;
                    }
                    return Step::End(CloseReason::Disconnected);
                }
            }
            return self.dropped(CloseReason::Disconnected);
        };
        let answer = match msg {
            Message::Text(t) => {
                self.silent_until = Instant::now() + self.heartbeat;
                if t.len() > self.max_frame {
                    if let Some(socket) = self.socket.as_mut() {
                        close(socket, close_code::TOO_BIG, "frame larger than 64 KiB").await;
                    }
                    return Step::End(CloseReason::Disconnected);
                }
                if std::mem::take(&mut self.fresh) {
                    if let Some(parsed) = self.session.parse_resume(t.as_str()) {
                        return match parsed {
                            Ok((id, request)) => self.resume(id, request).await,
                            Err(answer) => self.send_answer(answer).await,
                        };
                    }
                }
                self.session.handle_text(t.as_str(), unix_ms())
            }
            Message::Binary(_) => {
                self.silent_until = Instant::now() + self.heartbeat;
                self.fresh = false;
                Some(Session::binary_frame_error())
            }
            Message::Ping(_) => {
                self.silent_until = Instant::now() + self.heartbeat;
                None
            }
            Message::Pong(_) => None,
            Message::Close(frame) => {
                // tungstenite queued the echo of the client's close frame
                // (same code); flushing writes it.
                if let Some(socket) = self.socket.as_mut() {
                    let _ = futures_util::SinkExt::flush(socket).await;
                }
                let code = frame.map(|f| f.code);
                return if matches!(code, Some(1000 | 1001)) {
                    Step::End(CloseReason::Disconnected)
                } else {
                    self.dropped(CloseReason::Disconnected)
                };
            }
        };
        match answer {
            Some(answer) => self.send_answer(answer).await,
            None => Step::Continue,
        }
    }

    /// Write a response (not numbered, not kept).
    async fn send_answer(&mut self, answer: Bytes) -> Step {
        let (Some(socket), Some(frame)) = (self.socket.as_mut(), text(answer)) else {
            return Step::Continue;
        };
        match write(socket, frame, &self.inbox.overflow, self.heartbeat).await {
            Ok(()) => Step::Continue,
            Err(reason) => self.dropped(reason),
        }
    }

    /// This connection's first request is `resume`: hand the socket to the
    /// session's owner and wait for its verdict.
    async fn resume(&mut self, id: u64, request: ResumeRequest) -> Step {
        let refuse = |c: &mut Conn, e: SignalError| c.session.refuse_resume(id, &e);
        if request.session_id == self.session.session_id() {
            let answer = refuse(self, cannot_resume("unknown session"));
            return self.send_answer(answer).await;
        }
        let Some(socket) = self.socket.take() else {
            return Step::Continue;
        };
        let (reply, verdict) = oneshot::channel();
        let takeover = Box::new(Takeover {
            socket,
            id,
            request,
            reply,
        });
        let app = self.session.app().id();
        let error = match self.state.resumes.hand_over(app, takeover) {
            Ok(()) => match verdict.await {
                Ok(Ok(())) => return Step::HandedOver,
                Ok(Err((socket, e))) => {
                    self.socket = Some(socket);
                    e
                }
                // The owner ended with the socket: nothing left to answer on.
                Err(_) => return Step::End(CloseReason::Disconnected),
            },
            Err(takeover) => {
                self.socket = Some(takeover.socket);
                cannot_resume("unknown or expired session")
            }
        };
        let answer = refuse(self, error);
        self.send_answer(answer).await
    }

    /// A new connection takes this session over: on success it serves the
    /// session from now on (the old socket, if still open, is dropped).
    async fn take_over(&mut self, t: Box<Takeover>) -> Step {
        // Items already queued first (numbered and kept, so they are in the
        // replay): the result's lists then agree with them (a queued kick
        // has removed its room and its publishes).
        if self.session.resume_matches(&t.request) {
            while let Ok(item) = self.inbox.rx.try_recv() {
                let _ = self.session.on_outbound(item, unix_ms());
            }
        }
        match self.session.take_over(t.id, &t.request) {
            Ok(frames) => {
                let _ = t.reply.send(Ok(()));
                self.socket = Some(t.socket);
                self.fresh = false;
                self.hold(None);
                self.silent_until = Instant::now() + self.heartbeat;
                self.send(frames).await
            }
            Err(e) => {
                let _ = t.reply.send(Err((t.socket, e)));
                Step::Continue
            }
        }
    }
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
