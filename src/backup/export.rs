//! `hearth export --json`: users, rooms and history as one JSON document, for people who leave
//! (or want their history elsewhere). Nothing secret is in it: no password hashes, no
//! sessions or token hashes, and of sign-in identities only the provider and the login shown to
//! people (not the provider's user id or email address).
//!
//! The document is written as it is read, room by room and message by message, so a large
//! history never has to fit in memory. Shape:
//!
//! ```json
//! {"format": "hearth-export", "version": 1, "hearth_version": "0.1.0", "exported_at": 0,
//!  "users": [{"username", "display_name", "bot", "disabled", "created_at",
//!             "password_sign_in", "identities": [{"provider", "login", "linked_at"}]}],
//!  "rooms": [{"code", "name", "host", "created_at",
//!             "members": [{"username", "display_name", "joined_at"}],
//!             "bans": [{"username", "by", "at"}],
//!             "messages": [<history items exactly as the protocol shows them>]}]}
//! ```

use std::io::{self, Write};

use serde::Serialize;

use crate::clock::now_ms;
use crate::ids::Seq;
use crate::store::rooms::RoomRecord;
use crate::store::{decode, Store, StoreError};

/// Items read from the store at a time.
const PAGE: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Write(#[from] io::Error),
}

#[derive(Serialize)]
struct Identity<'a> {
    provider: &'a str,
    login: &'a str,
    linked_at: u64,
}

#[derive(Serialize)]
struct User<'a> {
    username: &'a str,
    display_name: &'a str,
    bot: bool,
    disabled: bool,
    created_at: u64,
    password_sign_in: bool,
    identities: Vec<Identity<'a>>,
}

#[derive(Serialize)]
struct Member<'a> {
    username: &'a str,
    display_name: &'a str,
    joined_at: u64,
}

#[derive(Serialize)]
struct Ban<'a> {
    username: &'a str,
    by: &'a str,
    at: u64,
}

/// What was exported.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExportSummary {
    pub users: usize,
    pub rooms: usize,
    pub messages: usize,
}

fn json(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::other)
}

/// Writes the export of `store` to `out`.
pub fn write_json(store: &Store, out: &mut impl Write) -> Result<ExportSummary, ExportError> {
    let mut summary = ExportSummary::default();
    write!(
        out,
        "{{\"format\":\"hearth-export\",\"version\":1,\"hearth_version\":{},\"exported_at\":{},\n\"users\":[",
        serde_json::Value::from(env!("CARGO_PKG_VERSION")),
        now_ms()
    )?;
    for (i, user) in store.list_users()?.iter().enumerate() {
        let identities = store.identities_of(user.id)?;
        let record = User {
            username: &user.username,
            display_name: &user.display_name,
            bot: user.bot,
            disabled: user.disabled,
            created_at: user.created_at,
            password_sign_in: user.password_hash.is_some(),
            identities: identities
                .iter()
                .map(|identity| Identity {
                    provider: &identity.provider,
                    login: &identity.login,
                    linked_at: identity.linked_at,
                })
                .collect(),
        };
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        json(out, &record)?;
        summary.users += 1;
    }
    out.write_all(b"],\n\"rooms\":[")?;
    for (i, entry) in store.trees()?.rooms.iter().values().enumerate() {
        let raw = entry.map_err(StoreError::from)?;
        let room: RoomRecord = decode("rooms", &raw)?;
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        summary.messages += write_room(store, &room, out)?;
        summary.rooms += 1;
    }
    out.write_all(b"]}\n")?;
    out.flush()?;
    Ok(summary)
}

fn write_room(
    store: &Store,
    room: &RoomRecord,
    out: &mut impl Write,
) -> Result<usize, ExportError> {
    write!(
        out,
        "{{\"code\":{},\"name\":{},\"host\":{},\"created_at\":{},\"members\":",
        serde_json::Value::from(room.code.as_str()),
        serde_json::Value::from(room.name.as_str()),
        serde_json::Value::from(room.host_username.as_str()),
        room.created_at
    )?;
    let mut members = store.members(&room.code)?;
    members.sort_by_key(|(_, m)| m.since);
    let members: Vec<Member> = members
        .iter()
        .map(|(_, m)| Member {
            username: &m.username,
            display_name: &m.display_name,
            joined_at: m.joined_at,
        })
        .collect();
    json(out, &members)?;
    out.write_all(b",\"bans\":")?;
    let bans = store.bans(&room.code)?;
    let bans: Vec<Ban> = bans
        .iter()
        .map(|(_, b)| Ban {
            username: &b.username,
            by: &b.by,
            at: b.at,
        })
        .collect();
    json(out, &bans)?;
    out.write_all(b",\"messages\":[")?;
    let mut since = Seq::ZERO;
    let mut count = 0;
    loop {
        let page = store.items_after(&room.code, since, PAGE)?;
        for item in &page.items {
            out.write_all(if count == 0 { b"\n" } else { b",\n" })?;
            json(out, item)?;
            since = item.seq;
            count += 1;
        }
        if !page.more || page.items.is_empty() {
            break;
        }
    }
    out.write_all(b"]}")?;
    Ok(count)
}
