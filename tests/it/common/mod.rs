//! Shared helpers: a real hearth server on an ephemeral port with a temporary data directory,
//! and small HTTP helpers; `process` runs the binary itself, `ws` is a WebSocket client. Each
//! test file uses the parts it needs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bots;
pub mod oauth_mock;
pub mod process;
pub mod ws;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hearth::Config;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery";

/// A running in-process server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Config,
    data: Option<tempfile::TempDir>,
    /// The server's store, to look at and change what it keeps while it runs; let go at
    /// shutdown so that the database can be opened again.
    store: Option<hearth::store::Store>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), hearth::ServeError>>>,
}

/// The configuration tests start from: loopback, a temporary data directory.
pub fn test_config(data_dir: &Path) -> Config {
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server whose configuration `adjust` may change.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let data = tempfile::tempdir().unwrap();
        let mut config = test_config(data.path());
        adjust(&mut config);
        Self::start_in(config, Some(data)).await
    }

    async fn start_in(config: Config, data: Option<tempfile::TempDir>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = hearth::Server::open(config.clone()).expect("the server opens its store");
        let store = server.store();
        let task = tokio::spawn(async move {
            server
                .run(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        TestServer {
            addr,
            config,
            data,
            store: Some(store),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The running server's store.
    pub fn store(&self) -> &hearth::store::Store {
        self.store.as_ref().expect("the server is running")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    pub async fn shutdown(&mut self) {
        self.store = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// Stops this server and starts a new one on the same data directory.
    pub async fn restart(mut self) -> TestServer {
        self.shutdown().await;
        let data = self.data.take();
        Self::start_in(self.config.clone(), data).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = client().get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = client().post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn put(&self, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = client().put(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.unwrap()).await
    }

    /// Registers `username` with [`PASSWORD`]; answers the session token.
    pub async fn register(&self, username: &str) -> String {
        let (status, body) = self
            .post(
                "/api/auth/register",
                json!({"username": username, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {username}: {body}");
        body["token"].as_str().unwrap().to_string()
    }

    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/api/auth/login",
            json!({"username": username, "password": password}),
            None,
        )
        .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A client that never follows redirects and never keeps cookies of its own.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Like [`client`], from a chosen loopback address (127.0.0.2, ...), so that the server sees
/// another client address.
pub fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The error code of an API error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}
