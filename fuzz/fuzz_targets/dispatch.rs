//! Client frames through the parser and dispatcher into the real room logic and a real store
//! in a temporary directory (`rooms::harness`). An input is lines of `<user byte><frame text>`;
//! `@0` and `@1` in a frame stand for the codes of two fresh rooms (user 0 hosts the first,
//! user 1 the second). After every frame: no `internal` error, exactly one answer to a frame
//! with a `ref`, and every room invariant of `Harness::check`.
#![no_main]

use std::sync::Mutex;

use hearth::config::RoomsConfig;
use hearth::rooms::harness::Harness;
use hearth::protocol;
use libfuzzer_sys::fuzz_target;

const USERS: usize = 4;
static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

fn open() -> Harness {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("hearth-fuzz-dispatch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let config = RoomsConfig {
        typing_throttle_ms: 0,
        ..RoomsConfig::default()
    };
    Harness::open(&dir, config, USERS).expect("the store opens")
}

fuzz_target!(|data: &[u8]| {
    let mut guard = HARNESS.lock().unwrap_or_else(|p| p.into_inner());
    let harness = guard.get_or_insert_with(open);
    let rooms = [
        harness.create_room(0, "one").expect("room one"),
        harness.create_room(1, "two").expect("room two"),
    ];
    for line in data.split(|b| *b == b'\n').take(64) {
        let Some((&who, rest)) = line.split_first() else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(rest) else {
            continue;
        };
        let text = text.replace("@0", &rooms[0]).replace("@1", &rooms[1]);
        let user = usize::from(who) % USERS;
        let answers = harness.frame(user, &text);
        for answer in &answers {
            assert_ne!(answer["code"], "internal", "{text:?} -> {answer}");
        }
        let reference = match protocol::parse(&text) {
            Ok(envelope) => envelope.reference,
            Err(error) => error.reference().map(str::to_string),
        };
        if let Some(reference) = reference {
            let count = answers.iter().filter(|a| a["ref"] == *reference).count();
            assert_eq!(count, 1, "answers to {text:?}: {answers:?}");
        }
        for room in &rooms {
            if let Err(broken) = harness.check(room) {
                panic!("after {text:?}: {broken}");
            }
        }
    }
    for room in &rooms {
        harness.forget_room(room);
    }
    for user in 0..USERS {
        harness.take_delivered(user);
    }
});
