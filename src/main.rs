//! The `sfu` binary: parses the command line and configuration, then starts
//! the server (`sfu --dev`, `sfu --config sfu.toml`) or runs a tool
//! (`sfu token ...`, `sfu load-test ...`). It only assembles; the work lives
//! in the crates.

mod config;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use room_signal::token::{self, Claims, Privilege};
use sfu_core::{Server, ServerConfig};

use crate::config::{FileConfig, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "sfu",
    version,
    about = "WebRTC SFU with multi-room login, cross-room co-hosting and real-time messages"
)]
struct Cli {
    /// Development mode: app 1 / secret `devsecret` / multi-room, listening on 127.0.0.1:7880.
    #[arg(long, global = true)]
    dev: bool,
    /// Configuration file (TOML); see sfu.sample.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Signaling/HTTP listen address (overrides the config file).
    #[arg(long, value_name = "ADDR")]
    bind: Option<SocketAddr>,
    /// The UDP port of all media (overrides the config file; 0: any free port).
    #[arg(long, value_name = "PORT")]
    udp_port: Option<u16>,
    /// The ICE-TCP port (overrides the config file; 0: any free port).
    #[arg(long, value_name = "PORT")]
    tcp_port: Option<u16>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a room token (JWT) for a user.
    Token(TokenArgs),
    /// Load-test a running server: N publishers x M players, synthetic VP8/Opus.
    LoadTest(sfu_load::cli::LoadArgs),
    /// Work with the configuration without starting the server.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate `--config FILE` (with the `SFU_*` environment applied):
    /// prints what it would serve and exits 0, or the first error (its key
    /// and line) and exits 1. Binds nothing.
    Check,
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// App ID the token is for.
    #[arg(long)]
    app: u32,
    /// User ID the token is for.
    #[arg(long)]
    user: String,
    /// Restrict the token to one room.
    #[arg(long)]
    room: Option<String>,
    /// Lifetime, e.g. 30s, 10m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Deny the publish privilege.
    #[arg(long)]
    no_publish: bool,
    /// Comma-separated stream IDs the user may publish (default: any).
    #[arg(long, value_delimiter = ',')]
    streams: Option<Vec<String>>,
    /// Signing secret (default: the app's secret from --config, else the --dev secret).
    #[arg(long)]
    secret: Option<String>,
}

/// Default log filter: our info lines (one per login, logout, publish, play),
/// the WebRTC stack's warnings only.
const DEFAULT_LOG: &str = "info,rtc=warn,rtc_ice=warn,rtc_dtls=error,rtc_srtp=warn,rtc_sctp=warn,\
rtc_interceptor=warn,rtc_rtp=warn,rtc_rtcp=warn,rtc_sdp=warn,rtc_stun=warn,rtc_media=warn";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(ref args)) => print_token(&cli, args),
        Some(Command::LoadTest(args)) => {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_writer(std::io::stderr)
                .init();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(sfu_load::cli::run(args))
        }
        Some(Command::Config(ConfigCommand::Check)) => check_config(&cli),
        None => serve(cli),
    }
}

fn check_config(cli: &Cli) -> anyhow::Result<()> {
    let cfg = load_config(cli)?;
    // What `serve` would build from it, so a bad address or profile fails here too.
    cfg.server.media()?;
    sfu_core::webhooks::check(&cfg.apps)?;
    cfg.cluster.config()?;
    println!(
        "{}: ok (http {}, udp port {}, tcp port {}, {} app(s), log format {:?})",
        cli.config
            .as_deref()
            .map_or("--dev defaults".into(), |p| p.display().to_string()),
        cfg.server.bind,
        cfg.server.udp_port,
        cfg.server.tcp_port,
        cfg.apps.len(),
        cfg.log.format,
    );
    Ok(())
}

fn load_config(cli: &Cli) -> anyhow::Result<FileConfig> {
    if !cli.dev && cli.config.is_none() {
        bail!("no configuration: start with --dev, or --config sfu.toml (see sfu.sample.toml)");
    }
    let mut cfg = FileConfig::load(cli.config.as_deref(), std::env::vars())?;
    if cli.dev {
        if cfg.apps.is_empty() {
            cfg.apps = room_signal::SignalConfig::dev().apps;
        }
        if cli.config.is_none() {
            cfg.server.bind = SocketAddr::from(([127, 0, 0, 1], 7880));
            cfg.server.udp_bind_ip = std::net::IpAddr::from([127, 0, 0, 1]);
        }
    }
    if let Some(bind) = cli.bind {
        cfg.server.bind = bind;
        // A loopback signaling address keeps media on loopback too.
        if bind.ip().is_loopback() {
            cfg.server.udp_bind_ip = bind.ip();
        }
    }
    if let Some(port) = cli.udp_port {
        cfg.server.udp_port = port;
    }
    if let Some(port) = cli.tcp_port {
        cfg.server.tcp_port = port;
    }
    Ok(cfg)
}

fn print_token(cli: &Cli, args: &TokenArgs) -> anyhow::Result<()> {
    let secret = match &args.secret {
        Some(s) => s.clone(),
        None if cli.config.is_some() => {
            let cfg = FileConfig::load(cli.config.as_deref(), std::env::vars())?;
            cfg.apps
                .iter()
                .find(|a| a.app_id == args.app)
                .map(|a| a.secret.clone())
                .with_context(|| format!("app {} is not in the configuration", args.app))?
        }
        None => room_signal::SignalConfig::dev().apps[0].secret.clone(),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = Claims {
        app_id: args.app,
        user_id: args.user.clone(),
        iat: now,
        exp: now + args.ttl.as_secs(),
        room_id: args.room.clone(),
        privilege: args.no_publish.then_some(Privilege {
            login: true,
            publish: false,
        }),
        stream_id_list: args.streams.clone(),
    };
    println!("{}", token::mint(&secret, &claims));
    Ok(())
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let cfg = load_config(&cli)?;
    // The WebRTC stack's and our client-triggered lines are rate-limited
    // per target (`sfu_core::ratelog`), whatever RUST_LOG enables.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let lines = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log.format {
        LogFormat::Text => lines
            .finish()
            .with(sfu_core::ratelog::RateLimit::default())
            .init(),
        LogFormat::Json => lines
            .json()
            .finish()
            .with(sfu_core::ratelog::RateLimit::default())
            .init(),
    }
    match sfu_core::listener::raise_fd_limit() {
        Ok(n) => tracing::debug!(open_files = n, "RLIMIT_NOFILE raised to the hard limit"),
        Err(e) => tracing::warn!("could not raise RLIMIT_NOFILE: {e}"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async move {
        let server = Server::bind(ServerConfig {
            bind: cfg.server.bind,
            signal: cfg.signal(),
            media: Some(cfg.server.media()?),
            http: cfg.server.http(),
            dev: cli.dev,
            admin_token: Some(cfg.server.admin_token.clone()),
            webhooks: cfg.webhooks.config(),
            cluster: cfg.cluster.config()?,
        })
        .await?;
        let addr = server.local_addr()?;
        tracing::info!(%addr, apps = cfg.apps.len(), dev = cli.dev, "sfu listening");
        // A machine-readable line for scripts and tests that bind port 0.
        match (server.media_addr(), server.media_tcp_addr()) {
            (Some(media), Some(tcp)) => {
                println!("sfu listening on http://{addr} media udp://{media} tcp://{tcp}")
            }
            (Some(media), None) => println!("sfu listening on http://{addr} media udp://{media}"),
            (None, _) => println!("sfu listening on http://{addr}"),
        }
        server.run(shutdown_signal()).await
    });
    // Whatever is still running after the drain (a blocked task) must not
    // hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(250));
    served
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
