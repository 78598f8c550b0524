//! Building and serving the query API.

use std::future::Future;

use anyhow::Context as _;
use service_kit::edge::Edge;
use service_kit::metrics::Registry;
use service_kit::server::{App, Listener};

use crate::console::{Console, Sampler};
use crate::http::{self, ApiContext};
use crate::Config;

/// A query-api bound to its port, ready to run.
#[derive(Debug)]
pub struct Application {
    listener: Listener,
    context: ApiContext,
    edge: Edge,
    sampler: Sampler,
}

impl App for Application {
    type Config = Config;

    /// Binds the listen address with a lazy pool, so the API answers (503) while PostgreSQL is
    /// still down.
    async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = Listener::bind(&config.listen_addr).await?;
        let verifier = config.api.auth.verifier()?;
        let edge = Edge::new(&config.api.edge, verifier.clone())?;
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
            listener,
            context,
            edge,
            sampler,
        })
    }

    async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let metrics = self.context.metrics.clone();
        let router = metrics.time_requests(self.edge.wrap(http::router(self.context)));
        let sampler = tokio::spawn(self.sampler.run());
        let served = metrics
            .kept_up_while(service_kit::server::serve(
                self.listener,
                router,
                self.edge.header_read_timeout(),
                shutdown,
            ))
            .await;
        sampler.abort();
        served.context("HTTP server failed")
    }
}

impl Application {
    pub fn port(&self) -> u16 {
        self.listener.port()
    }
}
