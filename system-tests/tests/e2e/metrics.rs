//! What operators watch: every service's `/metrics` after an order and a read that waits on its
//! consistency token, and the Prometheus configuration, rules and Grafana dashboard of
//! `deploy/`, checked with promtool and against the metrics the services export.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use service_kit::server::App;
use service_kit::testing::{succeeded, wait_until};

use crate::helpers::spawn_stack;

/// The series every queried metric name starts with; recording rules' names (with `:`) are not
/// exported by a service.
const PREFIXES: [&str; 3] = ["orderstream_", "http_", "notifier_"];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

async fn scrape(client: &reqwest::Client, base: &str) -> String {
    let response = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The value of `series` (its name and labels as rendered) in the exposition `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Asserts that `series` has a positive value in `text`.
fn assert_counted(text: &str, series: &str) {
    let value = sample(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert!(value > 0.0, "{series} is {value}");
}

/// The metric names of every sample in the exposition `text`.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The names of the services' metrics a PromQL expression reads.
fn queried_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| PREFIXES.iter().any(|prefix| token.starts_with(prefix)) && !token.contains(':'))
        .map(str::to_owned)
        .collect()
}

fn run_promtool(args: &[&str]) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(deploy_dir().join("prometheus"))
        .output()
        .expect("promtool runs (deploy/local/infra installs it)");
    succeeded(&format!("promtool {args:?}"), &output);
}

#[test]
fn the_prometheus_configuration_and_rules_pass_promtool() {
    run_promtool(&["check", "config", "prometheus.yml"]);
    run_promtool(&["check", "rules", "rules.yml"]);
    run_promtool(&["test", "rules", "rules.test.yml"]);
}

/// Every PromQL expression of the dashboard's panels.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(deploy_dir().join("grafana/orderstream.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let queries: Vec<String> = panels
        .iter()
        .filter_map(|panel| panel["targets"].as_array())
        .flatten()
        .map(|target| target["expr"].as_str().expect("a query").to_owned())
        .collect();
    assert!(queries.len() > 10, "{queries:?}");
    queries
}

/// The rules file without its comments: every metric name in it is one a rule reads.
fn rules_text() -> String {
    let text = std::fs::read_to_string(deploy_dir().join("prometheus/rules.yml")).unwrap();
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_service_reports_histograms_of_what_it_did() {
    let stack = spawn_stack().await;
    let notifier_config: notifier::Config = stack.isolation.settings(&[("LISTEN_ADDR", "127.0.0.1:0")]);
    let notifier = notifier::Application::build(notifier_config).await.unwrap();
    let notifications = format!("http://127.0.0.1:{}", notifier.port());
    let notifier = tokio::spawn(notifier.run_until(std::future::pending()));

    let placed = stack.place(json!({"name": "Ada Metrics"})).await;
    let order_id = placed["order_id"].as_str().unwrap();
    let token = placed["consistency_token"].as_str().unwrap();
    let read = stack
        .client
        .get(format!("{}/api/v1/orders/{order_id}", stack.queries))
        .header("X-Consistency-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);

    let commands = scrape(&stack.client, &stack.commands).await;
    assert_counted(
        &commands,
        "http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/orders\",status=\"201\"}",
    );
    assert_counted(
        &commands,
        "http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/orders\",status=\"201\",le=\"+Inf\"}",
    );
    for counted in [
        "orderstream_decider_batch_size_count",
        "orderstream_decider_commit_seconds_count",
        "orderstream_edge_outcome_wait_seconds_count",
        "orderstream_decider_ready",
    ] {
        assert_counted(&commands, counted);
    }

    let queries = scrape(&stack.client, &stack.queries).await;
    assert_counted(
        &queries,
        "http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/orders/{order_id}\",status=\"200\"}",
    );
    assert_counted(
        &queries,
        "orderstream_query_consistency_wait_seconds_count{projection=\"order_status\",outcome=\"reached\"}",
    );

    let projections = scrape(&stack.client, &stack.projections).await;
    for counted in [
        "orderstream_projection_batch_size_count{projection=\"order_status\"}",
        "orderstream_projection_batch_seconds_count{projection=\"order_status\"}",
        "http_request_duration_seconds_count{method=\"GET\",route=\"/ready\",status=\"200\"}",
    ] {
        assert_counted(&projections, counted);
    }
    // The lag is reported once the heads were asked for, within seconds of the first batch.
    let projections = wait_until("the projections' lag on /metrics", Duration::from_secs(30), || async {
        let text = scrape(&stack.client, &stack.projections).await;
        text.lines()
            .any(|line| line.starts_with("orderstream_projection_lag_events{projection=\"order_status\",partition="))
            .then_some(text)
    })
    .await;

    wait_until(
        "the notifier to read the order's event",
        Duration::from_secs(30),
        || async {
            let text = scrape(&stack.client, &notifications).await;
            (sample(&text, "notifier_events_total")? > 0.0).then_some(())
        },
    )
    .await;
    // A scrape is timed once answered: the next one shows the earlier ones.
    let notified = scrape(&stack.client, &notifications).await;
    assert_counted(
        &notified,
        "http_request_duration_seconds_count{method=\"GET\",route=\"/metrics\",status=\"200\"}",
    );
    assert!(
        notified.contains("# TYPE notifier_attempt_seconds histogram"),
        "{notified}"
    );

    // What the dashboard and the rules read is what the services export (the rebuild's
    // progress comes from `projectors rebuild`, a process of its own).
    let mut exported: BTreeSet<String> = [&commands, &queries, &projections, &notified]
        .into_iter()
        .flat_map(|text| sample_names(text))
        .collect();
    exported.extend(projectors::rebuild::PROGRESS_METRICS.map(str::to_owned));
    let rules = rules_text();
    assert!(queried_names(&rules).len() >= 6, "{rules}");
    for expr in dashboard_queries().iter().chain([&rules]) {
        let unknown: Vec<String> = queried_names(expr).difference(&exported).cloned().collect();
        assert!(unknown.is_empty(), "{expr} reads {unknown:?}, which no service exports");
    }
    notifier.abort();
}
