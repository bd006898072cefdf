//! Sequences of well-formed client frames, generated structurally (`Arbitrary`), by four people
//! in two fresh rooms, through the real room logic and store (`rooms::harness`). After every
//! frame: exactly one answer to it (every frame carries a `ref`) and never `internal`; seqs
//! gapless from 1; the host a member whenever the room has members; nobody banned a member;
//! the room actor's memory equal to the store; only members subscribed; and every socket
//! receives each room's items in strictly increasing seq order.
#![no_main]

use std::collections::HashMap;
use std::sync::Mutex;

use arbitrary::Arbitrary;
use hearth::config::RoomsConfig;
use hearth::rooms::harness::Harness;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const USERS: usize = 4;
const EMOJI: [&str; 4] = ["👍", "🎉", "x", "a b"];
static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

#[derive(Arbitrary, Debug)]
enum Frame {
    Join {
        since: Option<u8>,
    },
    Leave,
    Send {
        text: String,
        reply_to: Option<u8>,
    },
    Edit {
        seq: u8,
        text: String,
    },
    Delete {
        seq: u8,
    },
    Read {
        seq: u8,
    },
    History {
        before: Option<u16>,
        limit: Option<u16>,
    },
    React {
        seq: u8,
        emoji: u8,
        on: bool,
    },
    Typing,
    Kick {
        target: u8,
    },
    Unban {
        target: u8,
    },
    TransferHost {
        target: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Op {
    user: u8,
    /// Bit 0: which room; bit 1: the code in lower case.
    room: u8,
    frame: Frame,
}

fn open() -> Harness {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("hearth-fuzz-sequence-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let config = RoomsConfig {
        typing_throttle_ms: 0,
        ..RoomsConfig::default()
    };
    Harness::open(&dir, config, USERS).expect("the store opens")
}

fn to_json(op: &Op, room: &str, reference: &str) -> Value {
    let target = |t: u8| format!("user{}", usize::from(t) % (USERS + 1));
    let mut frame = match &op.frame {
        Frame::Join { since } => json!({"type": "join", "since": since}),
        Frame::Leave => json!({"type": "leave"}),
        Frame::Send { text, reply_to } => {
            json!({"type": "send", "text": text, "reply_to": reply_to})
        }
        Frame::Edit { seq, text } => json!({"type": "edit", "seq": seq, "text": text}),
        Frame::Delete { seq } => json!({"type": "delete", "seq": seq}),
        Frame::Read { seq } => json!({"type": "read", "seq": seq}),
        Frame::History { before, limit } => {
            json!({"type": "history", "before": before, "limit": limit})
        }
        Frame::React { seq, emoji, on } => json!({
            "type": "react", "seq": seq, "on": on,
            "emoji": EMOJI[usize::from(*emoji) % EMOJI.len()],
        }),
        Frame::Typing => json!({"type": "typing"}),
        Frame::Kick { target: t } => json!({"type": "kick", "user": target(*t)}),
        Frame::Unban { target: t } => json!({"type": "unban", "user": target(*t)}),
        Frame::TransferHost { target: t } => {
            json!({"type": "transfer_host", "user": target(*t)})
        }
    };
    frame["room"] = json!(room);
    frame["ref"] = json!(reference);
    frame
}

fuzz_target!(|ops: Vec<Op>| {
    let mut guard = HARNESS.lock().unwrap_or_else(|p| p.into_inner());
    let harness = guard.get_or_insert_with(open);
    let rooms = [
        harness.create_room(0, "one").expect("room one"),
        harness.create_room(1, "two").expect("room two"),
    ];
    // The last seq each socket saw of each room, live.
    let mut seen: HashMap<(usize, String), u64> = HashMap::new();
    for (n, op) in ops.iter().take(200).enumerate() {
        let user = usize::from(op.user) % USERS;
        let mut room = rooms[usize::from(op.room & 1)].to_string();
        if op.room & 2 != 0 {
            room = room.to_lowercase();
        }
        let reference = format!("f{n}");
        let frame = to_json(op, &room, &reference);
        let answers = harness.frame(user, &frame.to_string());
        let mine: Vec<&Value> = answers.iter().filter(|a| a["ref"] == *reference).collect();
        assert_eq!(mine.len(), 1, "{frame}: {answers:?}");
        assert_ne!(mine[0]["code"], "internal", "{frame}: {}", mine[0]);
        for code in &rooms {
            if let Err(broken) = harness.check(code) {
                panic!("after {frame}: {broken}");
            }
        }
        for other in 0..USERS {
            let frames = if other == user {
                answers.clone()
            } else {
                harness.take_delivered(other)
            };
            for message in frames.iter().filter(|f| f["type"] == "message") {
                let room = message["room"].as_str().unwrap_or("").to_string();
                let seq = message["item"]["seq"].as_u64().expect("a seq");
                let last = seen.entry((other, room)).or_insert(0);
                assert!(seq > *last, "user{other} got seq {seq} after {last}");
                *last = seq;
            }
        }
    }
    for room in &rooms {
        harness.forget_room(room);
    }
});
