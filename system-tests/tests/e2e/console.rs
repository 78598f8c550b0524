//! The operator console in a real headless Chromium, driven over WebDriver: the page shows the
//! events topic's partitions and their owners, and a projection's lag rises while the projectors
//! are stopped and falls back to 0 once they run again.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`deploy/local/infra` installs them).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use service_kit::auth::OPERATOR;
use service_kit::server::App;
use service_kit::testing::{bearer, bearer_all, free_port, wait_until, Isolation};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::helpers::{environment, settings, stopped, wait_ready};

/// Flags that run Chromium headless as root on a machine without a display or network access.
const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// How long the page may take to show what the services did.
const PAGE_DEADLINE: Duration = Duration::from_secs(60);

/// chromedriver on a free port with one Chromium session; both stop with it.
struct Browser {
    driver: Child,
    profile: PathBuf,
    client: Client,
}

impl Browser {
    async fn start(id: &str) -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (deploy/local/infra installs chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        wait_until("chromedriver to be ready", Duration::from_secs(30), || async {
            let status: serde_json::Value = http.get(format!("{url}/status")).send().await.ok()?.json().await.ok()?;
            (status["value"]["ready"] == true).then_some(())
        })
        .await;
        let profile = std::env::temp_dir().join(format!("orderstream-{id}-chromium"));
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|flag| flag.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".to_owned(), json!({ "args": args }));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a Chromium session");
        Self {
            driver,
            profile,
            client,
        }
    }

    /// The text of the first element matching `css`, if there is one now.
    async fn text(&self, css: &str) -> Option<String> {
        self.client.find(Locator::Css(css)).await.ok()?.text().await.ok()
    }

    /// Waits until the text of `css` satisfies `accept`; returns it.
    async fn wait_text(&self, css: &str, what: &str, accept: impl Fn(&str) -> bool) -> String {
        wait_until(what, PAGE_DEADLINE, || async {
            let text = self.text(css).await?;
            accept(&text).then_some(text)
        })
        .await
    }

    /// Types `text` into the element with id `id`, then clicks the button with id `button`.
    async fn submit(&self, id: &str, text: &str, button: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.send_keys(text).await.unwrap();
        self.client
            .find(Locator::Id(button))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn close(self) {
        let Self { client, .. } = &self;
        client.clone().close().await.expect("the session closes");
    }
}

impl Drop for Browser {
    /// After a test that failed before closing the session: stops chromedriver, then each
    /// Chromium process of this test's profile, by its pid.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let profile = format!("--user-data-dir={}", self.profile.display());
        for pid in processes_with_argument(&profile) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The pids of the processes with `argument` on their command line.
fn processes_with_argument(argument: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid > 1)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| line.split(|&b| b == 0).any(|arg| arg == argument.as_bytes()))
        })
        .collect()
}

/// The projectors of the test's stack, started and stopped on demand.
struct Projectors {
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Projectors {
    async fn start(isolation: &Isolation, environment: &[(&'static str, String)]) -> Self {
        let application = projectors::Application::build(isolation.settings(&settings(environment)))
            .await
            .unwrap();
        let base = format!("http://127.0.0.1:{}", application.port());
        let (stop, _) = watch::channel(false);
        let task = tokio::spawn(application.run_until(stopped(&stop)));
        wait_ready(&reqwest::Client::new(), &base).await;
        Self { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap().unwrap();
    }
}

fn lag(text: &str) -> i64 {
    text.trim().parse().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_partitions_owners_and_lag_rising_and_falling_live() {
    let isolation = Isolation::new();
    let environment = environment(&isolation, Duration::from_secs(10));
    let (stop, _) = watch::channel(false);
    let command_api = command_api::Application::build(isolation.settings(&settings(&environment)))
        .await
        .unwrap();
    let query_api = query_api::Application::build(isolation.settings(&settings(&environment)))
        .await
        .unwrap();
    let commands = format!("http://127.0.0.1:{}", command_api.port());
    let queries = format!("http://127.0.0.1:{}", query_api.port());
    let services = [
        tokio::spawn(command_api.run_until(stopped(&stop))),
        tokio::spawn(query_api.run_until(stopped(&stop))),
    ];
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, bearer_all().parse().unwrap());
    let http = reqwest::Client::builder().default_headers(headers).build().unwrap();
    wait_ready(&http, &commands).await;
    wait_ready(&http, &queries).await;
    // The projectors claim their checkpoints once; from then on the console lists them.
    let projectors = Projectors::start(&isolation, &environment).await;

    let browser = Browser::start(&isolation.id).await;
    browser.client.goto(&format!("{queries}/console")).await.unwrap();
    browser.submit("token", &bearer(&[OPERATOR]), "connect").await;

    let partitions = isolation.kafka.partitions as usize;
    wait_until("a row per partition", PAGE_DEADLINE, || async {
        let rows = browser
            .client
            .find_all(Locator::Css("#partitions tbody tr"))
            .await
            .ok()?;
        (rows.len() == partitions).then_some(())
    })
    .await;
    browser
        .wait_text(
            "#partitions tbody tr:last-child td:last-child",
            "the last partition's decider",
            |owner| owner.starts_with("orderstream-decider-"),
        )
        .await;
    let lag_of_orders = r#"[data-lag-of="order_status"]"#;
    browser
        .wait_text(lag_of_orders, "order_status caught up", |text| lag(text) == 0)
        .await;

    projectors.stop().await;
    let orders = 5;
    let mut last = serde_json::Value::Null;
    for n in 0..orders {
        let response = http
            .post(format!("{commands}/api/v1/orders"))
            .json(&json!({ "name": format!("Console {n}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        last = response.json().await.unwrap();
    }
    let behind = browser
        .wait_text(lag_of_orders, "order_status lagging by every order placed", |text| {
            lag(text) >= orders
        })
        .await;
    assert!(lag(&behind) >= orders, "{behind}");

    let projectors = Projectors::start(&isolation, &environment).await;
    browser
        .wait_text(lag_of_orders, "order_status caught up again", |text| lag(text) == 0)
        .await;

    let order_id = last["order_id"].as_str().unwrap();
    browser.submit("order-id", order_id, "show-order").await;
    let timeline = browser
        .wait_text("#timeline", "the order's timeline", |text| text.contains(order_id))
        .await;
    assert!(timeline.contains("orderstream.order.placed"), "{timeline}");
    browser
        .wait_text("#reached", "order_status past the order", |text| {
            text.contains("order_status: has applied the latest event")
        })
        .await;

    browser.close().await;
    projectors.stop().await;
    let _ = stop.send(true);
    for service in services {
        service.await.unwrap().unwrap();
    }
}
