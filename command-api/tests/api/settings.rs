//! What a command-api says when its settings or its Kafka cannot work.

use service_kit::testing::{free_port, wait_until, Isolation};

use crate::decider::Replica;
use crate::helpers::READY_WITHIN;
use crate::restart::start_logged;

#[tokio::test(flavor = "multi_thread")]
async fn a_command_api_whose_broker_cannot_be_reached_says_so_in_its_log_naming_the_broker() {
    let isolation = Isolation::new();
    let replica = Replica::new();
    let broker = format!("127.0.0.1:{}", free_port());
    let log = isolation.temp_file("unreachable.log");
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
async fn a_command_api_whose_topics_or_store_could_never_work_does_not_start() {
    let isolation = Isolation::new();
    let replica = Replica::new();
    let file = isolation.temp_file("not-a-directory");
    std::fs::write(&file, b"").expect("a plain file");
    let cases = [
        (
            vec![
                ("KAFKA_REPLICATION_FACTOR", "1".to_owned()),
                ("KAFKA_MIN_INSYNC_REPLICAS", "2".to_owned()),
            ],
            "KAFKA_MIN_INSYNC_REPLICAS (2) is above KAFKA_REPLICATION_FACTOR (1)",
        ),
        (
            vec![("DECIDER_STATE_DIR", file.join("state").display().to_string())],
            "cannot hold the decider's store",
        ),
    ];
    for (settings, said) in cases {
        let log = isolation.temp_file("refused.log");
        let text = start_logged(&isolation, replica.port, &settings, &log)
            .refused_start(&log)
            .await;
        assert!(text.contains(said), "{settings:?}: {text}");
    }
    let _ = std::fs::remove_file(&file);
}
