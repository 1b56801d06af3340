//! `sfu-load` command line: parse options, run the load test, print the
//! report table (the same as `sfu load-test`).

use clap::Parser;
use sfu_load::cli::LoadArgs;

/// Load generator for the SFU: N publishers × M players per stream.
#[derive(Debug, Parser)]
#[command(name = "sfu-load", version)]
struct Cli {
    #[command(flatten)]
    args: LoadArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    sfu_load::cli::run(Cli::parse().args).await
}
