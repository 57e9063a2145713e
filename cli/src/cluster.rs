//! Reading a cluster's public keys from seal-operator's ConfigMap, through the user's
//! kubeconfig (the usual KUBECONFIG rules). No service proxy is needed: any authenticated
//! user may read the ConfigMap.
//!
//! Errors name the server and say what happened in plain words: never a Debug dump of the
//! client's error, and never a kubeconfig parser's text, which can quote a token.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::{KubeconfigError, LoadDataError};
use kube::{Api, Client};
use seal_shared::SealRecipient;
use seal_shared::names;

use crate::failure::{Context, Failure, Result, io_reason};

pub use seal_shared::public_keys::DEFAULT_CONTROLLER_NAMESPACE;
use seal_shared::public_keys::{CONFIGMAP, RECIPIENT_KEY, ROTATE_REQUESTED};

fn block_on<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io("cannot start the Kubernetes client", e))?;
    runtime.block_on(future)
}

/// A client, and the server it talks to for messages.
async fn client() -> Result<(Client, String)> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| kubeconfig_failure(std::error::Error::source(&e)))?;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config)
        .map_err(|e| kube_failure(&e, &server, "cannot set up a client"))?;
    Ok((client, server))
}

fn check_namespace(namespace: &str) -> Result<()> {
    names::check_namespace(namespace)
        .map_err(|e| Failure::new(e).hint("name the namespace seal-operator runs in"))
        .within(crate::cli::given_as(
            "controller_namespace",
            "--controller-namespace",
        ))
}

/// Why the kubeconfig could not be used, in words that quote none of its content.
fn kubeconfig_failure(source: Option<&(dyn std::error::Error + 'static)>) -> Failure {
    let data = |what: &str, e: &LoadDataError| match e {
        LoadDataError::DecodeBase64(_) => format!("its {what} data is not valid base64"),
        LoadDataError::ReadFile(e, path) => {
            format!(
                "cannot read its {what} file {}: {}",
                path.display(),
                io_reason(e)
            )
        }
        LoadDataError::NoBase64DataOrFile => format!("its {what} has neither data nor a file"),
    };
    let what = match source.and_then(|s| s.downcast_ref::<KubeconfigError>()) {
        Some(KubeconfigError::FindPath) => {
            "no kubeconfig found (KUBECONFIG is unset and ~/.kube/config does not exist)".into()
        }
        Some(KubeconfigError::ReadConfig(e, path)) => {
            format!(
                "cannot read the kubeconfig {}: {}",
                path.display(),
                io_reason(e)
            )
        }
        Some(KubeconfigError::Parse(e)) => match e.location() {
            Some(at) => format!(
                "the kubeconfig is not valid (line {}, column {})",
                at.line(),
                at.column()
            ),
            None => "the kubeconfig is not valid".into(),
        },
        Some(KubeconfigError::CurrentContextNotSet) => {
            "the kubeconfig sets no current-context".into()
        }
        Some(KubeconfigError::LoadContext(name)) => {
            format!("the kubeconfig has no context {name:?}")
        }
        Some(KubeconfigError::LoadClusterOfContext(name)) => {
            format!("the kubeconfig has no cluster {name:?} for its current context")
        }
        Some(KubeconfigError::MissingClusterUrl) => {
            "the kubeconfig's cluster has no server URL".into()
        }
        Some(KubeconfigError::ParseClusterUrl(_)) => {
            "the kubeconfig's server is not a valid URL".into()
        }
        Some(KubeconfigError::ParseProxyUrl(_)) => {
            "the kubeconfig's proxy-url is not a valid URL".into()
        }
        Some(KubeconfigError::LoadCertificateAuthority(e)) => {
            format!(
                "the kubeconfig's certificate authority: {}",
                data("certificate-authority", e)
            )
        }
        Some(KubeconfigError::LoadClientCertificate(e)) => {
            format!(
                "the kubeconfig's client certificate: {}",
                data("client-certificate", e)
            )
        }
        Some(KubeconfigError::LoadClientKey(e)) => {
            format!("the kubeconfig's client key: {}", data("client-key", e))
        }
        Some(KubeconfigError::ParseCertificates(_)) => {
            "a certificate in the kubeconfig is not valid PEM".into()
        }
        Some(KubeconfigError::KindMismatch | KubeconfigError::ApiVersionMismatch) => {
            "the kubeconfig files in KUBECONFIG disagree on their kind or apiVersion".into()
        }
        _ => "cannot load the kubeconfig".into(),
    };
    Failure::new(format!("cannot reach a cluster: {what}")).hint(
        "set KUBECONFIG to the cluster running seal-operator (`kubectl config view` shows what is used)",
    )
}

/// The innermost cause of an error, where the useful words are ("connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    match current.downcast_ref::<std::io::Error>() {
        Some(io) => io_reason(io),
        None => current.to_string(),
    }
}

/// A failed call to the API server at `server`, for `action` ("cannot read ConfigMap ...").
fn kube_failure(error: &kube::Error, server: &str, action: &str) -> Failure {
    use kube::Error as K;
    match error {
        K::Api(status) => {
            let hint = match status.code {
                401 => "the server does not accept your kubeconfig's credentials; log in again",
                403 => {
                    "ask an administrator for that permission (seal-operator's chart grants reading the public-key ConfigMap to every authenticated user)"
                }
                404 => {
                    "is seal-operator installed in that namespace? pass --controller-namespace if it runs elsewhere"
                }
                _ => "retry; if it persists, check the API server",
            };
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            Failure::new(format!(
                "{action}: the API server at {server} answered {}: {message}",
                status.code
            ))
            .hint(hint)
        }
        K::InferConfig(e) => kubeconfig_failure(std::error::Error::source(e)),
        K::InferKubeconfig(e) => kubeconfig_failure(Some(e)),
        K::Auth(_) => Failure::new(format!(
            "{action}: cannot authenticate to {server} with the kubeconfig's credentials ({})",
            // An exec plugin's output can hold a token: only an I/O reason is safe to show.
            match std::error::Error::source(error).map(root_cause_io) {
                Some(Some(reason)) => reason,
                _ => "the credential plugin or token failed".to_owned(),
            }
        ))
        .hint("check the user entry of your kubeconfig (`kubectl get ns` tries it)"),
        K::HyperError(_) | K::Service(_) => Failure::new(format!(
            "{action}: cannot connect to {server}: {}",
            root_cause(error)
        ))
        .hint("is the cluster up, and is the kubeconfig's server right? (`kubectl cluster-info`)"),
        K::RustlsTls(_) => Failure::new(format!(
            "{action}: TLS with {server} failed: {}",
            root_cause(error)
        ))
        .hint("check the kubeconfig's certificate-authority and client certificate"),
        K::SerdeError(_) => Failure::new(format!(
            "{action}: {server} sent a reply that is not a Kubernetes object"
        ))
        .hint("is the kubeconfig's server a Kubernetes API server?"),
        _ => Failure::new(format!(
            "{action}: the request to {server} failed: {}",
            root_cause(error)
        ))
        .hint("retry; if it persists, check the kubeconfig and the API server"),
    }
}

fn root_cause_io(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = error;
    loop {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return Some(io_reason(io));
        }
        current = current.source()?;
    }
}

/// Asks the operator's leader for a new sealing key; returns the request's time.
pub fn request_rotation(namespace: &str) -> Result<String> {
    check_namespace(namespace)?;
    block_on(async {
        let (client, server) = client().await?;
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
            let failure = kube_failure(
                &e,
                &server,
                &format!("cannot annotate ConfigMap {namespace}/{CONFIGMAP}"),
            );
            match &e {
                kube::Error::Api(status) if status.code == 403 => failure.hint(format!(
                    "rotating needs permission to patch ConfigMap {namespace}/{CONFIGMAP}"
                )),
                _ => failure,
            }
        })?;
        Ok(at)
    })
}

/// The ConfigMap's data, fetched with the user's kubeconfig.
pub fn public_keys(namespace: &str) -> Result<std::collections::BTreeMap<String, String>> {
    check_namespace(namespace)?;
    block_on(async {
        let (client, server) = client().await?;
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let map = api.get_opt(CONFIGMAP).await.map_err(|e| {
            kube_failure(
                &e,
                &server,
                &format!("cannot read ConfigMap {namespace}/{CONFIGMAP}"),
            )
        })?;
        map.and_then(|m| m.data).ok_or_else(|| {
            Failure::new(format!(
                "ConfigMap {namespace}/{CONFIGMAP} does not exist on {server}"
            ))
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
    recipient
        .parse::<SealRecipient>()
        .map_err(|e| {
            Failure::from(e).hint("the ConfigMap was edited by hand? the operator rewrites it")
        })
        .within(format!(
            "ConfigMap {namespace}/{CONFIGMAP}: data.{RECIPIENT_KEY}"
        ))
}
