//! Building and serving the query API, and the console's sampler beside it: a panic in the
//! sampler stops the service with an error rather than leaving the console's stream silent.

use std::future::Future;

use anyhow::Context as _;
use service_kit::edge::Front;
use service_kit::metrics::Registry;
use service_kit::server::App;
use service_kit::stream::Tasks;

use crate::console::{Console, Sampler};
use crate::http::{self, ApiContext};
use crate::Config;

/// A query-api bound to its port, ready to run.
#[derive(Debug)]
pub struct Application {
    front: Front,
    context: ApiContext,
    sampler: Sampler,
}

impl App for Application {
    type Config = Config;

    /// Binds the listen address with a lazy pool, so the API answers (503) while PostgreSQL is
    /// still down.
    async fn build(config: Config) -> anyhow::Result<Self> {
        read_models::schema::check_schema(&config.api.database.database_schema).context("DATABASE_SCHEMA")?;
        let verifier = config.api.auth.verifier()?;
        let front = Front::bind(&config.listen_addr, &config.api.edge, verifier.clone()).await?;
        let pool = config.api.database.pool()?;
        config.api.database.warn_if_unreachable();
        let console = Console::new(
            pool.clone(),
            config.api.database.database_schema.clone(),
            &config.kafka,
            config.console_trace_url.clone(),
        )?;
        let sampler = Sampler::new(console.clone(), config.console_interval);
        let context = ApiContext {
            pool,
            console,
            consistency_wait: config.consistency_wait(),
            verifier,
            metrics: Registry::default(),
        };
        Ok(Self {
            front,
            context,
            sampler,
        })
    }

    async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let tasks = Tasks::default();
        let (sampler, stop) = (self.sampler, tasks.shutdown().clone());
        tasks.spawn("console sampler", async move {
            stop.run_until_cancelled(sampler.run()).await;
        });
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
