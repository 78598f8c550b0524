//! Traces end to end: command-api, the projectors and query-api as processes exporting to a
//! real Jaeger (command-api over OTLP/gRPC, the others over OTLP/HTTP). One trace follows an
//! order from the client's request through the command and event records to the query that
//! waited for it, and a purchase through the reactor and the gateway to its verdict.

mod jaeger;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use service_kit::testing::{bearer_all, example_purchase, free_port, wait_until, ChildService, Isolation};
use uuid::Uuid;

use jaeger::{Jaeger, Span, Trace};

/// The services of one test, as processes, exporting their spans to one Jaeger.
struct TracedStack {
    jaeger: Jaeger,
    isolation: Isolation,
    client: reqwest::Client,
    commands: String,
    services: Vec<ChildService>,
}

impl TracedStack {
    async fn start(name: &str) -> Self {
        let jaeger = Jaeger::start(name).await;
        let isolation = Isolation::new();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, bearer_all().parse().unwrap());
        let client = reqwest::Client::builder().default_headers(headers).build().unwrap();
        let mut stack = Self {
            jaeger,
            isolation,
            client,
            commands: String::new(),
            services: Vec::new(),
        };
        // The command side creates the topics the others read, so it is ready first.
        stack.commands = stack.spawn("command-api", &[], "grpc").await;
        stack
    }

    /// Starts `binary args...` exporting over `protocol`; returns its base URL once it is ready.
    async fn spawn(&mut self, binary: &str, args: &[&str], protocol: &str) -> String {
        self.spawn_logged(binary, args, protocol, None).await
    }

    /// [`TracedStack::spawn`], logging JSON lines to `log` when given.
    async fn spawn_logged(&mut self, binary: &str, args: &[&str], protocol: &str, log: Option<&PathBuf>) -> String {
        let port = free_port();
        let endpoint = match protocol {
            "grpc" => &self.jaeger.otlp_grpc,
            _ => &self.jaeger.otlp_http,
        };
        let mut env = self.isolation.env();
        env.extend([
            ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
            ("PROJECTOR_BATCH_LINGER", "5ms".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
        ]);
        // A logged service writes the request span's closing line (at debug) inside it; the
        // others log warnings only, and must export every span all the same.
        let logs = if log.is_some() { "info,tower_http=debug" } else { "warn" };
        env.push(("RUST_LOG", logs.to_owned()));
        let path = system_tests::release_dir().join(binary);
        self.services.push(match log {
            Some(log) => ChildService::spawn_logged(&path, args, &env, log),
            None => ChildService::spawn(&path, args, &env),
        });
        let base = format!("http://127.0.0.1:{port}");
        wait_until(&format!("{binary} to be ready"), Duration::from_secs(60), || async {
            let response = self.client.get(format!("{base}/ready")).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
        base
    }
}

impl TracedStack {
    /// `POST`s `body` to `path` of command-api as a caller in the trace of `traceparent`.
    async fn command(&self, path: &str, traceparent: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.commands))
            .header("traceparent", traceparent)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

/// A W3C `traceparent` of a fresh trace, as a caller that traces would send: its trace id and
/// the caller's span id.
fn caller_context() -> (String, String, String) {
    let trace_id = Uuid::new_v4().simple().to_string();
    let span_id = Uuid::new_v4().simple().to_string()[..16].to_owned();
    let traceparent = format!("00-{trace_id}-{span_id}-01");
    (traceparent, trace_id, span_id)
}

/// The spans a client's command goes through, each the child of the one before: the request
/// under the caller's span, the route's `handler`, the `submit` that writes the command, and
/// the decider's `decide_command`. Returns the last two.
fn command_path<'a>(trace: &'a Trace, caller_span: &str, handler: &str) -> (&'a Span, &'a Span) {
    let request = trace.child("command-api", "request", caller_span);
    let handler = trace.child("command-api", handler, &request.id);
    let submit = trace.child("command-api", "submit", &handler.id);
    (submit, trace.child("command-api", "decide_command", &submit.id))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_follows_an_order_from_the_request_to_the_query_that_waited_for_it() {
    let mut stack = TracedStack::start("order").await;
    stack.spawn("projectors", &["run"], "http/protobuf").await;
    let query_log = std::env::temp_dir().join(format!("orderstream-{}-query-api.log", stack.isolation.id));
    let queries = stack
        .spawn_logged("query-api", &[], "http/protobuf", Some(&query_log))
        .await;

    let (traceparent, trace_id, caller_span) = caller_context();
    let placed = stack
        .command(
            "/api/v1/orders",
            &traceparent,
            json!({"name": "John Doe", "note": "Traced order"}),
        )
        .await;
    assert_eq!(placed.status(), 201);
    let placed: Value = placed.json().await.unwrap();
    let order_id = placed["order_id"].as_str().expect("order placed");
    // The same caller reads it back, from another span of its trace.
    let reader_span = Uuid::new_v4().simple().to_string()[..16].to_owned();
    let read = stack
        .client
        .get(format!("{queries}/api/v1/orders/{order_id}"))
        .header("traceparent", format!("00-{trace_id}-{reader_span}-01"))
        .header("X-Consistency-Token", placed["consistency_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);

    let trace = stack
        .jaeger
        // A span is exported when it ends, so the trace is whole once the outermost span of
        // each chain asserted below is there, not only the innermost.
        .trace_when(&trace_id, |trace: &Trace| {
            trace.has("command-api", "decide_command")
                && trace.has("command-api", "request")
                && trace.has("command-api", "decide")
                && trace.has("projectors", "project_batch")
                && trace.has("query-api", "wait")
                && trace.has("query-api", "request")
        })
        .await;
    let (submit, decided) = command_path(&trace, &caller_span, "place_order");
    let batch = trace.child("command-api", "decide", &submit.id);
    trace.child("command-api", "transaction", &batch.id);
    let projected = trace.named("projectors", "project_batch");
    assert!(
        !projected.is_empty() && projected.iter().all(|span| span.parent.as_ref() == Some(&decided.id)),
        "every projection's batch continues the event's context: {projected:#?}"
    );
    let query = trace.child("query-api", "request", &reader_span);
    let by_id = trace.child("query-api", "by_id", &query.id);
    trace.child("query-api", "wait", &by_id.id);

    let logs = std::fs::read_to_string(&query_log).expect("query-api's log");
    let _ = std::fs::remove_file(&query_log);
    assert!(
        logs.lines()
            .any(|line| line.starts_with(&format!("{{\"trace_id\":\"{trace_id}\",\"span_id\":\""))),
        "a JSON log line of the query names its trace: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_follows_a_purchase_through_the_reactor_and_the_gateway_to_its_verdict() {
    let stack = TracedStack::start("purchase").await;
    let (traceparent, trace_id, caller_span) = caller_context();
    let accepted = stack
        .command("/api/v1/purchases", &traceparent, example_purchase(Uuid::new_v4()))
        .await;
    assert_eq!(accepted.status(), 202);

    let trace = stack
        .jaeger
        .trace_when(&trace_id, |trace: &Trace| {
            trace.named("command-api", "decide_command").len() == 2
                && trace.has("command-api", "charge_and_record")
                && trace.has("command-api", "request")
                && trace.has("command-api", "react")
        })
        .await;
    let (_, requested) = command_path(&trace, &caller_span, "request_purchase");
    let reaction = trace.child("command-api", "react", &requested.id);
    trace.child("command-api", "charge_and_record", &reaction.id);
    trace.child("command-api", "decide_command", &reaction.id);
}
