//! Restarts mid-run: the operator, the API server itself, and etcd under replicas that
//! compete for the Lease. Everything converges, no key is lost and no two replicas lead at
//! once. These tests stop the shared API server, so they live in their own binary (cargo
//! runs test binaries one at a time) and take turns with each other.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use seal_e2e::operator::{LeaderSampler, Operator, seal_secret};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;

const WAIT: Duration = Duration::from_secs(60);

async fn value(secrets: &kube::Api<Secret>, name: &str) -> Result<Option<String>> {
    Ok(secrets
        .get_opt(name)
        .await?
        .and_then(|s| s.data)
        .and_then(|d| {
            d.get("k")
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        }))
}

async fn key_ids(ns: &TestNamespace) -> Result<BTreeMap<String, String>> {
    let keys = ns
        .api::<Secret>()
        .list(&ListParams::default().labels("seal.dev/key=true"))
        .await?;
    Ok(keys
        .items
        .into_iter()
        .map(|s| {
            (
                s.metadata.name.clone().unwrap_or_default(),
                s.metadata.uid.unwrap_or_default(),
            )
        })
        .collect())
}

/// Runs the cluster script without blocking the test's runtime, so samplers keep sampling.
async fn cluster(args: &[&str]) -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster/cluster");
    let status = tokio::process::Command::new(script)
        .args(args)
        .status()
        .await?;
    anyhow::ensure!(
        status.success(),
        "tests/cluster/cluster {} failed",
        args.join(" ")
    );
    Ok(())
}

async fn restart_apiserver() -> Result<()> {
    cluster(&["restart-apiserver"]).await
}

/// The tests in this binary stop the server the other one uses: one at a time.
static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn operator_and_api_server_restarts_converge_without_losing_keys() -> Result<()> {
    let _turn = SERVER.lock().await;
    let ns = TestNamespace::create("restart").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let sealed = ns.api::<SealedSecret>();
    let secrets = ns.api::<Secret>();
    let drift = serde_json::json!({"data": {"k": "ZHJpZnQ="}});

    let mut operator = Operator::start(&ns.name, &["--identity=first"])?;
    operator.wait_ready().await?;
    let keys = key_ids(&ns).await?;
    sealed
        .create(
            &PostParams::default(),
            &seal_secret(&ns.name, "one", "Opaque", &[("k", "1")])?,
        )
        .await?;
    eventually("Secret one", WAIT, || async {
        Ok(value(&secrets, "one").await?.filter(|v| v == "1"))
    })
    .await?;

    // The operator stops; meanwhile a Secret drifts and a new SealedSecret arrives.
    operator.stop();
    secrets
        .patch("one", &PatchParams::default(), &Patch::Merge(&drift))
        .await?;
    sealed
        .create(
            &PostParams::default(),
            &seal_secret(&ns.name, "two", "Opaque", &[("k", "2")])?,
        )
        .await?;
    // A restarted process gets a new identity; it waits out the old Lease, as a new pod would.
    let operator = Operator::start(&ns.name, &["--identity=second"])?;
    operator.wait_ready().await?;
    eventually("drift repaired after the restart", WAIT, || async {
        Ok(value(&secrets, "one").await?.filter(|v| v == "1"))
    })
    .await?;
    eventually("Secret two after the restart", WAIT, || async {
        Ok(value(&secrets, "two").await?.filter(|v| v == "2"))
    })
    .await?;
    assert_eq!(
        key_ids(&ns).await?,
        keys,
        "an operator restart changed the keys"
    );

    // The API server restarts under the running operator.
    restart_apiserver().await?;
    let ns_client = seal_e2e::client().await?;
    let sealed: kube::Api<SealedSecret> = kube::Api::namespaced(ns_client.clone(), &ns.name);
    let secrets: kube::Api<Secret> = kube::Api::namespaced(ns_client, &ns.name);
    sealed
        .create(
            &PostParams::default(),
            &seal_secret(&ns.name, "three", "Opaque", &[("k", "3")])?,
        )
        .await?;
    eventually(
        "Secret three after the API server restart",
        WAIT,
        || async { Ok(value(&secrets, "three").await?.filter(|v| v == "3")) },
    )
    .await?;
    secrets
        .patch("two", &PatchParams::default(), &Patch::Merge(&drift))
        .await?;
    eventually(
        "drift repaired after the API server restart",
        WAIT,
        || async { Ok(value(&secrets, "two").await?.filter(|v| v == "2")) },
    )
    .await?;
    assert_eq!(
        key_ids(&ns).await?,
        keys,
        "an API server restart changed the keys"
    );
    assert_eq!(operator.get(operator.http_port, "/readyz").await?.0, 200);
    drop(operator);
    ns.delete().await
}

#[tokio::test]
async fn replicas_never_lead_at_once_across_etcd_restarts() -> Result<()> {
    let _turn = SERVER.lock().await;
    let ns = TestNamespace::create("etcd-restart").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let ids = ["replica-0", "replica-1", "replica-2"];
    let replicas: Vec<Operator> = ids
        .iter()
        .map(|id| Operator::start(&ns.name, &[&format!("--identity={id}")]))
        .collect::<Result<_>>()?;
    let sampler = LeaderSampler::start();
    sampler.follow(&ids.iter().copied().zip(replicas.iter()).collect::<Vec<_>>());
    let leading = || async {
        let mut count = 0;
        for op in &replicas {
            count += usize::from(op.leads().await.unwrap_or(false));
        }
        Ok((count == 1).then_some(()))
    };
    eventually("one leader", WAIT, leading).await?;
    // Short outages that renewals ride out, and one longer than a claim may last unrenewed.
    for outage in ["2", "4", "12"] {
        cluster(&["restart-etcd", outage]).await?;
        eventually("one leader after etcd came back", WAIT, leading).await?;
    }
    // Ready: keys loaded, and on the leader the public-key ConfigMap written, which sealing
    // below reads.
    for replica in &replicas {
        replica.wait_ready().await?;
    }
    let secrets = ns.api::<Secret>();
    ns.api::<SealedSecret>()
        .create(
            &PostParams::default(),
            &seal_secret(&ns.name, "after", "Opaque", &[("k", "1")])?,
        )
        .await?;
    eventually("a Secret after the restarts", WAIT, || async {
        Ok(value(&secrets, "after").await?.filter(|v| v == "1"))
    })
    .await?;
    let samples = sampler.samples();
    eprintln!(
        "etcd restarts: {} samples, {} overlapping, {} without a leader",
        samples.taken,
        samples.overlaps.len(),
        samples.leaderless
    );
    // The 12 s outage outlasts a claim: the leader must have stopped writing meanwhile.
    assert!(
        samples.leaderless > 0,
        "a leader went on leading through a 12 s etcd outage"
    );
    assert!(
        samples.overlaps.is_empty(),
        "two replicas led at once across etcd restarts: {:?}",
        &samples.overlaps[..samples.overlaps.len().min(5)]
    );
    assert_eq!(
        key_ids(&ns).await?.len(),
        1,
        "etcd restarts made or lost keys"
    );
    drop(replicas);
    ns.delete().await
}
