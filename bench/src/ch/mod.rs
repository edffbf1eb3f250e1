//! `duet bench ch`: CH-benCHmark, TPC-C's transactions and TPC-H-style
//! analytical queries on one database at the same time. This module owns
//! the command line, the target (an embedded Duet or any MySQL-protocol
//! server) and the order of the steps: load, run the phases, check
//! consistency, report.

pub mod check;
pub mod driver;
pub mod load;
pub mod queries;
pub mod random;
pub mod report;
pub mod schema;
pub mod tpcc;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use serde_json::json;

use crate::error::{Context, Error, Result};
use driver::PhasePlan;
use random::{NuRandC, TpccRng};
use report::Report;

/// `duet bench ch [load|run] …`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = false)]
pub struct ChArgs {
    #[command(subcommand)]
    pub step: Option<ChStep>,
    #[command(flatten)]
    pub options: ChOptions,
}

/// Steps that may run alone; without one, `ch` loads and then runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum ChStep {
    /// Create the schema and load the data only.
    Load,
    /// Run the workload on data loaded before (by `load`), then check it.
    Run,
}

#[derive(Debug, Clone, Args)]
pub struct ChOptions {
    /// Warehouses (W): the scale of the database.
    #[arg(long, global = true, default_value_t = 1, value_name = "W")]
    pub warehouses: u32,
    /// Seconds each phase runs.
    #[arg(long, global = true, default_value_t = 60, value_name = "SECS")]
    pub duration: u64,
    /// TPC-C terminals, each on its own connection.
    #[arg(long, global = true, default_value_t = 4, value_name = "N")]
    pub oltp_workers: usize,
    /// Analytical query streams, each on its own connection.
    #[arg(long, global = true, default_value_t = 1, value_name = "M")]
    pub olap_workers: usize,
    /// Run an in-process Duet on a fresh data directory (`DIR/duet-data`).
    /// This is the default when no --target is given.
    #[arg(long, global = true, conflicts_with = "target")]
    pub embedded: bool,
    /// Run against this MySQL-protocol server; its database is dropped and
    /// recreated by the load.
    #[arg(long, global = true, value_name = "mysql://USER:PASS@HOST:PORT/DB")]
    pub target: Option<String>,
    /// Where result.json and the plots go.
    #[arg(long, global = true, value_name = "DIR", default_value = "bench-out")]
    pub out: PathBuf,
    /// Run three phases: OLTP alone, OLAP alone, then both together.
    #[arg(long, global = true)]
    pub interference: bool,
    /// Connections the loader uses at once.
    #[arg(long, global = true, default_value_t = 4, value_name = "K")]
    pub load_workers: usize,
    /// Seed of every random choice (data, inputs, NURand constants).
    #[arg(long, global = true, default_value_t = 2011)]
    pub seed: u64,
    /// No progress bars.
    #[arg(long, global = true)]
    pub quiet: bool,
}

/// The database under test.
#[derive(Debug, Clone)]
pub struct Target {
    opts: Opts,
    db: String,
    /// The NURand constants shared by the loader and the terminals.
    pub constants: NuRandC,
}

impl Target {
    /// A target from `mysql://USER:PASS@HOST:PORT/DB` (DB defaults to `ch`).
    pub fn from_url(url: &str, seed: u64) -> Result<Target> {
        let opts =
            Opts::from_url(url).map_err(|e| Error::Config(format!("--target {url}: {e}")))?;
        let db = opts.db_name().unwrap_or("ch").to_string();
        if db.is_empty() || !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::Config(format!(
                "--target {url}: the database name must be letters, digits and _"
            )));
        }
        let opts = OptsBuilder::from_opts(opts)
            .db_name(Some(db.clone()))
            .into();
        Ok(Target {
            opts,
            db,
            constants: TpccRng::constants(seed),
        })
    }

    /// The URL without the password, for reports.
    pub fn describe(&self) -> String {
        format!(
            "mysql://{}@{}:{}/{}",
            self.opts.user().unwrap_or(""),
            self.opts.ip_or_hostname(),
            self.opts.tcp_port(),
            self.db
        )
    }

    pub async fn connect(&self) -> Result<Conn> {
        Conn::new(self.opts.clone())
            .await
            .context(|| format!("connecting to {}", self.describe()))
    }

    /// Drops and recreates the database (connecting without it).
    pub async fn recreate_database(&self) -> Result<()> {
        let opts = OptsBuilder::from_opts(self.opts.clone()).db_name(None::<String>);
        let mut conn = Conn::new(opts)
            .await
            .context(|| format!("connecting to {}", self.describe()))?;
        for sql in [
            format!("DROP DATABASE IF EXISTS {}", self.db),
            format!("CREATE DATABASE {}", self.db),
        ] {
            conn.query_drop(&sql).await.context(|| sql.clone())?;
        }
        Ok(())
    }

    pub async fn server_version(&self) -> Result<String> {
        let mut conn = self.connect().await?;
        let version: Option<String> = conn
            .query_first("SELECT VERSION()")
            .await
            .context(|| "SELECT VERSION()".into())?;
        Ok(version.unwrap_or_default())
    }
}

/// An in-process Duet serving on loopback.
pub struct Embedded {
    server: duet_server::Server,
}

impl Embedded {
    /// Starts a single node on `data_dir` (wiped first when `fresh`) with
    /// its MySQL listener on an ephemeral loopback port.
    pub async fn start(data_dir: &Path, fresh: bool) -> Result<Embedded> {
        if fresh && data_dir.exists() {
            std::fs::remove_dir_all(data_dir)
                .context(|| format!("removing {}", data_dir.display()))?;
        }
        if !fresh && !data_dir.exists() {
            return Err(Error::Config(format!(
                "{} holds no loaded data: run `duet bench ch load` first",
                data_dir.display()
            )));
        }
        let config = duet_server::config::Config {
            data_dir: data_dir.to_path_buf(),
            mysql_addr: "127.0.0.1:0".into(),
            status_addr: "127.0.0.1:0".into(),
            log: "warn".into(),
            ..Default::default()
        };
        let server = duet_server::Server::start(config)
            .await
            .map_err(|e| Error::Embedded(e.to_string()))?;
        Ok(Embedded { server })
    }

    /// The target for this node's database `db`.
    pub fn target(&self, db: &str, seed: u64) -> Result<Target> {
        Target::from_url(
            &format!("mysql://root@{}/{db}", self.server.mysql_addr()),
            seed,
        )
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// The phases an invocation runs.
pub fn plans(options: &ChOptions) -> Vec<PhasePlan> {
    let plan = |name, oltp_workers, olap_workers| PhasePlan {
        name,
        duration: Duration::from_secs(options.duration),
        oltp_workers,
        olap_workers,
        warehouses: options.warehouses,
        seed: options.seed,
    };
    if options.interference {
        vec![
            plan("oltp-alone", options.oltp_workers, 0),
            plan("olap-alone", 0, options.olap_workers),
            plan("mixed", options.oltp_workers, options.olap_workers),
        ]
    } else {
        vec![plan("mixed", options.oltp_workers, options.olap_workers)]
    }
}

/// Runs `duet bench ch` as asked, prints the summary and writes the report.
/// A failed consistency check is an error.
pub async fn main(args: ChArgs) -> Result<Report> {
    let options = &args.options;
    let embedded = if options.target.is_none() {
        let fresh = args.step != Some(ChStep::Run);
        Some(Embedded::start(&options.out.join("duet-data"), fresh).await?)
    } else {
        None
    };
    let target = match (&embedded, &options.target) {
        (_, Some(url)) => Target::from_url(url, options.seed)?,
        (Some(node), None) => node.target("ch", options.seed)?,
        (None, None) => unreachable!("an embedded node starts without --target"),
    };
    let result = execute(args.step, options, &target).await;
    if let Some(node) = embedded {
        node.stop().await;
    }
    let report = result?;
    print!("{}", report.summary());
    report.write(&options.out)?;
    println!("\nwrote {}", options.out.join("result.json").display());
    if !report.consistent() {
        let failed: Vec<String> = report
            .consistency
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("condition {} ({})", c.id, c.detail))
            .collect();
        return Err(Error::Inconsistent(failed.join("; ")));
    }
    Ok(report)
}

async fn execute(step: Option<ChStep>, options: &ChOptions, target: &Target) -> Result<Report> {
    let load = if step != Some(ChStep::Run) {
        Some(
            load::load(
                target,
                options.warehouses,
                options.load_workers,
                options.seed,
                !options.quiet,
            )
            .await?,
        )
    } else {
        None
    };
    let mut phases = Vec::new();
    if step != Some(ChStep::Load) {
        for plan in plans(options) {
            if !options.quiet {
                eprintln!(
                    "phase {}: {} s, {} OLTP + {} OLAP workers",
                    plan.name,
                    plan.duration.as_secs(),
                    plan.oltp_workers,
                    plan.olap_workers
                );
            }
            phases.push(driver::run_phase(target, &plan).await?);
        }
    }
    let mut conn = target.connect().await?;
    let consistency = check::check(&mut conn).await?;
    Ok(Report {
        config: json!({
            "warehouses": options.warehouses,
            "duration_secs": options.duration,
            "oltp_workers": options.oltp_workers,
            "olap_workers": options.olap_workers,
            "interference": options.interference,
            "target": if options.target.is_some() { target.describe() } else { "embedded".into() },
            "load_workers": options.load_workers,
            "seed": options.seed,
            "step": match step { None => "load+run", Some(ChStep::Load) => "load", Some(ChStep::Run) => "run" },
        }),
        server_version: target.server_version().await?,
        load,
        phases,
        consistency,
    })
}

/// The current time as a `DATETIME` literal's text.
pub fn now_datetime() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        ch: ChArgs,
    }

    fn parse(args: &[&str]) -> ChArgs {
        Cli::try_parse_from(std::iter::once("ch").chain(args.iter().copied()))
            .unwrap()
            .ch
    }

    #[test]
    fn interference_runs_each_side_alone_then_both() {
        let args = parse(&[
            "--interference",
            "--oltp-workers",
            "3",
            "--olap-workers",
            "2",
        ]);
        let phases: Vec<(&str, usize, usize)> = plans(&args.options)
            .iter()
            .map(|p| (p.name, p.oltp_workers, p.olap_workers))
            .collect();
        assert_eq!(
            phases,
            [("oltp-alone", 3, 0), ("olap-alone", 0, 2), ("mixed", 3, 2)]
        );
        let single = parse(&["--duration", "5"]);
        assert_eq!(plans(&single.options).len(), 1);
        assert_eq!(plans(&single.options)[0].duration, Duration::from_secs(5));
    }

    #[test]
    fn options_go_before_or_after_the_step() {
        let before = parse(&["--warehouses", "3", "load"]);
        let after = parse(&["run", "--warehouses", "3"]);
        assert_eq!(before.step, Some(ChStep::Load));
        assert_eq!(after.step, Some(ChStep::Run));
        assert_eq!(before.options.warehouses, 3);
        assert_eq!(after.options.warehouses, 3);
        assert!(Cli::try_parse_from(["ch", "--embedded", "--target", "mysql://a@b/c"]).is_err());
    }

    #[test]
    fn targets_name_a_database_and_hide_the_password() {
        let target = Target::from_url("mysql://u:secret@127.0.0.1:3306/tpcc", 1).unwrap();
        assert_eq!(target.describe(), "mysql://u@127.0.0.1:3306/tpcc");
        let default = Target::from_url("mysql://u@127.0.0.1:3306", 1).unwrap();
        assert!(default.describe().ends_with("/ch"));
        assert!(Target::from_url("mysql://u@127.0.0.1:3306/a;drop", 1).is_err());
    }
}
