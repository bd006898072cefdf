//! The command a bot is asked to answer.

use crate::bindings::hearth::bot::types::Invocation;

/// A slash-command someone typed in a room, as hearth hands it to the bot.
///
/// `Default` gives an empty command, handy in unit tests:
/// `Command { name: "stock".into(), args: "AAPL".into(), ..Default::default() }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    /// The room's code.
    pub room: String,
    /// The caller's username.
    pub caller: String,
    /// The command's name, lower-cased, without its slash: `stock` for `/stock AAPL`.
    pub name: String,
    /// What followed the name and its separator (a space or `=`), trimmed; may be empty.
    pub args: String,
    /// The seq of the command's own message in the room.
    pub seq: u64,
    /// When the command was sent, in unix milliseconds.
    pub sent_at_ms: u64,
}

impl Command {
    /// The first word of the arguments and the rest, trimmed: `("KEY", "some value")` for
    /// `KEY some value`. Both are empty when there are no arguments.
    pub fn split_args(&self) -> (&str, &str) {
        match self.args.split_once(char::is_whitespace) {
            Some((first, rest)) => (first, rest.trim()),
            None => (self.args.as_str(), ""),
        }
    }
}

impl From<Invocation> for Command {
    fn from(call: Invocation) -> Self {
        Command {
            room: call.room,
            caller: call.caller,
            name: call.command,
            args: call.args,
            seq: call.seq,
            sent_at_ms: call.ts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_args(args: &str) -> Command {
        Command {
            args: args.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn split_args_separates_the_first_word() {
        let cases = [
            ("", ("", "")),
            ("KEY", ("KEY", "")),
            ("KEY value", ("KEY", "value")),
            ("KEY   two  words ", ("KEY", "two  words")),
            ("KEY\tvalue", ("KEY", "value")),
        ];
        for (args, expected) in cases {
            assert_eq!(with_args(args).split_args(), expected, "args {args:?}");
        }
    }

    #[test]
    fn an_invocation_becomes_a_command_field_by_field() {
        let call = Invocation {
            room: "ab12cd".into(),
            caller: "alice".into(),
            command: "stock".into(),
            args: "AAPL".into(),
            seq: 42,
            ts: 1_700_000_000_000,
        };
        let expected = Command {
            room: "ab12cd".into(),
            caller: "alice".into(),
            name: "stock".into(),
            args: "AAPL".into(),
            seq: 42,
            sent_at_ms: 1_700_000_000_000,
        };
        assert_eq!(Command::from(call), expected);
    }
}
