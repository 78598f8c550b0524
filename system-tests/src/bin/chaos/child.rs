//! Running the cluster's scripts and tools from the driver.

use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::time::Instant;

/// How often a running child is looked at.
const POLL: Duration = Duration::from_millis(100);

/// Starts `command` and waits until it exits; kills it (SIGKILL) and fails once `deadline` has
/// passed.
pub(crate) async fn until_exit(mut command: Command, deadline: Duration) -> anyhow::Result<ExitStatus> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn().with_context(|| format!("starting {program}"))?;
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= give_up {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{program} did not finish within {deadline:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}
