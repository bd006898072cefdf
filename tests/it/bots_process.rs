//! Bots through the real binary: queued commands survive SIGKILL and are answered once, and
//! `hearth plugin check|list`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::bots::{command, testbot_wasm, wait_for_command, QuoteApi};
use common::process::{hearth, start_with_env};
use common::ws::{create_room, history, register, WsClient};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_commands_survive_sigkill_and_are_answered_once() {
    const COMMANDS: usize = 5;
    let api = QuoteApi::start().await;
    api.set_delay(Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let base_url = api.base_url();
    let env = [
        ("HEARTH_PLUGIN__STOCKS__ALLOW_HOSTS", "[\"127.0.0.1\"]"),
        ("HEARTH_PLUGIN__STOCKS__ALLOW_PRIVATE_ADDRESSES", "true"),
        (
            "HEARTH_PLUGIN__STOCKS__SETTINGS__BASE_URL",
            base_url.as_str(),
        ),
        ("HEARTH_BOTS__CONCURRENCY", "1"),
    ];
    let server = start_with_env(dir.path(), &data, &env);
    let token = register(&server, "ann").await;
    let room = create_room(&server, &token, "crash").await;
    let mut ann = WsClient::connect(&server, &token).await;
    ann.join(&room).await;
    wait_for_command(&mut ann, &room, "/stock").await;
    let mut asked = Vec::new();
    for _ in 0..COMMANDS {
        asked.push(command(&mut ann, &room, "/stock AAPL").await);
    }
    // The first call is waiting on the API when the server dies; the rest wait in the queue.
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.requests() == 0 {
        assert!(Instant::now() < deadline, "the bot never called the API");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();

    api.set_delay(Duration::ZERO);
    let server = start_with_env(dir.path(), &data, &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    let answers = loop {
        let items = history(&server, &token, &room).await;
        let mut answers: HashMap<u64, usize> = HashMap::new();
        for item in items.iter().filter(|i| i["kind"] == "bot") {
            *answers
                .entry(item["reply_to"].as_u64().unwrap())
                .or_default() += 1;
        }
        if answers.len() == COMMANDS {
            break answers;
        }
        assert!(
            Instant::now() < deadline,
            "answers after the restart: {answers:?}, asked: {asked:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Give a duplicate every chance to show up before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let items = history(&server, &token, &room).await;
    let bot_items: Vec<_> = items.iter().filter(|i| i["kind"] == "bot").collect();
    assert_eq!(bot_items.len(), COMMANDS, "{bot_items:?}");
    for seq in &asked {
        assert_eq!(answers.get(seq), Some(&1), "command at {seq}: {answers:?}");
    }
    for item in bot_items {
        assert!(item["text"].as_str().unwrap().contains("181.18"), "{item}");
    }
    server.stop();
}

#[test]
fn plugin_check_validates_and_list_shows_every_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let checked = hearth(dir.path())
        .args(["plugin", "check"])
        .arg(testbot_wasm())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{checked:?}");
    assert!(stdout.starts_with("testbot "), "{stdout}");
    assert!(stdout.contains("/echo TEXT"), "{stdout}");
    assert!(stdout.contains("is a valid hearth bot"), "{stdout}");

    // Not a component; a component of another world.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0 but not really").unwrap();
    let empty_module = dir.path().join("module.wasm");
    std::fs::write(&empty_module, b"\0asm\x01\0\0\0").unwrap();
    for bad in [&junk, &empty_module] {
        let refused = hearth(dir.path())
            .args(["plugin", "check"])
            .arg(bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{bad:?}: {refused:?}");
        assert!(stderr.contains("not a hearth bot component"), "{stderr}");
    }
    let missing = hearth(dir.path())
        .args(["plugin", "check", "no-such.wasm"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    // Named as resolved against the start directory (relative paths are made absolute once).
    let expected = format!("cannot read {}", dir.path().join("no-such.wasm").display());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains(&expected), "{stderr}");

    let plugins = data.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(testbot_wasm(), plugins.join("testbot.wasm")).unwrap();
    std::fs::copy(&junk, plugins.join("junk.wasm")).unwrap();
    let listed = hearth(dir.path())
        .args(["plugin", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{listed:?}");
    for expected in [
        "stocks ",
        "(bundled",
        "/stock SYMBOL",
        "notes ",
        "testbot ",
        "junk.wasm: cannot load",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in {stdout}");
    }
}
