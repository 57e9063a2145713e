//! Re-sealing an item to a cluster's current sealing key without its plaintext leaving
//! memory: the item is opened where it sits (its binding checked as for any unseal), sealed
//! again under the same binding to the current key plus every other recipient it already had,
//! and the plaintext is wiped. `seal reseal` does it offline with an identity, seal-operator's
//! reseal endpoint does it with its own keys; both follow the rules here.
//!
//! The rules, by key id (the item's header names the ids of its recipients):
//! - an item whose ids include the current key is current, and is left as it is;
//! - an item whose ids include none of the cluster's keys is not the cluster's to reseal;
//! - otherwise the cluster's old keys are replaced by the current one, and every other id
//!   must be matched by a recipient the caller knows (the recovery key, another cluster):
//!   an id with no such recipient refuses the item, rather than dropping a recipient.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::item::{SealItemError, seal_item};
use crate::keys::{KeyId, KeyRing, SealRecipient};
use crate::scope::Scope;
use crate::sealed_secret::{SealedSecret, unseal_entry};

/// seal-operator's reseal endpoint, on its HTTP port.
pub const RESEAL_PATH: &str = "/v1/reseal";

/// One item sent to the reseal endpoint, with where it sits: the SealedSecret's namespace,
/// name and scope and the item's key, which its binding must admit.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResealRequest {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub scope: Scope,
    pub key: String,
    /// The item's base64, as in `spec.encryptedData`.
    pub item: String,
    /// The recipients (age1...) of the item's other keys, to keep: each must have an id the
    /// item's header names.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The id of the sealing key the caller expects (the one published in the public-key
    /// ConfigMap): refused if the operator's differs, so nothing is sealed to a key that is
    /// not yet published (and backed up).
    pub to: String,
}

/// The endpoint's answer to a resealed item: ciphertext and key ids only.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResealReply {
    pub item: String,
    pub from: Vec<String>,
    pub to: Vec<String>,
}

/// Where an item stands against a cluster's keys, read from the ids its header names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Already sealed to the current key.
    Current,
    /// Sealed to these old keys of the cluster, not to the current one.
    Stale { old: Vec<KeyId> },
    /// Sealed to none of the cluster's keys.
    NotTheClusters,
}

/// A cluster's keys as resealing sees them: the one that seals now, and every key it holds
/// (the current one included), whose ids are the cluster's own in an item's header.
pub struct ClusterKeys<'a> {
    pub current: &'a SealRecipient,
    pub all: &'a [KeyId],
}

impl ClusterKeys<'_> {
    fn owns(&self, id: KeyId) -> bool {
        id == self.current.id || self.all.contains(&id)
    }

    /// Where an item sealed to `sealed_to` stands.
    pub fn standing(&self, sealed_to: &[KeyId]) -> Standing {
        if sealed_to.contains(&self.current.id) {
            return Standing::Current;
        }
        let mut old: Vec<KeyId> = Vec::new();
        for id in sealed_to.iter().copied().filter(|id| self.owns(*id)) {
            if !old.contains(&id) {
                old.push(id);
            }
        }
        if old.is_empty() {
            Standing::NotTheClusters
        } else {
            Standing::Stale { old }
        }
    }

    /// The recipients a stale item sealed to `sealed_to` is sealed to again: in the header's
    /// order, the cluster's old keys replaced by the current one (once), every other id by the
    /// recipient in `known` that has it.
    pub fn recipients_for(
        &self,
        sealed_to: &[KeyId],
        known: &[SealRecipient],
    ) -> Result<Vec<SealRecipient>, RecipientsError> {
        match self.standing(sealed_to) {
            Standing::Current => return Err(RecipientsError::AlreadyCurrent),
            Standing::NotTheClusters => return Err(RecipientsError::NotTheClusters),
            Standing::Stale { .. } => {}
        }
        let mut recipients: Vec<SealRecipient> = Vec::with_capacity(sealed_to.len());
        let mut missing: Vec<KeyId> = Vec::new();
        for &id in sealed_to {
            let next = if self.owns(id) {
                self.current
            } else if let Some(found) = known.iter().find(|r| r.id == id) {
                found
            } else {
                if !missing.contains(&id) {
                    missing.push(id);
                }
                continue;
            };
            if !recipients.iter().any(|r| r.id == next.id) {
                recipients.push(next.clone());
            }
        }
        if !missing.is_empty() {
            return Err(RecipientsError::Unknown { ids: missing });
        }
        Ok(recipients)
    }
}

/// Refuses recipients offered for an item that its header does not name: a reseal may keep
/// recipients, never add one.
pub fn check_offered(
    offered: &[SealRecipient],
    sealed_to: &[KeyId],
) -> Result<(), RecipientsError> {
    let foreign: BTreeSet<KeyId> = offered
        .iter()
        .map(|r| r.id)
        .filter(|id| !sealed_to.contains(id))
        .collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(RecipientsError::Foreign {
            ids: foreign.into_iter().collect(),
        })
    }
}

/// Why an item's new recipients could not be worked out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecipientsError {
    #[error("it is already sealed to the current key")]
    AlreadyCurrent,
    #[error("it is sealed to none of the cluster's keys")]
    NotTheClusters,
    #[error(
        "it is also sealed to {}, whose recipient is not known here; resealing without it would drop it",
        Ids(.ids)
    )]
    Unknown { ids: Vec<KeyId> },
    #[error(
        "recipient(s) {} are not among the keys the item is sealed to; a reseal keeps recipients, it never adds one",
        Ids(.ids)
    )]
    Foreign { ids: Vec<KeyId> },
}

impl RecipientsError {
    /// A CamelCase reason, as Kubernetes statuses and the audit log use.
    pub fn reason(&self) -> &'static str {
        match self {
            RecipientsError::AlreadyCurrent => "AlreadyCurrent",
            RecipientsError::NotTheClusters => "NotTheClusters",
            RecipientsError::Unknown { .. } => "UnknownRecipient",
            RecipientsError::Foreign { .. } => "ForeignRecipient",
        }
    }
}

struct Ids<'a>(&'a [KeyId]);

impl fmt::Display for Ids<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

/// Why an item was not resealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResealError {
    /// It did not open where it sits: no key, a binding or scope that does not match, damage.
    #[error(transparent)]
    Open(Error),
    #[error("item {key:?}: {source}")]
    Recipients {
        key: String,
        source: RecipientsError,
    },
    #[error("item {key:?}: {source}")]
    Seal { key: String, source: SealItemError },
}

impl ResealError {
    /// A CamelCase reason for statuses and audit lines.
    pub fn reason(&self) -> &'static str {
        match self {
            ResealError::Open(Error::Unseal { source, .. }) => source.reason(),
            ResealError::Open(Error::ScopeMismatch { .. }) => "BindingMismatch",
            ResealError::Open(_) => "InvalidSpec",
            ResealError::Recipients { source, .. } => source.reason(),
            ResealError::Seal { .. } => "SealFailed",
        }
    }
}

/// An item sealed again: its new base64, and the key ids before and after.
#[derive(Clone, Debug)]
pub struct Resealed {
    pub encoded: String,
    pub from: Vec<KeyId>,
    pub to: Vec<KeyId>,
}

/// Reseals the item `key` of `sealed` (its base64 `encoded`) with a key of `ring`: opened
/// only where its binding and scope admit it (the checks every unseal makes), sealed again
/// under the same binding to `keys.current` and the item's other recipients, found in
/// `known` by the ids its authenticated header names.
pub fn reseal_entry(
    sealed: &SealedSecret,
    key: &str,
    encoded: &str,
    ring: &KeyRing,
    keys: &ClusterKeys<'_>,
    known: &[SealRecipient],
) -> Result<Resealed, ResealError> {
    let unsealed = unseal_entry(sealed, key, encoded, ring).map_err(ResealError::Open)?;
    // The header MAC held: these ids are the item's, not what someone wrote next to it.
    let recipients = keys
        .recipients_for(&unsealed.sealed_to, known)
        .map_err(|source| ResealError::Recipients {
            key: key.to_owned(),
            source,
        })?;
    let ciphertext =
        seal_item(&unsealed.value, &unsealed.binding, &recipients).map_err(|source| {
            ResealError::Seal {
                key: key.to_owned(),
                source,
            }
        })?;
    Ok(Resealed {
        encoded: STANDARD.encode(ciphertext),
        from: unsealed.sealed_to.clone(),
        to: recipients.iter().map(|r| r.id).collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::keys::SealIdentity;
    use crate::scope::Scope;
    use crate::sealed_secret::{SealedSecretSpec, SecretTemplate, seal_items_into};

    fn sealed(namespace: &str, name: &str, scope: Scope) -> SealedSecret {
        let mut sealed = SealedSecret::new(
            name,
            SealedSecretSpec {
                scope,
                encrypted_data: BTreeMap::new(),
                template: SecretTemplate::default(),
            },
        );
        sealed.metadata.namespace = Some(namespace.to_owned());
        sealed
    }

    struct Setup {
        old: SealIdentity,
        new: SealIdentity,
        recovery: SealIdentity,
    }

    fn setup() -> Setup {
        Setup {
            old: SealIdentity::generate(),
            new: SealIdentity::generate(),
            recovery: SealIdentity::generate(),
        }
    }

    #[test]
    fn standing_follows_the_ids_in_the_header() {
        let s = setup();
        let current = s.new.recipient();
        let all = [s.old.id, s.new.id];
        let keys = ClusterKeys {
            current: &current,
            all: &all,
        };
        assert_eq!(keys.standing(&[s.new.id, s.recovery.id]), Standing::Current);
        assert_eq!(
            keys.standing(&[s.recovery.id, s.old.id]),
            Standing::Stale {
                old: vec![s.old.id]
            }
        );
        assert_eq!(keys.standing(&[s.recovery.id]), Standing::NotTheClusters);
    }

    #[test]
    fn old_keys_give_way_to_the_current_one_and_other_recipients_stay_in_order() {
        let s = setup();
        let older = SealIdentity::generate();
        let current = s.new.recipient();
        let all = [older.id, s.old.id, s.new.id];
        let keys = ClusterKeys {
            current: &current,
            all: &all,
        };
        let known = [s.recovery.recipient()];
        let ids: Vec<KeyId> = keys
            .recipients_for(&[older.id, s.recovery.id, s.old.id], &known)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![s.new.id, s.recovery.id]);
    }

    #[test]
    fn a_recipient_that_cannot_be_reconstructed_refuses_the_item() {
        let s = setup();
        let current = s.new.recipient();
        let all = [s.old.id, s.new.id];
        let keys = ClusterKeys {
            current: &current,
            all: &all,
        };
        let err = keys
            .recipients_for(&[s.old.id, s.recovery.id], &[])
            .unwrap_err();
        assert_eq!(
            err,
            RecipientsError::Unknown {
                ids: vec![s.recovery.id]
            }
        );
        assert!(
            err.to_string().contains(&s.recovery.id.to_string()),
            "{err}"
        );
    }

    #[test]
    fn an_offered_recipient_the_item_does_not_name_is_refused() {
        let s = setup();
        let stranger = SealIdentity::generate().recipient();
        let header = [s.old.id, s.recovery.id];
        assert!(check_offered(&[s.recovery.recipient()], &header).is_ok());
        assert_eq!(
            check_offered(&[s.recovery.recipient(), stranger.clone()], &header),
            Err(RecipientsError::Foreign {
                ids: vec![stranger.id]
            })
        );
    }

    #[test]
    fn a_stale_item_is_resealed_under_its_binding_and_still_opens_with_the_recovery_key() {
        let s = setup();
        let mut doc = sealed("prod", "db", Scope::Strict);
        seal_items_into(
            &mut doc,
            [("password", b"hunter2".as_slice())],
            &[s.old.recipient(), s.recovery.recipient()],
        )
        .unwrap();
        let mut ring = KeyRing::new();
        ring.insert(SealIdentity::from_identity(s.recovery.identity.clone()));
        let current = s.new.recipient();
        let all = [s.old.id, s.new.id];
        let keys = ClusterKeys {
            current: &current,
            all: &all,
        };
        let encoded = doc.spec.encrypted_data["password"].clone();
        let resealed = reseal_entry(
            &doc,
            "password",
            &encoded,
            &ring,
            &keys,
            &[s.recovery.recipient()],
        )
        .unwrap();
        assert_eq!(resealed.from, vec![s.old.id, s.recovery.id]);
        assert_eq!(resealed.to, vec![s.new.id, s.recovery.id]);
        doc.spec
            .encrypted_data
            .insert("password".into(), resealed.encoded.clone());
        for identity in [&s.new, &s.recovery] {
            let mut ring = KeyRing::new();
            ring.insert(SealIdentity::from_identity(identity.identity.clone()));
            let opened = unseal_entry(&doc, "password", &resealed.encoded, &ring).unwrap();
            assert_eq!(opened.value.as_slice(), b"hunter2");
            assert_eq!(opened.binding.namespace, "prod");
        }
        let mut old_only = KeyRing::new();
        old_only.insert(SealIdentity::from_identity(s.old.identity.clone()));
        assert!(unseal_entry(&doc, "password", &resealed.encoded, &old_only).is_err());
    }

    #[test]
    fn an_item_that_does_not_belong_where_it_sits_is_not_resealed() {
        let s = setup();
        let mut elsewhere = sealed("staging", "db", Scope::Strict);
        seal_items_into(
            &mut elsewhere,
            [("password", b"x".as_slice())],
            &[s.old.recipient(), s.recovery.recipient()],
        )
        .unwrap();
        let encoded = elsewhere.spec.encrypted_data["password"].clone();
        let here = sealed("prod", "db", Scope::Strict);
        let mut ring = KeyRing::new();
        ring.insert(SealIdentity::from_identity(s.old.identity.clone()));
        let current = s.new.recipient();
        let all = [s.old.id, s.new.id];
        let keys = ClusterKeys {
            current: &current,
            all: &all,
        };
        let err = reseal_entry(
            &here,
            "password",
            &encoded,
            &ring,
            &keys,
            &[s.recovery.recipient()],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "BindingMismatch", "{err}");
        // The same item under another key of the same Secret, and under another scope.
        let err = reseal_entry(
            &elsewhere,
            "user",
            &encoded,
            &ring,
            &keys,
            &[s.recovery.recipient()],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "BindingMismatch", "{err}");
        let mut wide = sealed("staging", "db", Scope::NamespaceWide);
        wide.spec
            .encrypted_data
            .insert("password".into(), encoded.clone());
        let err = reseal_entry(
            &wide,
            "password",
            &encoded,
            &ring,
            &keys,
            &[s.recovery.recipient()],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "BindingMismatch", "{err}");
    }
}
