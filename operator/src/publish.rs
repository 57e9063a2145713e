//! The public-key ConfigMap: what `seal encrypt` reads to find the cluster's recipient.
//! Public keys only; readable by any authenticated user through the chart's RBAC.

use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use seal_shared::keys::KeyId;

use seal_shared::public_keys::{KEYS_KEY, PublishedKey, RECIPIENT_KEY, RECIPIENTS_FILE_KEY};

use crate::keys::KeySet;
use crate::labels::{FIELD_MANAGER, PUBLIC_KEYS_CONFIGMAP, ROTATE_ANSWERED};

/// What the ConfigMap shows, in two parts: the keys (with their states and deletion times)
/// and the per-key counts, which change far more often.
pub fn fingerprint(set: &KeySet, uses: &BTreeMap<KeyId, usize>) -> (String, String) {
    let keys = set
        .infos
        .iter()
        .map(|k| format!("{}:{}:{:?}", k.id, k.state.as_str(), k.delete_after))
        .collect::<Vec<_>>()
        .join(",");
    let counts = set
        .infos
        .iter()
        .map(|k| uses.get(&k.id).copied().unwrap_or(0).to_string())
        .collect::<Vec<_>>()
        .join(",");
    (keys, counts)
}

/// The ConfigMap's data: `recipient` (the sealing key), `recipients.txt` (the same, in age's
/// recipients-file format) and `keys.json` (every key with id, state, date and how many
/// SealedSecrets it opened; a retired key with its deletion time).
pub fn data(set: &KeySet, uses: &BTreeMap<KeyId, usize>) -> serde_json::Value {
    let current = set.current();
    let recipient = current.map(|k| k.recipient.clone()).unwrap_or_default();
    let recipients_txt = current
        .map(|k| {
            format!(
                "# seal sealing key {} (created {})\n{}\n",
                k.id, k.created, k.recipient
            )
        })
        .unwrap_or_default();
    let keys =
        serde_json::to_string_pretty(&published(set, Some(uses))).unwrap_or_else(|_| "[]".into());
    let mut data = serde_json::Map::new();
    data.insert(RECIPIENT_KEY.into(), recipient.into());
    data.insert(RECIPIENTS_FILE_KEY.into(), recipients_txt.into());
    data.insert(KEYS_KEY.into(), keys.into());
    serde_json::Value::Object(data)
}

/// The keys in their published shape, oldest first (as `GET /v1/keys` also serves them),
/// with the leader's counts when given.
pub fn published(set: &KeySet, uses: Option<&BTreeMap<KeyId, usize>>) -> Vec<PublishedKey> {
    set.infos
        .iter()
        .map(|k| PublishedKey {
            id: k.id.to_string(),
            recipient: k.recipient.clone(),
            created: k.created.to_string(),
            state: k.state.as_str().to_owned(),
            retired_at: k.retired_at.map(|t| t.to_string()),
            delete_after: k.delete_after.map(|t| t.to_string()),
            sealed_secrets: uses.map(|u| u.get(&k.id).copied().unwrap_or(0) as u64),
        })
        .collect()
}

/// Writes the ConfigMap. When the sealing key answers a rotation request, the ConfigMap says
/// so in the same write, which is what `seal rotate` waits for.
pub async fn apply(
    client: &Client,
    namespace: &str,
    set: &KeySet,
    uses: &BTreeMap<KeyId, usize>,
) -> kube::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let answered: serde_json::Map<String, serde_json::Value> = set
        .current()
        .and_then(|k| k.answers.clone())
        .map(|request| (ROTATE_ANSWERED.to_owned(), request.into()))
        .into_iter()
        .collect();
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": PUBLIC_KEYS_CONFIGMAP,
            "labels": {"app.kubernetes.io/name": "seal-operator"},
            "annotations": answered,
        },
        "data": data(set, uses),
    });
    api.patch(
        PUBLIC_KEYS_CONFIGMAP,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}
