//! Reading a cluster's public keys from seal-operator's ConfigMap, through the user's
//! kubeconfig (the usual KUBECONFIG rules). No service proxy is needed: any authenticated
//! user may read the ConfigMap.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use seal_shared::SealRecipient;

use crate::failure::{Failure, Result};

pub use seal_shared::public_keys::DEFAULT_CONTROLLER_NAMESPACE;
use seal_shared::public_keys::{CONFIGMAP, RECIPIENT_KEY, ROTATE_REQUESTED};

fn block_on<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io("cannot start the Kubernetes client", e))?;
    runtime.block_on(future)
}

async fn client() -> Result<Client> {
    Client::try_default().await.map_err(|e| {
        Failure::new(format!("cannot reach a cluster: {e}"))
            .hint("set KUBECONFIG to the cluster running seal-operator (or, to seal offline, pass -r age1... or -R recipients.txt)")
    })
}

/// Asks the operator's leader for a new sealing key; returns the request's time.
pub fn request_rotation(namespace: &str) -> Result<String> {
    block_on(async {
        let api: Api<ConfigMap> = Api::namespaced(client().await?, namespace);
        let at = jiff::Timestamp::now().to_string();
        let patch = serde_json::json!({"metadata": {"annotations": {ROTATE_REQUESTED: at}}});
        api.patch(
            CONFIGMAP,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(|e| {
            Failure::new(format!(
                "cannot annotate ConfigMap {namespace}/{CONFIGMAP}: {e}"
            ))
            .hint("is seal-operator installed there, and may you patch that ConfigMap?")
        })?;
        Ok(at)
    })
}

/// The ConfigMap's data, fetched with the user's kubeconfig.
pub fn public_keys(namespace: &str) -> Result<std::collections::BTreeMap<String, String>> {
    block_on(async {
        let client = client().await?;
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let map = api.get_opt(CONFIGMAP).await.map_err(|e| {
            Failure::new(format!(
                "cannot read ConfigMap {namespace}/{CONFIGMAP}: {e}"
            ))
            .hint("is seal-operator installed? pass --controller-namespace if it runs elsewhere")
        })?;
        map.and_then(|m| m.data).ok_or_else(|| {
            Failure::new(format!("ConfigMap {namespace}/{CONFIGMAP} does not exist"))
                .hint("is seal-operator installed and ready? pass --controller-namespace if it runs elsewhere")
        })
    })
}

/// The cluster's current sealing recipient.
pub fn sealing_recipient(namespace: &str) -> Result<SealRecipient> {
    let data = public_keys(namespace)?;
    let recipient = data
        .get(RECIPIENT_KEY)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            Failure::new(format!(
                "ConfigMap {namespace}/{CONFIGMAP} names no sealing key yet"
            ))
            .hint("wait until seal-operator is ready")
        })?;
    recipient.parse::<SealRecipient>().map_err(|e| {
        Failure::from(e).hint("the ConfigMap was edited by hand? the operator rewrites it")
    })
}
