//! The dispatcher: due deliveries leased, posted and their outcomes recorded.
//!
//! Each turn leases as many due deliveries as there are free slots ([`DispatchSettings::max_in_flight`]),
//! but no more of one webhook than [`LEASED_SHARES`] times its share
//! ([`DispatchSettings::per_webhook`]) less what it holds here already; a webhook's semaphore
//! lets its share run at once, the rest queued right behind. So a slow or dead endpoint holds at
//! most its own few slots and never the deliveries to others. Attempts
//! run concurrently; their outcomes are written in batches by one recorder. Several replicas
//! share the work through the lease (`FOR UPDATE SKIP LOCKED`); a replica that dies leaves
//! leases that simply expire.
//!
//! Every request is a Standard Webhooks message: body `{"type","timestamp","data"}`, headers
//! `webhook-id` (the same on every retry), `webhook-timestamp` and `webhook-signature`.
//! Redirects are not followed (a redirect could lead past the SSRF guard, and a receiver that
//! moved should be re-registered).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::CONTENT_TYPE;
use reqwest::redirect::Policy;
use reqwest::{Client, Url};
use serde::Serialize;
use serde_json::value::RawValue;
use service_kit::metrics::{Counter, Histogram, Registry};
use service_kit::stream::{Backoff, CancellationToken};
use sqlx::PgPool;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{debug, warn, Instrument as _};
use uuid::Uuid;

use crate::retry::{RetryPolicy, Verdict};
use crate::signature;
use crate::ssrf::{self, Guard, GuardedResolver};
use crate::store::deliveries::{self, Leased, Outcome};
use crate::store::StoreError;

/// Retrying a write of outcomes, or a lease, that failed (PostgreSQL away).
const STORE_BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
/// Outcomes written in one statement, at most.
const RECORD_BATCH: usize = 500;
/// The longest error text kept on a delivery.
const MAX_ERROR_LEN: usize = 500;

/// How deliveries are attempted.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Longest wait for one attempt.
    pub timeout: Duration,
    /// How long a lease reserves a delivery; longer than [`LEASED_SHARES`] × `timeout`, the
    /// longest a leased delivery may wait and run.
    pub lease: Duration,
    /// Deliveries leased (in flight or queued) in this process.
    pub max_in_flight: usize,
    /// Attempts in flight to one webhook in this process.
    pub per_webhook: usize,
    /// The longest wait between two looks for due deliveries.
    pub poll_interval: Duration,
    pub retry: RetryPolicy,
    pub guard: Guard,
}

/// The HTTP client every attempt goes through: one per process (its connections are pooled),
/// no redirects, the attempt timeout, and the SSRF guard as its resolver.
pub fn http_client(timeout: Duration, guard: Guard) -> reqwest::Result<Client> {
    Client::builder()
        // A proxy from the environment (`HTTP_PROXY`, `ALL_PROXY`) would resolve the webhook's
        // host itself, out of the guard's sight, and reach whatever it names.
        .no_proxy()
        .redirect(Policy::none())
        .timeout(timeout)
        .dns_resolver(Arc::new(GuardedResolver { guard }))
        .user_agent(concat!("orderstream-notifier/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The dispatcher's counters and timings.
#[derive(Debug, Clone)]
pub struct DispatchMetrics {
    pub delivered: Counter,
    pub retried: Counter,
    pub failed: Counter,
    pub attempt_seconds: Histogram,
}

impl DispatchMetrics {
    pub fn register(registry: &Registry) -> Self {
        let attempts = |outcome: &str| {
            registry.counter(
                "notifier_attempts_total",
                &[("outcome", outcome.to_owned())],
                "Delivery attempts, by outcome",
            )
        };
        Self {
            delivered: attempts("delivered"),
            retried: attempts("retry"),
            failed: attempts("failed"),
            attempt_seconds: registry.histogram(
                "notifier_attempt_seconds",
                &[],
                "How long one delivery attempt (a signed POST to the webhook's URL) took",
            ),
        }
    }

    fn count(&self, verdict: Verdict) {
        match verdict {
            Verdict::Delivered => self.delivered.increment(1),
            Verdict::Retry => self.retried.increment(1),
            Verdict::Fail => self.failed.increment(1),
        }
    }
}

/// One process's dispatcher.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    pub pool: PgPool,
    pub client: Client,
    pub settings: DispatchSettings,
    pub metrics: DispatchMetrics,
}

/// Per webhook with deliveries leased here: how many (in flight or queued behind them), and the
/// semaphore that lets [`DispatchSettings::per_webhook`] of them run at once.
type Held = Arc<Mutex<HashMap<Uuid, (usize, Arc<Semaphore>)>>>;

/// How many shares of a webhook's deliveries are leased at once: one running, one queued behind
/// it, so the next attempts start as soon as the running ones end instead of after another
/// lease. A queued delivery starts within one attempt's timeout, well inside its lease.
pub const LEASED_SHARES: usize = 2;

impl Dispatcher {
    /// Leases and attempts deliveries until `shutdown`, then lets the attempts in flight finish
    /// and records them. `wake` says new deliveries may be due (the fan-out stored some).
    pub async fn run(&self, wake: &Notify, shutdown: &CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.settings.max_in_flight));
        let held: Held = Arc::default();
        let finished = Arc::new(Notify::new());
        let attempts = TaskTracker::new();
        let (outcomes, recorded) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(record_outcomes(
            self.pool.clone(),
            recorded,
            self.settings.retry.horizon,
            shutdown.clone(),
        ));
        while !shutdown.is_cancelled() {
            let free = slots.available_permits();
            let mut more_due = false;
            if free > 0 {
                match self.lease(free, &held).await {
                    Ok((run, full)) => {
                        more_due = full;
                        for delivery in run {
                            let permit = slots
                                .clone()
                                .try_acquire_owned()
                                .expect("leased no more than the free slots");
                            self.spawn_attempt(&attempts, delivery, permit, &held, &finished, &outcomes);
                        }
                    }
                    Err(error) => warn!(%error, "leasing due deliveries failed"),
                }
            }
            if !more_due {
                tokio::select! {
                    () = wake.notified() => {}
                    () = finished.notified() => {}
                    () = tokio::time::sleep(self.settings.poll_interval) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
        attempts.close();
        attempts.wait().await;
        drop(outcomes);
        if let Err(error) = recorder.await {
            warn!(%error, "the outcome recorder ended abnormally");
        }
    }

    /// Leases up to `free` deliveries, no more of each webhook than [`LEASED_SHARES`] of its
    /// share less what it holds here already, and counts them held; also whether the lease came
    /// back full (more may be due at once).
    async fn lease(&self, free: usize, held: &Held) -> Result<(Vec<Leased>, bool), StoreError> {
        let counts: HashMap<Uuid, usize> = {
            let held = held.lock().expect("held lock");
            held.iter().map(|(id, (count, _))| (*id, *count)).collect()
        };
        let settings = &self.settings;
        let share = settings.per_webhook * LEASED_SHARES;
        let leased = deliveries::lease(&self.pool, free, share, settings.lease, &counts).await?;
        let mut held = held.lock().expect("held lock");
        for delivery in &leased {
            let (count, _) = held
                .entry(delivery.webhook_id)
                .or_insert_with(|| (0, Arc::new(Semaphore::new(settings.per_webhook))));
            *count += 1;
        }
        let full = leased.len() == free;
        Ok((leased, full))
    }

    fn spawn_attempt(
        &self,
        attempts: &TaskTracker,
        delivery: Leased,
        permit: OwnedSemaphorePermit,
        held: &Held,
        finished: &Arc<Notify>,
        outcomes: &UnboundedSender<Outcome>,
    ) {
        let (client, settings, metrics) = (self.client.clone(), self.settings.clone(), self.metrics.clone());
        let (held, finished, outcomes) = (held.clone(), finished.clone(), outcomes.clone());
        let turn = held
            .lock()
            .expect("held lock")
            .get(&delivery.webhook_id)
            .map(|(_, turns)| turns.clone())
            .expect("a leased delivery's webhook is held");
        let span = tracing::info_span!(
            "attempt",
            delivery_id = delivery.delivery_id,
            webhook_id = %delivery.webhook_id,
            attempt = delivery.attempts + 1
        );
        attempts.spawn(
            async move {
                // Never closed: waits only for the webhook's running attempts.
                let running = turn.acquire_owned().await.expect("the semaphore is never closed");
                let started = Instant::now();
                let outcome = attempt(&client, &settings, &delivery).await;
                metrics.attempt_seconds.record(started.elapsed());
                debug!(verdict = ?outcome.verdict, status = ?outcome.http_status, "attempted");
                metrics.count(outcome.verdict);
                drop(running);
                {
                    let mut held = held.lock().expect("held lock");
                    if let Some((count, _)) = held.get_mut(&delivery.webhook_id) {
                        *count -= 1;
                        if *count == 0 {
                            held.remove(&delivery.webhook_id);
                        }
                    }
                }
                drop(permit);
                // The recorder outlives every attempt: it ends when the last sender is dropped.
                let _ = outcomes.send(outcome);
                finished.notify_one();
            }
            .instrument(span),
        );
    }
}

/// The body of every message.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: DateTime<Utc>,
    data: &'a RawValue,
}

/// One attempt at `delivery`, as an outcome to record.
async fn attempt(client: &Client, settings: &DispatchSettings, delivery: &Leased) -> Outcome {
    let outcome = |verdict: Verdict, http_status: Option<u16>, error: Option<String>| Outcome {
        delivery_id: delivery.delivery_id,
        verdict,
        http_status,
        retry_in: match verdict {
            Verdict::Retry => {
                let attempts = u32::try_from(delivery.attempts).unwrap_or(0) + 1;
                settings.retry.delay(attempts, &mut rand::thread_rng())
            }
            Verdict::Delivered | Verdict::Fail => Duration::ZERO,
        },
        error: error.map(|e| truncate(e, MAX_ERROR_LEN)),
    };
    let url = match Url::parse(&delivery.url) {
        Ok(url) => url,
        Err(error) => return outcome(Verdict::Fail, None, Some(format!("invalid URL: {error}"))),
    };
    if let Err(refused) = settings.guard.check_literal(&url) {
        return outcome(Verdict::Fail, None, Some(format!("refused: {refused}")));
    }
    let body = match message_body(delivery) {
        Ok(body) => body,
        Err(error) => return outcome(Verdict::Fail, None, Some(format!("unreadable payload: {error}"))),
    };
    let message_id = signature::message_id(delivery.webhook_id, delivery.event_id);
    let timestamp = Utc::now().timestamp();
    let signature = delivery.secret.sign(&message_id, timestamp, &body);
    let sent = client
        .post(url)
        .header("webhook-id", &message_id)
        .header("webhook-timestamp", timestamp)
        .header("webhook-signature", signature)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let verdict = Verdict::of_status(status);
            let error = (verdict != Verdict::Delivered).then(|| format!("HTTP {status}"));
            outcome(verdict, Some(status), error)
        }
        Err(error) => match ssrf::refusal_in(&error) {
            Some(refused) => outcome(Verdict::Fail, None, Some(format!("refused: {refused}"))),
            None if error.is_timeout() => outcome(
                Verdict::Retry,
                None,
                Some(format!("timed out after {:?}", settings.timeout)),
            ),
            None => outcome(Verdict::Retry, None, Some(causes(&error))),
        },
    }
}

fn message_body(delivery: &Leased) -> serde_json::Result<Vec<u8>> {
    let data: &RawValue = serde_json::from_str(&delivery.payload)?;
    serde_json::to_vec(&Body {
        event_type: &delivery.event_type,
        timestamp: delivery.occurred_at,
        data,
    })
}

/// An error and its causes on one line: reqwest's own message alone says only "error sending
/// request", the cause (connection refused, reset) is what the owner needs.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        text.push_str(": ");
        text.push_str(&current.to_string());
        cause = current.source();
    }
    text
}

fn truncate(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
    }
    text
}

/// Writes outcomes as they come, in batches, until every sender is gone. An outcome that cannot
/// be written by shutdown is lost to the table, not to the receiver: its lease runs out and the
/// delivery is attempted again (at least once).
async fn record_outcomes(
    pool: PgPool,
    mut outcomes: UnboundedReceiver<Outcome>,
    horizon: Duration,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        STORE_BACKOFF
            .retry("recording outcomes", &shutdown, || {
                deliveries::record(&pool, &batch, horizon)
            })
            .await;
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("héllo".to_owned(), 2), "hé");
        assert_eq!(truncate("short".to_owned(), 500), "short");
    }
}
