//! `chaos`: drives orders (some reserving a catalog product's stock), purchases and refunds
//! through every command-api replica of a local
//! cluster (`deploy/local/up --cluster`), SIGKILLs a command-api, a broker and a projectors
//! process at random moments and restarts them with `up --cluster`, then proves that nothing
//! acknowledged was lost or doubled and prints what it measured. `deploy/local/chaos` starts the
//! cluster and runs it with the cluster's settings.
//!
//! - [`load`]: the workers, their retries on the same `Idempotency-Key`, and the ledger of what
//!   was acknowledged.
//! - [`faults`]: the kills and restarts, and the supervisor that starts again a process that
//!   stopped on its own.
//! - [`checks`]: the log census, the read models against the ledger and against a rebuild.
//! - [`report`]: rates, recovery times and the verdict.
//! - [`child`]: the scripts and tools it runs, each with a deadline.

mod checks;
mod child;
mod faults;
mod load;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use service_kit::database::DatabaseArgs;
use service_kit::duration;
use service_kit::kafka::KafkaArgs;
use service_kit::secret::SecretString;
use tokio::time::Instant;

/// What to drive, for how long, and where the cluster keeps its pid files.
#[derive(Debug, Parser)]
#[command(
    name = "chaos",
    about = "Kills orderstream processes under load and checks nothing was lost or doubled"
)]
struct Settings {
    /// Base URLs of the command-api replicas, comma-separated; commands alternate between them.
    #[arg(
        long,
        env = "CHAOS_COMMAND_API_URLS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8084,http://127.0.0.1:8094"
    )]
    command_api_urls: Vec<String>,

    /// Load before the first fault: the undisturbed rate.
    #[arg(long, env = "CHAOS_BEFORE", default_value = "20s", value_parser = duration::parse)]
    before: Duration,

    /// The window in which the three kills happen at random moments (longer if the restarts are).
    #[arg(long, env = "CHAOS_DURING", default_value = "60s", value_parser = duration::parse)]
    during: Duration,

    /// Load after every restarted process is back.
    #[arg(long, env = "CHAOS_AFTER", default_value = "20s", value_parser = duration::parse)]
    after: Duration,

    /// Commands in flight at once.
    #[arg(long, env = "CHAOS_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,

    /// How long one command is retried (same key, either replica) before it counts as lost.
    #[arg(long, env = "CHAOS_COMMAND_DEADLINE", default_value = "120s", value_parser = duration::parse)]
    command_deadline: Duration,

    /// How long the system may take, after the load, to settle every purchase and bring every
    /// projection to the head of the log.
    #[arg(long, env = "CHAOS_SETTLE_DEADLINE", default_value = "180s", value_parser = duration::parse)]
    settle_deadline: Duration,

    /// The directory of the cluster's pid files (`<name>.pid`).
    #[arg(long, env = "CHAOS_RUN_DIR")]
    run_dir: PathBuf,

    /// The script that (re)starts whatever of the cluster is not running, run with `--cluster`.
    #[arg(long, env = "CHAOS_UP")]
    up: PathBuf,

    /// Where the output of each `up --cluster` goes.
    #[arg(long, env = "CHAOS_UP_LOG")]
    up_log: PathBuf,

    /// The projectors binary, for `projectors rebuild --all --keep-old`.
    #[arg(long, env = "CHAOS_PROJECTORS_BIN")]
    projectors_bin: PathBuf,

    /// The key tokens are signed with (the cluster's `JWT_SECRET`).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, value_parser = service_kit::secret::parse)]
    jwt_secret: SecretString,

    #[command(flatten)]
    kafka: KafkaArgs,

    #[command(flatten)]
    database: DatabaseArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let settings = Settings::parse();
    let ledger = Arc::new(load::Ledger::default());
    let load = load::Load::start(&settings, ledger.clone()).await?;
    let start = Instant::now();
    println!(
        "chaos: {} commands in flight over {} command-api replicas; {:?} before, {:?} during, {:?} after the faults",
        settings.concurrency,
        settings.command_api_urls.len(),
        settings.before,
        settings.during,
        settings.after
    );

    let restarts = faults::Restarts::default();
    let supervisor = faults::Supervisor::start(&settings, restarts.clone(), start);

    tokio::time::sleep_until(start + settings.before).await;
    let during_from = Instant::now();
    let faults = faults::inject(&settings, &restarts, during_from).await?;
    tokio::time::sleep_until(during_from + settings.during).await;
    let after_from = Instant::now();
    tokio::time::sleep_until(after_from + settings.after).await;
    let load_stopped = Instant::now();
    load.stop().await;

    let phases = report::Phases {
        start,
        during_from,
        after_from,
        end: load_stopped,
    };
    let verdict = checks::run(&settings, &ledger, load_stopped).await?;
    let stopped = supervisor.stop().await?;
    let passed = report::print(&ledger.snapshot(), &phases, &faults, &stopped, &verdict);
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
