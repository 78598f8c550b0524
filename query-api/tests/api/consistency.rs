//! Consistency tokens against a real events log: a token at the log's end is waited for, one
//! past it is refused at once instead of being waited out and retried forever.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::FutureProducer;
use service_kit::kafka::watch::log_ends;
use service_kit::testing::{bearer_staff, order_placed, placed_envelope, produce};
use service_kit::ConsistencyToken;

use crate::helpers::{get, spawn_api_waiting};

#[tokio::test]
async fn a_token_at_the_log_s_end_is_waited_for_and_one_past_it_is_refused() {
    // Long enough that a refusal comes from asking the log, not from the wait running out.
    let (api, _pool, isolation) = spawn_api_waiting(Duration::from_secs(3)).await;
    isolation.topics.ensure(&isolation.kafka).await.expect("topics");
    let producer: FutureProducer = isolation.kafka.producer_config().create().expect("producer");
    let events = (0..3).map(|i| placed_envelope(order_placed(&format!("customer {i}"), Utc::now())));
    produce(&producer, &isolation.topics.events, events).await;
    let client: BaseConsumer = isolation.kafka.client_config().create().expect("client");
    let ends = log_ends(&client, &isolation.topics.events).expect("log ends");
    let (&written, &end) = ends.iter().find(|(_, &end)| end > 0).expect("a partition with records");
    let token = |positions: &[(i32, i64)]| {
        let token = positions
            .iter()
            .fold(ConsistencyToken::default(), |token, &(partition, offset)| {
                token.merge(&ConsistencyToken::at(partition, offset))
            });
        format!("/api/v1/track-users/customer%200?consistency_token={}", token.encode())
    };
    let staff = bearer_staff();

    let past = [(written, end + 1)];
    let (status, body) = get(&api, &token(&past), &staff).await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &"consistency_token".into()),
        "{body}"
    );
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("offset {} of partition {written}", end + 1)),
        "{body}"
    );

    // Every partition at its end: what the last write of each handed out. Nothing projects
    // here, so the wait runs out.
    let at_end: Vec<(i32, i64)> = ends.into_iter().collect();
    let (status, body) = get(&api, &token(&at_end), &staff).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("not-yet-consistent"),
        "{body}"
    );
}
