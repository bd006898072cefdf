//! Sign-in identities at OAuth providers and the local users they map to.
//!
//! Keys: `identities` space ++ 0x00 ++ provider's user id -> local user id (u64 BE), where the
//! space is the OIDC issuer for identities verified by one ([`IdentityRecord::issuer`]) and the
//! configured provider name otherwise (plain OAuth2, and OIDC identities linked before issuers
//! were recorded, until [`Store::adopt_issuer`] moves them); issuers are URLs and provider names
//! cannot contain ':', so the two never meet. `user_identities` user id (u64 BE) -> JSON list of
//! [`IdentityRecord`], at most one per provider. Both trees change only together, in transactions, so the two directions agree and
//! the last-sign-in-method check in [`Store::unlink_identity`] cannot race another unlink.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use super::accounts::{NewUser, UserRecord};
use super::{decode, encode, Result, Store, StoreError};

/// One provider identity linked to a local user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdentityRecord {
    /// The configured provider name: `github`, `google`, or a generic provider's name.
    pub provider: String,
    /// The OIDC issuer that vouched for the identity, which keys it together with `subject`:
    /// re-pointing a provider name at another issuer cannot reach it. None for plain OAuth2
    /// providers and for identities linked before issuers were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The provider's stable id of the user (GitHub's numeric id, OIDC's `sub`).
    pub subject: String,
    /// The provider's login when linked (shown to the user; not used for matching).
    pub login: String,
    /// A verified email the provider reported, if any (shown only; never used to match).
    pub email: Option<String>,
    /// Unix milliseconds.
    pub linked_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityStoreError {
    #[error("username is taken")]
    UsernameTaken,
    /// The identity belongs to this user already.
    #[error("identity is linked to user {0}")]
    LinkedTo(u64),
    #[error("the user has another identity at this provider")]
    ProviderTaken,
    #[error("no identity at this provider")]
    NotLinked,
    #[error("it is the user's last way to sign in")]
    LastMethod,
    #[error("no such user")]
    NoUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a transaction body stopped.
enum Abort {
    Refused(IdentityStoreError),
    Corrupt(StoreError),
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<Abort>>;

fn identity_key(space: &str, subject: &str) -> Vec<u8> {
    let mut key = space.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(subject.as_bytes());
    key
}

impl IdentityRecord {
    /// Its key in `identities`: under its issuer if it has one, else under the provider name.
    fn key(&self) -> Vec<u8> {
        identity_key(
            self.issuer.as_deref().unwrap_or(&self.provider),
            &self.subject,
        )
    }
}

fn refuse<T>(e: IdentityStoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(Abort::Refused(e)))
}

fn corrupt(e: StoreError) -> ConflictableTransactionError<Abort> {
    ConflictableTransactionError::Abort(Abort::Corrupt(e))
}

fn finish<T>(
    outcome: std::result::Result<T, TransactionError<Abort>>,
) -> Result<T, IdentityStoreError> {
    match outcome {
        Ok(value) => Ok(value),
        Err(TransactionError::Abort(Abort::Refused(e))) => Err(e),
        Err(TransactionError::Abort(Abort::Corrupt(e))) => Err(e.into()),
        Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e).into()),
    }
}

fn read_id(raw: &[u8]) -> std::result::Result<u64, StoreError> {
    let bytes: [u8; 8] = raw.try_into().map_err(|_| StoreError::Corrupt {
        tree: "identities",
        detail: "user id is not 8 bytes".into(),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn list_in(
    tree: &TransactionalTree,
    user_id: u64,
) -> std::result::Result<Vec<IdentityRecord>, ConflictableTransactionError<Abort>> {
    match tree.get(user_id.to_be_bytes())? {
        Some(raw) => decode("user_identities", &raw).map_err(corrupt),
        None => Ok(Vec::new()),
    }
}

fn user_in(
    tree: &TransactionalTree,
    user_id: u64,
) -> std::result::Result<Option<UserRecord>, ConflictableTransactionError<Abort>> {
    match tree.get(user_id.to_be_bytes())? {
        Some(raw) => decode("users", &raw).map(Some).map_err(corrupt),
        None => Ok(None),
    }
}

impl super::WriteError for IdentityStoreError {
    fn store_failure(&self) -> bool {
        matches!(self, IdentityStoreError::Store(e) if e.is_failure())
    }
}

impl Store {
    /// The local user an identity maps to; `space` is the issuer of an OIDC identity, the
    /// provider name of any other (see the module's keys).
    pub fn identity_user(&self, space: &str, subject: &str) -> Result<Option<u64>> {
        self.trees()?
            .identities
            .get(identity_key(space, subject))?
            .map(|raw| read_id(&raw))
            .transpose()
    }

    /// The identities linked to a user, in the order they were linked.
    pub fn identities_of(&self, user_id: u64) -> Result<Vec<IdentityRecord>> {
        self.trees()?
            .user_identities
            .get(user_id.to_be_bytes())?
            .map(|raw| decode("user_identities", &raw))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Creates a user for a first sign-in and links the identity to it, atomically: refuses
    /// with [`IdentityStoreError::UsernameTaken`] or, when a concurrent sign-in won,
    /// [`IdentityStoreError::LinkedTo`] that user.
    pub fn create_user_with_identity(
        &self,
        new: NewUser,
        identity: IdentityRecord,
    ) -> Result<UserRecord, IdentityStoreError> {
        self.write(|t| {
            let id = self.id_in(t)?;
            let record = new.into_record(id);
            let encoded_user = encode(&record);
            let encoded_list = encode(&vec![identity.clone()]);
            let key = identity.key();
            let outcome = (&t.usernames, &t.users, &t.identities, &t.user_identities).transaction(
                |(names, users, identities, by_user)| {
                    if let Some(raw) = identities.get(&key)? {
                        let owner = read_id(&raw).map_err(corrupt)?;
                        return refuse(IdentityStoreError::LinkedTo(owner));
                    }
                    if names.get(record.username.as_bytes())?.is_some() {
                        return refuse(IdentityStoreError::UsernameTaken);
                    }
                    names.insert(record.username.as_bytes(), &id.to_be_bytes())?;
                    users.insert(&id.to_be_bytes(), encoded_user.as_slice())?;
                    identities.insert(key.as_slice(), &id.to_be_bytes())?;
                    by_user.insert(&id.to_be_bytes(), encoded_list.as_slice())?;
                    Ok(())
                },
            );
            finish(outcome).map(|()| record)
        })
    }

    /// Links an identity to an existing user. Linking the same identity again is a no-op; an
    /// identity of another user is [`IdentityStoreError::LinkedTo`], and a second identity at
    /// the same provider is [`IdentityStoreError::ProviderTaken`].
    pub fn link_identity(
        &self,
        user_id: u64,
        identity: IdentityRecord,
    ) -> Result<(), IdentityStoreError> {
        self.write(|t| {
            let key = identity.key();
            let outcome = (&t.users, &t.identities, &t.user_identities).transaction(
                |(users, identities, by_user)| {
                    if user_in(users, user_id)?.is_none() {
                        return refuse(IdentityStoreError::NoUser);
                    }
                    if let Some(raw) = identities.get(&key)? {
                        let owner = read_id(&raw).map_err(corrupt)?;
                        return if owner == user_id {
                            Ok(())
                        } else {
                            refuse(IdentityStoreError::LinkedTo(owner))
                        };
                    }
                    let mut list = list_in(by_user, user_id)?;
                    if list.iter().any(|i| i.provider == identity.provider) {
                        return refuse(IdentityStoreError::ProviderTaken);
                    }
                    list.push(identity.clone());
                    identities.insert(key.as_slice(), &user_id.to_be_bytes())?;
                    by_user.insert(&user_id.to_be_bytes(), encode(&list))?;
                    Ok(())
                },
            );
            finish(outcome)
        })
    }

    /// Removes the user's identity at `provider`, unless it is their last way to sign in: a
    /// password, or another identity at a provider for which `usable` is true, must remain.
    pub fn unlink_identity(
        &self,
        user_id: u64,
        provider: &str,
        usable: &dyn Fn(&str) -> bool,
    ) -> Result<IdentityRecord, IdentityStoreError> {
        self.write(|t| {
            let outcome = (&t.users, &t.identities, &t.user_identities).transaction(
                |(users, identities, by_user)| {
                    let Some(user) = user_in(users, user_id)? else {
                        return refuse(IdentityStoreError::NoUser);
                    };
                    let mut list = list_in(by_user, user_id)?;
                    let Some(index) = list.iter().position(|i| i.provider == provider) else {
                        return refuse(IdentityStoreError::NotLinked);
                    };
                    let removed = list.remove(index);
                    let remains =
                        user.password_hash.is_some() || list.iter().any(|i| usable(&i.provider));
                    if !remains {
                        return refuse(IdentityStoreError::LastMethod);
                    }
                    identities.remove(removed.key())?;
                    if list.is_empty() {
                        by_user.remove(&user_id.to_be_bytes())?;
                    } else {
                        by_user.insert(&user_id.to_be_bytes(), encode(&list))?;
                    }
                    Ok(removed)
                },
            );
            finish(outcome)
        })
    }

    /// The issuers recorded on identities of the provider named `provider`.
    pub fn issuers_of_provider(&self, provider: &str) -> Result<BTreeSet<String>> {
        let mut issuers = BTreeSet::new();
        for entry in self.trees()?.user_identities.iter() {
            let (_, raw) = entry?;
            let list: Vec<IdentityRecord> = decode("user_identities", &raw)?;
            issuers.extend(
                list.into_iter()
                    .filter(|i| i.provider == provider)
                    .filter_map(|i| i.issuer),
            );
        }
        Ok(issuers)
    }

    /// Upgrades in place the user's identity at `provider` that was linked before issuers
    /// were recorded: it is read as `issuer`'s and moved under it.
    pub fn adopt_issuer(
        &self,
        user_id: u64,
        provider: &str,
        issuer: &str,
    ) -> Result<(), IdentityStoreError> {
        self.write(|t| {
            let outcome =
                (&t.identities, &t.user_identities).transaction(|(identities, by_user)| {
                    let mut list = list_in(by_user, user_id)?;
                    let Some(record) = list
                        .iter_mut()
                        .find(|i| i.provider == provider && i.issuer.is_none())
                    else {
                        return refuse(IdentityStoreError::NotLinked);
                    };
                    let old_key = record.key();
                    record.issuer = Some(issuer.to_string());
                    let new_key = record.key();
                    if let Some(raw) = identities.get(&new_key)? {
                        let owner = read_id(&raw).map_err(corrupt)?;
                        if owner != user_id {
                            return refuse(IdentityStoreError::LinkedTo(owner));
                        }
                    }
                    identities.remove(old_key)?;
                    identities.insert(new_key, &user_id.to_be_bytes())?;
                    by_user.insert(&user_id.to_be_bytes(), encode(&list))?;
                    Ok(())
                });
            finish(outcome)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(provider: &str, subject: &str) -> IdentityRecord {
        IdentityRecord {
            provider: provider.into(),
            issuer: None,
            subject: subject.into(),
            login: "octo".into(),
            email: None,
            linked_at: 1,
        }
    }

    fn new_user(name: &str, password: bool) -> NewUser {
        NewUser {
            username: crate::ids::name(name),
            display_name: name.into(),
            password_hash: password.then(|| "hash".to_string()),
            bot: false,
            created_at: 1,
        }
    }

    #[tokio::test]
    async fn identities_map_both_ways_and_keep_a_way_in() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let octo = store
            .create_user_with_identity(new_user("octo", false), identity("github", "1"))
            .unwrap();
        assert_eq!(store.identity_user("github", "1").unwrap(), Some(octo.id));
        assert!(matches!(
            store.create_user_with_identity(new_user("octo2", false), identity("github", "1")),
            Err(IdentityStoreError::LinkedTo(id)) if id == octo.id
        ));
        assert!(matches!(
            store.create_user_with_identity(new_user("octo", false), identity("github", "2")),
            Err(IdentityStoreError::UsernameTaken)
        ));
        assert_eq!(
            store.user_by_name(&crate::ids::name("octo2")).unwrap(),
            None,
            "nothing half-made"
        );

        let everyone = |_: &str| true;
        assert!(matches!(
            store.unlink_identity(octo.id, "github", &everyone),
            Err(IdentityStoreError::LastMethod)
        ));
        store
            .link_identity(octo.id, identity("google", "g1"))
            .unwrap();
        store
            .link_identity(octo.id, identity("google", "g1"))
            .unwrap();
        assert!(matches!(
            store.link_identity(octo.id, identity("google", "g2")),
            Err(IdentityStoreError::ProviderTaken)
        ));
        assert_eq!(store.identities_of(octo.id).unwrap().len(), 2);
        // A provider that is no longer configured is no way in.
        let no_google = |p: &str| p != "google";
        assert!(matches!(
            store.unlink_identity(octo.id, "github", &no_google),
            Err(IdentityStoreError::LastMethod)
        ));
        store.unlink_identity(octo.id, "github", &everyone).unwrap();
        assert_eq!(store.identity_user("github", "1").unwrap(), None);
        assert!(matches!(
            store.unlink_identity(octo.id, "github", &everyone),
            Err(IdentityStoreError::NotLinked)
        ));

        let pw = store.create_user(new_user("pwd", true)).unwrap();
        store.link_identity(pw.id, identity("github", "9")).unwrap();
        store.unlink_identity(pw.id, "github", &everyone).unwrap();
        assert!(store.identities_of(pw.id).unwrap().is_empty());
    }

    #[tokio::test]
    async fn oidc_identities_are_keyed_by_issuer_and_old_ones_move_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let issued = |subject: &str| IdentityRecord {
            issuer: Some("https://id.example".into()),
            ..identity("idp", subject)
        };
        let new = store
            .create_user_with_identity(new_user("new", false), issued("s1"))
            .unwrap();
        assert_eq!(
            store.identity_user("https://id.example", "s1").unwrap(),
            Some(new.id)
        );
        assert_eq!(
            store.identity_user("idp", "s1").unwrap(),
            None,
            "not by name"
        );

        // One linked before issuers were recorded: under the name until adopted.
        let old = store
            .create_user_with_identity(new_user("old", false), identity("idp", "s2"))
            .unwrap();
        assert_eq!(store.identity_user("idp", "s2").unwrap(), Some(old.id));
        store
            .adopt_issuer(old.id, "idp", "https://id.example")
            .unwrap();
        assert_eq!(store.identity_user("idp", "s2").unwrap(), None);
        assert_eq!(
            store.identity_user("https://id.example", "s2").unwrap(),
            Some(old.id)
        );
        assert_eq!(
            store.identities_of(old.id).unwrap()[0].issuer.as_deref(),
            Some("https://id.example")
        );
        assert!(matches!(
            store.adopt_issuer(old.id, "idp", "https://id.example"),
            Err(IdentityStoreError::NotLinked)
        ));
        assert_eq!(
            store
                .issuers_of_provider("idp")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["https://id.example"]
        );
        assert!(store.issuers_of_provider("github").unwrap().is_empty());

        // Unlinking removes the issuer's key.
        store
            .link_identity(old.id, identity("github", "7"))
            .unwrap();
        store.unlink_identity(old.id, "idp", &|_| true).unwrap();
        assert_eq!(
            store.identity_user("https://id.example", "s2").unwrap(),
            None
        );
    }
}
