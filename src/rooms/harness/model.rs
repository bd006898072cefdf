//! Property tests of the room rules. Generated sequences of actions by four people in one room
//! (joins, leaves, messages, reactions, typing, history, kicks, unbans, host transfers) run
//! through the real room logic and through a small reference model of what the rules say.
//! After every step: the answer to the actor, the stored room (members in order of standing,
//! host, bans, every item, every reaction), who received which broadcast, and the invariants
//! of [`Harness::check`] must all agree with the model.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

use super::{Harness, RoomState};
use crate::config::RoomsConfig;
use crate::ids::Seq;
use crate::rooms::Action;
use crate::store::rooms::{Event, Item, ItemKind};

const PEOPLE: usize = 4;
const EMOJI: [&str; 3] = ["👍", "🎉", "🔥"];

#[derive(Debug, Clone)]
enum Step {
    Join(usize),
    JoinSince(usize, u64),
    Leave(usize),
    Send(usize),
    React {
        who: usize,
        seq: u64,
        emoji: usize,
        on: bool,
    },
    Edit(usize, u64),
    Delete(usize, u64),
    Typing(usize),
    History(usize),
    Kick(usize, usize),
    Unban(usize, usize),
    Transfer(usize, usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let who = || 0..PEOPLE;
    let step = prop_oneof![
        4 => who().prop_map(Step::Join),
        1 => (who(), 0u64..20).prop_map(|(w, s)| Step::JoinSince(w, s)),
        2 => who().prop_map(Step::Leave),
        3 => who().prop_map(Step::Send),
        3 => (who(), 0u64..16, 0..EMOJI.len(), any::<bool>())
            .prop_map(|(who, seq, emoji, on)| Step::React { who, seq, emoji, on }),
        2 => (who(), 0u64..16).prop_map(|(w, s)| Step::Edit(w, s)),
        2 => (who(), 0u64..16).prop_map(|(w, s)| Step::Delete(w, s)),
        1 => who().prop_map(Step::Typing),
        1 => who().prop_map(Step::History),
        2 => (who(), who()).prop_map(|(a, b)| Step::Kick(a, b)),
        2 => (who(), who()).prop_map(|(a, b)| Step::Unban(a, b)),
        2 => (who(), who()).prop_map(|(a, b)| Step::Transfer(a, b)),
    ];
    proptest::collection::vec(step, 1..120)
}

fn name(user: usize) -> String {
    format!("user{user}")
}

/// What the actor should be answered: a frame type, or an error code.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Frame(&'static str),
    Error(&'static str),
}

/// The rules, as simply as they can be said.
struct Model {
    /// Longest-standing first.
    members: Vec<usize>,
    host: usize,
    banned: BTreeSet<usize>,
    /// Whose socket receives the room's broadcasts: a member's, from their join on.
    subscribed: BTreeSet<usize>,
    /// seq -> emoji -> holders, in the order they reacted.
    reactions: BTreeMap<u64, BTreeMap<String, Vec<usize>>>,
    /// Every item, described as [`describe`] does.
    items: Vec<String>,
    /// seq -> the text of an edited message.
    edited: BTreeMap<u64, String>,
    /// The seqs of tombstones.
    deleted: BTreeSet<u64>,
}

/// What one step did besides its answer.
#[derive(Default)]
struct Outcome {
    /// A `reaction` broadcast went to the subscribers.
    reaction: bool,
    /// A `typing` broadcast went to the subscribers but the typer.
    typing: bool,
    /// An `edited` broadcast went to the subscribers.
    edited: bool,
    /// A `deleted` broadcast went to the subscribers.
    deleted: bool,
}

impl Model {
    fn new(creator: usize) -> Model {
        Model {
            members: vec![creator],
            host: creator,
            banned: BTreeSet::new(),
            subscribed: BTreeSet::new(),
            reactions: BTreeMap::new(),
            items: vec![format!("room_created {}", name(creator))],
            edited: BTreeMap::new(),
            deleted: BTreeSet::new(),
        }
    }

    /// The description of the item at `seq`, if the room has one.
    fn item(&self, seq: u64) -> Option<&str> {
        let index = usize::try_from(seq).ok()?.checked_sub(1)?;
        self.items.get(index).map(String::as_str)
    }

    fn is_member(&self, user: usize) -> bool {
        self.members.contains(&user)
    }

    fn is_host(&self, user: usize) -> bool {
        self.host == user && self.is_member(user)
    }

    fn apply(&mut self, step: &Step) -> (Answer, Outcome) {
        use Answer::{Error, Frame};
        let mut outcome = Outcome::default();
        let answer = match *step {
            Step::Join(who) | Step::JoinSince(who, _) => {
                if self.banned.contains(&who) {
                    Error("banned")
                } else {
                    if !self.is_member(who) {
                        let takes_over = self.members.is_empty();
                        self.members.push(who);
                        self.items.push(format!("join {}", name(who)));
                        if takes_over {
                            let from = self.host;
                            self.host = who;
                            self.items
                                .push(format!("host_transfer {}->{}", name(from), name(who)));
                        }
                    }
                    self.subscribed.insert(who);
                    Frame("joined")
                }
            }
            Step::Leave(who) => {
                if !self.is_member(who) {
                    Error("not_member")
                } else {
                    self.members.retain(|m| *m != who);
                    self.subscribed.remove(&who);
                    self.items.push(format!("leave {}", name(who)));
                    if self.host == who {
                        if let Some(&heir) = self.members.first() {
                            self.host = heir;
                            self.items
                                .push(format!("host_transfer {}->{}", name(who), name(heir)));
                        }
                    }
                    Frame("ok")
                }
            }
            Step::Send(who) => {
                if !self.is_member(who) {
                    Error("not_member")
                } else {
                    self.items.push(format!("chat {}", name(who)));
                    Frame("ack")
                }
            }
            Step::React {
                who,
                seq,
                emoji,
                on,
            } => {
                if !self.is_member(who) {
                    Error("not_member")
                } else if self.item(seq).is_none() || self.deleted.contains(&seq) {
                    Error("bad_request")
                } else {
                    let emoji = EMOJI[emoji].to_string();
                    let item = self.reactions.entry(seq).or_default();
                    let holders = item.entry(emoji.clone()).or_default();
                    let holds = holders.contains(&who);
                    if on && !holds {
                        holders.push(who);
                        outcome.reaction = true;
                    } else if !on && holds {
                        holders.retain(|h| *h != who);
                        outcome.reaction = true;
                    }
                    if holders.is_empty() {
                        item.remove(&emoji);
                    }
                    Frame("ok")
                }
            }
            Step::Edit(who, seq) => {
                let own = format!("chat {}", name(who));
                match self.item(seq) {
                    _ if !self.is_member(who) => Error("not_member"),
                    None => Error("bad_request"),
                    Some(_) if self.deleted.contains(&seq) => Error("bad_request"),
                    Some(item) if !item.starts_with("chat ") => Error("bad_request"),
                    Some(item) if item != own => Error("not_author"),
                    Some(_) => {
                        let text = edit_text(who);
                        outcome.edited = self.edited.get(&seq) != Some(&text);
                        self.edited.insert(seq, text);
                        Frame("ok")
                    }
                }
            }
            Step::Delete(who, seq) => {
                let own = format!("chat {}", name(who));
                match self.item(seq) {
                    _ if !self.is_member(who) => Error("not_member"),
                    None => Error("bad_request"),
                    Some(item) if !item.starts_with("chat ") => Error("bad_request"),
                    Some(item) if item != own && !self.is_host(who) => Error("not_author"),
                    Some(_) => {
                        outcome.deleted = self.deleted.insert(seq);
                        self.edited.remove(&seq);
                        self.reactions.remove(&seq);
                        Frame("ok")
                    }
                }
            }
            Step::Typing(who) => {
                if !self.is_member(who) {
                    Error("not_member")
                } else {
                    outcome.typing = true;
                    Frame("ok")
                }
            }
            Step::History(who) => {
                if self.is_member(who) {
                    Frame("history")
                } else {
                    Error("not_member")
                }
            }
            Step::Kick(who, target) => {
                if !self.is_host(who) {
                    Error("not_host")
                } else if !self.is_member(target) || target == who {
                    Error("bad_request")
                } else {
                    self.members.retain(|m| *m != target);
                    self.subscribed.remove(&target);
                    self.banned.insert(target);
                    self.items
                        .push(format!("kick {} by {}", name(target), name(who)));
                    Frame("ok")
                }
            }
            Step::Unban(who, target) => {
                if !self.is_host(who) {
                    Error("not_host")
                } else if !self.banned.remove(&target) {
                    Error("bad_request")
                } else {
                    self.items
                        .push(format!("unban {} by {}", name(target), name(who)));
                    Frame("ok")
                }
            }
            Step::Transfer(who, target) => {
                if !self.is_host(who) {
                    Error("not_host")
                } else if !self.is_member(target) || target == who {
                    Error("bad_request")
                } else {
                    self.host = target;
                    self.items.push(format!(
                        "host_transfer {}->{} by {}",
                        name(who),
                        name(target),
                        name(who)
                    ));
                    Frame("ok")
                }
            }
        };
        (answer, outcome)
    }
}

fn action_of(step: &Step) -> (usize, Action) {
    match *step {
        Step::Join(who) => (who, Action::Join { since: None }),
        Step::JoinSince(who, since) => (
            who,
            Action::Join {
                since: Some(Seq::new(since)),
            },
        ),
        Step::Leave(who) => (who, Action::Leave),
        Step::Send(who) => (
            who,
            Action::Send {
                text: format!("hello from {}", name(who)),
                reply_to: None,
            },
        ),
        Step::React {
            who,
            seq,
            emoji,
            on,
        } => (
            who,
            Action::React {
                seq: Seq::new(seq),
                emoji: EMOJI[emoji].into(),
                on,
            },
        ),
        Step::Edit(who, seq) => (
            who,
            Action::Edit {
                seq: Seq::new(seq),
                text: edit_text(who),
            },
        ),
        Step::Delete(who, seq) => (who, Action::Delete { seq: Seq::new(seq) }),
        Step::Typing(who) => (who, Action::Typing),
        Step::History(who) => (
            who,
            Action::History {
                before: None,
                limit: Some(5),
            },
        ),
        // Usernames in any case name the same person.
        Step::Kick(who, target) => (
            who,
            Action::Kick {
                user: name(target).to_uppercase(),
            },
        ),
        Step::Unban(who, target) => (who, Action::Unban { user: name(target) }),
        Step::Transfer(who, target) => (
            who,
            Action::TransferHost {
                user: format!(" {} ", name(target)),
            },
        ),
    }
}

/// What an edit by `user` makes a message say: the same each time, so a second edit by the same
/// author changes nothing.
fn edit_text(user: usize) -> String {
    format!("edited by {}", name(user))
}

fn describe(item: &Item) -> String {
    let who = |field: &Option<String>| field.clone().unwrap_or_else(|| "?".into());
    match (item.kind, item.event) {
        (ItemKind::Chat, _) => format!("chat {}", who(&item.author)),
        (_, Some(Event::RoomCreated)) => format!("room_created {}", who(&item.user)),
        (_, Some(Event::Join)) => format!("join {}", who(&item.user)),
        (_, Some(Event::Leave)) => format!("leave {}", who(&item.user)),
        (_, Some(Event::Kick)) => format!("kick {} by {}", who(&item.user), who(&item.by)),
        (_, Some(Event::Unban)) => format!("unban {} by {}", who(&item.user), who(&item.by)),
        (_, Some(Event::HostTransfer)) => {
            let mut text = format!("host_transfer {}->{}", who(&item.from), who(&item.to));
            if let Some(by) = &item.by {
                text.push_str(&format!(" by {by}"));
            }
            text
        }
        other => format!("unexpected {other:?}"),
    }
}

fn answer_of(frames: &[Value], reference: &str) -> Result<Answer, TestCaseError> {
    let answers: Vec<&Value> = frames.iter().filter(|f| f["ref"] == reference).collect();
    prop_assert_eq!(
        answers.len(),
        1,
        "one answer to {}: {:?}",
        reference,
        frames
    );
    let frame = answers[0];
    let kind = frame["type"].as_str().unwrap_or("");
    let known = [
        "joined",
        "ok",
        "ack",
        "history",
        "banned",
        "not_member",
        "not_host",
        "not_author",
        "bad_request",
    ];
    let intern = |s: &str| known.into_iter().find(|k| *k == s).unwrap_or("other");
    Ok(if kind == "error" {
        Answer::Error(intern(frame["code"].as_str().unwrap_or("")))
    } else {
        Answer::Frame(intern(kind))
    })
}

/// The frames of one type for `room` among `frames`.
fn of_type<'a>(frames: &'a [Value], room: &str, kind: &str) -> Vec<&'a Value> {
    frames
        .iter()
        .filter(|f| f["type"] == kind && f["room"] == room)
        .collect()
}

fn run_case(harness: &mut Harness, steps: &[Step]) -> Result<(), TestCaseError> {
    let room = harness.create_room(0, "model").expect("room created");
    let mut model = Model::new(0);
    for (n, step) in steps.iter().enumerate() {
        let before = model.items.len() as u64;
        let (expected, outcome) = model.apply(step);
        let (who, action) = action_of(step);
        let reference = format!("s{n}");
        let mine = harness.act(who, &room, action, Some(reference.clone()));
        let got = answer_of(&mine, &reference)?;
        prop_assert_eq!(&got, &expected, "step {}: {:?}", n, step);

        let state: RoomState = harness
            .check(&room)
            .map_err(|broken| TestCaseError::fail(format!("step {n} {step:?}: {broken}")))?;
        let names = |users: &[usize]| users.iter().map(|u| name(*u)).collect::<Vec<_>>();
        prop_assert_eq!(
            &state.members,
            &names(&model.members),
            "members, step {}",
            n
        );
        prop_assert_eq!(&state.host, &name(model.host), "host, step {}", n);
        let banned: BTreeSet<String> = model.banned.iter().map(|u| name(*u)).collect();
        prop_assert_eq!(&state.banned, &banned, "bans, step {}", n);
        let items: Vec<String> = state.items.iter().map(describe).collect();
        prop_assert_eq!(&items, &model.items, "items, step {}", n);
        for item in &state.items {
            let seq = item.seq.get();
            let deleted = model.deleted.contains(&seq);
            prop_assert_eq!(item.deleted, deleted, "tombstone {}, step {}", seq, n);
            if item.kind == ItemKind::Chat {
                let text = match (deleted, model.edited.get(&seq)) {
                    (true, _) => None,
                    (false, Some(edited)) => Some(edited.clone()),
                    (false, None) => Some(format!(
                        "hello from {}",
                        item.author.clone().unwrap_or_default()
                    )),
                };
                prop_assert_eq!(&item.text, &text, "text of {}, step {}", seq, n);
            }
            let expected: BTreeMap<String, Vec<String>> = model
                .reactions
                .get(&item.seq.get())
                .map(|r| r.iter().map(|(e, h)| (e.clone(), names(h))).collect())
                .unwrap_or_default();
            prop_assert_eq!(
                &item.reactions.clone().unwrap_or_default(),
                &expected,
                "reactions of {}, step {}",
                item.seq,
                n
            );
        }

        // Broadcasts: the items this step made reach exactly the subscribed sockets, in seq
        // order; reactions reach them all, typing all but the typer.
        let new: Vec<u64> = (before + 1..=model.items.len() as u64).collect();
        for user in 0..PEOPLE {
            let frames = if user == who {
                mine.clone()
            } else {
                harness.take_delivered(user)
            };
            let subscribed = model.subscribed.contains(&user);
            let seqs: Vec<u64> = of_type(&frames, &room, "message")
                .iter()
                .map(|f| f["item"]["seq"].as_u64().unwrap_or(0))
                .collect();
            let expected: &[u64] = if subscribed { &new } else { &[] };
            prop_assert_eq!(
                &seqs,
                &expected.to_vec(),
                "{} got items, step {}",
                name(user),
                n
            );
            let reactions = of_type(&frames, &room, "reaction").len();
            let expected = usize::from(outcome.reaction && subscribed);
            prop_assert_eq!(
                reactions,
                expected,
                "{} reaction frames, step {}",
                name(user),
                n
            );
            for (kind, happened) in [("edited", outcome.edited), ("deleted", outcome.deleted)] {
                let expected = usize::from(happened && subscribed);
                let got = of_type(&frames, &room, kind).len();
                prop_assert_eq!(got, expected, "{} {} frames, step {}", name(user), kind, n);
            }
            let typing = of_type(&frames, &room, "typing").len();
            let expected = usize::from(outcome.typing && subscribed && user != who);
            prop_assert_eq!(typing, expected, "{} typing frames, step {}", name(user), n);
        }
    }
    Ok(())
}

#[test]
fn room_rules_match_the_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = RoomsConfig {
        // Every typing notice is broadcast, so the model need not know the time.
        typing_throttle_ms: 0,
        ..RoomsConfig::default()
    };
    let harness =
        std::cell::RefCell::new(Harness::open(dir.path(), config, PEOPLE).expect("store"));
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&steps(), |steps| {
        run_case(&mut harness.borrow_mut(), &steps)
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// The model is not vacuous: the generated sequences reach every rule, so that agreeing with
/// it means something.
#[test]
fn generated_sequences_exercise_every_rule() {
    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    for _ in 0..64 {
        let steps = steps().new_tree(&mut runner).expect("steps").current();
        let mut model = Model::new(0);
        for step in &steps {
            let before = model.items.len();
            let (answer, _) = model.apply(step);
            seen.insert(format!("{answer:?}"));
            for item in &model.items[before..] {
                seen.insert(item.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    }
    for wanted in [
        "Frame(\"joined\")",
        "Error(\"banned\")",
        "Error(\"not_member\")",
        "Error(\"not_host\")",
        "Error(\"not_author\")",
        "Error(\"bad_request\")",
        "Frame(\"ack\")",
        "join",
        "leave",
        "kick",
        "unban",
        "host_transfer",
        "chat",
    ] {
        assert!(
            seen.contains(wanted),
            "never generated: {wanted} ({seen:?})"
        );
    }
}
