//! What one socket can make the server hold: its queue is bounded in bytes as well as frames,
//! `joined` and `history` answers in bytes (the client pages), and a socket that does not read
//! what it asked for is not read either.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::process;
use common::ws::{create_room, history, http_get, num, register, Target, Upgrade, WsClient};
use common::TestServer;
use serde_json::{json, Value};
use tokio::time::Instant;

/// 4000 control characters: each is written `\u0001` in JSON, so one message is 24 KB of JSON,
/// the largest a message's text can make its item.
fn heavy_text(n: usize) -> String {
    format!("{n:04}{}", "\u{1}".repeat(3996))
}

/// Posts `count` heavy messages to `room` (16 at most unacknowledged) and waits for every ack.
async fn post_heavy(client: &mut WsClient, room: &str, count: usize) {
    let (mut sent, mut acked) = (0, 0);
    while acked < count {
        if sent < count && sent < acked + 16 {
            let frame = json!({"type": "send", "room": room, "text": heavy_text(sent)});
            client.send(frame).await;
            sent += 1;
            continue;
        }
        let frame = client.recv().await;
        match frame["type"].as_str().unwrap() {
            "ack" => acked += 1,
            "error" => panic!("posting: {frame}"),
            _ => {}
        }
    }
}

/// The socket of the attack: a small receive buffer, so it stalls at once, that joins `room`
/// with `since: 0` `joins` times and never reads an answer.
async fn greedy_socket(target: &impl Target, token: &str, room: &str, joins: usize) -> WsClient {
    let upgrade = Upgrade {
        token: Some(token),
        recv_buffer: Some(4096),
        ..Upgrade::default()
    };
    let mut client = WsClient::connect_with(target, upgrade).await;
    for _ in 0..joins {
        // No `ref`: nothing in the answers is needed, only their weight.
        let frame = json!({"type": "join", "room": room, "since": 0});
        if !client.tx.try_send(frame).await {
            break;
        }
    }
    client
}

/// A gauge's value in the server's `/metrics`.
async fn gauge(target: &impl Target, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", target.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The JSON length of the items an answer carries, as the server counts them.
fn items_bytes(items: &[Value]) -> usize {
    items.iter().map(|item| item.to_string().len() + 1).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_reads_cannot_pile_up_answers() {
    let queue_bytes = 2 << 20;
    assert_eq!(
        hearth::Config::default().ws.outbound_queue_bytes,
        queue_bytes,
        "the default bound"
    );
    // The binary: the metrics read below are process-wide, and other tests' servers in this
    // process make slow consumers too.
    let dir = tempfile::tempdir().unwrap();
    // The default write timeout (10 s): once the server has cut the socket off, the close
    // frame waits behind what the socket never read, and the client below must read all of
    // that within the timeout to see it (3 s failed on a loaded CI machine).
    let env = [("HEARTH_WS__RATE_PER_SEC", "0")];
    let server = process::start_with_env(dir.path(), &dir.path().join("data"), &env);
    let owner = register(&server, "owner").await;
    let greedy = register(&server, "greedy").await;
    let room = create_room(&server, &owner, "heavy").await;
    let mut o = WsClient::connect(&server, &owner).await;
    o.join(&room).await;
    // 300 items of 24 KB: before the byte bounds, one join with since 0 answered all of them
    // (7 MB), and the queue held 256 such answers.
    post_heavy(&mut o, &room, 300).await;

    let mut attacker = greedy_socket(&server, &greedy, &room, 60).await;
    // Until the server has cut it off, and a second more: its queue must stay under the bound
    // all along (a debug build serializes slowly, so this may take a while).
    // The fullest any socket's queue has been (the attack's answers arrive in one burst after
    // their commit, so the queue is full only for moments: the server keeps the record).
    let give_up = Instant::now() + Duration::from_secs(60);
    while Instant::now() < give_up && gauge(&server, "hearth_ws_slow_consumers_total").await == 0.0
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let most = gauge(&server, "hearth_ws_queued_bytes_peak").await;
    assert!(
        most > 0.0,
        "the attack queued something (else it measured nothing)"
    );
    assert!(
        most <= queue_bytes as f64,
        "one socket's queue held {most} bytes, over its bound of {queue_bytes}"
    );
    // The server has cut it off as a slow consumer (a full queue or a stalled write).
    let (code, reason) = attacker.expect_close().await;
    assert_eq!((code, reason.as_str()), (1013, "slow consumer"));
    // And the room goes on for others.
    let ack = o
        .request(json!({"type": "send", "room": room, "text": "still here"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_histories_come_in_pages_bounded_in_bytes() {
    let page_bytes = 100_000;
    let server = TestServer::start_with(|c| {
        c.ws.rate_per_sec = 0;
        c.rooms.max_page_bytes = page_bytes;
    })
    .await;
    let owner = server.register("owner").await;
    let room = create_room(&server, &owner, "heavy").await;
    let mut o = WsClient::connect(&server, &owner).await;
    o.join(&room).await;
    post_heavy(&mut o, &room, 30).await;
    let last = o
        .request(json!({"type": "history", "room": room, "limit": 1}))
        .await;
    let newest = num(&last["messages"][0]["seq"]);

    // A join with since pages forward: each answer at most the bound, `more` until the end,
    // and every item arrives once, in order.
    let mut client = WsClient::connect(&server, &owner).await;
    let (mut since, mut seen) = (0, Vec::new());
    loop {
        let answer = client.join_since(&room, since).await;
        let items = answer["messages"].as_array().unwrap();
        assert!(!items.is_empty());
        assert!(
            items_bytes(items) <= page_bytes,
            "joined carried {} bytes",
            items_bytes(items)
        );
        seen.extend(items.iter().map(|item| num(&item["seq"])));
        since = *seen.last().unwrap();
        if answer["more"] == false {
            break;
        }
    }
    assert_eq!(seen, (1..=newest).collect::<Vec<_>>());
    assert!(seen.len() > 30, "the bound made the client page");

    // Without since: the newest that fit, and more says older ones exist.
    let answer = client.join(&room).await;
    let items = answer["messages"].as_array().unwrap();
    assert!(items.len() < 30 && items_bytes(items) <= page_bytes);
    assert_eq!(num(&items.last().unwrap()["seq"]), newest);
    assert_eq!(answer["more"], true);

    // history over the socket and over HTTP: the newest that fit below `before`.
    let page = client
        .request(json!({"type": "history", "room": room, "before": newest, "limit": 200}))
        .await;
    let items = page["messages"].as_array().unwrap();
    assert!(items.len() < 30 && items_bytes(items) <= page_bytes);
    assert_eq!(num(&items.last().unwrap()["seq"]), newest - 1);
    assert_eq!(page["more"], true);
    let path = format!("/api/rooms/{room}/messages?limit=200");
    let (status, body) = http_get(&server, &path, Some(&owner)).await;
    assert_eq!(status, 200);
    let items = body["messages"].as_array().unwrap();
    assert!(items.len() < 30 && items_bytes(items) <= page_bytes);
    assert_eq!(body["more"], true);
    // Paging back over HTTP still finds every item.
    let all = history(&server, &owner, &room).await;
    let seqs: Vec<u64> = all.iter().map(|item| num(&item["seq"])).collect();
    assert_eq!(seqs, (1..=newest).collect::<Vec<_>>());
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap()
}

/// What the queue attack did to the server binary.
struct AttackOutcome {
    rss_before_kib: u64,
    rss_peak_kib: u64,
    attack: Duration,
    round_trip: Duration,
}

/// Four sockets that never read, each joining a room of 300 heavy items 250 times with
/// `since: 0`, against the server binary started with `env`; then a chat round trip in that
/// room. The peak is the kernel's high-water mark of the server's resident memory.
async fn queue_attack(env: &[(&str, &str)]) -> AttackOutcome {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut env = env.to_vec();
    env.extend([
        ("HEARTH_WS__RATE_PER_SEC", "0"),
        ("HEARTH_WS__WRITE_TIMEOUT_SECS", "3"),
    ]);
    let server = process::start_with_env(dir.path(), &data, &env);
    let pid = server.child.id();
    let owner = register(&server, "owner").await;
    let room = create_room(&server, &owner, "heavy").await;
    let mut o = WsClient::connect(&server, &owner).await;
    o.join(&room).await;
    post_heavy(&mut o, &room, 300).await;
    let rss_before_kib = rss_kib(pid, "VmRSS:");
    let mut attackers = Vec::new();
    for i in 0..4 {
        let token = register(&server, &format!("greedy{i}")).await;
        attackers.push(greedy_socket(&server, &token, &room, 250).await);
    }
    // Until the server has cut every one of them off (a full queue or a stalled write).
    let started = Instant::now();
    let give_up = started + Duration::from_secs(300);
    while Instant::now() < give_up && gauge(&server, "hearth_ws_slow_consumers_total").await < 4.0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attack = started.elapsed();
    let sent = Instant::now();
    o.send(json!({"type": "send", "room": room, "text": "round trip", "ref": "rt"}))
        .await;
    let round_trip = loop {
        match o.rx.next_until(sent + Duration::from_secs(300)).await {
            Some(common::ws::Incoming::Json(frame)) if frame["ref"] == "rt" => {
                assert_eq!(frame["type"], "ack", "{frame}");
                break sent.elapsed();
            }
            Some(common::ws::Incoming::Json(_)) => {}
            other => panic!("no ack for the round trip: {other:?}"),
        }
    };
    let rss_peak_kib = rss_kib(pid, "VmHWM:");
    drop(attackers);
    server.kill();
    AttackOutcome {
        rss_before_kib,
        rss_peak_kib,
        attack,
        round_trip,
    }
}

/// Before the answer slots, the room built an answer for every join it was sent and held it
/// until its commit: this attack took a debug server from 134 MB to 610 MB. Now each socket
/// has at most `ws.max_answers_in_flight` (2) answers of at most 512 KiB waiting in the room,
/// 2 MiB in its queue and about as much in its write buffer: some 6 MiB per socket, 24 MiB for
/// the four, asserted with room to spare for the allocator and the store's reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_never_read_cannot_make_a_room_hold_their_answers() {
    let outcome = queue_attack(&[]).await;
    let grew_mib = outcome.rss_peak_kib.saturating_sub(outcome.rss_before_kib) / 1024;
    assert!(
        grew_mib < 100,
        "the server grew by {grew_mib} MiB under the attack ({} KiB before, peak {} KiB)",
        outcome.rss_before_kib,
        outcome.rss_peak_kib
    );
}

/// A measurement, not a check: the same attack, printing the server's memory and a chat round
/// trip. Run it with `cargo test --release --test it ws_memory::measure -- --ignored --nocapture`; set
/// `HEARTH_ATTACK_SLOTS_OFF=1` to turn only the answer slots off (as before them), or
/// `HEARTH_ATTACK_UNBOUNDED=1` to run it with the answer slots off and the byte bounds out of
/// reach, as before them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; prints the server's memory"]
async fn measure_server_memory_under_the_queue_attack() {
    let mut env = Vec::new();
    if std::env::var_os("HEARTH_ATTACK_SLOTS_OFF").is_some() {
        env.push(("HEARTH_WS__MAX_ANSWERS_IN_FLIGHT", "0"));
    }
    if std::env::var_os("HEARTH_ATTACK_UNBOUNDED").is_some() {
        env.push(("HEARTH_WS__MAX_ANSWERS_IN_FLIGHT", "0"));
        env.push(("HEARTH_WS__OUTBOUND_QUEUE_BYTES", "17179869184"));
        env.push(("HEARTH_ROOMS__MAX_PAGE_BYTES", "8589934592"));
    }
    let outcome = queue_attack(&env).await;
    println!(
        "server RSS: {} KiB before the attack, peak {} KiB during it; every attacker cut off \
         after {:.1} s; a chat round trip then: {:?}",
        outcome.rss_before_kib,
        outcome.rss_peak_kib,
        outcome.attack.as_secs_f64(),
        outcome.round_trip
    );
}
