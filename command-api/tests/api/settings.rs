//! What a command-api says when its settings or its Kafka cannot work.

use std::time::Duration;

use service_kit::testing::{free_port, wait_until, Isolation};

use crate::decider::Replica;
use crate::helpers::READY_WITHIN;
use crate::restart::start_logged;

#[tokio::test(flavor = "multi_thread")]
async fn a_command_api_whose_broker_cannot_be_reached_says_so_in_its_log_naming_the_broker() {
    let isolation = Isolation::new();
    let replica = Replica::new();
    let broker = format!("127.0.0.1:{}", free_port());
    let log = std::env::temp_dir().join(format!("{}-unreachable.log", isolation.id));
    let _service = start_logged(&isolation, replica.port, &[("KAFKA_BROKERS", broker.clone())], &log);

    let logged = wait_until("the log to name the broker it cannot reach", READY_WITHIN, || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .any(|line| line.contains("librdkafka") && line.contains(&broker) && line.contains("Connection refused"))
            .then_some(text)
    })
    .await;
    if std::env::var_os("RUST_LOG").is_none() {
        assert!(
            !logged.contains("rdkafka::client"),
            "librdkafka's error callback, which repeats each failure, is not logged by default:\n{logged}"
        );
    }
    let ready = replica.get("/ready").await;
    assert_eq!(ready.status(), 503, "not ready without Kafka");
    let _ = std::fs::remove_file(&log);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_api_asked_for_more_in_sync_replicas_than_replicas_does_not_start() {
    let isolation = Isolation::new();
    let replica = Replica::new();
    let log = std::env::temp_dir().join(format!("{}-insync.log", isolation.id));
    let settings = [
        ("KAFKA_REPLICATION_FACTOR", "1".to_owned()),
        ("KAFKA_MIN_INSYNC_REPLICAS", "2".to_owned()),
    ];
    let mut service = start_logged(&isolation, replica.port, &settings, &log);

    let status = service.exited_within(Duration::from_secs(30)).await;
    assert!(!status.success(), "{status}");
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(
        text.contains("KAFKA_MIN_INSYNC_REPLICAS (2) is above KAFKA_REPLICATION_FACTOR (1)"),
        "{text}"
    );
    let _ = std::fs::remove_file(&log);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_api_whose_state_directory_cannot_be_made_does_not_start() {
    let isolation = Isolation::new();
    let replica = Replica::new();
    let file = std::env::temp_dir().join(format!("{}-not-a-directory", isolation.id));
    std::fs::write(&file, b"").expect("a plain file");
    let log = std::env::temp_dir().join(format!("{}-state-dir.log", isolation.id));
    let settings = [("DECIDER_STATE_DIR", file.join("state").display().to_string())];
    let mut service = start_logged(&isolation, replica.port, &settings, &log);

    let status = service.exited_within(Duration::from_secs(30)).await;
    assert!(!status.success(), "{status}");
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(
        text.contains("DECIDER_STATE_DIR") && text.contains("cannot hold the decider's store"),
        "{text}"
    );
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&file);
}
