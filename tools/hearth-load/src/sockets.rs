//! The sockets: connect and join, then read (and for senders, send) until told to stop.
//!
//! Frames are not parsed as JSON on the hot path: the tool shares the machine with the server,
//! so it finds what it needs (acks, and the send time inside its own messages) by prefix.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::args::Args;
use crate::commands::{self, CommandTimes, Tracker};

type Ws = WebSocketStream<TcpStream>;

const MARK: &str = "\"text\":\"load:";
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

struct Socket {
    room: usize,
    sender: bool,
    ws: Ws,
}

pub struct Fleet {
    sockets: Vec<Socket>,
    rooms: Vec<String>,
    failed: usize,
}

/// What the sockets saw, summed.
pub struct Outcome {
    pub sends: u64,
    pub acks: u64,
    pub deliveries: u64,
    pub expected: u64,
    pub closed_by_server: usize,
    /// End-to-end latency in microseconds.
    pub latency: Histogram<u64>,
    /// With --command: the senders' command timings, summed.
    pub commands: Option<CommandTimes>,
}

#[derive(Default)]
struct Tally {
    sends: u64,
    acks: u64,
    deliveries: u64,
    closed_by_server: bool,
}

pub async fn open(
    args: &Args,
    accounts: &[String],
    rooms: &[String],
    deadline: Instant,
) -> anyhow::Result<Fleet> {
    let server = server_addr(&args.url)?;
    let permits = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let senders = args.senders();
    let mut tasks = Vec::with_capacity(args.sockets);
    for i in 0..args.sockets {
        let permits = permits.clone();
        let token = accounts[i % accounts.len()].clone();
        let room = i % rooms.len();
        let code = rooms[room].clone();
        let (url, source) = (args.ws_url(), args.source_ip(i));
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire().await?;
            let ws = connect(&url, server, source, &token, &code).await?;
            Ok::<_, anyhow::Error>(Socket {
                room,
                sender: i < senders,
                ws,
            })
        }));
    }
    let mut sockets = Vec::with_capacity(args.sockets);
    let mut failed = 0;
    let mut first_error = None;
    for task in tasks {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, task).await {
            Ok(Ok(Ok(socket))) => sockets.push(socket),
            Ok(Ok(Err(e))) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Ok(Err(e)) => bail!("socket task failed: {e}"),
            Err(_) => bail!("ran out of time while connecting"),
        }
    }
    if let Some(e) = first_error {
        eprintln!("{failed} sockets failed; the first: {e:#}");
    }
    Ok(Fleet {
        sockets,
        rooms: rooms.to_vec(),
        failed,
    })
}

fn server_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    authority
        .to_socket_addrs()?
        .find(|a| a.ip().is_loopback())
        .context("the URL names no loopback address")
}

async fn connect(
    url: &str,
    server: SocketAddr,
    source: std::net::Ipv4Addr,
    token: &str,
    code: &str,
) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    let join = json!({"type": "join", "room": code, "ref": "join"}).to_string();
    ws.send(Message::text(join)).await?;
    tokio::time::timeout(JOIN_TIMEOUT, async {
        while let Some(frame) = ws.next().await {
            if let Message::Text(text) = frame? {
                if text.starts_with("{\"type\":\"joined\"") || text.contains("\"type\":\"joined\"")
                {
                    return Ok(());
                }
                if text.contains("\"type\":\"error\"") {
                    bail!("join refused: {text}");
                }
            }
        }
        bail!("closed before joined")
    })
    .await
    .context("no joined in time")??;
    Ok(ws)
}

impl Fleet {
    pub fn connected(&self) -> usize {
        self.sockets.len()
    }

    pub fn failed(&self) -> usize {
        self.failed
    }

    /// With --command: asks /help (from the first sender) every half second until it lists the
    /// command, at most `args.bot_wait` seconds. Answers the seconds it waited.
    pub async fn wait_for_command(&mut self, args: &Args) -> anyhow::Result<f64> {
        let Some(name) = args.command().and_then(commands::command_name) else {
            return Ok(0.0);
        };
        let started = Instant::now();
        let limit = Duration::from_secs(args.bot_wait);
        let socket = self.sockets.first_mut().context("no socket")?;
        let code = self.rooms[socket.room].clone();
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let reference = format!("help-{attempt}");
            let ask = json!({"type": "send", "room": code, "text": "/help", "ref": reference});
            socket.ws.send(Message::text(ask.to_string())).await?;
            let remaining = limit.saturating_sub(started.elapsed());
            let help = tokio::time::timeout(remaining, async {
                while let Some(frame) = socket.ws.next().await {
                    if let Message::Text(text) = frame? {
                        let frame: serde_json::Value = match serde_json::from_str(&text) {
                            Ok(frame) => frame,
                            Err(_) => continue,
                        };
                        if frame["ref"].as_str() != Some(reference.as_str()) {
                            continue;
                        }
                        match frame["type"].as_str() {
                            Some("notice") => {
                                return Ok(frame["text"].as_str().unwrap_or("").to_string())
                            }
                            _ => bail!("/help was refused: {text}"),
                        }
                    }
                }
                bail!("the socket closed while waiting for /help")
            })
            .await
            .with_context(|| format!("/help did not answer within {} s", args.bot_wait))??;
            if commands::help_lists(&help, name) {
                return Ok(started.elapsed().as_secs_f64());
            }
            if started.elapsed() + Duration::from_millis(500) >= limit {
                bail!(
                    "/help did not list /{name} within {} s: {help}",
                    args.bot_wait
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Sends for `args.duration` seconds, waits `args.drain` more, and tallies.
    pub async fn run(self, args: &Args, deadline: Instant) -> Outcome {
        let base = Instant::now();
        let (stop_sending, sending) = watch::channel(false);
        let (stop_reading, reading) = watch::channel(false);
        let senders = args.senders().max(1);
        let interval =
            (args.rate > 0.0).then(|| Duration::from_secs_f64(senders as f64 / args.rate));
        let command: Option<Arc<str>> = args.command().map(Arc::from);
        let outstanding = Arc::new(AtomicI64::new(0));
        let sending_now = Arc::new(AtomicUsize::new(if interval.is_some() {
            self.sockets.iter().filter(|s| s.sender).count()
        } else {
            0
        }));
        let mut per_room = vec![0u64; self.rooms.len()];
        for socket in &self.sockets {
            per_room[socket.room] += 1;
        }
        let mut tasks = Vec::with_capacity(self.sockets.len());
        for socket in self.sockets {
            let code = self.rooms[socket.room].clone();
            let (sending, reading) = (sending.clone(), reading.clone());
            let room = socket.room;
            let tick = interval.filter(|_| socket.sender);
            let sends = Sends {
                tick,
                command: command.clone().filter(|_| socket.sender),
                outstanding: outstanding.clone(),
                sending_now: sending_now.clone(),
            };
            tasks.push(tokio::spawn(async move {
                (
                    room,
                    drive(socket.ws, code, sends, base, sending, reading).await,
                )
            }));
        }
        let send_for = Duration::from_secs(args.duration);
        tokio::time::sleep(send_for.min(deadline.saturating_duration_since(Instant::now()))).await;
        let _ = stop_sending.send(true);
        let drain_until = Instant::now() + Duration::from_secs(args.drain);
        while Instant::now() < drain_until {
            let done =
                sending_now.load(Ordering::SeqCst) == 0 && outstanding.load(Ordering::SeqCst) <= 0;
            if command.is_some() && done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop_reading.send(true);

        let mut latency = new_histogram();
        let mut command_times = command.as_ref().map(|_| CommandTimes::new());
        let mut acks_per_room: HashMap<usize, u64> = HashMap::new();
        let (mut sends, mut acks, mut deliveries, mut closed) = (0, 0, 0, 0);
        for task in tasks {
            let Ok((room, (tally, latencies, times))) = task.await else {
                continue;
            };
            if let (Some(sum), Some(times)) = (command_times.as_mut(), times) {
                sum.add(&times);
            }
            sends += tally.sends;
            acks += tally.acks;
            deliveries += tally.deliveries;
            closed += usize::from(tally.closed_by_server);
            *acks_per_room.entry(room).or_default() += tally.acks;
            for micros in latencies {
                let _ = latency.record(u64::from(micros).max(1));
            }
        }
        // Commands are not chat of the tool's own: their deliveries are not counted.
        let expected = if command.is_some() {
            0
        } else {
            acks_per_room
                .iter()
                .map(|(room, acked)| acked * per_room[*room])
                .sum()
        };
        Outcome {
            sends,
            acks,
            deliveries,
            expected,
            closed_by_server: closed,
            latency,
            commands: command_times,
        }
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant figures: constant, valid bounds.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// What one socket sends: nothing, chat every `tick`, or with `command` that command.
struct Sends {
    tick: Option<Duration>,
    command: Option<Arc<str>>,
    outstanding: Arc<AtomicI64>,
    /// Sockets that may still send; each counts itself out once it has stopped for good.
    sending_now: Arc<AtomicUsize>,
}

async fn drive(
    mut ws: Ws,
    code: String,
    sends: Sends,
    base: Instant,
    mut sending: watch::Receiver<bool>,
    mut reading: watch::Receiver<bool>,
) -> (Tally, Vec<u32>, Option<CommandTimes>) {
    let mut tally = Tally::default();
    // Latencies in µs, summed into one histogram at the end: a histogram per socket is 139 KB
    // (1.4 GB for 10,000 sockets), where a socket's own samples are a few hundred bytes.
    let mut latencies = Vec::new();
    let tick = sends.tick;
    let mut ticker = tick.map(tokio::time::interval);
    let mut send_on = tick.is_some();
    let sending_now = sends.sending_now;
    let stop = |send_on: &mut bool| {
        if std::mem::take(send_on) {
            sending_now.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let command = sends.command;
    let mut tracker = command
        .as_ref()
        .map(|_| Tracker::new(sends.outstanding.clone()));
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let (Some(tracker), Some(command)) = (tracker.as_mut(), command.as_deref()) {
                        tracker.frame(&text, command, Instant::now());
                    }
                    if text.starts_with("{\"type\":\"ack\"") {
                        tally.acks += 1;
                    } else if let Some(at) = text.find(MARK) {
                        let digits = &text[at + MARK.len()..];
                        let end = digits.find('"').unwrap_or(digits.len());
                        if let Ok(sent_us) = digits[..end].parse::<u64>() {
                            let now_us = base.elapsed().as_micros() as u64;
                            let micros = now_us.saturating_sub(sent_us);
                            latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                            tally.deliveries += 1;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    tally.closed_by_server = !*reading.borrow();
                    break;
                }
                Some(Ok(_)) => {}
            },
            _ = async { ticker.as_mut().map(|t| t.tick()).expect("guarded").await }, if send_on && ticker.is_some() => {
                // A tick that raced the end of sending sends nothing.
                if *sending.borrow() {
                    stop(&mut send_on);
                    continue;
                }
                let frame = match (tracker.as_mut(), command.as_deref()) {
                    (Some(tracker), Some(command)) => {
                        let reference = tracker.send(Instant::now());
                        json!({"type": "send", "room": code, "text": command, "ref": reference})
                    }
                    _ => {
                        let text = format!("load:{}", base.elapsed().as_micros());
                        json!({"type": "send", "room": code, "text": text})
                    }
                }
                .to_string();
                if ws.send(Message::text(frame)).await.is_err() {
                    tally.closed_by_server = true;
                    break;
                }
                tally.sends += 1;
            }
            _ = sending.changed(), if send_on => {
                stop(&mut send_on);
            }
            _ = reading.changed() => {
                let _ = ws.close(None).await;
                break;
            }
        }
    }
    stop(&mut send_on);
    (tally, latencies, tracker.map(|t| t.times))
}
