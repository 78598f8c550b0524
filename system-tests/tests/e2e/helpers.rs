use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use service_kit::server::App;
use service_kit::testing::{bearer_all, wait_until, Isolation};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The three services of one isolated stack, in this test process, and their addresses.
pub(crate) struct Stack {
    pub(crate) commands: String,
    pub(crate) queries: String,
    pub(crate) projections: String,
    pub(crate) client: reqwest::Client,
    pub(crate) isolation: Isolation,
    pub(crate) pool: sqlx::PgPool,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

pub(crate) fn stopped(stop: &watch::Sender<bool>) -> impl Future<Output = ()> + Send + 'static {
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
    let environment = environment(&isolation, consistency_wait);
    let settings = settings(&environment);
    let command_api = command_api::Application::build(isolation.settings(&settings))
        .await
        .unwrap();
    let projectors = projectors::Application::build(isolation.settings(&settings))
        .await
        .unwrap();
    let query_api = query_api::Application::build(isolation.settings(&settings))
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
        projections,
        client,
        isolation,
        pool,
        stop,
        tasks,
    }
}

/// One environment for the three services of a stack, as a deployment gives them; the pools
/// stay as small as the isolation's, for many stacks share one PostgreSQL.
pub(crate) fn environment(isolation: &Isolation, consistency_wait: Duration) -> Vec<(&'static str, String)> {
    vec![
        ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("OUTCOME_TIMEOUT", "15s".to_owned()),
        ("PROJECTOR_BATCH_LINGER", "5ms".to_owned()),
        ("CONSISTENCY_WAIT", format!("{}ms", consistency_wait.as_millis())),
        (
            "DATABASE_MAX_CONNECTIONS",
            isolation.database.database_max_connections.to_string(),
        ),
    ]
}

/// `environment` as the settings `Isolation::settings` takes.
pub(crate) fn settings<'a>(environment: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    environment
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

pub(crate) async fn wait_ready(client: &reqwest::Client, base: &str) {
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
        let response = self.command(path, &body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    /// A `POST` of `body` to the command API with the stack's token, unless a header of the
    /// request replaces it.
    pub(crate) fn command(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.commands)).json(body)
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

    /// Waits until `GET path` on the query API answers 200 with `field` equal to `value`;
    /// returns that body.
    pub(crate) async fn get_when(&self, path: &str, field: &str, value: &str) -> Value {
        wait_until(
            &format!("{path} to have {field} {value}"),
            Duration::from_secs(30),
            || async {
                let (status, body, _) = self.get(path).await;
                (status == 200 && body[field] == value).then_some(body)
            },
        )
        .await
    }
}

/// Sends `request`; returns its status and its body (`null` when that is not JSON).
pub(crate) async fn status_and_body(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The string `field` of every element of the array `list` in `body`.
pub(crate) fn strings<'a>(body: &'a Value, list: &str, field: &str) -> Vec<&'a str> {
    body[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|element| element[field].as_str().unwrap())
        .collect()
}

/// Asserts a problem+json answer.
pub(crate) fn assert_problem(status: u16, body: &Value, headers: &reqwest::header::HeaderMap, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["status"], expected);
}
