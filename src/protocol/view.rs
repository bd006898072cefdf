//! How rooms and members look on the wire (HTTP and socket alike).

use serde::Serialize;

use crate::ids::{RoomCode, Seq, Username};
use crate::store::rooms::{NotifyLevel, RoomRecord};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoomView {
    pub code: RoomCode,
    pub name: String,
    /// `room` (direct messages, when they come, are `dm`).
    pub kind: &'static str,
    /// The host's username.
    pub host: Username,
    pub created_at: u64,
    /// Where the member the view is for stands; absent where the view is for nobody in
    /// particular (an invite page).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub standing: Option<Standing>,
}

/// A member's place in a room: how far it goes, how far they have read, how much of the rest
/// is unread and names them, and what they are notified of.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Standing {
    pub last_seq: Seq,
    pub read_seq: Seq,
    /// Items after `read_seq` by others, tombstones not counted, at most
    /// `rooms.max_unread_counted` examined.
    pub unread: usize,
    /// Of those, the ones that mention the member.
    pub mentions: usize,
    pub notify: NotifyLevel,
}

impl RoomView {
    pub fn with_standing(mut self, standing: Standing) -> RoomView {
        self.standing = Some(standing);
        self
    }
}

impl From<&RoomRecord> for RoomView {
    fn from(room: &RoomRecord) -> Self {
        RoomView {
            code: room.code.clone(),
            name: room.name.clone(),
            kind: "room",
            host: room.host_username.clone(),
            created_at: room.created_at,
            standing: None,
        }
    }
}

/// A slash command the room answers, as `joined` lists it for the composer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CommandView {
    /// Without its slash: `stock`.
    pub name: String,
    /// How to call it: `/stock SYMBOL`.
    pub usage: String,
    pub description: String,
    /// The bot that answers it; `None` for hearth's own (`/help`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    /// Whether its bot is paused after repeated failures (commands wait meanwhile).
    pub paused: bool,
}

/// What a client needs to know of the server's limits before it sends.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct LimitsView {
    /// `rooms.max_text_chars`: the most characters a message may have (0: no limit).
    pub max_text_chars: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemberView {
    pub username: Username,
    pub display_name: String,
    pub online: bool,
    pub host: bool,
}
