//! `@username` mentions: which members a message's text names.
//!
//! A mention is `@` at the start of the text or after a character that cannot be part of a
//! username (so `bob@example.com` names nobody), followed by a member's username in any case.
//! Punctuation that ends a sentence (`@alice.` or `@alice-`) is not part of the name unless a
//! member is called that.

use std::collections::HashSet;

use crate::ids::Username;

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-".contains(c)
}

/// The members `text` names, each once, in the order first named.
pub fn mentions<'a>(text: &str, members: impl IntoIterator<Item = &'a Username>) -> Vec<Username> {
    if !text.contains('@') {
        return Vec::new();
    }
    let members: HashSet<&str> = members.into_iter().map(Username::as_str).collect();
    let mut found: Vec<Username> = Vec::new();
    let mut previous = None;
    for (at, c) in text.char_indices() {
        let starts = c == '@' && !previous.is_some_and(name_char);
        previous = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[at + 1..];
        let end = rest.find(|c: char| !name_char(c)).unwrap_or(rest.len());
        let token = &rest[..end];
        let named = [token, token.trim_end_matches(['.', '-'])]
            .into_iter()
            .filter_map(Username::parse)
            .find(|name| members.contains(name.as_str()));
        if let Some(name) = named {
            if !found.contains(&name) {
                found.push(name);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::name;

    #[test]
    fn who_a_text_names() {
        let members = [name("alice"), name("bob"), name("j.doe"), name("x-y")];
        let cases: &[(&str, &[&str])] = &[
            ("no mention here", &[]),
            ("@alice hi", &["alice"]),
            ("hi @ALICE and @Bob", &["alice", "bob"]),
            ("@bob @alice @bob", &["bob", "alice"]),
            ("mail bob@example.com", &[]),
            ("thanks @alice.", &["alice"]),
            ("ask @j.doe, please", &["j.doe"]),
            ("@x-y- done", &["x-y"]),
            ("@carol is not here", &[]),
            ("(@alice)", &["alice"]),
            ("@", &[]),
            ("@@alice", &["alice"]),
            ("é@alice", &["alice"]),
        ];
        for (text, expected) in cases {
            let got = mentions(text, &members);
            let got: Vec<&str> = got.iter().map(Username::as_str).collect();
            assert_eq!(&got, expected, "{text}");
        }
    }
}
