//! A Jaeger v2 process of the test's own, on free ports, and the traces its query API returns.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use service_kit::testing::{free_port, succeeded, wait_until, ChildService};

const CONFIG: &str = include_str!("jaeger.yaml");

pub(crate) struct Jaeger {
    /// OTLP over gRPC: `http://127.0.0.1:<port>`.
    pub(crate) otlp_grpc: String,
    /// OTLP over HTTP: `http://127.0.0.1:<port>`.
    pub(crate) otlp_http: String,
    query: String,
    client: reqwest::Client,
    _process: ChildService,
    _config: TempFile,
}

impl Jaeger {
    /// Starts Jaeger and waits until its query API answers.
    pub(crate) async fn start(name: &str) -> Self {
        let config = TempFile::write(&format!("orderstream-{name}-jaeger.yaml"), CONFIG);
        let (otlp_grpc, otlp_http, query) = (free_port(), free_port(), free_port());
        let env = [
            ("JAEGER_OTLP_GRPC_PORT", otlp_grpc.to_string()),
            ("JAEGER_OTLP_HTTP_PORT", otlp_http.to_string()),
            ("JAEGER_QUERY_HTTP_PORT", query.to_string()),
            ("JAEGER_QUERY_GRPC_PORT", free_port().to_string()),
        ];
        let config_flag = format!("--config=file:{}", config.0.display());
        let process = ChildService::spawn(&binary(), &[&config_flag], &env);
        let jaeger = Self {
            otlp_grpc: format!("http://127.0.0.1:{otlp_grpc}"),
            otlp_http: format!("http://127.0.0.1:{otlp_http}"),
            query: format!("http://127.0.0.1:{query}"),
            client: reqwest::Client::new(),
            _process: process,
            _config: config,
        };
        wait_until("Jaeger's query API", Duration::from_secs(60), || async {
            let services = jaeger.get("/api/services").await?;
            services.status().is_success().then_some(())
        })
        .await;
        jaeger
    }

    /// Trace `trace_id` once `complete` says it has all it should, waiting up to a minute for
    /// the services' batches to arrive.
    pub(crate) async fn trace_when(&self, trace_id: &str, complete: impl Fn(&Trace) -> bool) -> Trace {
        wait_until(
            &format!("trace {trace_id} in Jaeger"),
            Duration::from_secs(60),
            || async {
                let response = self.get(&format!("/api/traces/{trace_id}")).await?;
                let body: Value = response.json().await.ok()?;
                let trace = Trace::from_jaeger(&body["data"][0]);
                complete(&trace).then_some(trace)
            },
        )
        .await
    }

    /// `GET path` on the query API; `None` while it cannot be reached.
    async fn get(&self, path: &str) -> Option<reqwest::Response> {
        self.client.get(format!("{}{path}", self.query)).send().await.ok()
    }
}

/// The Jaeger binary: `JAEGER_BIN`, else the one `deploy/local/jaeger` builds (once) and names.
fn binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("JAEGER_BIN") {
        return binary.into();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/jaeger");
    let output = Command::new("bash")
        .arg(script)
        .arg("binary")
        .output()
        .expect("deploy/local/jaeger runs");
    PathBuf::from(succeeded("deploy/local/jaeger binary", &output).trim())
}

/// One span as Jaeger shows it.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) service: String,
    /// The span it is a child of (`CHILD_OF`), in this trace or the caller's.
    pub(crate) parent: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub(crate) spans: Vec<Span>,
}

impl Trace {
    fn from_jaeger(trace: &Value) -> Self {
        let Some(spans) = trace["spans"].as_array() else {
            return Self::default();
        };
        let parent = |span: &Value| -> Option<String> {
            span["references"]
                .as_array()?
                .iter()
                .find(|reference| reference["refType"] == "CHILD_OF")?["spanID"]
                .as_str()
                .map(str::to_owned)
        };
        let spans = spans
            .iter()
            .map(|span| Span {
                id: span["spanID"].as_str().unwrap_or_default().to_owned(),
                name: span["operationName"].as_str().unwrap_or_default().to_owned(),
                service: span["processID"]
                    .as_str()
                    .and_then(|process| trace["processes"][process]["serviceName"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                parent: parent(span),
            })
            .collect();
        Self { spans }
    }

    /// The spans of `service` named `name`.
    pub(crate) fn named(&self, service: &str, name: &str) -> Vec<&Span> {
        self.spans
            .iter()
            .filter(|span| span.service == service && span.name == name)
            .collect()
    }

    pub(crate) fn has(&self, service: &str, name: &str) -> bool {
        !self.named(service, name).is_empty()
    }

    /// The one span of `service` named `name` whose parent is `parent`.
    pub(crate) fn child(&self, service: &str, name: &str, parent: &str) -> &Span {
        let children: Vec<_> = self
            .named(service, name)
            .into_iter()
            .filter(|span| span.parent.as_deref() == Some(parent))
            .collect();
        assert_eq!(
            children.len(),
            1,
            "one {service} span `{name}` under {parent} expected in {:#?}",
            self.spans
        );
        children[0]
    }
}

/// A file under the system's temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn write(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).expect("temporary file written");
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
