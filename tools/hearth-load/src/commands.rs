//! `--command` mode: senders send a slash-command served by a bot instead of chat, and each
//! sender times its own commands: from the send to the ack, to the command's own `message`
//! (what plain chat costs), and to the bot's reply (a `kind: "bot"` item whose `reply_to` is
//! the command's seq, learnt from the ack).
//!
//! A sender's commands are acked in the order it sent them, but the ack and the command's own
//! message may come in either order, so items for a seq not acked yet are kept until the ack
//! that claims them; once seq S is acked, anything older that is still unclaimed belongs to
//! another socket and is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde_json::Value;

use crate::sockets::new_histogram;

/// The command's name as /help lists it: `/echo hi` -> `echo`.
pub fn command_name(text: &str) -> Option<&str> {
    let rest = text.trim().strip_prefix('/')?;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(rest.len());
    let name = &rest[..end];
    (!name.is_empty()).then_some(name)
}

/// Whether a /help text lists `/name` (its lines are `usage: description [bot]`).
pub fn help_lists(help: &str, name: &str) -> bool {
    let wanted = format!("/{name}");
    help.lines().any(|line| {
        line.strip_prefix(&wanted)
            .is_some_and(|rest| rest.starts_with([' ', ':']))
    })
}

/// Per-command latencies of one sender, in microseconds.
pub struct CommandTimes {
    /// Send to ack (the command and its job durable).
    pub ack: Histogram<u64>,
    /// Send to the command's own `message`.
    pub echo: Histogram<u64>,
    /// Send to the bot's reply.
    pub reply: Histogram<u64>,
    /// The command's own `message` to the bot's reply, command by command.
    pub reply_after_echo: Histogram<u64>,
    pub sent: u64,
    pub acked: u64,
    pub echoed: u64,
    pub replied: u64,
    /// `error` frames answering a command (`rate_limited` when the bot's queue is full).
    pub refused: u64,
}

impl CommandTimes {
    pub fn new() -> CommandTimes {
        CommandTimes {
            ack: new_histogram(),
            echo: new_histogram(),
            reply: new_histogram(),
            reply_after_echo: new_histogram(),
            sent: 0,
            acked: 0,
            echoed: 0,
            replied: 0,
            refused: 0,
        }
    }

    pub fn add(&mut self, other: &CommandTimes) {
        let _ = self.ack.add(&other.ack);
        let _ = self.echo.add(&other.echo);
        let _ = self.reply.add(&other.reply);
        let _ = self.reply_after_echo.add(&other.reply_after_echo);
        self.sent += other.sent;
        self.acked += other.acked;
        self.echoed += other.echoed;
        self.replied += other.replied;
        self.refused += other.refused;
    }
}

/// A command of this sender, from its ack until its reply.
struct Acked {
    sent: Instant,
    echo: Option<Instant>,
}

/// One sender's bookkeeping.
pub struct Tracker {
    /// Commands sent and not answered or refused yet, over every sender: the run ends early
    /// once it is zero after sending stops.
    outstanding: Arc<AtomicI64>,
    next_ref: u64,
    /// ref -> send time, until the ack or error.
    unacked: HashMap<String, Instant>,
    /// seq -> the command, until its reply.
    acked: BTreeMap<u64, Acked>,
    /// Items that came before the ack that would claim them: seq -> arrival.
    early_echo: BTreeMap<u64, Instant>,
    early_reply: BTreeMap<u64, Instant>,
    pub times: CommandTimes,
}

fn micros(from: Instant, to: Instant) -> u64 {
    (to.saturating_duration_since(from).as_micros() as u64).max(1)
}

impl Tracker {
    pub fn new(outstanding: Arc<AtomicI64>) -> Tracker {
        Tracker {
            outstanding,
            next_ref: 0,
            unacked: HashMap::new(),
            acked: BTreeMap::new(),
            early_echo: BTreeMap::new(),
            early_reply: BTreeMap::new(),
            times: CommandTimes::new(),
        }
    }

    /// The ref for the next command, which is about to be sent at `at`.
    pub fn send(&mut self, at: Instant) -> String {
        self.next_ref += 1;
        let reference = format!("cmd-{}", self.next_ref);
        self.unacked.insert(reference.clone(), at);
        self.times.sent += 1;
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        reference
    }

    /// Looks at one frame from the server, received at `now`.
    pub fn frame(&mut self, text: &str, command: &str, now: Instant) {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            return;
        };
        match frame["type"].as_str() {
            Some("ack") => {
                let (Some(reference), Some(seq)) = (frame["ref"].as_str(), frame["seq"].as_u64())
                else {
                    return;
                };
                if let Some(sent) = self.unacked.remove(reference) {
                    self.times.acked += 1;
                    let _ = self.times.ack.record(micros(sent, now));
                    self.acked.insert(seq, Acked { sent, echo: None });
                    if let Some(at) = self.early_echo.remove(&seq) {
                        self.echo(seq, at);
                    }
                    if let Some(at) = self.early_reply.remove(&seq) {
                        self.reply(seq, at);
                    }
                    // Older unclaimed items belong to other sockets: this sender's earlier
                    // commands were all acked before this one.
                    self.early_echo = self.early_echo.split_off(&(seq + 1));
                    self.early_reply = self.early_reply.split_off(&(seq + 1));
                }
            }
            Some("error") => {
                if let Some(reference) = frame["ref"].as_str() {
                    if self.unacked.remove(reference).is_some() {
                        self.times.refused += 1;
                        self.outstanding.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
            Some("message") => {
                let item = &frame["item"];
                match item["kind"].as_str() {
                    Some("chat") if item["text"].as_str() == Some(command) => {
                        if let Some(seq) = item["seq"].as_u64() {
                            if self.acked.contains_key(&seq) {
                                self.echo(seq, now);
                            } else if !self.unacked.is_empty() {
                                self.early_echo.insert(seq, now);
                            }
                        }
                    }
                    Some("bot") => {
                        if let Some(seq) = item["reply_to"].as_u64() {
                            if self.acked.contains_key(&seq) {
                                self.reply(seq, now);
                            } else if !self.unacked.is_empty() {
                                self.early_reply.entry(seq).or_insert(now);
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn echo(&mut self, seq: u64, at: Instant) {
        if let Some(command) = self.acked.get_mut(&seq) {
            if command.echo.is_none() {
                command.echo = Some(at);
                self.times.echoed += 1;
                let _ = self.times.echo.record(micros(command.sent, at));
            }
        }
    }

    /// The first reply to a command ends it; later ones (a bot may answer twice) are not timed.
    fn reply(&mut self, seq: u64, at: Instant) {
        if let Some(command) = self.acked.remove(&seq) {
            self.times.replied += 1;
            self.outstanding.fetch_sub(1, Ordering::Relaxed);
            let _ = self.times.reply.record(micros(command.sent, at));
            if let Some(echo) = command.echo {
                let _ = self.times.reply_after_echo.record(micros(echo, at));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const CMD: &str = "/echo hi";

    fn ack(reference: &str, seq: u64) -> String {
        format!(r#"{{"type":"ack","ref":"{reference}","room":"K7MP2X","seq":{seq},"id":9,"ts":1}}"#)
    }

    fn chat(seq: u64, text: &str) -> String {
        format!(
            r#"{{"type":"message","room":"K7MP2X","item":{{"seq":{seq},"kind":"chat","author":"load0","text":"{text}"}}}}"#
        )
    }

    fn bot(seq: u64, reply_to: u64) -> String {
        format!(
            r#"{{"type":"message","room":"K7MP2X","item":{{"seq":{seq},"kind":"bot","author":"testbot","text":"hi","reply_to":{reply_to}}}}}"#
        )
    }

    #[test]
    fn names_and_help_lines() {
        assert_eq!(command_name("/echo hi"), Some("echo"));
        assert_eq!(command_name("/stock=AAPL"), Some("stock"));
        assert_eq!(command_name(" /help "), Some("help"));
        assert_eq!(command_name("hello"), None);
        assert_eq!(command_name("/ x"), None);
        let help = "Commands:\n/help: lists these commands\n/echo TEXT: Replies TEXT [testbot]";
        assert!(help_lists(help, "echo"));
        assert!(help_lists(help, "help"));
        assert!(!help_lists(help, "ech"));
        assert!(!help_lists(help, "stock"));
    }

    #[test]
    fn times_a_command_whose_ack_comes_first() {
        let outstanding = Arc::new(AtomicI64::new(0));
        let mut tracker = Tracker::new(outstanding.clone());
        let t0 = Instant::now();
        let reference = tracker.send(t0);
        assert_eq!(outstanding.load(Ordering::Relaxed), 1);
        tracker.frame(&ack(&reference, 7), CMD, t0 + Duration::from_millis(1));
        tracker.frame(&chat(7, CMD), CMD, t0 + Duration::from_millis(2));
        // Someone else's command and its answer are not ours.
        tracker.frame(&chat(8, CMD), CMD, t0 + Duration::from_millis(3));
        tracker.frame(&bot(10, 8), CMD, t0 + Duration::from_millis(4));
        tracker.frame(&bot(9, 7), CMD, t0 + Duration::from_millis(5));
        let times = &tracker.times;
        assert_eq!(
            (times.sent, times.acked, times.echoed, times.replied),
            (1, 1, 1, 1)
        );
        assert_eq!(times.echo.max(), times.echo.highest_equivalent(2000));
        assert_eq!(times.reply.max(), times.reply.highest_equivalent(5000));
        assert_eq!(
            times.reply_after_echo.max(),
            times.reply_after_echo.highest_equivalent(3000)
        );
        assert_eq!(outstanding.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn keeps_an_echo_that_comes_before_its_ack() {
        let outstanding = Arc::new(AtomicI64::new(0));
        let mut tracker = Tracker::new(outstanding.clone());
        let t0 = Instant::now();
        let first = tracker.send(t0);
        let second = tracker.send(t0);
        tracker.frame(&chat(3, CMD), CMD, t0 + Duration::from_millis(1));
        tracker.frame(&chat(5, CMD), CMD, t0 + Duration::from_millis(1));
        tracker.frame(&ack(&first, 5), CMD, t0 + Duration::from_millis(2));
        // Seq 3 was another socket's: dropped once seq 5 is acked.
        assert!(tracker.early_echo.is_empty());
        tracker.frame(&ack(&second, 6), CMD, t0 + Duration::from_millis(2));
        tracker.frame(&chat(6, CMD), CMD, t0 + Duration::from_millis(3));
        assert_eq!(tracker.times.echoed, 2);
        assert_eq!(tracker.times.replied, 0);
        assert_eq!(outstanding.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_refused_command_is_not_outstanding() {
        let outstanding = Arc::new(AtomicI64::new(0));
        let mut tracker = Tracker::new(outstanding.clone());
        let reference = tracker.send(Instant::now());
        let error = format!(
            r#"{{"type":"error","ref":"{reference}","code":"rate_limited","message":"full"}}"#
        );
        tracker.frame(&error, CMD, Instant::now());
        assert_eq!(tracker.times.refused, 1);
        assert_eq!(outstanding.load(Ordering::Relaxed), 0);
    }
}
