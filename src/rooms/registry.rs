//! The registry: the only shared map, from room code to the inbox of its running actor.
//!
//! An actor is started on first use (loaded from the store) and retires itself after
//! `rooms.idle_actor_secs` without subscribers. Retiring closes the inbox under the registry's
//! lock; commands that slipped in before the close are handed back to the actor with a fresh
//! inbox, so nothing sent to a room is ever dropped and two actors never own one room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{self, error::SendError};
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use super::actor::RoomActor;
use super::{RoomCommand, RoomError};
use crate::bots::Directory;
use crate::config::RoomsConfig;
use crate::ids::RoomCode;
use crate::sockets::Connections;
use crate::store::Store;

/// What every actor needs from the rest of the server.
pub struct RoomContext {
    pub store: Store,
    /// Which slash-commands the loaded bot plugins serve, and their queues.
    pub bots: Arc<Directory>,
    pub config: RoomsConfig,
    pub connections: Arc<Connections>,
}

pub struct Registry {
    rooms: Mutex<HashMap<RoomCode, mpsc::Sender<RoomCommand>>>,
    ctx: Arc<RoomContext>,
    stopping: AtomicBool,
    actors: TaskTracker,
}

/// What a retiring actor learns from the registry.
pub(super) enum Retirement {
    /// It is out of the map; it may stop.
    Stop,
    /// Commands arrived meanwhile: it stays, with a new inbox, and handles these first.
    Continue(mpsc::Receiver<RoomCommand>, Vec<RoomCommand>),
}

impl Registry {
    pub fn new(ctx: RoomContext) -> Arc<Registry> {
        Arc::new(Registry {
            rooms: Mutex::new(HashMap::new()),
            ctx: Arc::new(ctx),
            stopping: AtomicBool::new(false),
            actors: TaskTracker::new(),
        })
    }

    /// Sends a command to a room, starting its actor if needed.
    /// Waits while the room's inbox is full: backpressure on this sender only.
    pub async fn send(
        self: &Arc<Self>,
        code: &RoomCode,
        command: RoomCommand,
    ) -> Result<(), RoomError> {
        let mut command = command;
        // An inbox can close between lookup and send when its actor retires; the retry finds
        // the actor's next inbox or starts a new one.
        for _ in 0..3 {
            let inbox = self.inbox(code)?;
            match inbox.send(command).await {
                Ok(()) => return Ok(()),
                Err(SendError(back)) => command = back,
            }
        }
        Err(RoomError::Internal(format!(
            "room {code} did not accept a command"
        )))
    }

    /// Sends only if the room's actor is running (used when a socket goes away).
    pub async fn send_if_running(&self, code: &RoomCode, command: RoomCommand) {
        let inbox = self.lock().get(code).cloned();
        if let Some(inbox) = inbox {
            let _ = inbox.send(command).await;
        }
    }

    /// The running actor's inbox, if any; never starts one.
    pub fn running(&self, code: &RoomCode) -> Option<mpsc::Sender<RoomCommand>> {
        self.lock().get(code).filter(|tx| !tx.is_closed()).cloned()
    }

    fn inbox(self: &Arc<Self>, code: &RoomCode) -> Result<mpsc::Sender<RoomCommand>, RoomError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(RoomError::ShuttingDown);
        }
        let mut rooms = self.lock();
        if let Some(tx) = rooms.get(code).filter(|tx| !tx.is_closed()) {
            return Ok(tx.clone());
        }
        // Loading under the lock means no other actor for this room can run meanwhile, so the
        // state read here is the latest.
        let actor = RoomActor::load(self.ctx.clone(), code)?.ok_or(RoomError::UnknownRoom)?;
        let (tx, rx) = mpsc::channel(self.ctx.config.inbox_depth);
        rooms.insert(code.clone(), tx.clone());
        metrics::gauge!("hearth_rooms_active").increment(1.0);
        self.actors.spawn(actor.run(rx, self.clone()));
        Ok(tx)
    }

    /// Called by an idle actor that wants to stop.
    pub(super) fn retire(
        &self,
        code: &RoomCode,
        inbox: &mut mpsc::Receiver<RoomCommand>,
    ) -> Retirement {
        let mut rooms = self.lock();
        inbox.close();
        let mut late = Vec::new();
        while let Ok(command) = inbox.try_recv() {
            late.push(command);
        }
        if late.is_empty() {
            rooms.remove(code);
            metrics::gauge!("hearth_rooms_active").decrement(1.0);
            return Retirement::Stop;
        }
        let (tx, rx) = mpsc::channel(self.ctx.config.inbox_depth);
        rooms.insert(code.clone(), tx);
        Retirement::Continue(rx, late)
    }

    /// Called by an actor that stops for good (shutdown).
    pub(super) fn forget(&self, code: &RoomCode) {
        if self.lock().remove(code).is_some() {
            metrics::gauge!("hearth_rooms_active").decrement(1.0);
        }
    }

    /// Stops starting actors, lets each running one finish its pending writes and deliver their
    /// effects, and waits for all of them to end.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        let inboxes: Vec<_> = self.lock().values().cloned().collect();
        for inbox in inboxes {
            let (done, wait) = oneshot::channel();
            if inbox.send(RoomCommand::Shutdown { done }).await.is_ok() {
                let _ = wait.await;
            }
        }
        self.actors.close();
        self.actors.wait().await;
    }

    pub fn context(&self) -> &RoomContext {
        &self.ctx
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomCode, mpsc::Sender<RoomCommand>>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }
}
