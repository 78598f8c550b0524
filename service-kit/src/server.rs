//! Every service's `main`: its runtime, telemetry and shutdown; serving HTTP until shutdown,
//! cutting off clients too slow to send their request head; and what every API's router ends
//! with.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::Service;
use tracing::{debug, warn};

/// How long a client may take to send its request line and headers when a service does not say
/// otherwise. Also bounds how long an idle keep-alive connection stays open.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// `router` finished as every API's is: a path no route matches answers a problem+json 404, a
/// method its route does not take a problem+json 405, and each server error is logged once, with
/// its cause.
pub fn with_problem_answers<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router
        .method_not_allowed_fallback(crate::problem::method_not_allowed)
        .fallback(crate::problem::not_found)
        .layer(axum::middleware::from_fn(crate::problem::log_server_errors))
}

/// A service built from its settings, then run until told to stop.
pub trait App: Sized {
    type Config;

    /// Binds the listener and connects the clients; fails on settings that cannot work.
    fn build(config: Self::Config) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// Runs until `shutdown` resolves or a part of the service fails.
    fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Builds `A` from `config` and runs it until Ctrl-C or SIGTERM.
pub async fn run<A: App>(config: A::Config) -> anyhow::Result<()> {
    A::build(config).await?.run_until(shutdown_signal()).await
}

/// The whole `main` of a service whose command line is its settings.
pub fn main<A: App>(service: &str) -> anyhow::Result<()>
where
    A::Config: clap::Parser,
{
    run_main(service, || run::<A>(<A::Config as clap::Parser>::parse()))
}

/// Runs `work` on a new multi-threaded runtime under the service's telemetry
/// ([`crate::telemetry::run`]), then gives the runtime's blocking threads a second. A Kafka call
/// that never returned holds one: waiting for it would keep a stopped service from exiting, and
/// its orchestrator from starting it again.
pub fn run_main<F: Future<Output = anyhow::Result<()>>>(service: &str, work: impl FnOnce() -> F) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(crate::telemetry::run(service, work));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// A service's listening socket, bound when the service is built (so a test can ask for port 0
/// and read the port back before it runs).
#[derive(Debug)]
pub struct Listener(TcpListener);

/// The listen address cannot be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    addr: String,
    source: std::io::Error,
}

impl Listener {
    pub async fn bind(addr: &str) -> Result<Self, BindError> {
        match TcpListener::bind(addr).await {
            Ok(listener) => Ok(Self(listener)),
            Err(source) => Err(BindError {
                addr: addr.to_owned(),
                source,
            }),
        }
    }

    /// The port bound; 0 only if the socket has no address (never for TCP).
    pub fn port(&self) -> u16 {
        self.0.local_addr().map(|a| a.port()).unwrap_or_default()
    }
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Self(listener)
    }
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Serves `router` over HTTP/1.1 on `listener` until `shutdown` resolves, then stops accepting,
/// closes idle connections and lets in-flight requests finish.
///
/// A connection that has not delivered a whole request head within `header_read_timeout` is
/// closed (`axum::serve` has no such bound, so half a request line would hold a connection
/// forever). Handlers see the peer address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    Listener(listener): Listener,
    router: axum::Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "listening");
    }
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // pause briefly rather than spin, and keep serving.
                    warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Responses are written whole; waiting to coalesce them only adds latency.
        let _ = stream.set_nodelay(true);
        let service = PeerService {
            router: router.clone(),
            peer,
        };
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%peer, %error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The router for one connection, telling each request who sent it.
#[derive(Clone)]
struct PeerService {
    router: axum::Router,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for PeerService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = <axum::Router as Service<Request<Body>>>::Future;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        // A router is always ready, so `call` needs no `poll_ready` first.
        self.router.clone().call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn unknown_paths_and_methods_answer_problems() {
        use tower::ServiceExt as _;
        let router = with_problem_answers(axum::Router::new().route("/things", get(|| async { "things" })));
        let answer = |method: &str, path: &str| {
            let request = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
            router.clone().oneshot(request)
        };
        let wrong_method = answer("DELETE", "/things").await.unwrap();
        assert_eq!(wrong_method.status(), 405);
        assert_eq!(wrong_method.headers()["content-type"], "application/problem+json");
        assert!(
            wrong_method.headers()["allow"].to_str().unwrap().contains("GET"),
            "{:?}",
            wrong_method.headers()
        );
        let unknown = answer("GET", "/nothing").await.unwrap();
        assert_eq!(unknown.status(), 404);
        assert_eq!(unknown.headers()["content-type"], "application/problem+json");
    }

    async fn start(header_read_timeout: Duration) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let address = listener.local_addr().expect("address");
        let router = axum::Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener.into(), router, header_read_timeout, async {
                let _ = stopped.await;
            })
            .await
            .expect("serves");
        });
        (address, stop, task)
    }

    /// Reads until the server closes the connection; what it sent, and when it closed.
    async fn read_to_close(stream: &mut TcpStream, deadline: Duration) -> (String, Instant) {
        let mut received = Vec::new();
        tokio::time::timeout(deadline, stream.read_to_end(&mut received))
            .await
            .expect("the server closes the connection in time")
            .expect("read");
        (String::from_utf8_lossy(&received).into_owned(), Instant::now())
    }

    #[tokio::test]
    async fn half_a_request_line_is_cut_off_after_the_header_timeout() {
        let timeout = Duration::from_millis(700);
        let (address, _stop, _task) = start(timeout).await;
        let mut stream = TcpStream::connect(address).await.expect("connect");
        let started = Instant::now();
        stream.write_all(b"GET /pe").await.expect("write");
        let (_, closed) = read_to_close(&mut stream, Duration::from_secs(5)).await;
        let held = closed - started;
        assert!(held >= timeout - Duration::from_millis(50), "closed after {held:?}");
        assert!(held < timeout + Duration::from_secs(2), "closed after {held:?}");
    }

    #[tokio::test]
    async fn a_prompt_client_is_served_and_sees_its_address() {
        let (address, _stop, _task) = start(Duration::from_secs(5)).await;
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(b"GET /peer HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let (response, _) = read_to_close(&mut stream, Duration::from_secs(5)).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("127.0.0.1"), "{response}");
    }

    #[tokio::test]
    async fn shutdown_lets_the_request_in_flight_finish() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let address = listener.local_addr().expect("address");
        let (entered, handler_entered) = oneshot::channel::<()>();
        let entered = std::sync::Arc::new(std::sync::Mutex::new(Some(entered)));
        let (release, released) = oneshot::channel::<()>();
        let released = std::sync::Arc::new(tokio::sync::Mutex::new(Some(released)));
        let router = axum::Router::new().route(
            "/slow",
            get(move || {
                let (entered, released) = (entered.clone(), released.clone());
                async move {
                    if let Some(entered) = entered.lock().expect("lock").take() {
                        let _ = entered.send(());
                    }
                    if let Some(released) = released.lock().await.take() {
                        let _ = released.await;
                    }
                    "done"
                }
            }),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener.into(), router, Duration::from_secs(5), async {
            let _ = stopped.await;
        }));
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("write");
        handler_entered.await.expect("the handler runs");
        let _ = stop.send(());
        let _ = release.send(());
        let (response, _) = read_to_close(&mut stream, Duration::from_secs(5)).await;
        assert!(
            response.starts_with("HTTP/1.1 200") && response.ends_with("done"),
            "{response}"
        );
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops")
            .expect("task")
            .expect("served");
    }
}
