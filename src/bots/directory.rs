//! The directory: which plugins are loaded and which commands they serve, how each one is
//! doing (paused after repeated failures), and the way to its worker's queue. Room actors read
//! it for every command; the loader swaps in a new catalog when plugins come and go. Its locks
//! guard plain maps and are never held across an await.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::sync::mpsc;

use super::host::Grants;
use super::runtime::{Compiled, Manifest};
use crate::protocol::CommandView;

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Embedded in the binary.
    Bundled,
    /// A file in the plugins folder.
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Bundled => write!(f, "bundled"),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A plugin ready to serve.
pub struct LoadedPlugin {
    pub manifest: Manifest,
    pub compiled: Compiled,
    pub grants: Arc<Grants>,
    pub source: Source,
    /// SHA-256 of the component, hex.
    pub hash: String,
}

impl LoadedPlugin {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }
}

/// The plugins loaded at one moment and the commands they serve.
#[derive(Default, Clone)]
pub struct Catalog {
    pub plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    /// Command name -> plugin name.
    pub commands: BTreeMap<String, String>,
}

impl Catalog {
    pub fn with(&self, plugin: Arc<LoadedPlugin>) -> Catalog {
        let mut next = self.without(plugin.name());
        for command in &plugin.manifest.commands {
            next.commands
                .insert(command.name.clone(), plugin.name().to_string());
        }
        next.plugins.insert(plugin.name().to_string(), plugin);
        next
    }

    pub fn without(&self, name: &str) -> Catalog {
        let mut next = self.clone();
        next.plugins.remove(name);
        next.commands.retain(|_, owner| owner != name);
        next
    }
}

/// What a command name leads to.
pub enum Route {
    Help,
    Plugin(Arc<LoadedPlugin>),
    Unknown,
}

/// Why a command cannot be queued now.
#[derive(Debug, thiserror::Error)]
#[error("the {plugin} bot has {queued} commands waiting; try again later")]
pub struct QueueFull {
    pub plugin: String,
    pub queued: usize,
}

pub struct Directory {
    enabled: bool,
    max_queued: usize,
    catalog: RwLock<Arc<Catalog>>,
    /// Unix ms until which a plugin is paused.
    paused: Mutex<HashMap<String, u64>>,
    queues: Mutex<HashMap<String, Arc<Queue>>>,
}

/// A plugin's queue as the rooms see it: how many commands wait, and its worker's inbox.
#[derive(Default)]
struct Queue {
    waiting: AtomicUsize,
    worker: Mutex<Option<mpsc::UnboundedSender<u64>>>,
}

impl Directory {
    pub fn new(enabled: bool, max_queued: usize) -> Directory {
        Directory {
            enabled,
            max_queued,
            catalog: RwLock::default(),
            paused: Mutex::default(),
            queues: Mutex::default(),
        }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set_catalog(&self, catalog: Catalog) {
        *self.catalog.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(catalog);
    }

    pub fn route(&self, command: &str) -> Route {
        if command == "help" {
            return Route::Help;
        }
        if !self.enabled {
            return Route::Unknown;
        }
        let catalog = self.catalog();
        match catalog
            .commands
            .get(command)
            .and_then(|plugin| catalog.plugins.get(plugin))
        {
            Some(plugin) => Route::Plugin(plugin.clone()),
            None => Route::Unknown,
        }
    }

    /// Counts a command into its plugin's queue, unless the queue is full.
    pub fn reserve(&self, plugin: &str) -> Result<(), QueueFull> {
        let queue = self.queue(plugin);
        let before = queue.waiting.fetch_add(1, Ordering::Relaxed);
        if before >= self.max_queued {
            queue.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(QueueFull {
                plugin: plugin.to_string(),
                queued: before,
            });
        }
        Ok(())
    }

    /// Gives back a reservation whose command was not stored, or a job that is finished.
    pub fn release(&self, plugin: &str) {
        let queue = self.queue(plugin);
        let _ = queue
            .waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Hands a stored job to its plugin's worker, if one runs; otherwise the worker finds it
    /// when it starts.
    pub fn enqueue(&self, plugin: &str, job: u64) {
        let queue = self.queue(plugin);
        let worker = queue.worker.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(inbox) = worker.as_ref() {
            let _ = inbox.send(job);
        }
    }

    /// A worker takes over a plugin's queue, with the number of jobs it found waiting.
    pub(super) fn attach_worker(&self, plugin: &str, inbox: mpsc::UnboundedSender<u64>) {
        let queue = self.queue(plugin);
        *queue.worker.lock().unwrap_or_else(PoisonError::into_inner) = Some(inbox);
    }

    pub(super) fn set_waiting(&self, plugin: &str, waiting: usize) {
        self.queue(plugin).waiting.store(waiting, Ordering::Relaxed);
    }

    pub(super) fn detach_worker(&self, plugin: &str) {
        let queue = self.queue(plugin);
        *queue.worker.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub(super) fn set_paused(&self, plugin: &str, until_ms: Option<u64>) {
        let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        match until_ms {
            Some(until) => paused.insert(plugin.to_string(), until),
            None => paused.remove(plugin),
        };
    }

    /// Unix ms until which a plugin is paused, if it is.
    pub fn paused_until(&self, plugin: &str) -> Option<u64> {
        let paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        paused
            .get(plugin)
            .copied()
            .filter(|until| *until > crate::clock::now_ms())
    }

    /// The commands a room answers, hearth's own first, as `joined` lists them.
    pub fn commands(&self) -> Vec<CommandView> {
        let mut commands = vec![CommandView {
            name: "help".into(),
            usage: "/help".into(),
            description: "lists these commands".into(),
            bot: None,
            paused: false,
        }];
        if !self.enabled {
            return commands;
        }
        let catalog = self.catalog();
        for plugin in catalog.plugins.values() {
            let paused = self.paused_until(plugin.name()).is_some();
            commands.extend(plugin.manifest.commands.iter().map(|command| CommandView {
                name: command.name.clone(),
                usage: command.usage.clone(),
                description: command.description.clone(),
                bot: Some(plugin.name().to_string()),
                paused,
            }));
        }
        commands
    }

    /// The answer to /help: hearth's own command and every plugin's, with usage.
    pub fn help_text(&self) -> String {
        let mut text = String::from("Commands:\n/help: lists these commands");
        if !self.enabled {
            text.push_str("\n(bots are turned off on this server)");
            return text;
        }
        let catalog = self.catalog();
        for plugin in catalog.plugins.values() {
            let pause = self.paused_until(plugin.name()).map(|until| {
                let secs = until.saturating_sub(crate::clock::now_ms()).div_ceil(1000);
                format!(" (paused for {secs} s after repeated failures; commands wait)")
            });
            for command in &plugin.manifest.commands {
                text.push_str(&format!(
                    "\n{}: {} [{}]{}",
                    command.usage,
                    command.description,
                    plugin.name(),
                    pause.as_deref().unwrap_or("")
                ));
            }
        }
        text
    }

    fn queue(&self, plugin: &str) -> Arc<Queue> {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        queues.entry(plugin.to_string()).or_default().clone()
    }
}
