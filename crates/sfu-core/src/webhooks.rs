//! Webhooks: the control plane's [`HookEvent`]s POSTed to each app's
//! `webhookURL`, signed, in order per room, never blocking signaling.
//!
//! - `emit` (called under a room's lock) serializes the body and
//!   `try_send`s it into one of a fixed set of *lanes*, chosen by a hash of
//!   (app, room): a room's events always take the same lane, so they keep
//!   the room's order. A full lane drops the event and counts it.
//! - Each lane is one task that delivers its queue one event at a time:
//!   a retryable failure (connection error, timeout, `5xx`, `408`, `429`) is
//!   retried after `retryBaseMs`·2ⁿ (at most 60 s apart) up to
//!   `maxRetries` times; any other answer ends that event (counted as
//!   failed). Head-of-line blocking is per lane, by design: order first.
//! - Every attempt is signed: `X-Sfu-Timestamp` (unix ms of the attempt)
//!   and `X-Sfu-Signature: sha256=hex(HMAC-SHA256(key, timestamp + "." +
//!   body))`; `X-Sfu-Event-Id` repeats the body's `eventID`, the same on
//!   every attempt, for idempotency.
//! - At shutdown, [`Webhooks::flush`] waits (within the grace period) for
//!   the lanes to empty.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use room_signal::{AppConfig, HookEvent, Hooks};
use sha2::Sha256;
use tokio::sync::mpsc;

/// Target of the warnings clients' activity can repeat (one per dropped or
/// given-up event): rate-limited by [`crate::ratelog`].
const FLOOD_LOG: &str = "sfu_core::webhooks::client";

/// Longest wait between two attempts of one event.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The `[webhooks]` section: delivery settings shared by every app.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Attempts after the first before an event is given up.
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each next one.
    pub retry_base: Duration,
    /// Timeout of one attempt (connect + answer).
    pub timeout: Duration,
    /// Events queued (all lanes together) before new ones are dropped.
    pub queue_capacity: usize,
    /// Delivery lanes (each delivers one event at a time).
    pub lanes: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            max_retries: 8,
            retry_base: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
            queue_capacity: 10_000,
            lanes: 16,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Events answered with `2xx`.
    pub delivered: AtomicU64,
    /// Events given up (retries exhausted, or a final `4xx`).
    pub failed: AtomicU64,
    /// Attempts after the first.
    pub retries: AtomicU64,
    /// Events dropped because their lane was full.
    pub dropped: AtomicU64,
    /// Events queued or being delivered now.
    pub pending: AtomicU64,
}

/// Where one app's events go.
struct Target {
    url: reqwest::Url,
    key: Vec<u8>,
}

struct Job {
    /// Numbers the event (its ID is `boot-seq`).
    seq: u64,
    /// When it happened (unix ms).
    at: u64,
    event: HookEvent,
}

/// The webhook sender: the [`Hooks`] the hub emits into.
pub struct Webhooks {
    targets: Arc<HashMap<u32, Target>>,
    lanes: Vec<mpsc::Sender<Job>>,
    stats: Arc<WebhookStats>,
    next: AtomicU64,
}

impl Webhooks {
    /// Check every app's `webhookURL` and start the lanes (on the current
    /// tokio runtime). Apps without a URL send nothing.
    pub fn start(config: &WebhookConfig, apps: &[AppConfig]) -> anyhow::Result<Arc<Webhooks>> {
        let targets = targets(apps)?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sfu-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let targets = Arc::new(targets);
        let stats = Arc::new(WebhookStats::default());
        let lanes = config.lanes.max(1);
        let per_lane = (config.queue_capacity / lanes).max(1);
        let mut senders = Vec::with_capacity(lanes);
        let boot = unix_ms();
        if !targets.is_empty() {
            for _ in 0..lanes {
                let (tx, rx) = mpsc::channel(per_lane);
                senders.push(tx);
                let lane = Lane {
                    boot,
                    client: client.clone(),
                    targets: targets.clone(),
                    stats: stats.clone(),
                    config: config.clone(),
                };
                tokio::spawn(lane.run(rx));
            }
        }
        Ok(Arc::new(Webhooks {
            targets,
            lanes: senders,
            stats,
            next: AtomicU64::new(1),
        }))
    }

    pub fn stats(&self) -> &WebhookStats {
        &self.stats
    }

    /// Wait until every queued event was delivered or given up, or until
    /// `deadline`; true if nothing is left.
    pub async fn flush(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let left = self.stats.pending.load(Ordering::Acquire);
            if left == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    left,
                    "shutdown: webhook events not delivered within the grace period"
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn lane_of(&self, app_id: u32, room_id: &str) -> Option<&mpsc::Sender<Job>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (app_id, room_id).hash(&mut h);
        let n = self.lanes.len();
        if n == 0 {
            return None;
        }
        self.lanes.get((h.finish() % n as u64) as usize)
    }
}

impl Hooks for Webhooks {
    fn emit(&self, event: HookEvent) {
        if !self.targets.contains_key(&event.app_id) {
            return;
        }
        let Some(lane) = self.lane_of(event.app_id, &event.room_id) else {
            return;
        };
        // Only stamp and queue here (under the room's lock); the lane
        // writes the body.
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.stats.pending.fetch_add(1, Ordering::AcqRel);
        let (app_id, room_id, kind) = (event.app_id, event.room_id.clone(), event.kind);
        let job = Job {
            seq,
            at: unix_ms(),
            event,
        };
        if lane.try_send(job).is_err() {
            self.stats.pending.fetch_sub(1, Ordering::AcqRel);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: FLOOD_LOG, app = app_id, room = %room_id,
                event = kind.name(), "webhook queue full: event dropped");
        }
    }
}

/// Check every app's `webhookURL` (what `sfu config check` runs).
pub fn check(apps: &[AppConfig]) -> anyhow::Result<()> {
    targets(apps).map(drop)
}

fn targets(apps: &[AppConfig]) -> anyhow::Result<HashMap<u32, Target>> {
    let mut targets = HashMap::new();
    for app in apps.iter().filter(|a| !a.webhook_url.is_empty()) {
        let url = reqwest::Url::parse(&app.webhook_url)
            .map_err(|e| anyhow::anyhow!("app {}: webhookURL: {e}", app.app_id))?;
        if !matches!(url.scheme(), "http" | "https") {
            anyhow::bail!("app {}: webhookURL must be http:// or https://", app.app_id);
        }
        let key = app.webhook_key().as_bytes().to_vec();
        targets.insert(app.app_id, Target { url, key });
    }
    Ok(targets)
}

/// The JSON body of one event.
pub fn body(event: &HookEvent, event_id: &str, timestamp: u64) -> String {
    let mut map = serde_json::Map::new();
    map.insert("eventID".into(), event_id.into());
    map.insert("event".into(), event.kind.name().into());
    map.insert("timestamp".into(), timestamp.into());
    map.insert("appID".into(), event.app_id.into());
    map.insert("roomID".into(), (*event.room_id).into());
    if let Some(u) = &event.user_id {
        map.insert("userID".into(), (**u).into());
    }
    if let Some(s) = &event.stream_id {
        map.insert("streamID".into(), (**s).into());
    }
    if let Some(r) = event.reason {
        map.insert("reason".into(), r.into());
    }
    serde_json::Value::Object(map).to_string()
}

/// `X-Sfu-Signature` of `body` sent at `timestamp`.
pub fn signature(key: &[u8], timestamp: u64, body: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The wait before retry `n` (1-based).
fn backoff(base: Duration, n: u32) -> Duration {
    base.saturating_mul(1u32 << (n - 1).min(20))
        .min(MAX_BACKOFF)
}

/// An event as it is sent.
struct Ready {
    app_id: u32,
    event_id: String,
    body: String,
}

/// One delivery lane.
struct Lane {
    /// The webhook sender's start time, the prefix of event IDs.
    boot: u64,
    client: reqwest::Client,
    targets: Arc<HashMap<u32, Target>>,
    stats: Arc<WebhookStats>,
    config: WebhookConfig,
}

/// What one attempt came to.
enum Attempt {
    Delivered,
    Retry(String),
    Final(String),
}

impl Lane {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        while let Some(job) = rx.recv().await {
            let app_id = job.event.app_id;
            let event_id = format!("{:x}-{:x}", self.boot, job.seq);
            let job = Ready {
                body: body(&job.event, &event_id, job.at),
                app_id,
                event_id,
            };
            if let Some(target) = self.targets.get(&app_id) {
                self.deliver(target, &job).await;
            }
            self.stats.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    async fn deliver(&self, target: &Target, job: &Ready) {
        let mut retries = 0;
        loop {
            let why = match self.attempt(target, job).await {
                Attempt::Delivered => {
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Attempt::Final(why) => {
                    self.give_up(job, &why, retries);
                    return;
                }
                Attempt::Retry(why) => why,
            };
            if retries >= self.config.max_retries {
                self.give_up(job, &why, retries);
                return;
            }
            retries += 1;
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(app = job.app_id, event = %job.event_id, retries, %why,
                "webhook delivery failed: retrying");
            tokio::time::sleep(backoff(self.config.retry_base, retries)).await;
        }
    }

    fn give_up(&self, job: &Ready, why: &str, retries: u32) {
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(target: FLOOD_LOG, app = job.app_id, event = %job.event_id, retries, %why,
            "webhook event given up");
    }

    async fn attempt(&self, target: &Target, job: &Ready) -> Attempt {
        let ts = unix_ms();
        let sent = self
            .client
            .post(target.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Sfu-Event-Id", &job.event_id)
            .header("X-Sfu-Timestamp", ts.to_string())
            .header("X-Sfu-Signature", signature(&target.key, ts, &job.body))
            .body(job.body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Attempt::Delivered,
            Ok(r) => {
                let s = r.status();
                let why = format!("HTTP {}", s.as_u16());
                if s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429 {
                    Attempt::Retry(why)
                } else {
                    Attempt::Final(why)
                }
            }
            Err(e) => Attempt::Retry(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use room_signal::HookKind;

    #[test]
    fn body_has_the_fields_that_are_set() {
        let e = HookEvent {
            kind: HookKind::StreamStopped,
            app_id: 7,
            room_id: Arc::from("r1"),
            user_id: Some(Arc::from("u1")),
            stream_id: Some(Arc::from("s1")),
            reason: Some(6),
        };
        let v: serde_json::Value = serde_json::from_str(&body(&e, "a-1", 42)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"eventID": "a-1", "event": "stream_stopped", "timestamp": 42,
                "appID": 7, "roomID": "r1", "userID": "u1", "streamID": "s1", "reason": 6})
        );
        let e = HookEvent {
            kind: HookKind::RoomCreated,
            user_id: None,
            stream_id: None,
            reason: None,
            ..e
        };
        let v: serde_json::Value = serde_json::from_str(&body(&e, "a-2", 1)).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 5);
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 style check against an independent computation (ring).
        let key = b"webhook-key";
        let expected = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            b"1700000000000.{\"a\":1}",
        );
        let hex: String = expected
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            signature(key, 1_700_000_000_000, "{\"a\":1}"),
            format!("sha256={hex}")
        );
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let b = Duration::from_millis(500);
        assert_eq!(backoff(b, 1), Duration::from_millis(500));
        assert_eq!(backoff(b, 2), Duration::from_millis(1000));
        assert_eq!(backoff(b, 4), Duration::from_millis(4000));
        assert_eq!(backoff(b, 9), MAX_BACKOFF);
        assert_eq!(backoff(b, 40), MAX_BACKOFF);
    }
}
