//! Logs and traces.
//!
//! - Logs through `tracing`, filtered by `RUST_LOG` (default [`LOG_FILTER`]), librdkafka's own
//!   included; one JSON object per line with `LOG_FORMAT=json` ([`json`]), which carries the `trace_id` and
//!   `span_id` of the span it was written in while traces are exported.
//! - Traces exported over OTLP ([`export`]) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and not
//!   built at all otherwise. Their spans are chosen by their own filter ([`TRACES_FILTER`]), not
//!   by `RUST_LOG`: quieting the logs must not silence the traces.
//! - [`TraceContext`]: the W3C Trace Context a request or a Kafka record carries, continued by
//!   whoever handles it.

mod context;
mod export;
mod json;

use std::io::IsTerminal;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

pub use context::{is_exported, TraceContext, TRACEPARENT, TRACESTATE};

/// The spans exported: every `info` span of ours and of the libraries, sqlx's per-statement
/// spans left out (the batch spans around them say what a transaction cost).
pub const TRACES_FILTER: &str = "info,sqlx=warn";

/// What is logged when `RUST_LOG` is unset: `info` and up. librdkafka's own warnings and
/// errors (a broker that cannot be resolved or reached, a failed authentication) are logged
/// under `librdkafka`, each naming the broker, with repeats suppressed by librdkafka; its error
/// callback (`rdkafka::client`) is left out, for it says the same again and adds "all brokers
/// are down" every second for every client while Kafka is away.
pub const LOG_FILTER: &str = "info,sqlx=warn,rdkafka::client=off";

/// What [`init`] installed; [`Telemetry::shutdown`] sends the spans not exported yet.
#[derive(Debug)]
#[must_use = "traces still buffered are lost unless `shutdown` is awaited before exiting"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is still buffered and stops the exporter. Blocks a worker of its own, so the
    /// runtime's other tasks go on meanwhile.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(err)) = flushed {
            eprintln!("traces not all exported at shutdown: {err}");
        }
    }
}

/// Runs what `work` returns with [`init`]'s subscriber installed first and the traces flushed
/// after it: the body of every service's `main`.
pub async fn run<F: std::future::Future>(service: &str, work: impl FnOnce() -> F) -> F::Output {
    let telemetry = init(service);
    let output = work().await;
    telemetry.shutdown().await;
    output
}

/// Installs the global subscriber: the log output (colours only on a terminal, so log files
/// stay plain) and, with an OTLP endpoint configured, the trace exporter of `service` (its
/// name unless `OTEL_SERVICE_NAME` says otherwise). Must run inside a Tokio runtime, which
/// carries the exporter. A second call installs nothing and exports nothing.
pub fn init(service: &str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(LOG_FILTER));
    let provider = export::provider(service);
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(export::tracer(provider))
            .with_filter(EnvFilter::new(TRACES_FILTER))
    });
    let format = std::env::var("LOG_FORMAT").unwrap_or_default();
    let logs = if format.eq_ignore_ascii_case("json") {
        fmt::layer().json().event_format(json::WithTraceIds::new()).boxed()
    } else {
        fmt::layer()
            .with_target(true)
            .with_ansi(std::io::stdout().is_terminal())
            .boxed()
    };
    let installed = tracing_subscriber::registry()
        .with(traces)
        .with(logs.with_filter(filter))
        .try_init()
        .is_ok();
    if !(format.is_empty() || format.eq_ignore_ascii_case("json") || format.eq_ignore_ascii_case("text")) {
        tracing::warn!(%format, "LOG_FORMAT is neither `json` nor `text`; writing text");
    }
    let provider = provider.filter(|_| installed);
    context::set_exported(provider.is_some());
    Telemetry { provider }
}
