//! Limits and closes on the socket: bad input, frame size, rate limits and flooding, origin and
//! authentication of the upgrade, slow consumers, pings and silence (logout and the end of
//! sessions: tests/it/sessions.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ws::{
    create_room, history, is_error, num, upgrade_status, Incoming, Upgrade, WsClient, TIMEOUT,
};
use common::TestServer;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

/// A well-formed room code that is none of `taken`.
fn unused_code(taken: &[&str]) -> String {
    ["ZZZZZZ", "YYYYYY", "XXXXXX"]
        .into_iter()
        .find(|c| !taken.contains(c))
        .unwrap()
        .to_string()
}

enum Input {
    /// A text frame sent as is; the server cannot parse it, so its error has no `ref`.
    Raw(&'static str),
    /// A binary frame: `bad_request`, no `ref`.
    Binary(Vec<u8>),
    /// A JSON object; the test adds a `ref`, which the error must carry.
    Frame(Value),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_error_and_the_socket_stays_usable() {
    let server = TestServer::start_with(|c| c.ws.rate_per_sec = 0).await;
    let sam = server.register("sam").await;
    let kim = server.register("kim").await;
    let owen = server.register("owen").await;
    let room = create_room(&server, &kim, "open").await;
    let private = create_room(&server, &owen, "private").await;
    let unknown = unused_code(&[&room, &private]);
    let mut s = WsClient::connect(&server, &sam).await;
    s.join(&room).await;
    // kim keeps chatting in the same room throughout and must keep being served.
    let mut k = WsClient::connect(&server, &kim).await;
    k.join(&room).await;

    use Input::{Binary, Frame, Raw};
    let send = |text: Value| json!({"type": "send", "room": room, "text": text});
    let cases: Vec<(&str, Input, &str)> = vec![
        ("not JSON", Raw("hello"), "bad_request"),
        (
            "truncated JSON",
            Raw(r#"{"type": "send", "room""#),
            "bad_request",
        ),
        ("a JSON array", Raw("[1, 2]"), "bad_request"),
        ("a JSON string", Raw("\"send\""), "bad_request"),
        (
            "binary frame",
            Binary(send(json!("hi")).to_string().into_bytes()),
            "bad_request",
        ),
        (
            "missing type",
            Frame(json!({"room": room, "text": "x"})),
            "bad_request",
        ),
        (
            "type not a string",
            Frame(json!({"type": 5, "room": room})),
            "bad_request",
        ),
        (
            "unknown type",
            Frame(json!({"type": "dance", "room": room})),
            "bad_request",
        ),
        (
            "send without text",
            Frame(json!({"type": "send", "room": room})),
            "bad_request",
        ),
        (
            "send without room",
            Frame(json!({"type": "send", "text": "x"})),
            "bad_request",
        ),
        (
            "join without room",
            Frame(json!({"type": "join"})),
            "bad_request",
        ),
        (
            "kick without user",
            Frame(json!({"type": "kick", "room": room})),
            "bad_request",
        ),
        ("text not a string", Frame(send(json!(42))), "bad_request"),
        (
            "room not a string",
            Frame(json!({"type": "send", "room": 7, "text": "x"})),
            "bad_request",
        ),
        (
            "since not a number",
            Frame(json!({"type": "join", "room": room, "since": "x"})),
            "bad_request",
        ),
        (
            "limit not a number",
            Frame(json!({"type": "history", "room": room, "limit": "ten"})),
            "bad_request",
        ),
        (
            "on not a bool",
            Frame(json!({"type": "react", "room": room, "seq": 1, "emoji": "👍", "on": "yes"})),
            "bad_request",
        ),
        ("empty text", Frame(send(json!(""))), "bad_request"),
        (
            "whitespace-only text",
            Frame(send(json!("  \n\t  "))),
            "bad_request",
        ),
        (
            "4001 characters",
            Frame(send(json!("x".repeat(4001)))),
            "too_long",
        ),
        (
            "4001 two-byte characters",
            Frame(send(json!("é".repeat(4001)))),
            "too_long",
        ),
        (
            "send to an unknown room",
            Frame(json!({"type": "send", "room": unknown, "text": "x"})),
            "unknown_room",
        ),
        (
            "join an unknown room",
            Frame(json!({"type": "join", "room": unknown})),
            "unknown_room",
        ),
        (
            "join a malformed code",
            Frame(json!({"type": "join", "room": "nope!"})),
            "unknown_room",
        ),
        (
            "send as a non-member",
            Frame(json!({"type": "send", "room": private, "text": "x"})),
            "not_member",
        ),
        (
            "history as a non-member",
            Frame(json!({"type": "history", "room": private})),
            "not_member",
        ),
        (
            "react as a non-member",
            Frame(json!({"type": "react", "room": private, "seq": 1, "emoji": "👍", "on": true})),
            "not_member",
        ),
    ];
    for (i, (what, input, expected)) in cases.into_iter().enumerate() {
        let wanted_ref = match input {
            Raw(text) => {
                s.send_raw_text(text).await;
                None
            }
            Binary(bytes) => {
                s.send_binary(bytes).await;
                None
            }
            Frame(mut frame) => {
                frame["ref"] = json!(format!("bad{i}"));
                s.send(frame).await;
                Some(format!("bad{i}"))
            }
        };
        let answer = s.recv_until(|f| f["type"] == "error").await;
        assert_eq!(answer["code"], expected, "{what}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {answer}"
        );
        match wanted_ref {
            Some(r) => assert_eq!(answer["ref"], r, "{what}: the error carries the ref"),
            None => assert!(
                answer.get("ref").is_none_or(Value::is_null),
                "{what}: unparseable input has no ref: {answer}"
            ),
        }
        // The same socket still works and got exactly one answer; kim is still served.
        let (check, before) = s
            .request_seeing(json!({"type": "history", "room": room, "limit": 1}))
            .await;
        assert_eq!(check["type"], "history", "{what}: {check}");
        assert!(
            before.iter().all(|f| f["type"] != "error"),
            "{what}: one answer only: {before:?}"
        );
        k.say(&room, &format!("served after {what}")).await;
    }

    // The boundaries that pass: 4000 characters (of any width), counted after trimming, and
    // the stored text is trimmed.
    let accepted = [
        ("x".repeat(4000), "x".repeat(4000)),
        ("é".repeat(4000), "é".repeat(4000)),
        (format!("  {}\n ", "y".repeat(4000)), "y".repeat(4000)),
        ("\t trimmed \n".to_string(), "trimmed".to_string()),
    ];
    let mut stored = HashMap::new();
    for (text, expected) in accepted {
        let ack = s.say(&room, &text).await;
        stored.insert(num(&ack["seq"]), expected);
    }
    for item in history(&server, &sam, &room).await {
        if let Some(expected) = stored.get(&num(&item["seq"])) {
            assert_eq!(item["text"].as_str().unwrap(), expected);
        }
    }

    // A frame over 64 KiB closes that socket with 1009; the others carry on.
    let mut big = WsClient::connect(&server, &sam).await;
    big.join(&room).await;
    let frame = json!({"type": "send", "room": room, "text": "z".repeat(65 * 1024)}).to_string();
    assert!(frame.len() > 64 * 1024);
    big.send_raw_text(&frame).await;
    let (code, reason) = big.expect_close().await;
    assert_eq!(code, 1009, "{reason}");
    assert_eq!(
        s.request(json!({"type": "history", "room": room})).await["type"],
        "history"
    );
    k.say(&room, "served after the big frame").await;
}

/// Sends `frames` sends at once (refs `{prefix}{i}`); answers each ref's answer.
async fn burst(
    client: &mut WsClient,
    room: &str,
    prefix: &str,
    frames: usize,
) -> HashMap<String, Value> {
    for i in 0..frames {
        let frame = json!({"type": "send", "room": room, "text": format!("{prefix}{i}"), "ref": format!("{prefix}{i}")});
        client.send(frame).await;
    }
    let mut answers = HashMap::new();
    while answers.len() < frames {
        let frame = client.recv().await;
        if let Some(r) = frame["ref"].as_str().filter(|r| r.starts_with(prefix)) {
            assert!(
                answers.insert(r.to_string(), frame.clone()).is_none(),
                "one answer per ref: {frame}"
            );
        }
    }
    answers
}

#[tokio::test]
async fn a_burst_over_the_rate_is_refused_and_dropped() {
    let server = TestServer::start_with(|c| {
        c.ws.rate_per_sec = 2;
        c.ws.rate_burst = 5;
        c.ws.flood_close_after = 0;
    })
    .await;
    let rita = server.register("rita").await;
    let room = create_room(&server, &rita, "limited").await;
    let mut c = WsClient::connect(&server, &rita).await;
    c.join(&room).await;

    let started = Instant::now();
    let answers = burst(&mut c, &room, "b", 20).await;
    let refill = (2.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    let acked: Vec<&String> = answers
        .iter()
        .filter(|(_, a)| a["type"] == "ack")
        .map(|(r, _)| r)
        .collect();
    let limited = answers
        .values()
        .filter(|a| is_error(a, "rate_limited"))
        .count();
    assert_eq!(
        acked.len() + limited,
        20,
        "only acks and rate_limited: {answers:?}"
    );
    // The bucket holds 5; the join took one.
    assert!(
        (4..=5 + refill).contains(&acked.len()),
        "{} acked, refill {refill}",
        acked.len()
    );

    // Refused frames are dropped: exactly the acked messages are stored.
    let mut stored: Vec<String> = history(&server, &rita, &room)
        .await
        .iter()
        .filter(|i| i["kind"] == "chat")
        .map(|i| i["text"].as_str().unwrap().to_string())
        .collect();
    let mut acked: Vec<String> = acked.into_iter().cloned().collect();
    stored.sort();
    acked.sort();
    assert_eq!(stored, acked);

    // Tokens come back at the sustained rate.
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.say(&room, "later").await;
}

#[tokio::test]
async fn sustained_flooding_closes_with_1008() {
    const CLOSE_AFTER: usize = 10;
    let server = TestServer::start_with(|c| {
        c.ws.rate_per_sec = 1;
        c.ws.rate_burst = 1;
        c.ws.flood_close_after = CLOSE_AFTER as u32;
    })
    .await;
    let fred = server.register("fred").await;
    let calm = server.register("calm").await;
    let room = create_room(&server, &fred, "flooded").await;
    let quiet = create_room(&server, &calm, "quiet").await;

    // fred is a member (the creator) without subscribing, so the only frames he gets are
    // answers: one per frame sent, until the close.
    let mut c = WsClient::connect(&server, &fred).await;
    let mut refused = 0;
    let close = 'flood: {
        for i in 0..10 * CLOSE_AFTER {
            let frame =
                json!({"type": "history", "room": room, "limit": 1, "ref": format!("f{i}")});
            if !c.tx.try_send(frame).await {
                break 'flood c.expect_close().await;
            }
            match c.next().await {
                Incoming::Json(answer) if is_error(&answer, "rate_limited") => refused += 1,
                Incoming::Json(answer) => assert_eq!(answer["type"], "history", "{answer}"),
                Incoming::Close(code, reason) => break 'flood (code, reason),
                Incoming::Ended(why) => panic!("ended without a close frame: {why}"),
            }
        }
        panic!("still open after {refused} refused frames");
    };
    assert_eq!(close.0, 1008, "{close:?}");
    assert!(
        (CLOSE_AFTER - 1..=CLOSE_AFTER + 1).contains(&refused),
        "closed after {refused} refused frames"
    );

    // Limits are per socket: another client is served at once.
    let mut other = WsClient::connect(&server, &calm).await;
    let answer = other
        .request(json!({"type": "history", "room": quiet}))
        .await;
    assert_eq!(answer["type"], "history", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limits_allow_20_per_second_and_bursts_of_50() {
    let server = TestServer::start().await;
    let dora = server.register("dora").await;
    let room = create_room(&server, &dora, "ordinary").await;
    let client = WsClient::connect(&server, &dora).await;

    // 20 frames/s for 3 s, answers read as they come.
    let WsClient { mut tx, mut rx } = client;
    let writer = {
        let room = room.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            for i in 0..60 {
                tick.tick().await;
                let frame = json!({"type": "send", "room": room, "text": format!("steady {i}"), "ref": format!("s{i}")});
                tx.send(frame).await;
            }
            tx
        })
    };
    let mut answers = 0;
    while answers < 60 {
        let frame = rx.recv().await;
        if frame.get("ref").is_some() {
            assert_eq!(frame["type"], "ack", "{frame}");
            answers += 1;
        }
    }
    let tx = writer.await.unwrap();
    let mut client = WsClient { tx, rx };

    // And then 50 at once.
    let answers = burst(&mut client, &room, "b", 50).await;
    for (r, answer) in &answers {
        assert_eq!(answer["type"], "ack", "{r}: {answer}");
    }
}

#[tokio::test]
async fn the_upgrade_checks_origin_and_authentication() {
    let server =
        TestServer::start_with(|c| c.allowed_origins = vec!["https://app.example".into()]).await;
    let token = server.register("olly").await;
    let own = server.url("");
    let t = Some(token.as_str());
    let evil = Some("https://evil.example");
    let cases: Vec<(&str, Upgrade, u16)> = vec![
        (
            "foreign origin, valid token",
            Upgrade {
                token: t,
                origin: evil,
                ..Upgrade::default()
            },
            403,
        ),
        (
            "foreign origin, valid cookie",
            Upgrade {
                cookie: t,
                origin: evil,
                ..Upgrade::default()
            },
            403,
        ),
        (
            "foreign origin, no auth",
            Upgrade {
                origin: evil,
                ..Upgrade::default()
            },
            403,
        ),
        (
            "own host, other port",
            Upgrade {
                token: t,
                origin: Some("http://127.0.0.1:1"),
                ..Upgrade::default()
            },
            403,
        ),
        ("no auth", Upgrade::default(), 401),
        (
            "garbage token",
            Upgrade {
                token: Some("garbage"),
                ..Upgrade::default()
            },
            401,
        ),
        (
            "garbage cookie",
            Upgrade {
                cookie: Some("garbage"),
                ..Upgrade::default()
            },
            401,
        ),
        (
            "own origin, no auth",
            Upgrade {
                origin: Some(&own),
                ..Upgrade::default()
            },
            401,
        ),
        (
            "valid token, no origin",
            Upgrade {
                token: t,
                ..Upgrade::default()
            },
            101,
        ),
        (
            "valid cookie, no origin",
            Upgrade {
                cookie: t,
                ..Upgrade::default()
            },
            101,
        ),
        (
            "valid token, own origin",
            Upgrade {
                token: t,
                origin: Some(&own),
                ..Upgrade::default()
            },
            101,
        ),
        (
            "valid cookie, own origin",
            Upgrade {
                cookie: t,
                origin: Some(&own),
                ..Upgrade::default()
            },
            101,
        ),
        (
            "valid token, configured origin",
            Upgrade {
                token: t,
                origin: Some("https://app.example"),
                ..Upgrade::default()
            },
            101,
        ),
    ];
    for (what, upgrade, expected) in cases {
        assert_eq!(upgrade_status(&server, upgrade).await, expected, "{what}");
    }

    // A cookie-authenticated socket works like any other.
    let room = create_room(&server, &token, "cookies").await;
    let mut c = WsClient::connect_with(
        &server,
        Upgrade {
            cookie: t,
            origin: Some(&own),
            ..Upgrade::default()
        },
    )
    .await;
    c.join(&room).await;
    c.say(&room, "hello").await;
}

const CHATTERS: usize = 20;
const EACH: usize = 15;
/// Loopback's large MSS lets the server's send buffer grow to megabytes, so filling a stalled
/// client's buffers (and then its queue of 256 frames) takes several MB: a firehose of
/// 16 KB messages in a second room supplies them cheaply. This bounds it.
const FIREHOSE: usize = 1500;

fn large(prefix: &str) -> String {
    format!("{prefix} {}", "x".repeat(3500))
}

/// Posts 16 KB messages to `room` (at most 16 unacknowledged) while subscribed to it, until
/// every chatter is done and, with `watch`, the user `stalled` has gone offline there, which
/// it signals. Answers how many it posted.
async fn firehose(
    mut client: WsClient,
    room: String,
    chatters_done: Arc<AtomicUsize>,
    watch: Option<Arc<Notify>>,
) -> usize {
    let (mut sent, mut acked) = (0, 0);
    let mut offline = watch.is_none();
    loop {
        let enough = offline && chatters_done.load(Ordering::SeqCst) == CHATTERS;
        if !enough && sent < FIREHOSE && sent < acked + 16 {
            // 4000 characters of four bytes each.
            let text = format!("{sent:04}{}", "😀".repeat(3996));
            let frame = json!({"type": "send", "room": room, "text": text});
            client.send(frame).await;
            sent += 1;
            continue;
        }
        if enough && acked == sent {
            return sent;
        }
        let frame = client.recv().await;
        match frame["type"].as_str().unwrap() {
            "ack" => acked += 1,
            "presence" if frame["user"] == "stalled" && frame["online"] == false => {
                offline = true;
                if let Some(watch) = &watch {
                    watch.notify_one();
                }
            }
            "error" => panic!("firehose: {frame}"),
            _ => {}
        }
    }
}

/// One round: CHATTERS clients each post EACH large messages (paced) to a new room while a
/// firehose fills a second room, with, optionally, a client in both rooms that joined and then
/// stopped reading. Checks that every chatter received every message in order and, for the
/// stalled client, its 1013 close; answers the worst delivery latency any chatter saw.
async fn busy_room(
    server: &TestServer,
    tokens: &[String],
    hose_token: &str,
    stalled: Option<&str>,
) -> Duration {
    let room = create_room(server, &tokens[0], "busy").await;
    let hose_room = create_room(server, hose_token, "firehose").await;
    let stalled = match stalled {
        Some(token) => {
            // A small receive buffer, so its side fills after a few frames.
            let upgrade = Upgrade {
                token: Some(token),
                recv_buffer: Some(4096),
                ..Upgrade::default()
            };
            let mut client = WsClient::connect_with(server, upgrade).await;
            client.join(&room).await;
            client.join(&hose_room).await;
            Some(client)
        }
        None => None,
    };
    let mut clients = Vec::new();
    for token in tokens {
        let mut client = WsClient::connect(server, token).await;
        client.join(&room).await;
        clients.push(client);
    }
    let mut hose = WsClient::connect(server, hose_token).await;
    hose.join(&hose_room).await;

    let total = CHATTERS * EACH;
    let start = Instant::now();
    let cut_off = Arc::new(Notify::new());
    let watch = stalled.as_ref().map(|_| cut_off.clone());
    let chatters_done = Arc::new(AtomicUsize::new(0));
    let hose = tokio::spawn(firehose(hose, hose_room, chatters_done.clone(), watch));
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let WsClient { mut tx, mut rx } = client;
        let room = room.clone();
        let writer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(40));
            for n in 0..EACH {
                tick.tick().await;
                let sent = start.elapsed().as_micros();
                let text = large(&format!("{i} {n} {sent}"));
                tx.send(json!({"type": "send", "room": room, "text": text, "ref": format!("{n}")}))
                    .await;
            }
        });
        let done = chatters_done.clone();
        let reader = tokio::spawn(async move {
            let (mut seqs, mut acks, mut worst) = (Vec::new(), 0, Duration::ZERO);
            while seqs.len() < total || acks < EACH {
                let frame = rx.recv().await;
                match frame["type"].as_str().unwrap() {
                    "ack" => acks += 1,
                    "message" if frame["item"]["kind"] == "chat" => {
                        let text = frame["item"]["text"].as_str().unwrap();
                        let sent: u64 = text.split(' ').nth(2).unwrap().parse().unwrap();
                        let latency = start.elapsed().saturating_sub(Duration::from_micros(sent));
                        worst = worst.max(latency);
                        seqs.push(num(&frame["item"]["seq"]));
                    }
                    "error" => panic!("chatter {i}: {frame}"),
                    _ => {}
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
            (seqs, worst)
        });
        tasks.push((writer, reader));
    }

    if let Some(mut client) = stalled {
        // Once the server has cut it off (its user went offline), it reads again: it drains
        // what the server had queued for it, then finds the close.
        let _ = tokio::time::timeout(2 * TIMEOUT, cut_off.notified()).await;
        let mut last_seq: HashMap<String, u64> = HashMap::new();
        let mut drained = 0;
        let (code, reason) = loop {
            match client.rx.next_until(Instant::now() + TIMEOUT).await {
                Some(Incoming::Json(frame)) if frame["type"] == "message" => {
                    let seq = num(&frame["item"]["seq"]);
                    let room = frame["room"].as_str().unwrap().to_string();
                    if let Some(last) = last_seq.insert(room, seq) {
                        assert_eq!(seq, last + 1, "what it got before the close is gapless");
                    }
                    drained += 1;
                }
                Some(Incoming::Json(_)) => {}
                Some(Incoming::Close(code, reason)) => break (code, reason),
                Some(Incoming::Ended(why)) => panic!(
                    "the stalled socket ended without a close frame after {drained} messages: {why}"
                ),
                None => panic!("the stalled socket was not closed; it drained {drained} messages"),
            }
        };
        assert_eq!((code, reason.as_str()), (1013, "slow consumer"));
    }

    let mut worst = Duration::ZERO;
    let mut first_seq = None;
    for (writer, reader) in tasks {
        writer.await.unwrap();
        let (seqs, latency) = reader.await.unwrap();
        let first = *first_seq.get_or_insert(seqs[0]);
        assert_eq!(
            seqs,
            (first..first + total as u64).collect::<Vec<_>>(),
            "every chatter gets every message, in order, without gaps"
        );
        worst = worst.max(latency);
    }
    hose.await.unwrap();
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_off_without_slowing_the_others() {
    // The default queue of 256 frames: a smaller one cuts off chatters too whenever the
    // machine is busy, which is right for the server but not what this test is about.
    let server = TestServer::start_with(|c| {
        c.ws.write_timeout_secs = 2;
        c.ws.rate_per_sec = 0;
        // Twenty-odd accounts from one address.
        c.auth.registrations_per_ip_per_hour = 0;
    })
    .await;
    let mut tokens = Vec::new();
    for i in 0..CHATTERS {
        tokens.push(server.register(&format!("chatter{i}")).await);
    }
    let hose = server.register("hose").await;
    let stalled = server.register("stalled").await;

    let baseline = busy_room(&server, &tokens, &hose, None).await;
    let with_stalled = busy_room(&server, &tokens, &hose, Some(&stalled)).await;
    // A server that waited on the stalled socket (up to the 2 s write timeout) would show it.
    assert!(
        with_stalled < Duration::from_secs(5)
            && with_stalled <= baseline + Duration::from_millis(1500),
        "worst latency {with_stalled:?} with a stalled client, {baseline:?} without"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_are_closed_and_ponging_ones_stay() {
    let server = TestServer::start_with(|c| {
        c.ws.ping_interval_secs = 1;
        c.ws.idle_timeout_secs = 2;
    })
    .await;
    let pat = server.register("pat").await;
    let room = create_room(&server, &pat, "quiet").await;
    let mut reader = WsClient::connect(&server, &pat).await;
    reader.join(&room).await;
    let mut silent = WsClient::connect(&server, &pat).await;
    silent.join(&room).await;

    // The reader sends nothing but keeps reading (so it answers every ping) for twice the
    // idle timeout; the silent one is not even read, so it never answers.
    let until = Instant::now() + Duration::from_secs(4);
    while let Some(incoming) = reader.rx.next_until(until).await {
        assert!(
            matches!(incoming, Incoming::Json(_)),
            "a socket answering pings was closed: {incoming:?}"
        );
    }
    let answer = reader
        .request(json!({"type": "history", "room": room, "limit": 1}))
        .await;
    assert_eq!(answer["type"], "history", "still open: {answer}");

    // Read without answering the pings queued ahead of the close.
    let (code, reason) = silent.expect_close_unanswered().await;
    assert_eq!((code, reason.as_str()), (4408, "idle timeout"));
}

/// PROTOCOL.md: every limit's config key takes 0 to disable it. With the text and frame caps
/// off, a 100,000-character message (a 100 KB frame) is acknowledged and stored whole.
#[tokio::test]
async fn zero_turns_the_size_limits_off() {
    let server = TestServer::start_with(|c| {
        c.rooms.max_text_chars = 0;
        c.ws.max_frame_bytes = 0;
        c.ws.rate_per_sec = 0;
    })
    .await;
    let token = server.register("zoe").await;
    let room = create_room(&server, &token, "big").await;
    let mut zoe = WsClient::connect(&server, &token).await;
    zoe.join(&room).await;
    // Up to what one stored record holds (96 KiB; docs/architecture.md, "Power cuts").
    let text = "z".repeat(90_000);
    let ack = zoe.say(&room, &text).await;
    let seq = num(&ack["seq"]);
    let (_, page) = server
        .get(&format!("/api/rooms/{room}/messages?limit=1"), Some(&token))
        .await;
    let stored = &page["messages"][0];
    assert_eq!(num(&stored["seq"]), seq);
    assert_eq!(stored["text"].as_str().unwrap().len(), 90_000);
}
