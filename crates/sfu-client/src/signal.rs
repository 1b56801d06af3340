//! The signaling connection: JSON over WebSocket, as in the wire contract.
//!
//! [`Client::connect`] opens `GET /ws?appID=<id>`, then two tasks run: a
//! writer (frames queued by requests, plus `{"op":"heartbeat"}` every 5 s)
//! and a reader, which routes responses to their waiting request by `id` and
//! queues server pushes as [`Event`]s. [`Client`] is a cheap handle; the
//! connection closes when the last clone (including those held by
//! publishers and players) is dropped, or on [`Client::close`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_tungstenite::tungstenite::Message;

use crate::error::{ClientError, Result};

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
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            heartbeat: Some(Duration::from_secs(5)),
            request_timeout: Duration::from_secs(10),
            media_timeout: Duration::from_secs(10),
        }
    }
}

type Reply = oneshot::Sender<Result<Value>>;

/// State shared with the reader task.
struct Shared {
    state: Mutex<State>,
    events: Mutex<VecDeque<Event>>,
    notify: Notify,
}

struct State {
    pending: HashMap<u64, Reply>,
    /// Set once the connection is gone; every later request fails with it.
    closed: Option<ClientError>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn events(&self) -> MutexGuard<'_, VecDeque<Event>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push_event(&self, event: Event) {
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
    fn close(&self, why: ClientError) {
        let pending = {
            let mut st = self.state();
            if st.closed.is_none() {
                st.closed = Some(why.clone());
            }
            std::mem::take(&mut st.pending)
        };
        for (_, reply) in pending {
            let _ = reply.send(Err(why.clone()));
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
    next_id: AtomicU64,
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
        let (sink, stream) = ws.split();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: HashMap::new(),
                closed: None,
            }),
            events: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
        });
        let (out, out_rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(sink, out_rx, options.heartbeat, shared.clone()));
        tokio::spawn(read_loop(stream, shared.clone()));
        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                out,
                next_id: AtomicU64::new(1),
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
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        obj.insert("id".into(), json!(id));
        obj.insert("op".into(), json!(op));
        let text = serde_json::to_string(&obj).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.inner.shared.state();
            if let Some(why) = &st.closed {
                return Err(why.clone());
            }
            st.pending.insert(id, tx);
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

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;
type Stream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

/// Sends queued frames and heartbeats until every [`Client`] is gone or
/// the socket fails; then closes the socket.
async fn write_loop(
    mut sink: Sink,
    mut out: mpsc::UnboundedReceiver<Message>,
    heartbeat: Option<Duration>,
    shared: Arc<Shared>,
) {
    let period = heartbeat.unwrap_or(Duration::from_secs(3600));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        let msg = tokio::select! {
            m = out.recv() => match m {
                Some(m) => m,
                None => break,
            },
            _ = ticker.tick(), if heartbeat.is_some() => Message::text(r#"{"op":"heartbeat"}"#),
        };
        let closing = matches!(msg, Message::Close(_));
        if let Err(e) = sink.send(msg).await {
            shared.close(ClientError::Transport(format!("write: {e}")));
            return;
        }
        if closing {
            return;
        }
    }
    let _ = sink.send(normal_close()).await;
}

/// A close frame with code 1000: a real leave (a close without it, or a
/// dropped socket, leaves the session held for a resume).
fn normal_close() -> Message {
    Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "bye".into(),
    }))
}

/// Routes every frame from the server until the socket ends.
async fn read_loop(mut stream: Stream, shared: Arc<Shared>) {
    let why = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => route(&shared, text.as_str()),
            Some(Ok(Message::Close(frame))) => {
                break ClientError::Closed {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame
                        .map(|f| f.reason.as_str().to_owned())
                        .unwrap_or_default(),
                };
            }
            Some(Ok(Message::Binary(_))) => {
                tracing::warn!("ignoring a binary frame from the server")
            }
            Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
            Some(Err(e)) => break ClientError::Transport(format!("read: {e}")),
            None => {
                break ClientError::Closed {
                    code: None,
                    reason: "connection ended".into(),
                }
            }
        }
    };
    tracing::debug!("signaling connection ended: {why}");
    shared.close(why);
}

/// Route one text frame: a response to its request, anything else to the
/// event queue. Never panics on what the server sends.
fn route(shared: &Shared, text: &str) {
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(text) else {
        tracing::warn!("ignoring a non-object frame from the server: {text}");
        return;
    };
    if let Some(name) = obj.get("event").and_then(Value::as_str).map(str::to_owned) {
        obj.remove("event");
        shared.push_event(Event {
            name,
            fields: Value::Object(obj),
        });
        return;
    }
    let reply = obj
        .get("id")
        .and_then(Value::as_u64)
        .and_then(|id| shared.state().pending.remove(&id));
    let Some(reply) = reply else {
        shared.push_event(Event {
            name: UNMATCHED_RESPONSE.into(),
            fields: Value::Object(obj),
        });
        return;
    };
    let result = match obj.get("code").and_then(Value::as_u64) {
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
    };
    let _ = reply.send(result);
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
