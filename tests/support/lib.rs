//! Test support for end-to-end tests against the local API server started by
//! `tests/cluster/cluster up`: a client, and a fresh namespace per test.
//!
//! A missing server is a test failure, never a skip: the README's test command starts it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

pub mod chart;
pub mod operator;
pub mod promql;
pub mod tools;
pub mod wait;

/// The kubeconfig the cluster script writes, unless `KUBECONFIG` points elsewhere.
pub fn kubeconfig_path() -> PathBuf {
    match std::env::var_os("KUBECONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            let state =
                std::env::var_os("SEAL_CLUSTER_DIR").unwrap_or_else(|| "/tmp/seal-cluster".into());
            PathBuf::from(state).join("kubeconfig")
        }
    }
}

/// A client for the test API server; fails with what to run when there is none.
pub async fn client() -> Result<Client> {
    let path = kubeconfig_path();
    let kubeconfig = Kubeconfig::read_from(&path).with_context(|| {
        format!(
            "no test API server kubeconfig at {}; start one with `tests/cluster/cluster up`",
            path.display()
        )
    })?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = Client::try_from(config)?;
    client.apiserver_version().await.with_context(|| {
        format!(
            "the API server in {} does not answer; run `tests/cluster/cluster up`",
            path.display()
        )
    })?;
    Ok(client)
}

/// A namespace of its own for one test, named after it.
pub struct TestNamespace {
    pub name: String,
    pub client: Client,
}

impl TestNamespace {
    pub async fn create(test: &str) -> Result<TestNamespace> {
        let client = client().await?;
        let suffix: u32 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos();
        let mut name: String = format!("{test}-{suffix:x}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        name.truncate(63);
        let name = name.trim_matches('-').to_owned();
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(TestNamespace { name, client })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// The sealing recipient the operator published in this namespace's public-key
    /// ConfigMap, if any yet.
    pub async fn published_recipient(&self) -> Result<Option<String>> {
        use seal_shared::public_keys::{CONFIGMAP, RECIPIENT_KEY};
        let map = self
            .api::<k8s_openapi::api::core::v1::ConfigMap>()
            .get_opt(CONFIGMAP)
            .await?;
        Ok(map
            .and_then(|m| m.data)
            .and_then(|d| d.get(RECIPIENT_KEY).cloned())
            .filter(|r| !r.is_empty()))
    }

    /// The operator's key Secrets in this namespace.
    pub async fn key_secrets(&self) -> Result<Vec<k8s_openapi::api::core::v1::Secret>> {
        Ok(self
            .api::<k8s_openapi::api::core::v1::Secret>()
            .list(&kube::api::ListParams::default().labels("seal.dev/key=true"))
            .await?
            .items)
    }

    /// The status and reason of the SealedSecret `name`'s Ready condition, if it has one yet.
    pub async fn ready_reason(&self, name: &str) -> Result<Option<(String, String)>> {
        let sealed = self
            .api::<seal_shared::sealed_secret::SealedSecret>()
            .get(name)
            .await?;
        Ok(sealed
            .status
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"))
            .map(|c| (c.status, c.reason)))
    }

    /// Deletes the namespace. This server runs no namespace controller, so the namespace
    /// stays Terminating; its objects are left for the next `cluster down`.
    pub async fn delete(self) -> Result<()> {
        Api::<Namespace>::all(self.client)
            .delete(&self.name, &DeleteParams::default())
            .await?;
        Ok(())
    }
}

/// Polls `check` until it yields a value or `timeout` passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            match last_error {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
