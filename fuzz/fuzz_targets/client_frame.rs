//! The socket's frame parser on arbitrary text. It must never panic, and its verdict must keep
//! the protocol's promise about `ref`: a JSON object whose `ref` is a string of at most 64
//! characters (or absent) gets that `ref` back, whether the frame is good or not; anything
//! else is malformed and answered without one. (The first run found an object holding a lone
//! surrogate escape in a field the frame does not need: JSON all the same, so its `ref` comes
//! back; `protocol::client` keeps it as a regression test.) Room codes taken from frames normalize to a
//! canonical code or to nothing, and normalizing twice changes nothing.
#![no_main]

use hearth::ids::RoomCode;
use hearth::protocol::{self, FrameError, MAX_REF_CHARS};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// What the protocol sees of a frame: whether it is a JSON object, its keys (duplicates
/// included: a map would keep one of them), and the value of its `ref`. JSON's grammar allows
/// any `\uXXXX` escape, lone surrogates included, which no Rust string can hold: values other
/// than `ref` are skipped unread, so such an object is still an object, as RFC 8259 says.
struct Object {
    keys: Vec<String>,
    reference: Option<Value>,
}

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Object, D::Error> {
        struct Collect;
        impl<'de> Visitor<'de> for Collect {
            type Value = Object;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut object = Object {
                    keys: Vec::new(),
                    reference: None,
                };
                while let Some(key) = map.next_key::<String>()? {
                    if key == "ref" {
                        object.reference = Some(map.next_value::<Value>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                    object.keys.push(key);
                }
                Ok(object)
            }
        }
        deserializer.deserialize_map(Collect)
    }
}

/// The `ref` the answer must carry: `Some(ref)` for a JSON object with a good (or no) `ref`,
/// `None` when the frame is malformed and its answer carries none.
fn promised_ref(text: &str) -> Option<Option<String>> {
    let object = serde_json::from_str::<Object>(text).ok()?;
    // An object naming `ref` or `type` twice is ambiguous; the parser calls it malformed.
    for name in ["ref", "type"] {
        if object.keys.iter().filter(|k| *k == name).count() > 1 {
            return None;
        }
    }
    match object.reference {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(r)) if r.chars().count() <= MAX_REF_CHARS => Some(Some(r)),
        Some(_) => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let promised = promised_ref(text);
    match protocol::parse(text) {
        Ok(envelope) => {
            assert_eq!(
                Some(envelope.reference.clone()),
                promised,
                "accepted {text:?} with the wrong ref"
            );
            let room = envelope.room.clone();
            if let Some(canonical) = RoomCode::parse(&room) {
                assert_eq!(canonical.len(), RoomCode::LENGTH);
                assert!(canonical.bytes().all(|b| RoomCode::ALPHABET.contains(&b)));
                assert_eq!(RoomCode::parse(&canonical).as_ref(), Some(&canonical));
            }
            let _ = envelope.action.answers_with_history();
        }
        Err(error @ FrameError::Invalid { .. }) => {
            let reference = error.reference().map(str::to_string);
            assert_eq!(
                Some(reference),
                promised,
                "refused {text:?} with the wrong ref"
            );
            assert!(!error.to_string().is_empty());
        }
        Err(error @ FrameError::Malformed(_)) => {
            assert_eq!(
                promised, None,
                "{text:?} called malformed, but it has a good ref"
            );
            assert!(error.reference().is_none());
        }
    }
});
