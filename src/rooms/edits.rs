//! Changing what was said: `edit` (the author, on chat items) and `delete` (the author, or the
//! room's host, on chat and bot items). Both write before their `ok` and reach every subscriber
//! in room order, like `send`. A delete leaves a tombstone in the item's place, so seqs stay
//! gap-free and a client holding the seq learns it is gone.

use super::actor::RoomActor;
use super::mentions::mentions;
use super::{Request, RoomError};
use crate::clock::now_ms;
use crate::ids::Seq;
use crate::protocol::ServerFrame;
use crate::store::rooms::{Item, ItemKind};

type Outcome = Result<(), RoomError>;

impl RoomActor {
    /// The item at `seq`, or `bad_request` naming the seq.
    pub(super) fn existing_item(&self, seq: Seq) -> Result<Item, RoomError> {
        self.ctx
            .store
            .item(&self.code, seq)?
            .ok_or_else(|| RoomError::BadRequest(format!("this room has no item {seq}")))
    }

    /// A message's text as `send` takes it: trimmed, not empty, within `rooms.max_text_chars`.
    pub(super) fn checked_text<'t>(&self, text: &'t str) -> Result<&'t str, RoomError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(RoomError::BadRequest("a message needs some text".into()));
        }
        // 0 turns the limit off (PROTOCOL.md: every limit's key takes 0 to disable it).
        let max = self.ctx.config.max_text_chars;
        if max > 0 && text.chars().count() > max {
            return Err(RoomError::TooLong(max));
        }
        Ok(text)
    }

    /// The members `text` names.
    pub(super) fn mentioned(&self, text: &str) -> Vec<crate::ids::Username> {
        mentions(text, self.members.values().map(|m| &m.username))
    }

    pub(super) fn edit(&mut self, req: &Request, seq: Seq, text: &str) -> Outcome {
        self.require_member(&req.caller)?;
        let text = self.checked_text(text)?;
        let mut item = self.existing_item(seq)?;
        if item.deleted {
            return Err(RoomError::BadRequest(format!("item {seq} was deleted")));
        }
        if item.kind != ItemKind::Chat {
            return Err(RoomError::BadRequest(
                "only chat messages can be edited".into(),
            ));
        }
        if item.author.as_deref() != Some(req.caller.username.as_str()) {
            return Err(RoomError::NotAuthor("only its author can edit a message"));
        }
        if item.text.as_deref() == Some(text) {
            self.ok_now(req);
            return Ok(());
        }
        let edited_at = now_ms();
        item.text = Some(text.to_string());
        item.mentions = self.mentioned(text);
        item.edited_at = Some(edited_at);
        self.ctx.store.replace_item(&self.code, &item)?;
        self.wrote = true;
        self.ok(req);
        let frame = ServerFrame::Edited {
            room: &self.code,
            seq,
            text,
            edited_at,
            mentions: &item.mentions,
        }
        .encode();
        self.publish(frame);
        Ok(())
    }

    pub(super) fn delete(&mut self, req: &Request, seq: Seq) -> Outcome {
        self.require_member(&req.caller)?;
        let mut item = self.existing_item(seq)?;
        if item.kind == ItemKind::System {
            return Err(RoomError::BadRequest(
                "only chat messages and bot answers can be deleted".into(),
            ));
        }
        let by = req.caller.username.as_str();
        let own = item.author.as_deref() == Some(by);
        if !own && self.room.host != req.caller.id {
            return Err(RoomError::NotAuthor(
                "only its author or the room's host can delete a message",
            ));
        }
        if item.deleted {
            self.ok_now(req);
            return Ok(());
        }
        item.erase();
        self.ctx.store.replace_item(&self.code, &item)?;
        self.wrote = true;
        self.ok(req);
        let frame = ServerFrame::Deleted {
            room: &self.code,
            seq,
            by,
        }
        .encode();
        self.publish(frame);
        Ok(())
    }
}
