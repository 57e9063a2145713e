//! Taking over an existing Secret needs the consent of whoever may write that Secret: a user
//! who may create SealedSecrets but not Secrets cannot get one overwritten, the Secret's
//! owner can hand it over, and a Secret that a Bitnami SealedSecret controls moves to seal
//! without a moment in which it is missing or holds another value. The operator runs with
//! exactly the chart's RBAC.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{
    DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::discovery::ApiResource;
use kube::{Api, CustomResourceExt};
use seal_e2e::chart::{ChartRbac, client_as};
use seal_e2e::operator::{Operator, seal_secret};
use seal_e2e::tools::kubectl;
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;
use serde_json::json;

const ADOPT: &str = "seal.dev/adopt-existing-secret";
const CONSENT: &str = "seal.dev/managed";
/// SecretConflict is retried every 15 s; allow two retries.
const WAIT: Duration = Duration::from_secs(40);

async fn value(secrets: &Api<Secret>, name: &str, key: &str) -> Result<Option<String>> {
    Ok(secrets.get_opt(name).await?.and_then(|s| {
        s.data.and_then(|d| {
            d.get(key)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        })
    }))
}

async fn event_notes(ns: &TestNamespace, reason: &str) -> Result<Vec<String>> {
    let events: Api<Event> = ns.api();
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect())
}

/// The `adoptedFrom` of the audit lines for one SealedSecret, once there is one: the audit
/// line is written after the status and the Event, so seeing those does not mean it is there.
async fn audit_adopted_from(operator: &Operator, name: &str) -> Result<Vec<String>> {
    eventually("an audit line with adoptedFrom", WAIT, || async {
        let audit = std::fs::read_to_string(&operator.stdout)?;
        let mut found = Vec::new();
        for line in audit.lines() {
            let record: serde_json::Value = serde_json::from_str(line)?;
            if record["sealedSecret"]
                .as_str()
                .is_some_and(|s| s.ends_with(&format!("/{name}")))
                && let Some(from) = record["adoptedFrom"].as_str()
            {
                found.push(from.to_owned());
            }
        }
        Ok((!found.is_empty()).then_some(found))
    })
    .await
}

fn with_annotation(mut sealed: SealedSecret, key: &str) -> SealedSecret {
    sealed
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(key.into(), "true".into());
    sealed
}

pub(crate) async fn operator_under_chart_rbac(ns: &TestNamespace) -> Result<(ChartRbac, Operator)> {
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let rbac = ChartRbac::install(ns)?;
    let operator = Operator::start_with_kubeconfig(&ns.name, &rbac.kubeconfig, &[])?;
    operator
        .wait_ready()
        .await
        .inspect_err(|_| eprintln!("{}", operator.output()))?;
    Ok((rbac, operator))
}

#[tokio::test]
async fn only_the_secrets_owner_can_hand_it_over() -> Result<()> {
    let ns = TestNamespace::create("adoption-consent").await?;
    let (_rbac, operator) = operator_under_chart_rbac(&ns).await?;
    // Mallory may write SealedSecrets in the namespace, and nothing else.
    let mallory = client_as(
        &ns,
        "mallory",
        json!([{"apiGroups": ["seal.dev"], "resources": ["sealedsecrets"],
                "verbs": ["get", "list", "watch", "create", "update", "patch"]}]),
    )
    .await?;
    let as_mallory_secrets: Api<Secret> = Api::namespaced(mallory.clone(), &ns.name);
    let denied = as_mallory_secrets.get_opt("token").await;
    assert!(
        matches!(&denied, Err(kube::Error::Api(s)) if s.code == 403),
        "mallory may read Secrets: {denied:?}"
    );
    let as_mallory: Api<SealedSecret> = Api::namespaced(mallory, &ns.name);

    // Someone else's Secret, controlled by no one, and one that a controller owns.
    let secrets = ns.api::<Secret>();
    let theirs: Secret = serde_json::from_value(json!({
        "metadata": {"name": "token"}, "stringData": {"k": "theirs"},
    }))?;
    secrets.create(&PostParams::default(), &theirs).await?;
    let owner = ns
        .api::<k8s_openapi::api::core::v1::ConfigMap>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "issuer"}}))?,
        )
        .await?;
    let controlled: Secret = serde_json::from_value(json!({
        "metadata": {"name": "cert", "annotations": {CONSENT: "true"}, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "issuer",
            "uid": owner.metadata.uid, "controller": true,
        }]},
        "stringData": {"k": "issued"},
    }))?;
    secrets.create(&PostParams::default(), &controlled).await?;

    // Mallory's SealedSecrets ask to adopt both; neither is touched.
    for name in ["token", "cert"] {
        let sealed = seal_secret(&ns.name, name, "Opaque", &[("k", "mallory")])?;
        as_mallory
            .create(&PostParams::default(), &with_annotation(sealed, ADOPT))
            .await?;
    }
    for name in ["token", "cert"] {
        eventually(&format!("SecretConflict on {name}"), WAIT, || async {
            Ok(ns
                .ready_reason(name)
                .await?
                .filter(|(s, r)| s == "False" && r == "SecretConflict"))
        })
        .await?;
    }
    let message = |name: &'static str| {
        let api = ns.api::<SealedSecret>();
        async move {
            let sealed = api.get(name).await?;
            sealed
                .status
                .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"))
                .map(|c| c.message)
                .context("no Ready condition")
        }
    };
    let token_message = message("token").await?;
    assert!(
        token_message.contains(&format!("{CONSENT}: \"true\""))
            && token_message.contains("kubectl annotate secret"),
        "{token_message}"
    );
    assert!(message("cert").await?.contains("ConfigMap issuer"));
    // Two retries later nothing has changed, and the failure was reported once.
    tokio::time::sleep(Duration::from_secs(16)).await;
    assert_eq!(
        value(&secrets, "token", "k").await?.as_deref(),
        Some("theirs")
    );
    assert_eq!(
        value(&secrets, "cert", "k").await?.as_deref(),
        Some("issued")
    );
    let conflicts = event_notes(&ns, "SecretConflict").await?;
    assert_eq!(
        conflicts.len(),
        2,
        "one Warning per SealedSecret: {conflicts:?}"
    );

    // The Secret's owner consents on the Secret: it is taken over.
    secrets
        .patch(
            "token",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {CONSENT: "true"}}})),
        )
        .await?;
    eventually("the consented Secret to be adopted", WAIT, || async {
        Ok(value(&secrets, "token", "k")
            .await?
            .filter(|v| v == "mallory"))
    })
    .await
    .inspect_err(|_| eprintln!("{}", operator.output()))?;
    let adopted = secrets.get("token").await?;
    let sealed_uid = ns.api::<SealedSecret>().get("token").await?.metadata.uid;
    let owners = adopted.metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!(Some(owners[0].uid.clone()), sealed_uid);
    assert!(
        !adopted
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(CONSENT),
        "the consent annotation outlived the takeover"
    );
    let notes = eventually("an Adopted Event", WAIT, || async {
        let notes = event_notes(&ns, "Adopted").await?;
        Ok((!notes.is_empty()).then_some(notes))
    })
    .await?;
    assert!(notes[0].contains("no controller"), "{notes:?}");
    assert_eq!(
        audit_adopted_from(&operator, "token").await?,
        ["unowned, with consent"]
    );
    // The controlled one stays refused.
    assert_eq!(
        value(&secrets, "cert", "k").await?.as_deref(),
        Some("issued")
    );
    assert!(
        !operator.output().contains("forbidden"),
        "the operator hit RBAC denials:\n{}",
        operator.output()
    );
    drop(operator);
    ns.delete().await
}

/// The part of Bitnami's CRD that an owner reference needs: the kind must exist for an
/// object of it to have a uid.
pub(crate) async fn install_bitnami_crd(ns: &TestNamespace) -> Result<ApiResource> {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "sealedsecrets.bitnami.com"},
        "spec": {"group": "bitnami.com", "scope": "Namespaced",
            "names": {"kind": "SealedSecret", "plural": "sealedsecrets", "singular": "sealedsecret"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    });
    let crd = serde_json::from_value(crd)?;
    install_crd(&ns.client, &crd).await?;
    Ok(ApiResource {
        group: "bitnami.com".into(),
        version: "v1alpha1".into(),
        api_version: "bitnami.com/v1alpha1".into(),
        kind: "SealedSecret".into(),
        plural: "sealedsecrets".into(),
    })
}

#[tokio::test]
async fn a_secret_that_bitnami_controls_moves_over_without_a_gap() -> Result<()> {
    let ns = TestNamespace::create("adoption-bitnami").await?;
    let bitnami_kind = install_bitnami_crd(&ns).await?;
    let (_rbac, operator) = operator_under_chart_rbac(&ns).await?;
    let bitnami: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &bitnami_kind);
    let theirs = bitnami
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
                "metadata": {"name": "db"}, "spec": {"encryptedData": {"password": "AgB..."}},
            }))?,
        )
        .await?;
    let bitnami_uid = theirs.metadata.uid.clone().context("no uid")?;
    let secrets = ns.api::<Secret>();
    let unsealed: Secret = serde_json::from_value(json!({
        "metadata": {"name": "db", "ownerReferences": [{
            "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "name": "db",
            "uid": bitnami_uid, "controller": true,
        }]},
        "stringData": {"password": "same-value"},
    }))?;
    let created = secrets.create(&PostParams::default(), &unsealed).await?;

    // Without the annotation the seal SealedSecret is refused, and says what to set.
    let sealed = seal_secret(&ns.name, "db", "Opaque", &[("password", "same-value")])?;
    ns.api::<SealedSecret>()
        .create(&PostParams::default(), &sealed)
        .await?;
    eventually("SecretConflict", WAIT, || async {
        Ok(ns
            .ready_reason("db")
            .await?
            .filter(|(s, r)| s == "False" && r == "SecretConflict"))
    })
    .await?;

    // Everything the Secret goes through from here on.
    let params = WatchParams::default().fields("metadata.name=db");
    let version = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let mut changes = secrets.watch(&params, &version).await?.boxed();
    ns.api::<SealedSecret>()
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {ADOPT: "true"}}})),
        )
        .await?;
    let mut seen: Vec<(String, BTreeMap<String, String>, Vec<String>)> = Vec::new();
    let adopted = tokio::time::timeout(WAIT, async {
        while let Some(event) = changes.try_next().await? {
            let (kind, secret) = match event {
                WatchEvent::Added(s) => ("added", s),
                WatchEvent::Modified(s) => ("modified", s),
                WatchEvent::Deleted(s) => ("deleted", s),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => anyhow::bail!("watch error: {e}"),
            };
            let data = secret
                .data
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect();
            let owners: Vec<String> = secret
                .metadata
                .owner_references
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|o| o.api_version)
                .collect();
            let done = owners == ["seal.dev/v1"];
            seen.push((kind.to_owned(), data, owners));
            if done {
                return Ok(());
            }
        }
        anyhow::bail!("the watch ended")
    })
    .await;
    adopted
        .context("the Secret was not adopted in time")?
        .inspect_err(|_| eprintln!("{}", operator.output()))?;
    for (kind, data, owners) in &seen {
        assert_eq!(
            kind, "modified",
            "the Secret was {kind} on the way: {seen:?}"
        );
        assert_eq!(
            data.get("password").map(String::as_str),
            Some("same-value"),
            "the value changed on the way (owners {owners:?})"
        );
    }
    eventually("Ready", WAIT, || async {
        Ok(ns
            .ready_reason("db")
            .await?
            .filter(|(s, r)| s == "True" && r == "Unsealed"))
    })
    .await?;
    let notes = eventually("an Adopted Event", WAIT, || async {
        let notes = event_notes(&ns, "Adopted").await?;
        Ok((!notes.is_empty()).then_some(notes))
    })
    .await?;
    assert!(
        notes[0].contains("Bitnami") && notes[0].contains(&bitnami_uid),
        "{notes:?}"
    );
    assert_eq!(
        audit_adopted_from(&operator, "db").await?,
        [format!("bitnami.com/SealedSecret {bitnami_uid}")]
    );
    // With both CRDs installed, `sealed` names seal's kind alone.
    let listed = kubectl(&["get", "sealed", "-n", &ns.name, "-o", "name"], None)?;
    assert_eq!(listed.trim(), "sealedsecret.seal.dev/db", "{listed}");
    kubectl(
        &["delete", "-n", &ns.name, "sealedsecrets.bitnami.com", "db"],
        None,
    )?;
    drop(operator);
    ns.delete().await
}
