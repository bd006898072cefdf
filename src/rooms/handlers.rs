//! What each client command does to a room. Every handler validates, changes the actor's state
//! and the store together, and stages what clients should see; it never waits.

use std::time::{Duration, Instant};

use super::actor::{Effect, RoomActor, Subscriber};
use super::{Action, Caller, Request, RoomError};
use crate::clock::now_ms;
use crate::ids::{Seq, Username};
use crate::protocol::{LimitsView, MemberView, RoomView, ServerFrame};
use crate::sockets::outbox::{ConnHandle, ConnId};
use crate::store::rooms::{BanRecord, Event, Item, MemberRecord, Page};

/// Items in `joined` without `since`, and at most with it.
const JOIN_RECENT: usize = 50;
const JOIN_SINCE_MAX: usize = 500;
pub const HISTORY_DEFAULT: usize = 50;
pub const HISTORY_MAX: usize = 200;
pub(super) const EMOJI_MAX_CHARS: usize = 16;

type Outcome = Result<(), RoomError>;

impl RoomActor {
    pub(super) fn handle_client(&mut self, mut request: Request, action: Action) {
        let slot = request.answer_slot.take();
        let outcome = match action {
            Action::Join { since } => self.join(&request, since),
            Action::Leave => self.leave(&request),
            Action::Send { text, reply_to } => self.send(&request, &text, reply_to),
            Action::Edit { seq, text } => self.edit(&request, seq, &text),
            Action::Delete { seq } => self.delete(&request, seq),
            Action::Read { seq } => self.read(&request, seq),
            Action::History { before, limit } => self.history(&request, before, limit),
            Action::React { seq, emoji, on } => self.react(&request, seq, &emoji, on),
            Action::Typing => self.typing(&request),
            Action::Kick { user } => self.kick(&request, &user),
            Action::Unban { user } => self.unban(&request, &user),
            Action::TransferHost { user } => self.transfer_host(&request, &user),
        };
        if let Err(error) = outcome {
            let message = error.public_message();
            let frame = ServerFrame::Error {
                reference: request.reference.as_deref(),
                code: error.code(),
                message: &message,
            }
            .encode();
            self.staged.push(Effect::Reply {
                conn: request.conn,
                frame,
            });
        }
        // Staged after the answer, so freed once the answer is in the socket's queue.
        if let Some(slot) = slot {
            self.staged.push(Effect::FreeSlot(slot));
        }
    }

    fn join(&mut self, req: &Request, since: Option<Seq>) -> Outcome {
        let caller = &req.caller;
        if self.bans.contains_key(&caller.id) {
            return Err(RoomError::Banned);
        }
        // The past as it stands before this join: the joiner's own join item follows `joined`.
        let mut page = match since {
            Some(since) => self
                .ctx
                .store
                .items_after(&self.code, since, JOIN_SINCE_MAX)?,
            None => self.ctx.store.items_before(&self.code, None, JOIN_RECENT)?,
        };
        let keep = if since.is_some() {
            Keep::Oldest
        } else {
            Keep::Newest
        };
        fit_page(&mut page, self.ctx.config.max_page_bytes, keep);
        let mut items = Vec::new();
        if !self.members.contains_key(&caller.id) {
            let takes_over = self.members.is_empty();
            // The join item and, when the joiner takes over, the host change: read already.
            let own_items = if takes_over { 2 } else { 1 };
            let member = MemberRecord {
                username: caller.username.clone(),
                display_name: caller.display_name.clone(),
                since: self.next_seq,
                joined_at: now_ms(),
                read_seq: Some(Seq::new(self.next_seq.get() + own_items - 1)),
                notify: None,
            };
            self.ctx.store.put_member(&self.code, caller.id, &member)?;
            self.members.insert(caller.id, member);
            items.push(self.append(|seq, id, ts| {
                Item::system(seq, id, ts, Event::Join, &caller.username, None)
            })?);
            if takes_over {
                let from = self.room.host_username.clone();
                self.set_host(caller.id, &caller.username)?;
                items.push(self.append(|seq, id, ts| {
                    Item::host_transfer(seq, id, ts, &from, &caller.username, None)
                })?);
            }
        }
        let came_online = self.subscribe(&req.conn);
        let members = self.member_views();
        let mut room = RoomView::from(&self.room);
        if let Some(member) = self.members.get(&caller.id) {
            let standing = super::reads::standing(
                &self.ctx.store,
                &self.code,
                member,
                self.ctx.config.max_unread_counted,
            )?;
            room = room.with_standing(standing);
        }
        let commands = self.ctx.bots.commands();
        let frame = ServerFrame::Joined {
            reference: req.reference.as_deref(),
            room: &room,
            members: &members,
            messages: &page.items,
            more: page.more,
            limits: LimitsView {
                max_text_chars: self.ctx.config.max_text_chars,
            },
            commands: &commands,
        }
        .encode();
        self.confirm(req, frame);
        for item in &items {
            self.publish_item(item);
        }
        if came_online {
            self.publish_presence(&caller.username, true, caller.id);
        }
        Ok(())
    }

    fn leave(&mut self, req: &Request) -> Outcome {
        let caller = &req.caller;
        if self.members.remove(&caller.id).is_none() {
            return Err(RoomError::NotMember);
        }
        self.ctx.store.remove_member(&self.code, caller.id)?;
        let was_online = self.drop_user_sockets(caller.id);
        let item = self.append(|seq, id, ts| {
            Item::system(seq, id, ts, Event::Leave, &caller.username, None)
        })?;
        self.publish_item(&item);
        if was_online {
            self.publish_presence(&caller.username, false, caller.id);
        }
        if self.room.host == caller.id {
            self.succeed_host()?;
        }
        self.ok(req);
        Ok(())
    }

    fn send(&mut self, req: &Request, text: &str, reply_to: Option<Seq>) -> Outcome {
        self.require_member(&req.caller)?;
        let text = self.checked_text(text)?;
        if let Some(seq) = reply_to {
            if seq == Seq::ZERO || seq >= self.next_seq {
                return Err(RoomError::BadRequest(format!(
                    "this room has no item {seq} to reply to"
                )));
            }
        }
        if let Some(command) = crate::bots::command::parse(text) {
            return self.command(req, text, command);
        }
        let author = req.caller.username.as_str();
        let mentions = self.mentioned(text);
        let item = self.append(|seq, id, ts| Item {
            reply_to,
            mentions,
            ..Item::chat(seq, id, ts, author, text.to_string())
        })?;
        self.posted(req, &item);
        Ok(())
    }

    /// A message someone posted is stored: ack it to the sender and show it to the room.
    pub(super) fn posted(&mut self, req: &Request, item: &Item) {
        let ack = ServerFrame::Ack {
            reference: req.reference.as_deref(),
            room: &self.code,
            seq: item.seq,
            id: item.id,
            ts: item.ts,
        }
        .encode();
        self.confirm(req, ack);
        self.publish_item(item);
        metrics::counter!("hearth_messages_total").increment(1);
    }

    fn history(&mut self, req: &Request, before: Option<Seq>, limit: Option<u32>) -> Outcome {
        self.require_member(&req.caller)?;
        let limit = history_limit(limit)?;
        let mut page = self.ctx.store.items_before(&self.code, before, limit)?;
        fit_page(&mut page, self.ctx.config.max_page_bytes, Keep::Newest);
        let frame = ServerFrame::History {
            reference: req.reference.as_deref(),
            room: &self.code,
            messages: &page.items,
            more: page.more,
        }
        .encode();
        self.reply(&req.conn, frame);
        Ok(())
    }

    fn react(&mut self, req: &Request, seq: Seq, emoji: &str, on: bool) -> Outcome {
        self.require_member(&req.caller)?;
        if !valid_emoji(emoji) {
            return Err(RoomError::BadRequest(format!(
                "a reaction is one emoji (at most {EMOJI_MAX_CHARS} characters)"
            )));
        }
        let mut item = self.existing_item(seq)?;
        if item.deleted {
            return Err(RoomError::BadRequest(format!(
                "item {seq} was deleted; nobody can react to it"
            )));
        }
        let user = req.caller.username.as_str();
        let changed = if on {
            let distinct = item.reactions_mut().len();
            let holders = item.reactions_mut().get(emoji);
            if holders.is_some_and(|h| h.iter().any(|u| u == user)) {
                false
            } else if holders.is_none() && distinct >= self.ctx.config.max_emoji_per_item {
                return Err(RoomError::BadRequest(format!(
                    "an item holds at most {} different emoji",
                    self.ctx.config.max_emoji_per_item
                )));
            } else {
                item.reactions_mut()
                    .entry(emoji.to_string())
                    .or_default()
                    .push(user.to_string());
                true
            }
        } else {
            match item.reactions_mut().get_mut(emoji) {
                Some(holders) if holders.iter().any(|u| u == user) => {
                    holders.retain(|u| u != user);
                    if holders.is_empty() {
                        item.reactions_mut().remove(emoji);
                    }
                    true
                }
                _ => false,
            }
        };
        if !changed {
            self.ok_now(req);
            return Ok(());
        }
        self.ctx.store.put_item(&self.code, &item)?;
        self.wrote = true;
        self.ok(req);
        let frame = ServerFrame::Reaction {
            room: &self.code,
            seq,
            emoji,
            user,
            on,
        }
        .encode();
        self.publish(frame);
        Ok(())
    }

    fn typing(&mut self, req: &Request) -> Outcome {
        let caller = &req.caller;
        self.require_member(caller)?;
        let throttle = Duration::from_millis(self.ctx.config.typing_throttle_ms);
        let now = Instant::now();
        let due = self
            .typing_last
            .get(&caller.id)
            .is_none_or(|last| now.duration_since(*last) >= throttle);
        if due {
            self.typing_last.insert(caller.id, now);
            let frame = ServerFrame::Typing {
                room: &self.code,
                user: &caller.username,
            }
            .encode();
            self.staged.push(Effect::Publish {
                frame,
                except_user: Some(caller.id),
            });
        }
        self.ok_now(req);
        Ok(())
    }

    fn kick(&mut self, req: &Request, target: &str) -> Outcome {
        self.require_host(&req.caller)?;
        let (target_id, target_name) = self.member_named(target)?;
        if target_id == req.caller.id {
            return Err(RoomError::BadRequest(
                "the host cannot kick themselves; leave instead".into(),
            ));
        }
        let by = req.caller.username.as_str();
        self.members.remove(&target_id);
        self.ctx.store.remove_member(&self.code, target_id)?;
        let ban = BanRecord {
            username: target_name.clone(),
            by: req.caller.username.clone(),
            at: now_ms(),
        };
        self.ctx.store.put_ban(&self.code, target_id, &ban)?;
        self.bans.insert(target_id, ban);
        let was_online = self.drop_user_sockets(target_id);
        let item = self
            .append(|seq, id, ts| Item::system(seq, id, ts, Event::Kick, &target_name, Some(by)))?;
        self.publish_item(&item);
        if was_online {
            self.publish_presence(&target_name, false, target_id);
        }
        let frame = ServerFrame::Kicked {
            room: &self.code,
            by,
        }
        .encode();
        self.staged.push(Effect::ToUser {
            user: target_id,
            frame,
            except: None,
        });
        self.ok(req);
        Ok(())
    }

    fn unban(&mut self, req: &Request, target: &str) -> Outcome {
        self.require_host(&req.caller)?;
        let target = target.trim().to_lowercase();
        let Some((&target_id, ban)) = self
            .bans
            .iter()
            .find(|(_, b)| b.username == target.as_str())
        else {
            return Err(RoomError::BadRequest(format!(
                "{target} is not banned here"
            )));
        };
        let name = ban.username.clone();
        self.ctx.store.remove_ban(&self.code, target_id)?;
        self.bans.remove(&target_id);
        let by = req.caller.username.as_str();
        let item =
            self.append(|seq, id, ts| Item::system(seq, id, ts, Event::Unban, &name, Some(by)))?;
        self.publish_item(&item);
        self.ok(req);
        Ok(())
    }

    fn transfer_host(&mut self, req: &Request, target: &str) -> Outcome {
        self.require_host(&req.caller)?;
        let (target_id, target_name) = self.member_named(target)?;
        if target_id == req.caller.id {
            return Err(RoomError::BadRequest("you are the host already".into()));
        }
        let from = req.caller.username.as_str();
        self.set_host(target_id, &target_name)?;
        let item = self.append(|seq, id, ts| {
            Item::host_transfer(seq, id, ts, from, &target_name, Some(from))
        })?;
        self.publish_item(&item);
        self.ok(req);
        Ok(())
    }

    /// A socket went away.
    pub(super) fn unsubscribe(&mut self, conn: ConnId, user: u64) {
        if self.subscribers.remove(&conn).is_none() {
            return;
        }
        if self.decrement_online(user) {
            if let Some(name) = self.members.get(&user).map(|m| m.username.clone()) {
                self.publish_presence(&name, false, user);
            }
        }
    }

    // ---- helpers ----

    /// Assigns the next seq to a new item, stores it, and marks the burst as writing.
    pub(super) fn append(
        &mut self,
        make: impl FnOnce(Seq, u64, u64) -> Item,
    ) -> Result<Item, RoomError> {
        let item = make(self.next_seq, self.ctx.store.next_id()?, now_ms());
        self.ctx.store.put_item(&self.code, &item)?;
        self.next_seq = self.next_seq.next();
        self.wrote = true;
        Ok(item)
    }

    fn set_host(&mut self, id: u64, username: &Username) -> Outcome {
        self.room.host = id;
        self.room.host_username = username.clone();
        self.ctx.store.put_room(&self.room)?;
        self.wrote = true;
        Ok(())
    }

    /// After the host left: the longest-standing member takes over, if anyone is left.
    fn succeed_host(&mut self) -> Outcome {
        let Some((&heir, member)) = self.members.iter().min_by_key(|(_, m)| m.since) else {
            return Ok(());
        };
        let heir_name = member.username.clone();
        let from = self.room.host_username.clone();
        self.set_host(heir, &heir_name)?;
        let item =
            self.append(|seq, id, ts| Item::host_transfer(seq, id, ts, &from, &heir_name, None))?;
        self.publish_item(&item);
        Ok(())
    }

    pub(super) fn require_member(&self, caller: &Caller) -> Outcome {
        if self.members.contains_key(&caller.id) {
            Ok(())
        } else {
            Err(RoomError::NotMember)
        }
    }

    fn require_host(&self, caller: &Caller) -> Outcome {
        if self.room.host == caller.id && self.members.contains_key(&caller.id) {
            Ok(())
        } else {
            Err(RoomError::NotHost)
        }
    }

    fn member_named(&self, name: &str) -> Result<(u64, Username), RoomError> {
        let name = name.trim().to_lowercase();
        self.members
            .iter()
            .find(|(_, m)| m.username == name.as_str())
            .map(|(id, m)| (*id, m.username.clone()))
            .ok_or_else(|| RoomError::BadRequest(format!("{name} is not a member of this room")))
    }

    /// Subscribes a socket; true if its user just came online.
    fn subscribe(&mut self, conn: &ConnHandle) -> bool {
        let subscriber = Subscriber {
            conn: conn.clone(),
            since_batch: self.current_batch(),
        };
        if self.subscribers.insert(conn.id(), subscriber).is_some() {
            return false;
        }
        let count = self.online.entry(conn.user()).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// True if the user just went offline.
    fn decrement_online(&mut self, user: u64) -> bool {
        match self.online.get_mut(&user) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                self.online.remove(&user);
                true
            }
            None => false,
        }
    }

    /// Unsubscribes every socket of a user who is no longer a member; true if they were online.
    fn drop_user_sockets(&mut self, user: u64) -> bool {
        self.subscribers.retain(|_, s| s.conn.user() != user);
        self.online.remove(&user).is_some()
    }

    fn member_views(&self) -> Vec<MemberView> {
        let mut members: Vec<_> = self.members.iter().collect();
        members.sort_by_key(|(_, m)| m.since);
        members
            .into_iter()
            .map(|(id, m)| MemberView {
                username: m.username.clone(),
                display_name: m.display_name.clone(),
                online: self.online.contains_key(id),
                host: *id == self.room.host,
            })
            .collect()
    }

    pub(super) fn publish_item(&mut self, item: &crate::store::rooms::Item) {
        let frame = ServerFrame::Message {
            room: &self.code,
            item,
        }
        .encode();
        self.publish(frame);
    }

    /// Stages `frame` for every subscribed socket, once the batch is durable.
    pub(super) fn publish(&mut self, frame: axum::extract::ws::Utf8Bytes) {
        self.staged.push(Effect::Publish {
            frame,
            except_user: None,
        });
    }

    fn publish_presence(&mut self, username: &str, online: bool, user: u64) {
        let frame = ServerFrame::Presence {
            room: &self.code,
            user: username,
            online,
        }
        .encode();
        self.staged.push(Effect::Publish {
            frame,
            except_user: Some(user),
        });
    }

    pub(super) fn confirm(&mut self, req: &Request, frame: axum::extract::ws::Utf8Bytes) {
        self.staged.push(Effect::Confirm {
            conn: req.conn.clone(),
            frame,
            reference: req.reference.clone(),
        });
    }

    /// Confirms a write with `ok`; a frame without `ref` asked for no answer.
    pub(super) fn ok(&mut self, req: &Request) {
        let Some(reference) = req.reference.as_deref() else {
            return;
        };
        let frame = ServerFrame::Ok {
            reference: Some(reference),
        }
        .encode();
        self.confirm(req, frame);
    }

    /// Answers `ok` for a frame that changed nothing durable.
    pub(super) fn ok_now(&mut self, req: &Request) {
        if let Some(reference) = req.reference.as_deref() {
            let frame = ServerFrame::Ok {
                reference: Some(reference),
            }
            .encode();
            self.reply(&req.conn, frame);
        }
    }

    pub(super) fn reply(&mut self, conn: &ConnHandle, frame: axum::extract::ws::Utf8Bytes) {
        self.staged.push(Effect::Reply {
            conn: conn.clone(),
            frame,
        });
    }
}

/// A reaction is one real emoji ([`crate::names::is_emoji`]) of at most [`EMOJI_MAX_CHARS`]
/// characters: not text, not invisible or direction-changing characters.
pub(super) fn valid_emoji(emoji: &str) -> bool {
    emoji.chars().count() <= EMOJI_MAX_CHARS && crate::names::is_emoji(emoji)
}

/// Which end of a page to keep when it is over its byte bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The oldest items: a join with `since` pages forward.
    Oldest,
    /// The newest items: a join without `since` and history page backward.
    Newest,
}

/// Trims `page` to at most `max_bytes` of serialized items (`rooms.max_page_bytes`), keeping
/// `keep`'s end, and sets `more` if it dropped any: the client asks again from where the page
/// ends. The first item is always kept, however large, so paging always moves on. Without
/// this a 46-byte join could ask for 500 items of 24 KB each: 12 MB in one answer.
pub fn fit_page(page: &mut Page, max_bytes: usize, keep: Keep) {
    let mut total = 0usize;
    let mut fits = 0;
    let mut sizes: Box<dyn Iterator<Item = &Item>> = match keep {
        Keep::Oldest => Box::new(page.items.iter()),
        Keep::Newest => Box::new(page.items.iter().rev()),
    };
    for item in &mut sizes {
        // The item's JSON and the comma between items.
        total += json_len(item) + 1;
        if fits > 0 && total > max_bytes {
            break;
        }
        fits += 1;
    }
    drop(sizes);
    if fits == page.items.len() {
        return;
    }
    match keep {
        Keep::Oldest => page.items.truncate(fits),
        Keep::Newest => {
            page.items.drain(..page.items.len() - fits);
        }
    }
    page.more = true;
}

/// The length of `item`'s JSON, counted without building it.
fn json_len(item: &Item) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and an item always serializes.
    let _ = serde_json::to_writer(&mut count, item);
    count.0
}

/// The page size for a history request: default 50, capped at 200, 0 refused.
pub fn history_limit(limit: Option<u32>) -> Result<usize, RoomError> {
    match limit {
        None => Ok(HISTORY_DEFAULT),
        Some(0) => Err(RoomError::BadRequest("limit must be at least 1".into())),
        Some(n) => Ok((n as usize).min(HISTORY_MAX)),
    }
}
