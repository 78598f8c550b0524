//! The operator console at `/console`: one page, embedded in the binary, showing the events
//! topic's partitions with their log end, each projection's checkpoint and lag, commands/s and
//! events/s, which decider instance owns which partition, rebuilds, dead letters, and any
//! order's timeline.
//!
//! The page and its script are open: they hold no data. Every data route needs a bearer token
//! with the `operator` scope, sent as the `Authorization` header; the page asks for the token
//! and reads the live stream with `fetch`, so the token never travels in a URL (where access
//! logs and browser history would keep it).
//!
//! - [`snapshot`]: what the console shows at one instant, read off Kafka and PostgreSQL.
//! - [`sampler`]: one snapshot a second while someone watches, with the rates between two.
//! - [`timeline`]: one order's events, the commands behind them and the projections they reached.

mod sampler;
mod snapshot;
mod timeline;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use rdkafka::consumer::BaseConsumer;
use service_kit::auth::{require_scope, Verifier, OPERATOR};
use service_kit::kafka::watch as kafka_watch;
use service_kit::kafka::{KafkaArgs, Topics};
use sqlx::PgPool;
use tokio::sync::watch;

pub(crate) use sampler::Sampler;
pub use snapshot::Snapshot;

use crate::http::ApiError;

/// The group id the console's reader carries; it is assigned partitions and never joins.
const READER_GROUP: &str = "orderstream-console";

/// What the console's routes share.
#[derive(Debug, Clone)]
pub struct Console {
    pool: PgPool,
    /// The database schema the projectors keep.
    schema: String,
    kafka: Arc<KafkaClient>,
    topics: Arc<Topics>,
    decider_group: String,
    /// Where a trace id links to: `{trace_id}` in it is replaced; empty for no link.
    trace_url: Arc<str>,
    /// The latest snapshot as JSON, published by the [`Sampler`] while someone subscribes.
    latest: Arc<watch::Sender<Arc<str>>>,
}

impl Console {
    /// The console over `pool`'s read models in `schema`, and the Kafka of `kafka`; `trace_url`
    /// is `CONSOLE_TRACE_URL`.
    pub fn new(pool: PgPool, schema: String, kafka: &KafkaArgs, trace_url: String) -> anyhow::Result<Self> {
        // Log ends are high watermarks: a write's positions are below them once its command is
        // answered, while the last stable offset may still wait for the transaction's markers.
        let client: BaseConsumer = kafka
            .client_config()
            .set("isolation.level", "read_uncommitted")
            .create()?;
        let reader: BaseConsumer = kafka
            .consumer_config(READER_GROUP)
            .set("enable.partition.eof", "true")
            .create()?;
        let (latest, _) = watch::channel(Arc::from(""));
        Ok(Self {
            pool,
            schema,
            kafka: Arc::new(KafkaClient {
                client,
                reader: Mutex::new(reader),
            }),
            topics: Arc::new(Topics::new(&kafka.topic_prefix)),
            decider_group: kafka.group(service_kit::kafka::topics::DECIDER_GROUP),
            trace_url: trace_url.into(),
            latest: Arc::new(latest),
        })
    }

    /// Where every partition of the events log ends now (asked on a blocking thread).
    pub(crate) async fn events_log_ends(&self) -> Result<BTreeMap<i32, i64>, ApiError> {
        let (kafka, events) = (self.kafka.clone(), self.topics.events.clone());
        tokio::task::spawn_blocking(move || kafka_watch::log_ends(&kafka.client, &events))
            .await
            .map_err(|_| ApiError::Blocking)?
            .map_err(ApiError::from)
    }
}

/// A client that asks the brokers metadata, watermarks and group descriptions, and a reader
/// that looks past checkpoints for records (one question at a time: it is assigned each).
pub(crate) struct KafkaClient {
    client: BaseConsumer,
    reader: Mutex<BaseConsumer>,
}

impl std::fmt::Debug for KafkaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KafkaClient")
    }
}

/// The page and its assets, open; the data routes, for operators only.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(console: Console, verifier: Verifier) -> Router<S> {
    let data = Router::new()
        .route("/console/api/snapshot", get(snapshot))
        .route("/console/api/stream", get(stream))
        .route("/console/api/orders/{order_id}", get(timeline::order))
        .route_layer(require_scope(verifier, OPERATOR));
    Router::new()
        .merge(data)
        .route("/console", get(page))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
        .with_state(console)
}

async fn page() -> Html<&'static str> {
    Html(include_str!("assets/index.html"))
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/console.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/console.css"),
    )
}

/// One snapshot gathered now, without rates (they need two).
#[tracing::instrument(skip_all)]
async fn snapshot(State(console): State<Console>) -> Result<Json<Snapshot>, ApiError> {
    Ok(Json(Snapshot::gather(&console, None).await?))
}

/// A snapshot as an SSE `data:` line whenever the sampler publishes one (about every second),
/// the latest at once; when gathering one failed, the data is `{"error": "..."}` instead.
#[tracing::instrument(skip_all)]
async fn stream(State(console): State<Console>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut receiver = console.latest.subscribe();
    receiver.mark_changed();
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            receiver.changed().await.ok()?;
            let json = receiver.borrow_and_update().clone();
            // Nothing published yet: the sampler wakes on this subscriber within its period.
            if !json.is_empty() {
                return Some((Ok(Event::default().data(&*json)), receiver));
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
