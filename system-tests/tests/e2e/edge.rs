//! The query side's edge: `/ready` keeps database internals to itself, and the database URL can
//! come from a file.

use std::time::Duration;

use serde_json::Value;
use service_kit::database::DatabaseArgs;
use service_kit::edge::{DatabaseApiArgs, EdgeArgs};
use service_kit::secret::ExposeSecret;
use service_kit::server::App;
use service_kit::testing::{free_port, test_auth, wait_until, Isolation};
use tokio::sync::oneshot;

/// A query-api on its own port over `database`; stops when the sender is dropped.
async fn spawn_query_api(database: DatabaseArgs) -> (String, oneshot::Sender<()>) {
    let app = query_api::Application::build(query_api::Config {
        listen_addr: "127.0.0.1:0".to_owned(),
        api: DatabaseApiArgs {
            edge: EdgeArgs::default(),
            database,
            auth: test_auth(),
        },
        consistency_wait: Duration::from_secs(1),
        consistency_wait_ms: None,
        kafka: Isolation::new().kafka,
        console_trace_url: String::new(),
        console_interval: Duration::from_secs(1),
    })
    .await
    .expect("query-api builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    (address, stop)
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_names_no_database_internals() {
    let port = free_port();
    let url = format!("postgres://leaky-user:leaky-password@127.0.0.1:{port}/leakydb");
    let (address, _stop) = spawn_query_api(DatabaseArgs::new(url, "public")).await;

    let response = reqwest::get(format!("{address}/ready")).await.expect("answers");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["checks"]["database"], "unreachable", "{body}");
    let text = body.to_string();
    for internal in ["leaky", &port.to_string(), "refused", "127.0.0.1"] {
        assert!(!text.contains(internal), "{internal} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_url_can_come_from_a_file() {
    let isolation = Isolation::new();
    let path = std::env::temp_dir().join(format!("orderstream-database-url-{}", isolation.id));
    let url = isolation.database.url().expect("test URL");
    std::fs::write(&path, format!("{}\n", url.expose_secret())).expect("URL file");
    let database = DatabaseArgs {
        database_url: None,
        database_url_file: Some(path.clone()),
        ..isolation.database.clone()
    };
    let built = spawn_query_api(database).await;
    let _ = std::fs::remove_file(&path);
    let (address, _stop) = built;

    wait_until("query-api to reach PostgreSQL", Duration::from_secs(30), || async {
        let response = reqwest::get(format!("{address}/ready")).await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}
