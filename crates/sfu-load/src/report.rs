//! The final report: rates over the measurement window, loss, jitter,
//! latency percentiles, the server's CPU per forwarded packet and RSS per
//! player, the tool's own CPU per received packet, and its table rendering.

use std::fmt;
use std::time::Duration;

use crate::stats::{Latency, PlayerStats, ProcSample, TICKS_PER_SEC};
use crate::Config;

/// Raw figures of the measurement window, gathered by the control task.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub elapsed: Duration,
    pub connect_time: Duration,
    pub setup_errors: usize,
    pub pkts_in: u64,
    pub bytes_in: u64,
    pub pkts_out: u64,
    pub bytes_out: u64,
    /// Server sample before any connection of this run was made.
    pub server_baseline: Option<ProcSample>,
    pub server_before: Option<ProcSample>,
    pub server_after: Option<ProcSample>,
    pub self_before: Option<ProcSample>,
    pub self_after: Option<ProcSample>,
}

/// One player's line of the report.
#[derive(Debug, Clone)]
pub struct PlayerLine {
    pub name: String,
    pub connected: bool,
    pub video_packets: u64,
    pub audio_packets: u64,
    pub loss_pct: f64,
}

impl PlayerLine {
    pub fn packets(&self) -> u64 {
        self.video_packets + self.audio_packets
    }
}

/// Results of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub publishers: usize,
    pub players: usize,
    pub players_connected: usize,
    pub setup_errors: usize,
    pub connect_time: Duration,
    pub elapsed: Duration,
    pub out_pps: f64,
    pub out_mbps: f64,
    pub in_pps: f64,
    pub in_mbps: f64,
    /// Lost / expected over every player stream, percent.
    pub loss_pct: f64,
    /// Mean RFC 3550 jitter over player streams, ms.
    pub jitter_video_ms: f64,
    pub jitter_audio_ms: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Server CPU (user + sys) per packet received by players, µs.
    pub server_cpu_us_per_pkt: Option<f64>,
    /// Server CPU share over the window, percent of one core.
    pub server_cpu_pct: Option<f64>,
    /// Server RSS growth since before setup, per player, KiB.
    pub server_rss_kb_per_player: Option<f64>,
    /// This process's CPU per packet received by its players, µs.
    pub tool_cpu_us_per_pkt: Option<f64>,
    pub tool_cpu_pct: Option<f64>,
    pub per_player: Vec<PlayerLine>,
}

fn cpu_us(before: Option<ProcSample>, after: Option<ProcSample>) -> Option<f64> {
    let (b, a) = (before?, after?);
    Some(a.ticks.saturating_sub(b.ticks) as f64 * 1e6 / TICKS_PER_SEC)
}

fn per(total: Option<f64>, n: u64) -> Option<f64> {
    (n > 0).then_some(total? / n as f64)
}

/// Combine the window and the workers' results.
pub fn build(cfg: &Config, w: Window, results: Vec<crate::worker::WorkerResult>) -> Report {
    let secs = w.elapsed.as_secs_f64().max(1e-9);
    let mut players: Vec<PlayerStats> = Vec::new();
    let mut lat = Latency::default();
    for r in results {
        players.extend(r.players);
        lat.merge(&r.latency);
    }
    players.sort_by(|a, b| a.name.cmp(&b.name));
    let (mut lost, mut expected) = (0u64, 0u64);
    let (mut jv, mut ja, mut nv, mut na) = (0.0, 0.0, 0usize, 0usize);
    let mut per_player = Vec::new();
    for p in &players {
        let (l, e) = (
            p.video.lost() + p.audio.lost(),
            p.video.expected() + p.audio.expected(),
        );
        lost += l;
        expected += e;
        if p.video.received > 1 {
            jv += p.video.jitter_ms(crate::peer::VIDEO_CLOCK);
            nv += 1;
        }
        if p.audio.received > 1 {
            ja += p.audio.jitter_ms(crate::peer::AUDIO_CLOCK);
            na += 1;
        }
        per_player.push(PlayerLine {
            name: p.name.clone(),
            connected: p.connected,
            video_packets: p.video.received,
            audio_packets: p.audio.received,
            loss_pct: if e > 0 {
                l as f64 * 100.0 / e as f64
            } else {
                100.0
            },
        });
    }
    let received: u64 = players
        .iter()
        .map(|p| p.video.received + p.audio.received)
        .sum();
    let server_cpu = cpu_us(w.server_before, w.server_after);
    let tool_cpu = cpu_us(w.self_before, w.self_after);
    let n_players = cfg.publishers * cfg.players;
    let rss = match (w.server_baseline, w.server_after) {
        (Some(b), Some(a)) if n_players > 0 => {
            Some((a.rss_kb as f64 - b.rss_kb as f64) / n_players as f64)
        }
        _ => None,
    };
    Report {
        publishers: cfg.publishers,
        players: n_players,
        players_connected: players.iter().filter(|p| p.connected).count(),
        setup_errors: w.setup_errors,
        connect_time: w.connect_time,
        elapsed: w.elapsed,
        out_pps: w.pkts_out as f64 / secs,
        out_mbps: w.bytes_out as f64 * 8.0 / 1e6 / secs,
        in_pps: w.pkts_in as f64 / secs,
        in_mbps: w.bytes_in as f64 * 8.0 / 1e6 / secs,
        loss_pct: if expected > 0 {
            lost as f64 * 100.0 / expected as f64
        } else {
            100.0
        },
        jitter_video_ms: if nv > 0 { jv / nv as f64 } else { 0.0 },
        jitter_audio_ms: if na > 0 { ja / na as f64 } else { 0.0 },
        latency_p50_ms: lat.quantile_us(0.50).map(|v| v as f64 / 1000.0),
        latency_p99_ms: lat.quantile_us(0.99).map(|v| v as f64 / 1000.0),
        server_cpu_us_per_pkt: per(server_cpu, received),
        server_cpu_pct: server_cpu.map(|us| us / 1e6 / secs * 100.0),
        server_rss_kb_per_player: rss,
        tool_cpu_us_per_pkt: per(tool_cpu, received),
        tool_cpu_pct: tool_cpu.map(|us| us / 1e6 / secs * 100.0),
        per_player,
    }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2} {unit}"))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "  {k:<34} {v}");
        writeln!(f, "=== sfu-load report ===")?;
        row(
            f,
            "publishers / players (connected)",
            format!(
                "{} / {} ({}), setup errors {}",
                self.publishers, self.players, self.players_connected, self.setup_errors
            ),
        )?;
        row(
            f,
            "setup+connect / window",
            format!(
                "{:.2} s / {:.2} s",
                self.connect_time.as_secs_f64(),
                self.elapsed.as_secs_f64()
            ),
        )?;
        row(
            f,
            "out (publishers -> server)",
            format!("{:.0} pkt/s  {:.2} Mbps", self.out_pps, self.out_mbps),
        )?;
        row(
            f,
            "in (server -> players)",
            format!("{:.0} pkt/s  {:.2} Mbps", self.in_pps, self.in_mbps),
        )?;
        row(f, "loss", format!("{:.3} %", self.loss_pct))?;
        row(
            f,
            "jitter video / audio (RFC 3550)",
            format!(
                "{:.2} ms / {:.2} ms",
                self.jitter_video_ms, self.jitter_audio_ms
            ),
        )?;
        row(
            f,
            "latency p50 / p99",
            format!(
                "{} / {}",
                opt(self.latency_p50_ms, "ms"),
                opt(self.latency_p99_ms, "ms")
            ),
        )?;
        row(
            f,
            "server CPU per forwarded packet",
            format!(
                "{} ({} of a core)",
                opt(self.server_cpu_us_per_pkt, "us"),
                opt(self.server_cpu_pct, "%")
            ),
        )?;
        row(
            f,
            "server RSS delta per player",
            opt(self.server_rss_kb_per_player, "KiB"),
        )?;
        row(
            f,
            "tool CPU per received packet",
            format!(
                "{} ({} of a core)",
                opt(self.tool_cpu_us_per_pkt, "us"),
                opt(self.tool_cpu_pct, "%")
            ),
        )?;
        let worst = self
            .per_player
            .iter()
            .max_by(|a, b| a.loss_pct.total_cmp(&b.loss_pct));
        if let Some(w) = worst {
            row(
                f,
                "worst player",
                format!("{}: {} pkts, {:.3} % loss", w.name, w.packets(), w.loss_pct),
            )?;
        }
        Ok(())
    }
}
