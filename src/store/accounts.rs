//! Account records: users, the username index, and sessions (kept by token hash only).
//!
//! Keys: `users` id (u64 BE) -> [`UserRecord`]; `usernames` [`Username`] -> id;
//! `sessions` sha256(token) -> [`SessionRecord`]; `user_sessions` id ++ sha256(token) -> ()
//! so that all of a user's sessions can be revoked at once.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{decode, encode, Result, Store, StoreError};
use crate::ids::Username;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserRecord {
    pub id: u64,
    /// The unique handle used everywhere on the wire.
    pub username: Username,
    pub display_name: String,
    /// argon2id PHC string; `None` for accounts that only sign in through a provider.
    pub password_hash: Option<String>,
    pub bot: bool,
    pub disabled: bool,
    /// Unix milliseconds.
    pub created_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRecord {
    pub user_id: u64,
    pub created_at: u64,
    /// The absolute end: sign-in time plus `auth.session_ttl_days`.
    pub expires_at: u64,
    /// When the session was last used (coarsely: see `AuthService::authenticate`); 0 in
    /// records written before idle expiry existed, which count from `created_at`.
    #[serde(default)]
    pub last_seen_at: u64,
}

impl SessionRecord {
    /// When the session was last known to be in use.
    pub fn last_seen(&self) -> u64 {
        self.last_seen_at.max(self.created_at)
    }
}

/// The outcome of trying to claim a username.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("username is taken")]
    Taken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new account, before it has an id.
pub struct NewUser {
    pub username: Username,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub bot: bool,
    pub created_at: u64,
}

impl NewUser {
    /// The stored record of this user under `id`, enabled.
    pub fn into_record(self, id: u64) -> UserRecord {
        UserRecord {
            id,
            username: self.username,
            display_name: self.display_name,
            password_hash: self.password_hash,
            bot: self.bot,
            disabled: false,
            created_at: self.created_at,
        }
    }
}

fn user_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

fn user_session_key(user_id: u64, token_hash: &[u8]) -> Vec<u8> {
    let mut key = user_key(user_id).to_vec();
    key.extend_from_slice(token_hash);
    key
}

impl Store {
    /// Claims `new.username` and stores the user, atomically.
    pub fn create_user(&self, new: NewUser) -> Result<UserRecord, CreateUserError> {
        self.write(|t| {
            let id = self.id_in(t)?;
            let record = new.into_record(id);
            let encoded = encode(&record);
            let outcome = (&t.usernames, &t.users).transaction(|(names, users)| {
                if names.get(record.username.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                names.insert(record.username.as_bytes(), &user_key(id))?;
                users.insert(&user_key(id), encoded.as_slice())?;
                Ok(())
            });
            match outcome {
                Ok(()) => Ok(record),
                Err(TransactionError::Abort(())) => Err(CreateUserError::Taken),
                Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e).into()),
            }
        })
    }

    pub fn user_by_id(&self, id: u64) -> Result<Option<UserRecord>> {
        self.trees()?
            .users
            .get(user_key(id))?
            .map(|raw| decode("users", &raw))
            .transpose()
    }

    /// Looks a user up by name (a [`Username`] is canonical, so any case a person typed finds
    /// the account).
    pub fn user_by_name(&self, username: &Username) -> Result<Option<UserRecord>> {
        let Some(raw_id) = self.trees()?.usernames.get(username.as_bytes())? else {
            return Ok(None);
        };
        let id: [u8; 8] = raw_id
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt {
                tree: "usernames",
                detail: "id is not 8 bytes".into(),
            })?;
        self.user_by_id(u64::from_be_bytes(id))
    }

    /// Replaces a stored user (same id, same username).
    pub fn update_user(&self, user: &UserRecord) -> Result<()> {
        self.write(|t| {
            t.users.insert(user_key(user.id), encode(user))?;
            Ok(())
        })
    }

    pub fn list_users(&self) -> Result<Vec<UserRecord>> {
        self.trees()?
            .users
            .iter()
            .values()
            .map(|raw| decode("users", &raw?))
            .collect()
    }

    pub fn insert_session(&self, token_hash: &[u8], session: &SessionRecord) -> Result<()> {
        self.write(|t| {
            (&t.sessions, &t.user_sessions)
                .transaction(|(sessions, by_user)| {
                    sessions.insert(token_hash, encode(session))?;
                    by_user.insert(user_session_key(session.user_id, token_hash), &[])?;
                    Ok::<_, ConflictableTransactionError<()>>(())
                })
                .map_err(|e| match e {
                    TransactionError::Storage(e) => StoreError::Sled(e),
                    TransactionError::Abort(()) => StoreError::WriterGone,
                })
        })
    }

    pub fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>> {
        self.trees()?
            .sessions
            .get(token_hash)?
            .map(|raw| decode("sessions", &raw))
            .transpose()
    }

    /// Replaces a session record with `new` only if it still is `old`: a session revoked
    /// meanwhile stays revoked. Answers whether it was replaced.
    pub fn touch_session(
        &self,
        token_hash: &[u8],
        old: &SessionRecord,
        new: &SessionRecord,
    ) -> Result<bool> {
        self.write(|t| {
            let swapped =
                t.sessions
                    .compare_and_swap(token_hash, Some(encode(old)), Some(encode(new)))?;
            Ok(swapped.is_ok())
        })
    }

    pub fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
        self.write(|t| {
            if let Some(raw) = t.sessions.get(token_hash)? {
                let session: SessionRecord = decode("sessions", &raw)?;
                t.user_sessions
                    .remove(user_session_key(session.user_id, token_hash))?;
            }
            t.sessions.remove(token_hash)?;
            Ok(())
        })
    }

    /// Revokes every session of a user; answers how many there were.
    pub fn delete_user_sessions(&self, user_id: u64) -> Result<usize> {
        self.delete_user_sessions_except(user_id, None)
    }

    /// Revokes every session of a user but `keep`; answers how many were revoked.
    pub fn delete_user_sessions_except(&self, user_id: u64, keep: Option<&[u8]>) -> Result<usize> {
        self.write(|t| {
            let mut count = 0;
            for entry in t.user_sessions.scan_prefix(user_key(user_id)) {
                let (key, _) = entry?;
                if keep.is_some_and(|keep| keep == &key[8..]) {
                    continue;
                }
                t.sessions.remove(&key[8..])?;
                t.user_sessions.remove(&key)?;
                count += 1;
            }
            Ok(count)
        })
    }
}

impl super::WriteError for CreateUserError {
    fn store_failure(&self) -> bool {
        matches!(self, CreateUserError::Store(e) if e.is_failure())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_user(name: &str) -> NewUser {
        NewUser {
            username: crate::ids::name(name),
            display_name: name.into(),
            password_hash: None,
            bot: false,
            created_at: 1,
        }
    }

    #[tokio::test]
    async fn usernames_are_unique_and_sessions_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let alice = store.create_user(new_user("alice")).unwrap();
        assert!(matches!(
            store.create_user(new_user("alice")),
            Err(CreateUserError::Taken)
        ));
        assert_eq!(
            store.user_by_name(&crate::ids::name("ALICE")).unwrap(),
            Some(alice.clone())
        );

        let session = SessionRecord {
            user_id: alice.id,
            created_at: 1,
            expires_at: 2,
            last_seen_at: 1,
        };
        store.insert_session(b"h1", &session).unwrap();
        store.insert_session(b"h2", &session).unwrap();
        store.insert_session(b"h3", &session).unwrap();
        assert_eq!(store.session(b"h1").unwrap(), Some(session.clone()));
        assert_eq!(
            store
                .delete_user_sessions_except(alice.id, Some(b"h3"))
                .unwrap(),
            2
        );
        assert_eq!(store.session(b"h2").unwrap(), None);
        assert_eq!(store.session(b"h3").unwrap(), Some(session.clone()));

        // A touch replaces only the record it read: a revoked session stays revoked.
        let touched = SessionRecord {
            last_seen_at: 2,
            ..session.clone()
        };
        assert!(store.touch_session(b"h3", &session, &touched).unwrap());
        assert!(!store.touch_session(b"h3", &session, &touched).unwrap());
        assert_eq!(store.delete_user_sessions(alice.id).unwrap(), 1);
        assert!(!store.touch_session(b"h3", &touched, &session).unwrap());
        assert_eq!(store.session(b"h3").unwrap(), None);
    }
}
