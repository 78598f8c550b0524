//! Building and running the command side: the HTTP listener serves at once, while background
//! tasks connect to Kafka and restart the outcome waiter, the decider and the payment reactor
//! after failures. Until Kafka is reachable, commands get a 503 and `/ready` says why. A panic
//! in any of them stops the command-api with an error, and so does a decider whose instance id
//! a live replica already has.
//!
//! Shutdown (SIGTERM) is ordered so that it ends within [`SHUTDOWN_BUDGET`]: the listener stops
//! accepting and in-flight requests get [`DRAIN_LIMIT`] to finish while the decider still
//! decides their commands; then the background tasks stop, the decider finishing (committing or
//! aborting) the batch in hand and leaving its group, so its partitions move at once.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use service_kit::edge::Front;
use service_kit::kafka::Topics;
use service_kit::metrics::Registry;
use service_kit::secret::ExposeSecret;
use service_kit::server::App;
use service_kit::stream::{Backoff, Batching, CancellationToken, Tasks};
use tracing::warn;

use crate::bus::KafkaBus;
use crate::catalog::KafkaCatalog;
use crate::config::GatewayKind;
use crate::decider::{self, DeciderError, DeciderMetrics, DeciderSettings};
use crate::http::{self, ApiContext};
use crate::payments::{Fingerprinter, PaymentGateway, SandboxGateway};
use crate::reactor::{self, ReactorMetrics, ReactorSettings};
use crate::Config;

/// How long a Kafka task waits before starting again after a failure.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
/// How long in-flight requests may take to finish once shutdown began.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// How long the background tasks may take to stop after the requests drained; with
/// [`DRAIN_LIMIT`] within the 10 s an orchestrator grants before SIGKILL.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(4);

/// Why the service stopped by itself, when it was not a panic.
type Fatal = Arc<Mutex<Option<DeciderError>>>;

/// A command-api bound to its port, ready to run.
#[derive(Debug)]
pub struct Application {
    front: Front,
    config: Config,
    /// The decider's instance id, which also names this edge's reply partition.
    instance_id: String,
    context: ApiContext,
    /// The catalog the context prices orders with, read by a background task.
    catalog: Arc<KafkaCatalog>,
}

impl App for Application {
    type Config = Config;

    /// Binds the listen address and creates the Kafka clients; the decider and the reactor start
    /// when it runs. Refuses an auth key, card fingerprint key, topic settings or state directory
    /// that cannot work.
    async fn build(config: Config) -> anyhow::Result<Self> {
        config.kafka.check_topic_settings()?;
        let state_dir = &config.decider_state_dir;
        decider::check_state_dir(state_dir).with_context(|| {
            format!(
                "DECIDER_STATE_DIR {} cannot hold the decider's store",
                state_dir.display()
            )
        })?;
        let verifier = config.auth.verifier()?;
        let front = Front::bind(&config.listen_addr, &config.edge, verifier.clone()).await?;
        let instance_id = config.decider_instance_id(front.port());
        let topics = Topics::new(&config.kafka.topic_prefix);
        let metrics = Registry::default();
        let bus = KafkaBus::new(
            &config.kafka,
            &topics,
            config.produce_timeout(),
            config.outcome_timeout(),
        )?
        .replying(config.reply_partition, &instance_id, &metrics);
        let gateway: Arc<dyn PaymentGateway> = match config.payment_gateway {
            GatewayKind::Sandbox => Arc::new(SandboxGateway::default()),
        };
        let catalog = Arc::new(KafkaCatalog::new(&config.kafka, &topics.catalog)?);
        let context = ApiContext {
            bus,
            decider_ready: Arc::default(),
            metrics,
            gateway,
            fingerprints: Fingerprinter::new(config.card_fingerprint_key()?.expose_secret()),
            verifier,
            catalog: catalog.clone(),
        };
        Ok(Self {
            front,
            config,
            instance_id,
            context,
            catalog,
        })
    }

    /// Serves until `shutdown`, then drains requests and stops the decider between batches.
    /// A panic in the decider, the outcome waiter or the payment reactor stops it too, with an
    /// error, and so does a duplicate decider instance id.
    async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let tasks = Tasks::default();
        let fatal = Fatal::default();
        tasks.spawn(
            "kafka setup",
            start_kafka(
                self.config.clone(),
                self.instance_id,
                self.context.clone(),
                self.catalog,
                tasks.clone(),
                fatal.clone(),
            ),
        );
        let metrics = self.context.metrics.clone();
        let router = http::router(self.context).layer(axum::extract::DefaultBodyLimit::max(http::BODY_LIMIT));
        // The listener stops on the signal or when a task fails; the tasks only once requests
        // have drained, so the decider still decides the commands they wait for.
        let stop_serving = CancellationToken::new();
        let stopping = stop_serving.clone();
        let failed = tasks.shutdown().clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => {}
                () = failed.cancelled() => {}
                () = stopping.cancelled() => {}
            }
            stopping.cancel();
        });
        let serving = self
            .front
            .serve(router, &metrics, stop_serving.clone().cancelled_owned());
        let drained = async {
            stop_serving.cancelled().await;
            tokio::time::sleep(DRAIN_LIMIT).await;
        };
        let served = tokio::select! {
            served = serving => served,
            () = drained => {
                warn!(limit = ?DRAIN_LIMIT, "requests still in flight at shutdown are abandoned");
                Ok(())
            }
        };
        match tokio::time::timeout(SHUTDOWN_BUDGET, tasks.stop()).await {
            Ok(stopped) => stopped?,
            Err(_) => warn!(budget = ?SHUTDOWN_BUDGET, "background tasks did not stop in time; exiting anyway"),
        }
        if let Some(error) = fatal.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Err(error).context("the decider stopped the service");
        }
        served.context("HTTP server failed")
    }
}

/// Sets up the topics, retrying until Kafka is reachable, then starts the decider, the outcome
/// waiter, the catalog reader and the reactor, each restarted after its failures. A decider refused for its
/// instance id, or stuck in a Kafka call, is not retried: it is recorded in `fatal` and stops the
/// service.
async fn start_kafka(
    config: Config,
    instance_id: String,
    context: ApiContext,
    catalog: Arc<KafkaCatalog>,
    tasks: Tasks,
    fatal: Fatal,
) {
    let shutdown = tasks.shutdown().clone();
    let topics = Topics::new(&config.kafka.topic_prefix);
    // Topic setup and the outcome waiter watch no shutdown of their own: they stop where they stand.
    let ensure = || topics.ensure(&config.kafka);
    let ensured = shutdown.run_until_cancelled(BACKOFF.retry("topic setup", &shutdown, ensure));
    if ensured.await.flatten().is_none() {
        return;
    }
    let outcome_partitions = || async { topics.outcome_partitions(&config.kafka) };
    let counted = shutdown.run_until_cancelled(BACKOFF.retry("outcome partitions", &shutdown, outcome_partitions));
    let Some(Some(outcome_partitions)) = counted.await else {
        return;
    };

    let settings = DeciderSettings {
        kafka: config.kafka.clone(),
        topics: topics.clone(),
        instance_id,
        batching: Batching::new(config.decider_batch_size, config.batch_linger()),
        outcome_partitions,
        state_dir: config.decider_state_dir.clone(),
        rebuild_state: config.decider_rebuild_state,
    };
    let metrics = DeciderMetrics::register(&context.metrics);
    let ready = context.decider_ready.clone();
    let stop = shutdown.clone();
    tasks.spawn("decider", async move {
        let decide = || async {
            let result = decider::run(&settings, &metrics, &ready, &stop).await;
            ready.store(false, Ordering::Release);
            match result {
                Err(refused @ (DeciderError::DuplicateInstance(_) | DeciderError::Hung { .. })) => Ok(Some(refused)),
                other => other.map(|()| None),
            }
        };
        if let Some(Some(refused)) = BACKOFF.retry("decider", &stop, decide).await {
            tracing::error!(error = %refused, "the decider cannot go on; stopping the service");
            *fatal.lock().unwrap_or_else(PoisonError::into_inner) = Some(refused);
            stop.cancel();
        }
    });

    let reactor_settings = ReactorSettings {
        kafka: config.kafka.clone(),
        topics: topics.clone(),
        group: reactor::GROUP.to_owned(),
    };
    let (kafka, stop) = (config.kafka.clone(), shutdown.clone());
    tasks.spawn("catalog", async move {
        let follow = || catalog.follow(&kafka);
        stop.run_until_cancelled(BACKOFF.retry("catalog", &stop, follow)).await;
    });

    let (bus, stop) = (context.bus.clone(), shutdown.clone());
    tasks.spawn("outcome waiter", async move {
        let listen = || bus.listen(&config.kafka, &topics);
        stop.run_until_cancelled(BACKOFF.retry("outcome waiter", &stop, listen))
            .await;
    });

    let metrics = ReactorMetrics::register(&context.metrics);
    if config.payment_reactor {
        tasks.spawn("reactor", async move {
            let react = || reactor::run(&reactor_settings, &metrics, &context.bus, &context.gateway, &shutdown);
            BACKOFF.retry("reactor", &shutdown, react).await;
        });
    }
}

impl Application {
    pub fn port(&self) -> u16 {
        self.front.port()
    }
}
