//! Building and serving the query API.

use std::future::Future;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tracing::info;

use crate::http::{self, ApiContext};
use crate::Config;

/// A query-api bound to its port, ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    context: ApiContext,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        let context = ApiContext {
            pool: config.database.pool()?,
            consistency_wait: config.consistency_wait(),
            verifier: config.auth.verifier()?,
        };
        Ok(Self { listener, context })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        info!(addr = %self.listener.local_addr()?, "query-api listening");
        service_kit::server::serve(self.listener, http::router(self.context), shutdown)
            .await
            .context("HTTP server failed")
    }
}
