//! Counters and gauges in the Prometheus text format, without a metrics framework: each service
//! has a handful of numbers and a scrape endpoint, nothing more.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
enum Metric {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
}

#[derive(Debug)]
struct Entry {
    name: String,
    labels: String,
    help: String,
    metric: Metric,
}

/// The metrics of one process.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl Registry {
    /// Registers a counter; `labels` is a Prometheus label set like `projection="track_user"` or empty.
    pub fn counter(&self, name: &str, labels: &str, help: &str) -> Arc<Counter> {
        let counter = Arc::new(Counter::default());
        self.push(name, labels, help, Metric::Counter(counter.clone()));
        counter
    }

    pub fn gauge(&self, name: &str, labels: &str, help: &str) -> Arc<Gauge> {
        let gauge = Arc::new(Gauge::default());
        self.push(name, labels, help, Metric::Gauge(gauge.clone()));
        gauge
    }

    fn push(&self, name: &str, labels: &str, help: &str, metric: Metric) {
        self.entries.lock().expect("metrics lock").push(Entry {
            name: name.to_owned(),
            labels: labels.to_owned(),
            help: help.to_owned(),
            metric,
        });
    }

    /// The Prometheus text exposition of every registered metric, each family's samples together.
    pub fn render(&self) -> String {
        let entries = self.entries.lock().expect("metrics lock");
        let mut families: Vec<&str> = Vec::new();
        for entry in entries.iter() {
            if !families.contains(&entry.name.as_str()) {
                families.push(&entry.name);
            }
        }
        let mut out = String::new();
        for family in families {
            let mut samples = entries.iter().filter(|e| e.name == family).peekable();
            if let Some(first) = samples.peek() {
                let kind = match first.metric {
                    Metric::Counter(_) => "counter",
                    Metric::Gauge(_) => "gauge",
                };
                let _ = writeln!(out, "# HELP {family} {}\n# TYPE {family} {kind}", first.help);
            }
            for entry in samples {
                let value = match &entry.metric {
                    Metric::Counter(c) => c.get().to_string(),
                    Metric::Gauge(g) => g.get().to_string(),
                };
                if entry.labels.is_empty() {
                    let _ = writeln!(out, "{family} {value}");
                } else {
                    let _ = writeln!(out, "{family}{{{}}} {value}", entry.labels);
                }
            }
        }
        out
    }
}

/// Declares a service's metrics once: the struct of their handles and its `register`, which adds
/// each to a [`Registry`]. Each field is `name: Counter(metric, labels, help)` (or `Gauge`), the
/// arguments those of [`Registry::counter`].
#[macro_export]
macro_rules! metric_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $set:ident {
            $(
                $(#[$field_meta:meta])*
                $field_vis:vis $field:ident: $kind:ident($metric:literal, $labels:literal, $help:literal $(,)?),
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis struct $set {
            $( $(#[$field_meta])* $field_vis $field: ::std::sync::Arc<$crate::metrics::$kind>, )+
        }

        impl $set {
            $vis fn register(registry: &$crate::metrics::Registry) -> Self {
                Self {
                    $( $field: $crate::metric_set!(@add registry, $kind, $metric, $labels, $help), )+
                }
            }
        }
    };
    (@add $registry:ident, Counter, $($args:expr),+) => {
        $registry.counter($($args),+)
    };
    (@add $registry:ident, Gauge, $($args:expr),+) => {
        $registry.gauge($($args),+)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_family_once_with_its_samples() {
        let registry = Registry::default();
        registry
            .counter("events_total", "projection=\"a\"", "Events applied")
            .add(3);
        registry.gauge("lag", "", "Lag").set(-2);
        registry
            .counter("events_total", "projection=\"b\"", "Events applied")
            .add(1);
        assert_eq!(
            registry.render(),
            "# HELP events_total Events applied\n# TYPE events_total counter\n\
             events_total{projection=\"a\"} 3\nevents_total{projection=\"b\"} 1\n\
             # HELP lag Lag\n# TYPE lag gauge\nlag -2\n"
        );
    }

    metric_set! {
        /// A set of two, one labelled.
        struct Declared {
            done: Counter("done_total", "step=\"last\"", "Steps done"),
            depth: Gauge("depth", "", "Depth"),
        }
    }

    #[test]
    fn a_declared_set_registers_each_metric_with_its_labels() {
        let registry = Registry::default();
        let declared = Declared::register(&registry);
        declared.done.add(2);
        declared.depth.set(5);
        assert_eq!(
            registry.render(),
            "# HELP done_total Steps done\n# TYPE done_total counter\ndone_total{step=\"last\"} 2\n\
             # HELP depth Depth\n# TYPE depth gauge\ndepth 5\n"
        );
    }
}
