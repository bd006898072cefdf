//! Crash safety under mixed load: the real binary is SIGKILLed at 50 moments while people post,
//! give bot commands, react, and leave and rejoin a room. After each kill the server must start
//! on the same data directory (so the store passed its integrity check), both rooms' seqs must
//! be gapless, and everything that was acknowledged must be there: every acked message at its
//! seq with its id and text, every acked reaction on its item, the membership that a rejoiner's
//! last acknowledged leave or join left behind, for every acked bot command exactly one
//! answer from the bot (the test plugin's `/echo`), however many kills it lived through, and
//! every acked edit's text or acked delete's tombstone in place of what was said (a change sent
//! but not acked may or may not have landed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use common::bots::{testbot_wasm, wait_for_command};
use common::process::{start_with_env, Running};
use common::ws::{create_room, history, http_get, num, register, Incoming, WsClient, TIMEOUT};
use serde_json::{json, Value};
use tokio::time::Instant;

const KILLS: usize = 50;
/// Rate limiting off, so the load is as dense as the server allows; a bot job cut short by
/// kills again and again is retried rather than given up, so every answer is the echo.
const ENV: &[(&str, &str)] = &[
    ("HEARTH_WS__RATE_PER_SEC", "0"),
    ("HEARTH_BOTS__MAX_ATTEMPTS", "1000"),
];
/// How long a restarted server may take to answer every acked command.
const ANSWER_WAIT: Duration = Duration::from_secs(30);
const EMOJI: [&str; 6] = ["👍", "🎉", "🔥", "👀", "✅", "🙂"];

fn random(max: u64) -> u64 {
    RandomState::new().build_hasher().finish() % max
}

/// What one client was told was durable during one life of the server.
#[derive(Default)]
struct Acked {
    /// (room, seq) -> (id, text)
    messages: Vec<(String, u64, u64, String)>,
    /// (room, seq, emoji)
    reactions: Vec<(String, u64, String)>,
    /// Bot commands in the main room: (seq, what the echo must say).
    commands: Vec<(u64, String)>,
    /// Edits and deletes of this life's own messages, at most one per message.
    changes: Vec<Change>,
    /// The last membership change sent, and whether it was acknowledged: (joined?, acked?).
    membership: Option<(bool, bool)>,
    /// The ref of that change: an answer to an earlier join or leave acknowledges nothing
    /// about the latest one.
    membership_ref: Option<String>,
}

/// An edit (`text`) or delete (`None`) of a message, and whether its `ok` came.
#[derive(Clone)]
struct Change {
    room: String,
    seq: u64,
    text: Option<String>,
    r: String,
    acked: bool,
}

/// One client's part of the load, until the server dies. `member` is whether the rejoiner
/// is a member of the side room as the round starts.
async fn drive(client: WsClient, who: &'static str, plan: Plan, member: bool) -> Acked {
    let WsClient { mut tx, mut rx } = client;
    let mut acked = Acked {
        membership: matches!(plan.kind, Kind::Rejoiner).then_some((member, true)),
        ..Acked::default()
    };
    // ref -> what it was
    let mut sent: BTreeMap<String, Value> = BTreeMap::new();
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Keep a few frames in flight, but nothing after a join or leave until it is answered:
        // then the membership after a kill is known whenever the last change was acked.
        while sent.len() < 4 && !matches!(acked.membership, Some((_, false))) {
            n += 1;
            let mut frame = plan.frame(who, n, &acked);
            let r = format!("{who}-{n}");
            frame["ref"] = json!(r);
            if frame["type"] == "join" || frame["type"] == "leave" {
                acked.membership = Some((frame["type"] == "join", false));
                acked.membership_ref = Some(r.clone());
            }
            if frame["type"] == "edit" || frame["type"] == "delete" {
                acked.changes.push(Change {
                    room: frame["room"].as_str().unwrap().to_string(),
                    seq: num(&frame["seq"]),
                    text: frame["text"].as_str().map(str::to_string),
                    r: r.clone(),
                    acked: false,
                });
            }
            if !tx.try_send(frame.clone()).await {
                return acked;
            }
            sent.insert(r, frame);
        }
        match rx.next_until(Instant::now() + TIMEOUT).await {
            Some(Incoming::Json(answer)) => {
                let Some(r) = answer["ref"].as_str() else {
                    continue;
                };
                let Some(frame) = sent.remove(r) else {
                    continue;
                };
                let room = frame["room"].as_str().unwrap().to_string();
                match (frame["type"].as_str().unwrap(), answer["type"].as_str()) {
                    ("send", Some("ack")) => {
                        let seq = num(&answer["seq"]);
                        let text = frame["text"].as_str().unwrap().to_string();
                        if let Some(args) = text.strip_prefix("/echo ") {
                            acked.commands.push((seq, args.to_string()));
                        }
                        acked.messages.push((room, seq, num(&answer["id"]), text));
                    }
                    ("react", Some("ok")) => acked.reactions.push((
                        room,
                        num(&frame["seq"]),
                        frame["emoji"].as_str().unwrap().to_string(),
                    )),
                    ("edit" | "delete", Some("ok")) => {
                        let change = acked.changes.iter_mut().find(|c| c.r == r).unwrap();
                        change.acked = true;
                    }
                    ("join", Some("joined")) | ("leave", Some("ok")) => {
                        // Only the latest change counts; earlier ones were superseded.
                        if acked.membership_ref.as_deref() == Some(r) {
                            if let Some((joined, _)) = acked.membership {
                                acked.membership = Some((joined, true));
                            }
                        }
                    }
                    (kind, _) => panic!("{who}: {kind} answered {answer}"),
                }
            }
            Some(Incoming::Close(..) | Incoming::Ended(_)) => return acked,
            None => panic!("{who}: the socket neither answered nor ended in 5 s"),
        }
        assert!(
            Instant::now() < deadline,
            "{who}: the server was never killed"
        );
    }
}

/// What a client does.
#[derive(Clone)]
struct Plan {
    kind: Kind,
    main: String,
    side: String,
    /// Items of the main room known to exist, to react to.
    targets: Vec<u64>,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Posts to the main room, every third message a bot command; edits or deletes some of
    /// its own messages of this life.
    Poster,
    /// Posts, and reacts to items that exist.
    Reactor,
    /// Leaves and rejoins the side room, posting there while a member and in the main room
    /// while not.
    Rejoiner,
}

impl Plan {
    fn frame(&self, who: &str, n: usize, acked: &Acked) -> Value {
        match self.kind {
            Kind::Poster if n % 5 == 2 || n % 7 == 4 => {
                // The newest message of this life acked and not changed yet.
                let changed: HashSet<u64> = acked.changes.iter().map(|c| c.seq).collect();
                let target = acked.messages.iter().rev().find(|(room, seq, _, text)| {
                    room == &self.main && !text.starts_with('/') && !changed.contains(seq)
                });
                let text = format!("{who} {n} {}", random(1 << 30));
                match target {
                    Some((_, seq, _, _)) if n % 5 == 2 => {
                        json!({"type": "edit", "room": self.main, "seq": seq, "text": format!("edited {text}")})
                    }
                    Some((_, seq, _, _)) => {
                        json!({"type": "delete", "room": self.main, "seq": seq})
                    }
                    None => json!({"type": "send", "room": self.main, "text": text}),
                }
            }
            Kind::Poster if n.is_multiple_of(3) => {
                json!({"type": "send", "room": self.main, "text": format!("/echo {who} {n} {}", random(1 << 30))})
            }
            Kind::Poster => {
                json!({"type": "send", "room": self.main, "text": format!("{who} {n} {}", random(1 << 30))})
            }
            Kind::Reactor if n.is_multiple_of(2) && !self.targets.is_empty() => {
                let seq = self.targets[(random(self.targets.len() as u64)) as usize];
                let emoji = EMOJI[random(EMOJI.len() as u64) as usize];
                json!({"type": "react", "room": self.main, "seq": seq, "emoji": emoji, "on": true})
            }
            Kind::Reactor => {
                json!({"type": "send", "room": self.main, "text": format!("{who} {n} {}", random(1 << 30))})
            }
            Kind::Rejoiner => {
                // Leave and rejoin the side room every few frames, posting there while a
                // member and in the main room while not. (Changes far apart, so most kills
                // find the last one answered and the membership known.)
                let member = !matches!(acked.membership, Some((false, _)));
                let text = format!("{who} {n} {}", random(1 << 30));
                match n % 12 {
                    0 if member => json!({"type": "leave", "room": self.side}),
                    6 if !member => json!({"type": "join", "room": self.side}),
                    _ if member => json!({"type": "send", "room": self.side, "text": text}),
                    _ => json!({"type": "send", "room": self.main, "text": text}),
                }
            }
        }
    }
}

/// Waits until the bot has answered every acked command in `room`, checking on the way that
/// no command is ever answered twice (an answer still in flight from before the kill, or a
/// job run again after it, must not add a second one).
async fn answered_once(
    server: &Running,
    token: &str,
    room: &str,
    commands: &BTreeMap<u64, String>,
    kill: usize,
) {
    let deadline = Instant::now() + ANSWER_WAIT;
    loop {
        let mut answers: HashMap<u64, Vec<String>> = HashMap::new();
        for item in history(server, token, room).await {
            if item["kind"] == "bot" {
                answers
                    .entry(num(&item["reply_to"]))
                    .or_default()
                    .push(item["text"].as_str().unwrap().to_string());
            }
        }
        for (seq, texts) in &answers {
            assert_eq!(
                texts.len(),
                1,
                "command at {seq} answered {texts:?} after kill {kill}"
            );
        }
        let unanswered: Vec<&u64> = commands
            .keys()
            .filter(|s| !answers.contains_key(s))
            .collect();
        if unanswered.is_empty() {
            for (seq, args) in commands {
                assert_eq!(&answers[seq][0], args, "the echo of the command at {seq}");
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "acked commands at {unanswered:?} unanswered {ANSWER_WAIT:?} after kill {kill}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (room, seq) -> what an edit (`Some`) or delete (`None`) made of the message, and whether
/// that is certain (acked, or seen after a restart) rather than possible.
type Changes = BTreeMap<(String, u64), (Option<String>, bool)>;

/// Checks the restarted server against everything acknowledged so far.
#[allow(clippy::too_many_arguments)]
async fn verify(
    server: &Running,
    tokens: &[String],
    rooms: &[String; 2],
    messages: &BTreeMap<(String, u64), (u64, String)>,
    changes: &mut Changes,
    reactions: &BTreeSet<(String, u64, String)>,
    commands: &BTreeMap<u64, String>,
    rejoiner_member: Option<bool>,
    kill: usize,
) -> (Vec<u64>, bool) {
    let mut main_seqs = Vec::new();
    for room in rooms {
        // The host (tokens[0]) stays a member of both rooms.
        let items = history(server, &tokens[0], room).await;
        let mut texts = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            assert_eq!(
                num(&item["seq"]),
                i as u64 + 1,
                "{room} gapless after kill {kill}"
            );
            if let Some(text) = item["text"].as_str() {
                assert!(texts.insert(text.to_string()), "stored twice: {text}");
            }
        }
        for ((r, seq), (id, text)) in messages.range((room.clone(), 0)..=(room.clone(), u64::MAX)) {
            let item = items
                .get(*seq as usize - 1)
                .unwrap_or_else(|| panic!("acked {r} seq {seq} lost by kill {kill}"));
            let now = match item["deleted"] == json!(true) {
                true => None,
                false => Some(item["text"].as_str().unwrap().to_string()),
            };
            let key = (r.clone(), *seq);
            let allowed = match changes.get(&key) {
                None => vec![Some(text.clone())],
                Some((change, true)) => vec![change.clone()],
                Some((change, false)) => vec![Some(text.clone()), change.clone()],
            };
            assert!(
                allowed.contains(&now),
                "{r} seq {seq} after kill {kill} is {now:?}, not one of {allowed:?}"
            );
            // A change that was not acked but is seen has landed: it must stay.
            if let Some((change, certain)) = changes.get_mut(&key) {
                *change = now;
                *certain = true;
            }
            assert_eq!(num(&item["id"]), *id, "{r} seq {seq} after kill {kill}");
        }
        for (r, seq, emoji) in reactions.iter().filter(|(r, _, _)| r == room) {
            let holders = &items[*seq as usize - 1]["reactions"][emoji];
            assert!(
                holders
                    .as_array()
                    .is_some_and(|h| h.contains(&json!("ben"))),
                "acked reaction {emoji} on {r} seq {seq} lost by kill {kill}"
            );
        }
        if room == &rooms[0] {
            // Reactions go to items that are there, not to tombstones.
            main_seqs = items
                .iter()
                .filter(|i| i["deleted"] != json!(true))
                .map(|i| num(&i["seq"]))
                .collect();
        }
    }
    answered_once(server, &tokens[0], &rooms[0], commands, kill).await;
    let (status, _) = http_get(
        server,
        &format!("/api/rooms/{}", rooms[1]),
        Some(&tokens[2]),
    )
    .await;
    assert!(status == 200 || status == 403, "{status}");
    let member = status == 200;
    if let Some(expected) = rejoiner_member {
        assert_eq!(member, expected, "cat's acked membership after kill {kill}");
    }
    (main_seqs, member)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_acked_survives_50_sigkills_under_mixed_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("plugins")).unwrap();
    std::fs::copy(testbot_wasm(), data.join("plugins/testbot.wasm")).unwrap();
    let mut server = start_with_env(dir.path(), &data, ENV);
    let names: [&'static str; 3] = ["ann", "ben", "cat"];
    let mut tokens = Vec::new();
    for name in names {
        tokens.push(register(&server, name).await);
    }
    let rooms = [
        create_room(&server, &tokens[0], "main").await,
        create_room(&server, &tokens[0], "side").await,
    ];
    let mut messages: BTreeMap<(String, u64), (u64, String)> = BTreeMap::new();
    let mut reactions: BTreeSet<(String, u64, String)> = BTreeSet::new();
    let mut commands: BTreeMap<u64, String> = BTreeMap::new();
    let mut changes: Changes = BTreeMap::new();
    let mut rejoiner_member = None;
    let mut targets = vec![1];
    let mut rejoiner_is_member = false;
    let mut membership_checks = 0;
    let mut landed = 0;
    let started = Instant::now();
    for kill in 0..KILLS {
        let mut tasks = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let kind = [Kind::Poster, Kind::Reactor, Kind::Rejoiner][i];
            let mut client = WsClient::connect(&server, &tokens[i]).await;
            client.join(&rooms[0]).await;
            if matches!(kind, Kind::Poster) {
                // The plugins folder is read after the server starts listening.
                wait_for_command(&mut client, &rooms[0], "/echo").await;
            }
            let plan = Plan {
                kind,
                main: rooms[0].clone(),
                side: rooms[1].clone(),
                targets: targets.clone(),
            };
            tasks.push(tokio::spawn(drive(client, name, plan, rejoiner_is_member)));
        }
        // Somewhere between the first frames and a few hundred of them.
        tokio::time::sleep(Duration::from_millis(15 + random(120))).await;
        server.kill();
        let mut this_round = 0;
        for task in tasks {
            let acked = task.await.unwrap();
            this_round += acked.messages.len() + acked.reactions.len();
            for (room, seq, id, text) in acked.messages {
                if let Some(earlier) = messages.insert((room.clone(), seq), (id, text.clone())) {
                    panic!("{room} seq {seq} acked twice: {earlier:?} and {text}");
                }
            }
            reactions.extend(acked.reactions);
            commands.extend(acked.commands);
            for change in acked.changes {
                this_round += usize::from(change.acked);
                changes.insert((change.room, change.seq), (change.text, change.acked));
            }
            if let Some((joined, was_acked)) = acked.membership {
                // Known only when the last change sent was acknowledged.
                rejoiner_member = was_acked.then_some(joined);
                membership_checks += usize::from(was_acked);
            }
        }
        if this_round > 0 {
            landed += 1;
        }
        server = start_with_env(dir.path(), &data, ENV);
        (targets, rejoiner_is_member) = verify(
            &server,
            &tokens,
            &rooms,
            &messages,
            &mut changes,
            &reactions,
            &commands,
            rejoiner_member,
            kill,
        )
        .await;
    }
    let deletes = changes.values().filter(|(text, _)| text.is_none()).count();
    eprintln!(
        "{KILLS} kills in {:?}: {} messages ({} of them bot commands), {} reactions, {} edits \
         and {deletes} deletes acked or seen, {landed} kills mid-load, membership known after \
         {membership_checks}",
        started.elapsed(),
        messages.len(),
        commands.len(),
        reactions.len(),
        changes.len() - deletes,
    );
    assert!(
        landed >= KILLS / 2,
        "too few kills landed while anything was acked ({landed})"
    );
    assert!(
        messages.len() > 100
            && !reactions.is_empty()
            && commands.len() > 20
            && deletes > 5
            && changes.len() - deletes > 5,
        "the load was too thin to mean anything"
    );
    assert!(
        membership_checks >= KILLS / 5,
        "the rejoiner's membership was known after only {membership_checks} kills"
    );
    // An answer still on its way at the last check would show as a second one now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    answered_once(&server, &tokens[0], &rooms[0], &commands, KILLS).await;
    server.stop();
}
