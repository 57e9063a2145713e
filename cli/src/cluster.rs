//! Reading a cluster's public keys from seal-operator's ConfigMap, through the user's
//! kubeconfig (the usual KUBECONFIG rules). No service proxy is needed: any authenticated
//! user may read the ConfigMap.
//!
//! Every message names the kubeconfig context and the API server, so that a key is never
//! taken from, nor an error blamed on, a cluster the user did not mean.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Api, Client, Config};
use seal_shared::SealRecipient;

use crate::failure::{Failure, Result};

pub use seal_shared::public_keys::DEFAULT_CONTROLLER_NAMESPACE;
use seal_shared::public_keys::{CONFIGMAP, RECIPIENT_KEY, ROTATE_REQUESTED};

/// The cluster seal talks to, as the user would name it.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// The kubeconfig's current context, or how the in-cluster configuration was found.
    pub context: String,
    pub server: String,
}

impl Cluster {
    fn describe(&self) -> String {
        format!("context {:?} ({})", self.context, self.server)
    }
}

/// A cluster's current sealing key and where it was read.
#[derive(Clone, Debug)]
pub struct ClusterKey {
    pub recipient: SealRecipient,
    pub namespace: String,
    pub cluster: Cluster,
}

impl ClusterKey {
    pub fn describe(&self) -> String {
        format!(
            "seal-operator in namespace {} of {}",
            self.namespace,
            self.cluster.describe()
        )
    }
}

fn block_on<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::io("cannot start the Kubernetes client", e)
                .hint("the system refused seal a thread or timer; try again, or pass -r/-R to seal offline")
        })?;
    runtime.block_on(future)
}

async fn connect() -> Result<(Client, Cluster)> {
    let unreachable = |what: String| {
        Failure::new(format!("cannot reach a cluster: {what}"))
            .hint("set KUBECONFIG to the cluster running seal-operator, or seal offline: pass -r age1... or -R recipients.txt")
    };
    let (config, context) = match Kubeconfig::read() {
        Ok(kubeconfig) => {
            let context = kubeconfig
                .current_context
                .clone()
                .unwrap_or_else(|| "(none)".to_owned());
            let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| {
                    unreachable(format!(
                        "kubeconfig context {context:?}: {}",
                        kubeconfig_reason(&e)
                    ))
                })?;
            (config, context)
        }
        Err(kubeconfig_error) => match Config::incluster() {
            Ok(config) => (config, "in-cluster service account".to_owned()),
            Err(_) => return Err(unreachable(kubeconfig_reason(&kubeconfig_error))),
        },
    };
    let cluster = Cluster {
        context,
        server: config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned(),
    };
    let client = Client::try_from(config).map_err(|e| {
        Failure::new(format!(
            "cannot set up a client for {}: {}",
            cluster.describe(),
            api_reason(&e)
        ))
        .hint("check the kubeconfig's certificate and proxy settings")
    })?;
    Ok((client, cluster))
}

/// A kubeconfig error in one line, without quoting the file: a kubeconfig holds
/// credentials, and its parse errors would show the offending line.
fn kubeconfig_reason(error: &KubeconfigError) -> String {
    match error {
        KubeconfigError::FindPath => {
            "no kubeconfig (KUBECONFIG is unset and there is no ~/.kube/config)".to_owned()
        }
        KubeconfigError::ReadConfig(e, path) => format!("cannot read {}: {e}", path.display()),
        KubeconfigError::Parse(e) => match e.location() {
            Some(at) => format!(
                "the kubeconfig is not valid YAML (line {}, column {})",
                at.line(),
                at.column()
            ),
            None => "the kubeconfig is not valid YAML".to_owned(),
        },
        KubeconfigError::LoadClientKey(_) => "cannot load the client key".to_owned(),
        KubeconfigError::LoadClientCertificate(_) => {
            "cannot load the client certificate".to_owned()
        }
        KubeconfigError::LoadCertificateAuthority(_) => {
            "cannot load the certificate authority".to_owned()
        }
        KubeconfigError::ParseCertificates(_) => "cannot parse its certificates".to_owned(),
        other => other.to_string(),
    }
}

/// A client error in one line: the API server's own message, or what failed on the way.
fn api_reason(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let message = status.message.trim();
            match status.code {
                0 => message.to_owned(),
                code => format!("{message} (HTTP {code})"),
            }
        }
        other => {
            // The source chain says what actually failed (connection refused, a certificate);
            // the outer layers only say which layer it passed through.
            let mut reason = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(inner) = source {
                reason = inner.to_string();
                source = inner.source();
            }
            reason
        }
    }
}

/// Asks the operator's leader for a new sealing key; returns the request's time.
pub fn request_rotation(namespace: &str) -> Result<String> {
    block_on(async {
        let (client, cluster) = connect().await?;
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
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
                "cannot annotate ConfigMap {namespace}/{CONFIGMAP} in {}: {}",
                cluster.describe(),
                api_reason(&e)
            ))
            .hint("is seal-operator installed there, and may you patch that ConfigMap?")
        })?;
        Ok(at)
    })
}

async fn fetch(namespace: &str) -> Result<(std::collections::BTreeMap<String, String>, Cluster)> {
    let (client, cluster) = connect().await?;
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let map = api.get_opt(CONFIGMAP).await.map_err(|e| {
        Failure::new(format!(
            "cannot read ConfigMap {namespace}/{CONFIGMAP} in {}: {}",
            cluster.describe(),
            api_reason(&e)
        ))
        .hint("is seal-operator installed, and is this the right cluster? pass --controller-namespace if it runs elsewhere, or -r/-R to seal offline")
    })?;
    let data = map.and_then(|m| m.data).ok_or_else(|| {
        Failure::new(format!(
            "ConfigMap {namespace}/{CONFIGMAP} does not exist in {}",
            cluster.describe()
        ))
        .hint("is seal-operator installed and ready? pass --controller-namespace if it runs elsewhere, or -r/-R to seal offline")
    })?;
    Ok((data, cluster))
}

/// The ConfigMap's data, fetched with the user's kubeconfig.
pub fn public_keys(namespace: &str) -> Result<std::collections::BTreeMap<String, String>> {
    block_on(async { fetch(namespace).await.map(|(data, _)| data) })
}

/// The cluster's current sealing key, and which cluster it came from.
pub fn sealing_key(namespace: &str) -> Result<ClusterKey> {
    let (data, cluster) = block_on(fetch(namespace))?;
    let place = format!(
        "ConfigMap {namespace}/{CONFIGMAP} in {}",
        cluster.describe()
    );
    let recipient = data
        .get(RECIPIENT_KEY)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            Failure::new(format!("{place} names no sealing key yet"))
                .hint("wait until seal-operator is ready")
        })?;
    let recipient = recipient.parse::<SealRecipient>().map_err(|_| {
        Failure::new(format!(
            "{place}: its {RECIPIENT_KEY} is not an age X25519 recipient"
        ))
        .hint("the ConfigMap was edited by hand? the operator rewrites it")
    })?;
    Ok(ClusterKey {
        recipient,
        namespace: namespace.to_owned(),
        cluster,
    })
}
