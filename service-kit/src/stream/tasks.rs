//! The background tasks of a service: one shutdown for all of them, and a panic in any of them
//! is fatal to the service instead of leaving a loop silently dead behind a healthy listener.

use std::any::Any;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::error;

/// A background task panicked; the service stopped because of it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("task `{task}` panicked: {message}")]
pub struct TaskPanicked {
    pub task: &'static str,
    pub message: String,
}

/// Spawns and tracks a service's background tasks. Clones share the tasks and the shutdown.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    panicked: Arc<OnceLock<TaskPanicked>>,
}

impl Tasks {
    /// Cancelled when the service stops, or when a task panicked: what every task watches.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Spawns `task` as `name`. A panic in it is logged, cancels [`Self::shutdown`] and makes
    /// [`Self::stop`] fail.
    pub fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let running = tokio::spawn(task);
        let (shutdown, panicked) = (self.shutdown.clone(), self.panicked.clone());
        self.tracker.spawn(async move {
            let Err(failure) = running.await else { return };
            if failure.is_panic() {
                let panic = TaskPanicked {
                    task: name,
                    message: panic_message(failure.into_panic()),
                };
                error!(task = name, message = %panic.message, "task panicked; stopping the service");
                let _ = panicked.set(panic);
                shutdown.cancel();
            }
        });
    }

    /// What the service's listener waits for before it drains: `signal`, which then cancels
    /// [`Self::shutdown`], or that shutdown itself (after a panic). Dropping it cancels the
    /// shutdown too, so the tasks do not outlive a service whose run was dropped midway.
    pub fn stopping(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let shutdown = self.shutdown.clone();
        let cancel_on_drop = shutdown.clone().drop_guard();
        async move {
            let _cancel_on_drop = cancel_on_drop;
            shutdown.run_until_cancelled(signal).await;
        }
    }

    /// Cancels [`Self::shutdown`] and waits for every task to end; the first panic, if any.
    pub async fn stop(self) -> Result<(), TaskPanicked> {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        match self.panicked.get() {
            Some(panic) => Err(panic.clone()),
            None => Ok(()),
        }
    }
}

/// What a panic said, when it said it with a string (as `panic!` and `expect` do).
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "(not a string)".to_owned(), |message| (*message).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_panicking_task_stops_the_others_and_fails_the_service() {
        let tasks = Tasks::default();
        let drained = Arc::new(AtomicBool::new(false));
        let (shutdown, flag) = (tasks.shutdown().clone(), drained.clone());
        tasks.spawn("steady", async move {
            shutdown.cancelled().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
            flag.store(true, Ordering::Release);
        });
        tasks.spawn("broken", async { panic!("the loop broke") });

        tokio::time::timeout(Duration::from_secs(5), tasks.stopping(std::future::pending()))
            .await
            .expect("a panic stops the listener too");
        assert_eq!(
            tasks.stop().await,
            Err(TaskPanicked {
                task: "broken",
                message: "the loop broke".to_owned()
            })
        );
        assert!(
            drained.load(Ordering::Acquire),
            "the other task finished before stop returned"
        );
    }

    #[test]
    fn a_service_whose_run_is_dropped_stops_its_tasks() {
        let tasks = Tasks::default();
        drop(tasks.stopping(std::future::pending()));
        assert!(tasks.shutdown().is_cancelled());
    }

    #[tokio::test]
    async fn the_signal_stops_every_task_cleanly() {
        let tasks = Tasks::default();
        let shutdown = tasks.shutdown().clone();
        tasks.spawn("steady", async move { shutdown.cancelled().await });
        tasks.stopping(async {}).await;
        assert!(tasks.shutdown().is_cancelled());
        assert_eq!(tasks.stop().await, Ok(()));
    }

    #[test]
    fn a_panic_message_is_kept_whether_formatted_or_not() {
        assert_eq!(panic_message(Box::new("static")), "static");
        assert_eq!(panic_message(Box::new(format!("formatted {}", 1))), "formatted 1");
        assert_eq!(panic_message(Box::new(42)), "(not a string)");
    }
}
