//! The public-key ConfigMap: what `seal encrypt` reads to find the cluster's recipient.
//! Public keys only; readable by any authenticated user through the chart's RBAC.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::keys::KeySet;
use crate::labels::{FIELD_MANAGER, PUBLIC_KEYS_CONFIGMAP};

/// Changes whenever what the ConfigMap shows would change.
pub fn fingerprint(set: &KeySet) -> String {
    set.infos
        .iter()
        .map(|k| format!("{}:{}", k.id, k.state.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The ConfigMap's data: `recipient` (the sealing key), `recipients.txt` (the same, in age's
/// recipients-file format) and `keys.json` (every decrypt-capable key with id, state, date).
pub fn data(set: &KeySet) -> serde_json::Value {
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
    let keys = serde_json::to_string_pretty(&set.infos).unwrap_or_else(|_| "[]".into());
    serde_json::json!({
        "recipient": recipient,
        "recipients.txt": recipients_txt,
        "keys.json": keys,
    })
}

pub async fn apply(client: &Client, namespace: &str, set: &KeySet) -> kube::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": PUBLIC_KEYS_CONFIGMAP, "labels": {"app.kubernetes.io/name": "seal-operator"}},
        "data": data(set),
    });
    api.patch(
        PUBLIC_KEYS_CONFIGMAP,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}
