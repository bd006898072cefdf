//! Sessions: idle and absolute expiry, logging out one session or everywhere, a password change that ends the
//! other sessions, sockets closed with 4401 whenever their session ends, and tokens that never
//! reach the log.
//!
//! Expiry is measured in days, so the tests age a session by rewriting its record in the
//! running server's store (its sign-in and last use moved into the past), then use it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::process::start_with_env;
use common::ws::{create_room, is_chat, register, upgrade_status, Upgrade, WsClient};
use common::{client, code, read, TestServer, PASSWORD};
use hearth::auth::token;
use hearth::store::SessionRecord;
use serde_json::json;

const DAY_MS: u64 = 24 * 3600 * 1000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn session(server: &TestServer, token: &str) -> Option<SessionRecord> {
    server.store().session(&token::hash(token)).unwrap()
}

/// Rewrites a live session's record.
fn age(server: &TestServer, token: &str, change: impl FnOnce(&mut SessionRecord)) {
    let mut record = session(server, token).expect("the session exists");
    change(&mut record);
    server
        .store()
        .insert_session(&token::hash(token), &record)
        .unwrap();
}

async fn me(server: &TestServer, token: &str) -> u16 {
    server.get("/api/me", Some(token)).await.0.as_u16()
}

async fn login(server: &TestServer, name: &str, password: &str) -> Option<String> {
    let (status, body) = server.login(name, password).await;
    (status == 200).then(|| body["token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn sessions_idle_out_and_end_at_their_absolute_expiry() {
    // Defaults: 30 days absolute, 14 days idle.
    let server = TestServer::start().await;
    let ida = server.register("ida").await;
    let (_, body) = server.login("ida", PASSWORD).await;
    let busy = body["token"].as_str().unwrap().to_string();
    let (_, body) = server.login("ida", PASSWORD).await;
    let old = body["token"].as_str().unwrap().to_string();
    let fresh = session(&server, &ida).unwrap();
    assert_eq!(fresh.last_seen_at, fresh.created_at);
    assert_eq!(fresh.expires_at, fresh.created_at + 30 * DAY_MS);

    // Unused for 14 days and a minute: gone, over HTTP and for the socket alike.
    let now = now_ms();
    age(&server, &ida, |s| {
        s.created_at = now - 20 * DAY_MS;
        s.last_seen_at = now - 14 * DAY_MS - 60_000;
    });
    assert_eq!(me(&server, &ida).await, 401);
    assert!(
        session(&server, &ida).is_none(),
        "an idle session is deleted"
    );
    let upgrade = Upgrade {
        token: Some(&ida),
        ..Upgrade::default()
    };
    assert_eq!(upgrade_status(&server, upgrade).await, 401);

    // Last used 13 days ago: still good, and this use counts as being seen now.
    age(&server, &busy, |s| {
        s.created_at = now - 20 * DAY_MS;
        s.last_seen_at = now - 13 * DAY_MS;
    });
    assert_eq!(me(&server, &busy).await, 200);
    let seen = session(&server, &busy).unwrap().last_seen_at;
    assert!(seen >= now, "use refreshes last_seen_at ({seen} < {now})");
    // ... so 13 more days later it is still within the idle limit.
    age(&server, &busy, |s| s.last_seen_at = seen - 13 * DAY_MS);
    assert_eq!(me(&server, &busy).await, 200);

    // In daily use but signed in 30 days ago: over, however busy.
    age(&server, &old, |s| {
        s.created_at = now - 30 * DAY_MS - 60_000;
        s.expires_at = now - 60_000;
        s.last_seen_at = now - 60_000;
    });
    assert_eq!(me(&server, &old).await, 401);
    assert!(session(&server, &old).is_none());

    // A record written before idle expiry existed (no last_seen_at) counts from sign-in.
    let (_, body) = server.login("ida", PASSWORD).await;
    let legacy = body["token"].as_str().unwrap().to_string();
    age(&server, &legacy, |s| {
        s.created_at = now - 15 * DAY_MS;
        s.last_seen_at = 0;
    });
    assert_eq!(me(&server, &legacy).await, 401);
}

#[tokio::test]
async fn idle_expiry_can_be_turned_off() {
    let server = TestServer::start_with(|c| c.auth.session_idle_days = 0).await;
    let token = server.register("ivo").await;
    let now = now_ms();
    age(&server, &token, |s| {
        s.created_at = now - 29 * DAY_MS;
        s.last_seen_at = now - 29 * DAY_MS;
    });
    assert_eq!(me(&server, &token).await, 200);
    // The absolute end still holds.
    age(&server, &token, |s| s.expires_at = now - 1);
    assert_eq!(me(&server, &token).await, 401);
}

#[tokio::test]
async fn an_open_socket_closes_when_its_session_expires_and_keeps_a_used_session_alive() {
    // The socket rechecks its session as often as the server pings.
    let server = TestServer::start_with(|c| c.ws.ping_interval_secs = 1).await;
    let token = server.register("sol").await;
    let (_, body) = server.login("sol", PASSWORD).await;
    let other = body["token"].as_str().unwrap().to_string();
    let room = create_room(&server, &token, "expiring").await;
    let mut doomed = WsClient::connect(&server, &token).await;
    doomed.join(&room).await;
    let mut lasting = WsClient::connect(&server, &other).await;
    lasting.join(&room).await;

    // An open socket is use: a session last seen long ago is seen again within a recheck.
    let now = now_ms();
    age(&server, &other, |s| {
        s.created_at = now - 10 * DAY_MS;
        s.last_seen_at = now - 10 * DAY_MS;
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let seen = session(&server, &other).unwrap().last_seen_at;
    assert!(
        seen >= now,
        "an open socket keeps its session seen ({seen} < {now})"
    );

    age(&server, &token, |s| s.expires_at = now_ms() - 1);
    let (code, reason) = doomed.expect_close().await;
    assert_eq!((code, reason.as_str()), (4401, "session ended"));
    lasting.say(&room, "still here").await;
}

/// Two sessions of one person (laptop and phone), each with sockets, and a friend in the room.
struct TwoDevices {
    laptop: String,
    phone: String,
    friend: String,
    room: String,
    on_laptop: WsClient,
    unsubscribed: WsClient,
    on_phone: WsClient,
    theirs: WsClient,
}

async fn two_devices(server: &TestServer) -> TwoDevices {
    let laptop = server.register("lou").await;
    let phone = login(server, "lou", PASSWORD).await.unwrap();
    let friend = server.register("fay").await;
    let room = create_room(server, &laptop, "everywhere").await;
    let mut on_laptop = WsClient::connect(server, &laptop).await;
    on_laptop.join(&room).await;
    let unsubscribed = WsClient::connect(server, &laptop).await;
    let mut on_phone = WsClient::connect(server, &phone).await;
    on_phone.join(&room).await;
    let mut theirs = WsClient::connect(server, &friend).await;
    theirs.join(&room).await;
    TwoDevices {
        laptop,
        phone,
        friend,
        room,
        on_laptop,
        unsubscribed,
        on_phone,
        theirs,
    }
}

async fn assert_session_ended(server: &TestServer, token: &str) {
    assert_eq!(me(server, token).await, 401);
    let upgrade = Upgrade {
        token: Some(token),
        ..Upgrade::default()
    };
    assert_eq!(upgrade_status(server, upgrade).await, 401);
}

#[tokio::test]
async fn logout_ends_only_the_calling_session_and_its_sockets() {
    let server = TestServer::start().await;
    let mut d = two_devices(&server).await;

    let (status, _) = server
        .post("/api/auth/logout", json!({}), Some(&d.phone))
        .await;
    assert_eq!(status, 204);
    let (code, reason) = d.on_phone.expect_close().await;
    assert_eq!((code, reason.as_str()), (4401, "session ended"));
    assert_session_ended(&server, &d.phone).await;

    // The laptop's session and both its sockets go on: a message from it reaches the friend,
    // and its socket that joined no room still answers.
    assert_eq!(me(&server, &d.laptop).await, 200);
    d.on_laptop.say(&d.room, "still signed in here").await;
    d.theirs
        .recv_until(|f| is_chat(f, "still signed in here"))
        .await;
    let joined = d.unsubscribed.join(&d.room).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(me(&server, &d.friend).await, 200);
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user_and_closes_all_their_sockets() {
    let server = TestServer::start().await;
    let mut d = two_devices(&server).await;

    let (status, _) = server
        .post("/api/auth/logout-all", json!({}), Some(&d.phone))
        .await;
    assert_eq!(status, 204);
    for socket in [&mut d.on_laptop, &mut d.unsubscribed, &mut d.on_phone] {
        let (code, reason) = socket.expect_close().await;
        assert_eq!((code, reason.as_str()), (4401, "session ended"));
    }
    for token in [&d.laptop, &d.phone] {
        assert_session_ended(&server, token).await;
    }
    // Someone else is untouched, and signing in again works.
    d.theirs.say(&d.room, "still here").await;
    assert_eq!(me(&server, &d.friend).await, 200);
    let again = login(&server, "lou", PASSWORD).await.unwrap();
    assert_eq!(me(&server, &again).await, 200);
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_their_sockets() {
    let server = TestServer::start().await;
    let here = server.register("pia").await;
    let there = login(&server, "pia", PASSWORD).await.unwrap();
    let friend = server.register("pim").await;
    let room = create_room(&server, &here, "passwords").await;
    let mut mine_here = WsClient::connect(&server, &here).await;
    mine_here.join(&room).await;
    let mut mine_there = WsClient::connect(&server, &there).await;
    mine_there.join(&room).await;
    let mut theirs = WsClient::connect(&server, &friend).await;
    theirs.join(&room).await;
    let new_password = "a much better passphrase";
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    // Refusals change nothing.
    let refusals = [
        (change("wrong guess", new_password), 403, "wrong_password"),
        (change(PASSWORD, "short"), 400, "weak_password"),
        (json!({"new_password": new_password}), 400, "bad_request"),
    ];
    for (body, status, expected) in refusals {
        let (got, answer) = server
            .post("/api/auth/password", body.clone(), Some(&here))
            .await;
        assert_eq!((got.as_u16(), code(&answer)), (status, expected), "{body}");
    }
    let (status, _) = server
        .post("/api/auth/password", change(PASSWORD, new_password), None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(me(&server, &there).await, 200);

    // With the session cookie, only from this server's own pages.
    let response = client()
        .post(server.url("/api/auth/password"))
        .header("cookie", format!("hearth_session={here}"))
        .header("origin", "https://evil.example")
        .json(&change(PASSWORD, new_password))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!((status.as_u16(), code(&body)), (403, "forbidden_origin"));

    let (status, _) = server
        .post(
            "/api/auth/password",
            change(PASSWORD, new_password),
            Some(&here),
        )
        .await;
    assert_eq!(status, 204);
    let (code_there, reason) = mine_there.expect_close().await;
    assert_eq!((code_there, reason.as_str()), (4401, "session ended"));
    assert_eq!(me(&server, &there).await, 401);
    // This session and its socket go on; so does everyone else.
    assert_eq!(me(&server, &here).await, 200);
    mine_here.say(&room, "changed it").await;
    theirs.say(&room, "not me").await;
    assert!(login(&server, "pia", PASSWORD).await.is_none());
    assert!(login(&server, "pia", new_password).await.is_some());
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_like_logins() {
    let server = TestServer::start_with(|c| c.auth.login_max_failures_per_user = 3).await;
    let token = server.register("tia").await;
    let wrong = json!({"current_password": "not it at all", "new_password": "whatever it is"});
    for _ in 0..3 {
        let (status, _) = server
            .post("/api/auth/password", wrong.clone(), Some(&token))
            .await;
        assert_eq!(status, 403);
    }
    let right = json!({"current_password": PASSWORD, "new_password": "whatever it is"});
    let (status, body) = server.post("/api/auth/password", right, Some(&token)).await;
    assert_eq!((status.as_u16(), code(&body)), (429, "rate_limited"));
}

/// Concurrent guesses of the current password all passed a throttle checked before hashing
/// and counted after; each now takes its place first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_current_passwords_are_throttled() {
    let server = TestServer::start_with(|c| c.auth.login_max_failures_per_user = 3).await;
    let token = server.register("uma").await;
    let wrong = json!({"current_password": "not it at all", "new_password": "whatever it is"});
    let guesses = (0..40).map(|_| server.post("/api/auth/password", wrong.clone(), Some(&token)));
    let answers = futures_util::future::join_all(guesses).await;
    let checked = answers.iter().filter(|(s, _)| s.as_u16() == 403).count();
    let limited = answers.iter().filter(|(s, _)| s.as_u16() == 429).count();
    assert!(
        checked <= 3,
        "{checked} guesses were checked, over the limit of 3"
    );
    assert_eq!(checked + limited, 40, "{answers:?}");
}

/// The real binary at its most talkative (`trace` for hearth, `debug` for the libraries it
/// uses: hyper, axum, tower, sled) signs people in, uses their sessions every way there is
/// (bearer, cookie, socket upgrade, a password change, logout) and fails some: no token, nor
/// its hash, appears anywhere in what it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_with_env(dir.path(), &data, &[("HEARTH_LOG", "trace")]);
    let mut tokens = vec![register(&server, "lena").await];
    let (status, body) = common::ws::http_post(
        &server,
        "/api/auth/login",
        json!({"username": "lena", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    tokens.push(body["token"].as_str().unwrap().to_string());
    let room = create_room(&server, &tokens[0], "quiet").await;
    let mut socket = WsClient::connect(&server, &tokens[1]).await;
    socket.join(&room).await;
    socket.say(&room, "hello").await;
    let cookie = client()
        .get(format!("{}/api/me", server.base))
        .header("cookie", format!("hearth_session={}", tokens[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status(), 200);
    // A refused token and a mangled one.
    let forged = format!("{}x", tokens[0]);
    let (status, _) = common::ws::http_get(&server, "/api/me", Some(&forged)).await;
    assert_eq!(status, 401);
    let (status, _) = common::ws::http_post(
        &server,
        "/api/auth/password",
        json!({"current_password": PASSWORD, "new_password": "another long one"}),
        Some(&tokens[0]),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) =
        common::ws::http_post(&server, "/api/auth/logout", json!({}), Some(&tokens[0])).await;
    assert_eq!(status, 204);
    let _ = socket.expect_close().await;
    server.stop_keeping_logs_into(|logs| {
        if std::env::var_os("SHOW_LOGS").is_some() {
            eprintln!("{logs}");
        }
        assert!(
            logs.contains("hearth is serving on") && logs.lines().count() > 20,
            "the server logged too little for this test to mean anything:\n{logs}"
        );
        for secret in tokens.iter().chain([&forged]) {
            let hash: String = token::hash(secret)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert!(!logs.contains(secret.as_str()), "a token is in the log");
            assert!(!logs.contains(&hash), "a token's hash is in the log");
            assert!(
                !logs.contains(&secret[..16]),
                "part of a token is in the log"
            );
        }
    });
}
