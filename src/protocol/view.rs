//! How rooms and members look on the wire (HTTP and socket alike).

use serde::Serialize;

use crate::store::rooms::RoomRecord;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoomView {
    pub code: String,
    pub name: String,
    /// The host's username.
    pub host: String,
    pub created_at: u64,
}

impl From<&RoomRecord> for RoomView {
    fn from(room: &RoomRecord) -> Self {
        RoomView {
            code: room.code.clone(),
            name: room.name.clone(),
            host: room.host_username.clone(),
            created_at: room.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemberView {
    pub username: String,
    pub display_name: String,
    pub online: bool,
    pub host: bool,
}
