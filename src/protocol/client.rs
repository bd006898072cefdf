//! What clients send over the socket: one [`Envelope`] (`ref`, `room`) with the [`Action`]
//! flattened in. Parsing yields a typed envelope or a typed [`FrameError`].

use serde::Deserialize;

use crate::ids::Seq;

pub const MAX_REF_CHARS: usize = 64;

/// A client frame: its optional `ref`, the room it is for (as the client wrote the code), and
/// what it asks of that room.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Envelope {
    #[serde(rename = "ref", default)]
    pub reference: Option<String>,
    pub room: String,
    #[serde(flatten)]
    pub action: Action,
}

/// What a client asks of a room: the frame's `type` and its own fields.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    Join {
        #[serde(default)]
        since: Option<Seq>,
    },
    Leave,
    Send {
        text: String,
        /// The seq of the item this one answers, in the same room.
        #[serde(default)]
        reply_to: Option<Seq>,
    },
    Edit {
        seq: Seq,
        text: String,
    },
    Delete {
        seq: Seq,
    },
    Read {
        seq: Seq,
    },
    History {
        #[serde(default)]
        before: Option<Seq>,
        #[serde(default)]
        limit: Option<u32>,
    },
    React {
        seq: Seq,
        emoji: String,
        on: bool,
    },
    Typing,
    Kick {
        user: String,
    },
    Unban {
        user: String,
    },
    TransferHost {
        user: String,
    },
}

impl Action {
    /// Whether the answer carries history (`joined`, `history`), and so is large.
    pub fn answers_with_history(&self) -> bool {
        matches!(self, Action::Join { .. } | Action::History { .. })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Not a JSON object (with a string `ref`, if any): no `ref` to answer.
    #[error("frames are JSON objects: {0}")]
    Malformed(String),
    /// A well-formed frame whose fields are wrong; the answer carries its `ref`.
    #[error("{detail}")]
    Invalid {
        reference: Option<String>,
        detail: String,
    },
}

impl FrameError {
    /// The `ref` an error answer should carry.
    pub fn reference(&self) -> Option<&str> {
        match self {
            FrameError::Malformed(_) => None,
            FrameError::Invalid { reference, .. } => reference.as_deref(),
        }
    }
}

/// What every answer needs from a frame: its `ref`, and its `type`, checked to be a string
/// (serde would otherwise take an integer tag as a variant index). The `type` is looked at
/// as raw JSON, not decoded: a string that cannot be decoded (a lone surrogate escape, which
/// JSON allows) is still a string, and the frame still gets its `ref` back with the error.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a serde_json::value::RawValue>,
    #[serde(rename = "ref", default)]
    reference: Option<String>,
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Envelope, FrameError> {
    // serde reads a struct from a JSON array too (its fields in order): `[null, "r1"]` would
    // pass for a frame with a `ref`. Only objects are frames.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(FrameError::Malformed("a frame is a JSON object".into()));
    }
    let head: Head =
        serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if head
        .reference
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REF_CHARS)
    {
        return Err(FrameError::Malformed(format!(
            "`ref` may have at most {MAX_REF_CHARS} characters"
        )));
    }
    if !head.kind.is_some_and(|kind| kind.get().starts_with('"')) {
        return Err(FrameError::Invalid {
            reference: head.reference,
            detail: "every frame needs a string \"type\"".into(),
        });
    }
    serde_json::from_str(text).map_err(|e| FrameError::Invalid {
        reference: head.reference,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        // The frame's text, and the room and action it parses to (`Err` if refused).
        type Case<'a> = (&'a str, Result<(&'a str, Action), ()>);
        let cases: &[Case] = &[
            (
                r#"{"type":"join","room":"abc","ref":"1"}"#,
                Ok(("abc", Action::Join { since: None })),
            ),
            (
                r#"{"type":"join","room":"abc","since":5}"#,
                Ok((
                    "abc",
                    Action::Join {
                        since: Some(Seq::new(5)),
                    },
                )),
            ),
            (
                r#"{"type":"transfer_host","room":"r","user":"u"}"#,
                Ok(("r", Action::TransferHost { user: "u".into() })),
            ),
            (r#"{"type":"leave","room":"r"}"#, Ok(("r", Action::Leave))),
            (r#"{"type":"join"}"#, Err(())),
            (r#"{"type":"send","room":"r"}"#, Err(())),
            (r#"{"type":"send","room":"r","text":5}"#, Err(())),
            (r#"{"type":"fly","room":"r"}"#, Err(())),
            (r#"{"type":5,"room":"r"}"#, Err(())),
            (r#"{"room":"r"}"#, Err(())),
            ("not json", Err(())),
            (r#"[1,2]"#, Err(())),
        ];
        for (text, expected) in cases {
            let got = parse(text).map_err(|_| ());
            let got = got.as_ref().map(|e| (e.room.as_str(), e.action.clone()));
            let expected = expected
                .as_ref()
                .map(|(room, action)| (*room, action.clone()));
            assert_eq!(got, expected, "{text}");
        }
    }

    #[test]
    fn errors_keep_the_ref_when_there_is_one() {
        let cases = [
            (r#"{"type":"send","room":"r","ref":"a"}"#, Some("a")),
            (r#"{"type":"fly","ref":"b"}"#, Some("b")),
            (r#"{"type":5,"ref":"c"}"#, Some("c")),
            (r#"{"room":"r","ref":"d"}"#, Some("d")),
            (r#"{"type":"send","ref":7}"#, None),
            ("{", None),
            // Found by fuzzing: arrays are not frames, whatever serde would make of them.
            ("[]", None),
            (r#"[null, "r1"]"#, None),
            (r#"["join", "r1"]"#, None),
            (r#" {"type":"fly","ref":"e"}"#, Some("e")),
        ];
        for (text, reference) in cases {
            let error = parse(text).expect_err(text);
            assert_eq!(error.reference(), reference, "{text}");
            if text.starts_with('[') {
                assert!(matches!(error, FrameError::Malformed(_)), "{text}");
            }
        }
        let long_ref = format!(
            r#"{{"type":"typing","room":"r","ref":"{}"}}"#,
            "x".repeat(65)
        );
        assert!(matches!(parse(&long_ref), Err(FrameError::Malformed(_))));
    }

    /// Found by fuzzing (fuzz/fuzz_targets/client_frame.rs). JSON's grammar allows any
    /// `\uXXXX` escape, a lone surrogate included, though no Rust string can hold one. In a
    /// field the frame does not need, the frame is still a JSON object with a good `ref`: the
    /// answer carries it, with `bad_request`: a frame holding a string hearth cannot hold is
    /// wrong wherever the string is. In the `ref` itself, there is no `ref` to give back.
    #[test]
    fn lone_surrogates_are_json_and_keep_the_ref() {
        let cases = [
            (
                r#"{"typ*":"react","room":"K7MP2X","se-":32,"emoji":"\ud83dLudc4d","on":true,"ref":"r1"}"#,
                Some("r1"),
            ),
            (
                r#"{"type":"send","room":"K7MP2X","text":"\ud800","ref":"r2"}"#,
                Some("r2"),
            ),
            (r#"{"type":"typing","room":"K7MP2X","ref":"\udc00"}"#, None),
            (
                r#"{"type":"ree\ud82d2udc4d","on":true,"ref":"r4"}"#,
                Some("r4"),
            ),
        ];
        for (text, reference) in cases {
            let error = parse(text).expect_err(text);
            assert_eq!(error.reference(), reference, "{text}");
            assert_eq!(
                matches!(error, FrameError::Invalid { .. }),
                reference.is_some(),
                "{text}"
            );
        }
        // Even in a field nobody reads, a string hearth cannot hold makes the frame wrong.
        let extra = r#"{"type":"typing","room":"K7MP2X","extra":"\ud800","ref":"r3"}"#;
        assert_eq!(parse(extra).expect_err(extra).reference(), Some("r3"));
    }
}
