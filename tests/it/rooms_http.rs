//! Rooms over HTTP: creating rooms and the name rules, codes, my rooms, one room with its
//! members, and history paging (over HTTP and the socket's `history`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use common::ws::{create_room, http_get, num, WsClient};
use common::{client, code, TestServer};
use serde_json::{json, Value};

const ALPHABET: &str = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";

fn assert_code_shape(room_code: &str) {
    assert_eq!(room_code.chars().count(), 6, "{room_code}");
    assert!(
        room_code.chars().all(|c| ALPHABET.contains(c)),
        "{room_code} uses only the documented alphabet"
    );
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .try_into()
        .unwrap()
}

/// A well-formed code that is none of `taken`.
fn unused_code(taken: &[&str]) -> String {
    ["ZZZZZZ", "YYYYYY", "XXXXXX", "WWWWWW"]
        .into_iter()
        .find(|c| !taken.contains(c))
        .unwrap()
        .to_string()
}

fn codes_of(rooms: &Value) -> Vec<&str> {
    rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect()
}

/// (username, online, host) of each member, in the order answered.
fn members_of(body: &Value) -> Vec<(String, bool, bool)> {
    body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_string(),
                m["online"].as_bool().unwrap(),
                m["host"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn seqs(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|item| num(&item["seq"]))
        .collect()
}

#[tokio::test]
async fn creating_rooms_and_the_name_rules() {
    // Many rooms by one user: the hourly cap (tests/it/abuse_limits.rs) is not what this is about.
    let server = TestServer::start_with(|c| c.rooms.creations_per_user_per_hour = 0).await;
    let alice = server.register("Alice").await;

    let before = now_ms();
    let (status, body) = server
        .post("/api/rooms", json!({"name": "Book club"}), Some(&alice))
        .await;
    assert_eq!(status, 201, "{body}");
    let room = &body["room"];
    assert_eq!(room["name"], "Book club");
    assert_eq!(room["host"], "alice", "the creator is host, by username");
    assert_code_shape(room["code"].as_str().unwrap());
    let created = num(&room["created_at"]);
    assert!(
        before - 1000 <= created && created <= now_ms() + 1000,
        "created_at is unix ms: {created}"
    );

    // Lengths count characters after trimming, up to rooms.max_name_chars (100).
    let accepted = [
        "a".to_string(),
        "x".repeat(100),
        "é".repeat(100),
        format!("  {}  ", "y".repeat(100)),
    ];
    for name in accepted {
        let (status, body) = server
            .post("/api/rooms", json!({"name": name}), Some(&alice))
            .await;
        assert_eq!(status, 201, "{name:?}: {body}");
    }
    let refused = [
        (json!({"name": ""}), 400, "invalid_name"),
        (json!({"name": "   \t\n "}), 400, "invalid_name"),
        (json!({"name": "x".repeat(101)}), 400, "invalid_name"),
        (json!({"name": "é".repeat(101)}), 400, "invalid_name"),
        (json!({}), 400, "bad_request"),
        (json!({"name": 5}), 400, "bad_request"),
    ];
    for (request, status, expected) in refused {
        let (got, body) = server
            .post("/api/rooms", request.clone(), Some(&alice))
            .await;
        assert_eq!((got.as_u16(), code(&body)), (status, expected), "{request}");
    }
    let (status, body) = server
        .post("/api/rooms", json!({"name": "anon"}), None)
        .await;
    assert_eq!((status.as_u16(), code(&body)), (401, "unauthenticated"));

    // Codes are unique and all of the documented shape.
    let mut seen = HashSet::new();
    for i in 0..20 {
        let room_code = create_room(&server, &alice, &format!("room {i}")).await;
        assert_code_shape(&room_code);
        assert!(seen.insert(room_code.clone()), "duplicate code {room_code}");
    }
}

#[tokio::test]
async fn my_rooms_and_one_room_with_its_members() {
    let server = TestServer::start().await;
    let alice = server.register("Alice").await;
    let bob = server.register("Bob").await;
    let carol = server.register("carol").await;

    let one = create_room(&server, &alice, "one").await;
    let two = create_room(&server, &alice, "two").await;
    let three = create_room(&server, &bob, "three").await;

    let (status, mine) = server.get("/api/rooms", Some(&alice)).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(codes_of(&mine), [one.as_str(), two.as_str()]);
    assert_eq!(mine["rooms"][0]["name"], "one");
    assert_eq!(mine["rooms"][0]["host"], "alice");
    let (_, bobs) = server.get("/api/rooms", Some(&bob)).await;
    assert_eq!(codes_of(&bobs), [three.as_str()]);
    let (_, carols) = server.get("/api/rooms", Some(&carol)).await;
    assert_eq!(codes_of(&carols), Vec::<&str>::new());
    let (status, _) = server.get("/api/rooms", None).await;
    assert_eq!(status, 401);

    let (status, body) = server.get(&format!("/api/rooms/{one}"), Some(&alice)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["room"]["code"], one.as_str());
    assert_eq!(body["room"]["name"], "one");
    assert_eq!(body["members"][0]["display_name"], "Alice");
    assert_eq!(
        members_of(&body),
        [("alice".to_string(), false, true)],
        "no socket yet: offline"
    );

    // Alice joins Bob's room over the socket, by its lower-case code.
    let mut socket = WsClient::connect(&server, &alice).await;
    let joined = socket.join(&three.to_lowercase()).await;
    assert_eq!(joined["room"]["code"], three.as_str(), "canonical code");

    let (_, mine) = server.get("/api/rooms", Some(&alice)).await;
    assert_eq!(
        codes_of(&mine),
        [one.as_str(), two.as_str(), three.as_str()],
        "oldest membership first"
    );
    let (status, body) = server
        .get(&format!("/api/rooms/{}", three.to_lowercase()), Some(&bob))
        .await;
    assert_eq!(status, 200, "lower-case code: {body}");
    assert_eq!(body["room"]["code"], three.as_str());
    assert_eq!(body["room"]["host"], "bob");
    assert_eq!(
        members_of(&body),
        [
            ("bob".to_string(), false, true),
            ("alice".to_string(), true, false)
        ],
        "longest-standing first; alice has a subscribed socket"
    );

    let unknown = unused_code(&[&one, &two, &three]);
    let cases = [
        (format!("/api/rooms/{one}"), Some(&bob), 403, "not_member"),
        (format!("/api/rooms/{one}"), Some(&carol), 403, "not_member"),
        (
            format!("/api/rooms/{unknown}"),
            Some(&alice),
            404,
            "unknown_room",
        ),
        (
            "/api/rooms/abc".to_string(),
            Some(&alice),
            404,
            "unknown_room",
        ),
        (
            "/api/rooms/ABCDE0".to_string(),
            Some(&alice),
            404,
            "unknown_room",
        ),
        (format!("/api/rooms/{one}"), None, 401, "unauthenticated"),
    ];
    for (path, token, status, expected) in cases {
        let (got, body) = server.get(&path, token.map(String::as_str)).await;
        assert_eq!((got.as_u16(), code(&body)), (status, expected), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_with_before_and_limit() {
    let server = TestServer::start_with(|c| c.ws.rate_per_sec = 0).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = create_room(&server, &alice, "paged").await;

    // seq 1 is room_created; the creator's membership needs no join item, so 260 messages
    // take seqs 2..=261.
    let mut socket = WsClient::connect(&server, &alice).await;
    socket.join(&room).await;
    let texts: Vec<String> = (0..260).map(|i| format!("m{i}")).collect();
    let acks = socket.say_all(&room, &texts).await;
    let last = acks.iter().map(|a| num(&a["seq"])).max().unwrap();
    assert_eq!(last, 261);

    let (status, all) = http_get(
        &server,
        &format!("/api/rooms/{room}/messages?limit=200&before=62"),
        Some(&alice),
    )
    .await;
    assert_eq!(status, 200, "{all}");
    let first = &all["messages"][0];
    assert_eq!(first["seq"], 1);
    assert_eq!(first["kind"], "system");
    assert_eq!(first["event"], "room_created");
    assert_eq!(first["user"], "alice");
    for absent in ["text", "author"] {
        assert!(first.get(absent).is_none_or(Value::is_null), "{first}");
    }
    num(&first["id"]);
    assert!(num(&first["ts"]) <= now_ms());

    // Each chat item is the acked message: same seq, id and ts; text and author as sent.
    let (_, newest) = http_get(
        &server,
        &format!("/api/rooms/{room}/messages?limit=200"),
        Some(&alice),
    )
    .await;
    let mut ids = HashSet::new();
    for item in newest["messages"].as_array().unwrap() {
        let seq = num(&item["seq"]);
        let n = acks.iter().position(|a| num(&a["seq"]) == seq).unwrap();
        let ack = &acks[n];
        assert_eq!(item["kind"], "chat");
        assert_eq!(item["author"], "alice");
        assert_eq!(item["text"], format!("m{n}"));
        assert_eq!((&item["id"], &item["ts"]), (&ack["id"], &ack["ts"]));
        assert_eq!(item["reactions"], json!({}));
        assert!(ids.insert(num(&item["id"])), "ids are unique");
    }

    // (query, expected seqs, more)
    let cases: &[(&str, std::ops::RangeInclusive<u64>, bool)] = &[
        ("", 212..=261, true),
        ("?limit=10", 252..=261, true),
        ("?limit=500", 62..=261, true),
        ("?limit=200&before=62", 1..=61, false),
        ("?before=10&limit=3", 7..=9, true),
        ("?before=2", 1..=1, false),
        ("?before=9999&limit=5", 257..=261, true),
    ];
    for (query, expected, more) in cases {
        for code_case in [room.clone(), room.to_lowercase()] {
            let path = format!("/api/rooms/{code_case}/messages{query}");
            let (status, body) = http_get(&server, &path, Some(&alice)).await;
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(
                seqs(&body["messages"]),
                expected.clone().collect::<Vec<_>>(),
                "{path}"
            );
            assert_eq!(body["more"], *more, "{path}");
        }
    }
    let path = format!("/api/rooms/{room}/messages?before=1");
    let (_, body) = http_get(&server, &path, Some(&alice)).await;
    assert_eq!(
        (&body["messages"], &body["more"]),
        (&json!([]), &json!(false))
    );

    let unknown = unused_code(&[&room]);
    let refusals = [
        (
            format!("/api/rooms/{room}/messages?limit=abc"),
            &alice,
            400,
            "bad_request",
        ),
        (
            format!("/api/rooms/{room}/messages?before=xyz"),
            &alice,
            400,
            "bad_request",
        ),
        (
            format!("/api/rooms/{room}/messages?limit=0"),
            &alice,
            400,
            "bad_request",
        ),
        (
            format!("/api/rooms/{room}/messages"),
            &bob,
            403,
            "not_member",
        ),
        (
            format!("/api/rooms/{unknown}/messages"),
            &alice,
            404,
            "unknown_room",
        ),
    ];
    for (path, token, status, expected) in refusals {
        let (got, body) = http_get(&server, &path, Some(token)).await;
        assert_eq!((got, code(&body)), (status, expected), "{path}");
    }

    // The socket's `history` pages the same way, limit capped at 200.
    let cases = [
        (json!({"before": 12, "limit": 2}), 10..=11, true),
        (json!({"limit": 500}), 62..=261, true),
        (json!({"before": 4}), 1..=3, false),
        (json!({}), 212..=261, true),
    ];
    for (args, expected, more) in cases {
        let mut frame = args.clone();
        frame["type"] = json!("history");
        frame["room"] = json!(room.to_lowercase());
        let answer = socket.request(frame).await;
        assert_eq!(answer["type"], "history", "{args}: {answer}");
        assert_eq!(answer["room"], room.as_str(), "{args}");
        assert_eq!(
            seqs(&answer["messages"]),
            expected.collect::<Vec<_>>(),
            "{args}"
        );
        assert_eq!(answer["more"], more, "{args}");
    }
}

/// Found by fuzzing (fuzz/fuzz_targets/http_bodies.rs): a path segment that is not UTF-8 once
/// percent-decoded got axum's plain-text 400. It is a `bad_request` in the API's shape, and on
/// the provider routes the page for an unknown provider.
#[tokio::test]
async fn undecodable_path_segments_get_errors_in_the_api_shape() {
    let server = TestServer::start().await;
    let token = server.register("pat").await;
    for path in [
        "/api/rooms/S;%AFh%bcode",
        "/api/rooms/%FF",
        "/api/rooms/%FF/messages",
    ] {
        let (status, body) = server.get(path, Some(&token)).await;
        assert_eq!(
            (status.as_u16(), code(&body)),
            (400, "bad_request"),
            "{path}: {body}"
        );
        assert!(body["error"]["message"].is_string(), "{path}");
    }
    let (status, body) = server
        .post("/api/auth/providers/%FF/unlink", json!({}), Some(&token))
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (400, "bad_request"),
        "{body}"
    );
    for path in ["/auth/%FF/start", "/auth/%FF/callback?code=x&state=y"] {
        let response = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("Unknown sign-in provider"), "{path}: {page}");
    }
}

/// What the sign-up page of an invite link may ask before anyone signs in: the room's name by
/// its code, and whether this request has a session, each answered 200 so a signed-out page
/// logs no failure; unknown codes still count as guesses.
#[tokio::test]
async fn invites_and_the_session_answer_before_sign_in() {
    let server = TestServer::start_with(|c| c.rooms.unknown_code_max_per_ip = 3).await;
    let token = server.register("ines").await;
    let room = create_room(&server, &token, "Book club").await;

    let (status, body) = server
        .get(&format!("/api/invites/{}", room.to_lowercase()), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"room": {"code": room, "name": "Book club"}}));

    let (status, body) = server.get("/api/session", None).await;
    assert_eq!((status.as_u16(), body), (200, json!({"user": null})));
    let (status, body) = server.get("/api/session", Some("not-a-token")).await;
    assert_eq!((status.as_u16(), body), (200, json!({"user": null})));
    let (status, body) = server.get("/api/session", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["user"]["username"], "ines");

    // A code that names no room: null, and a guess; after three, even real codes are refused.
    let unknown = unused_code(&[&room]);
    for _ in 0..3 {
        let (status, body) = server.get(&format!("/api/invites/{unknown}"), None).await;
        assert_eq!((status.as_u16(), body), (200, json!({"room": null})));
    }
    let (status, body) = server.get(&format!("/api/invites/{room}"), None).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
}
