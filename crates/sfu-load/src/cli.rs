//! The load test's command-line options, shared by the `sfu-load` binary
//! and `sfu load-test`.

use std::time::Duration;

use crate::Config;

/// Load generator for the SFU: N publishers × M players per stream.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Signaling address of the server.
    #[arg(long, default_value = "127.0.0.1:7880")]
    pub server: String,
    #[arg(long, default_value_t = 1)]
    pub app: u32,
    /// The app's secret, used to mint tokens.
    #[arg(long, default_value = "devsecret")]
    pub secret: String,
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Players per published stream.
    #[arg(long, default_value_t = 10)]
    pub players: usize,
    /// Rooms to spread publishers and players over (round-robin).
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    #[arg(long, default_value_t = 1500)]
    pub video_kbps: u32,
    #[arg(long, default_value_t = 48)]
    pub audio_kbps: u32,
    /// Publish video as three simulcast layers (RIDs q/h/f at 20 %, 45 %
    /// and 100 % of --video-kbps); players get the top layer.
    #[arg(long)]
    pub simulcast: bool,
    /// Measurement window, e.g. `10s`.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// PID of the server, for CPU and memory figures.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Media threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Time allowed for every connection to come up, e.g. `20s`.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Print every player's line after the table.
    #[arg(long)]
    pub per_player: bool,
}

/// Run the load test these options describe and print its report.
pub async fn run(cli: LoadArgs) -> anyhow::Result<()> {
    let cfg = Config {
        server: cli.server,
        app: cli.app,
        secret: cli.secret,
        publishers: cli.publishers,
        players: cli.players,
        rooms: cli.rooms,
        video_kbps: cli.video_kbps,
        audio_kbps: cli.audio_kbps,
        simulcast: cli.simulcast,
        duration: cli.duration,
        server_pid: cli.server_pid,
        threads: cli.threads,
        progress: true,
        connect_timeout: cli.connect_timeout,
        ..Config::default()
    };
    let report = crate::run(cfg).await?;
    print!("{report}");
    if cli.per_player {
        for p in &report.per_player {
            println!(
                "  {:<28} connected {:<5} video {:>6} audio {:>6} loss {:.3} %",
                p.name, p.connected, p.video_packets, p.audio_packets, p.loss_pct
            );
        }
    }
    Ok(())
}
