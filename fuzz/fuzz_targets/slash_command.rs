//! The slash-command reader on arbitrary text. It must never panic, and what it reads must
//! follow docs/protocol.md: only text starting with `/` is a command; the name is lower-cased
//! and holds no whitespace or `=`; the arguments are trimmed; `/name args` and `/name=args`
//! read the same; and the name and arguments come from the text itself, in order.
#![no_main]

use hearth::bots::command::{parse, valid_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Some(command) = parse(text) else {
        assert!(!text.starts_with('/'), "{text:?} starts with / but is not a command");
        return;
    };
    assert!(text.starts_with('/'));
    assert_eq!(command.name, command.name.to_lowercase(), "{text:?}");
    assert!(
        !command.name.contains(|c: char| c.is_whitespace() || c == '='),
        "{text:?}: name {:?}",
        command.name
    );
    assert_eq!(command.args, command.args.trim(), "{text:?}");
    if valid_name(&command.name) {
        // The name is what was typed up to the separator, lower-cased (the Kelvin sign
        // lower-cases to `k`, so the typed name may be longer in bytes); the arguments follow.
        let typed: String = text[1..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '=')
            .collect();
        assert_eq!(typed.to_lowercase(), command.name, "{text:?}");
        assert!(text[1 + typed.len()..].contains(command.args.as_str()));
        // The other separator reads the same.
        let other = format!("/{}={}", command.name, command.args);
        let again = parse(&other).expect("still a command");
        assert_eq!(again.name, command.name, "{other:?}");
        if !command.args.starts_with('=') {
            assert_eq!(again.args, command.args, "{other:?}");
        }
    }
});
