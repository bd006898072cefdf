//! Helpers for bot tests: a stand-in for the Stooq quote API on loopback, the test plugin, and
//! waiting for a command to be served or answered.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::ws::{Incoming, WsClient};

/// The test plugin (plugins/test-bot), built by plugins/build.sh.
pub fn testbot_wasm() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/dist/testbot.wasm")
}

/// How long tests wait for a plugin to load (a cold compile in a debug build takes seconds).
pub const LOAD_WAIT: Duration = Duration::from_secs(60);

/// A quote API on loopback speaking Stooq's CSV, with a delay that tests can change.
#[derive(Clone)]
pub struct QuoteApi {
    pub addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

#[derive(Clone)]
struct ApiState {
    delay_ms: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

#[derive(serde::Deserialize)]
struct QuoteQuery {
    s: String,
}

async fn quote(State(state): State<ApiState>, Query(query): Query<QuoteQuery>) -> String {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let header = "Symbol,Date,Time,Open,High,Low,Close,Volume\r\n";
    let row = match query.s.as_str() {
        "aapl.us" => "AAPL.US,2026-11-20,22:00:09,181.99,182.76,180.17,181.18,62379661".to_string(),
        "msft.us" => "MSFT.US,2026-11-20,22:00:04,402.1,405.0,400.2,404.52,20111222".to_string(),
        other => format!("{},N/D,N/D,N/D,N/D,N/D,N/D,N/D", other.to_uppercase()),
    };
    format!("{header}{row}\r\n")
}

impl QuoteApi {
    pub async fn start() -> QuoteApi {
        let delay_ms = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let state = ApiState {
            delay_ms: delay_ms.clone(),
            requests: requests.clone(),
        };
        let app = Router::new().route("/q/l/", get(quote)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        QuoteApi {
            addr,
            delay_ms,
            requests,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Grants the bundled stock bot this API: allowed host 127.0.0.1, private addresses allowed.
pub fn point_stocks_at(config: &mut hearth::Config, api: &QuoteApi) {
    let stocks = config.plugin.entry("stocks".into()).or_default();
    stocks.allow_hosts = vec!["127.0.0.1".into()];
    stocks.allow_private_addresses = true;
    stocks.settings.insert("base_url".into(), api.base_url());
}

/// Asks /help until it lists `usage_prefix` (e.g. "/stock"), or until `LOAD_WAIT` passes.
pub async fn wait_for_command(client: &mut WsClient, room: &str, usage_prefix: &str) {
    wait_for_help(client, room, usage_prefix, true).await;
}

/// Asks /help until it no longer lists `usage_prefix`.
pub async fn wait_for_command_gone(client: &mut WsClient, room: &str, usage_prefix: &str) {
    wait_for_help(client, room, usage_prefix, false).await;
}

async fn wait_for_help(client: &mut WsClient, room: &str, usage_prefix: &str, listed: bool) {
    let deadline = Instant::now() + LOAD_WAIT;
    loop {
        let text = help(client, room).await;
        if text.lines().any(|line| line.starts_with(usage_prefix)) == listed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{usage_prefix} listed: want {listed} within {LOAD_WAIT:?}; /help says:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the /help notice.
pub async fn help(client: &mut WsClient, room: &str) -> String {
    let answer = client
        .request(json!({"type": "send", "room": room, "text": "/help"}))
        .await;
    assert_eq!(answer["type"], "notice", "/help: {answer}");
    answer["text"].as_str().unwrap().to_string()
}

/// Whether a frame is a bot's answer to the command at `seq`.
pub fn is_bot_reply(frame: &Value, seq: u64) -> bool {
    frame["type"] == "message"
        && frame["item"]["kind"] == "bot"
        && frame["item"]["reply_to"] == json!(seq)
}

/// Waits up to `wait` for the bot's answer to the command at `seq`; answers its item.
pub async fn bot_reply(client: &mut WsClient, seq: u64, wait: Duration) -> Value {
    let deadline = Instant::now() + wait;
    loop {
        match client.rx.next_until(deadline).await {
            Some(Incoming::Json(frame)) if is_bot_reply(&frame, seq) => {
                return frame["item"].clone()
            }
            Some(Incoming::Json(_)) => {}
            Some(other) => panic!("socket closed awaiting the bot: {other:?}"),
            None => panic!("no answer to the command at seq {seq} within {wait:?}"),
        }
    }
}

/// Sends a command and answers the seq of its message (from the ack).
pub async fn command(client: &mut WsClient, room: &str, text: &str) -> u64 {
    let ack = client.say(room, text).await;
    ack["seq"].as_u64().unwrap()
}
