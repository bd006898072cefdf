//! The binary end to end in one test: start, sign up, a room, a message over the socket from
//! one person to another, an online backup, a clean stop on SIGTERM, a restore that serves.
//! packaging/test-aarch64.sh runs this file (and backup.rs) against the aarch64 build under
//! qemu, through TEST_HEARTH_BINARY and TEST_HEARTH_RUNNER (see common/process.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::process::{argv, hearth, start};
use common::ws::{create_room, history, http_get, is_chat, register, WsClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_backup_stop_and_restore_end_to_end() {
    eprintln!("hearth under test: {}", argv().join(" "));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(dir.path(), &data);
    let (status, body) = http_get(&server, "/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, Some("ok")));

    let ann = register(&server, "ann").await;
    let ben = register(&server, "ben").await;
    let room = create_room(&server, &ann, "porch").await;
    let mut ann_ws = WsClient::connect(&server, &ann).await;
    let mut ben_ws = WsClient::connect(&server, &ben).await;
    ann_ws.join(&room).await;
    ben_ws.join(&room).await;
    let ack = ann_ws.say(&room, "hello from the other end").await;
    let seen = ben_ws
        .recv_until(|f| is_chat(f, "hello from the other end"))
        .await;
    assert_eq!(seen["item"]["author"], "ann");
    assert_eq!(seen["item"]["seq"], ack["seq"]);

    let file = dir.path().join("porch.hbk");
    let output = hearth(dir.path())
        .args(["backup", file.to_str().unwrap(), "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("from the running server"), "{said}");
    // SIGTERM: exit status 0 (asserted by `stop`).
    server.stop();

    let restored = dir.path().join("restored");
    let output = hearth(dir.path())
        .args(["restore", file.to_str().unwrap(), "--data-dir"])
        .arg(&restored)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let server = start(dir.path(), &restored);
    let items = history(&server, &ben, &room).await;
    assert!(items
        .iter()
        .any(|i| i["text"] == "hello from the other end"));
    server.stop();
}
