//! The key backup, written by the leader before a key may seal anything: a key is published
//! in `seal-public-keys` only once every key in the set has its entry in `seal-key-backup`,
//! sealed to the configured backup recipients. An entry is removed only when its key is
//! deleted after retirement; when the recipients change, every entry is sealed again to the
//! new ones. A retired key has no identity in memory, and its entry was written before it
//! ever sealed, so it is left as it is.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use seal_shared::key_backup::{self, BackupError, CONFIGMAP, RECIPIENTS_ANNOTATION};
use seal_shared::keys::SealRecipient;

use crate::keys::{KeySet, KeyState};
use crate::labels::FIELD_MANAGER;
use seal_shared::keys::KeyId;

#[derive(Debug, thiserror::Error)]
pub enum BackupFailure {
    #[error("the key backup ConfigMap {CONFIGMAP} could not be written: {0}")]
    Api(#[from] kube::Error),
    #[error("a key could not be sealed for the backup: {0}")]
    Seal(#[from] BackupError),
    #[error("key {0} is in the key set but not in the key ring")]
    MissingIdentity(String),
}

/// The entries `existing` lacks for `set`, sealed to `recipients`: every key's when the
/// recipients changed.
pub fn missing_entries(
    set: &KeySet,
    existing: Option<&ConfigMap>,
    recipients: &[SealRecipient],
) -> Result<BTreeMap<String, String>, BackupFailure> {
    let label = key_backup::recipients_label(recipients);
    let same_recipients = existing
        .and_then(|m| m.metadata.annotations.as_ref())
        .and_then(|a| a.get(RECIPIENTS_ANNOTATION))
        .is_some_and(|have| *have == label);
    let has = |name: &str| {
        same_recipients
            && existing
                .and_then(|m| m.data.as_ref())
                .is_some_and(|d| d.contains_key(name))
    };
    let mut entries = BTreeMap::new();
    for info in set.infos.iter().filter(|k| k.state != KeyState::Retired) {
        let name = key_backup::entry_name(info.id);
        if has(&name) {
            continue;
        }
        let identity = set
            .ring
            .get(info.id)
            .ok_or_else(|| BackupFailure::MissingIdentity(info.id.to_string()))?;
        let sealed = key_backup::seal_key(identity, &info.created.to_string(), recipients)?;
        entries.insert(name, sealed);
    }
    Ok(entries)
}

/// Brings the backup up to date with `set`. Answers how many entries were written.
pub async fn ensure(
    client: &Client,
    namespace: &str,
    set: &KeySet,
    recipients: &[SealRecipient],
) -> Result<usize, BackupFailure> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let existing = api.get_opt(CONFIGMAP).await?;
    let entries = missing_entries(set, existing.as_ref(), recipients)?;
    if entries.is_empty() {
        return Ok(0);
    }
    let written = entries.len();
    let label = key_backup::recipients_label(recipients);
    match existing {
        None => {
            let map: ConfigMap = serde_json::from_value(serde_json::json!({
                "metadata": {
                    "name": CONFIGMAP,
                    "labels": {"app.kubernetes.io/name": "seal-operator"},
                    "annotations": {RECIPIENTS_ANNOTATION: label},
                },
                "data": entries,
            }))
            .map_err(|e| BackupFailure::Api(kube::Error::SerdeError(e)))?;
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PostParams::default()
            };
            api.create(&params, &map).await?;
        }
        Some(map) => {
            // Guarded by the version read: entries written meanwhile are not lost.
            let patch = serde_json::json!({
                "metadata": {
                    "resourceVersion": map.metadata.resource_version,
                    "annotations": {RECIPIENTS_ANNOTATION: label},
                },
                "data": entries,
            });
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            api.patch(CONFIGMAP, &params, &Patch::Merge(&patch)).await?;
        }
    }
    Ok(written)
}

/// Removes a deleted key's entry, so that the backup does not keep what retirement deleted
/// (copies of the ConfigMap exported before still hold it).
pub async fn forget(client: &Client, namespace: &str, id: KeyId) -> Result<(), kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let name = key_backup::entry_name(id);
    let holds = api
        .get_opt(CONFIGMAP)
        .await?
        .and_then(|m| m.data)
        .is_some_and(|d| d.contains_key(&name));
    if holds {
        let patch = serde_json::json!({"data": {name: null}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        api.patch(CONFIGMAP, &params, &Patch::Merge(&patch)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::key_set_of as set_of;
    use seal_shared::keys::SealIdentity;

    #[test]
    fn only_missing_entries_are_written_and_all_when_the_recipients_change() {
        let (a, b) = (SealIdentity::generate(), SealIdentity::generate());
        let backup = SealIdentity::generate();
        let recipients = [backup.recipient()];
        let all = missing_entries(&set_of(&[&a, &b]), None, &recipients).expect("sealed");
        assert_eq!(all.len(), 2);
        let map: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": CONFIGMAP, "annotations": {
                RECIPIENTS_ANNOTATION: key_backup::recipients_label(&recipients)}},
            "data": {key_backup::entry_name(a.id): all[&key_backup::entry_name(a.id)]},
        }))
        .expect("a ConfigMap");
        let missing = missing_entries(&set_of(&[&a, &b]), Some(&map), &recipients).expect("sealed");
        assert_eq!(
            missing.keys().collect::<Vec<_>>(),
            [&key_backup::entry_name(b.id)]
        );
        let other = [SealIdentity::generate().recipient()];
        let again = missing_entries(&set_of(&[&a, &b]), Some(&map), &other).expect("sealed");
        assert_eq!(again.len(), 2, "new recipients: every entry sealed again");
    }
}
