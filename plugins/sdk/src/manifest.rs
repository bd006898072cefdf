//! The bot's manifest: the commands it declares, and the rules hearth holds its names to.

use crate::Bot;

/// One slash-command a bot serves, as `/help` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// The name without its slash: `stock`. Lowercase letters, digits, `-` and `_`; 1 to 32
    /// characters; `help` belongs to hearth.
    pub name: &'static str,
    /// How to call it: `/stock SYMBOL`.
    pub usage: &'static str,
    /// One line saying what it does.
    pub description: &'static str,
}

impl CommandSpec {
    /// A command spec; `const` so that a bot's commands can be a `const` list.
    pub const fn new(name: &'static str, usage: &'static str, description: &'static str) -> Self {
        CommandSpec {
            name,
            usage,
            description,
        }
    }
}

/// Checks `B`'s name and commands against the rules hearth enforces when it loads a plugin, so
/// that a unit test can catch a bad manifest before hearth refuses the plugin:
///
/// ```
/// use hearth_bot_sdk::{check_manifest, Bot, Command, CommandSpec, Response};
///
/// struct Shouty;
///
/// impl Bot for Shouty {
///     const NAME: &'static str = "Shouty";
///     const COMMANDS: &'static [CommandSpec] = &[CommandSpec::new("shout", "/shout TEXT", "")];
///     fn handle(command: &Command) -> Response {
///         Response::reply(command.args.to_uppercase())
///     }
/// }
///
/// // In a bot's unit tests: assert_eq!(check_manifest::<MyBot>(), Ok(()));
/// assert!(check_manifest::<Shouty>().unwrap_err().contains("lowercase"));
/// ```
pub fn check_manifest<B: Bot>() -> Result<(), String> {
    let command_names: Vec<&str> = B::COMMANDS.iter().map(|spec| spec.name).collect();
    check(B::NAME, &command_names)
}

fn check(name: &str, command_names: &[&str]) -> Result<(), String> {
    let name_chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let starts_with_letter = name.starts_with(|c: char| c.is_ascii_lowercase());
    if !(3..=32).contains(&name.len()) || !name_chars_ok || !starts_with_letter {
        return Err(format!(
            "bot name {name:?}: use 3 to 32 lowercase letters, digits and '-', starting with a letter"
        ));
    }
    if command_names.is_empty() {
        return Err("the bot serves no commands".to_owned());
    }
    for (index, &command) in command_names.iter().enumerate() {
        let chars_ok = command
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !(1..=32).contains(&command.len()) || !chars_ok {
            return Err(format!(
                "command {command:?}: use 1 to 32 lowercase letters, digits, '-' and '_'"
            ));
        }
        if command == "help" {
            return Err("command \"help\" belongs to hearth".to_owned());
        }
        if command_names[..index].contains(&command) {
            return Err(format!("command {command:?} is declared twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_names_follow_the_username_rules() {
        let cases = [
            ("stocks", true),
            ("a-b", true),
            ("bot2", true),
            (&"b".repeat(32), true),
            ("ab", false),
            (&"b".repeat(33), false),
            ("Stocks", false),
            ("2bot", false),
            ("-bot", false),
            ("my_bot", false),
            ("bøt", false),
        ];
        for (name, valid) in cases {
            assert_eq!(check(name, &["stock"]).is_ok(), valid, "name {name:?}");
        }
    }

    #[test]
    fn command_names_follow_the_command_rules() {
        let cases = [
            ("stock", true),
            ("s", true),
            ("kv-get_2", true),
            (&"c".repeat(32), true),
            ("", false),
            (&"c".repeat(33), false),
            ("Stock", false),
            ("/stock", false),
            ("st ock", false),
            ("help", false),
        ];
        for (command, valid) in cases {
            assert_eq!(
                check("bot", &[command]).is_ok(),
                valid,
                "command {command:?}"
            );
        }
    }

    #[test]
    fn a_bot_serves_at_least_one_command_and_none_twice() {
        assert!(check("bot", &[]).is_err());
        assert_eq!(
            check("bot", &["a", "b", "a"]),
            Err("command \"a\" is declared twice".to_owned())
        );
    }
}
