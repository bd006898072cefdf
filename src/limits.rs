//! Abuse limits that HTTP handlers and sockets share: room creations per user, unknown room
//! codes per client address (guessing codes by brute force), and open sockets per user and per
//! address. Each is configured with 0 meaning "off"; each refusal says what was limited and,
//! for rates, when to try again. The sign-in limits live with the accounts (`auth`), the
//! per-socket frame rate with the socket (`ws::limits`), body, head and timeouts with the HTTP
//! server (`app::listen`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::throttle::{ip_key, Throttle};
use crate::config::Config;
use crate::ids::RoomCode;
use crate::protocol::ErrorCode;
use crate::store::Store;

pub struct Limits {
    creations_per_hour: u32,
    room_creations: Throttle,
    code_guesses: Throttle,
    max_sockets_per_user: usize,
    max_sockets_per_ip: usize,
    sockets: Mutex<SocketCounts>,
}

#[derive(Default)]
struct SocketCounts {
    by_user: HashMap<u64, usize>,
    by_ip: HashMap<String, usize>,
}

/// Why a request naming a room was refused before the room was looked up.
#[derive(Debug)]
pub struct GuessingCodes {
    pub retry_after: Duration,
}

impl GuessingCodes {
    pub fn message(&self) -> String {
        format!(
            "too many room codes that do not exist were tried from your address; until this \
             passes (in {} s) you can use only rooms you belong to",
            retry_secs(self.retry_after)
        )
    }
}

/// Why a room a client named was not let through to it ([`Limits::admit`]).
#[derive(Debug)]
pub enum NotAdmitted {
    /// The address tried too many unknown codes, and the caller is not a member of this room.
    Guessing(GuessingCodes),
    /// The text cannot be a room code.
    NoSuchCode,
}

/// Why a room creation or a socket was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Too many in a window; try again after `retry_after`.
    #[error("{message}")]
    TooOften {
        message: String,
        retry_after: Duration,
    },
    /// Too many sockets open at once.
    #[error("{0}")]
    TooManySockets(String),
}

impl Refused {
    pub fn code(&self) -> ErrorCode {
        match self {
            Refused::TooOften { .. } => ErrorCode::RateLimited,
            Refused::TooManySockets(_) => ErrorCode::TooManySockets,
        }
    }
}

impl From<GuessingCodes> for Refused {
    fn from(e: GuessingCodes) -> Refused {
        Refused::TooOften {
            message: e.message(),
            retry_after: e.retry_after,
        }
    }
}

/// Whole seconds to wait, rounded up, at least 1: the value of a `Retry-After` header.
pub fn retry_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            creations_per_hour: config.rooms.creations_per_user_per_hour,
            room_creations: Throttle::new(
                config.rooms.creations_per_user_per_hour,
                Duration::from_secs(3600),
            ),
            code_guesses: Throttle::new(
                config.rooms.unknown_code_max_per_ip,
                Duration::from_secs(config.rooms.unknown_code_window_secs),
            ),
            max_sockets_per_user: config.ws.max_sockets_per_user,
            max_sockets_per_ip: config.ws.max_sockets_per_ip,
            sockets: Mutex::new(SocketCounts::default()),
        }
    }

    /// Counts a room creation by `user`, or refuses it; a creation that then fails is handed
    /// back with [`Limits::creation_failed`].
    pub fn create_room(&self, user: u64) -> Result<(), Refused> {
        self.room_creations
            .try_take(&user.to_string())
            .map_err(|retry_after| Refused::TooOften {
                message: format!(
                    "you may create {} rooms an hour; try again in {} s",
                    self.creations_per_hour,
                    retry_secs(retry_after)
                ),
                retry_after,
            })
    }

    pub fn creation_failed(&self, user: u64) {
        self.room_creations.give_back(&user.to_string());
    }

    /// The one gate for every request that names a room, over HTTP and the socket alike: the
    /// code as the client wrote it, from `ip`, by `caller` (`None` before sign-in: an invite
    /// link's page). An address that has tried too many unknown codes may still name rooms its
    /// user belongs to, and nothing else; membership gives nothing away, since a code the
    /// caller is not a member of is refused the same whether or not the room exists. Text that
    /// cannot be a code counts as an unknown code. Whether the room exists is for its owner to
    /// say (the store, or the room's actor); the caller then reports [`Limits::unknown_code`].
    pub fn admit(
        &self,
        store: &Store,
        ip: IpAddr,
        caller: Option<u64>,
        raw: &str,
    ) -> Result<RoomCode, NotAdmitted> {
        let code = RoomCode::parse(raw);
        if let Err(retry_after) = self.code_guesses.check(&ip_key(ip)) {
            let member = match (&code, caller) {
                (Some(code), Some(user)) => store.is_member(code, user).unwrap_or(false),
                _ => false,
            };
            if !member {
                return Err(NotAdmitted::Guessing(GuessingCodes { retry_after }));
            }
        }
        code.ok_or_else(|| {
            self.unknown_code(ip);
            NotAdmitted::NoSuchCode
        })
    }

    /// `ip` named a room that does not exist.
    pub fn unknown_code(&self, ip: IpAddr) {
        self.code_guesses.record(&ip_key(ip));
    }

    /// Reserves a socket for `user` from `ip`, or says which limit is reached. The slot is
    /// freed when the returned guard is dropped (the socket closed, or the upgrade failed).
    pub fn open_socket(self: &Arc<Self>, user: u64, ip: IpAddr) -> Result<SocketSlot, Refused> {
        let ip = ip_key(ip);
        let mut counts = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let mine = counts.by_user.get(&user).copied().unwrap_or(0);
        if self.max_sockets_per_user > 0 && mine >= self.max_sockets_per_user {
            return Err(Refused::TooManySockets(format!(
                "you have {mine} connections open, the most this server allows; close a tab or \
                 another device's app"
            )));
        }
        let from_ip = counts.by_ip.get(&ip).copied().unwrap_or(0);
        if self.max_sockets_per_ip > 0 && from_ip >= self.max_sockets_per_ip {
            return Err(Refused::TooManySockets(format!(
                "{from_ip} connections are open from your address, the most this server allows"
            )));
        }
        *counts.by_user.entry(user).or_default() += 1;
        *counts.by_ip.entry(ip.clone()).or_default() += 1;
        Ok(SocketSlot {
            limits: self.clone(),
            user,
            ip,
        })
    }
}

/// One open (or opening) socket's place in the per-user and per-address counts.
pub struct SocketSlot {
    limits: Arc<Limits>,
    user: u64,
    ip: String,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self
            .limits
            .sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
            if let Some(count) = map.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    map.remove(key);
                }
            }
        }
        release(&mut counts.by_user, &self.user);
        release(&mut counts.by_ip, &self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_slots_count_per_user_and_address_and_free_on_drop() {
        let config = Config {
            ws: crate::config::WsConfig {
                max_sockets_per_user: 2,
                max_sockets_per_ip: 3,
                ..crate::config::WsConfig::default()
            },
            ..Config::default()
        };
        let limits = Arc::new(Limits::from_config(&config));
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = limits.open_socket(1, here).unwrap();
        let _a2 = limits.open_socket(1, here).unwrap();
        assert!(limits.open_socket(1, there).is_err(), "user 1 is at 2");
        let _b1 = limits.open_socket(2, here).unwrap();
        assert!(limits.open_socket(3, here).is_err(), "the address is at 3");
        assert!(limits.open_socket(3, there).is_ok());
        drop(a1);
        assert!(limits.open_socket(1, there).is_ok());
    }
}
