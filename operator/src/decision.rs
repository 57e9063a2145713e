//! What one pass over a SealedSecret should do, decided without I/O: open its items with the
//! key set, plan what to do with the Secret that exists (or does not), and, once the pass has
//! ended, what to report (status, Events, the audit line, when to look again). `unseal.rs`
//! carries these decisions out.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use seal_shared::sealed_secret::{SealedSecret, unseal_entry};
use zeroize::Zeroizing;

use seal_shared::escape::escape;
use seal_shared::keys::KeyId;

use crate::adoption::{self, Claimant, Ownership, Previous};
use crate::keys::{KeyInfo, KeySet, KeyState};
use crate::labels::{ADOPT, KEY_LABEL, KEY_SECRET_PREFIX, KEY_SECRET_TYPE};
use crate::secret::{Change, Desired};
use crate::status::{self, Outcome};

/// A failure that the SealedSecret's author (or an operator of the cluster) must fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
    /// When to look again without a change to the object (for example when keys may arrive).
    pub retry: Option<Duration>,
}

/// How often a SealedSecret whose Secret belongs to someone else is looked at again: unmanaged
/// Secrets are not watched, and their owner may consent at any time.
pub const CONFLICT_RETRY: Duration = Duration::from_secs(15);
/// How often a SealedSecret sealed to keys this cluster lacks is looked at again: a key may
/// still arrive (a new replica's watch, a restored backup).
pub const MISSING_KEY_RETRY: Duration = Duration::from_secs(60);

/// Every item of a SealedSecret, opened. The values are wiped when dropped.
pub struct Opened {
    pub values: BTreeMap<String, Zeroizing<Vec<u8>>>,
    /// The keys that opened them, sorted, each once.
    pub key_ids: Vec<KeyId>,
}

/// Opens every item with the key its binding names, checking each binding against where the
/// item sits. CPU work, and the only place values come into being.
pub fn open(sealed: &SealedSecret, keys: &KeySet) -> Result<Opened, Refusal> {
    let mut values = BTreeMap::new();
    let mut key_ids: Vec<KeyId> = Vec::new();
    for (key, encoded) in &sealed.spec.encrypted_data {
        let unsealed = unseal_entry(sealed, key, encoded, &keys.ring)
            .map_err(|error| retired_refusal(&error, keys).unwrap_or_else(|| refusal(error)))?;
        if !key_ids.contains(&unsealed.key_id) {
            key_ids.push(unsealed.key_id);
        }
        values.insert(key.clone(), unsealed.value);
    }
    key_ids.sort();
    Ok(Opened { values, key_ids })
}

/// How the Secret is to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// None exists: create it (failing, not overwriting, if one appears meanwhile).
    Create,
    /// Patch the existing one into shape, guarded by the version that was read.
    Patch,
    /// Delete exactly the version that was read, then create it.
    Replace,
}

pub enum Plan<'a> {
    Refuse(Refusal),
    /// The Secret already holds exactly what the SealedSecret says.
    Keep,
    Write {
        desired: Box<Desired<'a>>,
        how: Write,
        /// Set when the Secret is being taken over from someone else.
        adopted: Option<Previous>,
    },
}

/// Refuses anything that would make or touch one of the operator's own key Secrets: the key
/// watch loads Secrets by their label, and a key Secret is deleted and written anew on the
/// immutable path, so a SealedSecret must never be able to forge, replace or delete one.
fn touches_keys(
    sealed: &SealedSecret,
    existing: Option<&Secret>,
    key_namespace: &str,
) -> Option<Refusal> {
    let template = &sealed.spec.template;
    let refuse = |what: String| {
        Some(Refusal {
            reason: "InvalidSpec",
            message: format!("{what}; only seal-operator makes its key Secrets"),
            retry: None,
        })
    };
    if template.metadata.labels.contains_key(KEY_LABEL) {
        return refuse(format!("the template sets the label {KEY_LABEL}"));
    }
    if template.type_.as_deref() == Some(KEY_SECRET_TYPE) {
        return refuse(format!("the template asks for type {KEY_SECRET_TYPE}"));
    }
    let name = sealed.name_any();
    if sealed.namespace().as_deref() == Some(key_namespace) && name.starts_with(KEY_SECRET_PREFIX) {
        return refuse(format!(
            "the name {name} is reserved for key Secrets in {key_namespace}"
        ));
    }
    let is_key = existing.is_some_and(|secret| {
        secret.type_.as_deref() == Some(KEY_SECRET_TYPE)
            || secret
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(KEY_LABEL))
    });
    if is_key {
        return refuse(format!("Secret {name} is a key Secret"));
    }
    None
}

/// What to do about the Secret, given what exists. `key_namespace` holds the operator's keys.
pub fn plan<'a>(
    sealed: &'a SealedSecret,
    opened: &'a Opened,
    existing: Option<&Secret>,
    key_namespace: &str,
) -> Plan<'a> {
    if let Some(refusal) = touches_keys(sealed, existing, key_namespace) {
        return Plan::Refuse(refusal);
    }
    let Some(desired) = Desired::new(sealed, &opened.values) else {
        return Plan::Refuse(Refusal {
            reason: "InvalidSpec",
            message: "the SealedSecret has no namespace or uid yet".into(),
            retry: None,
        });
    };
    let Some(existing) = existing else {
        return Plan::Write {
            desired: Box::new(desired),
            how: Write::Create,
            adopted: None,
        };
    };
    let name = sealed.name_any();
    let claimant = Claimant {
        namespace: &desired.namespace,
        name: &name,
        uid: sealed.metadata.uid.as_deref().unwrap_or_default(),
        adopt_requested: sealed.annotations().get(ADOPT).is_some_and(|v| v == "true"),
    };
    let adopted = match adoption::decide(&existing.metadata, &claimant) {
        Ownership::Owned => None,
        Ownership::Adopt(previous) => Some(previous),
        Ownership::Refuse(message) => {
            return Plan::Refuse(Refusal {
                reason: "SecretConflict",
                message,
                retry: Some(CONFLICT_RETRY),
            });
        }
    };
    let how = match desired.change_from(existing) {
        Change::None => return Plan::Keep,
        Change::Patch => Write::Patch,
        Change::Replace => Write::Replace,
    };
    Plan::Write {
        desired: Box::new(desired),
        how,
        adopted,
    }
}

fn listed(ids: &[KeyId]) -> String {
    ids.iter()
        .map(KeyId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Maps a library error to the reason and retry the status shows.
pub fn refusal(error: seal_shared::Error) -> Refusal {
    use seal_shared::Error as E;
    use seal_shared::item::UnsealError;
    let (reason, retry) = match &error {
        E::Unseal { source, .. } => match **source {
            UnsealError::NoMatchingKey { .. } => ("NoMatchingKey", Some(MISSING_KEY_RETRY)),
            ref other => (other.reason(), None),
        },
        _ => ("InvalidSpec", None),
    };
    Refusal {
        reason,
        message: error.to_string(),
        retry,
    }
}

/// An item that no key here opens because the keys it is sealed to are retired: said so,
/// with the way back, instead of a bare "no matching key".
fn retired_refusal(error: &seal_shared::Error, keys: &KeySet) -> Option<Refusal> {
    use seal_shared::Error as E;
    use seal_shared::item::UnsealError;
    let E::Unseal { key, source } = error else {
        return None;
    };
    let UnsealError::NoMatchingKey { sealed_to } = &**source else {
        return None;
    };
    let retired: Vec<&KeyInfo> = sealed_to
        .iter()
        .filter_map(|id| keys.info(*id))
        .filter(|k| k.state == KeyState::Retired)
        .collect();
    let first = retired.first()?;
    let ids: Vec<KeyId> = retired.iter().map(|k| k.id).collect();
    let until = first
        .delete_after
        .map(|at| format!(" until {at}"))
        .unwrap_or_default();
    Some(Refusal {
        reason: "KeyRetired",
        message: format!(
            "item {key:?}: sealed only to retired key(s) {}, which open nothing; `seal keys unretire {}` brings it back{until}, or reseal the item to the current key",
            listed(&ids),
            first.id
        ),
        // An unretired key wakes every SealedSecret through the key watch; this is a
        // backstop.
        retry: Some(MISSING_KEY_RETRY),
    })
}

/// How a pass ended, when it got an answer from the API server.
pub enum Ended {
    Unsealed {
        /// Whether the Secret had to be written.
        wrote: bool,
        key_ids: Vec<KeyId>,
        /// The Secret's version as written or found.
        secret_version: Option<String>,
        adopted: Option<Previous>,
    },
    Refused(Refusal),
}

/// An Event to publish on the SealedSecret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub text: String,
}

/// Everything a pass reports.
pub struct Report {
    pub outcome: Outcome,
    pub events: Vec<Note>,
    /// The audit line's outcome: `unsealed`, `unchanged` or `failed`.
    pub audit_outcome: &'static str,
    pub adopted_from: Option<String>,
    pub requeue: Option<Duration>,
}

/// What to report once a pass has ended. Events are for news: a Secret written, a Secret
/// taken over, a SealedSecret Ready for a generation it was not Ready for before (its Secret
/// may have been written by a pass that was cut short before it could say so), a failure not
/// already shown in the status.
pub fn report(sealed: &SealedSecret, ended: &Ended) -> Report {
    // Names come from whoever wrote the SealedSecret: escaped, so that an Event or a status
    // message can never carry a control character that forges a line or colours a terminal.
    let name = escape(&sealed.name_any()).into_owned();
    let items: Vec<String> = sealed
        .spec
        .encrypted_data
        .keys()
        .map(|k| escape(k).into_owned())
        .collect();
    match ended {
        Ended::Unsealed {
            wrote,
            key_ids,
            adopted,
            ..
        } => {
            let mut events = Vec::new();
            if let Some(previous) = adopted {
                events.push(Note {
                    warning: false,
                    reason: "Adopted",
                    action: "Adopt",
                    text: format!("took over Secret {name} from {}", previous.describe()),
                });
            }
            if *wrote || !status::already_ready(sealed) {
                events.push(Note {
                    warning: false,
                    reason: "Unsealed",
                    action: "Unseal",
                    text: format!(
                        "unsealed items [{}] with key(s) {}",
                        items.join(", "),
                        listed(key_ids)
                    ),
                });
            }
            Report {
                outcome: Outcome {
                    ready: true,
                    reason: "Unsealed".into(),
                    message: format!(
                        "Secret {name} holds {} item(s) unsealed with key(s) {}",
                        items.len(),
                        listed(key_ids)
                    ),
                    key_ids: Some(key_ids.iter().map(KeyId::to_string).collect()),
                    wrote_secret: *wrote,
                    stalled: false,
                },
                events,
                audit_outcome: if *wrote { "unsealed" } else { "unchanged" },
                adopted_from: adopted.as_ref().map(Previous::audit_label),
                requeue: None,
            }
        }
        Ended::Refused(refusal) => {
            // One Warning per distinct failure, not one per retry: the status keeps saying it.
            let events = if status::already_reported(sealed, refusal.reason, &refusal.message) {
                Vec::new()
            } else {
                vec![Note {
                    warning: true,
                    reason: refusal.reason,
                    action: "Unseal",
                    text: escape(&refusal.message).into_owned(),
                }]
            };
            Report {
                outcome: Outcome {
                    ready: false,
                    reason: refusal.reason.into(),
                    message: escape(&refusal.message).into_owned(),
                    key_ids: None,
                    wrote_secret: false,
                    // Nothing but a new spec cures it: it is not looked at again by itself.
                    stalled: refusal.retry.is_none(),
                },
                events,
                audit_outcome: "failed",
                adopted_from: None,
                requeue: refusal.retry,
            }
        }
    }
}
