//! Reading a slash-command out of a message: `/name args` and `/name=args` are the same.

/// A command as typed: its name lower-cased, and what followed, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    pub name: String,
    pub args: String,
}

/// The command in `text` (already trimmed), or `None` if it is not one: text that does not
/// start with `/`. A `/` followed by nothing, a space or `=` is a command with an empty name,
/// which no plugin serves.
pub fn parse(text: &str) -> Option<SlashCommand> {
    let rest = text.strip_prefix('/')?;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(rest.len());
    let (name, tail) = rest.split_at(end);
    // The separator is one `=` or whitespace; what follows it is the argument text.
    let args = tail.strip_prefix('=').unwrap_or(tail).trim();
    Some(SlashCommand {
        name: name.to_lowercase(),
        args: args.to_string(),
    })
}

/// Whether `name` may be a command's name: 1 to 32 of a-z, 0-9, `-` and `_`.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_in_both_forms() {
        let cases = [
            ("/stock AAPL", Some(("stock", "AAPL"))),
            ("/stock=AAPL", Some(("stock", "AAPL"))),
            ("/STOCK  aapl ", Some(("stock", "aapl"))),
            ("/stock", Some(("stock", ""))),
            ("/stock=", Some(("stock", ""))),
            ("/note buy = milk", Some(("note", "buy = milk"))),
            ("/note=a=b", Some(("note", "a=b"))),
            ("/help", Some(("help", ""))),
            ("/", Some(("", ""))),
            ("/ hello", Some(("", "hello"))),
            ("/stock\tmsft", Some(("stock", "msft"))),
            ("/ÄPFEL x", Some(("äpfel", "x"))),
            ("hello /stock", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let got = parse(text);
            let got = got.as_ref().map(|c| (c.name.as_str(), c.args.as_str()));
            assert_eq!(got, expected, "{text:?}");
        }
    }

    #[test]
    fn names_are_checked() {
        for good in ["stock", "a", "x-y_z9", &"a".repeat(32)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "Stock", "st ock", "émoji", "a/b", &"a".repeat(33)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
