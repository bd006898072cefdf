//! Which account an OIDC identity is linked to, by (issuer, `sub`): identities from before
//! issuers were recorded are upgraded in place, and ones linked under an issuer the provider
//! no longer has are refused ([`OAuthError::IssuerChanged`]).

use std::collections::HashMap;

use super::provider::{Provider, ProviderUser};
use super::{OAuth, OAuthError};
use crate::store::identities::IdentityStoreError;

impl OAuth {
    /// The user the identity is linked to, if any. For an OIDC provider that is the identity
    /// under its current issuer; one under an earlier issuer is refused; one linked before
    /// issuers were recorded is upgraded in place, read as the current issuer's, unless the
    /// provider had an earlier issuer (then it is at least as old as that one's).
    pub(super) async fn linked_user(
        &self,
        provider: &Provider,
        who: &ProviderUser,
    ) -> Result<Option<u64>, OAuthError> {
        let Some(issuer) = provider.issuer() else {
            return Ok(self.store.identity_user(&provider.name, &who.subject)?);
        };
        if let Some(id) = self.store.identity_user(issuer, &who.subject)? {
            return Ok(Some(id));
        }
        let earlier = self.earlier_issuers(provider).await?;
        let changed = |earlier: &str| {
            let refusal = OAuthError::IssuerChanged {
                provider: provider.name.clone(),
                earlier: earlier.to_string(),
                now: issuer.to_string(),
            };
            tracing::warn!(
                provider = %provider.name,
                error = %refusal,
                "sign-in refused: the provider's issuer changed"
            );
            refusal
        };
        for old in &earlier {
            if self.store.identity_user(old, &who.subject)?.is_some() {
                return Err(changed(old));
            }
        }
        let Some(id) = self.store.identity_user(&provider.name, &who.subject)? else {
            return Ok(None);
        };
        if let Some(old) = earlier.first() {
            return Err(changed(old));
        }
        let ticket = self.store.ticket();
        match self.store.adopt_issuer(id, &provider.name, issuer) {
            Ok(()) => self.store.commit_since(ticket).await?,
            // A concurrent sign-in of the same person upgraded it first.
            Err(IdentityStoreError::NotLinked) => {
                return Ok(self.store.identity_user(issuer, &who.subject)?)
            }
            Err(IdentityStoreError::Store(e)) => return Err(e.into()),
            Err(other) => return Err(OAuthError::Internal(other.to_string())),
        }
        tracing::info!(
            provider = %provider.name,
            %issuer,
            "an identity linked before issuers were recorded is now keyed by the issuer"
        );
        Ok(Some(id))
    }

    /// The issuers other than its current one that `provider`'s identities were linked under.
    async fn earlier_issuers(&self, provider: &Provider) -> Result<Vec<String>, OAuthError> {
        let all = self
            .earlier_issuers
            .get_or_try_init(|| async {
                let mut earlier = HashMap::new();
                for p in &self.providers {
                    let Some(current) = p.issuer() else { continue };
                    let others: Vec<String> = self
                        .store
                        .issuers_of_provider(&p.name)?
                        .into_iter()
                        .filter(|i| i != current)
                        .collect();
                    if !others.is_empty() {
                        tracing::warn!(
                            provider = %p.name,
                            issuer = %current,
                            earlier = ?others,
                            "the provider's issuer changed: identities linked under an earlier \
                             issuer are refused at sign-in"
                        );
                    }
                    earlier.insert(p.name.clone(), others);
                }
                Ok::<_, OAuthError>(earlier)
            })
            .await?;
        Ok(all.get(&provider.name).cloned().unwrap_or_default())
    }
}
