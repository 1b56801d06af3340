//! `sfu-load`: a load generator for the SFU.
//!
//! N publishers (synthetic VP8 + Opus at a chosen bitrate) and M players per
//! stream, spread round-robin over R rooms (players play streams by ID, so
//! plays cross rooms). Signaling runs on tokio, one WebSocket per user;
//! media runs on a few `mio` threads driving sans-IO `rtc` connections (see
//! [`worker`]), so the tool costs little CPU per received packet.
//!
//! Measurements (see [`stats`]): packet and bit rates in both directions,
//! loss from sequence gaps per player stream, RFC 3550 jitter, one-way
//! latency from the send timestamp embedded in each payload, and — given
//! the server's PID — server CPU per forwarded packet and RSS per player.

pub mod cli;
pub mod peer;
pub mod report;
pub mod rtp_header;
pub mod signal;
pub mod stats;
pub mod worker;

use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use mio::Waker;
use serde_json::json;

pub use report::Report;
use signal::Signal;
use worker::{MediaPlan, NewPeer, NewRole, Shared};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    /// Signaling address, `host:port`.
    pub server: String,
    pub app: u32,
    pub secret: String,
    pub publishers: usize,
    /// Players per published stream.
    pub players: usize,
    pub rooms: usize,
    /// The top video layer's bitrate (the only one without `simulcast`).
    pub video_kbps: u32,
    pub audio_kbps: u32,
    /// Publish video as three simulcast layers (`peer::SIMULCAST`: 20 %,
    /// 45 % and 100 % of `video_kbps`); players take the top one.
    pub simulcast: bool,
    /// Length of the measurement window (after every peer connected).
    pub duration: Duration,
    /// The server's PID, for CPU and memory figures.
    pub server_pid: Option<u32>,
    pub threads: usize,
    /// Print a progress line every second.
    pub progress: bool,
    /// How long to wait for every connection to come up.
    pub connect_timeout: Duration,
    /// Signaling setups in flight at once.
    pub parallel_setup: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: "127.0.0.1:7880".into(),
            app: 1,
            secret: "devsecret".into(),
            publishers: 1,
            players: 10,
            rooms: 1,
            video_kbps: 1500,
            audio_kbps: 48,
            simulcast: false,
            duration: Duration::from_secs(10),
            server_pid: None,
            threads: 2,
            progress: true,
            connect_timeout: Duration::from_secs(20),
            parallel_setup: 16,
        }
    }
}

/// Where new connections go: a worker's queue and its waker.
struct Lane {
    tx: mpsc::Sender<NewPeer>,
    waker: Arc<Waker>,
}

impl Lane {
    fn hand(&self, peer: NewPeer) -> Result<()> {
        self.tx
            .send(peer)
            .map_err(|_| anyhow::anyhow!("worker gone"))?;
        self.waker.wake()?;
        Ok(())
    }
}

fn socket() -> Result<UdpSocket> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_nonblocking(true)?;
    Ok(s)
}

fn room_name(i: usize) -> String {
    format!("load-room-{i}")
}

/// The stream ID of publisher `i` (unique per run).
fn stream_name(run: u32, i: usize) -> String {
    format!("load-{run:08x}-{i}")
}

async fn start_publisher(cfg: &Config, run: u32, i: usize, lane: &Lane) -> Result<Signal> {
    let sig = Signal::connect(&cfg.server, cfg.app).await?;
    let user = format!("pub-{run:08x}-{i}");
    let room = room_name(i % cfg.rooms);
    sig.login(cfg.app, &cfg.secret, &room, &user).await?;
    let sock = socket()?;
    let stream = stream_name(run, i);
    let (mut pc, offer, tracks) =
        peer::publisher_with(&stream, sock.local_addr()?, Instant::now(), cfg.simulcast)?;
    let answer = sig
        .negotiate(
            "startPublishingStream",
            json!({"streamID": stream, "roomID": room, "sdp": offer}),
        )
        .await?;
    peer::apply_answer(&mut pc, answer, Instant::now())?;
    lane.hand(NewPeer {
        name: user,
        pc,
        socket: sock,
        role: NewRole::Publisher(tracks),
    })?;
    Ok(sig)
}

async fn start_player(cfg: &Config, run: u32, k: usize, lane: &Lane) -> Result<Signal> {
    let sig = Signal::connect(&cfg.server, cfg.app).await?;
    let user = format!("play-{run:08x}-{k}");
    sig.login(cfg.app, &cfg.secret, &room_name(k % cfg.rooms), &user)
        .await?;
    let sock = socket()?;
    let stream = stream_name(run, k / cfg.players.max(1));
    let (mut pc, offer) = peer::player(sock.local_addr()?, Instant::now())?;
    let answer = sig
        .negotiate(
            "startPlayingStream",
            json!({"streamID": stream, "sdp": offer}),
        )
        .await?;
    peer::apply_answer(&mut pc, answer, Instant::now())?;
    lane.hand(NewPeer {
        name: user,
        pc,
        socket: sock,
        role: NewRole::Player,
    })?;
    Ok(sig)
}

fn progress_line(shared: &Shared, cfg: &Config, t: u64, last: &mut (u64, u64, u64, u64)) {
    let now = (
        shared.pkts_in.load(Ordering::Relaxed),
        shared.bytes_in.load(Ordering::Relaxed),
        shared.pkts_out.load(Ordering::Relaxed),
        shared.bytes_out.load(Ordering::Relaxed),
    );
    let d = (
        now.0 - last.0,
        (now.1 - last.1) as f64 * 8.0 / 1e6,
        now.2 - last.2,
        (now.3 - last.3) as f64 * 8.0 / 1e6,
    );
    *last = now;
    eprintln!(
        "[{t:>3}s] pubs {}/{} players {}/{} failed {} | out {:>6} pkt/s {:>7.2} Mbps | in {:>7} pkt/s {:>8.2} Mbps",
        shared.pubs_connected.load(Ordering::Relaxed),
        cfg.publishers,
        shared.players_connected.load(Ordering::Relaxed),
        cfg.publishers * cfg.players,
        shared.failed.load(Ordering::Relaxed),
        d.2,
        d.3,
        d.0,
        d.1,
    );
}

/// Run one load test and measure it.
pub async fn run(cfg: Config) -> Result<Report> {
    if cfg.publishers == 0 || cfg.rooms == 0 || cfg.threads == 0 {
        bail!("publishers, rooms and threads must be at least 1");
    }
    let run_id: u32 = rand::random();
    let shared = Arc::new(Shared::default());
    let plan = MediaPlan {
        video_kbps: cfg.video_kbps,
        audio_kbps: cfg.audio_kbps,
    };
    let server_before_setup = cfg.server_pid.and_then(|p| stats::sample(Some(p)));
    let mut lanes = Vec::new();
    let mut handles = Vec::new();
    for t in 0..cfg.threads {
        let (poll, waker) = worker::poll_and_waker()?;
        let (tx, rx) = mpsc::channel();
        let shared = shared.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("load-worker-{t}"))
                .spawn(move || worker::run(poll, rx, shared, plan))?,
        );
        lanes.push(Lane { tx, waker });
    }
    let result = drive(&cfg, run_id, &lanes, &shared, server_before_setup).await;
    shared.stop.store(true, Ordering::Relaxed);
    for lane in &lanes {
        let _ = lane.waker.wake();
    }
    let mut results = Vec::new();
    for h in handles {
        results.push(h.join().map_err(|_| anyhow::anyhow!("worker panicked"))?);
    }
    let (window, signals) = result?;
    drop(signals);
    Ok(report::build(&cfg, window, results))
}

type Signals = Vec<Signal>;

/// Setup, connect wait and measurement window; returns the window's figures
/// and the signaling connections (kept open until the workers stopped).
async fn drive(
    cfg: &Config,
    run_id: u32,
    lanes: &[Lane],
    shared: &Arc<Shared>,
    server_before_setup: Option<stats::ProcSample>,
) -> Result<(report::Window, Signals)> {
    let setup_started = Instant::now();
    let mut signals = Vec::new();
    for i in 0..cfg.publishers {
        let lane = &lanes[i % lanes.len()];
        signals.push(
            start_publisher(cfg, run_id, i, lane)
                .await
                .with_context(|| format!("publisher {i}"))?,
        );
    }
    let total_players = cfg.publishers * cfg.players;
    let results: Vec<Result<Signal>> = futures_util::stream::iter(0..total_players)
        .map(|k| async move {
            let lane = &lanes[(cfg.publishers + k) % lanes.len()];
            start_player(cfg, run_id, k, lane)
                .await
                .with_context(|| format!("player {k}"))
        })
        .buffer_unordered(cfg.parallel_setup.max(1))
        .collect()
        .await;
    let mut setup_errors = 0;
    for r in results {
        match r {
            Ok(s) => signals.push(s),
            Err(e) => {
                setup_errors += 1;
                eprintln!("setup failed: {e:#}");
            }
        }
    }
    let wanted_players = total_players - setup_errors;
    let deadline = Instant::now() + cfg.connect_timeout;
    while (shared.players_connected.load(Ordering::Relaxed) < wanted_players
        || shared.pubs_connected.load(Ordering::Relaxed) < cfg.publishers)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_time = setup_started.elapsed();
    if cfg.progress {
        eprintln!(
            "setup: {} publishers, {}/{} players connected in {:.2}s",
            shared.pubs_connected.load(Ordering::Relaxed),
            shared.players_connected.load(Ordering::Relaxed),
            total_players,
            connect_time.as_secs_f64()
        );
    }
    // Let late joiners pass the keyframe gate (one keyframe per second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let server0 = cfg.server_pid.and_then(|p| stats::sample(Some(p)));
    let self0 = stats::sample(None);
    let counters0 = counters(shared);
    shared.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut t = 0;
    let mut last = counters0;
    while started.elapsed() < cfg.duration {
        let left = cfg.duration.saturating_sub(started.elapsed());
        tokio::select! {
            _ = tick.tick() => {
                t += 1;
                if cfg.progress {
                    progress_line(shared, cfg, t, &mut last);
                }
            }
            _ = tokio::time::sleep(left) => {}
        }
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let counters1 = counters(shared);
    let server1 = cfg.server_pid.and_then(|p| stats::sample(Some(p)));
    let self1 = stats::sample(None);
    Ok((
        report::Window {
            elapsed,
            connect_time,
            setup_errors,
            pkts_in: counters1.0 - counters0.0,
            bytes_in: counters1.1 - counters0.1,
            pkts_out: counters1.2 - counters0.2,
            bytes_out: counters1.3 - counters0.3,
            server_baseline: server_before_setup,
            server_before: server0,
            server_after: server1,
            self_before: self0,
            self_after: self1,
        },
        signals,
    ))
}

fn counters(s: &Shared) -> (u64, u64, u64, u64) {
    (
        s.pkts_in.load(Ordering::Relaxed),
        s.bytes_in.load(Ordering::Relaxed),
        s.pkts_out.load(Ordering::Relaxed),
        s.bytes_out.load(Ordering::Relaxed),
    )
}
