//! The room actor: the one owner of a room's state.
//!
//! Commands are taken in bursts. Each command changes the state at once and writes to sled;
//! what it means for clients (acks, items, presence) is staged as [`Effect`]s. At the end of a
//! burst the staged effects become one batch: if the burst wrote anything, the batch waits for
//! a group commit, so an ack or an item reaches clients only once it is on disk. Batches are
//! released strictly in order, so every subscriber sees items in seq order and a `joined` before
//! anything that followed it. The actor never waits on a socket: delivery is `try_send`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use super::registry::{Registry, Retirement, RoomContext};
use super::{RoomCommand, RoomError};
use crate::ids::{RoomCode, Seq};
use crate::protocol::{ErrorCode, ServerFrame};
use crate::sockets::outbox::{ConnHandle, ConnId};
use crate::store::rooms::{BanRecord, MemberRecord, RoomRecord};
use crate::store::{StoreError, Ticket};

/// Commands handled before their effects are sealed into one batch.
const BURST: usize = 64;
/// Batches waiting for the disk before the actor stops taking commands.
const MAX_PENDING_BATCHES: usize = 64;

/// Something clients should see, released once the batch it belongs to is durable.
pub(super) enum Effect {
    /// An answer that confirms a write (ack, ok, joined); becomes `internal` if the write
    /// could not be made durable.
    Confirm {
        conn: ConnHandle,
        frame: Utf8Bytes,
        reference: Option<String>,
    },
    /// A frame for one socket, delivered whatever happens (errors, history pages).
    Reply { conn: ConnHandle, frame: Utf8Bytes },
    /// A frame for every subscriber present when it was staged, optionally not for one user's
    /// own sockets; dropped if the write failed.
    Publish {
        frame: Utf8Bytes,
        except_user: Option<u64>,
    },
    /// A frame for every socket of a user, subscribed or not (kicked), but `except`.
    ToUser {
        user: u64,
        frame: Utf8Bytes,
        except: Option<ConnId>,
    },
    /// A command's job is stored: hand it to its plugin's worker (only if durable).
    Enqueue { plugin: String, job: u64 },
    /// Tell whoever waits (a bot worker, an HTTP request) whether the write is durable.
    Answered {
        done: oneshot::Sender<Result<bool, RoomError>>,
        posted: bool,
    },
    /// The answer before it is in its socket's queue: the socket may send its next `join` or
    /// `history` (the slot is given back as this is dropped).
    FreeSlot(OwnedSemaphorePermit),
}

struct Batch {
    number: u64,
    effects: Vec<Effect>,
    /// The room's last seq once this batch's writes are made.
    last_seq: Seq,
}

type PendingBatch = Pin<Box<dyn Future<Output = (Result<(), StoreError>, Batch)> + Send>>;

pub(super) struct Subscriber {
    pub conn: ConnHandle,
    /// The batch in which it subscribed: publishes staged earlier are not for it (their items
    /// are already in its `joined`).
    pub since_batch: u64,
}

pub(super) struct RoomActor {
    pub ctx: Arc<RoomContext>,
    pub code: RoomCode,
    pub room: RoomRecord,
    pub members: HashMap<u64, MemberRecord>,
    pub bans: HashMap<u64, BanRecord>,
    pub subscribers: HashMap<ConnId, Subscriber>,
    /// Subscribed sockets per user; a user is online while this is above zero.
    pub online: HashMap<u64, usize>,
    pub next_seq: Seq,
    pub typing_last: HashMap<u64, Instant>,
    /// Effects staged by the commands of the current burst.
    pub staged: Vec<Effect>,
    /// Whether the current burst wrote to the store.
    pub wrote: bool,
    batch_number: u64,
    /// Names the database the current burst writes to; its commit fails if the database was
    /// reopened since (see `Store::commit_since`).
    ticket: Ticket,
    /// The last seq known to be on disk: released by a successful commit.
    durable_seq: Seq,
    /// A commit failed: the state in memory may hold writes the disk never got, so the room
    /// is read again from the store before it takes another command.
    stale: bool,
}

impl RoomActor {
    /// Loads a room's state from the store; `None` if no such room exists.
    pub fn load(ctx: Arc<RoomContext>, code: &RoomCode) -> Result<Option<RoomActor>, RoomError> {
        let Some(room) = ctx.store.room(code)? else {
            return Ok(None);
        };
        let members = ctx.store.members(code)?.into_iter().collect();
        let bans = ctx.store.bans(code)?.into_iter().collect();
        let last_seq = ctx.store.last_seq(code)?;
        let ticket = ctx.store.ticket();
        Ok(Some(RoomActor {
            ticket,
            durable_seq: last_seq,
            stale: false,
            code: code.clone(),
            room,
            members,
            bans,
            subscribers: HashMap::new(),
            online: HashMap::new(),
            next_seq: last_seq.next(),
            typing_last: HashMap::new(),
            staged: Vec::new(),
            wrote: false,
            batch_number: 0,
            ctx,
        }))
    }

    pub fn current_batch(&self) -> u64 {
        self.batch_number
    }

    pub async fn run(mut self, mut inbox: mpsc::Receiver<RoomCommand>, registry: Arc<Registry>) {
        let idle_after = Duration::from_secs(self.ctx.config.idle_actor_secs);
        let mut pending: FuturesOrdered<PendingBatch> = FuturesOrdered::new();
        let mut idle_since = Instant::now();
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        loop {
            if shutdown.is_some() && pending.is_empty() {
                break;
            }
            let idle_deadline = tokio::time::Instant::from_std(idle_since + idle_after);
            let can_idle = self.subscribers.is_empty() && pending.is_empty() && shutdown.is_none();
            tokio::select! {
                biased;
                Some((outcome, batch)) = pending.next(), if !pending.is_empty() => {
                    self.release(outcome, batch);
                    self.seal(&mut pending);
                }
                command = inbox.recv(), if pending.len() < MAX_PENDING_BATCHES && shutdown.is_none() => {
                    let Some(command) = command else { break };
                    let mut burst = vec![command];
                    while burst.len() < BURST {
                        match inbox.try_recv() {
                            Ok(command) => burst.push(command),
                            Err(_) => break,
                        }
                    }
                    self.begin_burst();
                    for command in burst {
                        if let RoomCommand::Shutdown { done } = command {
                            shutdown = Some(done);
                        } else {
                            self.handle(command);
                        }
                    }
                    self.seal(&mut pending);
                    idle_since = Instant::now();
                }
                () = tokio::time::sleep_until(idle_deadline), if can_idle => {
                    match registry.retire(&self.code, &mut inbox) {
                        Retirement::Stop => return,
                        Retirement::Continue(fresh, late) => {
                            inbox = fresh;
                            self.begin_burst();
                            for command in late {
                                self.handle(command);
                            }
                            self.seal(&mut pending);
                            idle_since = Instant::now();
                        }
                    }
                }
            }
        }
        registry.forget(&self.code);
        if let Some(done) = shutdown {
            let _ = done.send(());
        }
    }

    /// Before a burst of commands: a room whose commit failed is read again from the store
    /// (reopened if need be), and the burst's writes are tied to the database as it is now.
    fn begin_burst(&mut self) {
        if self.stale {
            if let Err(e) = self.reload() {
                tracing::warn!(room = %self.code, error = %e, "the room cannot be reloaded yet");
            }
        }
        self.ticket = self.ctx.store.ticket();
    }

    /// Reads the room again from the store after a failed commit. Items that failed batches
    /// wrote and that reached the disk all the same (the database keeps what was written before
    /// the failure) are published now, so subscribers still see every seq; sockets of people
    /// who turn out not to be members stop receiving the room.
    fn reload(&mut self) -> Result<(), RoomError> {
        let store = self.ctx.store.clone();
        store.recover()?;
        let room = store.room(&self.code)?.ok_or(RoomError::UnknownRoom)?;
        let members: HashMap<u64, MemberRecord> = store.members(&self.code)?.into_iter().collect();
        let bans = store.bans(&self.code)?.into_iter().collect();
        let last = store.last_seq(&self.code)?;
        let recovered = store
            .items_after(&self.code, self.durable_seq, usize::MAX)?
            .items;
        self.room = room;
        self.bans = bans;
        self.next_seq = last.next();
        self.subscribers
            .retain(|_, s| members.contains_key(&s.conn.user()));
        self.members = members;
        self.online.clear();
        for sub in self.subscribers.values() {
            *self.online.entry(sub.conn.user()).or_insert(0) += 1;
        }
        for item in &recovered {
            self.publish_item(item);
        }
        self.durable_seq = last;
        self.stale = false;
        tracing::warn!(
            room = %self.code,
            recovered = recovered.len(),
            "room read again from the store after a failed write"
        );
        Ok(())
    }

    fn handle(&mut self, command: RoomCommand) {
        match command {
            RoomCommand::Client { request, .. } if self.stale => {
                let frame = ServerFrame::Error {
                    reference: request.reference.as_deref(),
                    code: ErrorCode::Internal,
                    message: "the server cannot store anything right now; try again shortly",
                }
                .encode();
                self.staged.push(Effect::Reply {
                    conn: request.conn,
                    frame,
                });
            }
            RoomCommand::Client { request, action } => self.handle_client(*request, action),
            RoomCommand::BotAnswer { job, actions, done } => self.bot_answer(*job, actions, done),
            RoomCommand::Unsubscribe { conn, user } => self.unsubscribe(conn, user),
            RoomCommand::Notify { user, level, done } => self.set_notify(user, level, done),
            RoomCommand::Online { reply } => {
                let online: HashSet<u64> = self.online.keys().copied().collect();
                let _ = reply.send(online);
            }
            // Taken apart in `run`, which must see it.
            RoomCommand::Shutdown { .. } => {}
        }
    }

    /// Turns the staged effects into a batch: after a commit if anything was written, else in
    /// turn behind the batches already waiting.
    fn seal(&mut self, pending: &mut FuturesOrdered<PendingBatch>) {
        // Releasing at once can stage more (presence of a socket found slow), hence the loop.
        while !self.staged.is_empty() {
            let batch = self.take_batch();
            if self.wrote {
                self.wrote = false;
                let (store, ticket) = (self.ctx.store.clone(), self.ticket);
                pending.push_back(Box::pin(async move {
                    (store.commit_since(ticket).await, batch)
                }));
            } else if pending.is_empty() {
                self.release(Ok(()), batch);
            } else {
                pending.push_back(Box::pin(std::future::ready((Ok(()), batch))));
            }
        }
    }

    /// Releases what is staged at once, as if its commit had succeeded: the harness drives
    /// the room logic without the actor's loop.
    #[cfg(any(test, feature = "harness"))]
    pub(super) fn settle(&mut self) {
        while !self.staged.is_empty() {
            let batch = self.take_batch();
            self.wrote = false;
            self.release(Ok(()), batch);
        }
    }

    /// What is staged, as the next numbered batch.
    fn take_batch(&mut self) -> Batch {
        let batch = Batch {
            number: self.batch_number,
            effects: std::mem::take(&mut self.staged),
            last_seq: self.next_seq.prev(),
        };
        self.batch_number += 1;
        batch
    }

    fn release(&mut self, outcome: Result<(), StoreError>, batch: Batch) {
        let durable = outcome.is_ok();
        if let Err(e) = &outcome {
            tracing::error!(room = %self.code, error = %e, "commit failed; answering internal");
            self.stale = true;
        } else if !self.stale {
            self.durable_seq = self.durable_seq.max(batch.last_seq);
        }
        let mut failed = Vec::new();
        for effect in batch.effects {
            match effect {
                Effect::Confirm {
                    conn,
                    frame,
                    reference,
                } => {
                    let frame = if durable {
                        frame
                    } else {
                        ServerFrame::Error {
                            reference: reference.as_deref(),
                            code: ErrorCode::Internal,
                            message: "the server could not store that; try again",
                        }
                        .encode()
                    };
                    conn.deliver(&frame);
                }
                Effect::Reply { conn, frame } => {
                    conn.deliver(&frame);
                }
                Effect::Publish { frame, except_user } if durable => {
                    for sub in self.subscribers.values() {
                        let wanted =
                            sub.since_batch <= batch.number && except_user != Some(sub.conn.user());
                        if wanted && !sub.conn.deliver(&frame) {
                            failed.push((sub.conn.id(), sub.conn.user()));
                        }
                    }
                }
                Effect::ToUser {
                    user,
                    frame,
                    except,
                } if durable => {
                    for conn in self.ctx.connections.of_user(user) {
                        if Some(conn.id()) != except {
                            conn.deliver(&frame);
                        }
                    }
                }
                Effect::Enqueue { plugin, job } => {
                    if durable {
                        self.ctx.bots.enqueue(&plugin, job);
                    } else {
                        self.ctx.bots.release(&plugin);
                    }
                }
                Effect::Answered { done, posted } => {
                    let outcome = if durable {
                        Ok(posted)
                    } else {
                        Err(RoomError::Internal("the answer could not be stored".into()))
                    };
                    let _ = done.send(outcome);
                }
                Effect::FreeSlot(slot) => drop(slot),
                // What the failed write would have meant is not shown to anyone.
                Effect::Publish { .. } | Effect::ToUser { .. } => {}
            }
        }
        // Sockets that could not keep up are closed; they leave the room's audience now.
        for (conn, user) in failed {
            self.unsubscribe(conn, user);
        }
    }
}
