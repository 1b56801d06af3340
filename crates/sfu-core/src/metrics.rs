//! `GET /metrics`: the server's state and counters, encoded by
//! `prometheus-client` (OpenMetrics text, which Prometheus scrapes as is).
//!
//! Nothing is counted here: each scrape takes a [`Snapshot`] of the
//! counters their owners keep anyway (the routers' per-track and
//! per-down-track stats through each media worker's mailbox, the egress
//! totals, the control plane's maps, the refusal counters, `/proc`) and
//! encodes it, so the packet path pays nothing for metrics. Labels are
//! bounded sets (path, reason, kind, limit code): no room, user, stream or
//! app label, so the output has a fixed size and says nothing about any
//! app's rooms or users.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as AxumState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use room_signal::HubStats;
use stream_router::RouterTotals;

use crate::media::egress::EgressStats;
use crate::media::latency::Latency;
use crate::media::peer_states::{PeerStates, STATES};
use crate::{Refusal, State};

/// How long a scrape waits for each media worker's counters.
const WORKER_ANSWER: Duration = Duration::from_secs(1);

/// Everything one scrape reports.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub hub: HubStats,
    pub websockets: u64,
    /// Sessions held for a resume (their WebSocket dropped).
    pub held_sessions: u64,
    /// `(kind, count)` of the HTTP listener's refusals.
    pub http_refusals: Vec<(&'static str, u64)>,
    /// `(code, count)` of resource-limit refusals, summed over apps.
    pub limit_refusals: Vec<(u32, u64)>,
    /// `(op, code, count)` of signaling requests, summed over apps.
    pub requests: Vec<(&'static str, u32, u64)>,
    pub media: Option<MediaSnapshot>,
    pub process: Option<Process>,
    pub webhooks: WebhookCounts,
    /// Cluster mode: the registry's view and the Redis connection.
    pub cluster: Option<ClusterCounts>,
}

/// The cluster membership at one scrape.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClusterCounts {
    pub nodes: u64,
    pub redis_up: bool,
    pub registered: bool,
    pub redis_latency_seconds: f64,
    pub redis_errors: u64,
    pub node_id_conflicts: u64,
}

/// The webhook sender's counters at one scrape.
#[derive(Debug, Default, Clone, Copy)]
pub struct WebhookCounts {
    pub delivered: u64,
    pub failed: u64,
    pub retries: u64,
    pub dropped: u64,
    pub pending: u64,
}

#[derive(Debug, Default)]
pub struct MediaSnapshot {
    pub workers: usize,
    pub router: RouterTotals,
    /// Peer connections by role and state.
    pub peers: PeerStates,
    pub egress: EgressStats,
    pub latency: Latency,
    /// ICE-TCP connections open.
    pub ice_tcp_connections: u64,
    /// Per worker: event-loop lag and busy time.
    pub loops: Vec<crate::media::loop_stats::WorkerLoop>,
}

/// The process's CPU time and resident memory (Linux `/proc/self`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Process {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
}

impl Process {
    fn read() -> Option<Process> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5): 12 and 13 here.
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        Some(Process {
            cpu_seconds: ticks as f64 / hz,
            resident_bytes: pages * page,
        })
    }
}

/// Take the snapshot (asks every media worker; at most [`WORKER_ANSWER`]).
pub async fn snapshot(state: &State) -> Snapshot {
    let media = match &state.media {
        Some(m) => Some({
            let (router, peers) = m.totals(WORKER_ANSWER).await;
            MediaSnapshot {
                workers: m.workers(),
                router,
                peers,
                egress: m.egress(),
                latency: m.latency(),
                ice_tcp_connections: m.ice_tcp_connections() as u64,
                loops: m.loops(),
            }
        }),
        None => None,
    };
    let mut limit_refusals: Vec<(u32, u64)> = room_signal::refusals::COUNTED
        .iter()
        .map(|c| (*c, 0))
        .collect();
    let mut requests: Vec<(&'static str, u32, u64)> = Vec::new();
    for app in state.hub.app_ids() {
        for (code, n) in state.hub.refusals(app) {
            if let Some(slot) = limit_refusals.iter_mut().find(|(c, _)| *c == code) {
                slot.1 += n;
            }
        }
        let Some(app) = state.hub.app(app) else {
            continue;
        };
        for (op, code, n) in app.requests.snapshot() {
            match requests.iter_mut().find(|(o, c, _)| *o == op && *c == code) {
                Some(slot) => slot.2 += n,
                None => requests.push((op, code, n)),
            }
        }
    }
    requests.sort();
    Snapshot {
        hub: state.hub.stats(),
        websockets: state.websockets.load(std::sync::atomic::Ordering::Relaxed) as u64,
        held_sessions: state
            .held_sessions
            .load(std::sync::atomic::Ordering::Relaxed) as u64,
        http_refusals: [
            ("http_connections", Refusal::HttpConnections),
            ("websockets", Refusal::WebSockets),
            ("app_sessions", Refusal::AppSessions),
            ("body_too_large", Refusal::BodyTooLarge),
            ("body_timeout", Refusal::BodyTimeout),
            ("resource_auth", Refusal::ResourceAuth),
        ]
        .into_iter()
        .map(|(name, kind)| (name, state.refusals.get(kind)))
        .collect(),
        limit_refusals,
        requests,
        media,
        process: Process::read(),
        webhooks: {
            use std::sync::atomic::Ordering::Relaxed;
            let w = state.webhooks.stats();
            WebhookCounts {
                delivered: w.delivered.load(Relaxed),
                failed: w.failed.load(Relaxed),
                retries: w.retries.load(Relaxed),
                dropped: w.dropped.load(Relaxed),
                pending: w.pending.load(Relaxed),
            }
        },
        cluster: state.cluster.as_ref().map(|c| {
            let h = c.health();
            ClusterCounts {
                nodes: c.nodes().len() as u64,
                redis_up: h.state == crate::cluster::RedisState::Up,
                registered: c.is_ready(),
                redis_latency_seconds: h.latency.map_or(0.0, |l| l.as_secs_f64()),
                redis_errors: h.errors,
                node_id_conflicts: h.conflicts,
            }
        }),
    }
}

/// One scrape's snapshot as a `prometheus-client` collector.
#[derive(Debug)]
struct Scrape(Snapshot);

fn cluster(e: &mut DescriptorEncoder, c: &ClusterCounts) -> std::fmt::Result {
    gauge(
        e,
        "sfu_cluster_nodes",
        "Live nodes of the cluster as this node's last good heartbeat read them (itself included)",
        c.nodes as i64,
    )?;
    gauge(
        e,
        "sfu_cluster_registered",
        "1 while this node's registry entry is fresh (a heartbeat within the node TTL)",
        i64::from(c.registered),
    )?;
    gauge(
        e,
        "sfu_redis_up",
        "1 when this node's last heartbeat reached Redis",
        i64::from(c.redis_up),
    )?;
    let g = ConstGauge::new(c.redis_latency_seconds);
    g.encode(e.encode_descriptor(
        "sfu_redis_latency_seconds",
        "Round trip of this node's last good heartbeat script",
        None,
        g.metric_type(),
    )?)?;
    counter(
        e,
        "sfu_redis_errors",
        "Heartbeats that failed (Redis down, unreachable or slower than the heartbeat)",
        c.redis_errors,
    )?;
    counter(
        e,
        "sfu_cluster_node_id_conflicts",
        "Times another live process wrote this node's ID between two of its heartbeats",
        c.node_id_conflicts,
    )
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A counter family: one row per `(labels, value)`.
fn counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, String)>, u64)],
) -> std::fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn label(k: &'static str, v: impl Into<String>) -> Vec<(&'static str, String)> {
    vec![(k, v.into())]
}

/// A histogram of a [`Latency`] (its µs buckets, in seconds).
fn latency(e: MetricEncoder, l: &Latency) -> std::fmt::Result {
    let mut e = e;
    let mut cumulative = 0;
    let mut buckets = Vec::new();
    for (i, n) in l.buckets.iter().enumerate() {
        cumulative += n;
        let le = match crate::media::latency::BOUNDS_US.get(i) {
            Some(us) => *us as f64 / 1e6,
            None => f64::INFINITY,
        };
        buckets.push((le, cumulative));
    }
    e.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        l.sum_us as f64 / 1e6,
        l.count,
        &buckets,
        None,
    )
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = &self.0;
        let h = &s.hub;
        gauge(
            &mut e,
            "sfu_sessions",
            "Signaling connections and WHIP/WHEP resources",
            h.sessions as i64,
        )?;
        gauge(
            &mut e,
            "sfu_rooms",
            "Rooms with at least one member",
            h.rooms as i64,
        )?;
        gauge(
            &mut e,
            "sfu_room_members",
            "Users in rooms (one per room a user is in)",
            h.room_members as i64,
        )?;
        gauge(&mut e, "sfu_streams", "Streams published", h.streams as i64)?;
        gauge(
            &mut e,
            "sfu_plays",
            "Plays, playing or waiting for their stream",
            h.plays as i64,
        )?;
        let mut family = e.encode_descriptor(
            "sfu_plays_by_state",
            "Plays by state: live (their stream is published) or waiting (for a publisher)",
            None,
            MetricType::Gauge,
        )?;
        for (state, n) in [
            ("live", h.plays.saturating_sub(h.plays_waiting)),
            ("waiting", h.plays_waiting),
        ] {
            ConstGauge::new(n as i64).encode(family.encode_family(&label("state", state))?)?;
        }
        gauge(
            &mut e,
            "sfu_websockets",
            "Signaling WebSockets open (held sessions keep their place)",
            s.websockets as i64,
        )?;
        gauge(
            &mut e,
            "sfu_sessions_held",
            "Signaling sessions whose WebSocket dropped, kept for a resume",
            s.held_sessions as i64,
        )?;
        let rows: Vec<_> = s
            .http_refusals
            .iter()
            .map(|(k, n)| (label("kind", *k), *n))
            .collect();
        counters(
            &mut e,
            "sfu_http_refusals",
            "HTTP connections and requests refused by a server limit or check",
            &rows,
        )?;
        let rows: Vec<_> = s
            .limit_refusals
            .iter()
            .map(|(c, n)| (label("code", c.to_string()), *n))
            .collect();
        counters(
            &mut e,
            "sfu_limit_refusals",
            "Requests refused by a resource limit, by error code",
            &rows,
        )?;
        let rows: Vec<_> = s
            .requests
            .iter()
            .map(|(op, code, n)| (vec![("op", op.to_string()), ("code", code.to_string())], *n))
            .collect();
        counters(&mut e, "sfu_signaling_requests", "Signaling requests answered, by op and result code (0: ok; op `unknown` for other names, `invalid` for frames that are not requests)", &rows)?;
        let w = &s.webhooks;
        counters(
            &mut e,
            "sfu_webhook_events",
            "Webhook events by outcome: delivered (2xx), failed (retries exhausted or a final 4xx), dropped (queue full)",
            &[
                (label("outcome", "delivered"), w.delivered),
                (label("outcome", "failed"), w.failed),
                (label("outcome", "dropped"), w.dropped),
            ],
        )?;
        counter(
            &mut e,
            "sfu_webhook_retries",
            "Webhook delivery attempts after an event's first",
            w.retries,
        )?;
        gauge(
            &mut e,
            "sfu_webhook_queue_depth",
            "Webhook events queued or being delivered",
            w.pending as i64,
        )?;
        if let Some(m) = &s.media {
            media(&mut e, m)?;
        }
        if let Some(c) = &s.cluster {
            cluster(&mut e, c)?;
        }
        if let Some(p) = s.process {
            let cpu = ConstCounter::new(p.cpu_seconds);
            cpu.encode(e.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time of the process",
                None,
                MetricType::Counter,
            )?)?;
            gauge(
                &mut e,
                "process_resident_memory_bytes",
                "Resident memory of the process",
                p.resident_bytes as i64,
            )?;
        }
        Ok(())
    }
}

fn media(e: &mut DescriptorEncoder, m: &MediaSnapshot) -> std::fmt::Result {
    gauge(
        e,
        "sfu_media_workers",
        "Media event-loop threads",
        m.workers as i64,
    )?;
    gauge(
        e,
        "sfu_ice_tcp_connections",
        "ICE-TCP connections open (waiting for their first binding request, or bound to a peer)",
        m.ice_tcp_connections as i64,
    )?;
    let mut family = e.encode_descriptor(
        "sfu_peer_connections",
        "WebRTC peer connections by role and by the state last reported for them (new: answered, no STUN check yet)",
        None,
        MetricType::Gauge,
    )?;
    for (role, row) in [("publish", &m.peers.publish), ("play", &m.peers.play)] {
        for (state, n) in STATES.iter().zip(row.iter()) {
            let labels = vec![("role", role.to_string()), ("state", state.to_string())];
            ConstGauge::new(*n as i64).encode(family.encode_family(&labels)?)?;
        }
    }
    let mut family = e.encode_descriptor(
        "sfu_simulcast_layers",
        "Live simulcast layers (or SVC levels) of streams with video players on a media worker, by whether one of those players takes them (counted per worker); paused: simulcast layers their publisher was asked to stop because no player takes them (counted once, by the publisher's worker)",
        None,
        MetricType::Gauge,
    )?;
    for (state, n) in [
        ("forwarded", m.router.layers_forwarded),
        ("unused", m.router.layers_unused),
        ("paused", m.router.layers_paused),
    ] {
        ConstGauge::new(n as i64).encode(family.encode_family(&label("state", state))?)?;
    }
    let i = &m.router.ingress;
    let o = &m.router.egress;
    counter(
        e,
        "sfu_rtp_received_packets",
        "RTP packets accepted into a router track (relayed copies count again on their worker)",
        i.packets_received,
    )?;
    counter(
        e,
        "sfu_rtp_received_bytes",
        "Payload bytes of those packets",
        i.bytes_received,
    )?;
    counters(
        e,
        "sfu_rtp_ingress_dropped_packets",
        "RTP packets from publishers not accepted, by reason",
        &[
            (label("reason", "foreign_ssrc_or_pt"), i.rejected),
            (label("reason", "duplicate"), i.duplicates),
        ],
    )?;
    counter(
        e,
        "sfu_rtp_keyframes",
        "Keyframes started by publishers' packets",
        i.keyframes,
    )?;
    counter(
        e,
        "sfu_rtp_forwarded_packets",
        "RTP packets forwarded to players (originals)",
        o.packets_sent,
    )?;
    counter(
        e,
        "sfu_rtp_forwarded_bytes",
        "Payload bytes of those packets",
        o.bytes_sent,
    )?;
    counter(
        e,
        "sfu_rtp_retransmitted_packets",
        "Retransmissions sent to players in answer to their NACKs",
        o.retransmitted,
    )?;
    counters(
        e,
        "sfu_rtp_dropped_packets",
        "RTP packets not forwarded to a player, by reason",
        &[
            (label("reason", "player_queue_full"), o.dropped_queue),
            (label("reason", "keyframe_gate"), o.dropped_keyframe_gate),
            (label("reason", "late"), o.dropped_late),
        ],
    )?;
    counter(
        e,
        "sfu_nack_sequence_numbers_received",
        "Sequence numbers players asked for in NACKs",
        o.nacked,
    )?;
    counters(
        e,
        "sfu_nack_sequence_numbers",
        "NACKed sequence numbers by outcome: answered (a retransmission queued), rate_limited (resent moments ago), unavailable (not cached, another source epoch, or the player's queue full)",
        &[
            (label("outcome", "answered"), o.nack_answered),
            (label("outcome", "rate_limited"), o.nack_rate_limited),
            (
                label("outcome", "unavailable"),
                o.nacked
                    .saturating_sub(o.nack_answered)
                    .saturating_sub(o.nack_rate_limited),
            ),
        ],
    )?;
    counter(
        e,
        "sfu_simulcast_layer_switches",
        "Layer switches of players: simulcast (made on a keyframe of the new layer) and SVC (each change of a player's level)",
        o.layer_switches,
    )?;
    counter(
        e,
        "sfu_svc_packets_dropped",
        "Packets of scalable (SVC) video not sent to a player: layers above what its bandwidth or its request allows",
        o.dropped_layer,
    )?;
    counter(
        e,
        "sfu_keyframe_requests_received",
        "PLI/FIR received from players",
        o.keyframe_requests,
    )?;
    counter(
        e,
        "sfu_keyframe_requests",
        "Keyframe requests registered (player PLI/FIR, new players, gate retries)",
        i.keyframe_requests,
    )?;
    counter(
        e,
        "sfu_plis_sent",
        "PLIs sent to publishers after coalescing",
        i.plis_sent,
    )?;
    counter(
        e,
        "sfu_padding_packets",
        "Padding packets sent to players (bandwidth probes)",
        o.padding_sent,
    )?;
    let x = &m.egress;
    counters(
        e,
        "sfu_bandwidth_probes",
        "Bandwidth probes of players' links before a layer switch up, by outcome",
        &[
            (label("outcome", "proven"), x.probes_proven),
            (label("outcome", "failed"), x.probes_failed),
        ],
    )?;
    counters(
        e,
        "sfu_egress_rtp_packets",
        "RTP packets sent to players, by the path that protected them",
        &[
            (label("path", "fast"), x.fast_packets),
            (label("path", "rtc"), x.rtc_packets),
            (label("path", "failed"), x.fast_failed),
        ],
    )?;
    let verified = |p: &str| {
        vec![
            ("outcome", "verified".to_string()),
            ("profile", p.to_string()),
        ]
    };
    counters(
        e,
        "sfu_egress_legs",
        "Player legs by the outcome of their fast-path verification",
        &[
            (verified("aead_aes_128_gcm"), x.legs_verified_gcm),
            (verified("aes_cm_128_hmac_sha1_80"), x.legs_verified_cm),
            (label("outcome", "mismatch"), x.legs_mismatch),
            (label("outcome", "unknown_profile"), x.legs_unknown_profile),
            (label("outcome", "no_keys"), x.legs_no_keys),
            (label("outcome", "undecided"), x.legs_undecided),
        ],
    )?;
    counter(
        e,
        "sfu_egress_sender_reports",
        "RTCP sender reports sent for player legs",
        x.sender_reports,
    )?;
    let mut family = e.encode_descriptor(
        "sfu_media_worker_busy_seconds",
        "Time each media worker spent working (wake-up to end of turn); busy ratio = rate()",
        None,
        MetricType::Counter,
    )?;
    for (i, l) in m.loops.iter().enumerate() {
        ConstCounter::new(l.busy.as_secs_f64())
            .encode(family.encode_family(&label("worker", i.to_string()))?)?;
    }
    let mut family = e.encode_descriptor(
        "sfu_media_worker_loop_lag_seconds",
        "How late each media worker's timer wake-ups ran after their deadline",
        None,
        MetricType::Histogram,
    )?;
    for (i, l) in m.loops.iter().enumerate() {
        latency(
            family.encode_family(&label("worker", i.to_string()))?,
            &l.lag,
        )?;
    }
    latency(
        e.encode_descriptor(
            "sfu_egress_added_latency_seconds",
            "Time from the worker's wake-up with the input (or the publisher worker's receive, for relayed packets) to the sendmmsg that sent each datagram",
            None,
            MetricType::Histogram,
        )?,
        &m.latency,
    )
}

/// The text exposition of a snapshot.
pub fn render(snapshot: Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(snapshot)));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}

pub async fn serve(AxumState(state): AxumState<Arc<State>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(snapshot(&state).await),
    )
        .into_response()
}
