//! The notifier's benchmark, against the real broker and database: webhook deliveries per
//! second end to end (events written to the events topic, fanned out into delivery rows, leased,
//! signed and posted to a local receiver, which answers 200 at once), beside the raw rate of the
//! same HTTP client posting bodies of the same size straight to that receiver, with as many
//! requests in flight as the notifier may have to one webhook, in the same run.
//!
//! `BENCH_WEBHOOK_EVENTS` events (default 5000); `BENCH_WEBHOOK_IN_FLIGHT` requests in flight to
//! the one webhook (default 4, the notifier's default share per webhook).
//! Run with `cargo bench -p notifier --bench deliveries`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use domain::order::{Event as OrderEvent, OrderPlaced};
use domain::Event;
use futures::StreamExt as _;
use notifier::ssrf::Guard;
use notifier::{dispatch, Application, Config};
use rdkafka::producer::FutureProducer;
use service_kit::kafka::Envelope;
use service_kit::server::App;
use service_kit::testing::{bearer_user, order_placed, produce, wait_until, Isolation};
use uuid::Uuid;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let events = setting("BENCH_WEBHOOK_EVENTS", 5000);
    let in_flight = setting("BENCH_WEBHOOK_IN_FLIGHT", 4);

    let received = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}/hook", listener.local_addr().expect("bound"));
    let router = Router::new().route("/hook", post(receive)).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let isolation = Isolation::new();
    isolation.topics.ensure(&isolation.kafka).await.expect("topics");
    let per_webhook = in_flight.to_string();
    let config: Config = isolation.settings(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("WEBHOOK_MAX_IN_FLIGHT_PER_WEBHOOK", &per_webhook),
    ]);
    let timeout = config.webhooks.webhook_timeout;
    let app = Application::build(config).await.expect("notifier builds");
    let api = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));

    // Raw: the notifier's own HTTP client, posting straight to the receiver.
    let client = dispatch::http_client(timeout, Guard { allow_private: true }).expect("client");
    let sample = sample_body();
    let started = Instant::now();
    futures::stream::iter(0..events)
        .map(|i| {
            client
                .post(&url)
                .header("webhook-id", format!("msg_raw_{i}"))
                .header("content-type", "application/json")
                .body(sample.clone())
                .send()
        })
        .buffer_unordered(in_flight)
        .for_each(|sent| async move {
            assert!(sent.expect("posted").status().is_success());
        })
        .await;
    let raw = events as f64 / started.elapsed().as_secs_f64();

    let user = Uuid::new_v4();
    let registered: serde_json::Value = reqwest::Client::new()
        .post(format!("{api}/api/v1/webhooks"))
        .header("authorization", bearer_user(user))
        .json(&serde_json::json!({"url": url, "events": ["order.placed"]}))
        .send()
        .await
        .expect("registered")
        .json()
        .await
        .expect("JSON");
    assert!(registered["webhook_id"].is_string(), "{registered}");

    let producer: FutureProducer = isolation.kafka.producer_config().create().expect("producer");
    let before = received.load(Ordering::Relaxed);
    let started = Instant::now();
    produce(
        &producer,
        &isolation.topics.events,
        (0..events).map(|_| envelope(placed(user))),
    )
    .await;
    let written = started.elapsed();
    wait_until("every delivery at the receiver", Duration::from_secs(600), || {
        let done = received.load(Ordering::Relaxed) >= before + events;
        async move { done.then_some(()) }
    })
    .await;
    let elapsed = started.elapsed();
    let delivered = events as f64 / elapsed.as_secs_f64();

    println!("webhook deliveries, {events} events, {in_flight} in flight to the one webhook");
    println!("  raw HTTP posts (same client, same receiver): {raw:>9.0} /s");
    println!(
        "  notifier end to end:                          {delivered:>9.0} /s  ({:.2} of raw; events written in {:.2} s, all delivered after {:.2} s)",
        delivered / raw,
        written.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}

async fn receive(State(received): State<Arc<AtomicUsize>>) -> &'static str {
    received.fetch_add(1, Ordering::Relaxed);
    "ok"
}

fn placed(user: Uuid) -> OrderPlaced {
    OrderPlaced {
        user_id: Some(user),
        ..order_placed("Bench Customer", Utc::now())
    }
}

fn envelope(placed: OrderPlaced) -> Envelope<Event> {
    Envelope {
        id: Uuid::new_v4(),
        time: placed.placed_at,
        sequence: Some(1),
        causation_id: Some(Uuid::new_v4()),
        correlation_id: Uuid::new_v4(),
        trace: Default::default(),
        message: Event::Order(OrderEvent::OrderPlaced(placed)),
    }
}

/// A body as large as the notifier's for an order placed.
fn sample_body() -> String {
    let placed = placed(Uuid::new_v4());
    let notification =
        notifier::notification::Notification::of(&Event::Order(OrderEvent::OrderPlaced(placed))).expect("told");
    serde_json::json!({"type": notification.event_type, "timestamp": notification.occurred_at, "data": notification.data})
        .to_string()
}
