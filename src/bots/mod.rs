//! Bot plugins: WebAssembly components (the `bot` world in plugins/wit) that serve
//! slash-commands, run by wasmtime in a sandbox and fed through a durable queue.
//!
//! - [`command`]: reading `/name args` and `/name=args` out of a message.
//! - [`runtime`]: the engine, the epoch ticker, and calls in a fresh store with a CPU budget,
//!   a wall-clock limit and a memory cap.
//! - [`host`]: the imports hearth grants (`http`, `kv`, `host`), bound to one plugin's grants.
//! - [`http`]: outgoing HTTP limited to allowed hosts and public addresses.
//! - [`directory`]: the loaded plugins and their commands, shared with the room actors.
//! - [`loader`]: bundled plugins and the plugins folder, watched while the server runs.
//! - [`worker`]: one worker per plugin: takes jobs from the queue, retries, pauses, answers.
//! - [`cli`]: `hearth plugin list` and `hearth plugin check`.
//!
//! A command's message and its job are stored in one transaction before the ack; the bot's
//! answer and the job's end are stored in another, so every acked command is answered once.

pub mod cli;
pub mod command;
pub mod directory;
pub mod host;
pub mod http;
pub mod loader;
pub mod runtime;
pub mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use directory::Directory;

use crate::config::Config;
use crate::store::jobs::JobRecord;
use crate::store::Store;

/// What a bot does in answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotAction {
    /// A message from the bot.
    Reply(String),
    /// The bot's reaction to the command's message.
    React(String),
}

/// An answer on its way into its room: resolves once it is durable.
pub type Posting<'a> = Pin<Box<dyn Future<Output = Result<bool, PostError>> + Send + 'a>>;

/// Where bots' answers go: the rooms. Bots sit below rooms and do not know them; the rooms'
/// registry is the one implementation (a test may bring its own).
pub trait Answers: Send + Sync + 'static {
    /// Posts `actions` as the answer to `job`; `Ok(false)` if the job had been answered
    /// already.
    fn post(&self, job: JobRecord, actions: Vec<BotAction>) -> Posting<'_>;
}

/// Why an answer was not posted.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The room no longer exists: the answer has nowhere to go.
    #[error("the room no longer exists")]
    RoomGone,
    /// Anything else (the room could not store it, the server is stopping): try again later.
    #[error("{0}")]
    Failed(String),
}

/// The plugins embedded in the binary: (file name, component). Built from plugins/ by
/// plugins/build.sh; `plugins/build.sh --check` proves they match their source.
pub const BUNDLED: &[(&str, &[u8])] = &[
    (
        "stocks.wasm",
        include_bytes!("../../plugins/dist/stocks.wasm"),
    ),
    (
        "notes.wasm",
        include_bytes!("../../plugins/dist/notes.wasm"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("cannot use the compiled-plugin cache: {0}")]
    Cache(String),
    #[error("not a hearth bot component: {0}")]
    Invalid(String),
    #[error("its manifest is not usable: {0}")]
    Manifest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("its manifest call failed: {0}")]
    Call(#[from] runtime::CallError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
}

/// The compiled-plugin cache, inside the data directory.
pub const CACHE_DIR: &str = "plugin-cache";

/// The running bot service: the loader and the workers it starts.
pub struct BotService {
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl BotService {
    /// Starts loading plugins (bundled first, then the folder) and their workers, in the
    /// background: the server serves meanwhile, and a plugin's commands work once it is loaded.
    pub fn start(
        config: &Config,
        store: Store,
        directory: Arc<Directory>,
        answers: Arc<dyn Answers>,
    ) -> Result<BotService, BotError> {
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        if config.bots.enabled {
            let cache = config.data_dir.join(CACHE_DIR);
            let runtime = Arc::new(runtime::Runtime::new(&config.bots, Some(&cache))?);
            let loader = loader::Loader::new(
                config,
                runtime,
                store,
                directory,
                answers,
                tasks.clone(),
                stop.clone(),
            );
            tasks.spawn(loader.run());
        }
        Ok(BotService { tasks, stop })
    }

    /// Stops the loader and every worker. A call in progress is abandoned: its job keeps its
    /// lease, which the next start of the server treats as void, so the command runs again.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
