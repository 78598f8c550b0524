//! A service's metrics through the `metrics` facade, kept by a Prometheus recorder of its own
//! and rendered by the service's `/metrics` route.
//!
//! The recorder is not installed globally: tests run several services (and several instances of
//! one) in a process, and each must report its own figures. So a service holds a [`Registry`]
//! and registers its handles there; the facade's `counter!` macros, which go to the global
//! recorder, are not used.

use std::future::Future;
use std::time::{Duration, Instant};

use ::metrics::{Key, KeyName, Label, Metadata, Recorder, SharedString};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{from_fn_with_state, Next};
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

pub use ::metrics::{Counter, Gauge, Histogram};

/// Buckets of every `_seconds` histogram: from half a millisecond (a commit on an idle machine)
/// to half a minute (a wait at its timeout).
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of every `_size` histogram (records in a batch), up to the largest batch configurable.
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];

/// How often recorded samples are folded into their buckets when nobody scrapes: without it a
/// process never scraped would keep every sample.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The latency of every HTTP request, by method, route and status.
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
/// The route label of a request no route matched (its raw path would make a series per URL).
const UNMATCHED: &str = "unmatched";

/// The metrics of one service instance.
#[derive(Debug, Clone)]
pub struct Registry {
    recorder: std::sync::Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Default for Registry {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
            .and_then(|builder| builder.set_buckets_for_metric(Matcher::Suffix("_size".to_owned()), SIZE_BUCKETS))
            .expect("bucket lists are not empty")
            .build_recorder();
        let registry = Self {
            handle: recorder.handle(),
            recorder: std::sync::Arc::new(recorder),
        };
        registry.describe_histogram(
            HTTP_REQUEST_DURATION,
            "HTTP requests by method, matched route and status, and how long they took to answer",
        );
        registry
    }
}

/// The label set of one series: names and values.
pub type Labels<'a> = &'a [(&'static str, String)];

impl Registry {
    /// A counter named `name` with `labels`; the same name and labels give the same counter.
    pub fn counter(&self, name: &'static str, labels: Labels<'_>, help: &'static str) -> Counter {
        self.recorder
            .describe_counter(KeyName::from(name), None, SharedString::from(help));
        self.recorder.register_counter(&key(name, labels), &metadata())
    }

    /// A value that goes up and down.
    pub fn gauge(&self, name: &'static str, labels: Labels<'_>, help: &'static str) -> Gauge {
        self.recorder
            .describe_gauge(KeyName::from(name), None, SharedString::from(help));
        self.recorder.register_gauge(&key(name, labels), &metadata())
    }

    /// A distribution, in buckets when `name` ends in `_seconds` or `_size`.
    pub fn histogram(&self, name: &'static str, labels: Labels<'_>, help: &'static str) -> Histogram {
        self.describe_histogram(name, help);
        self.series(name, labels)
    }

    fn describe_histogram(&self, name: &'static str, help: &'static str) {
        self.recorder
            .describe_histogram(KeyName::from(name), None, SharedString::from(help));
    }

    /// The histogram `name` with `labels`, already described: for series whose labels are known
    /// only when they are recorded.
    fn series(&self, name: &'static str, labels: Labels<'_>) -> Histogram {
        self.recorder.register_histogram(&key(name, labels), &metadata())
    }

    /// The Prometheus text exposition of every metric registered.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Runs `work` (a service's serving) while folding recorded samples into their buckets every
    /// few seconds.
    pub async fn kept_up_while<T>(&self, work: impl Future<Output = T>) -> T {
        let mut every = tokio::time::interval(UPKEEP_INTERVAL);
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = every.tick() => self.handle.run_upkeep(),
            }
        }
    }

    /// The handler of `GET /metrics`: the text exposition, whatever the router's state.
    pub fn scrape(&self) -> impl FnOnce() -> std::future::Ready<String> + Clone + Send + Sync + 'static {
        let registry = self.clone();
        move || std::future::ready(registry.render())
    }

    /// `router` with every request it answers timed into [`HTTP_REQUEST_DURATION`]. Apply it
    /// last, so that answers of the layers around the routes (rate limits, load shedding) count.
    pub fn time_requests(&self, router: axum::Router) -> axum::Router {
        router.layer(from_fn_with_state(self.clone(), time_request))
    }
}

fn key(name: &'static str, labels: Labels<'_>) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(label, value)| Label::new(*label, value.clone()))
        .collect();
    Key::from_parts(name, labels)
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), ::metrics::Level::INFO, None)
}

async fn time_request(State(registry): State<Registry>, request: Request, next: Next) -> Response {
    // Routes are layered one by one, so the route is matched before this runs.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method()).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    registry
        .series(
            HTTP_REQUEST_DURATION,
            &[
                ("method", method),
                ("route", route),
                ("status", response.status().as_u16().to_string()),
            ],
        )
        .record(started.elapsed());
    response
}

/// The method label: a client may send any token as a method, and each would be a series.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 7] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", |known| known.as_str())
}

/// Declares a service's metrics once: the struct of their handles and its `register`, which adds
/// each to a [`Registry`]. Each field is `name: Counter(metric, help)` (or `Gauge`, `Histogram`).
#[macro_export]
macro_rules! metric_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $set:ident {
            $(
                $(#[$field_meta:meta])*
                $field_vis:vis $field:ident: $kind:ident($metric:literal, $help:literal $(,)?),
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis struct $set {
            $( $(#[$field_meta])* $field_vis $field: $crate::metrics::$kind, )+
        }

        impl $set {
            $vis fn register(registry: &$crate::metrics::Registry) -> Self {
                Self {
                    $( $field: $crate::metric_set!(@add registry, $kind, $metric, $help), )+
                }
            }
        }
    };
    (@add $registry:ident, Counter, $metric:literal, $help:literal) => {
        $registry.counter($metric, &[], $help)
    };
    (@add $registry:ident, Gauge, $metric:literal, $help:literal) => {
        $registry.gauge($metric, &[], $help)
    };
    (@add $registry:ident, Histogram, $metric:literal, $help:literal) => {
        $registry.histogram($metric, &[], $help)
    };
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// Asserts that each of `lines` is a whole line of `text`, showing `text` when one is not.
    fn assert_lines(text: &str, lines: &[&str]) {
        for line in lines {
            assert!(text.lines().any(|l| l == *line), "no line {line:?} in:\n{text}");
        }
    }

    #[test]
    fn renders_counters_and_gauges_with_their_labels_and_help() {
        let registry = Registry::default();
        registry
            .counter("events_total", &[("projection", "a".into())], "Events applied")
            .increment(3);
        registry.gauge("lag", &[], "Lag").set(-2.0);
        assert_lines(
            &registry.render(),
            &[
                "# HELP events_total Events applied",
                "# TYPE events_total counter",
                "events_total{projection=\"a\"} 3",
                "lag -2",
            ],
        );
    }

    #[test]
    fn seconds_and_sizes_are_histograms_in_their_buckets() {
        let registry = Registry::default();
        registry
            .histogram("wait_seconds", &[], "Wait")
            .record(Duration::from_millis(3));
        registry.histogram("batch_size", &[], "Batch").record(7.0);
        assert_lines(
            &registry.render(),
            &[
                "# TYPE wait_seconds histogram",
                "wait_seconds_bucket{le=\"0.0025\"} 0",
                "wait_seconds_bucket{le=\"0.005\"} 1",
                "wait_seconds_count 1",
                "batch_size_bucket{le=\"5\"} 0",
                "batch_size_bucket{le=\"10\"} 1",
            ],
        );
    }

    #[test]
    fn two_registries_keep_their_own_figures() {
        let (one, other) = (Registry::default(), Registry::default());
        one.counter("done_total", &[], "Done").increment(2);
        other.counter("done_total", &[], "Done").increment(5);
        assert_lines(&one.render(), &["done_total 2"]);
        assert_lines(&other.render(), &["done_total 5"]);
    }

    metric_set! {
        /// A set of three.
        struct Declared {
            done: Counter("done_total", "Steps done"),
            depth: Gauge("depth", "Depth"),
            took: Histogram("step_seconds", "Step time"),
        }
    }

    #[test]
    fn a_declared_set_registers_each_metric() {
        let registry = Registry::default();
        let declared = Declared::register(&registry);
        declared.done.increment(2);
        declared.depth.set(5.0);
        declared.took.record(0.2);
        assert_lines(&registry.render(), &["done_total 2", "depth 5", "step_seconds_count 1"]);
    }

    #[tokio::test]
    async fn requests_are_timed_by_matched_route_and_status() {
        let registry = Registry::default();
        let router = registry.time_requests(axum::Router::new().route("/orders/{id}", get(|| async { "one" })));
        for (method, uri) in [
            ("GET", "/orders/1"),
            ("GET", "/orders/2"),
            ("GET", "/nowhere"),
            ("BREW", "/orders/3"),
        ] {
            let request = axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap();
            router.clone().oneshot(request).await.unwrap();
        }
        let count = |labels: &str, requests: u64| format!("{HTTP_REQUEST_DURATION}_count{{{labels}}} {requests}");
        assert_lines(
            &registry.render(),
            &[
                &count("method=\"GET\",route=\"/orders/{id}\",status=\"200\"", 2),
                &count("method=\"GET\",route=\"unmatched\",status=\"404\"", 1),
                &count("method=\"other\",route=\"/orders/{id}\",status=\"405\"", 1),
            ],
        );
    }
}
