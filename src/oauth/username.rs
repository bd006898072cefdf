//! Local usernames for people who arrive through a provider: derived from the provider's
//! login, fitted to the username rule (3 to 32 of `a-z 0-9 _ . -`), made unique by a suffix.

use crate::auth::{USERNAME_MAX, USERNAME_MIN};

/// Candidates tried with a counting suffix before a random one.
pub const COUNTED_CANDIDATES: u32 = 50;

/// The name a login becomes before any suffix: lower-cased, the part before an `@` of an email
/// address, other characters replaced by `-`, runs of `-` collapsed, at most 32 characters; a
/// name too short gets the provider's name after it.
pub fn base(login: &str, provider: &str) -> String {
    let login = login.trim();
    let local = login.split_once('@').map_or(login, |(local, _)| local);
    let mut name = String::new();
    for c in local.to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c) {
            c
        } else {
            '-'
        };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    let mut name = name.trim_matches('-').to_string();
    if name.is_empty() {
        name = "user".into();
    }
    if name.len() < USERNAME_MIN {
        name = format!("{name}-{provider}");
    }
    truncate(&name, USERNAME_MAX)
}

/// The `n`th name to try (1-based): the base itself, then `base-2`, `base-3`, ... shortened so
/// the whole stays within 32 characters.
pub fn candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        return base.to_string();
    }
    with_suffix(base, &n.to_string())
}

/// `base-<suffix>` within 32 characters.
pub fn with_suffix(base: &str, suffix: &str) -> String {
    let room = USERNAME_MAX.saturating_sub(suffix.len() + 1);
    format!("{}-{suffix}", truncate(base, room))
}

/// The name is ASCII by now, so bytes are characters.
fn truncate(name: &str, max: usize) -> String {
    name.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::normalize_username;

    #[test]
    fn logins_become_valid_usernames() {
        let cases = [
            ("octocat", "octocat"),
            ("Octo-Cat", "octo-cat"),
            ("jane.doe@gmail.com", "jane.doe"),
            ("Zoë Smith", "zo-smith"),
            ("a", "a-github"),
            ("", "user"),
            ("!!!", "user"),
            ("__x__", "__x__"),
        ];
        for (login, expected) in cases {
            let name = base(login, "github");
            assert_eq!(name, expected, "{login}");
            assert_eq!(normalize_username(&name).unwrap().as_str(), name);
        }
        let long = base(&"x".repeat(40), "github");
        assert_eq!(long.len(), 32);
        for n in [1, 2, 10, 50] {
            let name = candidate(&long, n);
            assert!(name.len() <= 32, "{name}");
            assert_eq!(normalize_username(&name).unwrap().as_str(), name);
        }
        assert_eq!(candidate("octocat", 2), "octocat-2");
        assert_eq!(with_suffix("octocat", "k3x9"), "octocat-k3x9");
    }
}
