//! Editing, deleting, replies and mentions (PROTOCOL.md, Contract v2): who may do what, what
//! every subscriber sees and in which order, what history and `since` resume show afterwards,
//! and that a deleted text leaves the data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::ws::{create_room, history, is_error, num, WsClient};
use common::TestServer;
use serde_json::{json, Value};

/// The one frame of `kind` about `seq` among `frames`.
fn about<'f>(frames: &'f [Value], kind: &str, seq: u64) -> &'f Value {
    frames
        .iter()
        .find(|f| f["type"] == kind && num(&f["seq"]) == seq)
        .unwrap_or_else(|| panic!("no {kind} for seq {seq} in {frames:?}"))
}

/// Reads `client` until a frame of `kind` about `seq` comes; answers it.
async fn await_frame(client: &mut WsClient, kind: &str, seq: u64) -> Value {
    client
        .recv_until(|f| {
            let at = f["seq"].as_u64().or(f["item"]["seq"].as_u64());
            f["type"] == kind && at == Some(seq)
        })
        .await
}

fn item_at(items: &[Value], seq: u64) -> &Value {
    items
        .iter()
        .find(|i| num(&i["seq"]) == seq)
        .unwrap_or_else(|| panic!("no item {seq}"))
}

struct Room {
    server: TestServer,
    code: String,
    tokens: Vec<String>,
    /// ann (the host), ben, cat; each joined.
    clients: Vec<WsClient>,
}

async fn room_of_three() -> Room {
    let server = TestServer::start().await;
    let mut tokens = Vec::new();
    for name in ["ann", "ben", "cat"] {
        tokens.push(server.register(name).await);
    }
    let code = create_room(&server, &tokens[0], "edits").await;
    let mut clients = Vec::new();
    for token in &tokens {
        let mut client = WsClient::connect(&server, token).await;
        client.join(&code).await;
        clients.push(client);
    }
    Room {
        server,
        code,
        tokens,
        clients,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_replies_and_edits_reach_everyone_and_history() {
    let Room {
        server,
        code,
        tokens,
        mut clients,
    } = room_of_three().await;
    let ack = clients[1]
        .say(&code, "hello @ANN and @cat, mail me at ben@example.com")
        .await;
    let first = num(&ack["seq"]);
    let item = await_frame(&mut clients[2], "message", first).await;
    assert_eq!(item["item"]["mentions"], json!(["ann", "cat"]), "{item}");

    // A reply names the item it answers; one to a seq the room does not have is refused.
    let reply = clients[2]
        .request(json!({"type": "send", "room": code, "text": "hi!", "reply_to": first}))
        .await;
    assert_eq!(reply["type"], "ack", "{reply}");
    let reply_seq = num(&reply["seq"]);
    let seen = await_frame(&mut clients[0], "message", reply_seq).await;
    assert_eq!(seen["item"]["reply_to"], json!(first), "{seen}");
    assert!(seen["item"].get("mentions").is_none(), "{seen}");
    let nowhere = clients[2]
        .request(json!({"type": "send", "room": code, "text": "?", "reply_to": 999}))
        .await;
    assert!(is_error(&nowhere, "bad_request"), "{nowhere}");

    // Only the author edits; everyone sees the new text, in room order.
    let edit = json!({"type": "edit", "room": code, "seq": first, "text": "  hello @ben  "});
    let refused = clients[2].request(edit.clone()).await;
    assert!(is_error(&refused, "not_author"), "{refused}");
    let refused = clients[0].request(edit.clone()).await;
    assert!(
        is_error(&refused, "not_author"),
        "the host edits nobody's words: {refused}"
    );
    let ok = clients[1].request(edit).await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let edited = await_frame(&mut clients[0], "edited", first).await;
    assert_eq!(edited["text"], "hello @ben", "{edited}");
    assert_eq!(edited["mentions"], json!(["ben"]), "{edited}");
    assert!(edited["edited_at"].as_u64().unwrap() > 0, "{edited}");

    // Edits of what cannot be edited.
    let table = [
        (
            json!({"type": "edit", "room": code, "seq": 1, "text": "x"}),
            "bad_request",
        ),
        (
            json!({"type": "edit", "room": code, "seq": 999, "text": "x"}),
            "bad_request",
        ),
        (
            json!({"type": "edit", "room": code, "seq": first, "text": "   "}),
            "bad_request",
        ),
        (
            json!({"type": "edit", "room": code, "seq": first, "text": "x".repeat(4001)}),
            "too_long",
        ),
    ];
    for (frame, code) in table {
        let answer = clients[1].request(frame.clone()).await;
        assert!(is_error(&answer, code), "{frame} -> {answer}");
    }

    let items = history(&server, &tokens[2], &code).await;
    let stored = item_at(&items, first);
    assert_eq!(stored["text"], "hello @ben", "{stored}");
    assert_eq!(stored["mentions"], json!(["ben"]), "{stored}");
    assert_eq!(stored["edited_at"], edited["edited_at"], "{stored}");
    assert_eq!(item_at(&items, reply_seq)["reply_to"], json!(first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_leave_tombstones_that_history_and_resume_show() {
    let Room {
        server,
        code,
        tokens,
        mut clients,
    } = room_of_three().await;
    let mine = num(&clients[2].say(&code, "cat's own words").await["seq"]);
    let bens = num(&clients[1].say(&code, "ben's words").await["seq"]);
    let react = json!({"type": "react", "room": code, "seq": bens, "emoji": "👍", "on": true});
    assert_eq!(clients[2].request(react.clone()).await["type"], "ok");

    // Nobody but the author or the host deletes; the author may, the host may.
    let refused = clients[2]
        .request(json!({"type": "delete", "room": code, "seq": bens}))
        .await;
    assert!(is_error(&refused, "not_author"), "{refused}");
    let (ok, _) = clients[2]
        .request_seeing(json!({"type": "delete", "room": code, "seq": mine}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let ok = clients[0]
        .request(json!({"type": "delete", "room": code, "seq": bens}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = clients[1].recv().await;
        if frame["type"] == "deleted" {
            seen.push(frame);
        }
    }
    assert_eq!(about(&seen, "deleted", mine)["by"], "cat");
    assert_eq!(about(&seen, "deleted", bens)["by"], "ann");
    assert!(
        num(&seen[0]["seq"]) == mine,
        "deletes arrive in room order: {seen:?}"
    );

    // A tombstone keeps its place and nothing else.
    let items = history(&server, &tokens[1], &code).await;
    let tomb = item_at(&items, bens);
    let mut keys: Vec<&str> = tomb
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["author", "deleted", "id", "kind", "seq", "ts"],
        "{tomb}"
    );
    assert_eq!(tomb["deleted"], true);
    assert_eq!(tomb["author"], "ben");
    let seqs: Vec<u64> = items.iter().map(|i| num(&i["seq"])).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free"
    );

    // Resuming from before the deletes shows the tombstones in their places.
    let mut late = WsClient::connect(&server, &tokens[1]).await;
    let joined = late.join_since(&code, mine - 1).await;
    let resumed = joined["messages"].as_array().unwrap();
    assert_eq!(item_at(resumed, mine)["deleted"], true, "{joined}");
    assert!(item_at(resumed, mine).get("text").is_none(), "{joined}");

    // A tombstone takes no reaction, no edit; a second delete changes nothing; system items
    // cannot be deleted.
    let table = [
        (react, "bad_request"),
        (
            json!({"type": "edit", "room": code, "seq": mine, "text": "back"}),
            "bad_request",
        ),
        (
            json!({"type": "delete", "room": code, "seq": 1}),
            "bad_request",
        ),
        (
            json!({"type": "delete", "room": code, "seq": 999}),
            "bad_request",
        ),
    ];
    for (frame, code) in table {
        let answer = clients[2].request(frame.clone()).await;
        assert!(is_error(&answer, code), "{frame} -> {answer}");
    }
    let again = clients[2]
        .request(json!({"type": "delete", "room": code, "seq": mine}))
        .await;
    assert_eq!(again["type"], "ok", "{again}");
}

/// Every file under `dir` whose bytes contain `needle`. A file or folder that goes while it is
/// read (the eraser swapping databases) is passed over: the next look sees what replaced it.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                todo.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        } else if std::fs::read(&path)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        {
            found.push(path);
        }
    }
    found
}

/// What leaves hearth holds no deleted or replaced text either: a backup, the directory a
/// backup restores, and an export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_edited_text_is_in_no_backup_restore_or_export() {
    let Room {
        mut server,
        code,
        mut clients,
        ..
    } = room_of_three().await;
    let seq = num(&clients[1]
        .say(&code, "zebra-quartz-4417 is the door code")
        .await["seq"]);
    clients[1].say(&code, "kept-walrus-2291").await;
    let edited = num(&clients[1].say(&code, "before-edit-mango-8812").await["seq"]);
    let ok = clients[1]
        .request(json!({"type": "edit", "room": code, "seq": edited, "text": "after edit"}))
        .await;
    assert_eq!(ok["type"], "ok");
    let ok = clients[1]
        .request(json!({"type": "delete", "room": code, "seq": seq}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    drop(clients);
    server.shutdown().await;

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("after-delete.hbk");
    hearth::backup::backup(&server.config, &file).unwrap();
    let restored = out.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    let mut config = server.config.clone();
    config.data_dir = restored.clone();
    hearth::backup::restore(&config, &file).unwrap();
    let export = out.path().join("export.json");
    let mut writer = std::fs::File::create(&export).unwrap();
    hearth::backup::export_json(&server.config, &mut writer).unwrap();
    drop(writer);

    // The backup is a plain first line, then gzip: read through it. Each place must show the
    // text that was kept, so that not finding the others means something.
    let raw = std::fs::read(&file).unwrap();
    let magic = hearth::backup::format::FILE_MAGIC;
    assert!(raw.starts_with(magic));
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(&raw[magic.len()..]),
        &mut unzipped,
    )
    .unwrap();
    std::fs::write(out.path().join("backup-unzipped"), &unzipped).unwrap();
    for place in [out.path().join("backup-unzipped"), restored, export] {
        assert!(
            !files_holding(&place, b"kept-walrus-2291").is_empty(),
            "{place:?}"
        );
        for gone in [&b"zebra-quartz-4417"[..], b"before-edit-mango"] {
            assert_eq!(
                files_holding(&place, gone),
                Vec::<std::path::PathBuf>::new()
            );
        }
    }
}

/// Polls until no file under `dir` holds `needle` (the eraser runs a moment after a change).
async fn gone_from(dir: &std::path::Path, needle: &[u8]) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let holding = files_holding(dir, needle);
        if holding.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} still in {holding:?}",
            String::from_utf8_lossy(needle)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// sled writes a record's new version beside the old one; the eraser rewrites the database a
/// moment after a delete or an edit, while the server runs, so the data directory no longer
/// holds the old text; everything else is still there and served, and new ids stay unique.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_replaced_text_leaves_the_data_directory() {
    let Room {
        server,
        code,
        tokens,
        mut clients,
    } = room_of_three().await;
    let data = server.data_dir();
    let secret = num(&clients[1].say(&code, "otter-basalt-6630 is my pin").await["seq"]);
    let kept = clients[1].say(&code, "kept-heron-1187").await;
    let edited = num(&clients[2].say(&code, "draft-lemon-5521").await["seq"]);
    assert!(!files_holding(&data, b"otter-basalt-6630").is_empty());
    let ok = clients[2]
        .request(json!({"type": "edit", "room": code, "seq": edited, "text": "final words"}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let ok = clients[1]
        .request(json!({"type": "delete", "room": code, "seq": secret}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");

    gone_from(&data, b"otter-basalt-6630").await;
    gone_from(&data, b"draft-lemon-5521").await;
    assert!(!files_holding(&data, b"kept-heron-1187").is_empty());
    assert!(!server.store().erase_owed().unwrap());

    // The rewritten database serves: history as it was, new messages with new ids.
    let after = clients[0].say(&code, "after the erase").await;
    assert!(num(&after["id"]) > num(&kept["id"]), "{after} {kept}");
    let history = clients[0]
        .request(json!({"type": "history", "room": code, "limit": 50}))
        .await;
    let items = history["messages"].as_array().unwrap();
    assert_eq!(item_at(items, secret)["deleted"], true);
    assert_eq!(item_at(items, edited)["text"], "final words");
    assert_eq!(item_at(items, num(&kept["seq"]))["text"], "kept-heron-1187");
    drop(clients);
    let server = server.restart().await;
    let (status, page) = server
        .get(
            &format!("/api/rooms/{code}/messages?limit=50"),
            Some(&tokens[0]),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let texts: Vec<_> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["kept-heron-1187", "final words", "after the erase"],
        "{page}"
    );
}

/// A stop before the eraser's moment came erases first, so the stopped server's directory
/// holds no deleted text either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_erases_what_is_owed() {
    let mut server = TestServer::start_with(|c| c.store.erase_after_ms = 3_600_000).await;
    let ann = server.register("ann").await;
    let code = create_room(&server, &ann, "stop").await;
    let mut client = WsClient::connect(&server, &ann).await;
    client.join(&code).await;
    let seq = num(&client.say(&code, "puffin-cobalt-9904").await["seq"]);
    client.say(&code, "kept-lynx-3342").await;
    let ok = client
        .request(json!({"type": "delete", "room": code, "seq": seq}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    assert!(server.store().erase_owed().unwrap());
    let data = server.data_dir();
    // Not yet erased: sled's log still holds the text under its tombstone.
    assert!(!files_holding(&data, b"puffin-cobalt-9904").is_empty());
    drop(client);
    server.shutdown().await;
    assert_eq!(
        files_holding(&data, b"puffin-cobalt-9904"),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(!files_holding(&data, b"kept-lynx-3342").is_empty());
    let server = server.restart().await;
    assert!(!server.store().erase_owed().unwrap());
}
