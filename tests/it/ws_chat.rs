//! Chat over the socket: fan-out in seq order with matching acks, resuming with `since`,
//! presence, typing, reactions, idle room actors, and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::process::start_with_env;
use common::ws::{
    create_room, history, http_get, is_chat, is_event, num, pick, register, Incoming, Target,
    WsClient, TIMEOUT,
};
use common::TestServer;
use serde_json::{json, Value};

/// (seq, text) of every chat item in `messages`.
fn chats(messages: &Value) -> Vec<(u64, String)> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["kind"] == "chat")
        .map(|item| {
            (
                num(&item["seq"]),
                item["text"].as_str().unwrap().to_string(),
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

/// What one client of the fan-out test saw.
struct Seen {
    acks: HashMap<String, Value>,
    items: Vec<Value>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_get_every_message_in_the_same_gapless_order() {
    const EACH: usize = 200;
    let server = TestServer::start_with(|c| {
        c.ws.rate_per_sec = 0;
        c.ws.outbound_queue = 4096;
    })
    .await;
    let names = ["ann", "ben", "cat"];
    let mut tokens = Vec::new();
    for name in names {
        tokens.push(server.register(name).await);
    }
    let room = create_room(&server, &tokens[0], "busy").await;
    let mut clients = Vec::new();
    for token in &tokens {
        let mut client = WsClient::connect(&server, token).await;
        client.join(&room).await;
        clients.push(client);
    }

    // Every socket is subscribed before anyone sends, so each must see all 600.
    let mut tasks = Vec::new();
    for (name, client) in names.into_iter().zip(clients) {
        let WsClient { mut tx, mut rx } = client;
        let room = room.clone();
        let writer = tokio::spawn(async move {
            for n in 0..EACH {
                let text = format!("{name} {n}");
                let frame = json!({"type": "send", "room": room, "text": text, "ref": format!("{name}-{n}")});
                tx.send(frame).await;
            }
            tx
        });
        let reader = tokio::spawn(async move {
            let mut seen = Seen {
                acks: HashMap::new(),
                items: Vec::new(),
            };
            while seen.acks.len() < EACH || seen.items.len() < EACH * names.len() {
                let frame = rx.recv().await;
                match frame["type"].as_str().unwrap() {
                    "ack" => {
                        let r = frame["ref"].as_str().unwrap().to_string();
                        assert!(seen.acks.insert(r, frame).is_none(), "one ack per ref");
                    }
                    "message" if frame["item"]["kind"] == "chat" => {
                        seen.items.push(frame["item"].clone());
                    }
                    "error" => panic!("{name}: {frame}"),
                    _ => {}
                }
            }
            seen
        });
        tasks.push((name, writer, reader));
    }
    let mut all = Vec::new();
    for (name, writer, reader) in tasks {
        writer.await.unwrap();
        all.push((name, reader.await.unwrap()));
    }

    let order = |seen: &Seen| -> Vec<(u64, String)> {
        seen.items
            .iter()
            .map(|i| (num(&i["seq"]), i["text"].as_str().unwrap().to_string()))
            .collect()
    };
    let reference = order(&all[0].1);
    let first = reference[0].0;
    for (i, (seq, _)) in reference.iter().enumerate() {
        assert_eq!(*seq, first + i as u64, "gapless and in seq order");
    }
    let texts: HashSet<&String> = reference.iter().map(|(_, t)| t).collect();
    assert_eq!(texts.len(), EACH * names.len(), "no duplicates");
    for (name, seen) in &all {
        assert_eq!(order(seen), reference, "{name} saw the same order");
    }

    // Each ack matches its ref and names the seq, id and ts of that message as delivered.
    let by_text: HashMap<&str, &Value> = all[0]
        .1
        .items
        .iter()
        .map(|i| (i["text"].as_str().unwrap(), i))
        .collect();
    for (name, seen) in &all {
        let mut last_seq = 0;
        for n in 0..EACH {
            let ack = &seen.acks[&format!("{name}-{n}")];
            let item = by_text[format!("{name} {n}").as_str()];
            assert_eq!(ack["type"], "ack");
            assert_eq!(ack["room"], room.as_str());
            assert_eq!(
                (&ack["seq"], &ack["id"], &ack["ts"]),
                (&item["seq"], &item["id"], &item["ts"]),
                "{name} {n}"
            );
            assert_eq!(item["author"], *name);
            let seq = num(&item["seq"]);
            assert!(seq > last_seq, "one socket's messages keep their order");
            last_seq = seq;
        }
    }

    // `since` returns at most 500 items and says when more follow.
    let last = reference.last().unwrap().0;
    let mut late = WsClient::connect(&server, &tokens[1]).await;
    let joined = late.join_since(&room, 0).await;
    assert_eq!(seqs(&joined["messages"]), (1..=500).collect::<Vec<_>>());
    assert_eq!(joined["more"], true);
    let joined = late.join_since(&room, 500).await;
    assert_eq!(seqs(&joined["messages"]), (501..=last).collect::<Vec<_>>());
    assert_eq!(joined["more"], false);
    let tail: Vec<_> = reference
        .iter()
        .filter(|(s, _)| *s > 500)
        .cloned()
        .collect();
    assert_eq!(chats(&joined["messages"]), tail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejoining_with_since_gets_exactly_what_was_missed() {
    let server = TestServer::start_with(|c| c.ws.rate_per_sec = 0).await;
    let ann = server.register("ann").await;
    let ben = server.register("ben").await;
    let cat = server.register("cat").await;
    let room = create_room(&server, &ann, "resume").await;
    let mut a = WsClient::connect(&server, &ann).await;
    a.join(&room).await;
    let mut c = WsClient::connect(&server, &cat).await;
    c.join(&room).await;
    let mut b = WsClient::connect(&server, &ben).await;
    let joined = b.join(&room).await;
    let mut last_seen = seqs(&joined["messages"]).into_iter().max().unwrap();

    for i in 0..5 {
        a.say(&room, &format!("warm {i}")).await;
    }
    loop {
        let frame = b.recv().await;
        if frame["type"] == "message" {
            last_seen = last_seen.max(num(&frame["item"]["seq"]));
            if is_chat(&frame, "warm 4") {
                break;
            }
        }
    }
    b.close().await;

    // While ben is away, ann and cat post 50 each.
    let post = |mut client: WsClient, who: &'static str| {
        let room = room.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..50 {
                let ack = client.say(&room, &format!("{who} {i}")).await;
                acked.push((num(&ack["seq"]), format!("{who} {i}")));
            }
            (client, acked)
        })
    };
    let (a_task, c_task) = (post(a, "ann"), post(c, "cat"));
    let (mut a, mut missed) = a_task.await.unwrap();
    let (_c, from_cat) = c_task.await.unwrap();
    missed.extend(from_cat);
    missed.sort();

    let mut b = WsClient::connect(&server, &ben).await;
    let joined = b.join_since(&room, last_seen).await;
    assert_eq!(
        seqs(&joined["messages"]),
        (last_seen + 1..=last_seen + 100).collect::<Vec<_>>(),
        "exactly the 100 items after since, oldest first"
    );
    assert_eq!(chats(&joined["messages"]), missed);
    assert_eq!(joined["more"], false);

    // Live delivery resumes right after them: no duplicate, no gap.
    a.say(&room, "after").await;
    let next = b.recv_until(|f| f["type"] == "message").await;
    assert!(is_chat(&next, "after"), "{next}");
    assert_eq!(next["item"]["seq"], last_seen + 101);

    // Without since: the last 50, and more = true since older ones exist.
    let mut fresh = WsClient::connect(&server, &ben).await;
    let joined = fresh.join(&room).await;
    assert_eq!(
        seqs(&joined["messages"]),
        (last_seen + 52..=last_seen + 101).collect::<Vec<_>>()
    );
    assert_eq!(joined["more"], true);

    // A small room comes whole, with more = false.
    let small = create_room(&server, &cat, "small").await;
    fresh.join(&small).await;
    for i in 0..3 {
        fresh.say(&small, &format!("s{i}")).await;
    }
    let mut other = WsClient::connect(&server, &ann).await;
    let joined = other.join(&small).await;
    let kinds: Vec<(u64, &str)> = joined["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (num(&i["seq"]), i["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, "system"),
            (2, "system"),
            (3, "chat"),
            (4, "chat"),
            (5, "chat")
        ],
        "room_created, ben's join, three messages"
    );
    assert_eq!(joined["more"], false);
}

#[tokio::test]
async fn presence_follows_the_users_subscribed_sockets() {
    let server = TestServer::start().await;
    let olga = server.register("olga").await;
    let pia = server.register("pia").await;
    let room = create_room(&server, &olga, "presence").await;
    let mut o = WsClient::connect(&server, &olga).await;
    o.join(&room).await;

    let mut p1 = WsClient::connect(&server, &pia).await;
    let joined = p1.join(&room).await;
    let members: Vec<(&str, bool, bool)> = joined["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap(),
                m["online"].as_bool().unwrap(),
                m["host"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(members, [("olga", true, true), ("pia", true, false)]);
    let presence = ["type", "room", "user", "online"];
    let online = o.recv_until(|f| f["type"] == "presence").await;
    assert_eq!(
        pick(&online, &presence),
        json!({"type": "presence", "room": room, "user": "pia", "online": true})
    );

    // A second socket of the same user, then the first goes away: pia stays online.
    let mut p2 = WsClient::connect(&server, &pia).await;
    p2.join(&room).await;
    p1.close().await;
    p2.say(&room, "still here").await;
    loop {
        let frame = o.recv().await;
        assert_ne!(frame["type"], "presence", "pia never went offline: {frame}");
        if is_chat(&frame, "still here") {
            break;
        }
    }
    let (_, body) = http_get(&server, &format!("/api/rooms/{room}"), Some(&olga)).await;
    assert_eq!(body["members"][1]["username"], "pia");
    assert_eq!(body["members"][1]["online"], true);

    p2.close().await;
    let offline = o.recv_until(|f| f["type"] == "presence").await;
    assert_eq!(
        pick(&offline, &presence),
        json!({"type": "presence", "room": room, "user": "pia", "online": false})
    );
    let (_, body) = http_get(&server, &format!("/api/rooms/{room}"), Some(&olga)).await;
    assert_eq!(body["members"][1]["online"], false);
}

/// Reads until the chat message `text`; answers the types of the frames before it.
async fn types_before(client: &mut WsClient, text: &str) -> Vec<String> {
    let mut types = Vec::new();
    loop {
        let frame = client.recv().await;
        if is_chat(&frame, text) {
            return types;
        }
        types.push(frame["type"].as_str().unwrap().to_string());
    }
}

#[tokio::test]
async fn typing_reaches_the_others_only_and_is_throttled() {
    let server = TestServer::start().await;
    let olga = server.register("olga").await;
    let tom = server.register("tom").await;
    let room = create_room(&server, &olga, "typing").await;
    let mut o = WsClient::connect(&server, &olga).await;
    o.join(&room).await;
    let mut t1 = WsClient::connect(&server, &tom).await;
    t1.join(&room).await;
    let mut t2 = WsClient::connect(&server, &tom).await;
    t2.join(&room).await;

    let typing = json!({"type": "typing", "room": room});
    let no_typing = |frames: &[Value]| frames.iter().all(|f| f["type"] != "typing");
    let first = Instant::now();
    let (answer, before) = t1.request_seeing(typing.clone()).await;
    assert_eq!(answer["type"], "ok", "{answer}");
    assert!(no_typing(&before), "not to the typer: {before:?}");
    let seen = o.recv_until(|f| f["type"] == "typing").await;
    assert_eq!(
        pick(&seen, &["type", "room", "user"]),
        json!({"type": "typing", "room": room, "user": "tom"})
    );

    // Within the window a second one is answered ok and dropped.
    let (answer, before) = t1.request_seeing(typing.clone()).await;
    assert_eq!(answer["type"], "ok", "{answer}");
    assert!(no_typing(&before), "not to the typer: {before:?}");
    assert!(
        first.elapsed() < Duration::from_millis(800),
        "the test itself was too slow to check the throttle"
    );
    let before = o.say_seeing(&room, "sentinel").await;
    assert!(no_typing(&before), "throttled: {before:?}");
    for client in [&mut t1, &mut t2] {
        let types = types_before(client, "sentinel").await;
        assert!(
            !types.contains(&"typing".to_string()),
            "the typer's own sockets: {types:?}"
        );
    }

    // After the window (rooms.typing_throttle_ms, 1000) the user's typing shows again, from
    // any of their sockets.
    let window = Duration::from_millis(1000);
    tokio::time::sleep(window.saturating_sub(first.elapsed()) + Duration::from_millis(100)).await;
    assert_eq!(t2.request(typing).await["type"], "ok");
    let seen = o.recv_until(|f| f["type"] == "typing").await;
    assert_eq!(seen["user"], "tom");
}

#[tokio::test]
async fn reactions_toggle_broadcast_and_persist() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let ben = server.register("ben").await;
    let cyd = server.register("cyd").await;
    let room = create_room(&server, &ann, "reactions").await;
    let mut a = WsClient::connect(&server, &ann).await;
    a.join(&room).await;
    let mut b = WsClient::connect(&server, &ben).await;
    b.join(&room).await;
    // cyd only watches: every reaction broadcast reaches cyd, in order.
    let mut c = WsClient::connect(&server, &cyd).await;
    c.join(&room).await;
    let seq = num(&a.say(&room, "react to me").await["seq"]);

    let react = |emoji: &str, on: bool| json!({"type": "react", "room": room, "seq": seq, "emoji": emoji, "on": on});
    let reaction = |emoji: &str, user: &str, on: bool| json!({"type": "reaction", "room": room, "seq": seq, "emoji": emoji, "user": user, "on": on});
    let fields = ["type", "room", "seq", "emoji", "user", "on"];

    // (who reacts, emoji, on, the reaction cyd sees next; null for none)
    let steps = [
        ("ben", "👍", true, reaction("👍", "ben", true)),
        // Adding again changes nothing: ok, not broadcast; the next reaction cyd sees is 🎉.
        ("ben", "👍", true, Value::Null),
        ("ben", "🎉", true, reaction("🎉", "ben", true)),
        ("ben", "👍", false, reaction("👍", "ben", false)),
        // Removing one ben does not hold: ok, not broadcast.
        ("ben", "👍", false, Value::Null),
        ("ben", "🎉", false, reaction("🎉", "ben", false)),
        ("ben", "👍", true, reaction("👍", "ben", true)),
        ("ann", "👍", true, reaction("👍", "ann", true)),
        ("ann", "🎉", true, reaction("🎉", "ann", true)),
    ];
    for (who, emoji, on, expected) in steps {
        let client = if who == "ben" { &mut b } else { &mut a };
        let answer = client.request(react(emoji, on)).await;
        assert_eq!(answer["type"], "ok", "{who} {emoji} {on}: {answer}");
        if !expected.is_null() {
            let seen = c.recv_until(|f| f["type"] == "reaction").await;
            assert_eq!(pick(&seen, &fields), expected, "{who} {emoji} {on}");
        }
    }

    // Validation: an unknown seq or a bad emoji is bad_request.
    for frame in [
        json!({"type": "react", "room": room, "seq": 9999, "emoji": "👍", "on": true}),
        json!({"type": "react", "room": room, "seq": seq, "emoji": "", "on": true}),
        json!({"type": "react", "room": room, "seq": seq, "emoji": "a b", "on": true}),
        json!({"type": "react", "room": room, "seq": seq, "emoji": "x".repeat(17), "on": true}),
    ] {
        let answer = b.request(frame.clone()).await;
        assert_eq!(
            (&answer["type"], &answer["code"]),
            (&json!("error"), &json!("bad_request")),
            "{frame}"
        );
    }

    let expected = json!({"👍": ["ben", "ann"], "🎉": ["ann"]});
    let item_reactions = |items: Vec<Value>| {
        items.into_iter().find(|i| i["seq"] == seq).unwrap()["reactions"].clone()
    };
    assert_eq!(
        item_reactions(history(&server, &ann, &room).await),
        expected
    );
    let server = server.restart().await;
    assert_eq!(
        item_reactions(history(&server, &ann, &room).await),
        expected,
        "reactions survive a restart"
    );
}

/// The value of the `hearth_rooms_active` gauge (summed over label sets), if exported.
async fn rooms_active(target: &impl Target) -> Option<f64> {
    let text = common::client()
        .get(format!("{}/metrics", target.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let values: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix("hearth_rooms_active")
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Polls the gauge every 100 ms for at most 5 s until it equals `wanted`.
async fn await_rooms_active(target: &impl Target, wanted: f64) {
    let deadline = Instant::now() + TIMEOUT;
    let mut last = None;
    while Instant::now() < deadline {
        last = rooms_active(target).await;
        if last == Some(wanted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("hearth_rooms_active stayed {last:?}, wanted {wanted}");
}

/// Runs the binary: the metrics recorder is process-wide, so in-process servers of other tests
/// would share the gauge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_room_actors_stop_and_come_back_with_their_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_env(
        dir.path(),
        &dir.path().join("data"),
        &[("HEARTH_ROOMS__IDLE_ACTOR_SECS", "1")],
    );
    let ann = register(&server, "ann").await;
    let ben = register(&server, "ben").await;
    let room = create_room(&server, &ann, "sleepy").await;

    let mut a = WsClient::connect(&server, &ann).await;
    a.join(&room).await;
    a.say(&room, "one").await;
    a.say(&room, "two").await;
    await_rooms_active(&server, 1.0).await;
    // A subscribed socket keeps the actor running past idle_actor_secs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rooms_active(&server).await,
        Some(1.0),
        "a subscribed room stays"
    );
    assert_eq!(a.say(&room, "three").await["seq"], 4);
    a.close().await;

    await_rooms_active(&server, 0.0).await;

    // The next join brings the room back with its history, and seqs continue.
    let mut b = WsClient::connect(&server, &ben).await;
    let joined = b.join(&room).await;
    assert_eq!(seqs(&joined["messages"]), [1, 2, 3, 4]);
    assert_eq!(
        chats(&joined["messages"]),
        [
            (2, "one".to_string()),
            (3, "two".to_string()),
            (4, "three".to_string())
        ]
    );
    let own = b.recv_until(|f| is_event(f, "join")).await;
    assert_eq!(
        (&own["item"]["seq"], &own["item"]["user"]),
        (&json!(5), &json!("ben"))
    );
    await_rooms_active(&server, 1.0).await;
    let mut a = WsClient::connect(&server, &ann).await;
    let joined = a.join_since(&room, 4).await;
    assert_eq!(seqs(&joined["messages"]), [5]);
    assert_eq!(a.say(&room, "four").await["seq"], 6);
    let all: Vec<u64> = history(&server, &ann, &room)
        .await
        .iter()
        .map(|i| num(&i["seq"]))
        .collect();
    assert_eq!(all, (1..=6).collect::<Vec<_>>());
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sockets_with_1001_and_keeps_what_was_acked() {
    let mut server = TestServer::start_with(|c| {
        c.ws.rate_per_sec = 0;
        c.http.shutdown_grace_secs = 3;
    })
    .await;
    let names = ["ann", "ben"];
    let mut tokens = Vec::new();
    for name in names {
        tokens.push(server.register(name).await);
    }
    let room = create_room(&server, &tokens[0], "stopping").await;
    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut tasks = Vec::new();
    for (name, token) in names.into_iter().zip(&tokens) {
        let mut client = WsClient::connect(&server, token).await;
        client.join(&room).await;
        for i in 0..3 {
            let text = format!("{name} before {i}");
            let ack = client.say(&room, &text).await;
            acked.push((num(&ack["seq"]), text));
        }
        // Then a stream of sends that races the shutdown.
        let WsClient { mut tx, mut rx } = client;
        let room = room.clone();
        let writer = tokio::spawn(async move {
            for i in 0..200 {
                let frame = json!({"type": "send", "room": room, "text": format!("{name} racing {i}"), "ref": format!("{i}")});
                if !tx.try_send(frame).await {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let reader = tokio::spawn(async move {
            let mut acks = Vec::new();
            loop {
                match rx.next().await {
                    Incoming::Json(frame) if frame["type"] == "ack" => {
                        let i = frame["ref"].as_str().unwrap();
                        acks.push((num(&frame["seq"]), format!("{name} racing {i}")));
                    }
                    Incoming::Json(_) => {}
                    Incoming::Close(code, reason) => return (code, reason, acks),
                    Incoming::Ended(why) => panic!("{name}: ended without a close frame: {why}"),
                }
            }
        });
        tasks.push((writer, reader));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let readers = async {
        let mut closes = Vec::new();
        for (writer, reader) in tasks {
            closes.push(reader.await.unwrap());
            writer.await.unwrap();
        }
        closes
    };
    let ((), closes) = tokio::join!(server.shutdown(), readers);
    for (code, reason, acks) in closes {
        assert_eq!(code, 1001, "going away: {reason}");
        acked.extend(acks);
    }

    let server = server.restart().await;
    let items = history(&server, &tokens[0], &room).await;
    let by_seq: HashMap<u64, &Value> = items.iter().map(|i| (num(&i["seq"]), i)).collect();
    for (seq, text) in &acked {
        let item = by_seq
            .get(seq)
            .unwrap_or_else(|| panic!("acked seq {seq} lost"));
        assert_eq!(item["text"], text.as_str(), "seq {seq}");
    }
    let all: Vec<u64> = items.iter().map(|i| num(&i["seq"])).collect();
    assert_eq!(all, (1..=all.len() as u64).collect::<Vec<_>>(), "gapless");
}
