//! Creating a room. It happens outside any actor: until the code is handed out nobody else can
//! address the room, so the store's transaction is the only owner it needs.

use super::RoomError;
use crate::clock::now_ms;
use crate::ids::{RoomCode, Seq};
use crate::store::rooms::{Event, Item, MemberRecord, RoomRecord};
use crate::store::{Store, UserRecord};

/// Attempts at a fresh code before giving up (31^6 codes: collisions are rare until very many
/// rooms exist).
const CODE_ATTEMPTS: usize = 16;

pub async fn create_room(
    store: &Store,
    creator: &UserRecord,
    name: &str,
    max_name_chars: usize,
) -> Result<RoomRecord, RoomError> {
    // No invisible or look-alike characters in what every member is shown (crate::names).
    let name = crate::names::clean(name);
    let name = name.as_str();
    let chars = name.chars().count();
    if chars == 0 || chars > max_name_chars || name.chars().any(char::is_control) {
        return Err(RoomError::InvalidName(max_name_chars));
    }
    let now = now_ms();
    let member = MemberRecord {
        username: creator.username.clone(),
        display_name: creator.display_name.clone(),
        since: Seq::FIRST,
        joined_at: now,
        read_seq: Some(Seq::FIRST),
        notify: None,
    };
    for _ in 0..CODE_ATTEMPTS {
        let code = RoomCode::generate().map_err(|e| RoomError::Internal(e.to_string()))?;
        let room = RoomRecord {
            code: code.clone(),
            name: name.to_string(),
            created_at: now,
            host: creator.id,
            host_username: creator.username.clone(),
        };
        let ticket = store.ticket();
        let first = Item::system(
            Seq::FIRST,
            store.next_id()?,
            now,
            Event::RoomCreated,
            &creator.username,
            None,
        );
        if store.create_room(&room, creator.id, &member, &first)? {
            store.commit_since(ticket).await?;
            metrics::counter!("hearth_rooms_created_total").increment(1);
            return Ok(room);
        }
    }
    Err(RoomError::Internal("no free room code found".into()))
}
