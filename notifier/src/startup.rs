//! Building and running the notifier: the API, the fan-out and the dispatcher in one process,
//! under one shutdown. A panic in either loop stops the service with an error.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use service_kit::edge::Front;
use service_kit::metrics::Registry;
use service_kit::server::App;
use service_kit::stream::{Backoff, Batching, Tasks};
use tokio::sync::Notify;

use crate::dispatch::{self, DispatchMetrics, DispatchSettings, Dispatcher};
use crate::fanout::{self, FanoutMetrics, FanoutSettings};
use crate::http::{self, ApiContext};
use crate::ssrf::Guard;
use crate::{store, Config};

/// How long the fan-out waits before reconnecting after Kafka failed it.
const FANOUT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));

/// A notifier bound to its port, its tables migrated, ready to run.
#[derive(Debug)]
pub struct Application {
    front: Front,
    context: ApiContext,
    fanout: FanoutSettings,
    dispatcher: Dispatcher,
}

impl App for Application {
    type Config = Config;

    /// Binds the listen address and migrates the webhook tables. Refuses a lease too short for
    /// its attempts; when PostgreSQL cannot be reached for the migrations, says why.
    async fn build(config: Config) -> anyhow::Result<Self> {
        let webhooks = &config.webhooks;
        ensure!(
            webhooks.webhook_lease > webhooks.webhook_timeout * dispatch::LEASED_SHARES as u32,
            "WEBHOOK_LEASE ({:?}) must be longer than {} × WEBHOOK_TIMEOUT ({:?}), or a slow attempt's delivery is leased twice",
            webhooks.webhook_lease,
            dispatch::LEASED_SHARES,
            webhooks.webhook_timeout
        );
        let verifier = config.api.auth.verifier()?;
        let front = Front::bind(&config.listen_addr, &config.api.edge, verifier.clone()).await?;
        let pool = config.api.database.pool()?;
        let database = &config.api.database;
        let schema = &database.database_schema;
        if let Err(error) = store::migrate(&pool, schema).await {
            let error = anyhow::Error::new(error).context("migrating the webhook tables");
            return Err(database.explain(error).await);
        }
        let guard = Guard {
            allow_private: webhooks.webhooks_allow_private,
        };
        let metrics = Registry::default();
        let dispatcher = Dispatcher {
            pool: pool.clone(),
            client: dispatch::http_client(webhooks.webhook_timeout, guard).context("building the HTTP client")?,
            settings: DispatchSettings {
                timeout: webhooks.webhook_timeout,
                lease: webhooks.webhook_lease,
                max_in_flight: webhooks.webhook_max_in_flight as usize,
                per_webhook: webhooks.webhook_max_in_flight_per_webhook as usize,
                poll_interval: webhooks.webhook_poll_interval,
                retry: webhooks.retry_policy(),
                guard,
            },
            metrics: DispatchMetrics::register(&metrics),
        };
        let batching = Batching::new(webhooks.fanout_batch_size as usize, webhooks.fanout_batch_linger);
        Ok(Self {
            front,
            context: ApiContext {
                pool,
                verifier,
                guard,
                webhooks_per_user: webhooks.webhooks_per_user,
                metrics,
            },
            fanout: FanoutSettings::new(config.kafka.clone(), schema, batching),
            dispatcher,
        })
    }

    /// Serves and delivers until `shutdown`; attempts in flight finish and are recorded first.
    async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let tasks = Tasks::default();
        let wake = Arc::new(Notify::new());

        let (settings, pool, stop) = (self.fanout, self.context.pool.clone(), tasks.shutdown().clone());
        let (metrics, dispatcher_wake) = (FanoutMetrics::register(&self.context.metrics), wake.clone());
        tasks.spawn("fan-out", async move {
            FANOUT_BACKOFF
                .retry("fan-out", &stop, || {
                    fanout::run(&settings, &pool, &metrics, &dispatcher_wake, &stop)
                })
                .await;
        });

        let (dispatcher, stop) = (self.dispatcher, tasks.shutdown().clone());
        tasks.spawn("dispatcher", async move { dispatcher.run(&wake, &stop).await });

        let metrics = self.context.metrics.clone();
        let served = self
            .front
            .serve(http::router(self.context), &metrics, tasks.stopping(shutdown))
            .await;
        tasks.stop().await?;
        served.context("HTTP server failed")
    }
}

impl Application {
    pub fn port(&self) -> u16 {
        self.front.port()
    }
}
