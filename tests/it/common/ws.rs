//! A small WebSocket client for the tests (JSON frames in and out, every receive bounded by a
//! timeout) and the HTTP set-up the socket tests share. Works against the in-process
//! [`TestServer`] and the spawned binary ([`Running`]) alike.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::process::Running;
use super::{client, read, TestServer};

/// How long any single receive may wait.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A server to talk to.
pub trait Target {
    /// `http://host:port`, no trailing slash.
    fn base(&self) -> String;
}

impl Target for TestServer {
    fn base(&self) -> String {
        self.url("")
    }
}

impl Target for Running {
    fn base(&self) -> String {
        self.base.clone()
    }
}

type Ws = WebSocketStream<TcpStream>;

/// What a client sends on the upgrade request.
#[derive(Default, Clone, Copy)]
pub struct Upgrade<'a> {
    /// `Authorization: Bearer <token>`
    pub token: Option<&'a str>,
    /// `Cookie: hearth_session=<cookie>`
    pub cookie: Option<&'a str>,
    pub origin: Option<&'a str>,
    /// SO_RCVBUF of the client socket: small makes a client that stops reading stall quickly.
    pub recv_buffer: Option<u32>,
    /// The client's own address (any of 127.0.0.0/8 on loopback), so that the server sees
    /// several clients: per-address limits.
    pub from: Option<std::net::IpAddr>,
}

async fn open(target: &impl Target, up: Upgrade<'_>) -> Result<Ws, WsError> {
    let base = target.base();
    let host = base.trim_start_matches("http://").to_string();
    let mut request = format!("ws://{host}/ws").into_client_request()?;
    let headers = request.headers_mut();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    };
    if let Some(token) = up.token {
        set("authorization", format!("Bearer {token}"));
    }
    if let Some(cookie) = up.cookie {
        set("cookie", format!("hearth_session={cookie}"));
    }
    if let Some(origin) = up.origin {
        set("origin", origin.to_string());
    }
    let addr: SocketAddr = host.parse().expect("base is http://ip:port");
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = up.recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(from) = up.from {
        socket.bind(SocketAddr::new(from, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(tokio_tungstenite::client_async(request, stream).await?.0)
}

/// The HTTP status the upgrade gets: 101 when it was accepted, else the refusal's status.
pub async fn upgrade_status(target: &impl Target, up: Upgrade<'_>) -> u16 {
    upgrade_answer(target, up).await.0
}

/// The upgrade's status and, for a refusal, its JSON body (101 and null when accepted; the
/// socket is closed at once).
pub async fn upgrade_answer(target: &impl Target, up: Upgrade<'_>) -> (u16, Value) {
    match timeout(TIMEOUT, open(target, up))
        .await
        .expect("upgrade answered")
    {
        Ok(mut ws) => {
            let _ = ws.close(None).await;
            (101, Value::Null)
        }
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or(Value::Null);
            (response.status().as_u16(), body)
        }
        Err(e) => panic!("upgrade failed without an HTTP answer: {e}"),
    }
}

/// One thing read from a socket (pings and pongs are skipped).
#[derive(Debug)]
pub enum Incoming {
    Json(Value),
    /// A close frame: code (1005 when it had none) and reason.
    Close(u16, String),
    /// The connection ended or failed without a close frame.
    Ended(String),
}

pub struct WsSender {
    sink: SplitSink<Ws, Message>,
    refs: u64,
}

pub struct WsReceiver {
    stream: SplitStream<Ws>,
}

/// A connected socket. Its halves are public so a test can read and write from two tasks and
/// put them back together with `WsClient { tx, rx }`.
pub struct WsClient {
    pub tx: WsSender,
    pub rx: WsReceiver,
}

impl WsSender {
    pub async fn send(&mut self, frame: Value) {
        assert!(self.try_send(frame).await, "socket closed while sending");
    }

    /// Sends, answering whether the socket took it.
    pub async fn try_send(&mut self, frame: Value) -> bool {
        self.sink
            .send(Message::text(frame.to_string()))
            .await
            .is_ok()
    }

    pub async fn send_raw_text(&mut self, text: &str) {
        self.sink.send(Message::text(text)).await.unwrap();
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.sink.send(Message::binary(bytes)).await.unwrap();
    }

    /// A `ref` no other frame of this socket used.
    pub fn fresh_ref(&mut self) -> String {
        self.refs += 1;
        format!("q{}", self.refs)
    }
}

impl WsReceiver {
    /// The next frame, or `None` if nothing came before `deadline`.
    pub async fn next_until(&mut self, deadline: Instant) -> Option<Incoming> {
        loop {
            let message = timeout_at(deadline, self.stream.next()).await.ok()?;
            return Some(match message {
                None => Incoming::Ended("stream ended".into()),
                Some(Err(e)) => Incoming::Ended(e.to_string()),
                Some(Ok(Message::Text(text))) => match serde_json::from_str(&text) {
                    Ok(value) => Incoming::Json(value),
                    Err(e) => panic!("server sent a text frame that is not JSON: {e}: {text}"),
                },
                Some(Ok(Message::Close(Some(frame)))) => {
                    Incoming::Close(frame.code.into(), frame.reason.to_string())
                }
                Some(Ok(Message::Close(None))) => Incoming::Close(1005, String::new()),
                Some(Ok(Message::Binary(bytes))) => {
                    panic!("server sent a binary frame of {} bytes", bytes.len())
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            });
        }
    }

    /// The next frame, waiting at most [`TIMEOUT`].
    pub async fn next(&mut self) -> Incoming {
        self.next_until(Instant::now() + TIMEOUT)
            .await
            .expect("no frame within 5 s")
    }

    /// The next JSON frame; a close or a timeout fails the test.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Incoming::Json(value) => value,
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }

    /// The first JSON frame for which `wanted` holds, within [`TIMEOUT`]; earlier frames are
    /// dropped.
    pub async fn recv_until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.next_until(deadline).await {
                Some(Incoming::Json(value)) if wanted(&value) => return value,
                Some(Incoming::Json(_)) => {}
                Some(other) => panic!("socket closed while waiting: {other:?}"),
                None => panic!("the awaited frame did not come within 5 s"),
            }
        }
    }

    /// Skips JSON frames until the server's close frame; answers its code and reason.
    pub async fn expect_close(&mut self) -> (u16, String) {
        let deadline = Instant::now() + 2 * TIMEOUT;
        loop {
            match self.next_until(deadline).await {
                Some(Incoming::Json(_)) => {}
                Some(Incoming::Close(code, reason)) => return (code, reason),
                Some(Incoming::Ended(why)) => {
                    panic!("connection ended without a close frame: {why}")
                }
                None => panic!("no close frame within 10 s"),
            }
        }
    }
}

impl WsClient {
    /// Connects with `Authorization: Bearer <token>`; the upgrade must succeed.
    pub async fn connect(target: &impl Target, token: &str) -> WsClient {
        Self::connect_with(
            target,
            Upgrade {
                token: Some(token),
                ..Upgrade::default()
            },
        )
        .await
    }

    pub async fn connect_with(target: &impl Target, up: Upgrade<'_>) -> WsClient {
        let ws = timeout(TIMEOUT, open(target, up))
            .await
            .expect("upgrade answered within 5 s")
            .unwrap_or_else(|e| panic!("upgrade refused: {e}"));
        let (sink, stream) = ws.split();
        WsClient {
            tx: WsSender { sink, refs: 0 },
            rx: WsReceiver { stream },
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.tx.send(frame).await;
    }

    pub async fn send_raw_text(&mut self, text: &str) {
        self.tx.send_raw_text(text).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.tx.send_binary(bytes).await;
    }

    pub async fn next(&mut self) -> Incoming {
        self.rx.next().await
    }

    pub async fn recv(&mut self) -> Value {
        self.rx.recv().await
    }

    pub async fn recv_until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        self.rx.recv_until(wanted).await
    }

    pub async fn expect_close(&mut self) -> (u16, String) {
        self.rx.expect_close().await
    }

    /// Sends `frame` with a fresh `ref`; answers the frame carrying that `ref` and the frames
    /// that came before it.
    pub async fn request_seeing(&mut self, mut frame: Value) -> (Value, Vec<Value>) {
        let r = self.tx.fresh_ref();
        frame["ref"] = json!(r);
        self.tx.send(frame.clone()).await;
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match self.rx.next_until(deadline).await {
                Some(Incoming::Json(value)) if value["ref"] == json!(r) => return (value, seen),
                Some(Incoming::Json(value)) => seen.push(value),
                Some(other) => panic!("socket closed awaiting the answer to {frame}: {other:?}"),
                None => panic!("no answer to {frame} within 5 s"),
            }
        }
    }

    /// Sends `frame` with a fresh `ref` and answers the reply to it (other frames are dropped).
    pub async fn request(&mut self, frame: Value) -> Value {
        self.request_seeing(frame).await.0
    }

    /// Joins `room`; answers the `joined` frame.
    pub async fn join(&mut self, room: &str) -> Value {
        let answer = self.request(json!({"type": "join", "room": room})).await;
        assert_eq!(answer["type"], "joined", "join {room}: {answer}");
        answer
    }

    pub async fn join_since(&mut self, room: &str, since: u64) -> Value {
        let answer = self
            .request(json!({"type": "join", "room": room, "since": since}))
            .await;
        assert_eq!(
            answer["type"], "joined",
            "join {room} since {since}: {answer}"
        );
        answer
    }

    /// Posts `text` to `room`; answers the `ack`.
    pub async fn say(&mut self, room: &str, text: &str) -> Value {
        let answer = self
            .request(json!({"type": "send", "room": room, "text": text}))
            .await;
        assert_eq!(answer["type"], "ack", "send to {room}: {answer}");
        answer
    }

    /// Posts `texts` to `room` in order, at most 20 unacknowledged at a time (a client that
    /// sends hundreds without reading is a slow consumer); answers their acks, in the same order.
    pub async fn say_all(&mut self, room: &str, texts: &[String]) -> Vec<Value> {
        let batch = self.tx.fresh_ref();
        let mut acks = vec![Value::Null; texts.len()];
        let (mut sent, mut answered) = (0, 0);
        while answered < texts.len() {
            if sent < texts.len() && sent < answered + 20 {
                let r = format!("{batch}-{sent}");
                let frame = json!({"type": "send", "room": room, "text": texts[sent], "ref": r});
                self.tx.send(frame).await;
                sent += 1;
                continue;
            }
            let frame = self.rx.recv().await;
            let index = frame["ref"]
                .as_str()
                .and_then(|r| r.strip_prefix(&format!("{batch}-")))
                .and_then(|i| i.parse::<usize>().ok());
            if let Some(i) = index {
                assert_eq!(frame["type"], "ack", "{}: {frame}", texts[i]);
                acks[i] = frame;
                answered += 1;
            }
        }
        acks
    }

    /// Posts `text` to `room` and reads until both the ack and the sender's own copy have come;
    /// answers the frames that came before that copy (the ack left out).
    pub async fn say_seeing(&mut self, room: &str, text: &str) -> Vec<Value> {
        let (ack, mut seen) = self
            .request_seeing(json!({"type": "send", "room": room, "text": text}))
            .await;
        assert_eq!(ack["type"], "ack", "send to {room}: {ack}");
        if let Some(at) = seen.iter().position(|f| is_chat(f, text)) {
            seen.truncate(at);
            return seen;
        }
        loop {
            let frame = self.recv().await;
            if is_chat(&frame, text) {
                return seen;
            }
            seen.push(frame);
        }
    }

    /// Like `expect_close`, but reads the TCP stream itself and writes nothing. tungstenite
    /// answers every ping it reads with a pong; once the server has dropped the connection that
    /// write fails before the close frame queued behind the pings is read. Use it on a socket
    /// not read since its last complete frame (server frames are unmasked, easy to walk).
    pub async fn expect_close_unanswered(self) -> (u16, String) {
        let mut ws = match self.rx.stream.reunite(self.tx.sink) {
            Ok(ws) => ws,
            Err(_) => panic!("the halves of one socket reunite"),
        };
        let tcp = ws.get_mut();
        let deadline = Instant::now() + 2 * TIMEOUT;
        let mut bytes = Vec::new();
        loop {
            let mut at = 0;
            while let Some((opcode, payload, next)) = frame_at(&bytes, at) {
                if opcode == 0x8 {
                    return match payload {
                        [hi, lo, reason @ ..] => (
                            u16::from_be_bytes([*hi, *lo]),
                            String::from_utf8_lossy(reason).into_owned(),
                        ),
                        _ => (1005, String::new()),
                    };
                }
                at = next;
            }
            match timeout_at(deadline, tcp.read_buf(&mut bytes)).await {
                Ok(Ok(0)) => panic!("connection ended without a close frame"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("connection failed without a close frame: {e}"),
                Err(_) => panic!("no close frame within 10 s"),
            }
        }
    }

    /// Sends a close frame and lets the connection go.
    pub async fn close(mut self) {
        let _ = self.tx.sink.close().await;
    }
}

/// The unmasked frame starting at `at` in `bytes`, if complete: (opcode, payload, next).
fn frame_at(bytes: &[u8], at: usize) -> Option<(u8, &[u8], usize)> {
    let header = bytes.get(at..at + 2)?;
    let (len, start) = match header[1] & 0x7f {
        126 => {
            let len = u16::from_be_bytes(bytes.get(at + 2..at + 4)?.try_into().unwrap());
            (usize::from(len), at + 4)
        }
        127 => {
            let len = u64::from_be_bytes(bytes.get(at + 2..at + 10)?.try_into().unwrap());
            (usize::try_from(len).unwrap(), at + 10)
        }
        len => (usize::from(len), at + 2),
    };
    let payload = bytes.get(start..start + len)?;
    Some((header[0] & 0x0f, payload, start + len))
}

/// Whether `frame` is a `message` carrying the chat item `text`.
pub fn is_chat(frame: &Value, text: &str) -> bool {
    frame["type"] == "message" && frame["item"]["kind"] == "chat" && frame["item"]["text"] == text
}

/// Whether `frame` is a `message` carrying a system item for `event`.
pub fn is_event(frame: &Value, event: &str) -> bool {
    frame["type"] == "message"
        && frame["item"]["kind"] == "system"
        && frame["item"]["event"] == event
}

/// Whether `frame` is an `error` with `code`.
pub fn is_error(frame: &Value, code: &str) -> bool {
    frame["type"] == "error" && frame["code"] == code
}

/// The named fields of `frame` (missing ones as null), to compare a frame with what the
/// protocol fixes while letting the server add fields.
pub fn pick(frame: &Value, keys: &[&str]) -> Value {
    keys.iter()
        .map(|k| (k.to_string(), frame.get(*k).cloned().unwrap_or(Value::Null)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// A JSON number as u64 (seq, id, ts), failing the test otherwise.
pub fn num(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

pub async fn http_get(target: &impl Target, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = client().get(format!("{}{path}", target.base()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let (status, body) = read(request.send().await.unwrap()).await;
    (status.as_u16(), body)
}

pub async fn http_post(
    target: &impl Target,
    path: &str,
    body: Value,
    token: Option<&str>,
) -> (u16, Value) {
    let mut request = client()
        .post(format!("{}{path}", target.base()))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let (status, body) = read(request.send().await.unwrap()).await;
    (status.as_u16(), body)
}

/// Registers `username` with the shared password; answers the token.
pub async fn register(target: &impl Target, username: &str) -> String {
    let body = json!({"username": username, "password": super::PASSWORD});
    let (status, answer) = http_post(target, "/api/auth/register", body, None).await;
    assert_eq!(status, 201, "register {username}: {answer}");
    answer["token"].as_str().unwrap().to_string()
}

/// Creates a room over HTTP; answers its code.
pub async fn create_room(target: &impl Target, token: &str, name: &str) -> String {
    let (status, body) = http_post(target, "/api/rooms", json!({"name": name}), Some(token)).await;
    assert_eq!(status, 201, "create room {name:?}: {body}");
    body["room"]["code"].as_str().unwrap().to_string()
}

/// Every history item of `room` over HTTP, oldest first, paging back with `before`.
pub async fn history(target: &impl Target, token: &str, room: &str) -> Vec<Value> {
    let mut items: Vec<Value> = Vec::new();
    let mut path = format!("/api/rooms/{room}/messages?limit=200");
    loop {
        let (status, body) = http_get(target, &path, Some(token)).await;
        assert_eq!(status, 200, "{path}: {body}");
        let mut page = body["messages"].as_array().unwrap().clone();
        let oldest = page.first().map(|item| num(&item["seq"]));
        page.append(&mut items);
        items = page;
        match (body["more"].as_bool().unwrap(), oldest) {
            (true, Some(oldest)) => {
                path = format!("/api/rooms/{room}/messages?limit=200&before={oldest}");
            }
            (true, None) => panic!("{path}: more = true on an empty page"),
            (false, _) => return items,
        }
    }
}
