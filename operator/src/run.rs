//! Starting the operator: logging, client, namespace, then every long-running part.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, CustomResourceExt};
use seal_operator::args::{LogFormat, RunArgs};
use seal_operator::audit::Audit;
use seal_operator::controller::{self, Context};
use seal_operator::keys::{self, KeyState, Keys};
use seal_operator::metrics::{Metrics, StateLabels};
use seal_operator::rotation::LeaderDuties;
use seal_operator::{http, leader};
use seal_shared::sealed_secret::SealedSecret;

const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

pub fn print_crd() -> Result<(), String> {
    let yaml = serde_saphyr::to_string(&SealedSecret::crd()).map_err(|e| e.to_string())?;
    print!("{yaml}");
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("SEAL_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

async fn client(args: &RunArgs) -> Result<Client, String> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| e.to_string())?
        }
        None => Config::infer().await.map_err(|e| {
            format!(
                "no Kubernetes configuration found (KUBECONFIG, ~/.kube/config or in-cluster): {e}"
            )
        })?,
    };
    Client::try_from(config).map_err(|e| e.to_string())
}

fn own_namespace(args: &RunArgs) -> Result<String, String> {
    if let Some(ns) = &args.namespace {
        return Ok(ns.clone());
    }
    std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
        .map(|s| s.trim().to_owned())
        .map_err(|_| "cannot tell the operator's namespace: pass --namespace (or SEAL_NAMESPACE) outside a pod".to_owned())
}

pub async fn run(args: RunArgs) -> Result<(), String> {
    init_logging(args.log_format);
    let client = client(&args).await?;
    let namespace = own_namespace(&args)?;
    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("seal-operator-{}", std::process::id()));
    tracing::info!(namespace = %namespace, watch_namespace = ?args.watch_namespace, identity = %identity, "starting seal-operator");

    let keys = Arc::new(Keys::default());
    let metrics = Arc::new(Metrics::default());
    let audit = Arc::new(Audit::new(client.clone(), &namespace, identity.clone()));

    tokio::spawn(keys::follow(
        client.clone(),
        namespace.clone(),
        keys.clone(),
    ));
    tokio::spawn(track_key_metrics(keys.clone(), metrics.clone()));
    let metrics_server = tokio::spawn(http::serve_metrics(args.metrics_addr, metrics.clone()));

    let leading = leader::elect(client.clone(), &namespace, &identity, args.leader_election)
        .await
        .map_err(|e| format!("leader election: {e}"))?;
    let published = Arc::new(AtomicBool::new(false));
    let api_server = tokio::spawn(http::serve_api(
        args.http_addr,
        http::ApiState {
            keys: keys.clone(),
            leading: leading.clone(),
            published: published.clone(),
        },
    ));
    let duties = LeaderDuties {
        client: client.clone(),
        namespace: namespace.clone(),
        keys: keys.clone(),
        period: args.key_rotation_period,
        audit: audit.clone(),
        metrics: metrics.clone(),
        published,
    };
    tokio::spawn(duties.run(leading.clone()));

    let ctx = Arc::new(Context::new(client, keys, audit, metrics, leading));
    tokio::select! {
        _ = controller::run(ctx, args.watch_namespace.as_deref()) => {
            tracing::info!("shut down");
            Ok(())
        }
        result = api_server => Err(format!("HTTP server on {} stopped: {:?}", args.http_addr, result)),
        result = metrics_server => Err(format!("metrics server on {} stopped: {:?}", args.metrics_addr, result)),
    }
}

async fn track_key_metrics(keys: Arc<Keys>, metrics: Arc<Metrics>) {
    let mut changes = keys.subscribe_changes();
    loop {
        let set = keys.snapshot();
        for state in [KeyState::Active, KeyState::DecryptOnly] {
            let count = set.infos.iter().filter(|k| k.state == state).count();
            metrics
                .keys
                .get_or_create(&StateLabels {
                    state: state.as_str().into(),
                })
                .set(count as i64);
        }
        if let Some(current) = set.current() {
            metrics.last_rotation.set(current.created.as_second());
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}
