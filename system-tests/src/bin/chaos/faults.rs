//! The faults: one command-api replica, one broker and one projectors replica, each picked at
//! random and SIGKILLed at a random moment of the window, then started again by
//! `up --cluster` after a random pause. One fault at a time: the next kill waits for the
//! previous restart.
//!
//! Beside them, the [`Supervisor`] plays the cluster's orchestrator for the whole run: a replica
//! stops itself when Kafka leaves one of its calls hanging (see the decider's `Hung`) and counts
//! on being started again, as a Kubernetes pod would be.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::{oneshot, Mutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::load::random_below;
use crate::{child, Settings};

/// The processes of each kind, as named by their pid files; one of each kind is killed.
const VICTIMS: [&[&str]; 3] = [
    &["command-api-1", "command-api-2"],
    &["kafka-1", "kafka-2", "kafka-3"],
    &["projectors-1", "projectors-2"],
];
/// Every process of the cluster, as named by its pid file.
const CLUSTER: [&str; 9] = [
    "kafka-1",
    "kafka-2",
    "kafka-3",
    "command-api-1",
    "command-api-2",
    "projectors-1",
    "projectors-2",
    "query-api-1",
    "query-api-2",
];
/// How long a restart may take before the run fails: a broker's JVM alone can take minutes to
/// start on two cores busy compiling.
const RESTART_DEADLINE: Duration = Duration::from_secs(300);
/// How often the supervisor looks for a process that is not running.
const SUPERVISE_EVERY: Duration = Duration::from_secs(2);

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

/// A process that stopped on its own, and when the supervisor had it running again.
#[derive(Debug, Clone)]
pub(crate) struct Stopped {
    pub(crate) names: Vec<&'static str>,
    pub(crate) noticed_at: Instant,
    pub(crate) ready_at: Instant,
}

/// Starts again, with `up --cluster`, any process of the cluster found not running. Restarts are
/// one at a time: a fault holds the [`Restarts`] lock from its kill to the end of its own
/// restart, so its victim is never started early.
#[derive(Debug)]
pub(crate) struct Supervisor {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<Vec<Stopped>>>,
}

/// The right to restart processes: one `up --cluster` at a time.
pub(crate) type Restarts = Arc<Mutex<()>>;

impl Supervisor {
    pub(crate) fn start(settings: &Settings, restarts: Restarts, from: Instant) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let up = Up::of(settings);
        let task = tokio::spawn(async move {
            let mut found = Vec::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => return Ok(found),
                    () = tokio::time::sleep(SUPERVISE_EVERY) => {}
                }
                let _turn = restarts.lock().await;
                let names: Vec<&'static str> = CLUSTER.into_iter().filter(|name| !up.running(name)).collect();
                if names.is_empty() {
                    continue;
                }
                let noticed_at = Instant::now();
                println!(
                    "chaos: {:>6.1}s {} not running (stopped on its own): starting it again",
                    (noticed_at - from).as_secs_f64(),
                    names.join(", ")
                );
                up.restart().await?;
                found.push(Stopped {
                    names,
                    noticed_at,
                    ready_at: Instant::now(),
                });
            }
        });
        Self { stop, task }
    }

    /// Stops looking; returns every process it found stopped.
    pub(crate) async fn stop(self) -> anyhow::Result<Vec<Stopped>> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// Kills one of each kind at random moments of the first 70% of `settings.during` after
/// `from`, each restarted before the next kill; returns once the last restart is done.
pub(crate) async fn inject(settings: &Settings, restarts: &Restarts, from: Instant) -> anyhow::Result<Vec<Fault>> {
    let up = Up::of(settings);
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
        let turn = restarts.lock().await;
        let killed_at = Instant::now();
        kill(&settings.run_dir, victim)?;
        println!("chaos: {:>6.1}s SIGKILL {victim}", (killed_at - from).as_secs_f64());
        // A pause of up to 3 s before the restart, so the others run on without it for a while.
        tokio::time::sleep(Duration::from_millis(random_below(3_000))).await;
        let restart_from = Instant::now();
        up.restart().await?;
        let ready_at = Instant::now();
        drop(turn);
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

/// The cluster's `up --cluster` and where it keeps its pid files.
#[derive(Debug, Clone)]
struct Up {
    script: PathBuf,
    log: PathBuf,
    run_dir: PathBuf,
}

impl Up {
    fn of(settings: &Settings) -> Self {
        Self {
            script: settings.up.clone(),
            log: settings.up_log.clone(),
            run_dir: settings.run_dir.clone(),
        }
    }

    /// Whether the process `<run_dir>/<name>.pid` names is alive.
    fn running(&self, name: &str) -> bool {
        std::fs::read_to_string(self.run_dir.join(format!("{name}.pid")))
            .is_ok_and(|pid| Path::new("/proc").join(pid.trim()).exists())
    }

    /// Runs `up --cluster`, which starts whatever is not running and waits until it is ready.
    async fn restart(&self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let mut up = std::process::Command::new(&self.script);
        up.arg("--cluster")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let status = child::until_exit(up, RESTART_DEADLINE).await?;
        if !status.success() {
            bail!("up --cluster failed ({status}); see {}", self.log.display());
        }
        Ok(())
    }
}
