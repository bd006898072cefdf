//! Rooms: one actor task per active room owns that room's state; the registry starts, finds and
//! retires them.
//!
//! - [`registry`]: the only shared map, from code to a running actor's inbox.
//! - [`actor`]: the actor loop: batching, durability (group commit) before effects, retirement.
//! - [`handlers`]: what each command does to a room.
//! - [`edits`]: editing and deleting what was said.
//! - [`mentions`]: which members a text names as `@username`.
//! - [`reads`]: read positions and notification levels, and a member's standing in a room.
//! - [`commands`]: slash-commands: /help, queuing a plugin's command, posting a bot's answer.
//! - [`create`]: creating a room, the one write that happens outside an actor.
//! - `harness` (tests and the fuzz targets only): the room logic driven without sockets or
//!   tasks, with the rooms' invariants checked after every step.
//!
//! An actor's inputs ([`RoomCommand`]) and outputs (frames pushed to [`ConnHandle`]s) are plain
//! messages, so moving rooms across machines would be a change of transport.

mod actor;
mod commands;
pub mod create;
mod edits;
mod handlers;
#[cfg(any(test, feature = "harness"))]
#[doc(hidden)]
pub mod harness;
mod mentions;
pub mod reads;
pub mod registry;

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{oneshot, OwnedSemaphorePermit};

pub use crate::bots::BotAction;
use crate::bots::PostError;
use crate::ids::Username;
pub use crate::protocol::Action;
use crate::protocol::ErrorCode;
use crate::sockets::outbox::{ConnHandle, ConnId};
use crate::store::jobs::JobRecord;
use crate::store::StoreError;

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
    #[error("{0}")]
    NotAuthor(&'static str),
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
    pub fn code(&self) -> ErrorCode {
        match self {
            RoomError::UnknownRoom => ErrorCode::UnknownRoom,
            RoomError::NotMember => ErrorCode::NotMember,
            RoomError::NotHost => ErrorCode::NotHost,
            RoomError::NotAuthor(_) => ErrorCode::NotAuthor,
            RoomError::Banned => ErrorCode::Banned,
            RoomError::TooLong(_) | RoomError::Store(StoreError::TooLarge { .. }) => {
                ErrorCode::TooLong
            }
            RoomError::InvalidName(_) => ErrorCode::InvalidName,
            RoomError::BadRequest(_) => ErrorCode::BadRequest,
            RoomError::UnknownCommand(_) => ErrorCode::UnknownCommand,
            RoomError::RateLimited(_) => ErrorCode::RateLimited,
            RoomError::ShuttingDown | RoomError::Store(_) | RoomError::Internal(_) => {
                ErrorCode::Internal
            }
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
    pub username: Username,
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
    /// A member's notification level (for HTTP); `done` hears once it is durable.
    Notify {
        user: u64,
        level: crate::store::rooms::NotifyLevel,
        done: oneshot::Sender<Result<bool, RoomError>>,
    },
    /// Finish pending writes, deliver their effects, and stop.
    Shutdown { done: oneshot::Sender<()> },
}

/// Bots post their answers through the registry, which hands them to the room.
impl crate::bots::Answers for Arc<Registry> {
    fn post(&self, job: JobRecord, actions: Vec<BotAction>) -> crate::bots::Posting<'_> {
        Box::pin(async move {
            let (done, answered) = oneshot::channel();
            let room = job.room.clone();
            let command = RoomCommand::BotAnswer {
                job: Box::new(job),
                actions,
                done,
            };
            let outcome = match self.send(&room, command).await {
                Ok(()) => answered
                    .await
                    .unwrap_or(Err(RoomError::Internal("the room stopped".into()))),
                Err(error) => Err(error),
            };
            outcome.map_err(|error| match error {
                RoomError::UnknownRoom => PostError::RoomGone,
                other => PostError::Failed(other.to_string()),
            })
        })
    }
}
