//! The OTLP trace exporter, configured by the standard OpenTelemetry variables:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): where to send;
//!   unset, nothing is exported and no span is built for it;
//! - `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (the default, port 4318) or `grpc` (4317);
//! - `OTEL_SERVICE_NAME`: the service's name in the traces (default: the binary's);
//! - `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`: which traces are kept (default
//!   `parentbased_always_on`: every trace, and a caller's decision followed).
//!
//! Spans leave in batches from a task on the service's runtime, never on the request's path.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

const ENDPOINTS: [&str; 2] = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"];

/// The tracer provider exporting to the configured endpoint, or `None` without one (or with
/// one the exporter refuses, which is told on stderr: logging is not set up yet).
pub(super) fn provider(service: &str) -> Option<SdkTracerProvider> {
    if !ENDPOINTS
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()))
    {
        return None;
    }
    let exporter = match SpanExporter::builder().build() {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("traces are not exported: {err}");
            return None;
        }
    };
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned());
    Some(
        SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter, Tokio).build())
            .with_resource(Resource::builder().with_service_name(name).build())
            .build(),
    )
}

pub(super) fn tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer("orderstream")
}
