//! Rooms: one actor task per active room owns that room's state; the registry starts, finds and
//! retires them.
//!
//! - [`code`]: room codes.
//! - [`view`]: rooms and members as the wire shows them.
//! - [`registry`]: the only shared map, from code to a running actor's inbox.
//! - [`actor`]: the actor loop: batching, durability (group commit) before effects, retirement.
//! - [`handlers`]: what each command does to a room.
//! - [`bots`]: slash-commands: /help, queuing a plugin's command, posting a bot's answer.
//! - [`create`]: creating a room, the one write that happens outside an actor.
//! - `harness` (tests and the fuzz targets only): the room logic driven without sockets or
//!   tasks, with the rooms' invariants checked after every step.
//!
//! An actor's inputs ([`RoomCommand`]) and outputs (frames pushed to [`ConnHandle`]s) are plain
//! messages, so moving rooms across machines would be a change of transport.

mod actor;
mod bots;
pub mod code;
pub mod create;
mod handlers;
#[cfg(any(test, feature = "harness"))]
#[doc(hidden)]
pub mod harness;
pub mod registry;
pub mod view;

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::store::jobs::JobRecord;
use crate::store::StoreError;
use crate::ws::outbox::{ConnHandle, ConnId};

pub use handlers::{fit_page, history_limit, Keep};
pub use registry::Registry;

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("there is no room with that code")]
    UnknownRoom,
    #[error("you are not a member of this room")]
    NotMember,
    #[error("only the host can do that")]
    NotHost,
    #[error("you are banned from this room")]
    Banned,
    #[error("messages may have at most {0} characters")]
    TooLong(usize),
    #[error("room names are 1 to {0} characters")]
    InvalidName(usize),
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown command /{0}; /help lists the commands")]
    UnknownCommand(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl RoomError {
    /// The wire code, on the socket and over HTTP.
    pub fn code(&self) -> &'static str {
        match self {
            RoomError::UnknownRoom => "unknown_room",
            RoomError::NotMember => "not_member",
            RoomError::NotHost => "not_host",
            RoomError::Banned => "banned",
            RoomError::TooLong(_) | RoomError::Store(StoreError::TooLarge { .. }) => "too_long",
            RoomError::InvalidName(_) => "invalid_name",
            RoomError::BadRequest(_) => "bad_request",
            RoomError::UnknownCommand(_) => "unknown_command",
            RoomError::RateLimited(_) => "rate_limited",
            RoomError::ShuttingDown | RoomError::Store(_) | RoomError::Internal(_) => "internal",
        }
    }

    /// The message a client may see; server faults stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            RoomError::Store(StoreError::TooLarge { max, .. }) => {
                format!("that is too long to store: a message is at most {max} bytes as stored")
            }
            RoomError::Store(_) | RoomError::Internal(_) => {
                tracing::error!(error = %self, "room command failed");
                "something went wrong on the server".into()
            }
            other => other.to_string(),
        }
    }
}

/// Who sent a command.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: u64,
    pub username: String,
    pub display_name: String,
}

/// A client frame addressed to a room: who, through which socket, with which `ref`.
pub struct Request {
    pub conn: ConnHandle,
    /// Shared by every frame of the socket, so a frame costs no copy of the names.
    pub caller: Arc<Caller>,
    pub reference: Option<String>,
    /// For `join` and `history`: one of the socket's answer slots
    /// (`ws.max_answers_in_flight`), held until the answer is handed to the socket's queue, so
    /// that a socket cannot make a room build and hold answers faster than it takes them.
    pub answer_slot: Option<OwnedSemaphorePermit>,
}

/// What a client asked of a room.
#[derive(Debug, Clone)]
pub enum Action {
    Join {
        since: Option<u64>,
    },
    Leave,
    Send {
        text: String,
    },
    History {
        before: Option<u64>,
        limit: Option<u32>,
    },
    React {
        seq: u64,
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

/// A room actor's inbox. Kept small: the inbox allocates its slots in blocks of 32 commands,
/// each as large as the largest variant, and an idle room keeps its blocks (the large parts
/// are boxed).
pub enum RoomCommand {
    Client {
        request: Box<Request>,
        action: Action,
    },
    /// A socket went away; forget its subscription.
    Unsubscribe { conn: ConnId, user: u64 },
    /// Which members have a subscribed socket (for HTTP).
    Online {
        reply: oneshot::Sender<HashSet<u64>>,
    },
    /// A bot's answer to a queued command. `done` learns, once the answer is durable, whether it
    /// was posted (false: the job had been answered already); an error if it could not be.
    BotAnswer {
        job: Box<JobRecord>,
        actions: Vec<BotAction>,
        done: oneshot::Sender<Result<bool, RoomError>>,
    },
    /// Finish pending writes, deliver their effects, and stop.
    Shutdown { done: oneshot::Sender<()> },
}

/// What a bot does in answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotAction {
    /// A message from the bot.
    Reply(String),
    /// The bot's reaction to the command's message.
    React(String),
}
