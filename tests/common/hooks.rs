//! A webhook receiver on 127.0.0.1 for tests: a plain HTTP/1.1 server
//! (keep-alive, `Content-Length` bodies) that records every POST, answers
//! `500` to the next `fail_next` of them, and can go down (its listener and
//! every connection closed) and come back on the same port.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub event_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub json: Value,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    hits: Mutex<Vec<Hit>>,
    fail_next: AtomicUsize,
    notify: Notify,
}

pub struct HookReceiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: Option<JoinHandle<()>>,
}

impl HookReceiver {
    pub async fn start() -> HookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Inner::default());
        let task = Some(tokio::spawn(serve(listener, inner.clone())));
        HookReceiver { addr, inner, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answer `500` to the next `n` requests.
    pub fn fail_next(&self, n: usize) {
        self.inner.fail_next.store(n, Ordering::SeqCst);
    }

    /// Close the listener and every open connection: the port refuses.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listen again on the same port.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind");
        self.task = Some(tokio::spawn(serve(listener, self.inner.clone())));
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.inner.hits.lock().clone()
    }

    /// The bodies answered `200`, in arrival order.
    pub fn delivered(&self) -> Vec<Value> {
        self.hits()
            .into_iter()
            .filter(|h| h.status == 200)
            .map(|h| h.json)
            .collect()
    }

    /// Wait until `pred` holds for the hits so far (panics after `within`).
    pub async fn wait_for(&self, within: Duration, what: &str, pred: impl Fn(&[Hit]) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.inner.notify.notified();
            if pred(&self.inner.hits.lock()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let got: Vec<String> = self.hits().iter().map(|h| h.body.clone()).collect();
                panic!("webhooks: {what} not seen within {within:?}; got {got:#?}");
            }
        }
    }

    /// Wait until `n` events were answered `200`; returns their bodies.
    pub async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Value> {
        self.wait_for(within, &format!("{n} delivered events"), |h| {
            h.iter().filter(|h| h.status == 200).count() >= n
        })
        .await;
        self.delivered()
    }
}

impl Drop for HookReceiver {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Accept connections; they live in a `JoinSet` owned by this task, so
/// aborting it closes them all.
async fn serve(listener: TcpListener, inner: Arc<Inner>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                conns.spawn(connection(stream, inner.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn connection(mut stream: TcpStream, inner: Arc<Inner>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let path = head
            .split("\r\n")
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
            .to_string();
        let header = |name: &str| -> String {
            head.split("\r\n")
                .skip(1)
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let len: usize = header("content-length").parse().unwrap_or(0);
        let (event_id, timestamp, signature) = (
            header("x-sfu-event-id"),
            header("x-sfu-timestamp"),
            header("x-sfu-signature"),
        );
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
        buf.drain(..head_end + len);
        let fail = inner
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let status = if fail { 500 } else { 200 };
        inner.hits.lock().push(Hit {
            path,
            event_id,
            timestamp,
            signature,
            json: serde_json::from_str(&body).unwrap_or(Value::Null),
            body,
            status,
        });
        inner.notify.notify_waiters();
        let answer = if fail {
            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"
        } else {
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        };
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// `X-Sfu-Signature` as a receiver computes it (ring's HMAC-SHA256).
pub fn expected_signature(key: &str, timestamp: &str, body: &str) -> String {
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes()),
        format!("{timestamp}.{body}").as_bytes(),
    );
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The webhook secret of app 1 in [`config`].
pub const KEY: &str = "hook-key";
/// App 1 sends webhooks to `url`; app 2 has none.
pub fn config(url: &str, webhooks: &str) -> String {
    format!(
        "[webhooks]\n{webhooks}\n\n[[apps]]\nappID = 1\nsecret = \"secret-one\"\nmultiRoom = true\n\
         maxRooms = 5\nwebhookURL = \"{url}\"\nwebhookSecret = \"{KEY}\"\n\n\
         [[apps]]\nappID = 2\nsecret = \"secret-two\"\nmultiRoom = false\n"
    )
}

/// `event user stream reason`, what a test compares (room apart).
pub fn line(v: &Value) -> String {
    let mut s = v["event"].as_str().unwrap_or("?").to_string();
    for k in ["userID", "streamID", "reason"] {
        match &v[k] {
            Value::String(x) => s += &format!(" {x}"),
            Value::Number(n) => s += &format!(" {n}"),
            _ => {}
        }
    }
    s
}

/// Delivered events grouped by room, each room's in arrival order.
pub fn by_room(events: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut rooms: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        let room = e["roomID"].as_str().unwrap_or("?").to_string();
        rooms.entry(room).or_default().push(line(e));
    }
    rooms
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Every hit is signed with `KEY` over its own timestamp, names its body's
/// event ID, and belongs to app 1.
pub fn check_signed(hits: &[Hit]) {
    for h in hits {
        assert_eq!(h.path, "/hook");
        assert_eq!(
            h.signature,
            expected_signature(KEY, &h.timestamp, &h.body),
            "signature of {}",
            h.body
        );
        assert_eq!(h.json["eventID"].as_str(), Some(h.event_id.as_str()));
        assert_eq!(h.json["appID"], 1, "{}", h.body);
        let sent: u64 = h.timestamp.parse().expect("X-Sfu-Timestamp is unix ms");
        let at = h.json["timestamp"].as_u64().expect("timestamp");
        assert!(at <= sent && sent <= now_ms() + 1_000, "{sent} {}", h.body);
    }
}
