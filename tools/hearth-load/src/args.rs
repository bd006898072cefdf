//! Command-line options.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::bail;
use clap::Parser;

/// Opens SOCKETS sockets over ROOMS rooms of a hearth server on this machine and sends RATE
/// messages per second for DURATION seconds.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    /// The server's base URL; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:7878")]
    pub url: String,
    /// Sockets to open.
    #[arg(long, default_value_t = 100)]
    pub sockets: usize,
    /// Rooms to spread them over (socket i joins room i mod ROOMS).
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Distinct users (socket i signs in as user i mod USERS); each costs a password hash.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Messages per second in total, spread over the senders; 0 only holds the sockets open.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Sockets that send (spread over the rooms); default one per room.
    #[arg(long)]
    pub senders: Option<usize>,
    /// Seconds of sending (or of holding the sockets when RATE is 0).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds to wait for the last deliveries after sending stops (with --command, at most
    /// this long: the wait ends once every command is answered or refused).
    #[arg(long, default_value_t = 2)]
    pub drain: u64,
    /// Source addresses 127.0.0.1 ..= 127.0.0.N, for more sockets than one address has ports.
    #[arg(long, default_value_t = 1)]
    pub source_ips: u8,
    /// Sockets connecting at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// The server's process id, to read its memory and CPU time from /proc.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Username prefix; users that exist already are signed in instead.
    #[arg(long, default_value = "load")]
    pub prefix: String,
    /// Password of the load users.
    #[arg(long, default_value = "load-test-password")]
    pub password: String,
    /// Send this slash-command (served by a bot) instead of chat, e.g. "/echo hi", and time each
    /// one: send to ack, to its own message, and to the bot's reply (`reply_to` its seq). The
    /// run first waits until /help lists the command.
    #[arg(long)]
    pub command: Option<String>,
    /// Seconds to wait for /help to list the command's bot (it loads after the server starts).
    #[arg(long, default_value_t = 60)]
    pub bot_wait: u64,
    /// Hard limit on the whole run, in seconds.
    #[arg(long, default_value_t = 900)]
    pub max_seconds: u64,
}

impl Args {
    /// Refuses any target that is not on this machine.
    pub fn check_loopback(&self) -> anyhow::Result<()> {
        let rest = self
            .url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("--url must be http://<loopback>:<port>"))?;
        let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            bail!("hearth-load only targets loopback addresses, not {host}");
        }
        if self.users == 0 || self.rooms == 0 || self.source_ips == 0 {
            bail!("--users, --rooms and --source-ips must be at least 1");
        }
        if let Some(command) = &self.command {
            if crate::commands::command_name(command).is_none() {
                bail!("--command must be a slash-command such as \"/echo hi\"");
            }
        }
        Ok(())
    }

    pub fn ws_url(&self) -> String {
        format!("ws{}/ws", self.url.trim_start_matches("http"))
    }

    /// The command to send, trimmed as the server trims it (so its echo can be recognised).
    pub fn command(&self) -> Option<&str> {
        self.command.as_deref().map(str::trim)
    }

    pub fn senders(&self) -> usize {
        self.senders.unwrap_or(self.rooms).min(self.sockets)
    }

    pub fn source_ip(&self, socket: usize) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, 1 + (socket % usize::from(self.source_ips)) as u8)
    }
}
