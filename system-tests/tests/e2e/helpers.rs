use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use service_kit::edge::EdgeArgs;
use service_kit::testing::{bearer_all, test_auth, wait_until, Isolation, TEST_FINGERPRINT_KEY};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The three services of one isolated stack, in this test process.
pub(crate) struct Stack {
    pub(crate) commands: String,
    pub(crate) queries: String,
    pub(crate) client: reqwest::Client,
    pub(crate) isolation: Isolation,
    pub(crate) pool: sqlx::PgPool,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

fn stopped(stop: &watch::Sender<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut receiver = stop.subscribe();
    async move {
        let _ = receiver.wait_for(|s| *s).await;
    }
}

pub(crate) async fn spawn_stack() -> Stack {
    spawn_stack_with_wait(Duration::from_secs(10)).await
}

/// A stack whose query-api waits at most `consistency_wait` for a token.
pub(crate) async fn spawn_stack_with_wait(consistency_wait: Duration) -> Stack {
    let isolation = Isolation::new();
    let (stop, _) = watch::channel(false);
    let command_api = command_api::Application::build(command_api::Config {
        listen_addr: "127.0.0.1:0".to_owned(),
        kafka: isolation.kafka.clone(),
        decider_instance_id: "0".to_owned(),
        decider_batch_size: 1000,
        decider_batch_linger: Duration::from_millis(5),
        decider_batch_linger_ms: None,
        produce_timeout: Duration::from_secs(5),
        produce_timeout_ms: None,
        outcome_timeout: Duration::from_secs(15),
        outcome_timeout_ms: None,
        card_fingerprint_key: Some(TEST_FINGERPRINT_KEY.into()),
        card_fingerprint_key_file: None,
        edge: EdgeArgs::default(),
        auth: test_auth(),
        payment_gateway: command_api::config::GatewayKind::Sandbox,
        payment_reactor: true,
    })
    .await
    .unwrap();
    let projectors = projectors::Application::build(projectors::Config {
        listen_addr: "127.0.0.1:0".to_owned(),
        kafka: isolation.kafka.clone(),
        database: isolation.database.clone(),
        batching: projectors::config::BatchArgs {
            batch_size: 5000,
            batch_linger: Duration::from_millis(5),
            batch_linger_ms: None,
        },
    })
    .await
    .unwrap();
    let query_api = query_api::Application::build(query_api::Config {
        listen_addr: "127.0.0.1:0".to_owned(),
        database: isolation.database.clone(),
        consistency_wait,
        consistency_wait_ms: None,
        auth: test_auth(),
        edge: EdgeArgs::default(),
    })
    .await
    .unwrap();
    let commands = format!("http://127.0.0.1:{}", command_api.port());
    let projections = format!("http://127.0.0.1:{}", projectors.port());
    let queries = format!("http://127.0.0.1:{}", query_api.port());
    // The command side creates the topics the projectors read, so it starts first.
    let mut tasks = vec![tokio::spawn(command_api.run_until(stopped(&stop)))];
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, bearer_all().parse().unwrap());
    let client = reqwest::Client::builder().default_headers(headers).build().unwrap();
    wait_ready(&client, &commands).await;
    tasks.push(tokio::spawn(projectors.run_until(stopped(&stop))));
    tasks.push(tokio::spawn(query_api.run_until(stopped(&stop))));
    wait_ready(&client, &projections).await;
    wait_ready(&client, &queries).await;
    let pool = isolation.database.pool().unwrap();
    Stack {
        commands,
        queries,
        client,
        isolation,
        pool,
        stop,
        tasks,
    }
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    wait_until(&format!("{base} to be ready"), Duration::from_secs(60), || async {
        let response = client.get(format!("{base}/ready")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}

impl Stack {
    /// Places an order and returns the 201 body.
    pub(crate) async fn place(&self, body: Value) -> Value {
        self.post("/api/v1/orders", body, 201).await
    }

    /// `POST` to the command API, expecting `status`; returns the body.
    pub(crate) async fn post(&self, path: &str, body: Value, status: u16) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.commands))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    /// `GET` on the query API; returns status and body.
    pub(crate) async fn get(&self, path_and_query: &str) -> (u16, Value, reqwest::header::HeaderMap) {
        let response = self
            .client
            .get(format!("{}{path_and_query}", self.queries))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.json().await.unwrap_or(Value::Null), headers)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Asserts a problem+json answer.
pub(crate) fn assert_problem(status: u16, body: &Value, headers: &reqwest::header::HeaderMap, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["status"], expected);
}
