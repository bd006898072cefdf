//! Room records: the room, its members, bans and history items.
//!
//! Keys start with the 6-byte room code so each room's records sort together:
//! `rooms` code -> [`RoomRecord`]; `members` code ++ user id -> [`MemberRecord`];
//! `bans` code ++ user id -> [`BanRecord`]; `items` code ++ seq (u64 BE) -> [`Item`];
//! `user_rooms` user id ++ code -> joined-at (u64 BE), for "my rooms".
//!
//! Only a room's actor writes these after creation, so no two writers race on one room.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{decode, encode, encode_bounded, Result, Store, StoreError};
use crate::ids::{RoomCode, Seq, Username};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoomRecord {
    pub code: RoomCode,
    pub name: String,
    pub created_at: u64,
    /// The host's user id and username; kept when the host leaves an emptied room, so the
    /// next joiner's takeover can name whom they took over from.
    pub host: u64,
    pub host_username: Username,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberRecord {
    pub username: Username,
    pub display_name: String,
    /// The seq at which membership began: the smallest is the longest-standing member.
    pub since: Seq,
    pub joined_at: u64,
    /// How far this member has read, on any device (the `read` frame; it only grows). `None`
    /// for memberships older than read positions: they count as read to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_seq: Option<Seq>,
    /// What this member is told about: `None` until they choose, which means the room's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyLevel>,
}

/// What a member is notified of in a room.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    All,
    Mentions,
    None,
}

impl NotifyLevel {
    /// Rooms notify of mentions unless a member chooses otherwise (direct messages, when they
    /// come, notify of everything).
    pub const ROOM_DEFAULT: NotifyLevel = NotifyLevel::Mentions;
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BanRecord {
    pub username: Username,
    pub by: Username,
    pub at: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Chat,
    Bot,
    System,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    RoomCreated,
    Join,
    Leave,
    Kick,
    Unban,
    HostTransfer,
}

/// One history item, stored exactly as the wire shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Item {
    pub seq: Seq,
    pub id: u64,
    pub ts: u64,
    pub kind: ItemKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The seq of the item this one answers: the command, on a bot's answer; the quoted
    /// message, on a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Seq>,
    /// Members the text names as `@username`, in the order first named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<Username>,
    /// When the author last changed the text (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<u64>,
    /// A tombstone: the item was deleted; its text, reactions and mentions are gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Emoji -> usernames, in the order they reacted; `None` only on a tombstone, which shows
    /// no `reactions` at all (every other item shows the object, empty or not, as in v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactions: Option<BTreeMap<String, Vec<String>>>,
}

impl Item {
    fn blank(seq: Seq, id: u64, ts: u64, kind: ItemKind) -> Item {
        Item {
            seq,
            id,
            ts,
            kind,
            author: None,
            text: None,
            event: None,
            user: None,
            by: None,
            from: None,
            to: None,
            reply_to: None,
            mentions: Vec::new(),
            edited_at: None,
            deleted: false,
            reactions: Some(BTreeMap::new()),
        }
    }

    pub fn chat(seq: Seq, id: u64, ts: u64, author: &str, text: String) -> Item {
        Item {
            author: Some(author.to_string()),
            text: Some(text),
            ..Item::blank(seq, id, ts, ItemKind::Chat)
        }
    }

    /// The emoji map, to change (a tombstone's is made anew, but nobody reacts to one).
    pub fn reactions_mut(&mut self) -> &mut BTreeMap<String, Vec<String>> {
        self.reactions.get_or_insert_default()
    }

    /// Makes this item its own tombstone: what was said, who reacted and whom it named are
    /// gone; its place (seq, id, time), kind and author stay.
    pub fn erase(&mut self) {
        self.text = None;
        self.reactions = None;
        self.mentions = Vec::new();
        self.edited_at = None;
        self.reply_to = None;
        self.deleted = true;
    }

    /// Cuts the text (marking the cut with an ellipsis) until the item fits in one record
    /// ([`super::layout::MAX_RECORD_BYTES`]): for a bot's answer, which nobody can be asked to
    /// shorten.
    pub fn shorten_to_fit(&mut self) {
        while encode(self).len() > super::layout::MAX_RECORD_BYTES {
            let Some(text) = self.text.as_mut().filter(|t| t.chars().count() > 1) else {
                return;
            };
            let keep = text.chars().count() / 2;
            *text = text
                .chars()
                .take(keep)
                .chain(std::iter::once('…'))
                .collect();
        }
    }

    /// A bot's answer to the command at `reply_to`.
    pub fn bot(seq: Seq, id: u64, ts: u64, author: &str, text: String, reply_to: Seq) -> Item {
        Item {
            author: Some(author.to_string()),
            text: Some(text),
            reply_to: Some(reply_to),
            ..Item::blank(seq, id, ts, ItemKind::Bot)
        }
    }

    /// A system item about `user`, with `by` when someone else acted.
    pub fn system(seq: Seq, id: u64, ts: u64, event: Event, user: &str, by: Option<&str>) -> Item {
        Item {
            event: Some(event),
            user: Some(user.to_string()),
            by: by.map(str::to_string),
            ..Item::blank(seq, id, ts, ItemKind::System)
        }
    }

    /// The host changes from `from` to `to`; like every system item it names whom it is
    /// about in `user`, here the new host.
    pub fn host_transfer(
        seq: Seq,
        id: u64,
        ts: u64,
        from: &str,
        to: &str,
        by: Option<&str>,
    ) -> Item {
        Item {
            event: Some(Event::HostTransfer),
            user: Some(to.to_string()),
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            by: by.map(str::to_string),
            ..Item::blank(seq, id, ts, ItemKind::System)
        }
    }
}

/// A page of history, oldest first, and whether more lies beyond it.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub more: bool,
}

fn key(code: &RoomCode, suffix: u64) -> Vec<u8> {
    let mut key = code.as_bytes().to_vec();
    key.extend_from_slice(&suffix.to_be_bytes());
    key
}

/// The `items` key of a room's item.
pub(crate) fn item_key(code: &RoomCode, seq: Seq) -> Vec<u8> {
    let mut key = code.as_bytes().to_vec();
    key.extend_from_slice(&seq.to_key());
    key
}

fn suffix_u64(tree: &'static str, key: &[u8]) -> Result<u64> {
    let tail: [u8; 8] = key
        .get(key.len().saturating_sub(8)..)
        .and_then(|t| t.try_into().ok())
        .ok_or(StoreError::Corrupt {
            tree,
            detail: "key too short".into(),
        })?;
    Ok(u64::from_be_bytes(tail))
}

fn user_room_key(user_id: u64, code: &RoomCode) -> Vec<u8> {
    let mut key = user_id.to_be_bytes().to_vec();
    key.extend_from_slice(code.as_bytes());
    key
}

impl Store {
    /// Creates a room with its creator as first member and `first` as item 1. Answers false
    /// (and writes nothing) when the code is taken.
    pub fn create_room(
        &self,
        room: &RoomRecord,
        creator: u64,
        member: &MemberRecord,
        first: &Item,
    ) -> Result<bool> {
        let first_raw = encode_bounded(first)?;
        self.write(|t| {
            let outcome = (&t.rooms, &t.members, &t.user_rooms, &t.items).transaction(
                |(rooms, members, user_rooms, items)| {
                    if rooms.get(room.code.as_bytes())?.is_some() {
                        return Err(ConflictableTransactionError::Abort(()));
                    }
                    rooms.insert(room.code.as_bytes(), encode(room))?;
                    members.insert(key(&room.code, creator), encode(member))?;
                    user_rooms.insert(
                        user_room_key(creator, &room.code),
                        &member.joined_at.to_be_bytes(),
                    )?;
                    items.insert(item_key(&room.code, first.seq), first_raw.as_slice())?;
                    Ok(())
                },
            );
            match outcome {
                Ok(()) => Ok(true),
                Err(TransactionError::Abort(())) => Ok(false),
                Err(TransactionError::Storage(e)) => Err(e.into()),
            }
        })
    }

    pub fn room(&self, code: &RoomCode) -> Result<Option<RoomRecord>> {
        self.trees()?
            .rooms
            .get(code.as_bytes())?
            .map(|raw| decode("rooms", &raw))
            .transpose()
    }

    pub fn put_room(&self, room: &RoomRecord) -> Result<()> {
        self.write(|t| {
            t.rooms.insert(room.code.as_bytes(), encode(room))?;
            Ok(())
        })
    }

    /// Every member of a room with their user id, in no particular order.
    pub fn members(&self, code: &RoomCode) -> Result<Vec<(u64, MemberRecord)>> {
        self.trees()?
            .members
            .scan_prefix(code.as_bytes())
            .map(|entry| {
                let (k, v) = entry?;
                Ok((suffix_u64("members", &k)?, decode("members", &v)?))
            })
            .collect()
    }

    pub fn is_member(&self, code: &RoomCode, user_id: u64) -> Result<bool> {
        Ok(self.trees()?.members.contains_key(key(code, user_id))?)
    }

    /// A user's membership of a room, if they are a member.
    pub fn member(&self, code: &RoomCode, user_id: u64) -> Result<Option<MemberRecord>> {
        self.trees()?
            .members
            .get(key(code, user_id))?
            .map(|raw| decode("members", &raw))
            .transpose()
    }

    pub fn put_member(&self, code: &RoomCode, user_id: u64, member: &MemberRecord) -> Result<()> {
        self.write(|t| {
            t.members.insert(key(code, user_id), encode(member))?;
            t.user_rooms.insert(
                user_room_key(user_id, code),
                &member.joined_at.to_be_bytes(),
            )?;
            Ok(())
        })
    }

    pub fn remove_member(&self, code: &RoomCode, user_id: u64) -> Result<()> {
        self.write(|t| {
            t.members.remove(key(code, user_id))?;
            t.user_rooms.remove(user_room_key(user_id, code))?;
            Ok(())
        })
    }

    pub fn bans(&self, code: &RoomCode) -> Result<Vec<(u64, BanRecord)>> {
        self.trees()?
            .bans
            .scan_prefix(code.as_bytes())
            .map(|entry| {
                let (k, v) = entry?;
                Ok((suffix_u64("bans", &k)?, decode("bans", &v)?))
            })
            .collect()
    }

    pub fn put_ban(&self, code: &RoomCode, user_id: u64, ban: &BanRecord) -> Result<()> {
        self.write(|t| {
            t.bans.insert(key(code, user_id), encode(ban))?;
            Ok(())
        })
    }

    pub fn remove_ban(&self, code: &RoomCode, user_id: u64) -> Result<()> {
        self.write(|t| {
            t.bans.remove(key(code, user_id))?;
            Ok(())
        })
    }

    /// The rooms a user belongs to, oldest membership first.
    pub fn rooms_of_user(&self, user_id: u64) -> Result<Vec<RoomRecord>> {
        let mut joined = Vec::new();
        for entry in self.trees()?.user_rooms.scan_prefix(user_id.to_be_bytes()) {
            let (k, v) = entry?;
            let code = std::str::from_utf8(&k[8..])
                .ok()
                .and_then(RoomCode::parse)
                .ok_or_else(|| StoreError::Corrupt {
                    tree: "user_rooms",
                    detail: "a key without a room code".into(),
                })?;
            joined.push((suffix_u64("user_rooms", &v)?, code));
        }
        joined.sort();
        let mut rooms = Vec::with_capacity(joined.len());
        for (_, code) in joined {
            if let Some(room) = self.room(&code)? {
                rooms.push(room);
            }
        }
        Ok(rooms)
    }

    /// The highest seq stored for a room ([`Seq::ZERO`] for none).
    pub fn last_seq(&self, code: &RoomCode) -> Result<Seq> {
        match self.trees()?.items.scan_prefix(code.as_bytes()).next_back() {
            Some(entry) => Ok(Seq::new(suffix_u64("items", &entry?.0)?)),
            None => Ok(Seq::ZERO),
        }
    }

    /// Stores an item; refuses one too large to store ([`StoreError::TooLarge`]).
    pub fn put_item(&self, code: &RoomCode, item: &Item) -> Result<()> {
        let raw = encode_bounded(item)?;
        self.write(|t| {
            t.items.insert(item_key(code, item.seq), raw)?;
            Ok(())
        })
    }

    pub fn item(&self, code: &RoomCode, seq: Seq) -> Result<Option<Item>> {
        self.trees()?
            .items
            .get(item_key(code, seq))?
            .map(|raw| decode("items", &raw))
            .transpose()
    }

    /// The newest `limit` items with seq < `before` (all when `None`), oldest first.
    pub fn items_before(&self, code: &RoomCode, before: Option<Seq>, limit: usize) -> Result<Page> {
        let end = item_key(code, before.unwrap_or(Seq::new(u64::MAX)));
        let trees = self.trees()?;
        let mut range = trees.items.range(item_key(code, Seq::ZERO)..end).rev();
        let mut items = Vec::with_capacity(limit.min(256));
        for entry in range.by_ref().take(limit) {
            items.push(decode("items", &entry?.1)?);
        }
        let more = range.next().is_some();
        items.reverse();
        Ok(Page { items, more })
    }

    /// The oldest `limit` items with seq > `since`, oldest first.
    pub fn items_after(&self, code: &RoomCode, since: Seq, limit: usize) -> Result<Page> {
        let start = item_key(code, since.next());
        let trees = self.trees()?;
        let mut range = trees
            .items
            .range(start..=item_key(code, Seq::new(u64::MAX)));
        let mut items = Vec::with_capacity(limit.min(512));
        for entry in range.by_ref().take(limit) {
            items.push(decode("items", &entry?.1)?);
        }
        let more = range.next().is_some();
        Ok(Page { items, more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::code;

    #[tokio::test]
    async fn history_pages_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for seq in 1..=10 {
            store
                .put_item(
                    &code("ABCDEF"),
                    &Item::chat(Seq::new(seq), seq, 0, "a", format!("m{seq}")),
                )
                .unwrap();
        }
        store
            .put_item(
                &code("ABCDEG"),
                &Item::chat(Seq::FIRST, 99, 0, "a", "other".into()),
            )
            .unwrap();
        assert_eq!(store.last_seq(&code("ABCDEF")).unwrap(), Seq::new(10));
        assert_eq!(store.last_seq(&code("ZZZZZZ")).unwrap(), Seq::ZERO);

        let page = store.items_before(&code("ABCDEF"), None, 3).unwrap();
        let seqs: Vec<u64> = page.items.iter().map(|i| i.seq.get()).collect();
        assert_eq!((seqs, page.more), (vec![8, 9, 10], true));
        let page = store
            .items_before(&code("ABCDEF"), Some(Seq::new(3)), 5)
            .unwrap();
        let seqs: Vec<u64> = page.items.iter().map(|i| i.seq.get()).collect();
        assert_eq!((seqs, page.more), (vec![1, 2], false));

        let page = store.items_after(&code("ABCDEF"), Seq::new(7), 2).unwrap();
        let seqs: Vec<u64> = page.items.iter().map(|i| i.seq.get()).collect();
        assert_eq!((seqs, page.more), (vec![8, 9], true));
        let page = store
            .items_after(&code("ABCDEF"), Seq::new(8), 500)
            .unwrap();
        assert_eq!(page.items.len(), 2);
        assert!(!page.more);
    }
}
