//! Faults: the disk filling up while people post, for real, on a small tmpfs.
//!
//! The sender of a message that cannot be stored gets `internal`; nothing acknowledged is
//! lost and nothing half-written shows; when space returns, the same server takes messages
//! again without a restart, and a restart finds a clean store with everything acknowledged.
//!
//! Mounting a tmpfs needs root (CI runs as root). Elsewhere the test says it was skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::ws::{create_room, history, num, Incoming, WsClient};
use common::TestServer;
use serde_json::{json, Value};
use tokio::time::Instant;

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system holding `dir` up to the last byte; answers the filler's path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // The last partial pages too.
    for size in [4096, 512, 64, 1] {
        while file.write(&chunk[..size]).is_ok_and(|n| n > 0) {}
    }
    let _ = file.sync_all();
    path
}

/// Whatever `client` has been sent so far (waiting a moment for stragglers).
async fn reader_frames_now(client: &mut WsClient) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Some(Incoming::Json(frame)) = client
        .rx
        .next_until(Instant::now() + Duration::from_millis(300))
        .await
    {
        frames.push(frame);
    }
    frames
}

/// Sends `text` and answers the frame that answers it (`ack` or `error`).
async fn post(client: &mut WsClient, room: &str, text: &str) -> Value {
    client
        .request(json!({"type": "send", "room": room, "text": text}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_while_posting() {
    let Some(disk) = Tmpfs::mount("24m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root; CI has it)");
        return;
    };
    let data = disk.path().join("data");
    let mut server = TestServer::start_with(|c| {
        c.data_dir = data.clone();
        c.ws.rate_per_sec = 0;
        c.store.cache_mb = 8;
    })
    .await;
    let dora = server.register("dora").await;
    let finn = server.register("finn").await;
    let room = create_room(&server, &dora, "full").await;
    let mut sender = WsClient::connect(&server, &dora).await;
    sender.join(&room).await;
    let mut reader = WsClient::connect(&server, &finn).await;
    reader.join(&room).await;

    // seq -> text of every acknowledged message.
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let body = "x".repeat(2000);
    for i in 0..20 {
        let text = format!("before {i} {body}");
        let ack = post(&mut sender, &room, &text).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        acked.insert(num(&ack["seq"]), text);
    }

    // The disk fills up. Posting goes on until the store cannot take any more.
    let filler = fill(disk.path());
    let mut refused = Vec::new();
    for i in 0..2000 {
        let text = format!("while full {i} {body}");
        let answer = post(&mut sender, &room, &text).await;
        match answer["type"].as_str() {
            Some("ack") => {
                acked.insert(num(&answer["seq"]), text);
            }
            Some("error") => {
                assert_eq!(answer["code"], "internal", "{answer}");
                refused.push(text);
                if refused.len() == 3 {
                    break;
                }
            }
            _ => panic!("{answer}"),
        }
    }
    assert!(
        !refused.is_empty(),
        "a full disk never stopped a message from being acknowledged"
    );
    eprintln!(
        "disk full after {} acknowledged messages; {} refused",
        acked.len(),
        refused.len()
    );
    // Meanwhile reading goes on, and other writes get a clear error too.
    let (status, page) = server
        .get(&format!("/api/rooms/{room}/messages?limit=5"), Some(&finn))
        .await;
    assert_eq!(status, 200, "{page}");
    let (status, body) = server
        .post("/api/rooms", json!({"name": "another"}), Some(&finn))
        .await;
    assert_eq!(
        (status.as_u16(), common::code(&body)),
        (500, "internal"),
        "{body}"
    );
    let mut refused_ids = Vec::new();
    for frame in reader_frames_now(&mut reader).await {
        if frame["type"] == "message" {
            refused_ids.push(frame["item"]["text"].clone());
        }
    }
    for text in &refused {
        assert!(
            !refused_ids.iter().any(|t| t == text.as_str()),
            "a refused message was shown to the room"
        );
    }

    // Space comes back: the same server takes messages again (a client retries, as the UI
    // does, while the store reopens).
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = 0;
    while after < 5 {
        let text = format!("after {after} {body}");
        let answer = post(&mut sender, &room, &text).await;
        if answer["type"] == "ack" {
            acked.insert(num(&answer["seq"]), text);
            after += 1;
            continue;
        }
        assert_eq!(answer["code"], "internal", "{answer}");
        assert!(
            Instant::now() < deadline,
            "still refusing 20 s after space came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The reader, connected all along, sees the new messages live.
    reader
        .recv_until(|f| {
            f["type"] == "message"
                && f["item"]["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("after 4 "))
        })
        .await;

    // What the store holds, now and after a restart: every acknowledged message at its seq,
    // seqs without gaps, and each refused message at most once.
    let check = |items: &[Value]| {
        for (i, item) in items.iter().enumerate() {
            assert_eq!(num(&item["seq"]), i as u64 + 1, "gapless");
        }
        for (seq, text) in &acked {
            let item = &items[*seq as usize - 1];
            assert_eq!(
                item["text"].as_str(),
                Some(text.as_str()),
                "acked seq {seq}"
            );
        }
        for text in &refused {
            let copies = items.iter().filter(|i| i["text"] == text.as_str()).count();
            assert!(copies <= 1, "{copies} copies of a refused message");
        }
    };
    let live = history(&server, &dora, &room).await;
    check(&live);
    server = server.restart().await;
    let restarted = history(&server, &dora, &room).await;
    check(&restarted);
    assert_eq!(live, restarted, "the restart changed the history");
    server.shutdown().await;
}
