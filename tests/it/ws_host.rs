//! The host's powers over the socket: kick (and ban), unban, transfer_host, who may use them,
//! host succession when the host leaves, and the system items each step leaves in history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::ws::{create_room, history, http_get, is_error, is_event, WsClient};
use common::{code, TestServer};
use serde_json::{json, Value};

/// (username, host) of each member of `room` as `token` sees it over HTTP, and the room's host.
async fn hosts(server: &TestServer, token: &str, room: &str) -> (String, Vec<(String, bool)>) {
    let (status, body) = http_get(server, &format!("/api/rooms/{room}"), Some(token)).await;
    assert_eq!(status, 200, "{body}");
    let members = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_string(),
                m["host"].as_bool().unwrap(),
            )
        })
        .collect();
    (body["room"]["host"].as_str().unwrap().to_string(), members)
}

fn owned(members: &[(&str, bool)]) -> Vec<(String, bool)> {
    members.iter().map(|(u, h)| (u.to_string(), *h)).collect()
}

/// The item of the next `message` frame carrying a system item for `event` whose `key` is
/// `value` (the order of all
/// system items is checked in history at the end). Watched on a socket that has not just made
/// a request, since a request drops the frames that came before its answer.
async fn next_system(client: &mut WsClient, event: &str, key: &str, value: &str) -> Value {
    let frame = client
        .recv_until(|f| is_event(f, event) && f["item"][key] == value)
        .await;
    frame["item"].clone()
}

/// Whether `key` is absent (or null) in `item`.
fn absent(item: &Value, key: &str) -> bool {
    item.get(key).is_none_or(Value::is_null)
}

/// One room's cast for the story below: alice hosts; bob, mallory (on two sockets) and carol
/// are members; dave has an account and joins last.
struct Scene {
    server: TestServer,
    room: String,
    mallory: String,
    carol: String,
    dave: String,
    al: WsClient,
    bo: WsClient,
    m1: WsClient,
    m2: WsClient,
    ca: WsClient,
}

impl Scene {
    async fn new() -> Scene {
        let server = TestServer::start().await;
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        let mallory = server.register("mallory").await;
        let carol = server.register("carol").await;
        let dave = server.register("dave").await;
        let room = create_room(&server, &alice, "hosted").await;
        let mut al = WsClient::connect(&server, &alice).await;
        al.join(&room).await;
        let mut bo = WsClient::connect(&server, &bob).await;
        bo.join(&room).await;
        let mut m1 = WsClient::connect(&server, &mallory).await;
        m1.join(&room).await;
        let mut m2 = WsClient::connect(&server, &mallory).await;
        m2.join(&room).await;
        let mut ca = WsClient::connect(&server, &carol).await;
        ca.join(&room).await;
        Scene {
            server,
            room,
            mallory,
            carol,
            dave,
            al,
            bo,
            m1,
            m2,
            ca,
        }
    }

    /// A host action on `user` in the room.
    fn act(&self, kind: &str, user: &str) -> Value {
        json!({"type": kind, "room": self.room, "user": user})
    }
}

/// The story of one room, phase by phase; each phase starts where the one before left it, and
/// the last checks that history tells every step.
#[tokio::test]
async fn host_powers_bans_and_succession() {
    let mut s = Scene::new().await;
    only_the_host_acts_and_its_mistakes_are_bad_requests(&mut s).await;
    a_kick_tells_every_socket_and_bans(&mut s).await;
    an_unban_lets_back_in_as_the_newest_member(&mut s).await;
    a_transfer_moves_the_crown(&mut s).await;
    the_longest_member_succeeds_a_host_who_leaves(&mut s).await;
    let dave = the_next_joiner_hosts_an_emptied_room(&mut s).await;
    history_tells_every_step(&s.server, &dave, &s.room).await;
}

async fn only_the_host_acts_and_its_mistakes_are_bad_requests(s: &mut Scene) {
    // Only the host does host things.
    for frame in [
        s.act("kick", "mallory"),
        s.act("unban", "mallory"),
        s.act("transfer_host", "carol"),
    ] {
        let answer = s.bo.request(frame.clone()).await;
        assert!(is_error(&answer, "not_host"), "{frame}: {answer}");
    }
    // The host's mistakes are bad requests.
    for frame in [
        s.act("kick", "dave"),
        s.act("kick", "nobody"),
        s.act("kick", "alice"),
        s.act("unban", "bob"),
        s.act("transfer_host", "dave"),
        s.act("transfer_host", "ALICE"),
    ] {
        let answer = s.al.request(frame.clone()).await;
        assert!(is_error(&answer, "bad_request"), "{frame}: {answer}");
    }
}

async fn a_kick_tells_every_socket_and_bans(s: &mut Scene) {
    // Kick: both of mallory's sockets are told, and stop receiving the room.
    let answer = s.al.request(s.act("kick", "Mallory")).await;
    assert_eq!(answer["type"], "ok", "{answer}");
    for m in [&mut s.m1, &mut s.m2] {
        let kicked = m.recv_until(|f| f["type"] == "kicked").await;
        assert_eq!(
            (&kicked["room"], &kicked["by"]),
            (&json!(s.room), &json!("alice"))
        );
    }
    let item = next_system(&mut s.ca, "kick", "user", "mallory").await;
    assert_eq!(
        (&item["user"], &item["by"]),
        (&json!("mallory"), &json!("alice"))
    );
    s.al.say(&s.room, "after the kick").await;
    s.ca.recv_until(|f| f["type"] == "message" && f["item"]["text"] == "after the kick")
        .await;
    let refusals = [
        (
            json!({"type": "send", "room": s.room, "text": "let me in"}),
            "not_member",
        ),
        (json!({"type": "join", "room": s.room}), "banned"),
        (json!({"type": "history", "room": s.room}), "not_member"),
        (
            json!({"type": "react", "room": s.room, "seq": 1, "emoji": "👍", "on": true}),
            "not_member",
        ),
    ];
    for (frame, expected) in refusals {
        for m in [&mut s.m1, &mut s.m2] {
            let (answer, before) = m.request_seeing(frame.clone()).await;
            assert!(is_error(&answer, expected), "{frame}: {answer}");
            assert!(
                before.iter().all(|f| f["type"] != "message"),
                "a kicked socket receives nothing more: {before:?}"
            );
        }
    }
    let (status, body) = http_get(
        &s.server,
        &format!("/api/rooms/{}", s.room),
        Some(&s.mallory),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "not_member"));
    let (_, body) = http_get(&s.server, "/api/rooms", Some(&s.mallory)).await;
    assert_eq!(body["rooms"], json!([]));
}

async fn an_unban_lets_back_in_as_the_newest_member(s: &mut Scene) {
    // Unban: mallory may join again, as the newest member.
    let answer = s.al.request(s.act("unban", "MALLORY")).await;
    assert_eq!(answer["type"], "ok", "{answer}");
    let item = next_system(&mut s.ca, "unban", "user", "mallory").await;
    assert_eq!(
        (&item["user"], &item["by"]),
        (&json!("mallory"), &json!("alice"))
    );
    s.m1.join(&s.room).await;
    // A member's socket may send without being subscribed.
    s.m2.say(&s.room, "back again").await;
}

async fn a_transfer_moves_the_crown(s: &mut Scene) {
    // Transfer to bob.
    let answer = s.al.request(s.act("transfer_host", "Bob")).await;
    assert_eq!(answer["type"], "ok", "{answer}");
    let item = next_system(&mut s.ca, "join", "user", "mallory").await;
    assert_eq!(item["user"], "mallory");
    let item = next_system(&mut s.ca, "host_transfer", "to", "bob").await;
    assert_eq!(
        (&item["from"], &item["to"], &item["by"]),
        (&json!("alice"), &json!("bob"), &json!("alice"))
    );
    let (host, members) = hosts(&s.server, &s.carol, &s.room).await;
    assert_eq!(host, "bob");
    assert_eq!(
        members,
        owned(&[
            ("alice", false),
            ("bob", true),
            ("carol", false),
            ("mallory", false)
        ])
    );
    for frame in [s.act("kick", "carol"), s.act("transfer_host", "carol")] {
        let answer = s.al.request(frame.clone()).await;
        assert!(
            is_error(&answer, "not_host"),
            "no longer host: {frame}: {answer}"
        );
    }
}

async fn the_longest_member_succeeds_a_host_who_leaves(s: &mut Scene) {
    // alice leaves (not host: no transfer), then bob, the host: carol has been a member
    // longest (mallory's membership began again at her rejoin).
    assert_eq!(
        s.al.request(json!({"type": "leave", "room": s.room})).await["type"],
        "ok"
    );
    let item = next_system(&mut s.ca, "leave", "user", "alice").await;
    assert_eq!(item["user"], "alice");
    assert_eq!(
        s.bo.request(json!({"type": "leave", "room": s.room})).await["type"],
        "ok"
    );
    let item = next_system(&mut s.ca, "leave", "user", "bob").await;
    assert_eq!(item["user"], "bob");
    let item = next_system(&mut s.ca, "host_transfer", "to", "carol").await;
    assert_eq!(
        (&item["from"], &item["to"]),
        (&json!("bob"), &json!("carol"))
    );
    assert!(absent(&item, "by"), "succession has no by: {item}");
    let (host, members) = hosts(&s.server, &s.carol, &s.room).await;
    assert_eq!(host, "carol");
    assert_eq!(members, owned(&[("carol", true), ("mallory", false)]));
    s.ca.say(&s.room, "bye bob").await;
    let (answer, before) =
        s.bo.request_seeing(json!({"type": "history", "room": s.room}))
            .await;
    assert!(is_error(&answer, "not_member"), "{answer}");
    assert!(
        before.iter().all(|f| f["item"]["text"] != "bye bob"),
        "a leaver's socket stops receiving the room"
    );
}

/// Answers dave's token: he is the last one in.
async fn the_next_joiner_hosts_an_emptied_room(s: &mut Scene) -> String {
    // The last members leave; the s.room keeps its history and its next joiner becomes host.
    assert_eq!(
        s.ca.request(json!({"type": "leave", "room": s.room})).await["type"],
        "ok"
    );
    let item = next_system(&mut s.m1, "leave", "user", "carol").await;
    assert_eq!(item["user"], "carol");
    let item = next_system(&mut s.m1, "host_transfer", "to", "mallory").await;
    assert_eq!(
        (&item["from"], &item["to"]),
        (&json!("carol"), &json!("mallory"))
    );
    assert_eq!(
        s.m1.request(json!({"type": "leave", "room": s.room})).await["type"],
        "ok"
    );
    let mut da = WsClient::connect(&s.server, &s.dave).await;
    let joined = da.join(&s.room).await;
    assert!(
        joined["messages"].as_array().unwrap().len() > 10,
        "history kept"
    );
    let item = next_system(&mut da, "join", "user", "dave").await;
    assert_eq!(item["user"], "dave");
    let item = next_system(&mut da, "host_transfer", "to", "dave").await;
    assert_eq!(item["to"], "dave");
    assert!(absent(&item, "by"), "{item}");
    let (host, members) = hosts(&s.server, &s.dave, &s.room).await;
    assert_eq!((host.as_str(), members), ("dave", owned(&[("dave", true)])));
    s.dave.clone()
}

async fn history_tells_every_step(server: &TestServer, dave: &str, room: &str) {
    // Every step is in history as a system item with the documented fields, and no text.
    let items = history(server, dave, room).await;
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["seq"], i + 1, "gapless");
    }
    let systems: Vec<&Value> = items.iter().filter(|i| i["kind"] == "system").collect();
    let field = |i: &Value, k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let summary: Vec<[String; 5]> = systems
        .iter()
        .map(|i| {
            assert!(absent(i, "text") && absent(i, "author"), "{i}");
            let event = field(i, "event");
            if event == "host_transfer" {
                // Every system item names whom it is about: for a transfer, the new host.
                assert_eq!(i["user"], i["to"], "host_transfer: user is to: {i}");
                [
                    event,
                    field(i, "user"),
                    field(i, "by"),
                    field(i, "from"),
                    field(i, "to"),
                ]
            } else {
                assert!(absent(i, "from") && absent(i, "to"), "{i}");
                [
                    event,
                    field(i, "user"),
                    field(i, "by"),
                    String::new(),
                    String::new(),
                ]
            }
        })
        .collect();
    // Who an emptied room's host_transfer comes `from` is not fixed by the docs either.
    let last_from = summary.last().unwrap()[3].clone();
    // (event, user, by, from, to); "" = absent
    let expected = [
        ["room_created", "alice", "", "", ""],
        ["join", "bob", "", "", ""],
        ["join", "mallory", "", "", ""],
        ["join", "carol", "", "", ""],
        ["kick", "mallory", "alice", "", ""],
        ["unban", "mallory", "alice", "", ""],
        ["join", "mallory", "", "", ""],
        ["host_transfer", "bob", "alice", "alice", "bob"],
        ["leave", "alice", "", "", ""],
        ["leave", "bob", "", "", ""],
        ["host_transfer", "carol", "", "bob", "carol"],
        ["leave", "carol", "", "", ""],
        ["host_transfer", "mallory", "", "carol", "mallory"],
        ["leave", "mallory", "", "", ""],
        ["join", "dave", "", "", ""],
        ["host_transfer", "dave", "", &last_from, "dave"],
    ];
    let expected: Vec<[String; 5]> = expected.iter().map(|row| row.map(str::to_string)).collect();
    assert_eq!(summary, expected);
}
