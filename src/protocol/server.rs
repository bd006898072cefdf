//! What the server sends over the socket. A frame is serialized once, and the same bytes go
//! to every recipient.

use serde::Serialize;

use super::codes::ErrorCode;
use super::view::{CommandView, LimitsView, MemberView, RoomView};
use super::Item;
use crate::ids::{Seq, Username};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Joined {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        room: &'a RoomView,
        members: &'a [MemberView],
        messages: &'a [Item],
        more: bool,
        limits: LimitsView,
        commands: &'a [CommandView],
    },
    Ack {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        room: &'a str,
        seq: Seq,
        id: u64,
        ts: u64,
    },
    Message {
        room: &'a str,
        item: &'a Item,
    },
    History {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        room: &'a str,
        messages: &'a [Item],
        more: bool,
    },
    Reaction {
        room: &'a str,
        seq: Seq,
        emoji: &'a str,
        user: &'a str,
        on: bool,
    },
    Edited {
        room: &'a str,
        seq: Seq,
        text: &'a str,
        edited_at: u64,
        #[serde(skip_serializing_if = "<[Username]>::is_empty")]
        mentions: &'a [Username],
    },
    Deleted {
        room: &'a str,
        seq: Seq,
        by: &'a str,
    },
    /// To a member's other sockets: they have read up to `seq`.
    Read {
        room: &'a str,
        seq: Seq,
    },
    Presence {
        room: &'a str,
        user: &'a str,
        online: bool,
    },
    Typing {
        room: &'a str,
        user: &'a str,
    },
    Kicked {
        room: &'a str,
        by: &'a str,
    },
    /// An answer for the caller alone (/help); not stored.
    Notice {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        room: &'a str,
        text: &'a str,
    },
    Ok {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
    },
    Error {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        code: ErrorCode,
        message: &'a str,
    },
}

impl ServerFrame<'_> {
    /// Serializes once; the result is shared by every recipient.
    pub fn encode(&self) -> axum::extract::ws::Utf8Bytes {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_frames_carry_type_and_ref() {
        let ok = ServerFrame::Ok {
            reference: Some("7"),
        }
        .encode();
        assert_eq!(ok.as_str(), r#"{"type":"ok","ref":"7"}"#);
        let err = ServerFrame::Error {
            reference: None,
            code: ErrorCode::BadRequest,
            message: "m",
        }
        .encode();
        assert_eq!(
            err.as_str(),
            r#"{"type":"error","code":"bad_request","message":"m"}"#
        );
    }
}
