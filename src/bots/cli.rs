//! `hearth plugin list` and `hearth plugin check FILE.wasm`: what a plugin is, without a server.

use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

use super::directory::{LoadedPlugin, Source};
use super::loader::prepare;
use super::runtime::Runtime;
use super::{BotError, BUNDLED};
use crate::config::Config;

/// Validates a component against the `bot` world and its manifest; answers a description.
pub async fn check(config: &Config, file: &Path) -> Result<String, BotError> {
    let wasm = std::fs::read(file).map_err(|error| BotError::Read {
        path: file.display().to_string(),
        error,
    })?;
    let runtime = Arc::new(Runtime::new(&config.bots, None)?);
    let plugin = prepare(&runtime, wasm, Source::File(file.into()), None, config).await?;
    let mut text = describe(&plugin);
    let _ = writeln!(text, "ok: {} is a valid hearth bot", file.display());
    Ok(text)
}

/// Describes the bundled plugins and every file in the plugins folder; a file that does not
/// load is listed with the reason. Creates nothing: the server's compiled-plugin cache is used
/// only when it exists already (listing a fresh checkout compiles without one).
pub async fn list(config: &Config) -> Result<String, BotError> {
    let cache = config.data_dir.join(super::CACHE_DIR);
    let cache = cache.is_dir().then_some(cache.as_path());
    let runtime = Arc::new(Runtime::new(&config.bots, cache)?);
    let mut text = String::new();
    if !config.bots.enabled {
        text.push_str("bots are turned off (bots.enabled = false)\n");
    }
    for (file, wasm) in BUNDLED {
        match prepare(&runtime, wasm.to_vec(), Source::Bundled, None, config).await {
            Ok(plugin) => text.push_str(&describe(&plugin)),
            Err(error) => {
                let _ = writeln!(text, "{file} (bundled): cannot load: {error}");
            }
        }
    }
    let dir = config.bots.plugins_dir(&config.data_dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|ext| ext == "wasm"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for path in files {
        let described = match std::fs::read(&path) {
            Ok(wasm) => prepare(&runtime, wasm, Source::File(path.clone()), None, config)
                .await
                .map(|plugin| describe(&plugin)),
            Err(error) => Err(BotError::Read {
                path: path.display().to_string(),
                error,
            }),
        };
        match described {
            Ok(description) => text.push_str(&description),
            Err(error) => {
                let _ = writeln!(text, "{}: cannot load: {error}", path.display());
            }
        }
    }
    let _ = writeln!(text, "plugins folder: {}", dir.display());
    Ok(text)
}

fn describe(plugin: &LoadedPlugin) -> String {
    let manifest = &plugin.manifest;
    let mut text = format!(
        "{} {} ({}, sha256 {})\n",
        manifest.name,
        manifest.version,
        plugin.source,
        &plugin.hash[..12]
    );
    for command in &manifest.commands {
        let _ = writeln!(text, "  {}: {}", command.usage, command.description);
    }
    text
}
