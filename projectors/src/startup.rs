//! Running every projection beside `/health`, `/ready` and `/metrics`. The projections share one
//! consumer in the process's consumer group, so several processes share the partitions, each
//! record is fetched and decoded once, and each projection commits its own transactions. After a
//! failure (PostgreSQL or Kafka away) the runner backs off, with jitter, and resumes every
//! projection from its checkpoints. Records that cannot be applied never get here: the runner
//! sets them aside as dead letters. A panic in the runner stops the projectors with an error.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use service_kit::metrics::Registry;
use service_kit::server::{App, Listener};
use service_kit::stream::{Backoff, Tasks};
use sqlx::PgPool;

use crate::projection::Projection;
use crate::runner::{self, RunnerStatus};
use crate::{db, Config};

/// How long a projection waits before resuming after a failure.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));

/// The projectors bound to their port, ready to run.
#[derive(Debug)]
pub struct Application {
    listener: Listener,
    config: Config,
    pool: PgPool,
}

#[derive(Debug, Clone)]
struct Context {
    pool: PgPool,
    runners: Vec<RunnerStatus>,
}

impl App for Application {
    type Config = Config;

    /// Binds the metrics address with a lazy pool; the migrations run with the projections.
    /// Refuses a schema name the migrations would refuse, rather than retrying it.
    async fn build(config: Config) -> anyhow::Result<Self> {
        db::check_schema(&config.projections.database.database_schema).context("DATABASE_SCHEMA")?;
        let listener = Listener::bind(&config.listen_addr).await?;
        let pool = config.projections.database.pool()?;
        config.projections.database.warn_if_unreachable();
        Ok(Self { listener, config, pool })
    }

    /// Runs until `shutdown`; each projection stops after its current batch.
    async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let metrics = Registry::default();
        let runners: Vec<RunnerStatus> = Projection::ALL
            .iter()
            .map(|&projection| RunnerStatus::register(&metrics, projection))
            .collect();
        let settings = self.config.projections.runner_settings();
        let tasks = Tasks::default();
        let (pool, stop, statuses) = (self.pool.clone(), tasks.shutdown().clone(), runners.clone());
        let schema = self.config.projections.database.database_schema.clone();
        // Each failure resumes from the checkpoints, after a backoff, until `shutdown`.
        tasks.spawn("projections", async move {
            let attempt = || async {
                db::migrate(&pool, &schema).await.map_err(|e| e.to_string())?;
                runner::run(&statuses, &settings, &pool, &schema, &stop)
                    .await
                    .map_err(|e| e.to_string())
            };
            BACKOFF.retry("projections", &stop, &attempt).await;
        });
        let context = Context {
            pool: self.pool.clone(),
            runners,
        };
        let router = Router::new()
            .route("/health", get(service_kit::health::live))
            .route("/ready", get(ready))
            .route("/metrics", get(metrics.scrape()))
            .fallback(service_kit::problem::not_found)
            .with_state(context);
        let router = metrics.time_requests(router);
        let served = metrics
            .kept_up_while(service_kit::server::serve(
                self.listener,
                router,
                service_kit::server::DEFAULT_HEADER_READ_TIMEOUT,
                tasks.stopping(shutdown),
            ))
            .await;
        tasks.stop().await?;
        served.context("HTTP server failed")
    }
}

async fn ready(State(context): State<Context>) -> Response {
    let database = service_kit::health::database_check(&context.pool).await;
    let mut checks = vec![("database", database)];
    for status in &context.runners {
        let running = if status.running.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err("not consuming".to_owned())
        };
        checks.push((status.projection().name(), running));
    }
    service_kit::health::ready(&checks)
}

impl Application {
    pub fn port(&self) -> u16 {
        self.listener.port()
    }
}
