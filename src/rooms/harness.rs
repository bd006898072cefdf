//! The room logic without sockets or tasks: room actors driven one command at a time against a
//! real store, the way the socket drives them, with every effect delivered at once. The
//! property tests of the room rules ([`model`](self::model) below) and the fuzz targets in
//! `fuzz/` run long generated sequences through it and check the room's invariants after every
//! step with [`Harness::check`].
//!
//! Built for unit tests, and with the `harness` feature for the fuzz crate; never part of a
//! release build.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::actor::RoomActor;
use super::registry::RoomContext;
use super::{create, Action, Caller, Request, RoomError};
use crate::config::RoomsConfig;
use crate::ids::{RoomCode, Seq, Username};
use crate::protocol::{self, ErrorCode};
use crate::sockets::outbox::{ConnHandle, QueueBound};
use crate::sockets::Connections;
use crate::store::rooms::Item;
use crate::store::{Store, StoreError, UserRecord};

/// Frames and bytes a harness socket holds before it would count as a slow consumer.
const QUEUE: QueueBound = QueueBound {
    frames: 1 << 16,
    bytes: 1 << 30,
};

struct User {
    record: UserRecord,
    conn: ConnHandle,
    /// What reached this user's socket while others acted.
    delivered: Vec<Value>,
}

pub struct Harness {
    runtime: tokio::runtime::Runtime,
    store: Store,
    ctx: Arc<RoomContext>,
    actors: HashMap<RoomCode, RoomActor>,
    users: Vec<User>,
}

/// A room as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    /// Usernames, longest-standing first.
    pub members: Vec<String>,
    pub host: String,
    pub banned: BTreeSet<String>,
    /// Every item, by seq.
    pub items: Vec<Item>,
}

impl Harness {
    /// A store in `dir` (which must be empty or hold an earlier harness's store) and `users`
    /// people, `user0`, `user1`, ..., each with one socket.
    pub fn open(dir: &Path, config: RoomsConfig, users: usize) -> Result<Harness, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // The store's commit writer is a task of this runtime.
        let store = {
            let _entered = runtime.enter();
            Store::open(dir)?
        };
        let connections = Arc::new(Connections::default());
        let users = (0..users)
            .map(|i| {
                let id = 1000 + i as u64;
                let conn = ConnHandle::new(connections.next_id(), id, [i as u8; 32], QUEUE);
                connections.add(conn.clone());
                User {
                    record: UserRecord {
                        id,
                        username: Username::parse(&format!("user{i}"))
                            .expect("the harness names its users validly"),
                        display_name: format!("User {i}"),
                        password_hash: None,
                        bot: false,
                        disabled: false,
                        created_at: 0,
                    },
                    conn,
                    delivered: Vec::new(),
                }
            })
            .collect();
        let ctx = Arc::new(RoomContext {
            store: store.clone(),
            // No plugins here: /help answers, every other command is unknown.
            bots: Arc::new(crate::bots::Directory::new(false, 1)),
            config,
            connections,
        });
        Ok(Harness {
            runtime,
            store,
            ctx,
            actors: HashMap::new(),
            users,
        })
    }

    pub fn users(&self) -> usize {
        self.users.len()
    }

    pub fn username(&self, user: usize) -> &str {
        &self.users[user].record.username
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates a room hosted by `user`, as `POST /api/rooms` does; answers its code.
    pub fn create_room(&mut self, user: usize, name: &str) -> Result<RoomCode, RoomError> {
        let creator = &self.users[user].record;
        let max = self.ctx.config.max_name_chars;
        let room = self
            .runtime
            .block_on(create::create_room(&self.store, creator, name, max))?;
        Ok(room.code)
    }

    /// One text frame from `user`'s socket, parsed and dispatched as the socket does it;
    /// answers what reached that socket in consequence (others' sockets keep theirs, see
    /// [`Harness::take_delivered`]).
    pub fn frame(&mut self, user: usize, text: &str) -> Vec<Value> {
        let envelope = match protocol::parse(text) {
            Ok(envelope) => envelope,
            Err(error) => return vec![error_frame(error.reference(), ErrorCode::BadRequest)],
        };
        let reference = envelope.reference;
        let Some(code) = RoomCode::parse(&envelope.room) else {
            return vec![error_frame(reference.as_deref(), ErrorCode::UnknownRoom)];
        };
        self.act(user, &code, envelope.action, reference)
    }

    /// One command from `user` to the room `code`, as the socket sends it.
    pub fn act(
        &mut self,
        user: usize,
        code: &RoomCode,
        action: Action,
        reference: Option<String>,
    ) -> Vec<Value> {
        let person = &self.users[user];
        let request = Request {
            conn: person.conn.clone(),
            caller: Arc::new(Caller {
                id: person.record.id,
                username: person.record.username.clone(),
                display_name: person.record.display_name.clone(),
            }),
            reference,
            answer_slot: None,
        };
        let actor = match self.actor(code) {
            Ok(actor) => actor,
            Err(error) => return vec![error_frame(request.reference.as_deref(), error.code())],
        };
        actor.handle_client(request, action);
        actor.settle();
        let mut mine = Vec::new();
        for (i, person) in self.users.iter_mut().enumerate() {
            while let Some(frame) = person.conn.try_next_frame() {
                let value: Value = serde_json::from_str(frame.as_str())
                    .unwrap_or_else(|e| json!({"type": "unparsable", "error": e.to_string()}));
                if i == user {
                    mine.push(value);
                } else {
                    person.delivered.push(value);
                }
            }
        }
        mine
    }

    /// Lets go of a room's actor (it stays in the store): what a long fuzzing run does with
    /// rooms it is done with.
    pub fn forget_room(&mut self, code: &RoomCode) {
        self.actors.remove(code);
    }

    /// What reached `user`'s socket while others acted, since the last call.
    pub fn take_delivered(&mut self, user: usize) -> Vec<Value> {
        std::mem::take(&mut self.users[user].delivered)
    }

    /// Makes everything written so far durable (flush and fsync), as a room's batch does.
    pub fn commit(&self) -> Result<(), StoreError> {
        self.runtime.block_on(self.store.commit())
    }

    fn actor(&mut self, code: &RoomCode) -> Result<&mut RoomActor, RoomError> {
        if !self.actors.contains_key(code) {
            let actor = RoomActor::load(self.ctx.clone(), code)?.ok_or(RoomError::UnknownRoom)?;
            self.actors.insert(code.clone(), actor);
        }
        self.actors.get_mut(code).ok_or(RoomError::UnknownRoom)
    }

    /// The room as the store holds it, after checking the invariants every room keeps: seqs
    /// start at 1 without gaps, the host is a member whenever anyone is, nobody banned is a
    /// member, the room actor's memory agrees with the store, and only members' sockets are
    /// subscribed. Answers the first broken one.
    pub fn check(&self, code: &RoomCode) -> Result<RoomState, String> {
        let store = &self.store;
        let fail = |e: StoreError| e.to_string();
        let room = store
            .room(code)
            .map_err(fail)?
            .ok_or_else(|| format!("room {code} is gone"))?;
        let mut members = store.members(code).map_err(fail)?;
        members.sort_by_key(|(_, m)| m.since);
        let bans = store.bans(code).map_err(fail)?;
        let items = store
            .items_after(code, Seq::ZERO, usize::MAX)
            .map_err(fail)?
            .items;
        for (i, item) in items.iter().enumerate() {
            if item.seq.get() != i as u64 + 1 {
                return Err(format!("seq {} where {} belongs", item.seq, i + 1));
            }
        }
        let member_ids: BTreeSet<u64> = members.iter().map(|(id, _)| *id).collect();
        if !members.is_empty() && !member_ids.contains(&room.host) {
            return Err(format!("host {} is not a member", room.host_username));
        }
        if let Some((id, ban)) = bans.iter().find(|(id, _)| member_ids.contains(id)) {
            return Err(format!("{} ({id}) is banned and a member", ban.username));
        }
        let mut since = BTreeSet::new();
        for (_, m) in &members {
            if !since.insert(m.since) {
                return Err(format!("two members joined at seq {}", m.since));
            }
        }
        if let Some(actor) = self.actors.get(code) {
            let mut memory: Vec<_> = actor.members.iter().map(|(id, m)| (*id, m)).collect();
            memory.sort_by_key(|(_, m)| m.since);
            let stored: Vec<_> = members.iter().map(|(id, m)| (*id, m)).collect();
            if memory != stored {
                return Err(format!("members in memory {memory:?}, stored {stored:?}"));
            }
            let memory_bans: BTreeSet<u64> = actor.bans.keys().copied().collect();
            let stored_bans: BTreeSet<u64> = bans.iter().map(|(id, _)| *id).collect();
            if memory_bans != stored_bans {
                return Err(format!(
                    "bans in memory {memory_bans:?}, stored {stored_bans:?}"
                ));
            }
            if actor.room != room {
                return Err(format!("room in memory {:?}, stored {room:?}", actor.room));
            }
            if actor.next_seq.get() != items.len() as u64 + 1 {
                return Err(format!(
                    "next seq {} after {} items",
                    actor.next_seq,
                    items.len()
                ));
            }
            if let Some(sub) = actor
                .subscribers
                .values()
                .find(|s| !member_ids.contains(&s.conn.user()))
            {
                return Err(format!(
                    "user {} is subscribed, not a member",
                    sub.conn.user()
                ));
            }
        }
        Ok(RoomState {
            members: members
                .into_iter()
                .map(|(_, m)| m.username.to_string())
                .collect(),
            host: room.host_username.to_string(),
            banned: bans
                .into_iter()
                .map(|(_, b)| b.username.to_string())
                .collect(),
            items,
        })
    }
}

fn error_frame(reference: Option<&str>, code: ErrorCode) -> Value {
    let mut frame = json!({"type": "error", "code": code});
    if let Some(reference) = reference {
        frame["ref"] = json!(reference);
    }
    frame
}

#[cfg(test)]
mod model;
