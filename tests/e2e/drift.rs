//! The Secret holds exactly what its SealedSecret says, whatever another client did to it:
//! one row per kind of change, each undone on the real API server.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, CustomResourceExt};
use seal_e2e::operator::{Operator, seal_secret};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// What "exactly" covers: values, labels, annotations, owners and type.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Shape {
    data: BTreeMap<String, Vec<u8>>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    owners: Vec<(String, String, Option<bool>)>,
    type_: Option<String>,
}

fn shape(secret: &Secret) -> Shape {
    Shape {
        data: secret
            .data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect(),
        labels: secret.metadata.labels.clone().unwrap_or_default(),
        annotations: secret.metadata.annotations.clone().unwrap_or_default(),
        owners: secret
            .metadata
            .owner_references
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|o| (o.kind, o.uid, o.controller))
            .collect(),
        type_: secret.type_.clone(),
    }
}

#[tokio::test]
async fn every_change_by_someone_else_is_undone() -> Result<()> {
    let ns = TestNamespace::create("drift").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--leader-election=false"])?;
    operator.wait_ready().await?;
    let sealed = seal_secret(
        &ns.name,
        "db",
        "Opaque",
        &[("user", "shop"), ("password", "pw")],
    )?;
    ns.api::<SealedSecret>()
        .create(&PostParams::default(), &sealed)
        .await?;
    let secrets: Api<Secret> = ns.api();
    let desired = eventually("the Secret", WAIT, || async {
        Ok(secrets.get_opt("db").await?.map(|s| shape(&s)))
    })
    .await?;
    assert_eq!(desired.owners.len(), 1);

    let merge = |patch: Value| Patch::Merge(patch);
    let rows: Vec<(&str, Option<Patch<Value>>)> = vec![
        (
            "a value edited",
            Some(merge(json!({"data": {"password": "dGFtcGVyZWQ="}}))),
        ),
        (
            "a key added to data",
            Some(merge(json!({"data": {"extra": "eA=="}}))),
        ),
        (
            "the owner reference removed",
            Some(merge(json!({"metadata": {"ownerReferences": null}}))),
        ),
        (
            "the owner reference removed and a value edited",
            Some(merge(
                json!({"metadata": {"ownerReferences": null}, "data": {"user": "bWFsbG9yeQ=="}}),
            )),
        ),
        (
            "a label value edited",
            Some(merge(json!({"metadata": {"labels": {"app": "other"}}}))),
        ),
        (
            "a label added",
            Some(merge(json!({"metadata": {"labels": {"team": "x"}}}))),
        ),
        (
            "the managed-by label dropped",
            Some(merge(
                json!({"metadata": {"labels": {"seal.dev/managed-by": null}}}),
            )),
        ),
        (
            "an annotation added",
            Some(merge(
                json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{}}"}}}),
            )),
        ),
        (
            "a second, non-controller owner added",
            Some(merge(json!({"metadata": {"ownerReferences": [
                {"apiVersion": "seal.dev/v1", "kind": "SealedSecret", "name": "db",
                 "uid": desired.owners[0].1, "controller": true, "blockOwnerDeletion": true},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "00000000-0000-0000-0000-000000000001"},
            ]}}))),
        ),
        ("the Secret deleted", None),
    ];
    for (what, change) in rows {
        match change {
            Some(patch) => {
                let changed = secrets.patch("db", &PatchParams::default(), &patch).await?;
                assert_ne!(shape(&changed), desired, "{what}: the change did nothing");
            }
            None => {
                secrets.delete("db", &DeleteParams::default()).await?;
            }
        }
        eventually(&format!("{what} to be undone"), WAIT, || async {
            Ok(secrets
                .get_opt("db")
                .await?
                .filter(|s| shape(s) == desired)
                .map(|_| ()))
        })
        .await?;
        eventually(&format!("Ready after {what}"), WAIT, || async {
            Ok(ns
                .ready_reason("db")
                .await?
                .filter(|(s, r)| s == "True" && r == "Unsealed"))
        })
        .await?;
    }
    assert!(
        !operator.output().contains("\"level\":\"ERROR\""),
        "{}",
        operator.output()
    );
    drop(operator);
    ns.delete().await
}
