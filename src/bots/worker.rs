//! One worker per plugin: it takes the plugin's jobs from the durable queue, runs each in a
//! fresh instance (at most `bots.concurrency` calls at once), retries a failed try with
//! backoff, and hands the answer to the room. After its last try a job is answered with a short
//! failure message from the bot. A plugin whose calls fail `bots.pause_after_failures` times in
//! a row is paused for `bots.pause_secs`; its commands wait.
//!
//! Jobs reach the worker from the room that stored them (by id, once durable) and from a scan
//! of the queue when the worker starts, which also takes back jobs left running by an earlier
//! run of the server (their lease names that run).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::directory::{Directory, LoadedPlugin};
use super::runtime::{Action, CallError, Invocation, Runtime};
use super::{Answers, BotAction, PostError};
use crate::clock::now_ms;
use crate::config::BotsConfig;
use crate::store::jobs::{JobRecord, JobState};
use crate::store::Store;

/// What a worker needs, shared with the tasks running its jobs.
pub struct WorkerContext {
    pub runtime: Arc<Runtime>,
    pub store: Store,
    pub directory: Arc<Directory>,
    /// Where answers go (the rooms).
    pub answers: Arc<dyn Answers>,
    pub config: BotsConfig,
    /// This run of the server, written into the leases it takes.
    pub boot: u64,
}

/// How one try of a job ended.
enum TryOutcome {
    /// Answered (or found answered already): the job is over.
    Finished { failed_for_good: bool },
    /// The call failed; the job waits until `not_before` for its next try.
    Retry { not_before: u64 },
    /// The plugin is gone or the room could not take the answer; try again soon.
    Deferred,
}

pub struct Worker {
    plugin: String,
    ctx: Arc<WorkerContext>,
    inbox: mpsc::UnboundedReceiver<u64>,
    stop: CancellationToken,
    /// Job id -> unix ms before which it is not tried.
    due: BTreeMap<u64, u64>,
    /// The jobs being tried now, by the task trying each. A job can reach the worker twice
    /// (the start's scan of the queue finds it, and the room that stored it sends its id); a
    /// second try while the first runs would call the plugin twice for one command.
    trying: HashMap<tokio::task::Id, u64>,
    failures_in_a_row: u32,
    paused_until: u64,
    /// One permit per call that may run at once. A try holds its permit only while the plugin
    /// runs, not while its answer waits for the room's durable commit: the instance is gone
    /// by then, and holding the slot through the commit made fsync latency, not CPU, the
    /// bound on a plugin's throughput (docs/performance.md, "Bots").
    calls: Arc<Semaphore>,
    /// Signalled when a try gives its permit back before it ends.
    call_ended: Arc<Notify>,
}

impl Worker {
    /// Attaches a worker to the plugin's queue; run it with [`Worker::run`].
    pub fn attach(plugin: &str, ctx: Arc<WorkerContext>, stop: CancellationToken) -> Worker {
        let (tx, inbox) = mpsc::unbounded_channel();
        let concurrency = ctx.config.concurrency;
        ctx.directory.attach_worker(plugin, tx);
        Worker {
            plugin: plugin.to_string(),
            ctx,
            inbox,
            stop,
            due: BTreeMap::new(),
            trying: HashMap::new(),
            failures_in_a_row: 0,
            paused_until: 0,
            calls: Arc::new(Semaphore::new(concurrency)),
            call_ended: Arc::new(Notify::new()),
        }
    }

    pub async fn run(mut self) {
        if let Err(error) = self.scan() {
            tracing::error!(plugin = %self.plugin, %error, "cannot read the bot queue");
        }
        // Dropped when the worker stops, which abandons the calls in progress.
        let mut running: JoinSet<(u64, TryOutcome)> = JoinSet::new();
        let mut last_prune = 0;
        loop {
            let now = now_ms();
            if now.saturating_sub(last_prune) > 60_000 {
                last_prune = now;
                self.prune();
            }
            if self.paused_until <= now {
                self.start_due(now, &mut running);
            }
            let wake_at = self.next_wake(now);
            tokio::select! {
                () = self.stop.cancelled() => break,
                Some(job) = self.inbox.recv() => {
                    if !self.trying.values().any(|&tried| tried == job) {
                        self.due.entry(job).or_insert(0);
                    }
                }
                () = self.call_ended.notified() => {}
                Some(finished) = running.join_next_with_id(), if !running.is_empty() => match finished {
                    Ok((task, (job, outcome))) => {
                        self.trying.remove(&task);
                        self.settle(job, outcome);
                    }
                    // A panic in hearth's own code around a call; the job's lease runs out
                    // and the next start of the worker takes it again.
                    Err(error) => {
                        self.trying.remove(&error.id());
                        tracing::error!(plugin = %self.plugin, %error, "bot job task failed");
                    }
                },
                () = tokio::time::sleep(Duration::from_millis(wake_at.saturating_sub(now))) => {}
            }
        }
        self.ctx.directory.detach_worker(&self.plugin);
    }

    /// Reads the plugin's unfinished jobs from the store.
    fn scan(&mut self) -> Result<(), crate::store::StoreError> {
        let jobs = self.ctx.store.jobs_of(&self.plugin)?;
        for job in jobs.iter().filter(|j| !j.is_finished()) {
            let due = match job.state {
                JobState::Running if job.lease_owner == self.ctx.boot => job.lease_until,
                JobState::Running => 0,
                _ => job.not_before,
            };
            self.due.insert(job.id, due);
        }
        self.ctx.directory.set_waiting(&self.plugin, self.due.len());
        if !self.due.is_empty() {
            tracing::info!(plugin = %self.plugin, jobs = self.due.len(), "bot commands waiting");
        }
        Ok(())
    }

    fn prune(&self) {
        let keep_ms = self.ctx.config.job_retention_secs.saturating_mul(1000);
        let before = now_ms().saturating_sub(keep_ms);
        match self.ctx.store.prune_jobs(&self.plugin, before) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(plugin = %self.plugin, removed = n, "pruned old bot jobs"),
            Err(error) => tracing::warn!(plugin = %self.plugin, %error, "cannot prune bot jobs"),
        }
    }

    /// Starts every job that is due, while a call permit is free. A started job leaves `due`
    /// until its try ends.
    fn start_due(&mut self, now: u64, running: &mut JoinSet<(u64, TryOutcome)>) {
        let ready: Vec<u64> = self
            .due
            .iter()
            .filter(|(_, due)| **due <= now)
            .map(|(id, _)| *id)
            .take(self.calls.available_permits())
            .collect();
        for id in ready {
            let Ok(permit) = self.calls.clone().try_acquire_owned() else {
                break;
            };
            self.due.remove(&id);
            let ctx = self.ctx.clone();
            let plugin = self.plugin.clone();
            let slot = CallSlot {
                permit,
                ended: self.call_ended.clone(),
            };
            let task = running.spawn(async move { (id, run_job(&ctx, &plugin, id, slot).await) });
            self.trying.insert(task.id(), id);
        }
    }

    /// Records how a try ended: requeue, count failures, pause the plugin.
    fn settle(&mut self, job: u64, outcome: TryOutcome) {
        match outcome {
            TryOutcome::Finished { failed_for_good } => {
                self.ctx.directory.release(&self.plugin);
                if failed_for_good {
                    self.count_failure();
                } else {
                    self.failures_in_a_row = 0;
                }
            }
            TryOutcome::Retry { not_before } => {
                self.due.insert(job, not_before);
                self.count_failure();
            }
            TryOutcome::Deferred => {
                self.due.insert(job, now_ms() + 1000);
            }
        }
    }

    fn count_failure(&mut self) {
        self.failures_in_a_row += 1;
        let limit = self.ctx.config.pause_after_failures;
        if limit > 0 && self.failures_in_a_row >= limit {
            self.failures_in_a_row = 0;
            self.paused_until = now_ms() + self.ctx.config.pause_secs * 1000;
            self.ctx
                .directory
                .set_paused(&self.plugin, Some(self.paused_until));
            tracing::warn!(
                plugin = %self.plugin,
                failures = limit,
                pause_secs = self.ctx.config.pause_secs,
                "bot paused after repeated failures; its commands wait"
            );
        }
    }

    fn next_wake(&self, now: u64) -> u64 {
        let next_due = self.due.values().copied().min().unwrap_or(u64::MAX);
        let next = if self.paused_until > now {
            self.paused_until
        } else {
            next_due
        };
        // Look again at least every few seconds (pruning, a pause ending).
        next.clamp(now + 10, now + 5_000)
    }
}

/// A try's permit to call its plugin; given back (and the worker woken) once the call returns.
struct CallSlot {
    permit: OwnedSemaphorePermit,
    ended: Arc<Notify>,
}

impl CallSlot {
    fn release(self) {
        drop(self.permit);
        self.ended.notify_one();
    }
}

/// Runs one try of a job: lease it, call the plugin, post the answer or schedule a retry.
async fn run_job(ctx: &WorkerContext, plugin_name: &str, id: u64, slot: CallSlot) -> TryOutcome {
    let job = match ctx.store.job(plugin_name, id) {
        Ok(Some(job)) if !job.is_finished() => job,
        Ok(_) => {
            return TryOutcome::Finished {
                failed_for_good: false,
            }
        }
        Err(error) => {
            tracing::error!(plugin = plugin_name, job = id, %error, "cannot read a bot job");
            return TryOutcome::Deferred;
        }
    };
    let Some(plugin) = ctx.directory.catalog().plugins.get(plugin_name).cloned() else {
        // Unloaded meanwhile: the job waits for the plugin to come back.
        return TryOutcome::Deferred;
    };
    let mut job = job;
    job.state = JobState::Running;
    job.attempts += 1;
    job.lease_owner = ctx.boot;
    job.lease_until = now_ms() + ctx.config.call_timeout_ms + 10_000;
    if let Err(error) = ctx.store.put_job(&job) {
        tracing::error!(plugin = plugin_name, job = id, %error, "cannot lease a bot job");
        return TryOutcome::Deferred;
    }
    let outcome = call(ctx, &plugin, &job).await;
    slot.release();
    match outcome {
        Ok(actions) => {
            job.state = JobState::Done;
            job.last_error = None;
            deliver(ctx, job, actions, false).await
        }
        Err(error) => {
            metrics::counter!("hearth_bot_failures_total").increment(1);
            tracing::warn!(
                plugin = plugin_name,
                job = id,
                attempt = job.attempts,
                %error,
                "bot command failed"
            );
            job.last_error = Some(error.to_string());
            if job.attempts < ctx.config.max_attempts {
                let backoff = ctx
                    .config
                    .retry_backoff_ms
                    .saturating_mul(1 << (job.attempts - 1).min(16));
                job.state = JobState::Pending;
                job.not_before = now_ms() + backoff;
                if let Err(error) = ctx.store.put_job(&job) {
                    tracing::error!(plugin = plugin_name, job = id, %error, "cannot requeue");
                }
                return TryOutcome::Retry {
                    not_before: job.not_before,
                };
            }
            job.state = JobState::Failed;
            let text = format!(
                "Sorry, /{} failed: the {} bot {} (tried {} times).",
                job.command, plugin_name, error, job.attempts
            );
            deliver(ctx, job, vec![BotAction::Reply(text)], true).await
        }
    }
}

async fn call(
    ctx: &WorkerContext,
    plugin: &LoadedPlugin,
    job: &JobRecord,
) -> Result<Vec<BotAction>, CallError> {
    let invocation = Invocation {
        room: job.room.to_string(),
        caller: job.caller.to_string(),
        command: job.command.clone(),
        args: job.args.clone(),
        seq: job.seq.get(),
        ts: job.ts,
    };
    let started = std::time::Instant::now();
    let (outcome, _) = ctx
        .runtime
        .handle(&plugin.compiled, plugin.grants.clone(), &invocation)
        .await;
    metrics::histogram!("hearth_bot_call_seconds").record(started.elapsed().as_secs_f64());
    let max = ctx.config.max_actions;
    outcome.map(|actions| {
        actions
            .into_iter()
            .take(max)
            .map(|action| match action {
                Action::Reply(text) => BotAction::Reply(text),
                Action::React(emoji) => BotAction::React(emoji),
            })
            .collect()
    })
}

/// Hands the answer to the room and waits until it is durable.
async fn deliver(
    ctx: &WorkerContext,
    mut job: JobRecord,
    actions: Vec<BotAction>,
    failed_for_good: bool,
) -> TryOutcome {
    job.finished_at = now_ms();
    let room = job.room.clone();
    let record = job.clone();
    let outcome = ctx.answers.post(job, actions).await;
    match outcome {
        Ok(_) => TryOutcome::Finished { failed_for_good },
        Err(PostError::RoomGone) => {
            tracing::warn!(%room, "a bot answered in a room that no longer exists");
            if let Err(error) = ctx.store.put_job(&record) {
                tracing::error!(%room, %error, "cannot close a bot job");
            }
            TryOutcome::Finished { failed_for_good }
        }
        Err(error) => {
            tracing::warn!(%room, %error, "a bot's answer could not be posted; will try again");
            TryOutcome::Deferred
        }
    }
}
