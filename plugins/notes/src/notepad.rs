//! A notepad per room in a key-value store.
//!
//! A room's notes are under `room/{code}/note/{n}`, `n` zero-padded so that byte order is
//! number order, each holding `{author}\n{text}`; `room/{code}/next` holds the number the next
//! note gets. Numbers are never reused, so `/forget 3` cannot hit a note saved after the list
//! was read.

use hearth_bot_sdk::kv::KvError;

/// The longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// How many notes `/notes` shows: the latest ones.
pub const LIST_LENGTH: usize = 20;
/// How much of each note `/notes` shows, in characters.
const LIST_TEXT_CHARS: usize = 100;
/// The most keys read when listing or numbering; far more than a plugin's quota can hold.
const SCAN_LIMIT: u32 = 100_000;

/// The key-value store the notes live in: the bot's store in hearth, or a map in tests.
pub trait Store {
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), KvError>;
    fn delete(&mut self, key: &str) -> Result<(), KvError>;
    fn keys(&self, prefix: &str, limit: u32) -> Vec<String>;
}

/// `/note TEXT`: saves the note under the room's next number.
pub fn save(store: &mut impl Store, room: &str, author: &str, text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "Usage: /note TEXT".to_owned();
    }
    if text.chars().count() > MAX_NOTE_CHARS {
        return format!("A note can be at most {MAX_NOTE_CHARS} characters.");
    }
    let number = next_number(store, room);
    // The counter moves first: if the note then fails to save, a number is skipped, but no
    // later note can land on one that was saved.
    let saved = store
        .set(&counter_key(room), (number + 1).to_string().as_bytes())
        .and_then(|()| store.set(&note_key(room, number), encode(author, text).as_bytes()));
    match saved {
        Ok(()) => format!("Saved note #{number} by {author}."),
        Err(KvError::QuotaExceeded) => {
            "The notepad is full (storage quota reached): /forget a note to make room.".to_owned()
        }
        Err(error) => format!("Could not save the note ({error}); try again later."),
    }
}

/// `/notes`: the room's latest notes, oldest first.
pub fn list(store: &impl Store, room: &str) -> String {
    let keys = store.keys(&notes_prefix(room), SCAN_LIMIT);
    if keys.is_empty() {
        return "No notes in this room yet. Save one with /note TEXT.".to_owned();
    }
    let shown = &keys[keys.len().saturating_sub(LIST_LENGTH)..];
    let mut lines = vec![if shown.len() < keys.len() {
        format!(
            "The latest {} of {} notes in this room:",
            shown.len(),
            keys.len()
        )
    } else {
        format!("Notes in this room ({}):", keys.len())
    }];
    for key in shown {
        let (Some(number), Some(value)) = (number_in_key(key), store.get(key)) else {
            // Deleted between listing and reading, or not a key this bot wrote.
            continue;
        };
        let (author, text) = decode(&value);
        let text = shorten(&one_line(&text), LIST_TEXT_CHARS);
        lines.push(format!("#{number} {author}: {text}"));
    }
    lines.join("\n")
}

/// `/forget N`: deletes note N from the room.
pub fn forget(store: &mut impl Store, room: &str, args: &str) -> String {
    let Some(number) = args.trim().trim_start_matches('#').parse::<u64>().ok() else {
        return "Usage: /forget N, where N is a note's number from /notes".to_owned();
    };
    let key = note_key(room, number);
    let Some(value) = store.get(&key) else {
        return format!("There is no note #{number} in this room.");
    };
    let (author, text) = decode(&value);
    match store.delete(&key) {
        Ok(()) => format!(
            "Forgot note #{number} by {author}: {}",
            shorten(&one_line(&text), 40)
        ),
        Err(error) => format!("Could not forget note #{number} ({error}); try again later."),
    }
}

/// The number the room's next note gets. Without a readable counter, one past the highest note
/// (the counter is written before the note, so this is only ever the room's first note).
fn next_number(store: &impl Store, room: &str) -> u64 {
    let counter = store.get(&counter_key(room));
    if let Some(number) = counter.and_then(|bytes| String::from_utf8(bytes).ok()?.parse().ok()) {
        return number;
    }
    let highest = store
        .keys(&notes_prefix(room), SCAN_LIMIT)
        .iter()
        .filter_map(|key| number_in_key(key))
        .max();
    highest.map_or(1, |n| n + 1)
}

fn notes_prefix(room: &str) -> String {
    format!("room/{room}/note/")
}

fn note_key(room: &str, number: u64) -> String {
    format!("room/{room}/note/{number:010}")
}

fn counter_key(room: &str) -> String {
    format!("room/{room}/next")
}

fn number_in_key(key: &str) -> Option<u64> {
    key.rsplit_once('/')?.1.parse().ok()
}

fn encode(author: &str, text: &str) -> String {
    format!("{author}\n{text}")
}

/// The author and text of a stored note; a value without an author line reads as `?`'s.
fn decode(value: &[u8]) -> (String, String) {
    let value = String::from_utf8_lossy(value);
    match value.split_once('\n') {
        Some((author, text)) => (author.to_owned(), text.to_owned()),
        None => ("?".to_owned(), value.into_owned()),
    }
}

/// The text with its line breaks turned into spaces, for one line of a list.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// At most `max` characters of `text`, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A store in memory, with hearth's quota rule (keys plus values) and a switch to make
    /// writes fail as hearth's store can.
    #[derive(Default)]
    struct MemoryStore {
        entries: BTreeMap<String, Vec<u8>>,
        quota_bytes: Option<usize>,
        failing: bool,
    }

    impl MemoryStore {
        fn used_bytes_without(&self, key: &str) -> usize {
            self.entries
                .iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| k.len() + v.len())
                .sum()
        }
    }

    impl Store for MemoryStore {
        fn get(&self, key: &str) -> Option<Vec<u8>> {
            self.entries.get(key).cloned()
        }

        fn set(&mut self, key: &str, value: &[u8]) -> Result<(), KvError> {
            if self.failing {
                return Err(KvError::Internal("disk on fire".into()));
            }
            let after = self.used_bytes_without(key) + key.len() + value.len();
            if self.quota_bytes.is_some_and(|quota| after > quota) {
                return Err(KvError::QuotaExceeded);
            }
            self.entries.insert(key.to_owned(), value.to_owned());
            Ok(())
        }

        fn delete(&mut self, key: &str) -> Result<(), KvError> {
            if self.failing {
                return Err(KvError::Internal("disk on fire".into()));
            }
            self.entries.remove(key);
            Ok(())
        }

        fn keys(&self, prefix: &str, limit: u32) -> Vec<String> {
            let matching = self.entries.keys().filter(|key| key.starts_with(prefix));
            matching.take(limit as usize).cloned().collect()
        }
    }

    #[test]
    fn notes_are_numbered_per_room_and_stored_under_padded_keys() {
        let mut store = MemoryStore::default();
        assert_eq!(
            save(&mut store, "aaaaaa", "alice", "buy milk"),
            "Saved note #1 by alice."
        );
        assert_eq!(
            save(&mut store, "aaaaaa", "bob", "  call mum "),
            "Saved note #2 by bob."
        );
        assert_eq!(
            save(&mut store, "bbbbbb", "carol", "other room"),
            "Saved note #1 by carol."
        );
        let keys: Vec<_> = store.entries.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "room/aaaaaa/next",
                "room/aaaaaa/note/0000000001",
                "room/aaaaaa/note/0000000002",
                "room/bbbbbb/next",
                "room/bbbbbb/note/0000000001",
            ]
        );
        assert_eq!(
            store.get("room/aaaaaa/note/0000000002").unwrap(),
            b"bob\ncall mum"
        );
        assert_eq!(store.get("room/aaaaaa/next").unwrap(), b"3");
    }

    #[test]
    fn saving_refuses_empty_and_overlong_notes() {
        let mut store = MemoryStore::default();
        assert_eq!(save(&mut store, "r", "alice", "   "), "Usage: /note TEXT");
        let long = "x".repeat(MAX_NOTE_CHARS + 1);
        assert_eq!(
            save(&mut store, "r", "alice", &long),
            "A note can be at most 500 characters."
        );
        assert!(store.entries.is_empty());
        let longest = "é".repeat(MAX_NOTE_CHARS);
        assert_eq!(
            save(&mut store, "r", "alice", &longest),
            "Saved note #1 by alice."
        );
    }

    #[test]
    fn numbers_are_not_reused_after_forgetting() {
        let mut store = MemoryStore::default();
        save(&mut store, "r", "alice", "one");
        save(&mut store, "r", "alice", "two");
        assert_eq!(forget(&mut store, "r", "2"), "Forgot note #2 by alice: two");
        assert_eq!(
            save(&mut store, "r", "alice", "three"),
            "Saved note #3 by alice."
        );
    }

    #[test]
    fn a_lost_counter_resumes_after_the_highest_note() {
        let mut store = MemoryStore::default();
        save(&mut store, "r", "alice", "one");
        save(&mut store, "r", "alice", "two");
        store
            .entries
            .insert("room/r/next".into(), b"garbage".to_vec());
        assert_eq!(
            save(&mut store, "r", "alice", "three"),
            "Saved note #3 by alice."
        );
        store.entries.remove("room/r/next");
        assert_eq!(
            save(&mut store, "r", "alice", "four"),
            "Saved note #4 by alice."
        );
    }

    #[test]
    fn storage_errors_get_clear_replies() {
        let mut store = MemoryStore {
            quota_bytes: Some(60),
            ..Default::default()
        };
        assert_eq!(
            save(&mut store, "r", "alice", "fits"),
            "Saved note #1 by alice."
        );
        assert_eq!(
            save(&mut store, "r", "alice", &"y".repeat(100)),
            "The notepad is full (storage quota reached): /forget a note to make room."
        );
        store.failing = true;
        assert_eq!(
            save(&mut store, "r", "alice", "x"),
            "Could not save the note (storage failed: disk on fire); try again later."
        );
        assert_eq!(
            forget(&mut store, "r", "1"),
            "Could not forget note #1 (storage failed: disk on fire); try again later."
        );
        assert!(store.get("room/r/note/0000000001").is_some());
    }

    #[test]
    fn the_list_shows_number_author_and_text() {
        let mut store = MemoryStore::default();
        assert_eq!(
            list(&store, "r"),
            "No notes in this room yet. Save one with /note TEXT."
        );
        save(&mut store, "r", "alice", "buy milk");
        save(&mut store, "r", "bob", "line one\nline two");
        save(&mut store, "elsewhere", "carol", "not here");
        assert_eq!(
            list(&store, "r"),
            "Notes in this room (2):\n#1 alice: buy milk\n#2 bob: line one line two"
        );
    }

    #[test]
    fn the_list_is_capped_to_the_latest_notes_and_shortens_long_ones() {
        let mut store = MemoryStore::default();
        for n in 1..=25 {
            save(&mut store, "r", "alice", &format!("note {n}"));
        }
        save(&mut store, "r", "bob", &"z".repeat(300));
        let listed = list(&store, "r");
        let lines: Vec<&str> = listed.lines().collect();
        assert_eq!(lines.len(), 1 + LIST_LENGTH);
        assert_eq!(lines[0], "The latest 20 of 26 notes in this room:");
        assert_eq!(lines[1], "#7 alice: note 7");
        assert_eq!(lines[20], format!("#26 bob: {}…", "z".repeat(100)));
    }

    #[test]
    fn forget_takes_a_number_and_says_what_it_removed() {
        let mut store = MemoryStore::default();
        save(&mut store, "r", "alice", "buy milk");
        save(&mut store, "other", "bob", "elsewhere");
        let cases = [
            (
                "",
                "Usage: /forget N, where N is a note's number from /notes",
            ),
            (
                "one",
                "Usage: /forget N, where N is a note's number from /notes",
            ),
            (
                "-1",
                "Usage: /forget N, where N is a note's number from /notes",
            ),
            ("2", "There is no note #2 in this room."),
            ("#1", "Forgot note #1 by alice: buy milk"),
            ("1", "There is no note #1 in this room."),
        ];
        for (args, expected) in cases {
            assert_eq!(forget(&mut store, "r", args), expected, "args {args:?}");
        }
        assert!(
            store.get("room/other/note/0000000001").is_some(),
            "another room's note #1 stays"
        );
    }

    #[test]
    fn stored_values_decode_into_author_and_text() {
        let cases: [(&[u8], (&str, &str)); 4] = [
            (b"alice\nbuy milk", ("alice", "buy milk")),
            (b"bob\nline one\nline two", ("bob", "line one\nline two")),
            (b"no author line", ("?", "no author line")),
            (b"eve\n\xff", ("eve", "\u{fffd}")),
        ];
        for (value, (author, text)) in cases {
            assert_eq!(decode(value), (author.to_owned(), text.to_owned()));
        }
        assert_eq!(
            decode(encode("alice", "a\nb").as_bytes()),
            ("alice".into(), "a\nb".into())
        );
    }
}
