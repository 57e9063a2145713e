//! Starting the operator: logging, client, namespace, then every long-running part.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::args::{LogFormat, RunArgs};
use crate::audit::Audit;
use crate::context::Context;
use crate::controller;
use crate::duties::LeaderDuties;
use crate::http;
use crate::keys::{self, KeyState, Keys};
use crate::lease::{Elector, Leadership};
use crate::ledger::Ledger;
use crate::metrics::{Metrics, StateLabels};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, CustomResourceExt};
use seal_shared::sealed_secret::SealedSecret;
use tokio::sync::watch;
use tokio::task::JoinSet;

const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

pub fn print_crd() -> Result<(), String> {
    let yaml = serde_saphyr::to_string(&SealedSecret::crd()).map_err(|e| e.to_string())?;
    print!("{yaml}");
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("SEAL_LOG").unwrap_or_else(|_| "info".into());
    // Colours only for a person at a terminal: a file or a log collector would keep the
    // escape codes as text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
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
    // One shutdown signal for every part; the Lease is released last, once nothing writes.
    let (shutdown, stopping) = watch::channel(false);
    let (release, releasing) = watch::channel(false);

    // Parts that run for the life of the process: any of them ending is a failure.
    let mut parts: JoinSet<String> = JoinSet::new();
    let follow = keys::follow(client.clone(), namespace.clone(), keys.clone());
    parts.spawn(async move {
        follow.await;
        "the key watch stopped".to_owned()
    });
    let tracking = track_key_metrics(keys.clone(), metrics.clone());
    parts.spawn(async move {
        tracking.await;
        "the key metrics stopped".to_owned()
    });
    let metrics_addr = args.metrics_addr;
    let serving_metrics = http::serve_metrics(metrics_addr, metrics.clone());
    parts.spawn(async move {
        format!(
            "the metrics server on {metrics_addr} stopped: {}",
            ended(serving_metrics.await)
        )
    });

    let (leading, mut election, _always) = if args.leader_election {
        let (elector, leading) = Elector::new(
            client.clone(),
            &namespace,
            &identity,
            metrics.leader.clone(),
        );
        (leading, Some(tokio::spawn(elector.run(releasing))), None)
    } else {
        let (leading, sender) = Leadership::always();
        metrics.leader.set(1);
        (leading, None, Some(sender))
    };
    let published = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Ledger::default());
    let http_addr = args.http_addr;
    let serving_api = http::serve_api(
        http_addr,
        http::ApiState {
            keys: keys.clone(),
            leading: leading.clone(),
            published: published.clone(),
            ledger: ledger.clone(),
            reseal_limit: Arc::new(crate::reseal::RateLimit::new(
                args.reseal_rate,
                args.reseal_burst,
            )),
        },
    );
    parts.spawn(async move {
        format!(
            "the HTTP server on {http_addr} stopped: {}",
            ended(serving_api.await)
        )
    });
    let duties = LeaderDuties {
        client: client.clone(),
        namespace: namespace.clone(),
        keys: keys.clone(),
        period: args.key_rotation_period,
        audit: audit.clone(),
        metrics: metrics.clone(),
        published,
        backup_recipients: args.key_backup_recipients.clone(),
        retire_grace: args.key_retire_grace,
        watch_namespace: args.watch_namespace.clone(),
        ledger: ledger.clone(),
    };
    let mut duties = tokio::spawn(duties.run(leading.clone(), stopping.clone()));

    let ctx = Arc::new(Context::new(
        client, keys, audit, metrics, leading, &namespace, ledger,
    ));
    let watch_namespace = args.watch_namespace.clone();
    let mut stopped = stopping.clone();
    let mut controller = tokio::spawn(async move {
        let requested = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        controller::run(ctx, watch_namespace.as_deref(), requested).await;
    });

    let failure = tokio::select! {
        () = termination() => None,
        Some(part) = parts.join_next() => Some(part.unwrap_or_else(|e| format!("a task failed: {e}"))),
        result = &mut controller => Some(format!("the controller stopped: {}", ended(result))),
        result = &mut duties => Some(format!("the leader's duties stopped: {}", ended(result))),
        result = async { match election.as_mut() { Some(task) => task.await, None => std::future::pending().await } } => {
            Some(format!("leader election stopped: {}", match result {
                Ok(Ok(())) => "without a shutdown".to_owned(),
                Ok(Err(error)) => error.to_string(),
                Err(error) => error.to_string(),
            }))
        }
    };
    if let Some(failure) = failure {
        // Nothing may go on writing without its supervisor: the pod restarts.
        return Err(failure);
    }
    tracing::info!("shutting down: finishing writes in flight");
    let _ = shutdown.send(true);
    let _ = controller.await;
    let _ = duties.await;
    let _ = release.send(true);
    if let Some(task) = election {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
    }
    tracing::info!("shut down");
    Ok(())
}

/// Why a task that should have run forever ended.
fn ended(result: Result<(), impl std::fmt::Display>) -> String {
    match result {
        Ok(()) => "it returned".to_owned(),
        Err(error) => error.to_string(),
    }
}

/// SIGTERM (what Kubernetes sends) or SIGINT.
async fn termination() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the operator");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn track_key_metrics(keys: Arc<Keys>, metrics: Arc<Metrics>) {
    let mut changes = keys.subscribe_changes();
    loop {
        let set = keys.snapshot();
        for state in KeyState::ALL {
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
