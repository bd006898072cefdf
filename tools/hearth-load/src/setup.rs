//! Accounts and rooms over HTTP, before any socket opens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::args::Args;

/// Registrations at once: each is a password hash on the server.
const REGISTER_CONCURRENCY: usize = 8;

/// Bearer tokens of the load users, user i at index i.
pub async fn accounts(args: &Args) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::new();
    let permits = Arc::new(Semaphore::new(REGISTER_CONCURRENCY));
    let mut tasks = Vec::with_capacity(args.users);
    for i in 0..args.users {
        let (client, permits) = (client.clone(), permits.clone());
        let url = args.url.clone();
        let body = json!({"username": format!("{}{i}", args.prefix), "password": args.password});
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire().await?;
            let response = client
                .post(format!("{url}/api/auth/register"))
                .json(&body)
                .send()
                .await?;
            let response = if response.status() == 409 {
                client
                    .post(format!("{url}/api/auth/login"))
                    .json(&body)
                    .send()
                    .await?
            } else {
                response
            };
            let status = response.status();
            let answer: Value = response.json().await?;
            match answer["token"].as_str() {
                Some(token) => Ok::<_, anyhow::Error>(token.to_string()),
                None => bail!("signing in user {i} answered {status}: {answer}"),
            }
        }));
    }
    let mut tokens = Vec::with_capacity(args.users);
    for task in tasks {
        tokens.push(task.await??);
    }
    Ok(tokens)
}

/// Creates the rooms as user 0; answers their codes.
pub async fn rooms(args: &Args, accounts: &[String]) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::new();
    let owner = accounts.first().context("no users")?;
    let mut codes = Vec::with_capacity(args.rooms);
    for i in 0..args.rooms {
        let answer: Value = client
            .post(format!("{}/api/rooms", args.url))
            .bearer_auth(owner)
            .json(&json!({"name": format!("load room {i}")}))
            .send()
            .await?
            .json()
            .await?;
        let code = answer["room"]["code"]
            .as_str()
            .context("room without a code")?;
        codes.push(code.to_string());
    }
    Ok(codes)
}

/// Waits until the server answers /healthz (it may have been started a moment ago), asking
/// every 100 ms for at most `limit`.
pub async fn wait_until_up(args: &Args, limit: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let up = client
            .get(format!("{}/healthz", args.url))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            return Ok(());
        }
        if started.elapsed() >= limit {
            bail!("{} did not answer /healthz within {limit:?}", args.url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Median time of five /healthz requests, in milliseconds.
pub async fn health_latency_ms(args: &Args) -> anyhow::Result<Option<f64>> {
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let ok = client
            .get(format!("{}/healthz", args.url))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times.get(times.len() / 2).copied())
}
