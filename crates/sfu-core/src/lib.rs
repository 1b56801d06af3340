//! # sfu-core: the I/O edge
//!
//! The only crate that touches sockets and threads. It owns the HTTP and
//! WebSocket listener and drives the control plane (`room-signal`) and,
//! with the media plane, the data plane (`stream-router`).
//!
//! - [`http`]: the axum router (`/ws`, WHIP/WHEP, `/sdk`, `/`, `/health`).
//! - [`listener`]: the accept loop, connection limit and header timeout.
//! - [`assets`]: the embedded browser SDK and demo page.
//! - [`signaling`]: one task per WebSocket connection, owning its `Session`.
//! - [`media`]: the UDP port, media workers and `rtc` peer connections.
//! - [`ratelog`]: the log layer that keeps clients from driving the logs.
//! - [`whip`]: WHIP/WHEP resources, each a control-plane session of its own.
//! - [`admin`] (+ [`admin_views`], its JSON bodies): the admin REST API and
//!   its OpenAPI document.
//! - [`webhooks`]: the apps' events POSTed to their backends, signed, in
//!   room order, with retries.
//! - [`cluster`]: several nodes as one, on Redis (the node registry).

pub mod admin;
pub mod admin_views;
pub mod assets;
pub mod cluster;
pub mod http;
pub mod listener;
pub mod media;
pub mod metrics;
pub mod ratelog;
pub mod resume;
pub mod signaling;
pub mod webhooks;
pub mod whip;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use room_signal::{Hub, SignalConfig};
use tokio::net::TcpListener;

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Signaling and HTTP listener address.
    pub bind: SocketAddr,
    pub signal: SignalConfig,
    /// The media plane (UDP port, workers); `None` runs signaling only.
    pub media: Option<media::MediaConfig>,
    /// Connection counts, timeouts and body size of the HTTP listener.
    pub http: HttpLimits,
    /// Development mode: offers `GET /dev/token` to mint tokens for the demo.
    pub dev: bool,
    /// A bearer token that opens the admin API for every app
    /// (`server.adminToken`; `None`: only each app's secret does).
    pub admin_token: Option<String>,
    /// Webhook delivery (`[webhooks]`); each app's URL is in its config.
    pub webhooks: webhooks::WebhookConfig,
    /// Cluster mode (`[cluster]`): this node's membership of a cluster on
    /// Redis; `None`: a single node.
    pub cluster: Option<cluster::ClusterConfig>,
}

/// Limits of the HTTP/WebSocket listener (`server.*` keys of `sfu.toml`).
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// TCP connections open at once (HTTP and WebSocket).
    pub max_connections: usize,
    /// Signaling WebSockets open at once.
    pub max_websockets: usize,
    /// A request's headers must arrive within this.
    pub header_timeout: Duration,
    /// A request's body must arrive within this.
    pub body_timeout: Duration,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// How long a shutdown may take (`server.shutdownGraceMs`).
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 25_000,
            max_websockets: 20_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_body_bytes: 128 * 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Shared state of the HTTP handlers.
pub struct State {
    pub hub: Hub,
    pub resources: Arc<whip::Resources>,
    pub dev: bool,
    /// Requests and connections refused by a limit or a check, per kind.
    pub refusals: Refusals,
    /// The listener's limits (connections, timeouts, body size).
    pub limits: HttpLimits,
    /// Signaling WebSockets open now (under `limits.max_websockets`).
    pub websockets: std::sync::atomic::AtomicUsize,
    /// The media plane, when there is one (its counters for `/metrics`).
    pub media: Option<Arc<media::MediaPlane>>,
    /// The server-wide admin token, if configured.
    pub admin_token: Option<String>,
    /// Set to true when the server starts shutting down: every signaling
    /// connection says so to its client and closes.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// The apps' webhooks (flushed at shutdown; counters for `/metrics`).
    pub webhooks: Arc<webhooks::Webhooks>,
    /// Sessions a `resume` can take over, by (appID, sessionID).
    pub resumes: resume::Registry,
    /// Sessions held for a resume now (`/metrics`).
    pub held_sessions: std::sync::atomic::AtomicUsize,
    /// This node's cluster membership, in cluster mode.
    pub cluster: Option<cluster::Cluster>,
}

impl State {
    /// Shutdown, once the listener stopped accepting and its HTTP requests
    /// finished: every WebSocket client is told (`roomStateChanged KICKOUT
    /// 1000093`, close 1001) and its session ends; then the media plane
    /// closes every peer connection and its threads are joined, and the
    /// webhooks left in the queue are delivered. All within
    /// `limits.shutdown_grace`; what is left then is dropped with the
    /// process.
    async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + self.limits.shutdown_grace;
        let _ = self.stopping.send(true);
        let sessions = tokio::time::timeout_at(deadline, async {
            while self.websockets.load(std::sync::atomic::Ordering::Acquire) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok();
        self.resources.end_all();
        let media = match &self.media {
            Some(m) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                m.shutdown(left).await
            }
            None => true,
        };
        // The sessions' last events (logouts, streams stopped, rooms closed).
        let hooks = self.webhooks.flush(deadline).await;
        // Out of the registry at once rather than after the TTL.
        if let Some(c) = &self.cluster {
            let _ = tokio::time::timeout_at(deadline, c.leave()).await;
        }
        tracing::info!(
            sessions_closed = sessions,
            media_stopped = media,
            webhooks_flushed = hooks,
            "shutdown drained"
        );
    }
}

/// What a refusal was for (one counter each in [`Refusals`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `server.maxHttpConnections` reached: a TCP connection got `503`.
    HttpConnections,
    /// `server.maxWebSocketConnections` reached: an upgrade got `503`.
    WebSockets,
    /// `limits.maxSessionsPerApp` reached (`1001005`), WebSocket or WHIP/WHEP.
    AppSessions,
    /// A request body over `server.maxRequestBodyBytes` (`413`).
    BodyTooLarge,
    /// A request body slower than `server.httpBodyTimeoutMs` (`408`).
    BodyTimeout,
    /// A `DELETE`/`PATCH` of a WHIP/WHEP resource by someone not its owner.
    ResourceAuth,
}

/// Refusal counters (read by `/metrics` later; tests and logs for now).
#[derive(Debug, Default)]
pub struct Refusals {
    counters: [std::sync::atomic::AtomicU64; 6],
}

impl Refusals {
    fn slot(kind: Refusal) -> usize {
        match kind {
            Refusal::HttpConnections => 0,
            Refusal::WebSockets => 1,
            Refusal::AppSessions => 2,
            Refusal::BodyTooLarge => 3,
            Refusal::BodyTimeout => 4,
            Refusal::ResourceAuth => 5,
        }
    }

    pub fn count(&self, kind: Refusal) {
        self.counters[Self::slot(kind)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many refusals of `kind` so far.
    pub fn get(&self, kind: Refusal) -> u64 {
        self.counters[Self::slot(kind)].load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
    media_addr: Option<SocketAddr>,
}

impl Server {
    /// Bind the listener and build the control plane.
    pub async fn bind(config: ServerConfig) -> anyhow::Result<Server> {
        let hooks = webhooks::Webhooks::start(&config.webhooks, &config.signal.apps)?;
        let (hub, media_addr, plane) = match config.media {
            Some(media) => {
                let plane = media::MediaPlane::start(media)?;
                let addr = plane.local_addr();
                let hub = Hub::with_hooks(config.signal, plane.clone(), hooks.clone())
                    .map_err(anyhow::Error::msg)?;
                (hub, Some(addr), Some(plane))
            }
            None => (
                Hub::with_hooks(
                    config.signal,
                    Arc::new(room_signal::media::NoMedia),
                    hooks.clone(),
                )
                .map_err(anyhow::Error::msg)?,
                None,
                None,
            ),
        };
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let cluster = match config.cluster {
            Some(c) => Some(cluster::Cluster::start(c).map_err(anyhow::Error::msg)?),
            None => None,
        };
        Ok(Server {
            listener,
            state: Arc::new(State {
                hub,
                resources: Arc::default(),
                dev: config.dev,
                refusals: Refusals::default(),
                limits: config.http,
                websockets: Default::default(),
                media: plane,
                admin_token: config.admin_token.filter(|t| !t.is_empty()),
                stopping: tokio::sync::watch::Sender::new(false),
                webhooks: hooks,
                resumes: resume::Registry::default(),
                held_sessions: Default::default(),
                cluster,
            }),
            media_addr,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The media plane's UDP address, if it runs.
    pub fn media_addr(&self) -> Option<SocketAddr> {
        self.media_addr
    }

    /// The media plane's ICE-TCP address, if it runs with ICE-TCP.
    pub fn media_tcp_addr(&self) -> Option<SocketAddr> {
        self.state.media.as_ref().and_then(|m| m.tcp_addr())
    }

    /// Serve until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let period = Duration::from_millis(state.hub.limits().online_count_interval_ms.max(100));
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                state.hub.send_online_counts();
            }
        });
        let app = http::router(self.state.clone());
        let served = listener::serve(self.listener, app, self.state.clone(), shutdown).await;
        ticker.abort();
        self.state.drain().await;
        served.context("HTTP server")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_per_kind() {
        let r = Refusals::default();
        r.count(Refusal::BodyTooLarge);
        r.count(Refusal::BodyTooLarge);
        r.count(Refusal::ResourceAuth);
        assert_eq!(r.get(Refusal::BodyTooLarge), 2);
        assert_eq!(r.get(Refusal::ResourceAuth), 1);
        for kind in [
            Refusal::HttpConnections,
            Refusal::WebSockets,
            Refusal::AppSessions,
            Refusal::BodyTimeout,
        ] {
            assert_eq!(r.get(kind), 0, "{kind:?}");
        }
    }
}
