//! Building and running the command side: the HTTP listener serves at once, while a supervisor
//! connects to Kafka in the background and restarts the outcome waiter and the decider after
//! failures. Until Kafka is reachable, commands get a 503 and `/ready` says why.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use service_kit::edge::Edge;
use service_kit::kafka::Topics;
use service_kit::metrics::Registry;
use service_kit::secret::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::bus::CommandBus;
use crate::config::GatewayKind;
use crate::decider::{self, DeciderMetrics, DeciderSettings};
use crate::http::{self, ApiContext};
use crate::payments::{Fingerprinter, PaymentGateway, SandboxGateway};
use crate::reactor::{self, ReactorMetrics, ReactorSettings};
use crate::Config;

/// A command-api bound to its port, ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    config: Config,
    context: ApiContext,
    edge: Edge,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        let topics = Topics::new(&config.kafka.topic_prefix);
        let bus = CommandBus::new(
            &config.kafka,
            &topics,
            config.produce_timeout(),
            config.outcome_timeout(),
        )?;
        let gateway: Arc<dyn PaymentGateway> = match config.payment_gateway {
            GatewayKind::Sandbox => Arc::new(SandboxGateway),
        };
        let verifier = config.auth.verifier()?;
        let edge = Edge::new(&config.edge, verifier.clone())?;
        let context = ApiContext {
            bus,
            decider_ready: Arc::default(),
            metrics: Registry::default(),
            gateway,
            fingerprints: Fingerprinter::new(config.card_fingerprint_key()?.expose_secret()),
            verifier,
        };
        Ok(Self {
            listener,
            config,
            context,
            edge,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serves until `shutdown`, then drains requests and stops the decider between batches.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let supervisor = tokio::spawn(supervise_kafka(self.config.clone(), self.context.clone(), stopped));
        info!(addr = %self.listener.local_addr()?, "command-api listening");
        let router = http::router(self.context).layer(axum::extract::DefaultBodyLimit::max(http::BODY_LIMIT));
        let router = self.edge.wrap(router);
        let served = service_kit::server::serve(self.listener, router, self.edge.header_read_timeout(), shutdown).await;
        let _ = stop.send(true);
        let _ = supervisor.await;
        served.context("HTTP server failed")
    }
}

async fn supervise_kafka(config: Config, context: ApiContext, stopped: watch::Receiver<bool>) {
    let topics = Topics::new(&config.kafka.topic_prefix);
    let ensure = || async { topics.ensure(&config.kafka).await.map(|_| ()) };
    if !retrying("topic setup", &stopped, ensure, true).await {
        return;
    }
    let settings = DeciderSettings {
        kafka: config.kafka.clone(),
        topics: topics.clone(),
        instance_id: config.decider_instance_id.clone(),
        batch_size: config.decider_batch_size.max(1),
        batch_linger: config.batch_linger(),
    };
    let metrics = DeciderMetrics::register(&context.metrics);
    let ready = context.decider_ready.clone();
    let decide = || async {
        let result = decider::run(&settings, &metrics, &ready, until_stopped(stopped.clone())).await;
        ready.store(false, Ordering::Release);
        result
    };
    let listen = || async { context.bus.listen(&config.kafka, &topics).await };
    let reactor_settings = ReactorSettings {
        kafka: config.kafka.clone(),
        topics: topics.clone(),
        group: reactor::GROUP.to_owned(),
    };
    let reactor_metrics = ReactorMetrics::register(&context.metrics);
    let react = || async {
        if !config.payment_reactor {
            return Ok(());
        }
        reactor::run(
            &reactor_settings,
            &reactor_metrics,
            &context.bus,
            &context.gateway,
            until_stopped(stopped.clone()),
        )
        .await
    };
    tokio::join!(
        retrying("decider", &stopped, decide, false),
        retrying("outcome waiter", &stopped, listen, false),
        retrying("payment reactor", &stopped, react, true)
    );
}

/// Runs `task` until it succeeds (when `once`) or until stopped, backing off after failures.
/// Returns false when stopped first.
async fn retrying<F, Fut, E>(name: &str, stopped: &watch::Receiver<bool>, task: F, once: bool) -> bool
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = Duration::from_millis(250);
    loop {
        let outcome = tokio::select! {
            () = until_stopped(stopped.clone()) => return false,
            outcome = task() => outcome,
        };
        match outcome {
            Ok(()) if once => return true,
            Ok(()) => return !*stopped.borrow(),
            Err(err) => warn!(task = name, error = %err, retry_in = ?backoff, "failed; retrying"),
        }
        // Back off before reconnecting, unless asked to stop meanwhile.
        tokio::select! {
            () = until_stopped(stopped.clone()) => return false,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}
