//! What runs in the guest: `send` in the boot that is cut, `verify` in the boot after it.
//! Both start hearth themselves, so they can tell a server that refused to start from one that
//! is slow to.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::report::Report;
use crate::server::Server;
use crate::texts::{self, Size};

/// The one account of the check.
const USERNAME: &str = "powercut";
const PASSWORD: &str = "power-cut-check";
/// Items per history page (the server's most).
const PAGE: usize = 200;
/// Errors in a row for one room's sends before that room stops sending.
const MAX_REFUSALS: usize = 5;

#[derive(clap::Args, Debug)]
pub struct Common {
    /// The hearth binary under test.
    #[arg(long, default_value = "/bin/hearth")]
    pub hearth: PathBuf,
    /// Its configuration file (bind must match --url).
    #[arg(long)]
    pub config: PathBuf,
    /// Where the report lines go (the guest's second serial port).
    #[arg(long)]
    pub report: PathBuf,
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:7878")]
    pub url: String,
    /// Seconds hearth may take to answer /healthz (recovery and the start-up check included).
    #[arg(long, default_value_t = 600)]
    pub start_limit: u64,
}

#[derive(clap::Args, Debug)]
pub struct SendArgs {
    #[command(flatten)]
    pub common: Common,
    /// Sizes to send, one room each, all at once.
    #[arg(long, value_delimiter = ',', default_value = "short,ascii,cjk,emoji")]
    pub sizes: Vec<Size>,
    /// Sends a room's socket has awaiting their ack at any time.
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// The server's `ws.max_frame_bytes`, which the `frame` size fills.
    #[arg(long, default_value_t = 65_536)]
    pub frame_bytes: usize,
    /// Stop sending after this many seconds (the host cuts long before).
    #[arg(long, default_value_t = 300)]
    pub max_secs: u64,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: Common,
    /// The session token the sending boot got at registration; without it (or if the server
    /// no longer knows it), the driver signs in again.
    #[arg(long)]
    pub token: Option<String>,
}

/// Boot 1: start hearth, sign up, make one room per size, and send to all of them until cut,
/// reporting `ack ROOM REF SEQ DIGEST BYTES` for every ack.
pub async fn send(args: SendArgs) -> anyhow::Result<()> {
    let report = Arc::new(Report::open(&args.common.report)?);
    let url = args.common.url.clone();
    let mut server = Server::spawn(&args.common.hearth, &args.common.config)?;
    let limit = Duration::from_secs(args.common.start_limit);
    if !server.wait_until_serving(&url, limit, &report).await {
        bail!("hearth did not start");
    }
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{url}/api/auth/register"))
        .json(&json!({"username": USERNAME, "password": PASSWORD}))
        .send()
        .await?;
    let status = answer.status();
    let answer: Value = answer.json().await?;
    let token = answer["token"]
        .as_str()
        .with_context(|| format!("registering answered {status}: {answer}"))?
        .to_string();
    report.line(&format!("token {token}"));
    let mut rooms = Vec::new();
    for size in &args.sizes {
        let answer: Value = client
            .post(format!("{url}/api/rooms"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("power cut {size}")}))
            .send()
            .await?
            .json()
            .await?;
        let code = answer["room"]["code"]
            .as_str()
            .with_context(|| format!("creating a room answered {answer}"))?
            .to_string();
        report.line(&format!("room {size} {code}"));
        rooms.push((*size, code));
    }
    for (size, code) in rooms {
        let (report, url, token) = (report.clone(), url.clone(), token.clone());
        let (in_flight, frame_bytes) = (args.in_flight.max(1), args.frame_bytes);
        tokio::spawn(async move {
            let outcome = drive(&url, &token, size, &code, in_flight, frame_bytes, &report).await;
            if let Err(error) = outcome {
                report.line(&format!("socket {code} {error:#}"));
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        server.report_if_exited(&report);
    }
    report.line("send-end deadline");
    Ok(())
}

/// One room's socket: join, then keep `in_flight` sends outstanding, reporting each ack.
async fn drive(
    url: &str,
    token: &str,
    size: Size,
    code: &str,
    in_flight: usize,
    frame_bytes: usize,
    report: &Report,
) -> anyhow::Result<()> {
    let mut request =
        format!("{}/ws", url.replacen("http://", "ws://", 1)).into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    ws.send(Message::text(
        json!({"type": "join", "room": code, "ref": "join"}).to_string(),
    ))
    .await?;
    let mut pending: HashMap<String, (String, usize)> = HashMap::new();
    let (mut joined, mut next, mut refusals) = (false, 0u64, 0usize);
    loop {
        while joined && pending.len() < in_flight {
            next += 1;
            let reference = texts::reference(next);
            let text = texts::text(size, next, frame_bytes, code);
            let frame = texts::send_frame(code, &reference, &text);
            pending.insert(reference, (texts::digest(&text), text.len()));
            ws.send(Message::text(frame)).await?;
        }
        let frame = match ws.next().await {
            None => bail!("the server closed the socket"),
            Some(frame) => frame?,
        };
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(close) => bail!("the server closed the socket: {close:?}"),
            _ => continue,
        };
        let frame: Value = serde_json::from_str(text.as_str())?;
        let reference = frame["ref"].as_str().unwrap_or_default();
        match frame["type"].as_str().unwrap_or_default() {
            "joined" if reference == "join" => {
                joined = true;
                report.line(&format!("joined {size} {code}"));
            }
            "ack" => {
                if let Some((digest, bytes)) = pending.remove(reference) {
                    let seq = &frame["seq"];
                    report.line(&format!("ack {code} {reference} {seq} {digest} {bytes}"));
                    refusals = 0;
                }
            }
            "error" => {
                pending.remove(reference);
                report.line(&format!("refused {code} {reference} {frame}"));
                refusals += 1;
                if !joined || refusals >= MAX_REFUSALS {
                    bail!("too many refusals");
                }
            }
            _ => {}
        }
    }
}

/// Boot 2: start hearth on the cut disk and, if it serves, report every item of every room of
/// the account: `item ROOM SEQ KIND DIGEST BYTES`.
pub async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let report = Report::open(&args.common.report)?;
    let url = args.common.url.clone();
    let mut server = Server::spawn(&args.common.hearth, &args.common.config)?;
    let limit = Duration::from_secs(args.common.start_limit);
    if !server.wait_until_serving(&url, limit, &report).await {
        report.line("verify-end refused");
        return Ok(());
    }
    match history(&url, args.token.as_deref(), &report).await {
        Ok(()) => report.line("verify-end ok"),
        Err(error) => report.line(&format!("verify-end error {error:#}")),
    }
    server.report_if_exited(&report);
    Ok(())
}

async fn history(url: &str, token: Option<&str>, report: &Report) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let known = match token {
        Some(token) => client
            .get(format!("{url}/api/me"))
            .bearer_auth(token)
            .send()
            .await?
            .status()
            .is_success(),
        None => false,
    };
    let token = match token {
        Some(token) if known => token.to_string(),
        _ => {
            let answer = client
                .post(format!("{url}/api/auth/login"))
                .json(&json!({"username": USERNAME, "password": PASSWORD}))
                .send()
                .await?;
            let status = answer.status();
            let answer: Value = answer.json().await?;
            report.line(&format!("login {status}"));
            answer["token"]
                .as_str()
                .with_context(|| format!("signing in answered {status}: {answer}"))?
                .to_string()
        }
    };
    let answer: Value = client
        .get(format!("{url}/api/rooms"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let rooms = answer["rooms"]
        .as_array()
        .with_context(|| format!("listing rooms answered {answer}"))?;
    report.line(&format!("rooms {}", rooms.len()));
    for room in rooms {
        let code = room["code"].as_str().context("a room without a code")?;
        let items = all_items(&client, url, &token, code).await?;
        for item in &items {
            let (digest, bytes) = match item["text"].as_str() {
                Some(text) => (texts::digest(text), text.len()),
                None => ("-".to_string(), 0),
            };
            let kind = item["kind"].as_str().unwrap_or("?");
            report.line(&format!(
                "item {code} {} {kind} {digest} {bytes}",
                item["seq"]
            ));
        }
        report.line(&format!("history {code} {}", items.len()));
    }
    Ok(())
}

/// Every item of a room, oldest first, page by page from the newest.
async fn all_items(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    code: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut pages: Vec<Vec<Value>> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut request = format!("{url}/api/rooms/{code}/messages?limit={PAGE}");
        if let Some(before) = before {
            request.push_str(&format!("&before={before}"));
        }
        let answer = client.get(&request).bearer_auth(token).send().await?;
        let status = answer.status();
        let answer: Value = answer.json().await?;
        let page = answer["messages"]
            .as_array()
            .with_context(|| format!("{request} answered {status}: {answer}"))?
            .clone();
        let more = answer["more"].as_bool().unwrap_or(false);
        let oldest = page.first().and_then(|item| item["seq"].as_u64());
        pages.push(page);
        match oldest {
            Some(oldest) if more => before = Some(oldest),
            _ => break,
        }
    }
    Ok(pages.into_iter().rev().flatten().collect())
}
