//! Read positions and notification levels: per member, kept with the membership (so every
//! device of the member agrees, and a backup carries them), written only by the room's actor.

use tokio::sync::oneshot;

use super::actor::{Effect, RoomActor};
use super::{Request, RoomError};
use crate::ids::{RoomCode, Seq};
use crate::protocol::{ServerFrame, Standing};
use crate::store::rooms::{MemberRecord, NotifyLevel};
use crate::store::{Store, StoreError};

/// Where `member` stands in the room `code`: counted from the store, examining at most
/// `max_counted` items after the read position.
pub fn standing(
    store: &Store,
    code: &RoomCode,
    member: &MemberRecord,
    max_counted: usize,
) -> Result<Standing, StoreError> {
    let last_seq = store.last_seq(code)?;
    // A membership older than read positions has read everything so far.
    let read_seq = member.read_seq.unwrap_or(last_seq).min(last_seq);
    let (mut unread, mut mentions) = (0, 0);
    if read_seq < last_seq {
        for item in store.items_after(code, read_seq, max_counted)?.items {
            // As PROTOCOL.md counts: every item not authored by the member, system items too
            // (the web UI counts messages only where it has the items, see assets/js/core.js).
            if item.deleted || item.author.as_deref() == Some(member.username.as_str()) {
                continue;
            }
            unread += 1;
            mentions += usize::from(item.mentions.contains(&member.username));
        }
    }
    Ok(Standing {
        last_seq,
        read_seq,
        unread,
        mentions,
        notify: member.notify.unwrap_or(NotifyLevel::ROOM_DEFAULT),
    })
}

impl RoomActor {
    /// The caller has read up to `seq` (at most the room's last): stored if it moves the
    /// position on, then told to the caller's other sockets.
    pub(super) fn read(&mut self, req: &Request, seq: Seq) -> Result<(), RoomError> {
        self.require_member(&req.caller)?;
        let seq = seq.min(self.next_seq.prev());
        let Some(member) = self.members.get_mut(&req.caller.id) else {
            return Err(RoomError::NotMember);
        };
        if member.read_seq.is_some_and(|read| read >= seq) {
            self.ok_now(req);
            return Ok(());
        }
        member.read_seq = Some(seq);
        let member = member.clone();
        self.ctx
            .store
            .put_member(&self.code, req.caller.id, &member)?;
        self.wrote = true;
        self.ok(req);
        let frame = ServerFrame::Read {
            room: &self.code,
            seq,
        }
        .encode();
        self.staged.push(Effect::ToUser {
            user: req.caller.id,
            frame,
            except: Some(req.conn.id()),
        });
        Ok(())
    }

    /// A member chooses what they are notified of; `done` hears once it is durable.
    pub(super) fn set_notify(
        &mut self,
        user: u64,
        level: NotifyLevel,
        done: oneshot::Sender<Result<bool, RoomError>>,
    ) {
        let Some(member) = self.members.get_mut(&user) else {
            let _ = done.send(Err(RoomError::NotMember));
            return;
        };
        if member.notify == Some(level) {
            let _ = done.send(Ok(true));
            return;
        }
        member.notify = Some(level);
        let member = member.clone();
        if let Err(error) = self.ctx.store.put_member(&self.code, user, &member) {
            let _ = done.send(Err(error.into()));
            return;
        }
        self.wrote = true;
        self.staged.push(Effect::Answered { done, posted: true });
    }
}
