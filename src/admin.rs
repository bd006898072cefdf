//! What `hearth user …` does: account administration straight on the data directory.
//!
//! These commands open the store themselves, so they run while the server is stopped; against a
//! running server they fail with the store's "is hearth already running?".

use crate::auth::{AuthError, AuthService};
use crate::config::Config;
use crate::store::{Store, StoreError, UserRecord};

pub struct Accounts {
    store: Store,
    auth: AuthService,
}

impl Accounts {
    /// Opens the data directory named by `config`. Needs a tokio runtime.
    pub fn open(config: &Config) -> Result<Accounts, StoreError> {
        let store = Store::open_configured(&config.data_dir, &config.store)?;
        let auth = AuthService::new(store.clone(), config.auth.clone());
        Ok(Accounts { store, auth })
    }

    pub async fn add(&self, username: &str, password: String) -> Result<UserRecord, AuthError> {
        self.auth.create_password_user(username, password).await
    }

    /// Changes the password; the user's sessions end.
    pub async fn passwd(&self, username: &str, password: String) -> Result<UserRecord, AuthError> {
        self.auth.set_password(username, password).await
    }

    /// Disables or re-enables; disabling ends the user's sessions.
    pub async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<UserRecord, AuthError> {
        self.auth.set_disabled(username, disabled).await
    }

    pub fn list(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.store.list_users()
    }

    /// Flushes and seals the database (a clean stop: the next start need not read it all).
    pub fn close(self) -> Result<(), StoreError> {
        self.store.seal_clean_stop()
    }
}
