//! The operator's private keys: loaded from labelled Secrets in its namespace (every replica
//! follows them through a watch, so new keys need no restart) and created by the leader.

use std::sync::Arc;

use age::secrecy::ExposeSecret;
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use seal_shared::key_secrets::wipe;
use seal_shared::keys::{KeyId, KeyRing, SealIdentity};
use tokio::sync::watch;
use zeroize::Zeroize;

use crate::labels::{
    FIELD_MANAGER, KEY_ANSWERS, KEY_CREATED, KEY_DELETE_AFTER, KEY_ID, KEY_LABEL, KEY_RETIRED_AT,
    KEY_SECRET_PREFIX, KEY_SECRET_TYPE, KEY_STATE,
};
use crate::mirror::Mirror;

/// Whether a key seals new values, only opens old ones, or opens nothing (retired: its
/// Secret is deleted once the grace period is over, unless it is unretired first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    Active,
    DecryptOnly,
    Retired,
}

impl KeyState {
    pub const ALL: [KeyState; 3] = [KeyState::Active, KeyState::DecryptOnly, KeyState::Retired];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::DecryptOnly => "decrypt-only",
            KeyState::Retired => "retired",
        }
    }
}

/// Public facts about one key, as published.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    pub id: KeyId,
    pub recipient: String,
    pub created: Timestamp,
    pub state: KeyState,
    pub secret_name: String,
    /// The rotation request this key was made for, if any.
    pub answers: Option<String>,
    /// A retired key: when, and the earliest time its Secret may be deleted (both on the
    /// clock of the leader that retired it). None on a key retired by hand, until the leader
    /// stamps them.
    pub retired_at: Option<Timestamp>,
    pub delete_after: Option<Timestamp>,
    /// The Secret's uid and resourceVersion as last seen: a key is deleted only in exactly
    /// the version that was seen retired.
    pub uid: Option<String>,
    pub version: Option<String>,
}

/// One consistent view of the keys: the ring to open items with and what may be published.
#[derive(Default)]
pub struct KeySet {
    pub ring: KeyRing,
    /// Oldest first; the newest is the sealing key.
    pub infos: Vec<KeyInfo>,
}

impl KeySet {
    /// The key new seals should use: the newest active one. Exactly one is active once the
    /// leader has repaired the set (see `rotation.rs`).
    pub fn current(&self) -> Option<&KeyInfo> {
        self.infos
            .iter()
            .rev()
            .find(|k| k.state == KeyState::Active)
    }

    /// Whether the key with this id is still here to open items with (a retired key is not).
    pub fn holds(&self, id: KeyId) -> bool {
        self.ring.contains(id)
    }

    pub fn info(&self, id: KeyId) -> Option<&KeyInfo> {
        self.infos.iter().find(|k| k.id == id)
    }
}

/// The current key set, swapped whole on every change; readers hold a snapshot for as long
/// as they need one consistent view. `synced` says the first full list has been read.
pub struct Keys {
    set: watch::Sender<Arc<KeySet>>,
    synced: watch::Sender<bool>,
}

impl Default for Keys {
    fn default() -> Self {
        Keys {
            set: watch::channel(Arc::new(KeySet::default())).0,
            synced: watch::channel(false).0,
        }
    }
}

impl Keys {
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.set.borrow().clone()
    }

    pub(crate) fn replace(&self, set: KeySet) {
        self.set.send_replace(Arc::new(set));
    }

    /// True once the first full list of key Secrets has been read.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    pub fn subscribe_synced(&self) -> watch::Receiver<bool> {
        self.synced.subscribe()
    }

    /// Fires on every change of the key set.
    pub fn subscribe_changes(&self) -> watch::Receiver<Arc<KeySet>> {
        self.set.subscribe()
    }
}

/// A key read out of its Secret. The Secret's bytes are wiped once parsed. Only a Secret of
/// the key type that no SealedSecret owns holds a key: a SealedSecret's Secret is never one,
/// whatever its labels. A retired key's identity is dropped at once: it opens nothing, and
/// comes back only when unretiring changes its Secret, which is then read again.
fn parse_key_secret(mut secret: Secret) -> Option<(Option<SealIdentity>, KeyInfo)> {
    let name = secret.name_any();
    let unsealed = secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "SealedSecret");
    if secret.type_.as_deref() != Some(KEY_SECRET_TYPE) || unsealed {
        wipe(&mut secret);
        tracing::warn!(secret = %name, "a Secret labelled as a key is not of type {KEY_SECRET_TYPE} or is owned by a SealedSecret; ignored");
        return None;
    }
    let annotations = secret.annotations().clone();
    let mut data = secret.data.take().unwrap_or_default();
    let identity = data
        .get("identity")
        .and_then(|b| std::str::from_utf8(&b.0).ok())
        .and_then(|s| SealIdentity::parse(s).ok());
    data.values_mut()
        .for_each(|ByteString(bytes)| bytes.zeroize());
    let Some(identity) = identity else {
        tracing::warn!(secret = %name, "key Secret holds no valid age identity under data.identity; ignored");
        return None;
    };
    let created = annotations
        .get(KEY_CREATED)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .or_else(|| secret.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let state = match annotations.get(KEY_STATE).map(String::as_str) {
        Some("decrypt-only") => KeyState::DecryptOnly,
        Some("retired") => KeyState::Retired,
        _ => KeyState::Active,
    };
    let time = |key: &str| {
        annotations
            .get(key)
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    let retired = state == KeyState::Retired;
    let info = KeyInfo {
        id: identity.id,
        recipient: identity.recipient().recipient.to_string(),
        created,
        state,
        secret_name: name,
        answers: annotations.get(KEY_ANSWERS).cloned(),
        retired_at: time(KEY_RETIRED_AT).filter(|_| retired),
        delete_after: time(KEY_DELETE_AFTER).filter(|_| retired),
        uid: secret.metadata.uid.clone(),
        version: secret.metadata.resource_version.clone(),
    };
    Some(((!retired).then_some(identity), info))
}

/// The key set from every parsed key Secret, oldest first.
fn build_set(keys: &Mirror<String, (Option<SealIdentity>, KeyInfo)>) -> KeySet {
    let mut parsed: Vec<&(Option<SealIdentity>, KeyInfo)> = keys.values().collect();
    parsed.sort_by(|a, b| {
        a.1.created
            .cmp(&b.1.created)
            .then_with(|| a.1.id.cmp(&b.1.id))
    });
    let mut set = KeySet::default();
    for (identity, info) in parsed {
        if let Some(identity) = identity {
            set.ring
                .insert(SealIdentity::from_identity(identity.identity.clone()));
        }
        set.infos.push(info.clone());
    }
    set
}

/// Follows the key Secrets in `namespace` for as long as the operator runs. Each Secret is
/// parsed once, as it arrives, and its bytes are wiped: only parsed keys are kept.
pub async fn follow(client: Client, namespace: String, keys: Arc<Keys>) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().labels(&format!("{KEY_LABEL}=true"));
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut current: Mirror<String, (Option<SealIdentity>, KeyInfo)> = Mirror::default();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => current.relist(),
            Ok(Event::InitApply(secret)) => {
                current.listed(secret.name_any(), parse_key_secret(secret))
            }
            Ok(Event::InitDone) => {
                current.relisted();
                keys.replace(build_set(&current));
                keys.synced.send_replace(true);
            }
            Ok(Event::Apply(secret)) => {
                current.apply(secret.name_any(), parse_key_secret(secret));
                keys.replace(build_set(&current));
            }
            Ok(Event::Delete(secret)) => {
                current.delete(&secret.name_any());
                keys.replace(build_set(&current));
            }
            Err(error) => tracing::warn!(%error, "watching key Secrets failed; retrying"),
        }
        tracing::debug!(keys = current.len(), "key set updated");
    }
}

/// Creates a new key Secret and returns its public facts. Never touches existing keys.
pub async fn create_key(
    client: &Client,
    namespace: &str,
    answers: Option<&str>,
) -> kube::Result<KeyInfo> {
    let identity = SealIdentity::generate();
    let recipient = identity.recipient().recipient.to_string();
    let created = Timestamp::now();
    let id = identity.id;
    let secret_name = format!("{KEY_SECRET_PREFIX}{id}");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.clone()),
            namespace: Some(namespace.to_owned()),
            labels: Some([(KEY_LABEL.to_owned(), "true".to_owned())].into()),
            annotations: Some(
                [
                    (KEY_ID.to_owned(), id.to_string()),
                    (KEY_CREATED.to_owned(), created.to_string()),
                    (KEY_STATE.to_owned(), KeyState::Active.as_str().to_owned()),
                ]
                .into_iter()
                .chain(answers.map(|request| (KEY_ANSWERS.to_owned(), request.to_owned())))
                .collect(),
            ),
            ..ObjectMeta::default()
        },
        type_: Some(KEY_SECRET_TYPE.to_owned()),
        immutable: Some(true),
        data: Some(
            [
                (
                    "identity".to_owned(),
                    ByteString(
                        identity
                            .to_secret_string()
                            .expose_secret()
                            .as_bytes()
                            .to_vec(),
                    ),
                ),
                (
                    "recipient".to_owned(),
                    ByteString(recipient.clone().into_bytes()),
                ),
            ]
            .into(),
        ),
        ..Secret::default()
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let result = api
        .create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..Default::default()
            },
            &secret,
        )
        .await
        // The server sends the stored Secret back, private key included: wipe that copy too.
        .map(|mut stored| wipe(&mut stored));
    let mut secret = secret;
    wipe(&mut secret);
    result?;
    Ok(KeyInfo {
        id,
        recipient,
        created,
        state: KeyState::Active,
        secret_name,
        answers: answers.map(str::to_owned),
        retired_at: None,
        delete_after: None,
        uid: None,
        version: None,
    })
}

/// Marks a key as decrypt-only. Its Secret and private key stay: old seals still open.
pub async fn mark_decrypt_only(
    client: &Client,
    namespace: &str,
    secret_name: &str,
) -> kube::Result<()> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({"metadata": {"annotations": {KEY_STATE: KeyState::DecryptOnly.as_str()}}});
    api.patch(secret_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Retires a key: from now on it opens nothing, and its Secret may be deleted from
/// `delete_after`. Guarded by the version seen: a key changed meanwhile is looked at again.
pub async fn retire(
    client: &Client,
    namespace: &str,
    key: &KeyInfo,
    at: Timestamp,
    delete_after: Timestamp,
) -> kube::Result<()> {
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": key.version,
        "annotations": {
            KEY_STATE: KeyState::Retired.as_str(),
            KEY_RETIRED_AT: at.to_string(),
            KEY_DELETE_AFTER: delete_after.to_string(),
        },
    }});
    patch_key(client, namespace, &key.secret_name, &patch).await
}

/// Brings a retired key back to decrypt-only (never to sealing: a newer key seals).
pub async fn unretire(client: &Client, namespace: &str, key: &KeyInfo) -> kube::Result<()> {
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": key.version,
        "annotations": {
            KEY_STATE: KeyState::DecryptOnly.as_str(),
            KEY_RETIRED_AT: null,
            KEY_DELETE_AFTER: null,
        },
    }});
    patch_key(client, namespace, &key.secret_name, &patch).await
}

async fn patch_key(
    client: &Client,
    namespace: &str,
    name: &str,
    patch: &serde_json::Value,
) -> kube::Result<()> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    // Metadata only in the answer: the private key is not sent back.
    api.patch_metadata(name, &params, &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// Deletes a retired key's Secret, and only the very version that was seen retired: one
/// unretired (or changed in any way) since is left alone.
pub async fn delete_retired(client: &Client, namespace: &str, key: &KeyInfo) -> kube::Result<()> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: key.uid.clone(),
            resource_version: key.version.clone(),
        }),
        ..DeleteParams::default()
    };
    // The answer may be the deleted object, private key and all: wipe it.
    api.delete(&key.secret_name, &params)
        .await?
        .map_left(|mut gone| wipe(&mut gone));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_secret(type_: &str, owned_by_sealed_secret: bool) -> Secret {
        let identity = SealIdentity::generate();
        let owners = owned_by_sealed_secret.then(|| {
            serde_json::json!([{"apiVersion": "seal.dev/v1", "kind": "SealedSecret",
                                "name": "seal-key-x", "uid": "u", "controller": true}])
        });
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("seal-key-{}", identity.id),
                         "labels": {KEY_LABEL: "true"}, "ownerReferences": owners},
            "type": type_,
            "data": {"identity": STANDARD_B64.encode(identity.to_secret_string().expose_secret())},
        }))
        .expect("a Secret")
    }

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as STANDARD_B64;

    #[test]
    fn a_retired_key_is_listed_but_opens_nothing() {
        let mut keys: Mirror<String, (Option<SealIdentity>, KeyInfo)> = Mirror::default();
        let mut ids = Vec::new();
        for state in ["decrypt-only", "retired"] {
            let mut secret = key_secret(KEY_SECRET_TYPE, false);
            secret.metadata.annotations = Some(
                [
                    (KEY_STATE.to_owned(), state.to_owned()),
                    (KEY_RETIRED_AT.to_owned(), "2026-01-01T00:00:00Z".to_owned()),
                ]
                .into(),
            );
            let parsed = parse_key_secret(secret).expect("a key");
            ids.push(parsed.1.id);
            keys.apply(parsed.1.secret_name.clone(), Some(parsed));
        }
        let set = build_set(&keys);
        let state = |id| set.info(id).map(|k| (k.state, k.retired_at.is_some()));
        assert_eq!(state(ids[0]), Some((KeyState::DecryptOnly, false)));
        assert_eq!(state(ids[1]), Some((KeyState::Retired, true)));
        assert!(set.holds(ids[0]));
        assert!(!set.holds(ids[1]), "a retired key is not in the ring");
    }

    #[test]
    fn only_an_unowned_secret_of_the_key_type_holds_a_key() {
        assert!(parse_key_secret(key_secret(KEY_SECRET_TYPE, false)).is_some());
        assert!(parse_key_secret(key_secret("Opaque", false)).is_none());
        assert!(parse_key_secret(key_secret(KEY_SECRET_TYPE, true)).is_none());
    }
}
