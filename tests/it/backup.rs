//! `hearth backup`, `restore` and `export` against the real binary: a backup of a server under
//! write load holds every message acked before it began, and a server started on its restore
//! serves them; restore refuses what it cannot trust; export carries no secrets; the control
//! socket answers only its owner and root; a damaged store is refused with restore advice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::bots::{command, wait_for_command};
use common::process::{hearth, start, start_with_env};
use common::ws::{create_room, history, http_post, num, register, Incoming, WsClient, TIMEOUT};
use common::PASSWORD;
use hearth::ids::{RoomCode, Seq, Username};
use hearth::store::seal::SEAL;
use serde_json::{json, Value};
use tokio::time::Instant;

/// Rate limiting off, so the writers are as dense as the server allows; a deep outbound queue,
/// because the test's debug-built client reads the fan-out of four writers more slowly than
/// the server sends it, and slow consumers are not what this file is about.
const ENV: &[(&str, &str)] = &[
    ("HEARTH_WS__RATE_PER_SEC", "0"),
    ("HEARTH_WS__OUTBOUND_QUEUE", "8192"),
];

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts the server on DATA and waits for it to exit (for a start that must be refused).
fn serve_to_exit(dir: &Path, data: &Path) -> Output {
    cli(dir, data, &["--bind", "127.0.0.1:0"])
}

/// Runs `hearth ARGS --data-dir DATA` to completion.
fn cli(dir: &Path, data: &Path, args: &[&str]) -> Output {
    hearth(dir)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

async fn cli_async(dir: &Path, data: &Path, args: &[&str]) -> Output {
    let (dir, data) = (dir.to_path_buf(), data.to_path_buf());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&dir, &data, &args)
    })
    .await
    .unwrap()
}

/// One acknowledged message and when its ack arrived.
#[derive(Debug, Clone)]
struct Acked {
    id: u64,
    text: String,
    at: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_write_load_keeps_every_acked_message_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_with_env(dir.path(), &data, ENV);
    let names = ["ann", "ben", "cat", "dan"];
    let mut tokens = Vec::new();
    for name in names {
        tokens.push(register(&server, name).await);
    }
    let room = create_room(&server, &tokens[0], "backed up").await;

    // Four sockets send a message every 3 ms each until told to stop.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    for (name, token) in names.into_iter().zip(&tokens) {
        let mut client = WsClient::connect(&server, token).await;
        client.join(&room).await;
        let WsClient { mut tx, mut rx } = client;
        let (room, stop, stopped) = (room.clone(), stop.clone(), stop.clone());
        let writer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(3));
            let mut i = 0;
            while !stop.is_cancelled() {
                tick.tick().await;
                let text = format!("{name} m{i}");
                let frame = json!({"type": "send", "room": room, "text": text, "ref": text});
                if !tx.try_send(frame).await {
                    break;
                }
                i += 1;
            }
            tx
        });
        let reader = tokio::spawn(async move {
            let mut acks = Vec::new();
            let mut last_frame = Instant::now();
            loop {
                match rx
                    .next_until(Instant::now() + Duration::from_millis(200))
                    .await
                {
                    Some(Incoming::Json(frame)) if frame["type"] == "ack" => {
                        let acked = Acked {
                            id: num(&frame["id"]),
                            text: frame["ref"].as_str().unwrap().to_string(),
                            at: Instant::now(),
                        };
                        acks.push((num(&frame["seq"]), acked));
                        last_frame = Instant::now();
                    }
                    Some(Incoming::Json(frame)) if frame["type"] == "error" => {
                        panic!("{name}: {frame}")
                    }
                    Some(Incoming::Json(_)) => last_frame = Instant::now(),
                    Some(other) => panic!("{name}: the socket ended: {other:?}"),
                    // 200 ms without a frame after the stop: every ack has come.
                    None if stopped.is_cancelled() => return acks,
                    None if last_frame.elapsed() > TIMEOUT => panic!("{name}: nothing for 5 s"),
                    None => {}
                }
            }
        });
        tasks.push((writer, reader));
    }

    tokio::time::sleep(Duration::from_millis(400)).await;
    let file = dir.path().join("chat.hbk");
    let began = Instant::now();
    let output = cli_async(dir.path(), &data, &["backup", file.to_str().unwrap()]).await;
    let ended = Instant::now();
    assert!(output.status.success(), "backup: {}", stderr(&output));
    assert!(
        stderr(&output).contains("from the running server"),
        "{}",
        stderr(&output)
    );
    // The load goes on after the backup, so the backup is not simply the final state.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();

    let mut acked: BTreeMap<u64, Acked> = BTreeMap::new();
    for (writer, reader) in tasks {
        let _tx = writer.await.unwrap();
        for (seq, ack) in reader.await.unwrap() {
            assert!(acked.insert(seq, ack).is_none(), "seq {seq} acked twice");
        }
    }
    let before: Vec<u64> = acked
        .iter()
        .filter(|(_, a)| a.at < began)
        .map(|(seq, _)| *seq)
        .collect();
    let during = acked
        .values()
        .filter(|a| a.at >= began && a.at <= ended)
        .count();
    let after = acked.values().filter(|a| a.at > ended).count();
    eprintln!(
        "acked before the backup: {}, during it ({:?}): {during}, after: {after}",
        before.len(),
        ended - began
    );
    assert!(before.len() > 100, "the backup ran under load");
    assert!(after > 0, "the load went on after the backup");
    let original = history(&server, &tokens[0], &room).await;
    server.stop();

    // Restore into a new data directory and serve it.
    let restored = dir.path().join("restored");
    let output = cli(dir.path(), &restored, &["restore", file.to_str().unwrap()]);
    assert!(output.status.success(), "restore: {}", stderr(&output));
    let server = start(dir.path(), &restored);
    // Sessions are part of the backup: the same token works.
    let items = history(&server, &tokens[1], &room).await;
    assert!(
        items.len() < original.len(),
        "the restore is the moment of the backup, not the end"
    );
    for (i, item) in items.iter().enumerate() {
        assert_eq!(num(&item["seq"]), i as u64 + 1, "gapless");
        assert_eq!(item, &original[i], "the same item as the server had");
    }
    for seq in &before {
        let ack = &acked[seq];
        let item = items
            .get(*seq as usize - 1)
            .unwrap_or_else(|| panic!("seq {seq}, acked before the backup, is missing"));
        assert_eq!(item["text"], ack.text.as_str(), "seq {seq}");
        assert_eq!(num(&item["id"]), ack.id, "seq {seq}");
    }
    // The restored server takes new messages, with ids that collide with nothing restored.
    let mut client = WsClient::connect(&server, &tokens[2]).await;
    client.join(&room).await;
    let ack = client.say(&room, "after the restore").await;
    assert_eq!(num(&ack["seq"]), items.len() as u64 + 1);
    let max_id = items.iter().map(|i| num(&i["id"])).max().unwrap();
    assert!(num(&ack["id"]) > max_id);
    let (status, _) = http_post(
        &server,
        "/api/auth/login",
        json!({"username": "dan", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200, "passwords came back too");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_non_empty_dir_and_untrustworthy_files_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(dir.path(), &data);
    register(&server, "ann").await;
    server.stop();
    let file = dir.path().join("ok.hbk");
    let output = cli(dir.path(), &data, &["backup", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("no server was running"));

    // Into the directory it came from: not empty.
    let output = cli(dir.path(), &data, &["restore", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not empty"), "{}", stderr(&output));

    let target = dir.path().join("target");
    let foreign = dir.path().join("photo.jpg");
    std::fs::write(&foreign, b"\xff\xd8\xff\xe0 not a backup").unwrap();
    let mut cut = std::fs::read(&file).unwrap();
    cut.truncate(cut.len() - 40);
    let truncated = dir.path().join("cut.hbk");
    std::fs::write(&truncated, cut).unwrap();
    for (path, expected) in [
        (&foreign, "not a hearth backup"),
        (&truncated, "damaged"),
        (&dir.path().join("missing.hbk"), "No such file"),
    ] {
        let output = cli(dir.path(), &target, &["restore", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        assert!(!stderr(&output).contains("panicked"));
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "left empty");
    }
    // And the good one works there.
    let output = cli(dir.path(), &target, &["restore", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));

    // Usage errors are exit 2, as everywhere.
    let output = cli(dir.path(), &target, &["restore"]);
    assert_eq!(output.status.code(), Some(2));
    let output = cli(dir.path(), &target, &["export"]);
    assert_eq!(output.status.code(), Some(2), "export needs --json");
}

/// `-` is standard output for backup and standard input for restore (containers, ssh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_to_stdout_and_restore_from_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(dir.path(), &data);
    let ann = register(&server, "ann").await;
    let room = create_room(&server, &ann, "piped").await;
    let output = cli_async(dir.path(), &data, &["backup", "-"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stdout.starts_with(b"HEARTH BACKUP 1\n"));
    server.stop();

    let restored = dir.path().join("restored");
    let mut child = hearth(dir.path())
        .args(["restore", "-", "--data-dir"])
        .arg(&restored)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&output.stdout)
        .unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    let server = start(dir.path(), &restored);
    let (status, body) =
        common::ws::http_get(&server, &format!("/api/rooms/{room}"), Some(&ann)).await;
    assert_eq!(status, 200, "{body}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_holds_users_rooms_and_history_but_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Without bots: their users appear while the server runs, and the two exports must match.
    let server = start_with_env(dir.path(), &data, &[("HEARTH_BOTS__ENABLED", "false")]);
    let ann = register(&server, "ann").await;
    let ben = register(&server, "ben").await;
    let room = create_room(&server, &ann, "exported").await;
    let mut client = WsClient::connect(&server, &ben).await;
    client.join(&room).await;
    client.say(&room, "hello \"quoted\" <b>world</b>").await;
    let original = history(&server, &ann, &room).await;

    let online = cli(dir.path(), &data, &["export", "--json"]);
    assert!(online.status.success(), "{}", stderr(&online));
    server.stop();
    let offline_file = dir.path().join("export.json");
    let offline = cli(
        dir.path(),
        &data,
        &["export", "--json", "-o", offline_file.to_str().unwrap()],
    );
    assert!(offline.status.success(), "{}", stderr(&offline));

    let text = String::from_utf8(online.stdout).unwrap();
    for secret in [
        "argon2",
        "password_hash",
        ann.as_str(),
        ben.as_str(),
        "token",
        "session",
    ] {
        assert!(!text.contains(secret), "the export holds {secret:?}");
    }
    let export: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["format"], "hearth-export");
    let users: Vec<&str> = export["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["ann", "ben"]);
    assert_eq!(export["users"][0]["password_sign_in"], true);
    let rooms = export["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0]["code"], room.as_str());
    assert_eq!(rooms[0]["host"], "ann");
    assert_eq!(rooms[0]["members"].as_array().unwrap().len(), 2);
    assert_eq!(rooms[0]["messages"].as_array().unwrap(), &original);

    let mut from_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(&offline_file).unwrap()).unwrap();
    let mut online_doc = export.clone();
    from_disk["exported_at"] = json!(0);
    online_doc["exported_at"] = json!(0);
    assert_eq!(
        from_disk, online_doc,
        "the same export with or without a server"
    );
}

/// Only the account hearth runs as, and root, may take a backup: another user who can reach
/// the socket is refused by its peer credentials. Needs root (to act as another user).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_answers_only_its_owner_and_root() {
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let setpriv = Path::new("/usr/bin/setpriv").exists();
    if !is_root || !setpriv {
        eprintln!("skipped: needs root and setpriv to act as another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(dir.path(), &data);
    register(&server, "ann").await;
    let socket = data.join("hearth.sock");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // Open the way on purpose (as a careless admin might): the peer check still refuses.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(common::process::argv())
        .args([
            "backup",
            out.join("stolen.hbk").to_str().unwrap(),
            "--data-dir",
        ])
        .arg(&data)
        .current_dir(&out)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_ne!(output.status.code(), Some(0), "{err}");
    assert!(
        err.contains("refused") || err.contains("ermission"),
        "{err}"
    );
    assert!(!out.join("stolen.hbk").exists());
    // Root may.
    let output = cli(
        dir.path(),
        &data,
        &["backup", out.join("root.hbk").to_str().unwrap()],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    server.stop();
    assert!(!socket.exists(), "a clean stop removes the socket");
}

/// A store damaged on disk is refused at start with advice to restore, and the advice works.
/// The damage is done after a clean stop, whose seal must not hide it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_is_refused_and_a_restore_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(dir.path(), &data);
    let ann = register(&server, "ann").await;
    let room = create_room(&server, &ann, "fragile").await;
    let mut client = WsClient::connect(&server, &ann).await;
    client.join(&room).await;
    client.say(&room, "canary-0123456789-canary").await;
    let file = dir.path().join("before.hbk");
    assert!(cli(dir.path(), &data, &["backup", file.to_str().unwrap()])
        .status
        .success());
    server.stop();
    assert!(data.join("db").join(SEAL).exists(), "a clean stop seals");
    // Later than the file system's timestamp granularity, as any later writer is.
    std::thread::sleep(Duration::from_millis(20));

    // Flip a byte in every stored copy of the message: sled's page checksums no longer match.
    let db_file = data.join("db").join("db");
    let mut bytes = std::fs::read(&db_file).unwrap();
    let needle = b"canary-0123456789-canary";
    let mut hits = 0;
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(needle.len()).position(|w| w == needle) {
        bytes[at + found + 10] ^= 0x01;
        at += found + needle.len();
        hits += 1;
    }
    assert!(hits > 0, "the message is in the file");
    std::fs::write(&db_file, bytes).unwrap();

    // Refused, and refused again at the next attempt. (Damage after sled's last snapshot reads
    // to sled like a write torn by a crash, which it drops silently; the marker the clean stop
    // wrote last is what shows that writes are missing.)
    for attempt in 1..=2 {
        let output = serve_to_exit(dir.path(), &data);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "attempt {attempt}: {err}");
        assert!(err.contains("is damaged"), "{err}");
        assert!(err.contains("hearth restore"), "{err}");
        assert!(!String::from_utf8_lossy(&output.stdout).contains("serving on"));
    }

    // What the message says: move the database aside, restore, start.
    std::fs::rename(data.join("db"), dir.path().join("db.damaged")).unwrap();
    let output = cli(dir.path(), &data, &["restore", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let server = start(dir.path(), &data);
    let items = history(&server, &ann, &room).await;
    assert!(items
        .iter()
        .any(|i| i["text"] == "canary-0123456789-canary"));
    server.stop();
}

/// The automatic backup: taken at a start when there is none (and daily after), listed by
/// `hearth backup --list`; a damaged database is refused with a message naming the newest one,
/// and following that message serves every message acked before it was taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_store_names_the_newest_automatic_backup_and_it_restores() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = start_with_env(dir.path(), &data, &[("HEARTH_BACKUP__AUTO", "false")]);
    let ann = register(&first, "ann").await;
    let room = create_room(&first, &ann, "kept").await;
    let mut client = WsClient::connect(&first, &ann).await;
    client.join(&room).await;
    let before: Vec<String> = (0..20)
        .map(|i| format!("acked before the backup {i}"))
        .collect();
    for text in &before {
        client.say(&room, text).await;
    }
    drop(client);
    first.stop();
    assert!(
        !data.join("backups").exists(),
        "backup.auto = false takes none"
    );

    // Automatic backups on (the default): none exists, so one is taken at start.
    let second = start(dir.path(), &data);
    let backups = data.join("backups");
    // Generous: under the aarch64 emulator (packaging/test-aarch64.sh) everything is slower.
    let deadline = Instant::now() + Duration::from_secs(60);
    let taken = loop {
        let done: Vec<_> = std::fs::read_dir(&backups)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        if let Some(file) = done
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "backup"))
        {
            break file;
        }
        assert!(Instant::now() < deadline, "no automatic backup appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&taken).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "a backup is its owner's alone: {mode:o}");
    let mut client = WsClient::connect(&second, &ann).await;
    client.join(&room).await;
    client.say(&room, "sent after the backup").await;
    drop(client);
    second.stop();

    let listed = cli(dir.path(), &data, &["backup", "--list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listing = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listing.contains(taken.to_str().unwrap()), "{listing}");

    // Damage the log where the newest message is: sled's checksums no longer match.
    std::thread::sleep(Duration::from_millis(20));
    let db_file = data.join("db").join("db");
    let mut bytes = std::fs::read(&db_file).unwrap();
    let needle = b"sent after the backup";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the message is in the log");
    bytes[at + 3] ^= 0x01;
    std::fs::write(&db_file, bytes).unwrap();

    let output = serve_to_exit(dir.path(), &data);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("is damaged"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains(&format!("newest automatic backup is {}", taken.display())),
        "{err}"
    );

    // What the message says: move the database aside, restore the named file, start.
    let db = data.join("db");
    std::fs::rename(&db, data.join("db.damaged")).unwrap();
    let output = cli(dir.path(), &data, &["restore", taken.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let server = start(dir.path(), &data);
    let texts: Vec<String> = history(&server, &ann, &room)
        .await
        .iter()
        .filter_map(|i| i["text"].as_str().map(str::to_string))
        .collect();
    for text in &before {
        assert!(texts.contains(text), "{text} is restored: {texts:?}");
    }
    assert!(!texts.iter().any(|t| t == "sent after the backup"));
    server.stop();
}

/// After a clean stop the next start skips the record-by-record check (the seal vouches for the
/// files); after a crash, or with `store.check_every_start`, it reads everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_start_after_a_clean_stop_skips_the_full_check() {
    const SKIPPED: &str = "integrity check skipped";
    const CHECKED: &str = "integrity check passed";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = start(dir.path(), &data);
    assert!(logged(&first, CHECKED).await, "a new database is checked");
    let ann = register(&first, "ann").await;
    let room = create_room(&first, &ann, "sealed").await;
    first.stop();

    let seal = data.join("db").join(SEAL);
    assert!(seal.exists());
    let after_stop = start(dir.path(), &data);
    assert!(logged(&after_stop, SKIPPED).await);
    assert!(!seal.exists(), "an open takes the seal");
    let mut client = WsClient::connect(&after_stop, &ann).await;
    client.join(&room).await;
    client.say(&room, "written after a skipped check").await;
    after_stop.kill();

    let after_crash = start(dir.path(), &data);
    assert!(
        logged(&after_crash, CHECKED).await,
        "a crash leaves no seal"
    );
    let items = history(&after_crash, &ann, &room).await;
    assert!(items
        .iter()
        .any(|i| i["text"] == "written after a skipped check"));
    after_crash.stop();

    let env = [("HEARTH_STORE__CHECK_EVERY_START", "true")];
    let configured = start_with_env(dir.path(), &data, &env);
    assert!(
        logged(&configured, CHECKED).await,
        "check_every_start ignores the seal"
    );
    configured.stop();
}

/// Whether the server logged `text` (it logs while starting, from two pipes: give the reader
/// threads a moment).
async fn logged(server: &common::process::Running, text: &str) -> bool {
    for _ in 0..100 {
        if server.logs.lock().unwrap().iter().any(|l| l.contains(text)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The messages of the stored fixture, as the hearth that made it was sent them.
fn legacy_texts() -> Vec<String> {
    let mut texts: Vec<String> = (0..40)
        .map(|i| format!("old {i} {}", "😀".repeat(3990)))
        .collect();
    texts.extend((0..10).map(|i| format!("short old message {i}")));
    texts
}

/// A data directory made by hearth 0.1.0 as released before its store layout
/// (tests/fixtures/store-0.1.0.tar.gz, made by `make_legacy_store_fixture` below with that
/// binary): its first start rebuilds the database and serves everything it held, accounts,
/// sessions' passwords, reactions and a bot's notes included; new ids do not collide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_made_by_the_previous_release_is_rebuilt_with_everything() {
    // The fixture's sled files were made on x86_64. A data directory is not moved between
    // architectures (backup files are the portable form, which the other tests here cover
    // under the aarch64 emulator too), so packaging/test-aarch64.sh leaves this one out.
    if std::env::var_os("TEST_HEARTH_RUNNER").is_some() {
        eprintln!("not under an emulator: the fixture is an x86_64 data directory");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-0.1.0.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let data = dir.path().join("data");
    let db = data.join("db");
    assert!(
        !db.join("layout").exists(),
        "the fixture is of the old layout"
    );
    assert!(
        std::fs::read_dir(db.join("blobs")).unwrap().count() > 0,
        "the old layout made blob files"
    );

    let server = start_with_env(dir.path(), &data, &[("HEARTH_BACKUP__AUTO", "false")]);
    assert!(logged(&server, "the database was rebuilt").await);
    assert!(db.join("layout").exists());
    let (status, body) = http_post(
        &server,
        "/api/auth/login",
        json!({"username": "ann", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ann = body["token"].as_str().unwrap().to_string();
    let (status, rooms) = common::ws::http_get(&server, "/api/rooms", Some(&ann)).await;
    assert_eq!(status, 200, "{rooms}");
    let room = rooms["rooms"][0]["code"].as_str().unwrap().to_string();
    let items = history(&server, &ann, &room).await;
    let texts: Vec<&str> = items.iter().filter_map(|i| i["text"].as_str()).collect();
    for text in legacy_texts() {
        assert!(texts.contains(&text.as_str()), "{} kept", &text[..12]);
    }
    assert!(
        items.iter().any(|i| i["reactions"]["👍"] == json!(["bob"])),
        "reactions kept"
    );
    let mut seqs: Vec<u64> = items.iter().map(|i| num(&i["seq"])).collect();
    let old_ids: Vec<u64> = items.iter().map(|i| num(&i["id"])).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), items.len(), "seqs kept");

    let mut client = WsClient::connect(&server, &ann).await;
    client.join(&room).await;
    let ack = client.say(&room, "first message after the rebuild").await;
    assert!(
        old_ids.iter().all(|id| *id < num(&ack["id"])),
        "new ids go on above the old ones"
    );
    // The notes bot's stored note (its key-value store) came through too.
    wait_for_command(&mut client, &room, "/notes").await;
    let asked = command(&mut client, &room, "/notes").await;
    let listed = bot_answer(&server, &ann, &room, asked).await;
    assert!(listed.contains("kept since 0.1.0"), "{listed}");
    drop(client);
    server.stop();
    assert_eq!(
        std::fs::read_dir(db.join("blobs")).map_or(0, |d| d.count()),
        0,
        "the rebuilt database has no blob files"
    );
}

/// The text of the bot's answer to the command at `seq`, waiting for it (bots compile in the
/// background at start).
async fn bot_answer(server: &impl common::ws::Target, token: &str, room: &str, seq: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let items = history(server, token, room).await;
        if let Some(answer) = items
            .iter()
            .find(|i| i["kind"] == "bot" && i["reply_to"] == json!(seq))
        {
            return answer["text"].as_str().unwrap_or_default().to_string();
        }
        assert!(Instant::now() < deadline, "no bot answer to {seq}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Not a check: makes tests/fixtures/store-0.1.0.tar.gz with the hearth named by
/// TEST_HEARTH_BINARY (the release before the store layout) into LEGACY_STORE_OUT, then
/// `tar czf tests/fixtures/store-0.1.0.tar.gz -C $LEGACY_STORE_OUT --exclude=plugin-cache data`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes a fixture with an older hearth; see its comment"]
async fn make_legacy_store_fixture() {
    let out = std::path::PathBuf::from(std::env::var("LEGACY_STORE_OUT").unwrap());
    let data = out.join("data");
    let server = start_with_env(&out, &data, ENV);
    let ann = register(&server, "ann").await;
    let bob = register(&server, "bob").await;
    let room = create_room(&server, &ann, "old times").await;
    let mut client = WsClient::connect(&server, &ann).await;
    client.join(&room).await;
    let acks = client.say_all(&room, &legacy_texts()).await;
    let mut other = WsClient::connect(&server, &bob).await;
    other.join(&room).await;
    let seq = num(&acks[0]["seq"]);
    let answer = other
        .request(json!({"type": "react", "room": room, "seq": seq, "emoji": "👍", "on": true}))
        .await;
    assert_eq!(answer["type"], "ok", "{answer}");
    wait_for_command(&mut client, &room, "/note").await;
    let asked = command(&mut client, &room, "/note kept since 0.1.0").await;
    bot_answer(&server, &ann, &room, asked).await;
    drop((client, other));
    server.stop();
}

/// Not a check: writes a sizeable store for the measurements in docs/performance.md (the
/// start-up integrity check, the backup pause). Run with
/// `SIZEABLE_STORE=/tmp/big cargo test --release --test it backup::sizeable -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a large store for measurements; see its comment"]
async fn sizeable_store_for_measurements() {
    use hearth::store::accounts::NewUser;
    use hearth::store::rooms::{Item, RoomRecord};
    let dir = std::path::PathBuf::from(std::env::var("SIZEABLE_STORE").unwrap());
    // SIZEABLE_ROOMS=2500 makes about 1 GB of sled files (the start-up measurement).
    let rooms = std::env::var("SIZEABLE_ROOMS").map_or(1_000, |r| r.parse().unwrap());
    let (users, per_room) = (10_000u64, 1_000u64);
    let store = hearth::store::Store::open(&dir).unwrap();
    for u in 0..users {
        store
            .create_user(NewUser {
                username: Username::parse(&format!("user{u}")).unwrap(),
                display_name: format!("User {u}"),
                password_hash: Some(
                    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
                ),
                bot: false,
                created_at: 1_700_000_000_000,
            })
            .unwrap();
    }
    for r in 0..rooms {
        // The room's number in the code alphabet, as six characters.
        let code: String = (0..RoomCode::LENGTH)
            .scan(usize::try_from(r).unwrap(), |rest, _| {
                let digit = RoomCode::ALPHABET[*rest % RoomCode::ALPHABET.len()];
                *rest /= RoomCode::ALPHABET.len();
                Some(digit as char)
            })
            .collect();
        let code = RoomCode::parse(&code).unwrap();
        store
            .put_room(&RoomRecord {
                code: code.clone(),
                name: format!("room {r}"),
                created_at: 1_700_000_000_000,
                host: 1,
                host_username: Username::parse("user0").unwrap(),
            })
            .unwrap();
        for seq in 1..=per_room {
            let text =
                format!("message {seq} in room {r}: the quick brown fox jumps over the lazy dog");
            let item = Item::chat(
                Seq::new(seq),
                r * per_room + seq,
                1_700_000_000_000 + seq,
                "user1",
                text,
            );
            store.put_item(&code, &item).unwrap();
        }
    }
    store.flush_blocking().unwrap();
    eprintln!(
        "{users} users, {rooms} rooms of {per_room} messages in {}",
        dir.display()
    );
}
