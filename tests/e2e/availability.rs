//! Several replicas: one leader, one key, and a standby that takes over.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use kube::api::{ListParams, PostParams};
use seal_e2e::operator::{Operator, seal_secret};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;

async fn holder(ns: &TestNamespace) -> Result<Option<String>> {
    let lease = ns.api::<Lease>().get_opt("seal-operator").await?;
    Ok(lease.and_then(|l| l.spec).and_then(|s| s.holder_identity))
}

#[tokio::test]
async fn two_replicas_elect_one_leader_and_fail_over() -> Result<()> {
    let ns = TestNamespace::create("replicas").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let mut a = Some(Operator::start(&ns.name, &["--identity=replica-a"])?);
    let mut b = Some(Operator::start(&ns.name, &["--identity=replica-b"])?);
    for op in [&a, &b].into_iter().flatten() {
        op.wait_ready().await?;
    }
    let leader = eventually("a Lease holder", Duration::from_secs(30), || holder(&ns)).await?;
    assert!(
        leader == "replica-a" || leader == "replica-b",
        "unexpected holder {leader}"
    );

    let keys = ns.key_secrets().await?;
    assert_eq!(keys.len(), 1, "both replicas generated a key");
    let (ka, kb) = (
        a.as_ref()
            .unwrap()
            .get(a.as_ref().unwrap().http_port, "/v1/keys")
            .await?,
        b.as_ref()
            .unwrap()
            .get(b.as_ref().unwrap().http_port, "/v1/keys")
            .await?,
    );
    // Every replica serves the same keys; only the leader counts what each key opened.
    let keys_of = |(_, body): &(u16, String)| -> Result<(Vec<serde_json::Value>, Vec<bool>)> {
        let mut doc: serde_json::Value = serde_json::from_str(body)?;
        let mut counted = Vec::new();
        for key in doc["keys"].as_array_mut().into_iter().flatten() {
            counted.push(key["sealedSecrets"].is_u64());
            key.as_object_mut().map(|k| k.remove("sealedSecrets"));
        }
        Ok((doc["keys"].as_array().cloned().unwrap_or_default(), counted))
    };
    let ((keys_a, counted_a), (keys_b, counted_b)) = (keys_of(&ka)?, keys_of(&kb)?);
    assert_eq!(keys_a, keys_b, "replicas disagree on the public keys");
    let leader_counts = if leader == "replica-a" {
        counted_a
    } else {
        counted_b.clone()
    };
    assert!(
        leader_counts.iter().all(|c| *c),
        "the leader counts: {ka:?} {kb:?}"
    );

    let sealed_api = ns.api::<SealedSecret>();
    let secrets = ns.api::<Secret>();
    sealed_api
        .create(
            &PostParams::default(),
            &seal_secret(&ns.name, "one", "Opaque", &[("k", "1")])?,
        )
        .await?;
    eventually("Secret one", Duration::from_secs(20), || async {
        Ok(secrets.get_opt("one").await?)
    })
    .await?;
    // The Event follows the Secret's write: wait for it before checking who wrote it.
    let reporters: Vec<String> =
        eventually("the Unsealed Event", Duration::from_secs(20), || async {
            let reporters: Vec<String> = ns
                .api::<k8s_openapi::api::events::v1::Event>()
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("Unsealed"))
                .filter_map(|e| e.reporting_instance)
                .collect();
            Ok((!reporters.is_empty()).then_some(reporters))
        })
        .await?;
    assert!(
        !reporters.is_empty() && reporters.iter().all(|r| *r == leader),
        "only the leader writes: {reporters:?}"
    );

    // The leader goes away; the standby takes the Lease and carries on with the same key.
    if leader == "replica-a" {
        a.take()
    } else {
        b.take()
    };
    let survivor = if leader == "replica-a" {
        "replica-b"
    } else {
        "replica-a"
    };
    eventually(
        "the standby to take over",
        Duration::from_secs(45),
        || async { Ok(holder(&ns).await?.filter(|h| h == survivor)) },
    )
    .await?;
    sealed_api
        .create(
            &PostParams::default(),
            &seal_secret(&ns.name, "two", "Opaque", &[("k", "2")])?,
        )
        .await?;
    eventually("Secret two", Duration::from_secs(20), || async {
        Ok(secrets.get_opt("two").await?)
    })
    .await?;
    let keys = ns.key_secrets().await?;
    assert_eq!(keys.len(), 1, "failover must not make or lose keys");
    drop((a, b));
    ns.delete().await
}
