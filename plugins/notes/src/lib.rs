//! The `notes` bot: `/note TEXT` saves a note for the room, `/notes` lists the room's notes,
//! `/forget N` deletes one. The notes live in the bot's key-value store; the logic is in
//! `notepad`, written against its `Store` trait so that its tests need no hearth.

mod notepad;

use hearth_bot_sdk::{kv, Bot, Command, CommandSpec, Response};

struct Notes;

impl Bot for Notes {
    const NAME: &'static str = "notes";
    const COMMANDS: &'static [CommandSpec] = &[
        CommandSpec::new("note", "/note TEXT", "Saves a note for this room"),
        CommandSpec::new("notes", "/notes", "Lists this room's latest notes"),
        CommandSpec::new(
            "forget",
            "/forget N",
            "Deletes note number N from this room",
        ),
    ];

    fn handle(command: &Command) -> Response {
        let store = &mut HearthKv;
        let reply = match command.name.as_str() {
            "note" => notepad::save(store, &command.room, &command.caller, &command.args),
            "notes" => notepad::list(store, &command.room),
            "forget" => notepad::forget(store, &command.room, &command.args),
            other => format!("I do not know /{other}."),
        };
        Response::reply(reply)
    }
}

hearth_bot_sdk::register_bot!(Notes);

/// The bot's key-value store in hearth.
struct HearthKv;

impl notepad::Store for HearthKv {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        kv::get(key)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), kv::KvError> {
        kv::set(key, value)
    }

    fn delete(&mut self, key: &str) -> Result<(), kv::KvError> {
        kv::delete(key)
    }

    fn keys(&self, prefix: &str, limit: u32) -> Vec<String> {
        kv::keys(prefix, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_is_valid() {
        assert_eq!(hearth_bot_sdk::check_manifest::<Notes>(), Ok(()));
    }
}
