//! seal-operator against the real API server: the CLI seals with the key from the operator's
//! ConfigMap, the operator unseals, follows changes, repairs drift, and refuses what it must.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, CustomResourceExt};
use seal_e2e::operator::{Operator, seal_secret};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;

const SENTINEL: &str = "sentinel-5b1d-operator-must-never-print";
const WAIT: Duration = Duration::from_secs(20);

async fn secret_data(api: &Api<Secret>, name: &str) -> Result<Option<BTreeMap<String, String>>> {
    Ok(api.get_opt(name).await?.map(|s| {
        s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect()
    }))
}

/// The outcomes of the audit lines written so far for one SealedSecret, in order.
fn audit_outcomes(operator: &Operator, name: &str) -> Result<Vec<String>> {
    let audit = std::fs::read_to_string(&operator.stdout)?;
    let mut outcomes = Vec::new();
    for line in audit.lines() {
        let record: serde_json::Value = serde_json::from_str(line)?;
        if record["sealedSecret"]
            .as_str()
            .is_some_and(|s| s.ends_with(&format!("/{name}")))
        {
            outcomes.push(record["outcome"].as_str().unwrap_or_default().to_owned());
        }
    }
    Ok(outcomes)
}

#[tokio::test]
async fn operator_unseals_follows_repairs_and_refuses() -> Result<()> {
    let ns = TestNamespace::create("operator").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--leader-election=false"])?;
    operator.wait_ready().await?;
    // Ready means the first key is made and published: sealing can start at once.
    let published = ns.published_recipient().await?;
    assert!(
        published.is_some_and(|r| r.starts_with("age1")),
        "ready before the public key was published"
    );
    let sealed_api = ns.api::<SealedSecret>();
    let secrets = ns.api::<Secret>();

    // Seal with the CLI, recipient from the ConfigMap; apply; the Secret appears.
    let sealed = seal_secret(
        &ns.name,
        "db",
        "kubernetes.io/basic-auth",
        &[("username", "shop"), ("password", SENTINEL), ("extra", "x")],
    )?;
    let created = sealed_api.create(&PostParams::default(), &sealed).await?;
    let data = eventually("the Secret", WAIT, || async {
        secret_data(&secrets, "db").await
    })
    .await?;
    assert_eq!(data["password"], SENTINEL);
    assert_eq!(data["username"], "shop");
    let secret = secrets.get("db").await?;
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("shop"));
    let owner = &secret.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("SealedSecret", "db", Some(true))
    );
    assert_eq!(Some(owner.uid.clone()), created.metadata.uid);
    eventually("Ready=True", WAIT, || async {
        Ok(ns
            .ready_reason("db")
            .await?
            .filter(|(s, r)| s == "True" && r == "Unsealed"))
    })
    .await?;
    // The operator's own write comes back through its Secret watch; that must not cost a
    // second pass over the object. The audit line follows the status, so wait for it first.
    eventually("the first audit line", WAIT, || async {
        Ok((!audit_outcomes(&operator, "db")?.is_empty()).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let passes = audit_outcomes(&operator, "db")?;
    assert_eq!(passes, ["unsealed"], "one write, one pass");

    // Update one key and remove another: the Secret follows, including the removal.
    let fresh = seal_secret(
        &ns.name,
        "db",
        "kubernetes.io/basic-auth",
        &[("username", "admin")],
    )?;
    let patch = serde_json::json!({"spec": {"encryptedData": {
        "username": fresh.spec.encrypted_data["username"], "extra": null
    }}});
    sealed_api
        .patch("db", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    eventually("the Secret to follow", WAIT, || async {
        Ok(secret_data(&secrets, "db").await?.filter(|d| {
            d.get("username").map(String::as_str) == Some("admin") && !d.contains_key("extra")
        }))
    })
    .await?;

    // Drift: an edited value is restored; a deleted Secret comes back.
    let edit = serde_json::json!({"data": {"password": "dGFtcGVyZWQ="}});
    secrets
        .patch("db", &PatchParams::default(), &Patch::Merge(&edit))
        .await?;
    eventually("the edit to be repaired", WAIT, || async {
        Ok(secret_data(&secrets, "db")
            .await?
            .filter(|d| d["password"] == SENTINEL))
    })
    .await?;
    secrets.delete("db", &DeleteParams::default()).await?;
    eventually("the deleted Secret to return", WAIT, || async {
        Ok(secret_data(&secrets, "db")
            .await?
            .filter(|d| d["password"] == SENTINEL))
    })
    .await?;

    // An item copied into another SealedSecret is refused with BindingMismatch.
    let mut copy = sealed.clone();
    copy.metadata.name = Some("copy".into());
    copy.metadata.uid = None;
    copy.metadata.resource_version = None;
    sealed_api.create(&PostParams::default(), &copy).await?;
    eventually("BindingMismatch on the copy", WAIT, || async {
        Ok(ns
            .ready_reason("copy")
            .await?
            .filter(|(s, r)| s == "False" && r == "BindingMismatch"))
    })
    .await?;
    assert!(
        secrets.get_opt("copy").await?.is_none(),
        "a moved item was unsealed"
    );

    // An existing Secret the operator does not own is never overwritten.
    let mine: Secret = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "unmanaged"}, "stringData": {"k": "hand-made"}}),
    )?;
    secrets.create(&PostParams::default(), &mine).await?;
    let over = seal_secret(&ns.name, "unmanaged", "Opaque", &[("k", "sealed")])?;
    sealed_api.create(&PostParams::default(), &over).await?;
    eventually("SecretConflict", WAIT, || async {
        Ok(ns
            .ready_reason("unmanaged")
            .await?
            .filter(|(s, r)| s == "False" && r == "SecretConflict"))
    })
    .await?;
    assert_eq!(
        secret_data(&secrets, "unmanaged").await?.unwrap()["k"],
        "hand-made"
    );

    // Events name outcomes; the sentinel appears in no log, Event, status or metric.
    let events: Api<Event> = ns.api();
    let reasons = eventually("Events", WAIT, || async {
        let list = events.list(&ListParams::default()).await?;
        let reasons: Vec<String> = list.items.iter().filter_map(|e| e.reason.clone()).collect();
        let all = ["Unsealed", "BindingMismatch", "SecretConflict"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r));
        Ok(all.then_some(list))
    })
    .await?;
    let (_, metrics) = operator.get(operator.metrics_port, "/metrics").await?;
    assert!(metrics.contains("seal_unseals_total"), "{metrics}");
    let statuses = serde_json::to_string(
        &sealed_api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|s| &s.status)
            .collect::<Vec<_>>(),
    )?;
    let audit = std::fs::read_to_string(&operator.stdout)?;
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"outcome\":\"unsealed\"") && l.contains("\"sealedSecret\"")),
        "no audit line: {audit}"
    );
    for (what, text) in [
        ("operator output", operator.output()),
        ("Events", serde_json::to_string(&reasons.items)?),
        ("status", statuses),
        ("metrics", metrics),
    ] {
        assert!(
            !text.contains(SENTINEL),
            "the secret value leaked into {what}"
        );
    }
    drop(operator);
    ns.delete().await
}
