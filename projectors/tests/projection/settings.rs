//! What the projectors say when their settings or PostgreSQL cannot work.

use std::time::Duration;

use service_kit::testing::{free_port, wait_until, ChildService, Isolation};

use crate::helpers::{binary, projectors_with};

#[tokio::test(flavor = "multi_thread")]
async fn a_command_run_by_hand_says_why_postgresql_cannot_be_reached_and_never_the_password() {
    let isolation = Isolation::new();
    let server = format!("127.0.0.1:{}", free_port());
    let url = format!("postgres://orderstream:hunter2-secret@{server}/orderstream");

    for command in [&["migrate"][..], &["dead-letters", "list"]] {
        let output = projectors_with(&isolation, &[("DATABASE_URL", &url)], command).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains(&format!("PostgreSQL at {server} cannot be reached"))
                && first.contains("Connection refused"),
            "{command:?}: the first line says why, not only that the pool timed out:\n{stderr}"
        );
        assert!(!stderr.contains("hunter2-secret"), "{command:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_service_logs_why_postgresql_cannot_be_reached() {
    let isolation = Isolation::new();
    let server = format!("127.0.0.1:{}", free_port());
    let mut env = isolation.env();
    env.push((
        "DATABASE_URL",
        format!("postgres://orderstream:hunter2-secret@{server}/orderstream"),
    ));
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{}", free_port())));
    let log = isolation.temp_file("unreachable.log");
    let _service = ChildService::spawn_logged(binary(), &["run"], &env, &log);

    let logged = wait_until(
        "the log to say why PostgreSQL cannot be reached",
        Duration::from_secs(30),
        || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines()
                .any(|line| {
                    line.contains(&format!("PostgreSQL at {server} cannot be reached"))
                        && line.contains("Connection refused")
                })
                .then_some(text)
        },
    )
    .await;
    assert!(!logged.contains("hunter2-secret"), "{logged}");
    let _ = std::fs::remove_file(&log);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schema_name_the_migrations_would_refuse_stops_the_service_at_start_up() {
    let isolation = Isolation::new();
    let mut env = isolation.env();
    env.push(("DATABASE_SCHEMA", "Orders-Live".to_owned()));
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{}", free_port())));
    let log = isolation.temp_file("schema.log");
    let text = ChildService::spawn_logged(binary(), &["run"], &env, &log)
        .refused_start(&log)
        .await;
    assert!(
        text.contains("DATABASE_SCHEMA") && text.contains("schema name `Orders-Live` must be"),
        "{text}"
    );
}
