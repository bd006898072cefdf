//! Loading plugins: the bundled ones at start, then every `*.wasm` in the plugins folder,
//! looked at every `bots.scan_interval_ms`: a new file is loaded, a changed one replaces its
//! plugin, a removed one unloads it. Each plugin gets a bot user named after it and a worker.
//!
//! A plugin is refused (and the log says why) when its manifest is unusable, when its name or
//! one of its commands is taken by another plugin, or when a person has its name as username.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::command::valid_name;
use super::directory::{Catalog, Directory, LoadedPlugin, Source};
use super::host::Grants;
use super::http::PluginHttp;
use super::runtime::{Manifest, Runtime};
use super::worker::{Worker, WorkerContext};
use super::Answers;
use super::{BotError, BUNDLED};
use crate::clock::now_ms;
use crate::config::{Config, PluginConfig};
use crate::ids::Username;
use crate::store::accounts::{CreateUserError, NewUser};
use crate::store::Store;

/// Longest usage or description shown by /help, in characters.
const HELP_FIELD_MAX_CHARS: usize = 200;
/// Commands one plugin may serve.
const COMMANDS_MAX: usize = 32;

/// Checks a manifest: the plugin's name is a valid username, its commands are valid, unique,
/// not `help`, and described briefly.
pub fn validate_manifest(manifest: &Manifest) -> Result<(), BotError> {
    let bad = |why: String| Err(BotError::Manifest(why));
    let name = &manifest.name;
    let name_ok = (3..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return bad(format!(
            "name {name:?} must be 3 to 32 of a-z, 0-9 and '-', starting with a letter"
        ));
    }
    if manifest.commands.is_empty() || manifest.commands.len() > COMMANDS_MAX {
        return bad(format!("it must serve 1 to {COMMANDS_MAX} commands"));
    }
    let mut seen = std::collections::HashSet::new();
    for command in &manifest.commands {
        if !valid_name(&command.name) {
            return bad(format!(
                "command {:?} must be 1 to 32 of a-z, 0-9, '-' and '_'",
                command.name
            ));
        }
        if command.name == "help" {
            return bad("/help belongs to hearth".into());
        }
        if !seen.insert(&command.name) {
            return bad(format!("command {:?} is listed twice", command.name));
        }
        for (field, text) in [
            ("usage", &command.usage),
            ("description", &command.description),
        ] {
            if text.chars().count() > HELP_FIELD_MAX_CHARS || text.contains(['\n', '\r']) {
                return bad(format!(
                    "the {field} of /{} must be one line of at most {HELP_FIELD_MAX_CHARS} characters",
                    command.name
                ));
            }
        }
    }
    if manifest.version.chars().count() > 64 {
        return bad("the version must be at most 64 characters".into());
    }
    Ok(())
}

pub fn hash_hex(wasm: &[u8]) -> String {
    Sha256::digest(wasm)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compiles a component and reads its manifest: everything but registering it.
pub async fn prepare(
    runtime: &Arc<Runtime>,
    wasm: Vec<u8>,
    source: Source,
    store: Option<Store>,
    config: &Config,
) -> Result<LoadedPlugin, BotError> {
    let hash = hash_hex(&wasm);
    let compiler = runtime.clone();
    let compiled = tokio::task::spawn_blocking(move || compiler.compile(&wasm))
        .await
        .map_err(|e| BotError::Engine(format!("compiling stopped: {e}")))??;
    // The manifest call runs with no grants: nothing but the name is known yet.
    let bare = Arc::new(grants_for("", &PluginConfig::default(), None, config)?);
    let manifest = runtime.manifest(&compiled, bare).await?;
    validate_manifest(&manifest)?;
    let plugin_config = config
        .plugin
        .get(&manifest.name)
        .cloned()
        .unwrap_or_default();
    let grants = Arc::new(grants_for(&manifest.name, &plugin_config, store, config)?);
    Ok(LoadedPlugin {
        manifest,
        compiled,
        grants,
        source,
        hash,
    })
}

fn grants_for(
    name: &str,
    plugin: &PluginConfig,
    store: Option<Store>,
    config: &Config,
) -> Result<Grants, BotError> {
    Ok(Grants {
        plugin: name.to_string(),
        store,
        kv_quota: config.bots.kv_quota_bytes,
        settings: plugin.settings.clone(),
        http: PluginHttp::new(plugin, &config.bots)?,
    })
}

/// What the loader knows of a file in the plugins folder.
struct Seen {
    modified: Option<SystemTime>,
    len: u64,
    /// The plugin it loaded as, if it did.
    plugin: Option<String>,
}

pub struct Loader {
    config: Config,
    plugins_dir: PathBuf,
    runtime: Arc<Runtime>,
    store: Store,
    directory: Arc<Directory>,
    workers: Arc<WorkerContext>,
    tasks: TaskTracker,
    stop: CancellationToken,
    files: BTreeMap<PathBuf, Seen>,
    /// A stop token per running worker.
    running: HashMap<String, CancellationToken>,
}

impl Loader {
    pub fn new(
        config: &Config,
        runtime: Arc<Runtime>,
        store: Store,
        directory: Arc<Directory>,
        answers: Arc<dyn Answers>,
        tasks: TaskTracker,
        stop: CancellationToken,
    ) -> Loader {
        let boot = {
            let mut bytes = [0u8; 8];
            // A clock-based id would do as well; a failure of the OS RNG must not stop bots.
            if getrandom::fill(&mut bytes).is_err() {
                bytes = now_ms().to_be_bytes();
            }
            u64::from_be_bytes(bytes)
        };
        let workers = Arc::new(WorkerContext {
            runtime: runtime.clone(),
            store: store.clone(),
            directory: directory.clone(),
            answers,
            config: config.bots.clone(),
            boot,
        });
        Loader {
            plugins_dir: config.bots.plugins_dir(&config.data_dir),
            config: config.clone(),
            runtime,
            store,
            directory,
            workers,
            tasks,
            stop,
            files: BTreeMap::new(),
            running: HashMap::new(),
        }
    }

    pub async fn run(mut self) {
        for (file, wasm) in BUNDLED {
            match self.load(wasm.to_vec(), Source::Bundled).await {
                Ok(name) => tracing::info!(plugin = %name, "bundled bot loaded"),
                Err(error) => tracing::error!(file, %error, "bundled bot not loaded"),
            }
        }
        if let Err(e) = std::fs::create_dir_all(&self.plugins_dir) {
            tracing::warn!(dir = %self.plugins_dir.display(), error = %e, "no plugins folder");
        }
        let interval = Duration::from_millis(self.config.bots.scan_interval_ms);
        loop {
            self.scan().await;
            tokio::select! {
                () = self.stop.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
        for (_, worker) in self.running.drain() {
            worker.cancel();
        }
    }

    /// Loads, replaces and unloads plugins to match the folder.
    async fn scan(&mut self) {
        let present = wasm_files(&self.plugins_dir);
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|path| !present.contains_key(*path))
            .cloned()
            .collect();
        for path in gone {
            if let Some(Seen {
                plugin: Some(name), ..
            }) = self.files.remove(&path)
            {
                self.unload(&name);
                tracing::info!(plugin = %name, file = %path.display(), "bot removed");
            }
        }
        for (path, (modified, len)) in present {
            let unchanged = self
                .files
                .get(&path)
                .is_some_and(|seen| seen.modified == modified && seen.len == len);
            if unchanged {
                continue;
            }
            let previous = self.files.get(&path).and_then(|seen| seen.plugin.clone());
            let plugin = self.load_file(&path, previous.as_deref()).await;
            self.files.insert(
                path,
                Seen {
                    modified,
                    len,
                    plugin,
                },
            );
        }
    }

    /// Loads one file of the folder in place of what it held before; answers the plugin it
    /// now holds (the old one stays if the new version cannot load).
    async fn load_file(&mut self, path: &Path, previous: Option<&str>) -> Option<String> {
        let wasm = match std::fs::read(path) {
            Ok(wasm) => wasm,
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "cannot read plugin");
                return previous.map(str::to_string);
            }
        };
        let source = Source::File(path.to_path_buf());
        match self.load(wasm, source).await {
            Ok(name) => {
                if let Some(old) = previous.filter(|old| *old != name) {
                    self.unload(old);
                }
                tracing::info!(plugin = %name, file = %path.display(), "bot loaded");
                Some(name)
            }
            Err(error) => {
                tracing::error!(file = %path.display(), %error, "bot not loaded");
                previous.map(str::to_string)
            }
        }
    }

    /// Prepares a plugin, checks it against the loaded ones, gives it its bot user and puts it
    /// into service (replacing a plugin of the same name from the same source).
    async fn load(&mut self, wasm: Vec<u8>, source: Source) -> Result<String, BotError> {
        let store = Some(self.store.clone());
        let plugin = prepare(&self.runtime, wasm, source, store, &self.config).await?;
        let name = plugin.name().to_string();
        if self
            .config
            .plugin
            .get(&name)
            .is_some_and(|grants| !grants.enabled)
        {
            return Err(BotError::Conflict(format!(
                "{name} is turned off by plugin.{name}.enabled"
            )));
        }
        let catalog = self.directory.catalog();
        check_conflicts(&catalog, &plugin)?;
        self.ensure_bot_user(&name)?;
        let commands: Vec<&str> = plugin
            .manifest
            .commands
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        tracing::debug!(plugin = %name, ?commands, hash = %plugin.hash, "bot ready");
        self.directory.set_catalog(catalog.with(Arc::new(plugin)));
        if !self.running.contains_key(&name) {
            let stop = self.stop.child_token();
            let worker = Worker::attach(&name, self.workers.clone(), stop.clone());
            self.tasks.spawn(worker.run());
            self.running.insert(name.clone(), stop);
        }
        Ok(name)
    }

    fn unload(&mut self, name: &str) {
        let catalog = self.directory.catalog();
        self.directory.set_catalog(catalog.without(name));
        if let Some(worker) = self.running.remove(name) {
            worker.cancel();
        }
    }

    /// The bot's account: created on first load; a person's account of that name blocks it.
    fn ensure_bot_user(&self, name: &str) -> Result<(), BotError> {
        let username = Username::parse(name)
            .ok_or_else(|| BotError::Manifest(format!("name {name:?} is not a username")))?;
        if let Some(user) = self.store.user_by_name(&username)? {
            return if user.bot {
                Ok(())
            } else {
                Err(BotError::Conflict(format!(
                    "the username {name} belongs to a person; rename the plugin"
                )))
            };
        }
        let new = NewUser {
            username,
            display_name: name.to_string(),
            password_hash: None,
            bot: true,
            created_at: now_ms(),
        };
        match self.store.create_user(new) {
            // Taken between the lookup and now: decided on the next load.
            Ok(_) | Err(CreateUserError::Taken) => Ok(()),
            Err(CreateUserError::Store(e)) => Err(e.into()),
        }
    }
}

/// A plugin may replace one of its own name from the same source; otherwise its name and its
/// commands must be free.
fn check_conflicts(catalog: &Catalog, plugin: &LoadedPlugin) -> Result<(), BotError> {
    let name = plugin.name();
    if let Some(existing) = catalog.plugins.get(name) {
        if existing.source != plugin.source {
            return Err(BotError::Conflict(format!(
                "a plugin named {name} is loaded already from {}",
                existing.source
            )));
        }
    }
    for command in &plugin.manifest.commands {
        if let Some(owner) = catalog.commands.get(&command.name) {
            if owner != name {
                return Err(BotError::Conflict(format!(
                    "/{} is served by {owner} already",
                    command.name
                )));
            }
        }
    }
    Ok(())
}

/// The `*.wasm` files of a folder with their modification time and length.
fn wasm_files(dir: &Path) -> BTreeMap<PathBuf, (Option<SystemTime>, u64)> {
    let mut files = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "wasm") {
            continue;
        }
        if let Ok(meta) = entry.metadata() {
            if meta.is_file() {
                files.insert(path, (meta.modified().ok(), meta.len()));
            }
        }
    }
    files
}
