//! The node registry. Every node runs one background task that, once per
//! heartbeat, writes its entry (its advertised node-link address and its
//! *incarnation*, a random ID per process start) with a TTL and reads back
//! every live entry, in one Lua script on Redis's clock (nodes' clocks
//! never enter). A node killed with `-9` stops heartbeating and is out of
//! every view within the TTL. A node restarted with the same ID gets a new
//! incarnation, so its predecessor's claims are told apart from its own
//! (and are stale: the new process holds none of that state).
//!
//! Redis down is not the cluster down: the task keeps trying every
//! heartbeat (the connection manager reconnects by itself after a
//! connection drops), the node goes on serving its local traffic, and
//! re-registers as soon as Redis answers again. `/readyz` says not ready
//! once the last good heartbeat is older than the TTL: other nodes no
//! longer see this one.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Notify;

/// The node set.
const NODES: &str = "sfu:nodes";

/// Register (or renew) this node and read every live node back.
/// KEYS[1]: the node set. ARGV: id, advertise, incarnation, started (unix
/// ms), ttl (ms). Returns: Redis's now (ms), the incarnation the entry had
/// before (empty: none), then per live node: id, advertise, incarnation,
/// last heartbeat (ms).
const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[5])
local key = 'sfu:node:' .. ARGV[1]
local before = redis.call('HGET', key, 'incarnation') or ''
redis.call('HSET', key, 'advertise', ARGV[2], 'incarnation', ARGV[3], 'started', ARGV[4])
redis.call('PEXPIRE', key, ttl)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. tostring(now - ttl))
local out = {tostring(now), before}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f = redis.call('HMGET', 'sfu:node:' .. id, 'advertise', 'incarnation')
  if f[1] and f[2] then
    table.insert(out, id)
    table.insert(out, f[1])
    table.insert(out, f[2])
    table.insert(out, tostring(redis.call('ZSCORE', KEYS[1], id)))
  end
end
return out
";

/// Remove this node's entry if it is still this incarnation's.
/// KEYS[1]: the node set. ARGV: id, incarnation.
const LEAVE: &str = r"
local key = 'sfu:node:' .. ARGV[1]
if redis.call('HGET', key, 'incarnation') == ARGV[2] then
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
";

/// `[cluster]` of `sfu.toml`, checked.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://host:port[/db]`.
    pub redis: String,
    /// This node's ID, unique in the cluster (1–64 of `A-Za-z0-9_.-`).
    pub node_id: String,
    /// `host:port` other nodes reach this node's node-to-node link at.
    pub advertise: String,
    /// How often the entry is renewed.
    pub heartbeat: Duration,
    /// An entry not renewed for this long is gone.
    pub node_ttl: Duration,
}

impl ClusterConfig {
    /// Defaults: a heartbeat per second, gone after 5 s without one (a
    /// dead node is out of every view within 6 s).
    pub fn new(redis: &str, node_id: &str, advertise: &str) -> Self {
        ClusterConfig {
            redis: redis.to_owned(),
            node_id: node_id.to_owned(),
            advertise: advertise.to_owned(),
            heartbeat: Duration::from_secs(1),
            node_ttl: Duration::from_secs(5),
        }
    }

    /// What is wrong with it, if anything.
    pub fn check(&self) -> Result<(), String> {
        let id = &self.node_id;
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(format!(
                "cluster.nodeID `{id}` must be 1-64 characters of A-Z a-z 0-9 _ - ."
            ));
        }
        if !self.redis.starts_with("redis://") {
            return Err(format!(
                "cluster.redis `{}` must be a redis:// URL",
                self.redis
            ));
        }
        redis::Client::open(self.redis.as_str())
            .map_err(|e| format!("cluster.redis `{}`: {e}", self.redis))?;
        if self.advertise.is_empty() {
            return Err("cluster.advertise is empty (host:port of this node's node link)".into());
        }
        if self.heartbeat.is_zero() || self.node_ttl < self.heartbeat * 2 {
            return Err("cluster.nodeTtlMs must be at least twice cluster.heartbeatMs".into());
        }
        Ok(())
    }
}

/// A live node, as the last heartbeat read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub advertise: String,
    pub incarnation: String,
    /// Its last heartbeat, Redis's clock (unix ms).
    pub last_seen_ms: u64,
}

/// How this node's Redis connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisState {
    /// Not answered yet since the start.
    Connecting,
    /// The last heartbeat went through.
    Up,
    /// The last heartbeat failed (Redis down, unreachable, too slow).
    Down,
}

impl RedisState {
    pub fn as_str(self) -> &'static str {
        match self {
            RedisState::Connecting => "connecting",
            RedisState::Up => "up",
            RedisState::Down => "down",
        }
    }
}

/// The Redis connection's health.
#[derive(Debug, Clone, Copy)]
pub struct RedisHealth {
    pub state: RedisState,
    /// The last good heartbeat's round trip.
    pub latency: Option<Duration>,
    /// When the last good heartbeat came back.
    pub last_ok: Option<Instant>,
    /// Heartbeats that failed, since the start.
    pub errors: u64,
    /// Times another process wrote this node ID's entry between two of our
    /// heartbeats (two live nodes with one ID: a misconfiguration).
    pub conflicts: u64,
}

struct Shared {
    health: RedisHealth,
    nodes: Vec<NodeInfo>,
}

struct Inner {
    config: ClusterConfig,
    incarnation: String,
    started_ms: u64,
    shared: Mutex<Shared>,
    stop: Notify,
}

/// This node's membership of the cluster. Dropping it stops the heartbeat
/// task; [`Cluster::leave`] also removes the entry at once (shutdown).
pub struct Cluster {
    inner: Arc<Inner>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.inner.config.node_id)
            .field("incarnation", &self.inner.incarnation)
            .finish()
    }
}

impl Cluster {
    /// Start registering this node, in the background: a Redis that is
    /// down now is tried again every heartbeat. Errors only for a bad
    /// configuration. Needs a tokio runtime.
    pub fn start(config: ClusterConfig) -> Result<Cluster, String> {
        config.check()?;
        let client = redis::Client::open(config.redis.as_str()).map_err(|e| e.to_string())?;
        let inner = Arc::new(Inner {
            incarnation: format!("{:016x}", rand::random::<u64>()),
            started_ms: unix_ms(),
            shared: Mutex::new(Shared {
                health: RedisHealth {
                    state: RedisState::Connecting,
                    latency: None,
                    last_ok: None,
                    errors: 0,
                    conflicts: 0,
                },
                nodes: Vec::new(),
            }),
            stop: Notify::new(),
            config,
        });
        let task = tokio::spawn(heartbeats(inner.clone(), client));
        Ok(Cluster {
            inner,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn node_id(&self) -> &str {
        &self.inner.config.node_id
    }

    /// This process's incarnation (random, per start).
    pub fn incarnation(&self) -> &str {
        &self.inner.incarnation
    }

    /// The live nodes as of the last good heartbeat, this one included,
    /// by ID.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.inner.shared.lock().nodes.clone()
    }

    pub fn health(&self) -> RedisHealth {
        self.inner.shared.lock().health
    }

    /// Registered, with a heartbeat within the TTL: the other nodes see
    /// this one.
    pub fn is_ready(&self) -> bool {
        self.health()
            .last_ok
            .is_some_and(|at| at.elapsed() < self.inner.config.node_ttl)
    }

    /// Stop heartbeating and remove this node's entry (if it is still
    /// ours) within one heartbeat interval; other nodes see it gone at
    /// their next heartbeat.
    pub async fn leave(&self) {
        self.inner.stop.notify_one();
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(self.inner.config.heartbeat * 2, task).await;
        }
        let Ok(client) = redis::Client::open(self.inner.config.redis.as_str()) else {
            return;
        };
        let within = self.inner.config.heartbeat;
        let _ = tokio::time::timeout(within, async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::Script::new(LEAVE)
                .key(NODES)
                .arg(&self.inner.config.node_id)
                .arg(&self.inner.incarnation)
                .invoke_async::<i64>(&mut conn)
                .await
        })
        .await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The heartbeat task.
async fn heartbeats(inner: Arc<Inner>, client: redis::Client) {
    let every = inner.config.heartbeat;
    let manager = ConnectionManagerConfig::new()
        .set_connection_timeout(every)
        .set_response_timeout(every)
        .set_number_of_retries(1);
    let script = redis::Script::new(HEARTBEAT);
    let mut conn: Option<ConnectionManager> = None;
    let mut registered = false;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = inner.stop.notified() => return,
        }
        if conn.is_none() {
            match tokio::time::timeout(
                every,
                ConnectionManager::new_with_config(client.clone(), manager.clone()),
            )
            .await
            {
                Ok(Ok(c)) => conn = Some(c),
                Ok(Err(e)) => {
                    failed(&inner, &format!("cannot connect: {e}"));
                    continue;
                }
                Err(_) => {
                    failed(&inner, "cannot connect: timed out");
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            continue;
        };
        let sent = Instant::now();
        let reply = tokio::time::timeout(
            every,
            script
                .key(NODES)
                .arg(&inner.config.node_id)
                .arg(&inner.config.advertise)
                .arg(&inner.incarnation)
                .arg(inner.started_ms)
                .arg(inner.config.node_ttl.as_millis() as u64)
                .invoke_async::<Vec<String>>(c),
        )
        .await;
        let fields = match reply {
            Ok(Ok(fields)) => fields,
            Ok(Err(e)) => {
                failed(&inner, &format!("heartbeat failed: {e}"));
                continue;
            }
            Err(_) => {
                failed(&inner, "heartbeat timed out");
                continue;
            }
        };
        let latency = sent.elapsed();
        let before = fields.get(1).cloned().unwrap_or_default();
        let mut conflict = false;
        if !before.is_empty() && before != inner.incarnation {
            if registered {
                // Between two of our heartbeats another process wrote our ID.
                conflict = true;
                tracing::error!(node = %inner.config.node_id, other = %before,
                    "another live process uses this cluster.nodeID");
            } else {
                tracing::warn!(node = %inner.config.node_id, previous = %before,
                    "cluster.nodeID was registered by an earlier incarnation; its state is stale");
            }
        }
        if !registered {
            tracing::info!(node = %inner.config.node_id, incarnation = %inner.incarnation,
                "registered in the cluster");
        }
        registered = true;
        let mut nodes: Vec<NodeInfo> = fields
            .get(2..)
            .unwrap_or_default()
            .chunks_exact(4)
            .map(|f| NodeInfo {
                id: f[0].clone(),
                advertise: f[1].clone(),
                incarnation: f[2].clone(),
                last_seen_ms: f[3].parse().unwrap_or(0),
            })
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let mut s = inner.shared.lock();
        if s.health.state != RedisState::Up && s.health.state != RedisState::Connecting {
            tracing::info!(node = %inner.config.node_id, "Redis answers again");
        }
        s.health.state = RedisState::Up;
        s.health.latency = Some(latency);
        s.health.last_ok = Some(Instant::now());
        s.health.conflicts += u64::from(conflict);
        s.nodes = nodes;
    }
}

fn failed(inner: &Inner, why: &str) {
    let mut s = inner.shared.lock();
    if s.health.state != RedisState::Down {
        tracing::warn!(node = %inner.config.node_id, "Redis: {why}");
    }
    s.health.state = RedisState::Down;
    s.health.errors += 1;
}
