//! Identifiers that carry a promise, as types: a [`RoomCode`] and a [`Username`] are always
//! canonical, so code that holds one never normalizes again and a raw string from a client cannot
//! reach a store key; a [`Seq`] is a place in a room's history, not any number.
//!
//! Room codes are 6 characters from an alphabet without look-alikes (no 0/O, 1/I/L), drawn from
//! the OS CSPRNG and accepted from people in any case. On the wire and in the store a code is a
//! plain string; reading one back checks it again.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// The traits a string identifier shares: read as `&str` anywhere, shown as itself, compared
/// with plain strings (tests and lookups), never built from one except through its `parse`.
macro_rules! string_id {
    ($name:ident) => {
        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

/// A room's code in its canonical (upper-case) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomCode(#[serde(deserialize_with = "canonical")] String);

impl RoomCode {
    pub const ALPHABET: &'static [u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    pub const LENGTH: usize = 6;

    /// A fresh random code. Rejection sampling keeps every character equally likely.
    pub fn generate() -> Result<RoomCode, getrandom::Error> {
        let alphabet = Self::ALPHABET;
        let limit = (256 / alphabet.len() * alphabet.len()) as u8;
        let mut code = String::with_capacity(Self::LENGTH);
        let mut bytes = [0u8; 16];
        while code.len() < Self::LENGTH {
            getrandom::fill(&mut bytes)?;
            for b in bytes.iter().filter(|b| **b < limit) {
                if code.len() < Self::LENGTH {
                    code.push(alphabet[usize::from(*b) % alphabet.len()] as char);
                }
            }
        }
        Ok(RoomCode(code))
    }

    /// The code a person typed or a client sent, in canonical form; `None` if it cannot be a
    /// code (spaces around it and lower case are forgiven).
    pub fn parse(input: &str) -> Option<RoomCode> {
        let code = input.trim().to_ascii_uppercase();
        let valid = code.len() == Self::LENGTH && code.bytes().all(|b| Self::ALPHABET.contains(&b));
        valid.then_some(RoomCode(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reading a code back (from the store or a peer) holds it to the same rule as parsing one.
fn canonical<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    read_canonical(deserializer, RoomCode::parse, "a room code")
}

/// A string read back is accepted only if parsing gives it back unchanged: stored and peers'
/// identifiers were written canonical, so anything else is damage or a forgery.
fn read_canonical<'de, D, T>(
    deserializer: D,
    parse: fn(&str) -> Option<T>,
    what: &str,
) -> Result<String, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deref<Target = str>,
{
    let raw = String::deserialize(deserializer)?;
    match parse(&raw) {
        Some(parsed) if *parsed == *raw => Ok(raw),
        _ => Err(serde::de::Error::custom(format!("{raw:?} is not {what}"))),
    }
}

string_id!(RoomCode);

/// An account's username in canonical form: 3 to 32 of ASCII letters, digits, `_`, `.` and
/// `-`, lower-cased (PROTOCOL.md's rule). People sign in with any case; the store, rooms and
/// the wire hold this form. Bots' accounts are named after their plugin, whose names are a
/// subset of this rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(#[serde(deserialize_with = "canonical_username")] String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;

    /// The name a person typed, in canonical form; `None` if it breaks the rule. The rule is
    /// checked before lower-casing: lower-casing first let look-alikes through (the Kelvin sign
    /// U+212A lower-cases to `k`).
    pub fn parse(input: &str) -> Option<Username> {
        let name = input.trim();
        let len = name.chars().count();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        let valid = (Self::MIN..=Self::MAX).contains(&len) && name.chars().all(allowed);
        valid.then(|| Username(name.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn canonical_username<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    read_canonical(deserializer, Username::parse, "a username")
}

string_id!(Username);

/// An item's place in its room's history: the first item is 1, each next one is one more, and
/// none is ever skipped or reused, so a client that holds seq N and asks for what follows misses
/// nothing. [`Seq::ZERO`] stands for "before the first item" (`since: 0`, an empty room).
/// On the wire and in JSON records it is a plain number; in store keys it is 8 big-endian bytes,
/// so key order is history order.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(u64);

impl Seq {
    pub const ZERO: Seq = Seq(0);
    pub const FIRST: Seq = Seq(1);

    pub const fn new(value: u64) -> Seq {
        Seq(value)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// The seq that follows this one. A room cannot hold 2^64 items, so this never wraps.
    pub const fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }

    /// The seq before this one; [`Seq::ZERO`] stays zero.
    pub const fn prev(self) -> Seq {
        Seq(self.0.saturating_sub(1))
    }

    /// The seq's part of a store key: big-endian, so keys sort in history order.
    pub const fn to_key(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    pub const fn from_key(bytes: [u8; 8]) -> Seq {
        Seq(u64::from_be_bytes(bytes))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A code for unit tests, which write literals.
#[cfg(test)]
pub(crate) fn code(text: &str) -> RoomCode {
    RoomCode::parse(text).expect("a room code")
}

/// A username for unit tests.
#[cfg(test)]
pub(crate) fn name(text: &str) -> Username {
    Username::parse(text).expect("a username")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_parse_as_themselves() {
        for _ in 0..200 {
            let code = RoomCode::generate().unwrap();
            assert_eq!(RoomCode::parse(&code), Some(code.clone()));
        }
    }

    #[test]
    fn parse_table() {
        let cases = [
            ("K7MP2X", Some("K7MP2X")),
            ("k7mp2x", Some("K7MP2X")),
            (" k7mp2x ", Some("K7MP2X")),
            ("K7MP2", None),
            ("K7MP2XX", None),
            ("K0MP2X", None),
            ("KOMP2X", None),
            ("K1MP2X", None),
            ("KLMP2X", None),
            ("KIMP2X", None),
            ("K7MP2é", None),
        ];
        for (input, expected) in cases {
            assert_eq!(RoomCode::parse(input).as_deref(), expected, "{input}");
        }
    }

    #[test]
    fn a_code_reads_back_only_in_canonical_form() {
        let code: RoomCode = serde_json::from_str("\"K7MP2X\"").unwrap();
        assert_eq!(code, "K7MP2X");
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"K7MP2X\"");
        for bad in ["\"k7mp2x\"", "\" K7MP2X\"", "\"K0MP2X\"", "7"] {
            assert!(serde_json::from_str::<RoomCode>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn username_rules() {
        let long = "a".repeat(32);
        let cases = [
            ("alice", Some("alice")),
            ("Alice.B-c_9", Some("alice.b-c_9")),
            (" bob ", Some("bob")),
            ("ab", None),
            (&"a".repeat(33), None),
            (&long, Some(&*long)),
            ("al ice", None),
            ("alïce", None),
            ("al/ice", None),
            ("\u{212A}elvin", None),
        ];
        for (input, expected) in cases {
            assert_eq!(Username::parse(input).as_deref(), expected, "{input}");
        }
    }

    #[test]
    fn a_stored_username_must_be_canonical() {
        let good: Username = serde_json::from_str("\"alice\"").unwrap();
        assert_eq!(good, "alice");
        for bad in ["\"Alice\"", "\"al\"", "\" alice\""] {
            assert!(serde_json::from_str::<Username>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seqs_sort_as_their_keys() {
        let seqs = [
            Seq::ZERO,
            Seq::FIRST,
            Seq::new(255),
            Seq::new(256),
            Seq::new(u64::MAX),
        ];
        for pair in seqs.windows(2) {
            assert!(pair[0] < pair[1] && pair[0].to_key() < pair[1].to_key());
            assert_eq!(Seq::from_key(pair[1].to_key()), pair[1]);
        }
        assert_eq!(Seq::ZERO.prev(), Seq::ZERO);
        assert_eq!(Seq::FIRST.prev().next(), Seq::FIRST);
    }
}
