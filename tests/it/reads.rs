//! Read positions and notification levels (PROTOCOL.md, Contract v2): one position per member
//! whatever the device, only moving forward, told to the member's other sockets; the counts and
//! levels room objects carry over HTTP and in `joined`; all of it kept across a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::ws::{create_room, num, WsClient};
use common::TestServer;
use serde_json::{json, Value};

/// The caller's room object for `code` from `GET /api/rooms`.
async fn listed(server: &TestServer, token: &str, code: &str) -> Value {
    let (status, body) = server.get("/api/rooms", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == code)
        .unwrap_or_else(|| panic!("{code} not listed: {body}"))
        .clone()
}

fn counts(room: &Value) -> (u64, u64, u64, u64) {
    (
        num(&room["last_seq"]),
        num(&room["read_seq"]),
        num(&room["unread"]),
        num(&room["mentions"]),
    )
}

/// Whether `client` receives a frame of `kind` within a short while.
async fn gets(client: &mut WsClient, kind: &str) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Some(frame) = client.rx.next_until(deadline).await {
        if let common::ws::Incoming::Json(frame) = frame {
            if frame["type"] == kind {
                return Some(frame);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_read_position_for_every_device_moving_only_forward() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let ben = server.register("ben").await;
    let code = create_room(&server, &ben, "reads").await;
    let mut phone = WsClient::connect(&server, &ann).await;
    let mut laptop = WsClient::connect(&server, &ann).await;
    let joined = phone.join(&code).await;
    laptop.join(&code).await;
    // Joining, ann has read what was there and her own join.
    let read_at_join = num(&joined["room"]["read_seq"]);
    assert_eq!(joined["room"]["kind"], "room");
    assert_eq!(joined["room"]["unread"], 0, "{joined}");
    assert_eq!(joined["room"]["notify"], "mentions", "{joined}");

    let mut writer = WsClient::connect(&server, &ben).await;
    writer.join(&code).await;
    writer.say(&code, "one").await;
    writer.say(&code, "two @ann").await;
    let last = num(&writer.say(&code, "three").await["seq"]);
    phone.say(&code, "mine do not count").await;
    let deleted = num(&writer.say(&code, "deleted ones do not count").await["seq"]);
    let ok = writer
        .request(json!({"type": "delete", "room": code, "seq": deleted}))
        .await;
    assert_eq!(ok["type"], "ok");
    // Someone joining is an item ann has not read either (not authored by her).
    let cat = server.register("cat").await;
    let mut newcomer = WsClient::connect(&server, &cat).await;
    newcomer.join(&code).await;
    let joined_at = num(&listed(&server, &cat, &code).await["last_seq"]);
    let room = listed(&server, &ann, &code).await;
    assert_eq!(counts(&room), (joined_at, read_at_join, 4, 1), "{room}");
    let (_, one) = server.get(&format!("/api/rooms/{code}"), Some(&ann)).await;
    assert_eq!(counts(&one["room"]), counts(&room), "{one}");

    // The phone reads to `last`: stored before its ok, told to the laptop, not back to itself.
    let ok = phone
        .request(json!({"type": "read", "room": code, "seq": last}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let told = gets(&mut laptop, "read").await.expect("the laptop hears");
    assert_eq!(
        (told["room"].as_str(), num(&told["seq"])),
        (Some(&*code), last)
    );
    assert!(
        gets(&mut phone, "read").await.is_none(),
        "the reader is not told"
    );
    let room = listed(&server, &ann, &code).await;
    // Left after `last`: cat's join (ann's own message and the deleted one do not count).
    assert_eq!(counts(&room), (joined_at, last, 1, 0), "{room}");

    // Backwards changes nothing (ok, no frame); past the end stops at the end.
    let ok = laptop
        .request(json!({"type": "read", "room": code, "seq": read_at_join}))
        .await;
    assert_eq!(ok["type"], "ok");
    assert!(
        gets(&mut phone, "read").await.is_none(),
        "a lower seq is not news"
    );
    assert_eq!(num(&listed(&server, &ann, &code).await["read_seq"]), last);
    let ok = laptop
        .request(json!({"type": "read", "room": code, "seq": 1_000_000}))
        .await;
    assert_eq!(ok["type"], "ok");
    assert_eq!(
        num(&gets(&mut phone, "read").await.unwrap()["seq"]),
        joined_at
    );

    // A non-member reads nothing.
    let dan = server.register("dan").await;
    let mut stranger = WsClient::connect(&server, &dan).await;
    let refused = stranger
        .request(json!({"type": "read", "room": code, "seq": 1}))
        .await;
    assert_eq!(refused["code"], "not_member", "{refused}");

    // Kept across a restart.
    drop((phone, laptop, writer, newcomer, stranger));
    let server = server.restart().await;
    assert_eq!(
        num(&listed(&server, &ann, &code).await["read_seq"]),
        joined_at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_levels_are_per_member_and_kept() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let ben = server.register("ben").await;
    let code = create_room(&server, &ann, "levels").await;
    assert_eq!(listed(&server, &ann, &code).await["notify"], "mentions");
    let path = format!("/api/rooms/{code}/notify");

    let table = [
        (json!({"level": "all"}), 200, Some("all")),
        (json!({"level": "none"}), 200, Some("none")),
        (json!({"level": "loud"}), 400, None),
        (json!({}), 400, None),
        (json!({"level": "all", "extra": 1}), 400, None),
    ];
    for (body, status, level) in table {
        let (got, answer) = server.put(&path, body.clone(), Some(&ann)).await;
        assert_eq!(got.as_u16(), status, "{body} -> {answer}");
        if let Some(level) = level {
            assert_eq!(answer["level"], level);
            assert_eq!(listed(&server, &ann, &code).await["notify"], level);
        } else {
            assert_eq!(answer["error"]["code"], "bad_request", "{answer}");
        }
    }
    let (status, answer) = server.put(&path, json!({"level": "all"}), Some(&ben)).await;
    assert_eq!(
        (status.as_u16(), &answer["error"]["code"]),
        (403, &json!("not_member"))
    );

    // Ben's level is his own; ann's survives a restart.
    let mut client = WsClient::connect(&server, &ben).await;
    let joined = client.join(&code).await;
    assert_eq!(joined["room"]["notify"], "mentions");
    drop(client);
    let server = server.restart().await;
    assert_eq!(listed(&server, &ann, &code).await["notify"], "none");
}
