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

/// The samplers the OpenTelemetry SDK knows by name. It takes any other for the default, and a
/// ratio that is not one for 1.0, with a warning this build does not carry (its internal logs
/// are left out), so they are named here.
const SAMPLERS: [&str; 6] = [
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];

/// The protocols this build exports with.
const PROTOCOLS: [&str; 2] = ["http/protobuf", "grpc"];

/// What is wrong with the sampler, its argument and the protocol, each a line for stderr.
fn unsupported(sampler: Option<&str>, ratio: Option<&str>, protocol: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    match sampler {
        Some(sampler) if !SAMPLERS.contains(&sampler) => problems.push(format!(
            "OTEL_TRACES_SAMPLER `{sampler}` is not one of {}: the default, parentbased_always_on, is used",
            SAMPLERS.join(", ")
        )),
        Some(sampler) if sampler.ends_with("traceidratio") => {
            let valid = ratio
                .and_then(|r| r.parse::<f64>().ok())
                .is_some_and(|r| (0.0..=1.0).contains(&r));
            if !valid {
                problems.push(format!(
                    "OTEL_TRACES_SAMPLER_ARG `{}` is not a ratio from 0 to 1: every trace is kept",
                    ratio.unwrap_or_default()
                ));
            }
        }
        _ => {}
    }
    if let Some(protocol) = protocol.filter(|p| !PROTOCOLS.contains(p)) {
        problems.push(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL `{protocol}` is not supported: {} only",
            PROTOCOLS.join(" or ")
        ));
    }
    problems
}

/// The tracer provider exporting to the configured endpoint, or `None` without one (or with
/// one the exporter refuses, which is told on stderr: logging is not set up yet).
pub(super) fn provider(service: &str) -> Option<SdkTracerProvider> {
    if !ENDPOINTS
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()))
    {
        return None;
    }
    let variable = |name| std::env::var(name).ok();
    let (sampler, ratio, protocol) = (
        variable("OTEL_TRACES_SAMPLER"),
        variable("OTEL_TRACES_SAMPLER_ARG"),
        variable("OTEL_EXPORTER_OTLP_PROTOCOL"),
    );
    for problem in unsupported(sampler.as_deref(), ratio.as_deref(), protocol.as_deref()) {
        eprintln!("{problem}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sampler_or_protocol_the_sdk_would_pass_over_is_named() {
        assert!(unsupported(None, None, None).is_empty());
        assert!(unsupported(Some("parentbased_traceidratio"), Some("0.1"), Some("grpc")).is_empty());
        assert!(unsupported(Some("always_on"), None, Some("http/protobuf")).is_empty());
        let problems = unsupported(Some("ratio"), None, Some("http/json"));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("OTEL_TRACES_SAMPLER `ratio` is not one of"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("OTEL_EXPORTER_OTLP_PROTOCOL `http/json`"),
            "{problems:?}"
        );
        for ratio in [None, Some("10%"), Some("1.5")] {
            let problems = unsupported(Some("traceidratio"), ratio, None);
            assert_eq!(problems.len(), 1, "{ratio:?}: {problems:?}");
        }
    }
}
