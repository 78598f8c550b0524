//! The W3C Trace Context (`traceparent`, `tracestate`) that requests and Kafka records carry.
//!
//! A request or record is continued by making its span a child of the context it carries, or
//! a batch's span is linked to the contexts of all it holds; what a service writes carries the
//! context of the span it is written in. While traces are not exported, nothing is parsed or
//! built: a context read is handed on as it came.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (HTTP and Kafka) naming the trace and the parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The header with the vendors' trace state that travels along.
pub const TRACESTATE: &str = "tracestate";

static EXPORTED: AtomicBool = AtomicBool::new(false);

pub(super) fn set_exported(exported: bool) {
    EXPORTED.store(exported, Ordering::Relaxed);
}

/// Whether spans are exported: without that, nothing is gained by continuing a context.
pub fn is_exported() -> bool {
    EXPORTED.load(Ordering::Relaxed)
}

/// A trace context as it travels in headers; empty when the carrier had none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The trace id of the `traceparent` (`00-<trace id>-<span id>-<flags>`), when it holds a
    /// valid one: 32 lowercase hex digits, not all zero.
    pub fn trace_id(&self) -> Option<String> {
        let id = self.traceparent.as_deref()?.split('-').nth(1)?;
        let valid = id.len() == 32
            && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && id.bytes().any(|b| b != b'0');
        valid.then(|| id.to_owned())
    }

    /// The context of the current span, to write on what leaves within it.
    pub fn current() -> Self {
        let mut carrier = Self::default();
        TraceContextPropagator::new().inject_context(&Span::current().context(), &mut carrier);
        carrier
    }

    /// What to write on a record or request that leaves now: the current span's context while
    /// traces are exported, else this one as it came.
    pub fn to_send(&self) -> std::borrow::Cow<'_, Self> {
        if is_exported() {
            std::borrow::Cow::Owned(Self::current())
        } else {
            std::borrow::Cow::Borrowed(self)
        }
    }

    /// The span `make` builds, as a child of this context, while traces are exported; a
    /// disabled span (costing nothing) otherwise. Without a valid context here, the span keeps
    /// the parent it would have had.
    pub fn child_span(&self, make: impl FnOnce() -> Span) -> Span {
        if !is_exported() {
            return Span::none();
        }
        let span = make();
        self.parent(&span);
        span
    }

    /// Makes `span`, not entered yet, a child of this context when it is a valid one.
    pub fn parent(&self, span: &Span) {
        if let Some(parent) = self.extract() {
            // Refused only for a span already started or not recorded: it keeps its parent.
            let _ = span.set_parent(parent);
        }
    }

    /// Links `span` to this context when it is a valid one: for a span that handles many
    /// records at once, each with its own trace.
    pub fn link(&self, span: &Span) {
        if let Some(linked) = self.extract() {
            span.add_link(linked.span().span_context().clone());
        }
    }

    /// Ties `span`, the span of a batch not entered yet, to the traces of the records it holds:
    /// a child of the first with a valid context, so the batch shows in that trace, and linked
    /// to every other one (a link to its parent as well would hide the parent in Jaeger). Reads
    /// nothing while traces are not exported.
    pub fn follow_all<'a>(span: &Span, contexts: impl IntoIterator<Item = &'a TraceContext>) {
        if is_exported() {
            Self::tie(span, contexts);
        }
    }

    fn tie<'a>(span: &Span, contexts: impl IntoIterator<Item = &'a TraceContext>) {
        let mut parented = false;
        for context in contexts {
            let Some(extracted) = context.valid() else {
                continue;
            };
            if !parented && span.set_parent(extracted.clone()).is_ok() {
                parented = true;
                continue;
            }
            span.add_link(extracted.span().span_context().clone());
        }
    }

    /// The context named here while traces are exported and it is a valid one.
    fn extract(&self) -> Option<opentelemetry::Context> {
        is_exported().then(|| self.valid()).flatten()
    }

    fn valid(&self) -> Option<opentelemetry::Context> {
        self.traceparent.as_ref()?;
        let context = TraceContextPropagator::new().extract(self);
        context.span().span_context().is_valid().then_some(context)
    }
}

impl Injector for TraceContext {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE => self.tracestate = Some(value).filter(|state| !state.is_empty()),
            _ => {}
        }
    }
}

impl Extractor for TraceContext {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent.as_deref(),
            TRACESTATE => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        [TRACEPARENT, TRACESTATE]
            .into_iter()
            .filter(|key| self.get(key).is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACEPARENT_GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn trace_id(traceparent: &str) -> Option<String> {
        TraceContext {
            traceparent: Some(traceparent.to_owned()),
            tracestate: None,
        }
        .trace_id()
    }

    #[test]
    fn the_trace_id_is_taken_from_a_valid_traceparent_only() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id(&format!("00-{id}-00f067aa0ba902b7-01")).as_deref(), Some(id));
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id(&format!("00-{}-00f067aa0ba902b7-01", id.to_uppercase())), None);
        assert_eq!(trace_id("garbage"), None);
        assert_eq!(TraceContext::default().trace_id(), None);
    }

    #[test]
    fn a_context_passes_through_the_w3c_propagator_unchanged() {
        let given = TraceContext {
            traceparent: Some(TRACEPARENT_GIVEN.to_owned()),
            tracestate: Some("vendor=value".to_owned()),
        };
        let propagator = TraceContextPropagator::new();
        let extracted = propagator.extract(&given);
        assert!(extracted.span().span_context().is_valid());
        let mut carried = TraceContext::default();
        propagator.inject_context(&extracted, &mut carried);
        assert_eq!(carried, given);
    }

    /// Keeps what the spans of a test export.
    #[derive(Debug, Clone, Default)]
    struct Exported(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

    impl opentelemetry_sdk::trace::SpanExporter for Exported {
        async fn export(
            &self,
            batch: Vec<opentelemetry_sdk::trace::SpanData>,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    fn context(trace: u128, span: u64) -> TraceContext {
        TraceContext {
            traceparent: Some(format!("00-{trace:032x}-{span:016x}-01")),
            tracestate: None,
        }
    }

    #[test]
    fn a_batch_is_the_child_of_its_first_traced_record_and_linked_to_the_others() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;

        let exported = Exported::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(exported.clone())
            .build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let untraced = TraceContext::default();
        let broken = TraceContext {
            traceparent: Some("00-garbage".to_owned()),
            tracestate: None,
        };
        let (first, second, third) = (context(1, 11), context(2, 22), context(3, 33));
        tracing::subscriber::with_default(subscriber, || {
            let batch = tracing::info_span!(parent: None, "batch");
            TraceContext::tie(&batch, [&untraced, &broken, &first, &second, &third]);
            batch.in_scope(|| {});
        });
        let spans = exported.0.lock().unwrap();
        assert_eq!(spans.len(), 1);
        let batch = &spans[0];
        assert_eq!(
            batch.span_context.trace_id(),
            opentelemetry::trace::TraceId::from(1u128)
        );
        assert_eq!(batch.parent_span_id, opentelemetry::trace::SpanId::from(11u64));
        let linked: Vec<_> = batch
            .links
            .iter()
            .map(|link| (link.span_context.trace_id(), link.span_context.span_id()))
            .collect();
        assert_eq!(linked, [(2u128.into(), 22u64.into()), (3u128.into(), 33u64.into())]);
    }

    #[test]
    fn without_export_a_context_is_handed_on_as_it_came_and_builds_no_span() {
        let given = TraceContext {
            traceparent: Some("not even a traceparent".to_owned()),
            tracestate: None,
        };
        assert_eq!(*given.to_send(), given);
        assert!(given.child_span(|| tracing::info_span!("never built")).is_none());
        assert_eq!(given.extract().map(|_| ()), None);
    }
}
