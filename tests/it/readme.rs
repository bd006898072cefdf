//! The newcomer's path, as README.md tells it: the binary started with no flags from a
//! directory holding the repository's config.toml (what `cargo run --release` does in a fresh
//! checkout), serving on the default address with its database in `./hearth-data`; a sign-up, a
//! message over the socket, an answer from a bundled bot, SIGTERM, and a second start that
//! serves the same history. Then relative paths given by flag, and the read-only commands that
//! must create nothing.
//!
//! The README test is the only test that uses the default port, 127.0.0.1:7878 (every other
//! test binds port 0): if something else holds the port it waits a while, then fails saying
//! so, since a test on another port would not test the default. scripts/test also runs
//! `cargo run --release` itself (scripts/readme-run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::bots::{bot_reply, command, wait_for_command};
use common::process::{hearth, start_command, Running};
use common::ws::{create_room, history, http_get, is_chat, register, WsClient};
use serde_json::Value;

/// What README.md promises, word for word: if one of these changes there, this test must
/// change with it.
const README_COMMAND: &str = "cargo run --release";
const README_DATA_DIR: &str = "./hearth-data";
const README_URL: &str = "http://127.0.0.1:7878";

const DEFAULT_ADDR: &str = "127.0.0.1:7878";
/// How long the README test waits for the default port to be free before failing.
const PORT_WAIT: Duration = Duration::from_secs(60);
const REPLY_WAIT: Duration = Duration::from_secs(30);

fn repo_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Starts `hearth` with no arguments at all in `dir`, on the default port: retried while
/// another process holds the port, for at most [`PORT_WAIT`].
fn start_as_the_readme_says(dir: &Path) -> Running {
    let deadline = Instant::now() + PORT_WAIT;
    loop {
        match start_command(hearth(dir)) {
            Ok(server) => return server,
            Err(said) if said.contains(&format!("cannot listen on {DEFAULT_ADDR}")) => {
                assert!(
                    Instant::now() < deadline,
                    "the README test needs the default address {DEFAULT_ADDR}, and something \
                     else has held it for {PORT_WAIT:?} (a hearth you are running?); stop it \
                     and run again. The server said:\n{said}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(said) => panic!("hearth, started as README.md says, exited:\n{said}"),
        }
    }
}

fn texts(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i["text"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_first_command_serves_chat_and_bots_and_keeps_them() {
    let readme = repo_file("README.md");
    for promise in [README_COMMAND, README_DATA_DIR, README_URL] {
        assert!(
            readme.contains(promise),
            "README.md no longer says {promise:?}"
        );
    }
    // A checkout, as far as the server can tell: the directory it runs in holds config.toml.
    let checkout = tempfile::tempdir().unwrap();
    std::fs::write(
        checkout.path().join("config.toml"),
        repo_file("config.toml"),
    )
    .unwrap();

    let server = start_as_the_readme_says(checkout.path());
    assert_eq!(server.base, README_URL, "the URL the server prints");
    let data = checkout.path().join("hearth-data");
    assert!(data.join("db").is_dir(), "the database is in ./hearth-data");
    {
        let logs = server.logs.lock().unwrap().join("\n");
        assert!(
            logs.contains(&format!("data directory {}", data.display())),
            "the data directory is logged as an absolute path: {logs}"
        );
    }
    let (status, _) = http_get(&server, "/", None).await;
    assert_eq!(status, 200, "the web UI");

    let token = register(&server, "newcomer").await;
    let room = create_room(&server, &token, "first room").await;
    let mut socket = WsClient::connect(&server, &token).await;
    socket.join(&room).await;
    socket.say(&room, "hello, hearth").await;
    // A bundled bot that needs no network: notes.
    wait_for_command(&mut socket, &room, "/note ").await;
    let seq = command(&mut socket, &room, "/note water the plants").await;
    let reply = bot_reply(&mut socket, seq, REPLY_WAIT).await;
    assert_eq!(reply["author"], "notes", "{reply}");
    let before = history(&server, &token, &room).await;
    socket.close().await;
    // SIGTERM: exit status 0 (asserted by `stop`).
    server.stop();

    // The second start, the same way, serves the same history and the bot's notes.
    let server = start_as_the_readme_says(checkout.path());
    let after = history(&server, &token, &room).await;
    assert_eq!(texts(&after), texts(&before), "the same history");
    assert!(texts(&after).contains(&"hello, hearth".to_string()));
    let mut socket = WsClient::connect(&server, &token).await;
    socket.join(&room).await;
    wait_for_command(&mut socket, &room, "/notes").await;
    let seq = command(&mut socket, &room, "/notes").await;
    let listed = bot_reply(&mut socket, seq, REPLY_WAIT).await;
    assert!(
        listed["text"]
            .as_str()
            .unwrap()
            .contains("water the plants"),
        "{listed}"
    );
    socket.close().await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_data_dir_is_relative_to_the_start_directory() {
    let dir = tempfile::tempdir().unwrap();
    let start = dir.path().join("started-here");
    std::fs::create_dir(&start).unwrap();
    let mut cmd = hearth(&start);
    cmd.args(["--bind", "127.0.0.1:0", "--data-dir", "data1"]);
    let server = start_command(cmd).unwrap_or_else(|said| panic!("exited:\n{said}"));
    let data = start.join("data1");
    {
        let logs = server.logs.lock().unwrap().join("\n");
        assert!(
            logs.contains(&format!("data directory {}", data.display())),
            "{logs}"
        );
        assert!(
            logs.contains(&format!(
                "plugins folder {}",
                data.join("plugins").display()
            )),
            "{logs}"
        );
    }
    // The bots load: the compiled-plugin cache (which must be absolute) is in data1.
    let token = register(&server, "rel").await;
    let room = create_room(&server, &token, "relative").await;
    let mut socket = WsClient::connect(&server, &token).await;
    socket.join(&room).await;
    wait_for_command(&mut socket, &room, "/note ").await;
    let seq = command(&mut socket, &room, "/note relative paths work").await;
    bot_reply(&mut socket, seq, REPLY_WAIT).await;
    assert!(data.join("plugin-cache").is_dir());
    socket.say(&room, "kept in data1").await;

    // Backup of the running server, to a relative file, with the data directory relative too.
    let output = hearth(&start)
        .args(["backup", "saved.hbk", "--data-dir", "./data1"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    let file = start.join("saved.hbk");
    assert!(
        said.contains("from the running server") && said.contains(&file.display().to_string()),
        "{said}"
    );
    socket.close().await;
    server.stop();

    // A relative config file naming a relative data directory, from another directory.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("mine.toml"), "data_dir = \"restored\"\n").unwrap();
    let output = hearth(&elsewhere)
        .args([
            "restore",
            "../started-here/saved.hbk",
            "--config",
            "mine.toml",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut cmd = hearth(&elsewhere);
    cmd.args(["--config", "mine.toml", "--bind", "127.0.0.1:0"]);
    let server = start_command(cmd).unwrap_or_else(|said| panic!("exited:\n{said}"));
    assert!(elsewhere.join("restored/db").is_dir());
    let items = history(&server, &token, &room).await;
    assert!(items.iter().any(|i| is_chat_item(i, "kept in data1")));
    server.stop();
}

fn is_chat_item(item: &Value, text: &str) -> bool {
    is_chat(&serde_json::json!({"type": "message", "item": item}), text)
}

#[test]
fn read_only_commands_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let commands: &[&[&str]] = &[
        &["--help"],
        &["config"],
        &["config", "--data-dir", "elsewhere"],
        &["plugin", "list"],
        &["plugin", "list", "--data-dir", "elsewhere"],
    ];
    for args in commands {
        let output = hearth(dir.path()).args(*args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
    // What they print names the paths as they will be used: absolute.
    let output = hearth(dir.path()).arg("config").output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    let expected = format!(
        "data_dir = {:?}",
        dir.path().join("hearth-data").display().to_string()
    );
    assert!(printed.contains(&expected), "{expected} in:\n{printed}");
    let output = hearth(dir.path())
        .args(["plugin", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(listed.contains("notes"), "{listed}");
    assert!(
        listed.contains(&format!(
            "plugins folder: {}",
            dir.path().join("hearth-data/plugins").display()
        )),
        "{listed}"
    );
    // A backup with nothing to back up says so, and creates nothing either.
    let output = hearth(dir.path())
        .args(["backup", "b.hbk"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no hearth database"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
