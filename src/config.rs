//! The server's configuration: an optional TOML file (`sfu.toml`), then
//! environment overrides, then command-line flags.
//!
//! Environment overrides name a key path under the `SFU_` prefix, segments
//! joined by `__`, matched case-insensitively and ignoring `_`:
//! `SFU_SERVER__BIND=0.0.0.0:7880`, `SFU_LIMITS__HEARTBEAT_TIMEOUT_MS=10000`,
//! `SFU_APPS__0__SECRET=...`. Values are read as TOML (numbers, booleans)
//! and fall back to strings.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use room_signal::{AppConfig, Limits, SignalConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ServerSection {
    /// Signaling/HTTP listener.
    pub bind: SocketAddr,
    /// The one UDP port of every peer connection.
    pub udp_port: u16,
    /// Address the UDP socket binds (default: all interfaces).
    pub udp_bind_ip: std::net::IpAddr,
    /// The one ICE-TCP port (RFC 6544 passive candidates, bound on
    /// `udpBindIp`), announced in every answer beside the UDP candidate.
    pub tcp_port: u16,
    /// ICE-TCP connections open at once; beyond, new ones are closed.
    pub max_tcp_connections: usize,
    /// Public address announced in SDP answers (NAT 1:1); empty: none.
    pub public_ip: String,
    /// Media event-loop threads; 0 means one per CPU core.
    pub media_workers: usize,
    /// Packets queued per player and kind before that player drops.
    pub player_queue: usize,
    /// No ICE traffic from a peer for this long marks it disconnected.
    pub ice_disconnected_timeout_ms: u64,
    /// No ICE traffic for this long fails the peer: its publish or play ends.
    pub ice_failed_timeout_ms: u64,
    /// A publisher that sent media and then sends no RTP or RTCP for this
    /// long has failed: its publish ends (0: off, only the ICE timeouts).
    pub publisher_silence_timeout_ms: u64,
    /// Send a player's back-to-back datagrams as one UDP GSO message (Linux
    /// falls back by itself when the kernel refuses it).
    pub udp_gso: bool,
    /// Peer connections (publishes and plays) the whole server holds at once.
    pub max_peer_connections: usize,
    /// Peer connections one app holds at once.
    pub max_peer_connections_per_app: usize,
    /// TCP connections (HTTP and WebSocket) open at once; beyond, new ones
    /// get `503` and are closed.
    pub max_http_connections: usize,
    /// Signaling WebSockets open at once (`1000090`, close 1013).
    pub max_web_socket_connections: usize,
    /// A request's headers must arrive within this (also: an idle keep-alive
    /// connection is closed after it).
    pub http_header_timeout_ms: u64,
    /// A request's body must arrive within this (`408`).
    pub http_body_timeout_ms: u64,
    /// Largest HTTP request body (SDP offers, admin calls), in bytes (`413`).
    pub max_request_body_bytes: usize,
    /// Protect and write players' RTP ourselves once each leg's first
    /// packets matched `rtc`'s byte for byte (off: all through `rtc`).
    pub egress_fast_path: bool,
    /// SRTP profiles offered in DTLS, preferred first:
    /// `AEAD_AES_128_GCM`, `AES_CM_128_HMAC_SHA1_80`.
    pub srtp_profiles: Vec<String>,
    /// A bearer token that opens the admin API (`/admin/v1/…`) for every
    /// app; empty: only each app's secret does.
    pub admin_token: String,
    /// SIGTERM/SIGINT: clients told, peers closed, workers joined, exit 0
    /// within this.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            bind: SocketAddr::from(([0, 0, 0, 0], 7880)),
            udp_port: 7882,
            udp_bind_ip: std::net::IpAddr::from([0, 0, 0, 0]),
            tcp_port: 7881,
            max_tcp_connections: 10_000,
            public_ip: String::new(),
            media_workers: 0,
            player_queue: 512,
            ice_disconnected_timeout_ms: 15_000,
            ice_failed_timeout_ms: 30_000,
            publisher_silence_timeout_ms: 1_500,
            udp_gso: true,
            max_peer_connections: 20_000,
            max_peer_connections_per_app: 10_000,
            max_http_connections: 25_000,
            max_web_socket_connections: 20_000,
            http_header_timeout_ms: 10_000,
            http_body_timeout_ms: 10_000,
            max_request_body_bytes: 128 * 1024,
            egress_fast_path: true,
            srtp_profiles: vec![
                "AEAD_AES_128_GCM".to_owned(),
                "AES_CM_128_HMAC_SHA1_80".to_owned(),
            ],
            admin_token: String::new(),
            shutdown_grace_ms: 5_000,
        }
    }
}

impl ServerSection {
    /// The media plane settings these keys describe.
    pub fn media(&self) -> anyhow::Result<sfu_core::media::MediaConfig> {
        let public_ip = match self.public_ip.trim() {
            "" => None,
            ip => Some(
                ip.parse()
                    .with_context(|| format!("server.publicIp `{ip}`"))?,
            ),
        };
        let workers = match self.media_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        use sfu_core::media::srtp::Profile;
        let mut srtp_profiles = Vec::new();
        for name in &self.srtp_profiles {
            let profile = match name.trim().to_ascii_uppercase().as_str() {
                "AEAD_AES_128_GCM" => Profile::AeadAes128Gcm,
                "AES_CM_128_HMAC_SHA1_80" => Profile::AesCm128HmacSha1_80,
                other => bail!(
                    "server.srtpProfiles: `{other}` is not one of AEAD_AES_128_GCM, AES_CM_128_HMAC_SHA1_80"
                ),
            };
            if !srtp_profiles.contains(&profile) {
                srtp_profiles.push(profile);
            }
        }
        if srtp_profiles.is_empty() {
            bail!("server.srtpProfiles is empty");
        }
        Ok(sfu_core::media::MediaConfig {
            udp_bind: SocketAddr::new(self.udp_bind_ip, self.udp_port),
            tcp_port: Some(self.tcp_port),
            max_tcp_connections: self.max_tcp_connections.max(1),
            public_ip,
            workers,
            player_queue: self.player_queue.max(16),
            ice_disconnected_timeout: std::time::Duration::from_millis(
                self.ice_disconnected_timeout_ms,
            ),
            ice_failed_timeout: std::time::Duration::from_millis(
                self.ice_failed_timeout_ms
                    .max(self.ice_disconnected_timeout_ms),
            ),
            // At least 200 ms: less would end a healthy publisher between frames.
            publisher_silence_timeout: (self.publisher_silence_timeout_ms > 0).then(|| {
                std::time::Duration::from_millis(self.publisher_silence_timeout_ms.max(200))
            }),
            udp_gso: self.udp_gso,
            max_peers: self.max_peer_connections.max(1),
            max_peers_per_app: self.max_peer_connections_per_app.max(1),
            fast_path: self.egress_fast_path,
            srtp_profiles,
            ..Default::default()
        })
    }

    /// The HTTP listener's limits these keys describe.
    pub fn http(&self) -> sfu_core::HttpLimits {
        sfu_core::HttpLimits {
            max_connections: self.max_http_connections.max(1),
            max_websockets: self.max_web_socket_connections.max(1),
            header_timeout: std::time::Duration::from_millis(self.http_header_timeout_ms.max(100)),
            body_timeout: std::time::Duration::from_millis(self.http_body_timeout_ms.max(100)),
            max_body_bytes: self.max_request_body_bytes.max(1024),
            shutdown_grace: std::time::Duration::from_millis(self.shutdown_grace_ms.max(100)),
        }
    }
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`
    /// (the message and its key/values), `spans`.
    Json,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LogSection {
    pub format: LogFormat,
}

/// Webhook delivery, shared by every app (each app's `webhookURL` and
/// `webhookSecret` say where and with which key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct WebhooksSection {
    /// Attempts after the first before an event is given up.
    pub max_retries: u32,
    /// Wait before the first retry, doubled for each next one (≤ 60 s).
    pub retry_base_ms: u64,
    /// Timeout of one attempt.
    pub timeout_ms: u64,
    /// Events queued, all apps together, before new ones are dropped.
    pub queue_capacity: usize,
    /// Delivery lanes: a room's events keep one lane, in order.
    pub lanes: usize,
}

impl Default for WebhooksSection {
    fn default() -> Self {
        let d = sfu_core::webhooks::WebhookConfig::default();
        WebhooksSection {
            max_retries: d.max_retries,
            retry_base_ms: d.retry_base.as_millis() as u64,
            timeout_ms: d.timeout.as_millis() as u64,
            queue_capacity: d.queue_capacity,
            lanes: d.lanes,
        }
    }
}

impl WebhooksSection {
    pub fn config(&self) -> sfu_core::webhooks::WebhookConfig {
        use std::time::Duration;
        sfu_core::webhooks::WebhookConfig {
            max_retries: self.max_retries,
            retry_base: Duration::from_millis(self.retry_base_ms.max(10)),
            timeout: Duration::from_millis(self.timeout_ms.max(100)),
            queue_capacity: self.queue_capacity.max(1),
            lanes: self.lanes.clamp(1, 256),
        }
    }
}

/// Cluster mode (`[cluster]`): several nodes as one app, on one Redis.
/// `redis` empty (the default): a single node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ClusterSection {
    /// `redis://host:port[/db]`; empty: no cluster.
    pub redis: String,
    /// This node's ID, unique in the cluster (1-64 of `A-Za-z0-9_.-`).
    #[serde(rename = "nodeID")]
    pub node_id: String,
    /// `host:port` other nodes reach this node's node-to-node link at.
    pub advertise: String,
    /// How often this node renews its registry entry.
    pub heartbeat_ms: u64,
    /// A node whose entry was not renewed for this long is gone.
    pub node_ttl_ms: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        let d = sfu_core::cluster::ClusterConfig::new("", "", "");
        ClusterSection {
            redis: String::new(),
            node_id: String::new(),
            advertise: String::new(),
            heartbeat_ms: d.heartbeat.as_millis() as u64,
            node_ttl_ms: d.node_ttl.as_millis() as u64,
        }
    }
}

impl ClusterSection {
    /// The membership these keys describe (`None`: no `redis`), checked.
    pub fn config(&self) -> anyhow::Result<Option<sfu_core::cluster::ClusterConfig>> {
        if self.redis.trim().is_empty() {
            return Ok(None);
        }
        let mut c = sfu_core::cluster::ClusterConfig::new(
            self.redis.trim(),
            self.node_id.trim(),
            self.advertise.trim(),
        );
        c.heartbeat = std::time::Duration::from_millis(self.heartbeat_ms);
        c.node_ttl = std::time::Duration::from_millis(self.node_ttl_ms);
        c.check().map_err(anyhow::Error::msg)?;
        Ok(Some(c))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FileConfig {
    pub server: ServerSection,
    pub limits: Limits,
    pub apps: Vec<AppConfig>,
    pub log: LogSection,
    pub webhooks: WebhooksSection,
    pub cluster: ClusterSection,
}

impl FileConfig {
    pub fn signal(&self) -> SignalConfig {
        SignalConfig {
            apps: self.apps.clone(),
            limits: self.limits.clone(),
        }
    }

    /// Load `path` (if any) and apply `vars` (the `SFU_*` environment).
    pub fn load(
        path: Option<&std::path::Path>,
        vars: impl Iterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut tree = toml::Value::try_from(FileConfig::default()).context("default config")?;
        if let Some(path) = path {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            // The file alone, strictly: an unknown key or a bad value is
            // reported with its line and column, as the TOML parser sees it.
            if let Err(e) = toml::from_str::<FileConfig>(&text) {
                bail!("{}: {}", path.display(), e.to_string().trim_end());
            }
            let file: toml::Value =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            merge(&mut tree, file);
            // Round-trip so that every key has its default value in the tree
            // (an app table that omits `maxRooms` can still be overridden).
            let parsed: FileConfig = tree
                .clone()
                .try_into()
                .with_context(|| format!("invalid {}", path.display()))?;
            tree = toml::Value::try_from(parsed).context("re-encoding config")?;
        }
        for (key, value) in vars {
            if let Some(path) = key.strip_prefix("SFU_") {
                apply_override(&mut tree, path, &value)
                    .with_context(|| format!("environment variable {key}"))?;
            }
        }
        tree.try_into().context("invalid configuration")
    }
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn apply_override(tree: &mut toml::Value, path: &str, raw: &str) -> anyhow::Result<()> {
    let segments: Vec<&str> = path.split("__").collect();
    let mut node = tree;
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        node = match node {
            toml::Value::Table(t) => {
                let Some(key) = t.keys().find(|k| norm(k) == norm(seg)).cloned() else {
                    bail!("no configuration key `{seg}`");
                };
                match t.get_mut(&key) {
                    Some(v) => v,
                    None => bail!("no configuration key `{seg}`"),
                }
            }
            toml::Value::Array(a) => {
                let idx: usize = seg
                    .parse()
                    .with_context(|| format!("`{seg}` is not an index"))?;
                if idx == a.len() {
                    a.push(toml::Value::Table(Default::default()));
                }
                match a.get_mut(idx) {
                    Some(v) => v,
                    None => bail!("index {idx} out of range"),
                }
            }
            _ => bail!("`{seg}` is not a table"),
        };
        if last {
            *node = parse_value(raw);
        }
    }
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env() {
        let dir = std::env::temp_dir().join(format!("sfu-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sfu.toml");
        std::fs::write(
            &path,
            "[server]\nbind = \"127.0.0.1:9000\"\n[limits]\nheartbeatTimeoutMs = 5000\n\
             [[apps]]\nappID = 7\nsecret = \"s\"\nmultiRoom = true\n",
        )
        .unwrap();
        let vars = vec![
            (
                "SFU_LIMITS__ONLINE_COUNT_INTERVAL_MS".to_string(),
                "250".to_string(),
            ),
            ("SFU_APPS__0__MAX_ROOMS".to_string(), "2".to_string()),
            ("SFU_APPS__0__SECRET".to_string(), "from-env".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c = FileConfig::load(Some(&path), vars.into_iter()).unwrap();
        assert_eq!(
            c.server.bind,
            "127.0.0.1:9000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(c.limits.heartbeat_timeout_ms, 5000);
        assert_eq!(c.limits.online_count_interval_ms, 250);
        assert_eq!(c.limits.broadcast_per_room_per_sec, 10);
        assert_eq!(c.apps.len(), 1);
        assert_eq!((c.apps[0].app_id, c.apps[0].max_rooms), (7, 2));
        assert_eq!(c.apps[0].secret, "from-env");
        let bad = vec![("SFU_LIMITS__NOPE".to_string(), "1".to_string())];
        assert!(FileConfig::load(None, bad.into_iter()).is_err());
    }

    #[test]
    fn sample_config_parses_and_lists_every_key() {
        let text = include_str!("../sfu.sample.toml");
        let parsed: FileConfig = toml::from_str(text).unwrap();
        assert!(!parsed.apps.is_empty());
        let defaults = toml::Value::try_from(FileConfig::default()).unwrap();
        for section in ["server", "limits"] {
            for key in defaults[section].as_table().unwrap().keys() {
                assert!(
                    text.contains(&format!("{key} =")),
                    "sample config lacks {section}.{key}"
                );
            }
        }
        for key in ["appID", "secret", "multiRoom", "maxRooms"] {
            assert!(
                text.contains(&format!("{key} =")),
                "sample config lacks apps.{key}"
            );
        }
    }
}
