//! The bots' durable queue: one record per slash-command served by a plugin.
//!
//! Keys: `bot_jobs` plugin name ++ 0x00 ++ job id (u64 BE) -> [`JobRecord`]. A job is written
//! in the same transaction as the command's own message, so a command that was acked is a job;
//! it is marked done in the same transaction as the bot's answer, so it is answered once.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::rooms::{item_key, Item};
use super::{decode, encode_bounded, Result, Store, StoreError};
use crate::ids::{RoomCode, Seq, Username};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its plugin (again, after a failed try, once `not_before` has passed).
    Pending,
    /// Taken by a worker until `lease_until`, or until the server that took it is gone.
    Running,
    /// Answered.
    Done,
    /// Given up after its last try; the bot said so in the room.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobRecord {
    pub id: u64,
    pub plugin: String,
    pub room: RoomCode,
    pub caller: Username,
    pub command: String,
    pub args: String,
    /// The seq of the command's message in the room.
    pub seq: Seq,
    /// When the command was sent (unix ms).
    pub ts: u64,
    pub state: JobState,
    /// Tries started so far.
    pub attempts: u32,
    /// Unix ms before which a pending job is not tried (backoff).
    pub not_before: u64,
    /// Unix ms until which a running job belongs to its worker.
    pub lease_until: u64,
    /// Which run of the server holds the lease; a lease of an earlier run is void.
    pub lease_owner: u64,
    /// Why the last try failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Unix ms when it was answered or given up.
    #[serde(default)]
    pub finished_at: u64,
}

impl JobRecord {
    pub fn is_finished(&self) -> bool {
        matches!(self.state, JobState::Done | JobState::Failed)
    }
}

pub(crate) fn job_key(plugin: &str, id: u64) -> Vec<u8> {
    let mut key = plugin_prefix(plugin);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn plugin_prefix(plugin: &str) -> Vec<u8> {
    let mut key = plugin.as_bytes().to_vec();
    key.push(0);
    key
}

impl Store {
    /// Stores a command's message and its job together: both or neither.
    pub fn put_item_with_job(&self, code: &RoomCode, item: &Item, job: &JobRecord) -> Result<()> {
        let item_raw = encode_bounded(item)?;
        let job_raw = encode_bounded(job)?;
        let item_key = item_key(code, item.seq);
        let job_key = job_key(&job.plugin, job.id);
        self.write(|t| {
            (&t.items, &t.bot_jobs)
                .transaction(|(items, jobs)| {
                    items.insert(item_key.as_slice(), item_raw.as_slice())?;
                    jobs.insert(job_key.as_slice(), job_raw.as_slice())?;
                    Ok::<_, ConflictableTransactionError<()>>(())
                })
                .map_err(transaction_error)
        })
    }

    /// Stores a bot's answer (new items, and the command's item with the bot's reactions) and
    /// the finished job together. Answers false, writing nothing, if the job was finished already.
    pub fn finish_job(
        &self,
        code: &RoomCode,
        items: &[Item],
        updated: Option<&Item>,
        job: &JobRecord,
    ) -> Result<bool> {
        let mut writes: Vec<(Vec<u8>, Vec<u8>)> = items
            .iter()
            .chain(updated)
            .map(|item| Ok((item_key(code, item.seq), encode_bounded(item)?)))
            .collect::<Result<_>>()?;
        writes.dedup_by(|a, b| a.0 == b.0);
        let job_key = job_key(&job.plugin, job.id);
        let job_raw = encode_bounded(job)?;
        self.write(|t| {
            let outcome = (&t.items, &t.bot_jobs).transaction(|(items, jobs)| {
                if let Some(raw) = jobs.get(job_key.as_slice())? {
                    let stored: JobRecord = decode("bot_jobs", &raw)
                        .map_err(|_| ConflictableTransactionError::Abort(true))?;
                    if stored.is_finished() {
                        return Err(ConflictableTransactionError::Abort(false));
                    }
                }
                for (key, raw) in &writes {
                    items.insert(key.as_slice(), raw.as_slice())?;
                }
                jobs.insert(job_key.as_slice(), job_raw.as_slice())?;
                Ok(())
            });
            match outcome {
                Ok(()) => Ok(true),
                Err(TransactionError::Abort(false)) => Ok(false),
                Err(TransactionError::Abort(true)) => Err(StoreError::Corrupt {
                    tree: "bot_jobs",
                    detail: "a job record cannot be read".into(),
                }),
                Err(TransactionError::Storage(e)) => Err(e.into()),
            }
        })
    }

    pub fn put_job(&self, job: &JobRecord) -> Result<()> {
        let raw = encode_bounded(job)?;
        self.write(|t| {
            t.bot_jobs.insert(job_key(&job.plugin, job.id), raw)?;
            Ok(())
        })
    }

    pub fn job(&self, plugin: &str, id: u64) -> Result<Option<JobRecord>> {
        self.trees()?
            .bot_jobs
            .get(job_key(plugin, id))?
            .map(|raw| decode("bot_jobs", &raw))
            .transpose()
    }

    /// Every job of a plugin, oldest first.
    pub fn jobs_of(&self, plugin: &str) -> Result<Vec<JobRecord>> {
        self.trees()?
            .bot_jobs
            .scan_prefix(plugin_prefix(plugin))
            .map(|entry| decode("bot_jobs", &entry?.1))
            .collect()
    }

    /// Removes finished jobs that finished before `before` (unix ms); answers how many.
    pub fn prune_jobs(&self, plugin: &str, before: u64) -> Result<usize> {
        let mut removed = 0;
        for job in self.jobs_of(plugin)? {
            if job.is_finished() && job.finished_at < before {
                self.write(|t| {
                    t.bot_jobs.remove(job_key(plugin, job.id))?;
                    Ok::<_, StoreError>(())
                })?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn transaction_error(error: TransactionError<()>) -> StoreError {
    match error {
        TransactionError::Storage(e) => e.into(),
        TransactionError::Abort(()) => StoreError::Corrupt {
            tree: "bot_jobs",
            detail: "transaction aborted".into(),
        },
    }
}
