//! Durability against SIGKILL: the real binary is killed at varied moments while several
//! sockets stream messages; after each restart on the same data directory every acked message
//! is there with its seq, id and text, and the room's seqs have no gaps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use common::process::start_with_env;
use common::ws::{create_room, history, num, register, Incoming, WsClient, TIMEOUT};
use serde_json::json;
use tokio::time::Instant;

/// Rate limiting off, so the stream is as dense as the server allows.
const ENV: &[(&str, &str)] = &[("HEARTH_WS__RATE_PER_SEC", "0")];

/// A random number below `max`, to move each kill point from run to run.
fn jitter(max: u64) -> u64 {
    RandomState::new().build_hasher().finish() % max
}

/// An acknowledged message: what the ack promised.
#[derive(Debug, Clone)]
struct Acked {
    id: u64,
    text: String,
    author: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start_with_env(dir.path(), &data, ENV);
    let names = ["ann", "ben", "cat"];
    let mut tokens = Vec::new();
    for name in names {
        tokens.push(register(&server, name).await);
    }
    let room = create_room(&server, &tokens[0], "durable").await;

    let mut acked: BTreeMap<u64, Acked> = BTreeMap::new();
    let mut rounds_with_acks = 0;
    for (round, base) in [10, 40, 90, 160, 280].into_iter().enumerate() {
        let delay = Duration::from_millis(base + jitter(40));
        let mut tasks = Vec::new();
        for (name, token) in names.into_iter().zip(&tokens) {
            let mut client = WsClient::connect(&server, token).await;
            client.join(&room).await;
            let WsClient { mut tx, mut rx } = client;
            let room = room.clone();
            let writer = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(2));
                for i in 0..1000 {
                    tick.tick().await;
                    let text = format!("{name} r{round} m{i}");
                    let frame = json!({"type": "send", "room": room, "text": text, "ref": text});
                    if !tx.try_send(frame).await {
                        break;
                    }
                }
            });
            let reader = tokio::spawn(async move {
                let mut acks = Vec::new();
                loop {
                    match rx.next_until(Instant::now() + TIMEOUT).await {
                        Some(Incoming::Json(frame)) if frame["type"] == "ack" => {
                            let acked = Acked {
                                id: num(&frame["id"]),
                                text: frame["ref"].as_str().unwrap().to_string(),
                                author: name,
                            };
                            acks.push((num(&frame["seq"]), acked));
                        }
                        Some(Incoming::Json(frame)) if frame["type"] == "error" => {
                            panic!("{name}: {frame}")
                        }
                        Some(Incoming::Json(_)) => {}
                        Some(Incoming::Close(..) | Incoming::Ended(_)) => return acks,
                        None => panic!("{name}: the socket neither answered nor ended in 5 s"),
                    }
                }
            });
            tasks.push((writer, reader));
        }

        tokio::time::sleep(delay).await;
        server.kill();
        let mut this_round = 0;
        for (writer, reader) in tasks {
            writer.await.unwrap();
            for (seq, ack) in reader.await.unwrap() {
                this_round += 1;
                if let Some(earlier) = acked.insert(seq, ack.clone()) {
                    panic!("seq {seq} acked twice: {earlier:?} and {ack:?}");
                }
            }
        }
        eprintln!("kill {round} after {delay:?}: {this_round} messages acked");
        if this_round > 0 {
            rounds_with_acks += 1;
        }

        server = start_with_env(dir.path(), &data, ENV);
        let items = history(&server, &tokens[0], &room).await;
        for (i, item) in items.iter().enumerate() {
            assert_eq!(
                num(&item["seq"]),
                i as u64 + 1,
                "gapless after kill {round}"
            );
        }
        let mut texts = HashSet::new();
        for item in items.iter().filter(|i| i["kind"] == "chat") {
            let text = item["text"].as_str().unwrap();
            assert!(texts.insert(text), "stored twice: {text}");
            let author = item["author"].as_str().unwrap();
            assert!(text.starts_with(author), "{item}");
        }
        for (seq, ack) in &acked {
            let item = items
                .get(*seq as usize - 1)
                .unwrap_or_else(|| panic!("acked seq {seq} lost by kill {round}: {ack:?}"));
            assert_eq!(item["kind"], "chat", "seq {seq}");
            assert_eq!(item["text"], ack.text.as_str(), "seq {seq}");
            assert_eq!(item["author"], ack.author, "seq {seq}");
            assert_eq!(num(&item["id"]), ack.id, "seq {seq}");
        }
    }
    assert!(
        rounds_with_acks >= 3,
        "too few kills landed mid-stream to mean anything ({rounds_with_acks})"
    );
    server.stop();
}
