//! Building and serving the query API.

use std::future::Future;

use anyhow::Context as _;
use service_kit::edge::Front;
use service_kit::metrics::Registry;
use service_kit::server::App;

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
        let verifier = config.api.auth.verifier()?;
        let front = Front::bind(&config.listen_addr, &config.api.edge, verifier.clone()).await?;
        let pool = config.api.database.pool()?;
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
        let metrics = self.context.metrics.clone();
        let sampler = tokio::spawn(self.sampler.run());
        let served = self.front.serve(http::router(self.context), &metrics, shutdown).await;
        sampler.abort();
        served.context("HTTP server failed")
    }
}

impl Application {
    pub fn port(&self) -> u16 {
        self.front.port()
    }
}
