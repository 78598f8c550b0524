//! The faults: one command-api replica, one broker and one projectors replica, each picked at
//! random and SIGKILLed at a random moment of the window, then started again by
//! `up --cluster` after a random pause. One fault at a time: the next kill waits for the
//! previous restart.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::time::Instant;

use crate::load::random_below;
use crate::{child, Settings};

/// The processes of each kind, as named by their pid files; one of each kind is killed.
const VICTIMS: [&[&str]; 3] = [
    &["command-api-1", "command-api-2"],
    &["kafka-1", "kafka-2", "kafka-3"],
    &["projectors-1", "projectors-2"],
];
/// How long a restart may take before the run fails: a broker's JVM alone can take minutes to
/// start on two cores busy compiling.
const RESTART_DEADLINE: Duration = Duration::from_secs(300);

/// One kill and its restart.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub(crate) victim: &'static str,
    pub(crate) killed_at: Instant,
    /// When `up --cluster` had it (and everything else) running and ready again.
    pub(crate) ready_at: Instant,
    /// How long `up --cluster` itself took.
    pub(crate) restart_took: Duration,
}

/// Kills one of each kind at random moments of the first 70% of `settings.during` after
/// `from`, each restarted before the next kill; returns once the last restart is done.
pub(crate) async fn inject(settings: &Settings, from: Instant) -> anyhow::Result<Vec<Fault>> {
    let window = settings.during.mul_f64(0.6);
    let mut planned: Vec<(Duration, &'static str)> = VICTIMS
        .iter()
        .map(|kind| {
            let at = settings.during.mul_f64(0.1) + window.mul_f64(random_below(1_000) as f64 / 1_000.0);
            (at, kind[random_below(kind.len() as u64) as usize])
        })
        .collect();
    planned.sort();
    let mut faults = Vec::new();
    for (at, victim) in planned {
        tokio::time::sleep_until(from + at).await;
        let killed_at = Instant::now();
        kill(&settings.run_dir, victim)?;
        println!("chaos: {:>6.1}s SIGKILL {victim}", (killed_at - from).as_secs_f64());
        // A pause of up to 3 s before the restart, so the others run on without it for a while.
        tokio::time::sleep(Duration::from_millis(random_below(3_000))).await;
        let restart_from = Instant::now();
        restart(settings).await?;
        let ready_at = Instant::now();
        println!(
            "chaos: {:>6.1}s {victim} back ({:.1}s after the kill)",
            (ready_at - from).as_secs_f64(),
            (ready_at - killed_at).as_secs_f64()
        );
        faults.push(Fault {
            victim,
            killed_at,
            ready_at,
            restart_took: ready_at - restart_from,
        });
    }
    Ok(faults)
}

/// SIGKILLs the process whose pid `<run_dir>/<name>.pid` holds.
fn kill(run_dir: &Path, name: &str) -> anyhow::Result<()> {
    let file = run_dir.join(format!("{name}.pid"));
    let pid = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let pid = pid.trim();
    if !Path::new("/proc").join(pid).exists() {
        bail!("{name} (pid {pid}) is not running: cannot kill it");
    }
    let status = std::process::Command::new("kill").args(["-KILL", pid]).status()?;
    if !status.success() {
        bail!("kill -KILL {pid} ({name}) failed: {status}");
    }
    Ok(())
}

/// Runs `up --cluster`, which starts whatever is not running and waits until it is ready.
async fn restart(settings: &Settings) -> anyhow::Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&settings.up_log)
        .with_context(|| format!("opening {}", settings.up_log.display()))?;
    let mut up = std::process::Command::new(&settings.up);
    up.arg("--cluster")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let status = child::until_exit(up, RESTART_DEADLINE).await?;
    if !status.success() {
        bail!("up --cluster failed ({status}); see {}", settings.up_log.display());
    }
    Ok(())
}
