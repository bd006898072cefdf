//! Bot plugins end to end: the bundled stock-quote and notes bots against a quote API on
//! loopback, /help and unknown commands, a plugin that crashes, loops, hogs memory or reaches
//! for a host it may not (each stopped while chat goes on), the plugins folder watched live,
//! and a slow API that holds up nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::bots::{
    bot_reply, command, help, point_stocks_at, testbot_wasm, wait_for_command,
    wait_for_command_gone, QuoteApi,
};
use common::ws::{create_room, history, is_error, register, WsClient};
use common::TestServer;
use serde_json::json;

const REPLY_WAIT: Duration = Duration::from_secs(20);

/// `joined` tells the composer what this room answers and how long a message may be, so the
/// web UI neither hard-codes the limit nor reads `/help`'s prose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_lists_the_commands_and_the_length_limit() {
    let api = QuoteApi::start().await;
    let server = TestServer::start_with(|c| {
        point_stocks_at(c, &api);
        c.rooms.max_text_chars = 123;
    })
    .await;
    let token = register(&server, "cora").await;
    let room = create_room(&server, &token, "composer").await;
    let mut cora = WsClient::connect(&server, &token).await;
    cora.join(&room).await;
    wait_for_command(&mut cora, &room, "/stock").await;
    let joined = cora.join(&room).await;
    assert_eq!(joined["limits"], json!({"max_text_chars": 123}), "{joined}");
    let commands = joined["commands"].as_array().unwrap();
    assert_eq!(
        commands[0],
        json!({"name": "help", "usage": "/help", "description": "lists these commands", "paused": false})
    );
    let stock = commands.iter().find(|c| c["name"] == "stock").unwrap();
    assert_eq!(stock["bot"], "stocks");
    assert_eq!(stock["paused"], false);
    assert!(
        stock["usage"].as_str().unwrap().starts_with("/stock"),
        "{stock}"
    );
    assert!(!stock["description"].as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_command_answers_in_both_forms_and_explains_bad_symbols() {
    let api = QuoteApi::start().await;
    let server = TestServer::start_with(|c| point_stocks_at(c, &api)).await;
    let token = register(&server, "ann").await;
    let room = create_room(&server, &token, "markets").await;
    let mut ann = WsClient::connect(&server, &token).await;
    ann.join(&room).await;
    wait_for_command(&mut ann, &room, "/stock").await;

    let cases = [
        ("/stock AAPL", "AAPL.US quote is $181.18 per share"),
        ("/stock=msft", "MSFT.US quote is $404.52 per share"),
        ("/stock NOPE", "NOPE"),
        ("/stock", "/stock SYMBOL"),
        ("/stock <script>", "is not a stock symbol"),
    ];
    for (text, expected) in cases {
        let seq = command(&mut ann, &room, text).await;
        let reply = bot_reply(&mut ann, seq, REPLY_WAIT).await;
        assert_eq!(reply["author"], "stocks", "{text}: {reply}");
        let said = reply["text"].as_str().unwrap();
        assert!(
            said.contains(expected),
            "{text}: {said:?} lacks {expected:?}"
        );
    }

    // The room keeps both the commands and the answers, in order.
    let items = history(&server, &token, &room).await;
    let first = items
        .iter()
        .position(|i| i["text"] == "/stock AAPL")
        .unwrap();
    assert_eq!(items[first]["kind"], "chat");
    assert_eq!(items[first + 1]["kind"], "bot");
    assert_eq!(items[first + 1]["reply_to"], items[first]["seq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_answers_the_caller_alone_and_unknown_commands_are_refused() {
    let server = TestServer::start().await;
    let ann_token = register(&server, "ann").await;
    let ben_token = register(&server, "ben").await;
    let room = create_room(&server, &ann_token, "cmds").await;
    let mut ann = WsClient::connect(&server, &ann_token).await;
    let mut ben = WsClient::connect(&server, &ben_token).await;
    ann.join(&room).await;
    ben.join(&room).await;
    wait_for_command(&mut ann, &room, "/stock").await;
    wait_for_command(&mut ann, &room, "/notes").await;

    let text = help(&mut ann, &room).await;
    for line in ["/help", "/stock SYMBOL", "/note TEXT", "/notes"] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line} in {text}"
        );
    }
    for unknown in ["/nope", "/", "/ hello", "/STOCKS x"] {
        let answer = ann
            .request(json!({"type": "send", "room": room, "text": unknown}))
            .await;
        assert!(is_error(&answer, "unknown_command"), "{unknown}: {answer}");
    }
    // Ben saw none of it: his next frame is Ann's ordinary message.
    ann.say(&room, "plain words").await;
    let next = ben
        .recv_until(|f| f["type"] == "message" && f["item"]["kind"] != "system")
        .await;
    assert_eq!(next["item"]["text"], "plain words", "{next}");
    let items = history(&server, &ann_token, &room).await;
    assert!(
        !items.iter().any(|i| {
            let t = i["text"].as_str().unwrap_or("");
            t.starts_with("/help") || t.starts_with("/nope")
        }),
        "help and unknown commands are not stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_bot_keeps_notes_per_room() {
    let server = TestServer::start().await;
    let token = register(&server, "ann").await;
    let room = create_room(&server, &token, "notes").await;
    let other = create_room(&server, &token, "elsewhere").await;
    let mut ann = WsClient::connect(&server, &token).await;
    ann.join(&room).await;
    ann.join(&other).await;
    wait_for_command(&mut ann, &room, "/note ").await;

    for note in ["buy milk", "call the plumber"] {
        let seq = command(&mut ann, &room, &format!("/note {note}")).await;
        bot_reply(&mut ann, seq, REPLY_WAIT).await;
    }
    let seq = command(&mut ann, &room, "/notes").await;
    let listed = bot_reply(&mut ann, seq, REPLY_WAIT).await;
    let listed = listed["text"].as_str().unwrap();
    assert!(
        listed.contains("buy milk") && listed.contains("call the plumber"),
        "{listed}"
    );

    let seq = command(&mut ann, &other, "/notes").await;
    let elsewhere = bot_reply(&mut ann, seq, REPLY_WAIT).await;
    assert!(
        !elsewhere["text"].as_str().unwrap().contains("buy milk"),
        "{elsewhere}"
    );

    let seq = command(&mut ann, &room, "/forget 1").await;
    bot_reply(&mut ann, seq, REPLY_WAIT).await;
    let seq = command(&mut ann, &room, "/notes").await;
    let listed = bot_reply(&mut ann, seq, REPLY_WAIT).await;
    let listed = listed["text"].as_str().unwrap();
    assert!(
        !listed.contains("buy milk") && listed.contains("call the plumber"),
        "{listed}"
    );
}

/// A server with the test plugin in its folder and short limits.
async fn server_with_testbot() -> TestServer {
    let server = TestServer::start_with(|c| {
        c.bots.call_cpu_ms = 300;
        c.bots.memory_mb = 16;
        c.bots.max_attempts = 2;
        c.bots.retry_backoff_ms = 50;
        c.bots.kv_quota_bytes = 200 * 1024;
        c.bots.scan_interval_ms = 100;
        c.bots.pause_after_failures = 0;
    })
    .await;
    let plugins = server.data_dir().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(testbot_wasm(), plugins.join("testbot.wasm")).unwrap();
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_plugins_are_stopped_while_chat_goes_on() {
    let server = server_with_testbot().await;
    let ann_token = register(&server, "ann").await;
    let ben_token = register(&server, "ben").await;
    let room = create_room(&server, &ann_token, "sandbox").await;
    let mut ann = WsClient::connect(&server, &ann_token).await;
    let mut ben = WsClient::connect(&server, &ben_token).await;
    ann.join(&room).await;
    ben.join(&room).await;
    wait_for_command(&mut ann, &room, "/echo").await;

    // (command, what the bot's failure reply must say, whether the plugin is still busy when
    // Ben speaks: a loop runs for its whole CPU budget, twice)
    let cases = [
        ("/crash", "crashed", false),
        ("/spin", "CPU time", true),
        ("/hog", "memory", false),
        (
            "/fetch http://192.0.2.1/x",
            "not in this plugin's allow_hosts",
            false,
        ),
    ];
    for (text, expected, busy) in cases {
        let seq = command(&mut ann, &room, text).await;
        // Chat goes on while the plugin misbehaves: Ben's message is acked and Ann sees it;
        // while a plugin spins, that happens before the bot gives up on the command.
        ben.say(&room, &format!("meanwhile, {text}")).await;
        let mut chat_first = false;
        let reply = loop {
            let frame = ann.recv_until(|f| f["type"] == "message").await;
            if frame["item"]["text"] == format!("meanwhile, {text}") {
                chat_first = true;
            }
            if frame["item"]["kind"] == "bot" && frame["item"]["reply_to"] == json!(seq) {
                break frame["item"].clone();
            }
        };
        if busy {
            assert!(chat_first, "{text}: chat waited for the plugin");
        } else if !chat_first {
            ann.recv_until(|f| f["item"]["text"] == format!("meanwhile, {text}"))
                .await;
        }
        let said = reply["text"].as_str().unwrap();
        assert!(
            said.contains(expected),
            "{text}: {said:?} lacks {expected:?}"
        );
        // The next command works: a fresh instance, no poisoned state.
        let seq = command(&mut ann, &room, "/echo still here").await;
        let echo = bot_reply(&mut ann, seq, REPLY_WAIT).await;
        assert_eq!(echo["text"], "still here", "after {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_gets_its_grants_and_no_more() {
    let server = server_with_testbot().await;
    let token = register(&server, "ann").await;
    let room = create_room(&server, &token, "grants").await;
    let mut ann = WsClient::connect(&server, &token).await;
    ann.join(&room).await;
    wait_for_command(&mut ann, &room, "/echo").await;

    let seq = command(&mut ann, &room, "/whoami").await;
    let who = bot_reply(&mut ann, seq, REPLY_WAIT).await;
    assert_eq!(who["text"], format!("ann in {room}, seq {seq}"));

    let seq = command(&mut ann, &room, "/multi").await;
    let first = bot_reply(&mut ann, seq, REPLY_WAIT).await;
    let second = bot_reply(&mut ann, seq, REPLY_WAIT).await;
    assert_eq!(
        second["seq"].as_u64().unwrap(),
        first["seq"].as_u64().unwrap() + 1
    );
    let items = history(&server, &token, &room).await;
    let asked = items.iter().find(|i| i["seq"] == json!(seq)).unwrap();
    assert_eq!(asked["reactions"]["👍"], json!(["testbot"]), "{asked}");

    // kv: values persist between calls (each in a fresh instance); the quota holds.
    let seq = command(&mut ann, &room, "/kvset colour teal").await;
    bot_reply(&mut ann, seq, REPLY_WAIT).await;
    let seq = command(&mut ann, &room, "/kvget colour").await;
    assert_eq!(bot_reply(&mut ann, seq, REPLY_WAIT).await["text"], "teal");
    let seq = command(&mut ann, &room, "/kvfill").await;
    let filled = bot_reply(&mut ann, seq, REPLY_WAIT).await;
    let filled = filled["text"].as_str().unwrap();
    // 200 KiB of quota holds three 64 KiB values and the small one.
    assert_eq!(filled, "quota after 3 writes", "{filled}");

    // No settings but its own; loopback is refused even for an allowed-looking URL.
    let seq = command(&mut ann, &room, "/setting base_url").await;
    assert_eq!(
        bot_reply(&mut ann, seq, REPLY_WAIT).await["text"],
        "(unset)"
    );
    let url = server.url("/healthz");
    let seq = command(&mut ann, &room, &format!("/fetch {url}")).await;
    let fetched = bot_reply(&mut ann, seq, REPLY_WAIT).await;
    assert!(
        fetched["text"].as_str().unwrap().contains("not"),
        "loopback refused: {fetched}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_folder_is_watched_live() {
    let server = TestServer::start_with(|c| c.bots.scan_interval_ms = 100).await;
    let token = register(&server, "ann").await;
    let room = create_room(&server, &token, "live").await;
    let mut ann = WsClient::connect(&server, &token).await;
    ann.join(&room).await;
    wait_for_command(&mut ann, &room, "/stock").await;
    let answer = ann
        .request(json!({"type": "send", "room": room, "text": "/echo hi"}))
        .await;
    assert!(is_error(&answer, "unknown_command"), "{answer}");

    let plugins = server.data_dir().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let dropped = plugins.join("testbot.wasm");
    // Written under another name and renamed, as docs/plugins.md advises.
    std::fs::copy(testbot_wasm(), plugins.join("testbot.partial")).unwrap();
    std::fs::rename(plugins.join("testbot.partial"), &dropped).unwrap();
    wait_for_command(&mut ann, &room, "/echo").await;
    let seq = command(&mut ann, &room, "/echo dropped in").await;
    assert_eq!(
        bot_reply(&mut ann, seq, REPLY_WAIT).await["text"],
        "dropped in"
    );

    std::fs::remove_file(&dropped).unwrap();
    wait_for_command_gone(&mut ann, &room, "/echo").await;
    let answer = ann
        .request(json!({"type": "send", "room": room, "text": "/echo gone"}))
        .await;
    assert!(is_error(&answer, "unknown_command"), "{answer}");
    // The bundled plugins stay.
    assert!(help(&mut ann, &room).await.contains("/stock"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_quote_api_holds_up_nothing() {
    let api = QuoteApi::start().await;
    api.set_delay(Duration::from_secs(5));
    let server = TestServer::start_with(|c| point_stocks_at(c, &api)).await;
    let ann_token = register(&server, "ann").await;
    let ben_token = register(&server, "ben").await;
    let room = create_room(&server, &ann_token, "slow").await;
    let mut ann = WsClient::connect(&server, &ann_token).await;
    let mut ben = WsClient::connect(&server, &ben_token).await;
    ann.join(&room).await;
    ben.join(&room).await;
    wait_for_command(&mut ann, &room, "/stock").await;

    let seq = command(&mut ann, &room, "/stock AAPL").await;
    // While the API dawdles, a conversation happens; each message is acked and delivered.
    for i in 0..10 {
        ben.say(&room, &format!("chat {i}")).await;
    }
    // Ann sees the whole conversation before the bot's answer, which waits on the API.
    let mut seen = 0;
    while seen < 10 {
        let frame = ann.recv_until(|f| f["type"] == "message").await;
        assert_ne!(
            frame["item"]["kind"], "bot",
            "the answer came before the chat: {frame}"
        );
        if frame["item"]["author"] == "ben" {
            assert_eq!(frame["item"]["text"], format!("chat {seen}"));
            seen += 1;
        }
    }
    assert!(api.requests() <= 1, "one request for one command");
    let reply = bot_reply(&mut ann, seq, REPLY_WAIT).await;
    assert!(
        reply["text"].as_str().unwrap().contains("181.18"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_keeps_failing_is_paused_and_its_commands_wait() {
    let server = TestServer::start_with(|c| {
        c.bots.max_attempts = 1;
        c.bots.pause_after_failures = 2;
        c.bots.pause_secs = 3;
        c.bots.scan_interval_ms = 100;
    })
    .await;
    let plugins = server.data_dir().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(testbot_wasm(), plugins.join("testbot.wasm")).unwrap();
    let token = register(&server, "ann").await;
    let room = create_room(&server, &token, "pause").await;
    let mut ann = WsClient::connect(&server, &token).await;
    ann.join(&room).await;
    wait_for_command(&mut ann, &room, "/echo").await;

    for _ in 0..2 {
        let seq = command(&mut ann, &room, "/crash").await;
        let reply = bot_reply(&mut ann, seq, REPLY_WAIT).await;
        assert!(
            reply["text"].as_str().unwrap().contains("crashed"),
            "{reply}"
        );
    }
    // The worker pauses the plugin as it files the second failure, just after the reply.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let text = help(&mut ann, &room).await;
        let echo_line = text.lines().find(|l| l.starts_with("/echo")).unwrap();
        if echo_line.contains("paused") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not paused: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Accepted while paused, answered once the pause is over.
    let started = tokio::time::Instant::now();
    let seq = command(&mut ann, &room, "/echo patience").await;
    let reply = bot_reply(&mut ann, seq, REPLY_WAIT).await;
    assert_eq!(reply["text"], "patience");
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "answered during the pause"
    );
    let text = help(&mut ann, &room).await;
    assert!(!text.contains("paused"), "{text}");
}
