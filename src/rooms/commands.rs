//! Slash-commands in a room: /help answers the caller alone; a plugin's command is stored with
//! its job, acked and shown to the room at once; the bot's answer arrives later as
//! [`RoomCommand::BotAnswer`](super::RoomCommand::BotAnswer) and is posted exactly once.

use tokio::sync::oneshot;

use super::actor::{Effect, RoomActor};
use super::handlers::valid_emoji;
use super::{BotAction, Request, RoomError};
use crate::bots::command::SlashCommand;
use crate::bots::directory::Route;
use crate::clock::now_ms;
use crate::protocol::ServerFrame;
use crate::store::jobs::{JobRecord, JobState};
use crate::store::rooms::Item;

impl RoomActor {
    /// A message that is a command (the caller is a member; `text` is trimmed and not too long).
    pub(super) fn command(
        &mut self,
        req: &Request,
        text: &str,
        command: SlashCommand,
    ) -> Result<(), RoomError> {
        let plugin = match self.ctx.bots.route(&command.name) {
            Route::Help => {
                let help = self.ctx.bots.help_text();
                let frame = ServerFrame::Notice {
                    reference: req.reference.as_deref(),
                    room: &self.code,
                    text: &help,
                }
                .encode();
                self.reply(&req.conn, frame);
                return Ok(());
            }
            Route::Unknown => return Err(RoomError::UnknownCommand(command.name)),
            Route::Plugin(plugin) => plugin.name().to_string(),
        };
        self.ctx
            .bots
            .reserve(&plugin)
            .map_err(|full| RoomError::RateLimited(full.to_string()))?;
        match self.store_command(req, text, command, &plugin) {
            Ok(job) => {
                self.staged.push(Effect::Enqueue { plugin, job });
                Ok(())
            }
            Err(error) => {
                self.ctx.bots.release(&plugin);
                Err(error)
            }
        }
    }

    /// Stores the command's message with its job, acks and publishes it; answers the job's id.
    fn store_command(
        &mut self,
        req: &Request,
        text: &str,
        command: SlashCommand,
        plugin: &str,
    ) -> Result<u64, RoomError> {
        let store = &self.ctx.store;
        let item = Item::chat(
            self.next_seq,
            store.next_id()?,
            now_ms(),
            &req.caller.username,
            text.to_string(),
        );
        let job = JobRecord {
            id: store.next_id()?,
            plugin: plugin.to_string(),
            room: self.code.clone(),
            caller: req.caller.username.clone(),
            command: command.name,
            args: command.args,
            seq: item.seq,
            ts: item.ts,
            state: JobState::Pending,
            attempts: 0,
            not_before: 0,
            lease_until: 0,
            lease_owner: 0,
            last_error: None,
            finished_at: 0,
        };
        store.put_item_with_job(&self.code, &item, &job)?;
        self.next_seq = self.next_seq.next();
        self.wrote = true;
        self.posted(req, &item);
        metrics::counter!("hearth_bot_commands_total").increment(1);
        Ok(job.id)
    }

    /// Posts a bot's answer and ends its job in one write; a job answered already is left be.
    pub(super) fn bot_answer(
        &mut self,
        job: JobRecord,
        actions: Vec<BotAction>,
        done: oneshot::Sender<Result<bool, RoomError>>,
    ) {
        match self.post_answer(&job, actions) {
            Ok(posted) => self.staged.push(Effect::Answered { done, posted }),
            Err(error) => {
                tracing::error!(room = %self.code, job = job.id, %error, "cannot post a bot's answer");
                let _ = done.send(Err(error));
            }
        }
    }

    fn post_answer(&mut self, job: &JobRecord, actions: Vec<BotAction>) -> Result<bool, RoomError> {
        let bot = job.plugin.as_str();
        let max_chars = self.ctx.config.max_text_chars;
        let mut command_item = self.ctx.store.item(&self.code, job.seq)?;
        let mut reactions = Vec::new();
        let mut items = Vec::new();
        let mut seq = self.next_seq;
        for action in actions {
            match action {
                BotAction::Reply(text) => {
                    let text = text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    let text = if max_chars > 0 && text.chars().count() > max_chars {
                        let cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
                        format!("{cut}…")
                    } else {
                        text.to_string()
                    };
                    let id = self.ctx.store.next_id()?;
                    let mut item = Item::bot(seq, id, now_ms(), bot, text, job.seq);
                    item.mentions = self.mentioned(item.text.as_deref().unwrap_or_default());
                    item.shorten_to_fit();
                    items.push(item);
                    seq = seq.next();
                }
                BotAction::React(emoji) => {
                    let Some(item) = command_item.as_mut().filter(|item| !item.deleted) else {
                        continue;
                    };
                    if !valid_emoji(&emoji) {
                        tracing::debug!(plugin = bot, "dropped a reaction that is not an emoji");
                        continue;
                    }
                    let holders = item.reactions_mut().entry(emoji.clone()).or_default();
                    if !holders.iter().any(|u| u == bot) {
                        holders.push(bot.to_string());
                        reactions.push(emoji);
                    }
                }
            }
        }
        let updated = command_item.filter(|_| !reactions.is_empty());
        if !self
            .ctx
            .store
            .finish_job(&self.code, &items, updated.as_ref(), job)?
        {
            return Ok(false);
        }
        self.next_seq = seq;
        self.wrote = true;
        for item in &items {
            self.publish_item(item);
        }
        for emoji in &reactions {
            let frame = ServerFrame::Reaction {
                room: &self.code,
                seq: job.seq,
                emoji,
                user: bot,
                on: true,
            }
            .encode();
            self.publish(frame);
        }
        Ok(true)
    }
}
