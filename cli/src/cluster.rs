//! Reading a cluster's public keys from seal-operator's ConfigMap, through the user's
//! kubeconfig (the usual KUBECONFIG rules). No service proxy is needed: any authenticated
//! user may read the ConfigMap.
//!
//! Every message names the kubeconfig context and the API server, so that a key is never
//! taken from, nor an error blamed on, a cluster the user did not mean. Errors say what
//! happened in plain words: never a Debug dump of the client's error, and never a kubeconfig
//! parser's text, which can quote a token.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError, LoadDataError};
use kube::{Api, Client, Config};
use seal_shared::SealRecipient;
use seal_shared::names;

use std::path::PathBuf;

use crate::failure::{Context, Failure, Result, io_reason};
use crate::files::check_path_arg;

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

/// Which cluster, and which seal-operator in it: the flags every command that talks to a
/// cluster takes, read the way kubectl reads them.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Namespace where seal-operator runs
    #[arg(long, value_name = "NAMESPACE", env = "SEAL_CONTROLLER_NAMESPACE", default_value = DEFAULT_CONTROLLER_NAMESPACE)]
    pub controller_namespace: String,

    /// Use this kubeconfig context instead of the kubeconfig's current-context
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Read this kubeconfig file instead of $KUBECONFIG or ~/.kube/config
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

impl ClusterArgs {
    /// The default namespace and the usual kubeconfig, for commands that take no flags.
    pub fn usual() -> ClusterArgs {
        ClusterArgs {
            controller_namespace: DEFAULT_CONTROLLER_NAMESPACE.to_owned(),
            context: None,
            kubeconfig: None,
        }
    }
}

/// A client for the chosen (else the current) context of the named (else the usual)
/// kubeconfig; the in-cluster service account only when no kubeconfig exists and none was
/// asked for. A kubeconfig or context that is named or found but cannot be used is an
/// error, not a reason to try another cluster.
async fn connect(target: &ClusterArgs) -> Result<(Client, Cluster)> {
    let read = match &target.kubeconfig {
        Some(path) => {
            check_path_arg(path, "--kubeconfig")?;
            Kubeconfig::read_from(path)
        }
        None => Kubeconfig::read(),
    };
    let (config, context) = match read {
        Ok(kubeconfig) => {
            let context = target
                .context
                .clone()
                .or_else(|| kubeconfig.current_context.clone())
                .unwrap_or_else(|| "(none)".to_owned());
            let options = KubeConfigOptions {
                context: target.context.clone(),
                ..KubeConfigOptions::default()
            };
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| kubeconfig_failure(Some(&context), &e))?;
            (config, context)
        }
        // Only where no kubeconfig is found at all and no context was named: a KUBECONFIG
        // naming a file that cannot be read is a mistake to report, not a reason to try the
        // pod's own cluster.
        Err(error @ KubeconfigError::FindPath) if target.context.is_none() => {
            match Config::incluster() {
                Ok(config) => (config, "in-cluster service account".to_owned()),
                Err(_) => return Err(kubeconfig_failure(None, &error)),
            }
        }
        Err(error) => return Err(kubeconfig_failure(target.context.as_deref(), &error)),
    };
    let cluster = Cluster {
        context,
        server: config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned(),
    };
    let client = Client::try_from(config)
        .map_err(|e| kube_failure(&e, &cluster, "cannot set up a client"))?;
    Ok((client, cluster))
}

fn check_namespace(namespace: &str) -> Result<()> {
    names::check_namespace(namespace)
        .map_err(|e| Failure::new(e).hint("name the namespace seal-operator runs in"))
        .within(crate::given_as::given_as(
            "controller_namespace",
            "--controller-namespace",
        ))
}

/// Why the kubeconfig could not be used, in words that quote none of its content.
fn kubeconfig_failure(context: Option<&str>, error: &KubeconfigError) -> Failure {
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
    let what = match error {
        KubeconfigError::FindPath => {
            "no kubeconfig found (KUBECONFIG is unset and ~/.kube/config does not exist)".into()
        }
        KubeconfigError::ReadConfig(e, path) => {
            format!(
                "cannot read the kubeconfig {}: {}",
                path.display(),
                io_reason(e)
            )
        }
        KubeconfigError::Parse(e) => match e.location() {
            Some(at) => format!(
                "the kubeconfig is not valid (line {}, column {})",
                at.line(),
                at.column()
            ),
            None => "the kubeconfig is not valid".into(),
        },
        KubeconfigError::CurrentContextNotSet => "the kubeconfig sets no current-context".into(),
        KubeconfigError::LoadContext(name) => {
            format!("the kubeconfig has no context {name:?}")
        }
        KubeconfigError::LoadClusterOfContext(name) => {
            format!("the kubeconfig has no cluster {name:?} for its current context")
        }
        KubeconfigError::MissingClusterUrl => "the kubeconfig's cluster has no server URL".into(),
        KubeconfigError::ParseClusterUrl(_) => "the kubeconfig's server is not a valid URL".into(),
        KubeconfigError::ParseProxyUrl(_) => "the kubeconfig's proxy-url is not a valid URL".into(),
        KubeconfigError::LoadCertificateAuthority(e) => {
            format!(
                "the kubeconfig's certificate authority: {}",
                data("certificate-authority", e)
            )
        }
        KubeconfigError::LoadClientCertificate(e) => {
            format!(
                "the kubeconfig's client certificate: {}",
                data("client-certificate", e)
            )
        }
        KubeconfigError::LoadClientKey(e) => {
            format!("the kubeconfig's client key: {}", data("client-key", e))
        }
        KubeconfigError::ParseCertificates(_) => {
            "a certificate in the kubeconfig is not valid PEM".into()
        }
        KubeconfigError::KindMismatch | KubeconfigError::ApiVersionMismatch => {
            "the kubeconfig files in KUBECONFIG disagree on their kind or apiVersion".into()
        }
    };
    // Which context was being loaded, unless the message is about the context itself.
    let context = match error {
        KubeconfigError::CurrentContextNotSet | KubeconfigError::LoadContext(_) => None,
        _ => context,
    };
    let what = match context {
        Some(context) => format!("{what} (context {context:?})"),
        None => what,
    };
    Failure::new(format!("cannot reach a cluster: {what}")).hint(
        "name the cluster running seal-operator with --context/--kubeconfig (or KUBECONFIG; `kubectl config get-contexts` lists them), or seal offline: pass -r age1... or -R recipients.txt",
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

/// An I/O reason somewhere in an error's chain, if there is one.
fn root_cause_io(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = error;
    loop {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return Some(io_reason(io));
        }
        current = current.source()?;
    }
}

/// A failed call to `cluster`'s API server, for `action` ("cannot read ConfigMap ...").
fn kube_failure(error: &kube::Error, cluster: &Cluster, action: &str) -> Failure {
    use kube::Error as K;
    let place = format!("{action} in {}", cluster.describe());
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
                status.reason.as_str()
            } else {
                status.message.as_str()
            };
            Failure::new(format!(
                "{place}: the API server answered {}: {}",
                status.code,
                message.trim()
            ))
            .hint(hint)
        }
        K::Auth(_) => Failure::new(format!(
            "{place}: cannot authenticate with the kubeconfig's credentials ({})",
            // An exec plugin's output can hold a token: only an I/O reason is safe to show.
            std::error::Error::source(error)
                .and_then(root_cause_io)
                .unwrap_or_else(|| "the credential plugin or token failed".to_owned())
        ))
        .hint("check the user entry of your kubeconfig (`kubectl get ns` tries it)"),
        K::HyperError(_) | K::Service(_) => Failure::new(format!(
            "{place}: cannot connect: {}",
            root_cause(error)
        ))
        .hint("is the cluster up, and is the kubeconfig's server right? (`kubectl cluster-info`); or seal offline: pass -r age1... or -R recipients.txt"),
        K::RustlsTls(_) => Failure::new(format!("{place}: TLS failed: {}", root_cause(error)))
            .hint("check the kubeconfig's certificate-authority and client certificate"),
        K::SerdeError(_) => Failure::new(format!(
            "{place}: the reply is not a Kubernetes object"
        ))
        .hint("is the kubeconfig's server a Kubernetes API server?"),
        _ => Failure::new(format!("{place}: the request failed: {}", root_cause(error)))
            .hint("retry; if it persists, check the kubeconfig and the API server"),
    }
}

/// A rotation request id: unique, and never an RFC 3339 time, so no clock can make it look
/// answered or pending.
fn request_id() -> String {
    let nanos = jiff::Timestamp::now().as_nanosecond();
    format!("req-{nanos:x}-{:x}", std::process::id())
}

/// Asks the operator's leader for a new sealing key and, unless `wait` is zero, waits until
/// the key made for this request is published; answers the request id and the new key.
pub fn request_rotation(
    target: &ClusterArgs,
    wait: std::time::Duration,
) -> Result<(String, Option<seal_shared::public_keys::PublishedKey>)> {
    let namespace = target.controller_namespace.as_str();
    check_namespace(namespace)?;
    block_on(async {
        let (client, cluster) = connect(target).await?;
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let request = request_id();
        annotate_public_keys(
            &api,
            &cluster,
            serde_json::json!({ROTATE_REQUESTED: request}),
            "rotating",
        )
        .await?;
        if wait.is_zero() {
            return Ok((request, None));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let map = read_public_keys(&api, &cluster).await?;
            if let Some(key) = map.as_ref().and_then(|m| answered_by(m, &request)) {
                return Ok((request, Some(key)));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "rotation request {request} was not answered within {}s in {}",
                    wait.as_secs(),
                    cluster.describe()
                ))
                .hint(format!(
                    "is seal-operator running, and does a replica lead? check `kubectl -n {namespace} get lease seal-operator`; the request stays and is answered when it can be"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
}

/// The published sealing key, once the ConfigMap says it answers `request`.
fn answered_by(map: &ConfigMap, request: &str) -> Option<seal_shared::public_keys::PublishedKey> {
    use seal_shared::public_keys::ROTATE_ANSWERED;
    let answered = map.metadata.annotations.as_ref()?.get(ROTATE_ANSWERED)?;
    if answered != request {
        return None;
    }
    published_keys(map)?
        .into_iter()
        .rev()
        .find(|k| k.state == "active")
}

/// How a key request ended, as the operator's leader answered it.
pub struct KeyOutcome {
    pub answer: seal_shared::public_keys::KeyAnswer,
    pub cluster: Cluster,
}

/// Asks the operator's leader to retire or unretire `key`, and waits (at most `wait`) for
/// its answer and, once it acted, for the published key list to show the key's new state.
/// A key the published list does not name is refused here, before anything is written.
pub fn request_key_action(
    target: &ClusterArgs,
    key: seal_shared::keys::KeyId,
    action: seal_shared::public_keys::KeyAction,
    wait: std::time::Duration,
) -> Result<KeyOutcome> {
    use seal_shared::public_keys::{KEY_ANSWER_PREFIX, KEY_REQUEST_PREFIX, KeyAnswer};
    let namespace = target.controller_namespace.as_str();
    check_namespace(namespace)?;
    block_on(async {
        let (client, cluster) = connect(target).await?;
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let Some(map) = read_public_keys(&api, &cluster).await? else {
            return Err(Failure::new(format!(
                "ConfigMap {namespace}/{CONFIGMAP} does not exist in {}",
                cluster.describe()
            ))
            .hint("is seal-operator installed and ready? pass --controller-namespace if it runs elsewhere"));
        };
        if published_state(&map, key).is_none() {
            return Err(Failure::new(format!(
                "seal-operator in namespace {namespace} of {} lists no key {key}",
                cluster.describe()
            ))
            .hint("`seal keys` lists the cluster's keys; a retired key is gone once its grace period is over"));
        }
        let request = request_id();
        let request_name = format!("{KEY_REQUEST_PREFIX}{key}");
        let answer_name = format!("{KEY_ANSWER_PREFIX}{key}");
        annotate_public_keys(
            &api,
            &cluster,
            serde_json::json!({request_name.clone(): action.request(&request)}),
            "retiring keys",
        )
        .await?;
        let deadline = tokio::time::Instant::now() + wait;
        let timed_out = |what: &str| {
            Failure::new(format!(
                "{} request {request} for key {key} was not {what} within {}s in {}",
                action.as_str(),
                wait.as_secs(),
                cluster.describe()
            ))
            .hint(format!(
                "is seal-operator running, and does a replica lead? check `kubectl -n {namespace} get lease seal-operator`; the request stays and is answered when it can be"
            ))
        };
        let mut answer: Option<KeyAnswer> = None;
        loop {
            let map = read_public_keys(&api, &cluster).await?;
            let annotations = map.as_ref().and_then(|m| m.metadata.annotations.as_ref());
            let found = annotations
                .and_then(|a| a.get(&answer_name))
                .and_then(|a| serde_json::from_str::<KeyAnswer>(a).ok())
                .filter(|a| a.request == request);
            if let Some(found) = found {
                answer = Some(found);
            }
            match &answer {
                Some(answer) => {
                    // Acted on: done once the published list shows it (a refusal or nothing
                    // to do changes nothing).
                    let expected = match answer.outcome.as_str() {
                        "retired" => Some("retired"),
                        "unretired" => Some("decrypt-only"),
                        _ => None,
                    };
                    let shown = map.as_ref().and_then(|m| published_state(m, key));
                    if expected.is_none() || shown.as_deref() == expected {
                        return Ok(KeyOutcome {
                            answer: answer.clone(),
                            cluster: cluster.clone(),
                        });
                    }
                }
                None => {
                    let replaced = annotations
                        .and_then(|a| a.get(&request_name))
                        .is_some_and(|v| *v != action.request(&request));
                    if replaced {
                        return Err(Failure::new(format!(
                            "{} request {request} for key {key} was replaced by another request for that key before the operator answered it",
                            action.as_str()
                        ))
                        .hint("someone else asked about this key at the same time; `seal keys` shows its state, retry if needed"));
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(timed_out(if answer.is_some() {
                    "published"
                } else {
                    "answered"
                }));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
}

/// The state the published key list gives `key`, if it lists it.
fn published_state(map: &ConfigMap, key: seal_shared::keys::KeyId) -> Option<String> {
    let id = key.to_string();
    published_keys(map)?
        .into_iter()
        .find(|k| k.id == id)
        .map(|k| k.state)
}

/// The key list the ConfigMap publishes, while a request waits on it; none while it does not
/// read as one (not yet written, or mid-rewrite), which the waiting treats as "not yet".
fn published_keys(map: &ConfigMap) -> Option<Vec<seal_shared::public_keys::PublishedKey>> {
    use seal_shared::public_keys::KEYS_KEY;
    serde_json::from_str(map.data.as_ref()?.get(KEYS_KEY)?).ok()
}

/// The public-key ConfigMap of the API's namespace, if it exists.
async fn read_public_keys(api: &Api<ConfigMap>, cluster: &Cluster) -> Result<Option<ConfigMap>> {
    let namespace = api.namespace().unwrap_or_default();
    api.get_opt(CONFIGMAP).await.map_err(|e| {
        kube_failure(
            &e,
            cluster,
            &format!("cannot read ConfigMap {namespace}/{CONFIGMAP}"),
        )
    })
}

/// Sets `annotations` on the public-key ConfigMap (a request to the operator's leader); a
/// refusal names the permission that `asking` ("rotating") needs.
async fn annotate_public_keys(
    api: &Api<ConfigMap>,
    cluster: &Cluster,
    annotations: serde_json::Value,
    asking: &str,
) -> Result<()> {
    let namespace = api.namespace().unwrap_or_default();
    let patch = serde_json::json!({"metadata": {"annotations": annotations}});
    api.patch(
        CONFIGMAP,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .map(drop)
    .map_err(|e| {
        let failure = kube_failure(
            &e,
            cluster,
            &format!("cannot annotate ConfigMap {namespace}/{CONFIGMAP}"),
        );
        match &e {
            kube::Error::Api(status) if status.code == 403 => failure.hint(format!(
                "{asking} needs permission to patch ConfigMap {namespace}/{CONFIGMAP}"
            )),
            _ => failure,
        }
    })
}

/// Creates a key Secret for each restored key in `namespace`; one that exists already is
/// left alone. Answers the ids created and the ids already present.
pub fn restore_keys(
    target: &ClusterArgs,
    keys: &[seal_shared::key_backup::BackedUpKey],
) -> Result<(Vec<String>, Vec<String>, Cluster)> {
    let namespace = target.controller_namespace.as_str();
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use seal_shared::key_secrets as shape;
    check_namespace(namespace)?;
    block_on(async {
        let (client, cluster) = connect(target).await?;
        let api: Api<Secret> = Api::namespaced(client, namespace);
        let (mut created, mut present) = (Vec::new(), Vec::new());
        for key in keys {
            let id = key.identity.id.to_string();
            let name = format!("{}{id}", shape::NAME_PREFIX);
            // Every restored key comes back active; the operator keeps only the newest by
            // creation sealing, so a restored older key never takes over.
            let annotations = [
                (shape::ID.to_owned(), id.clone()),
                (
                    shape::CREATED.to_owned(),
                    key.created.clone().unwrap_or_default(),
                ),
                (shape::STATE.to_owned(), "active".to_owned()),
            ];
            use age::secrecy::ExposeSecret;
            let mut secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.to_owned()),
                    labels: Some([(shape::LABEL.to_owned(), "true".to_owned())].into()),
                    annotations: Some(annotations.into()),
                    ..Default::default()
                },
                type_: Some(shape::TYPE.to_owned()),
                immutable: Some(true),
                data: Some(
                    [
                        (
                            shape::IDENTITY_DATA.to_owned(),
                            ByteString(
                                key.identity
                                    .to_secret_string()
                                    .expose_secret()
                                    .as_bytes()
                                    .to_vec(),
                            ),
                        ),
                        (
                            shape::RECIPIENT_DATA.to_owned(),
                            ByteString(key.identity.recipient().recipient.to_string().into_bytes()),
                        ),
                    ]
                    .into(),
                ),
                ..Default::default()
            };
            let result = api.create(&kube::api::PostParams::default(), &secret).await;
            shape::wipe(&mut secret);
            match result {
                Ok(mut stored) => {
                    // The server sends the private key back: wipe that copy too.
                    shape::wipe(&mut stored);
                    created.push(id);
                }
                Err(kube::Error::Api(status)) if status.code == 409 => present.push(id),
                Err(e) => {
                    return Err(kube_failure(
                        &e,
                        &cluster,
                        &format!("cannot create key Secret {namespace}/{name}"),
                    )
                    .hint(format!(
                        "restoring needs permission to create Secrets in {namespace}; keys restored so far stay"
                    )));
                }
            }
        }
        Ok((created, present, cluster))
    })
}

async fn fetch(
    target: &ClusterArgs,
) -> Result<(std::collections::BTreeMap<String, String>, Cluster)> {
    let namespace = target.controller_namespace.as_str();
    check_namespace(namespace)?;
    let (client, cluster) = connect(target).await?;
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let map = read_public_keys(&api, &cluster).await?;
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
pub fn public_keys(
    target: &ClusterArgs,
) -> Result<(std::collections::BTreeMap<String, String>, Cluster)> {
    block_on(fetch(target))
}

/// The cluster's current sealing key, and which cluster it came from.
pub fn sealing_key(target: &ClusterArgs) -> Result<ClusterKey> {
    let namespace = target.controller_namespace.as_str();
    let (data, cluster) = block_on(fetch(target))?;
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
    // The recipient validator every other source goes through: its message never quotes
    // the text, which a hand edit may have made a private key.
    let recipient = recipient
        .parse::<SealRecipient>()
        .map_err(|e| {
            Failure::from(e).hint("the ConfigMap was edited by hand? the operator rewrites it")
        })
        .within(format!("{place}: data.{RECIPIENT_KEY}"))?;
    Ok(ClusterKey {
        recipient,
        namespace: namespace.to_owned(),
        cluster,
    })
}

/// How `seal reseal` reaches seal-operator's reseal endpoint.
#[derive(Clone, Debug)]
pub enum OperatorRoute {
    /// Through the API server's service proxy, with the kubeconfig's credentials: the Service
    /// `seal-operator`, port `http`, in the controller namespace. Needs `get` and `create` on
    /// `services/proxy` for that Service.
    ServiceProxy(ClusterArgs),
    /// Straight to an address (a port-forward, an ingress), without credentials.
    Url(String),
}

/// The chart's Service for the operator (its release named `seal-operator`) and its port.
pub const OPERATOR_SERVICE: &str = "seal-operator";
const OPERATOR_PORT: &str = "http";

/// One item's answer from the reseal endpoint: the reply, or the operator's refusal (the
/// item stays as it was).
pub type ItemAnswer = std::result::Result<seal_shared::reseal::ResealReply, Failure>;

/// How many requests are in flight at once: enough to hide the round trip, few enough to
/// stay well inside the operator's rate limit's burst.
const IN_FLIGHT: usize = 8;
/// How often one item is retried when the operator answers 429 before it gives up.
const RETRIES_ON_429: u32 = 60;

/// Sends every request to the reseal endpoint and answers one result per request, in order;
/// `done` is called after each. A refusal of one item is that item's answer; anything that
/// says the endpoint cannot be used at all (unreachable, no permission, no endpoint) ends the
/// run with that failure.
pub fn reseal_items(
    route: &OperatorRoute,
    requests: Vec<seal_shared::reseal::ResealRequest>,
    done: &(dyn Fn() + Sync),
) -> Result<(Vec<ItemAnswer>, String)> {
    use std::sync::Arc;
    block_on(async move {
        let (client, base, place) = reseal_client(route).await?;
        let client = Arc::new(client);
        let base = Arc::new(base);
        let place = Arc::new(place);
        let count = requests.len();
        let mut answers: Vec<Option<ItemAnswer>> = (0..count).map(|_| None).collect();
        let mut pending = requests.into_iter().enumerate();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < IN_FLIGHT {
                let Some((index, request)) = pending.next() else {
                    break;
                };
                let (client, base, place) = (client.clone(), base.clone(), place.clone());
                running.spawn(async move {
                    (index, reseal_one(&client, &base, &place, &request).await)
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (index, answer) = joined.map_err(|e| {
                Failure::new(format!("a reseal request failed: {e}"))
                    .hint("this is a bug in seal; please report it")
            })?;
            done();
            match answer {
                Answer::Item(answer) => answers[index] = Some(answer),
                Answer::Fatal(failure) => return Err(failure),
            }
        }
        let answers = answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    Err(Failure::new("no answer").hint("this is a bug in seal; please report it"))
                })
            })
            .collect();
        Ok((answers, place.to_string()))
    })
}

enum Answer {
    Item(ItemAnswer),
    Fatal(Failure),
}

/// A client for the route, the path of the endpoint on it, and how to name it in messages.
async fn reseal_client(route: &OperatorRoute) -> Result<(Client, String, String)> {
    use seal_shared::reseal::RESEAL_PATH;
    match route {
        OperatorRoute::ServiceProxy(target) => {
            let namespace = target.controller_namespace.as_str();
            check_namespace(namespace)?;
            let (client, cluster) = connect(target).await?;
            let path = format!(
                "/api/v1/namespaces/{namespace}/services/{OPERATOR_SERVICE}:{OPERATOR_PORT}/proxy{RESEAL_PATH}"
            );
            let place = format!(
                "Service {namespace}/{OPERATOR_SERVICE} (through the API server's service proxy) in {}",
                cluster.describe()
            );
            Ok((client, path, place))
        }
        OperatorRoute::Url(url) => {
            let given_as = crate::given_as::given_as("operator_url", "--operator-url");
            let uri: http::Uri = url.trim_end_matches('/').parse().map_err(|_| {
                Failure::new(format!("{given_as}: not a URL"))
                    .hint("give the operator's HTTP address, e.g. http://127.0.0.1:8080 (kubectl -n seal-system port-forward svc/seal-operator 8080:http)")
                    .usage()
            })?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(Failure::new(format!(
                    "{given_as}: not an http:// or https:// URL with a host"
                ))
                .hint("give the operator's HTTP address, e.g. http://127.0.0.1:8080")
                .usage());
            }
            let client = Client::try_from(Config::new(uri.clone())).map_err(|e| {
                Failure::new(format!(
                    "cannot set up a client for {uri}: {}",
                    root_cause(&e)
                ))
                .hint("check --operator-url")
            })?;
            Ok((
                client,
                RESEAL_PATH.to_owned(),
                format!("seal-operator at {uri}"),
            ))
        }
    }
}

async fn reseal_one(
    client: &Client,
    path: &str,
    place: &str,
    request: &seal_shared::reseal::ResealRequest,
) -> Answer {
    let body = match serde_json::to_vec(request) {
        Ok(body) => body,
        Err(e) => {
            return Answer::Fatal(
                Failure::new(format!("cannot encode a reseal request: {e}"))
                    .hint("this is a bug in seal; please report it"),
            );
        }
    };
    let mut tries = 0;
    loop {
        let http_request = match http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
        {
            Ok(r) => r,
            Err(e) => {
                return Answer::Fatal(
                    Failure::new(format!("cannot build a reseal request: {e}"))
                        .hint("this is a bug in seal; please report it"),
                );
            }
        };
        let error = match client.request_text(http_request).await {
            Ok(text) => {
                return Answer::Item(serde_json::from_str(&text).map_err(|_| {
                    Failure::new(format!(
                        "{place} answered something that is not a reseal reply"
                    ))
                    .hint("is that address seal-operator's HTTP port, and is it up to date?")
                }));
            }
            Err(error) => error,
        };
        let kube::Error::Api(status) = &error else {
            return Answer::Fatal(reseal_transport_failure(&error, place));
        };
        match status.code {
            429 if tries < RETRIES_ON_429 => {
                tries += 1;
                let wait = status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .unwrap_or(1);
                tokio::time::sleep(std::time::Duration::from_secs(u64::from(wait.min(30)))).await;
            }
            // The operator refused this item: it stays as it was.
            409 | 422 => {
                return Answer::Item(Err(Failure::new(format!(
                    "{place} refused it: {}",
                    status.message.trim()
                ))
                .hint(refusal_hint(&status.reason))));
            }
            code => {
                let hint = match code {
                    401 => "the server does not accept your kubeconfig's credentials; log in again",
                    403 => {
                        "resealing online needs get and create on services/proxy for the seal-operator Service in the controller namespace (docs/operator.md); or reseal offline with -i and --keys"
                    }
                    404 | 503 => {
                        "is seal-operator installed and ready in that namespace, and recent enough to reseal? pass --controller-namespace or --operator-url"
                    }
                    429 => "the operator's reseal rate limit stayed exhausted; try again later",
                    413 => "the item is larger than the operator accepts",
                    _ => "retry; if it persists, check the operator's logs",
                };
                let message = if status.message.is_empty() {
                    status.reason.as_str()
                } else {
                    status.message.as_str()
                };
                return Answer::Fatal(
                    Failure::new(format!("{place} answered {code}: {}", message.trim())).hint(hint),
                );
            }
        }
    }
}

fn refusal_hint(reason: &str) -> &'static str {
    match reason {
        "UnknownRecipient" => {
            "pass the item's other recipients with -r/-R (or keep them in the file's .seal.yaml rule)"
        }
        "ForeignRecipient" => "a reseal keeps an item's recipients and adds none",
        "KeyChanged" => "the sealing key changed during the run; run seal reseal again",
        "BindingMismatch" => {
            "the item was sealed for another place; seal its value again there: seal encrypt --merge-into"
        }
        "NoMatchingKey" => {
            "the operator holds none of the item's keys; reseal it offline with an identity that opens it (-i, --keys)"
        }
        _ => "reseal the value from its source with seal encrypt --merge-into",
    }
}

fn reseal_transport_failure(error: &kube::Error, place: &str) -> Failure {
    match error {
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            Failure::new(format!("cannot reach {place}: {}", root_cause(error))).hint(
                "is the operator (or the API server) up? or reseal offline with -i and --keys",
            )
        }
        kube::Error::Auth(_) => Failure::new(format!(
            "{place}: cannot authenticate with the kubeconfig's credentials"
        ))
        .hint("check the user entry of your kubeconfig (`kubectl get ns` tries it)"),
        _ => Failure::new(format!(
            "{place}: the request failed: {}",
            root_cause(error)
        ))
        .hint("retry; if it persists, check the kubeconfig, the operator and the API server"),
    }
}
