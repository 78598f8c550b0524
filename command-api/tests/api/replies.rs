//! Verdicts go back to the edge that waits: each edge reads only its own reply partition of the
//! outcomes topic, and the decider writes each verdict where the command asked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use command_api::reply::REPLY_PARTITION_HEADER;
use rdkafka::Message;
use serde_json::json;
use service_kit::testing::Isolation;

use crate::helpers::{committed_records, header, metric, spawn_app_with, TestApp};

/// A command-api edge of `isolation` with its own instance id (and so its own decider
/// transactional id and reply partition), once ready.
async fn edge(isolation: &Isolation, instance: &str) -> TestApp {
    let config = isolation.settings(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        // Generous: a rebalance moving partitions between the two, on a machine running every
        // other test beside them, can hold a verdict back for many seconds.
        ("OUTCOME_TIMEOUT", "30s"),
        ("DECIDER_INSTANCE_ID", instance),
    ]);
    let app = spawn_app_with(isolation.clone(), config).await;
    app.wait_ready().await;
    app
}

async fn reply_partition(app: &TestApp) -> u64 {
    metric(&app.client, &app.address, "orderstream_edge_reply_partition").await
}

async fn verdicts_read(app: &TestApp) -> u64 {
    metric(&app.client, &app.address, "orderstream_edge_verdicts_total").await
}

async fn place(app: &TestApp, name: &str) -> u16 {
    app.place(&json!({ "name": name }), None).await.status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_edge_gets_its_own_verdicts_and_reads_none_of_the_others() {
    let isolation = Isolation::new();
    let a = edge(&isolation, "0").await;
    let b = edge(&isolation, "1").await;
    assert_eq!(reply_partition(&a).await, 0);
    assert_eq!(reply_partition(&b).await, 1);

    for i in 0..5 {
        assert_eq!(place(&a, &format!("through a {i}")).await, 201);
        assert_eq!(place(&b, &format!("through b {i}")).await, 201);
    }

    let commands = committed_records(&isolation, &isolation.topics.commands).await;
    let outcomes = committed_records(&isolation, &isolation.topics.outcomes).await;
    assert_eq!(commands.len(), 10);
    let mut named = [0; 2];
    for command in &commands {
        let id = header(command, "ce_id").expect("command id");
        let partition: usize = header(command, REPLY_PARTITION_HEADER)
            .expect("the command names its edge's reply partition")
            .parse()
            .unwrap();
        named[partition] += 1;
        let verdicts: Vec<_> = outcomes.iter().filter(|o| o.key() == Some(id.as_bytes())).collect();
        assert_eq!(verdicts.len(), 1, "one verdict for {id}");
        assert_eq!(
            verdicts[0].partition() as usize,
            partition,
            "the verdict of {id} is where it asked"
        );
    }
    assert_eq!(named, [5, 5], "each edge named its own partition");
    // Each edge read exactly the verdicts of its own five commands.
    assert_eq!(verdicts_read(&a).await, 5);
    assert_eq!(verdicts_read(&b).await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_restart_does_not_lose_the_verdicts_another_edge_waits_for() {
    let isolation = Isolation::new();
    let a = edge(&isolation, "0").await;
    let b = edge(&isolation, "1").await;

    // B keeps placing orders, each waiting for its verdict, while A stops and starts again.
    let restarted = Arc::new(AtomicBool::new(false));
    let done = restarted.clone();
    let busy = tokio::spawn(async move {
        let mut statuses = Vec::new();
        // Until one order was placed wholly after A came back.
        for i in 0..500 {
            let after_restart = done.load(Ordering::Acquire);
            statuses.push(place(&b, &format!("while a restarts {i}")).await);
            if after_restart {
                break;
            }
        }
        (b, statuses)
    });
    a.stop().await;
    let a = edge(&isolation, "0").await;
    restarted.store(true, Ordering::Release);
    let (b, statuses) = busy.await.unwrap();

    assert!(statuses.len() > 1, "B placed orders across the restart");
    assert!(
        statuses.iter().all(|&s| s == 201),
        "every order through B answered: {statuses:?}"
    );
    assert_eq!(
        verdicts_read(&b).await,
        statuses.len() as u64,
        "B read only its own verdicts"
    );
    assert_eq!(reply_partition(&a).await, 0, "A came back on its partition");
    assert_eq!(place(&a, "after the restart").await, 201);
    assert_eq!(verdicts_read(&a).await, 1, "A read none of B's verdicts");
}
