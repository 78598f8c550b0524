//! The edge's path to the decider: send a command, wait for its verdict.
//!
//! Each instance reads only its reply partition of the outcomes topic (see [`crate::reply`]),
//! named in a header of every command it writes, from the position it found at start, and hands
//! each verdict to the requests waiting for that command id. Waiters register before the command
//! is sent, and a command names the partition only once it is being read, so no verdict can slip
//! past them.
//!
//! The HTTP edge sees the bus through [`CommandBus`] only, so its request parsing and error mapping
//! are tested against verdicts from memory; [`KafkaBus`] is the one the service runs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::Command;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Header;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use service_kit::kafka::{Envelope, KafkaArgs, Topics};
use service_kit::metrics::{Counter, Gauge, Histogram, Registry};
use thiserror::Error;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::outcome::{Outcome, REQUEST_DIGEST_HEADER};
use crate::reply::{self, REPLY_PARTITION_HEADER};

#[derive(Debug, Error)]
pub enum SubmitError {
    /// Kafka did not take the command; nothing was written.
    #[error("the command log is unavailable: {0}")]
    Unavailable(String),
    /// The command was written but no verdict came in time; a retry with the same
    /// `Idempotency-Key` returns the verdict once it exists.
    #[error("no verdict within {0:?}")]
    OutcomeTimeout(Duration),
}

/// What the HTTP edge needs of the command log: send a command and wait for its verdict.
pub trait CommandBus: Clone + Send + Sync + 'static {
    /// Whether verdicts are being read, i.e. whether a submitted command can be answered.
    fn is_listening(&self) -> bool;

    /// Writes `command` to the log and waits for its verdict. `request_digest` identifies the
    /// request behind an idempotency-keyed command (see [`Outcome::answers`]).
    fn submit(
        &self,
        command: &Envelope<Command>,
        request_digest: Option<&str>,
    ) -> impl Future<Output = Result<Outcome, SubmitError>> + Send;
}

impl CommandBus for KafkaBus {
    fn is_listening(&self) -> bool {
        KafkaBus::is_listening(self)
    }

    fn submit(
        &self,
        command: &Envelope<Command>,
        request_digest: Option<&str>,
    ) -> impl Future<Output = Result<Outcome, SubmitError>> + Send {
        KafkaBus::submit(self, command, request_digest)
    }
}

/// Requests waiting for a verdict, by command id, each with its request digest.
type Waiters = Arc<Mutex<HashMap<Uuid, Vec<Waiter>>>>;

struct Waiter {
    request_digest: Option<String>,
    sender: oneshot::Sender<Outcome>,
}

/// Sends commands and waits for verdicts. One per process; cheap to clone.
#[derive(Clone)]
pub struct KafkaBus {
    producer: FutureProducer,
    topic: String,
    waiters: Waiters,
    listening: Arc<AtomicBool>,
    produce_timeout: Duration,
    outcome_timeout: Duration,
    replies: Replies,
}

/// Which outcomes partition this edge reads, and how much it reads there.
#[derive(Clone)]
struct Replies {
    /// `REPLY_PARTITION`, when set.
    explicit: Option<i32>,
    /// This instance's id, from which the partition derives otherwise.
    instance: String,
    /// The partition being read; negative until the listener has started.
    partition: Arc<AtomicI32>,
    /// The same, for `/metrics`.
    reported: Gauge,
    verdicts: Counter,
    /// How long each submitted command waited for its verdict.
    waits: Histogram,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    pub fn new(
        kafka: &KafkaArgs,
        topics: &Topics,
        produce_timeout: Duration,
        outcome_timeout: Duration,
    ) -> service_kit::kafka::Result<Self> {
        let producer = kafka
            .producer_config()
            .set("message.timeout.ms", produce_timeout.as_millis().to_string())
            // A request waits for its verdict, so its command leaves at once; under load the
            // requests waiting meanwhile fill the next produce request anyway.
            .set("linger.ms", "0")
            .create()?;
        Ok(Self {
            producer,
            topic: topics.commands.clone(),
            waiters: Arc::default(),
            listening: Arc::default(),
            produce_timeout,
            outcome_timeout,
            replies: Replies {
                explicit: None,
                instance: String::new(),
                partition: Arc::new(AtomicI32::new(-1)),
                reported: Gauge::noop(),
                verdicts: Counter::noop(),
                waits: Histogram::noop(),
            },
        })
    }

    /// Reads verdicts on partition `explicit` of the outcomes topic, or on the one derived from
    /// `instance` (see [`reply::reply_partition`]), and reports it and what it reads in `metrics`.
    pub fn replying(mut self, explicit: Option<i32>, instance: &str, metrics: &Registry) -> Self {
        self.replies.explicit = explicit;
        self.replies.instance = instance.to_owned();
        self.replies.reported = metrics.gauge(
            "orderstream_edge_reply_partition",
            &[],
            "The outcomes partition this edge reads its verdicts from (-1: not reading yet)",
        );
        self.replies.reported.set(-1);
        self.replies.verdicts = metrics.counter(
            "orderstream_edge_verdicts_total",
            &[],
            "Verdicts read from this edge's reply partition",
        );
        self.replies.waits = metrics.histogram(
            "orderstream_edge_outcome_wait_seconds",
            &[],
            "How long a command took from being sent to its verdict read (timeouts included)",
        );
        self
    }

    /// Whether verdicts are being read, i.e. whether a submitted command can be answered.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Writes `command` to the commands topic and waits for the decider's verdict on it.
    /// `request_digest` identifies the request behind an idempotency-keyed command: the decider
    /// compares it with the one it first decided under the same id.
    #[tracing::instrument(skip_all, fields(command_id = %command.id, aggregate_id = %command.key()))]
    pub async fn submit(
        &self,
        command: &Envelope<Command>,
        request_digest: Option<&str>,
    ) -> Result<Outcome, SubmitError> {
        if !self.is_listening() {
            return Err(SubmitError::Unavailable("not connected to Kafka yet".to_owned()));
        }
        let mut waiting = self.wait_for(command.id, request_digest);
        let started = Instant::now();
        self.send(command, request_digest).await?;
        let verdict = tokio::time::timeout(self.outcome_timeout, &mut waiting.receiver).await;
        self.replies.waits.record(started.elapsed());
        match verdict {
            Ok(Ok(outcome)) => Ok(outcome),
            _ => Err(SubmitError::OutcomeTimeout(self.outcome_timeout)),
        }
    }

    /// Writes `command` to the commands topic without waiting for its verdict.
    pub async fn send(&self, command: &Envelope<Command>, request_digest: Option<&str>) -> Result<(), SubmitError> {
        let key = command.key();
        let payload = command.payload();
        let mut headers = command.headers();
        if let Some(digest) = request_digest {
            headers = headers.insert(Header {
                key: REQUEST_DIGEST_HEADER,
                value: Some(digest),
            });
        }
        // Without a partition being read (a bus that never listens), the verdict goes by key.
        let reply = self.replies.partition.load(Ordering::Acquire).to_string();
        if !reply.starts_with('-') {
            headers = headers.insert(Header {
                key: REPLY_PARTITION_HEADER,
                value: Some(&reply),
            });
        }
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(&payload)
            .headers(headers);
        self.producer
            .send(record, self.produce_timeout)
            .await
            .map_err(|(err, _)| SubmitError::Unavailable(err.to_string()))?;
        debug!(command_id = %command.id, "command written");
        Ok(())
    }

    fn wait_for(&self, command_id: Uuid, request_digest: Option<&str>) -> Waiting {
        let (sender, receiver) = oneshot::channel();
        lock(&self.waiters).entry(command_id).or_default().push(Waiter {
            request_digest: request_digest.map(str::to_owned),
            sender,
        });
        Waiting {
            command_id,
            receiver,
            waiters: self.waiters.clone(),
        }
    }

    /// Reads verdicts until `shutdown`, starting at the current end of this edge's reply
    /// partition. No other partition is read: verdicts for the other edges' commands stay theirs.
    pub async fn listen(&self, kafka: &KafkaArgs, topics: &Topics) -> service_kit::kafka::Result<()> {
        let consumer: StreamConsumer = kafka
            .client_config()
            .set("group.id", kafka.group("orderstream-outcome-waiter"))
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()?;
        let partitions = service_kit::kafka::topics::partition_count(consumer.client(), &topics.outcomes)?;
        let replies = &self.replies;
        let partition = reply::reply_partition(replies.explicit, &replies.instance, partitions as i32);
        // An explicit offset, not Offset::End: "end" would be resolved lazily, after a verdict
        // for an already-registered waiter might have been written.
        let (_, high) =
            service_kit::kafka::topics::watermarks(&consumer, &topics.outcomes, partition, Duration::from_secs(10))?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topics.outcomes, partition, Offset::Offset(high))?;
        consumer.assign(&assignment)?;
        info!(partition, partitions, "reading verdicts on this edge's reply partition");
        replies.partition.store(partition, Ordering::Release);
        replies.reported.set(partition);
        self.listening.store(true, Ordering::Release);
        let result = self.dispatch(&consumer).await;
        self.listening.store(false, Ordering::Release);
        result
    }

    async fn dispatch(&self, consumer: &StreamConsumer) -> service_kit::kafka::Result<()> {
        loop {
            let message = service_kit::kafka::recv(consumer).await?;
            let Some(outcome) = message
                .payload()
                .and_then(|payload| serde_json::from_slice::<Outcome>(payload).ok())
            else {
                warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    "skipping unreadable outcome"
                );
                continue;
            };
            self.replies.verdicts.increment(1);
            let mut waiters = lock(&self.waiters);
            let Some(waiting) = waiters.remove(&outcome.command_id) else {
                continue;
            };
            // Two requests may share a command id (one key, two bodies): each takes only the
            // verdict given for its own request.
            let (answered, still_waiting): (Vec<_>, Vec<_>) = waiting
                .into_iter()
                .partition(|waiter| outcome.answers(waiter.request_digest.as_deref()));
            for waiter in answered {
                let _ = waiter.sender.send(outcome.clone());
            }
            if !still_waiting.is_empty() {
                waiters.insert(outcome.command_id, still_waiting);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A registered waiter; dropping it (answered, timed out or cancelled) unregisters it.
struct Waiting {
    command_id: Uuid,
    receiver: oneshot::Receiver<Outcome>,
    waiters: Waiters,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.receiver.close();
        let mut waiters = lock(&self.waiters);
        if let Some(senders) = waiters.get_mut(&self.command_id) {
            senders.retain(|waiter| !waiter.sender.is_closed());
            if senders.is_empty() {
                waiters.remove(&self.command_id);
            }
        }
    }
}
