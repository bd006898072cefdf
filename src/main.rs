//! The `hearth` command: parses the command line and hands over to the library.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hearth::config::{Config, DataDirUse, Overrides};

// glibc's malloc keeps each thread arena's freed memory: after a few concurrent argon2 hashes
// (19 MiB each) a fresh server sat at hundreds of MB. mimalloc gives it back.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A self-hosted real-time chat server in one binary.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (default: $HEARTH_CONFIG, else ./config.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address and port to listen on, e.g. 0.0.0.0:7878 to serve the LAN.
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    bind: Option<String>,
    /// Directory of the database.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (what a bare `hearth` does).
    Serve,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Manage accounts in the data directory (while the server is stopped).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Write a consistent backup of the data directory to FILE (`-`: standard output).
    ///
    /// From the running server, through its control socket (run as root or as the user hearth
    /// runs as); when no server runs, from the database itself. `--list` shows the automatic
    /// backups in the data directory's `backups` folder instead.
    Backup {
        #[arg(required_unless_present = "list")]
        file: Option<PathBuf>,
        /// List the automatic backups, oldest first.
        #[arg(long, conflicts_with = "file")]
        list: bool,
    },
    /// Load the backup FILE (`-`: standard input) into an empty data directory.
    Restore { file: PathBuf },
    /// Export users (without passwords or sessions), rooms and history, for people who leave.
    Export {
        /// As one JSON document (the only format so far).
        #[arg(long, required = true)]
        json: bool,
        /// Write to FILE instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Bot plugins: list them, or check a component before dropping it into the plugins folder.
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
}

#[derive(Subcommand)]
enum PluginAction {
    /// The bundled plugins and those in the plugins folder, with their commands.
    List,
    /// Validate FILE.wasm against hearth's bot world and print its manifest.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a password account; the password is prompted for, or read as one line of stdin.
    Add { username: String },
    /// Set a new password; the user's sessions end.
    Passwd { username: String },
    /// List accounts.
    List,
    /// Disable an account; its sessions end.
    Disable { username: String },
    /// Enable a disabled account again.
    Enable { username: String },
}

fn main() -> ExitCode {
    // Before anything is written: the data directory, exports and backups are ours alone.
    hearth::files::private_by_default();
    let cli = Cli::parse();
    let overrides = Overrides {
        config_file: cli.config.clone(),
        bind: cli.bind.clone(),
        data_dir: cli.data_dir.clone(),
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let data_dir_use = match &command {
        Command::Serve | Command::User { .. } | Command::Restore { .. } => DataDirUse::Write,
        Command::Config
        | Command::Backup { .. }
        | Command::Export { .. }
        | Command::Plugin { .. } => DataDirUse::Read,
    };
    let loaded = Config::load(&overrides, data_dir_use)
        .and_then(|config| Config::file_in_effect(&overrides).map(|file| (config, file)));
    let (config, config_file) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("hearth: bad configuration\n{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hearth: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match command {
            Command::Serve => serve(config, config_file).await,
            Command::Config => {
                print!("{}", config.to_toml());
                Ok(())
            }
            Command::User { action } => user(config, action).await,
            Command::Backup {
                file: Some(file), ..
            } => backup(&config, &absolute(file)),
            Command::Backup { file: None, .. } => list_backups(&config),
            Command::Restore { file } => restore(&config, &absolute(file)),
            Command::Export { json: _, output } => export(&config, output.map(absolute).as_deref()),
            Command::Plugin { action } => plugin(&config, action).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config, config_file: Option<PathBuf>) -> anyhow::Result<()> {
    init_logging(&config.log);
    let file = match &config_file {
        Some(path) => path.display().to_string(),
        None => "none (built-in defaults)".into(),
    };
    tracing::info!(
        "data directory {}, plugins folder {}, configuration file {file}",
        config.data_dir.display(),
        config.bots.plugins_dir(&config.data_dir).display(),
    );
    let bind = config.bind;
    // The store is opened before the port is bound, so a second hearth on the same data
    // directory says so instead of reporting a busy port.
    let server = hearth::Server::open(config)?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    server.run(listener, shutdown_signal()).await?;
    Ok(())
}

async fn plugin(config: &Config, action: PluginAction) -> anyhow::Result<()> {
    let text = match action {
        PluginAction::List => hearth::bots::cli::list(config).await?,
        PluginAction::Check { file } => hearth::bots::cli::check(config, &absolute(file)).await?,
    };
    print!("{text}");
    Ok(())
}

async fn user(config: Config, action: UserAction) -> anyhow::Result<()> {
    let accounts = hearth::admin::Accounts::open(&config)?;
    match action {
        UserAction::Add { username } => {
            let user = accounts.add(&username, read_password()?).await?;
            println!("created user {}", user.username);
        }
        UserAction::Passwd { username } => {
            let user = accounts.passwd(&username, read_password()?).await?;
            println!(
                "password changed for {}; their sessions have ended",
                user.username
            );
        }
        UserAction::List => {
            for user in accounts.list()? {
                let state = match (user.disabled, user.bot) {
                    (true, _) => "disabled",
                    (false, true) => "bot",
                    (false, false) => "active",
                };
                println!("{}\t{}\t{}", user.username, user.display_name, state);
            }
        }
        UserAction::Disable { username } => {
            let user = accounts.set_disabled(&username, true).await?;
            println!("disabled {}; their sessions have ended", user.username);
        }
        UserAction::Enable { username } => {
            let user = accounts.set_disabled(&username, false).await?;
            println!("enabled {}", user.username);
        }
    }
    accounts.close()?;
    Ok(())
}

fn backup(config: &Config, file: &Path) -> anyhow::Result<()> {
    let done = hearth::backup::backup(config, file)?;
    let from = match done.source {
        hearth::backup::Source::RunningServer => "the running server",
        hearth::backup::Source::Database => "the database (no server was running)",
    };
    let size = done
        .bytes
        .map(|b| format!(" ({b} bytes)"))
        .unwrap_or_default();
    eprintln!(
        "backed up {} records from {from} to {}{size}",
        done.records,
        file.display()
    );
    Ok(())
}

fn list_backups(config: &Config) -> anyhow::Result<()> {
    let folder = hearth::backup::auto::dir(&config.data_dir);
    let backups = hearth::backup::auto::list(&config.data_dir)
        .with_context(|| format!("cannot read {}", folder.display()))?;
    if backups.is_empty() {
        eprintln!("no automatic backups in {}", folder.display());
        return Ok(());
    }
    for backup in backups {
        println!(
            "{}\t{}\t{} bytes",
            backup.header.taken_at_text(),
            backup.path.display(),
            backup.bytes
        );
    }
    Ok(())
}

fn restore(config: &Config, file: &Path) -> anyhow::Result<()> {
    let done = hearth::backup::restore(config, file)?;
    eprintln!(
        "restored {} records (taken {} by hearth {}) into {}; start hearth to serve them",
        done.records,
        done.header.taken_at_text(),
        done.header.hearth_version,
        config.data_dir.display()
    );
    Ok(())
}

fn export(config: &Config, output: Option<&Path>) -> anyhow::Result<()> {
    let done = match output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            hearth::backup::export_json(config, &mut out)?
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            hearth::backup::export_json(config, &mut out)?
        }
    };
    eprintln!(
        "exported {} users, {} rooms, {} messages",
        done.users, done.rooms, done.messages
    );
    Ok(())
}

/// A file named on the command line, made absolute against the working directory so that
/// messages name it unambiguously; `-` (standard input or output) stays `-`.
fn absolute(file: PathBuf) -> PathBuf {
    if file.as_os_str() == "-" {
        return file;
    }
    std::path::absolute(&file).unwrap_or(file)
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(first == again, "the passwords differ");
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn init_logging(filter: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_string());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(std::io::stdout().is_terminal())
        .init();
}

/// Registers for SIGTERM and SIGINT at once, before the server says it is serving, and answers
/// a future that resolves on the first of them. (Registered lazily, a stop sent right after
/// "serving on" met the signal's default action, which kills the process without a flush.)
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => {
                    tracing::warn!("cannot listen for stop signals; only Ctrl-C stops hearth");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
