//! The signaling connection: JSON over WebSocket, as in the wire contract.
//!
//! [`Client::connect`] opens `GET /ws?appID=<id>`, then two tasks run: a
//! link task ([`crate::link`]: frames queued by requests, heartbeats every 5 s,
//! resume after a drop) routes responses to their waiting request by `id` and
//! queues server pushes as [`Event`]s. [`Client`] is a cheap handle; the
//! connection closes when the last clone (including those held by
//! publishers and players) is dropped, or on [`Client::close`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_tungstenite::tungstenite::Message;

use crate::error::{ClientError, Result};
use crate::resume::Tracked;

/// Name of the [`Event`] under which a response is queued when its `id` is
/// `null` or matches no waiting request (e.g. the answer to a malformed
/// frame sent with [`Client::send_raw`]).
pub const UNMATCHED_RESPONSE: &str = "unmatchedResponse";

/// Events kept when nobody reads them; the oldest are dropped beyond this.
const MAX_QUEUED_EVENTS: usize = 10_000;

/// A server push: `{"event": name, ...fields}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The `event` field, e.g. `IMRecvBroadcastMessage`.
    pub name: String,
    /// Every other field of the frame.
    pub fields: Value,
}

/// Tunables of one signaling connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Period of the automatic `{"op":"heartbeat"}`; `None` sends none
    /// (for tests of the server's timeout).
    pub heartbeat: Option<Duration>,
    /// How long a request (and the WebSocket handshake) may take.
    pub request_timeout: Duration,
    /// How long `publish`/`play` wait for the peer connection to connect.
    pub media_timeout: Duration,
    /// Resume the session on a new connection when the WebSocket drops
    /// (see [`crate::link`]); off, a drop ends the client.
    pub resume: bool,
    /// A connection that brings no frame for this long (heartbeats are
    /// answered) counts as dropped.
    pub link_timeout: Duration,
    /// How long to keep trying to reconnect after a drop (the server's
    /// `limits.resumeWindowMs`).
    pub resume_window: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            heartbeat: Some(Duration::from_secs(5)),
            request_timeout: Duration::from_secs(10),
            media_timeout: Duration::from_secs(10),
            resume: true,
            link_timeout: Duration::from_secs(15),
            resume_window: Duration::from_secs(30),
        }
    }
}

pub(crate) type Reply = oneshot::Sender<Result<Value>>;

/// A request waiting for its response.
pub(crate) struct Pending {
    pub(crate) reply: Reply,
    /// The op and its fields, for ops a resume must know about.
    pub(crate) track: Option<(String, Map<String, Value>)>,
}

/// State shared with the link task.
pub(crate) struct Shared {
    state: Mutex<State>,
    events: Mutex<VecDeque<Event>>,
    pub(crate) notify: Notify,
    pub(crate) next_id: AtomicU64,
    tracked: Mutex<Tracked>,
}

pub(crate) struct State {
    pub(crate) pending: HashMap<u64, Pending>,
    /// Set once the connection is gone; every later request fails with it.
    closed: Option<ClientError>,
}

/// Ops whose success changes what a resume needs.
const TRACKED_OPS: [&str; 9] = [
    "enableMultiRoom",
    "loginRoom",
    "switchRoom",
    "logoutRoom",
    "renewToken",
    "startPublishingStream",
    "stopPublishingStream",
    "startPlayingStream",
    "stopPlayingStream",
];

impl Shared {
    pub(crate) fn tracked(&self) -> MutexGuard<'_, Tracked> {
        self.tracked.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn events(&self) -> MutexGuard<'_, VecDeque<Event>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push_event(&self, event: Event) {
        {
            let mut q = self.events();
            if q.len() >= MAX_QUEUED_EVENTS {
                q.pop_front();
                tracing::warn!("event queue full; dropping the oldest event");
            }
            q.push_back(event);
        }
        self.notify.notify_waiters();
    }

    /// Mark the connection closed and fail every waiting request.
    pub(crate) fn close(&self, why: ClientError) {
        {
            let mut st = self.state();
            if st.closed.is_none() {
                st.closed = Some(why.clone());
            }
        }
        self.fail_pending(&why);
    }

    /// Fail every waiting request (their responses will not come: a
    /// dropped connection's responses are not replayed).
    pub(crate) fn fail_pending(&self, why: &ClientError) {
        let pending = std::mem::take(&mut self.state().pending);
        for (_, p) in pending {
            let _ = p.reply.send(Err(why.clone()));
        }
        self.notify.notify_waiters();
    }

    fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }
}

struct Inner {
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Message>,
    app_id: u32,
    url: String,
    options: ConnectOptions,
}

/// A signaling connection to the SFU. Clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.url)
            .field("app_id", &self.inner.app_id)
            .finish()
    }
}

/// The WebSocket URL for `addr`: `host:port`, `http(s)://host:port[/path]`
/// or `ws(s)://...`. The path defaults to `/ws`; `appID` is added unless
/// the URL already has one.
pub fn ws_url(addr: &str, app_id: u32) -> String {
    let (scheme, rest) = if let Some(r) = addr.strip_prefix("ws://") {
        ("ws://", r)
    } else if let Some(r) = addr.strip_prefix("wss://") {
        ("wss://", r)
    } else if let Some(r) = addr.strip_prefix("http://") {
        ("ws://", r)
    } else if let Some(r) = addr.strip_prefix("https://") {
        ("wss://", r)
    } else {
        ("ws://", addr)
    };
    let mut url = format!("{scheme}{rest}");
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    if rest[host_end..].is_empty() || rest[host_end..].starts_with('?') {
        url.insert_str(scheme.len() + host_end, "/ws");
    } else if rest[host_end..] == *"/" {
        url.push_str("ws");
    }
    if !url.contains("appID=") {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("appID={app_id}"));
    }
    url
}

impl Client {
    /// Connect to the server at `addr` (see [`ws_url`]) as app `app_id`,
    /// with the default [`ConnectOptions`].
    pub async fn connect(addr: &str, app_id: u32) -> Result<Client> {
        Self::connect_with(addr, app_id, ConnectOptions::default()).await
    }

    /// Connect with explicit options.
    pub async fn connect_with(addr: &str, app_id: u32, options: ConnectOptions) -> Result<Client> {
        let url = ws_url(addr, app_id);
        let connecting = tokio_tungstenite::connect_async(url.as_str());
        let (ws, _) = tokio::time::timeout(options.request_timeout, connecting)
            .await
            .map_err(|_| ClientError::Timeout(options.request_timeout, "WebSocket handshake"))?
            .map_err(|e| ClientError::Transport(format!("connecting to {url}: {e}")))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: HashMap::new(),
                closed: None,
            }),
            events: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            next_id: AtomicU64::new(1),
            tracked: Mutex::new(Tracked::default()),
        });
        let (out, out_rx) = mpsc::unbounded_channel();
        tokio::spawn(crate::link::run(
            ws,
            out_rx,
            shared.clone(),
            url.clone(),
            options.clone(),
        ));
        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                out,
                app_id,
                url,
                options,
            }),
        })
    }

    /// The app this connection belongs to.
    pub fn app_id(&self) -> u32 {
        self.inner.app_id
    }

    /// The WebSocket URL this client connected to.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The options the client was connected with.
    pub fn options(&self) -> &ConnectOptions {
        &self.inner.options
    }

    /// Has the connection ended (closed by either side or broken)?
    pub fn is_closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    /// Why the connection ended, once it has: usually
    /// [`ClientError::Closed`] with the server's close code.
    pub fn close_reason(&self) -> Option<ClientError> {
        self.inner.shared.state().closed.clone()
    }

    /// Send `{"id": <next>, "op": op, ...fields}` and wait for its response.
    /// `fields` must be a JSON object (or `null` for none). On `code: 0`
    /// returns the response's other fields (without `id` and `code`).
    pub async fn request(&self, op: &str, fields: Value) -> Result<Value> {
        let mut obj = match fields {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => {
                return Err(ClientError::Invalid(format!(
                    "request fields must be an object, not {other}"
                )))
            }
        };
        let id = self.inner.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let track = TRACKED_OPS
            .contains(&op)
            .then(|| (op.to_string(), obj.clone()));
        obj.insert("id".into(), json!(id));
        obj.insert("op".into(), json!(op));
        let text = serde_json::to_string(&obj).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.inner.shared.state();
            if let Some(why) = &st.closed {
                return Err(why.clone());
            }
            st.pending.insert(id, Pending { reply: tx, track });
        }
        if self.inner.out.send(Message::text(text)).is_err() {
            self.inner.shared.state().pending.remove(&id);
            return Err(self.closed_error());
        }
        let limit = self.inner.options.request_timeout;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => {
                self.inner.shared.state().pending.remove(&id);
                Err(ClientError::Timeout(limit, "a response"))
            }
        }
    }

    fn closed_error(&self) -> ClientError {
        self.close_reason().unwrap_or(ClientError::Closed {
            code: None,
            reason: "connection closed".into(),
        })
    }

    /// Send one raw text frame, bypassing request bookkeeping. Its response,
    /// if any, is queued as an [`UNMATCHED_RESPONSE`] event unless its `id`
    /// happens to match a waiting request.
    pub fn send_raw(&self, text: impl Into<String>) -> Result<()> {
        self.inner
            .out
            .send(Message::text(text.into()))
            .map_err(|_| self.closed_error())
    }

    /// Close the connection (close code 1000: the server leaves every room
    /// of it at once, no resume).
    pub fn close(&self) {
        let _ = self.inner.out.send(normal_close());
    }

    /// The next server push, in arrival order; `None` once the connection is
    /// closed and every queued event has been read.
    pub async fn next_event(&self) -> Option<Event> {
        self.wait_matching(|_| true).await
    }

    /// The next queued event without waiting.
    pub fn try_next_event(&self) -> Option<Event> {
        self.inner.shared.events().pop_front()
    }

    /// Every queued event, removed from the queue.
    pub fn drain_events(&self) -> Vec<Event> {
        self.inner.shared.events().drain(..).collect()
    }

    /// Wait up to `limit` for the first event named `name`, removing it from
    /// the queue; other events stay queued in order.
    pub async fn wait_event(&self, name: &str, limit: Duration) -> Result<Event> {
        self.wait_event_where(|e| e.name == name, limit).await
    }

    /// Wait up to `limit` for the first event matching `pred`, removing it
    /// from the queue; other events stay queued in order.
    pub async fn wait_event_where(
        &self,
        pred: impl Fn(&Event) -> bool,
        limit: Duration,
    ) -> Result<Event> {
        match tokio::time::timeout(limit, self.wait_matching(pred)).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(self.closed_error()),
            Err(_) => Err(ClientError::Timeout(limit, "an event")),
        }
    }

    async fn wait_matching(&self, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        let shared = &self.inner.shared;
        loop {
            let notified = shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut q = shared.events();
                if let Some(pos) = q.iter().position(&pred) {
                    return q.remove(pos);
                }
            }
            if shared.is_closed() {
                return None;
            }
            notified.await;
        }
    }
}

/// A close frame with code 1000: a real leave (a close without it, or a
/// dropped socket, leaves the session held for a resume).
pub(crate) fn normal_close() -> Message {
    Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "bye".into(),
    }))
}

/// Route one text frame: a response to its request, anything else to the
/// event queue. Never panics on what the server sends.
pub(crate) fn route(shared: &Shared, text: &str) {
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(text) else {
        tracing::warn!("ignoring a non-object frame from the server: {text}");
        return;
    };
    if let Some(name) = obj.get("event").and_then(Value::as_str).map(str::to_owned) {
        obj.remove("event");
        let event = Event {
            name,
            fields: Value::Object(obj),
        };
        shared.tracked().event(&event);
        shared.push_event(event);
        return;
    }
    let pending = obj
        .get("id")
        .and_then(Value::as_u64)
        .and_then(|id| shared.state().pending.remove(&id));
    let Some(Pending { reply, track }) = pending else {
        shared.push_event(Event {
            name: UNMATCHED_RESPONSE.into(),
            fields: Value::Object(obj),
        });
        return;
    };
    let result = response_result(obj, text);
    if let (Ok(result), Some((op, fields))) = (&result, track) {
        shared.tracked().request_done(&op, &fields, result);
    }
    let _ = reply.send(result);
}

/// A response's outcome: its fields without `id` and `code` when the code
/// is 0, else the server's error (`text` is the frame, for the message of
/// a response without a code).
pub(crate) fn response_result(mut obj: Map<String, Value>, text: &str) -> Result<Value> {
    match obj.get("code").and_then(Value::as_u64) {
        Some(0) => {
            obj.remove("id");
            obj.remove("code");
            Ok(Value::Object(obj))
        }
        Some(code) => Err(ClientError::Server {
            code,
            message: obj
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }),
        None => Err(ClientError::Protocol(format!(
            "response without a numeric code: {text}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            ws_url("127.0.0.1:7880", 1),
            "ws://127.0.0.1:7880/ws?appID=1"
        );
        assert_eq!(ws_url("http://h:1", 2), "ws://h:1/ws?appID=2");
        assert_eq!(ws_url("http://h:1/", 2), "ws://h:1/ws?appID=2");
        assert_eq!(ws_url("ws://h:1/ws", 3), "ws://h:1/ws?appID=3");
        assert_eq!(ws_url("ws://h:1/ws?appID=9", 3), "ws://h:1/ws?appID=9");
        assert_eq!(ws_url("ws://h:1?x=1", 3), "ws://h:1/ws?x=1&appID=3");
        assert_eq!(ws_url("https://h/custom", 4), "wss://h/custom?appID=4");
    }
}
