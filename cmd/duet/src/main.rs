//! The `duet` binary: `duet serve` runs a node; `duet bench ch` runs
//! CH-benCHmark against an embedded node or any MySQL-protocol server.

use clap::{Parser, Subcommand};
use duet_server::cli::ServeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "duet",
    version,
    about = "Duet: a distributed HTAP database speaking MySQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a Duet node (default: one embedded node, ./duet-data, MySQL on 127.0.0.1:4000).
    Serve(ServeArgs),
    /// Run a benchmark.
    Bench {
        #[command(subcommand)]
        benchmark: Benchmark,
    },
}

#[derive(Debug, Subcommand)]
enum Benchmark {
    /// CH-benCHmark: TPC-C transactions and the 22 analytical queries at once.
    Ch(duet_bench::ch::ChArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            init_logging(&config.log);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let served = runtime.block_on(duet_server::cli::serve(config));
            // The node synced and stopped its store; a background task
            // still blocked on it (a GC round waiting for a quorum that
            // left) must not hold the exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            served?;
        }
        Command::Bench {
            benchmark: Benchmark::Ch(args),
        } => {
            init_logging("warn");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(duet_bench::ch::main(args))?;
        }
    }
    Ok(())
}

fn init_logging(filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}
