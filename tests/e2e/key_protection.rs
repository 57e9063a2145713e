//! The keys belong to the operator alone: no SealedSecret can forge a key Secret, or replace
//! or delete one, and a Secret labelled as a key is loaded only if it is of the key type and
//! no SealedSecret owns it.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use kube::api::PostParams;
use seal_e2e::operator::{Operator, seal_secret};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

async fn key_secrets(ns: &TestNamespace) -> Result<Vec<(String, String)>> {
    Ok(ns
        .key_secrets()
        .await?
        .into_iter()
        .map(|s| {
            (
                s.metadata.name.unwrap_or_default(),
                s.metadata.uid.unwrap_or_default(),
            )
        })
        .collect())
}

#[tokio::test]
async fn no_sealed_secret_can_forge_replace_or_delete_a_key() -> Result<()> {
    let ns = TestNamespace::create("key-protection").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--leader-election=false"])?;
    operator.wait_ready().await?;
    let (_, keys_before) = operator.get(operator.http_port, "/v1/keys").await?;
    let key_secrets_before = key_secrets(&ns).await?;
    assert_eq!(key_secrets_before.len(), 1);
    let sealed_api = ns.api::<SealedSecret>();

    // A template that would make a Secret the key watch loads.
    let mut forged = seal_secret(&ns.name, "forged", "Opaque", &[("identity", "x")])?;
    forged
        .spec
        .template
        .metadata
        .labels
        .insert("seal.dev/key".into(), "true".into());
    forged.spec.template.type_ = Some("seal.dev/age-key".into());
    sealed_api.create(&PostParams::default(), &forged).await?;

    // The key Secret's own name, asking to take it over.
    let (key_name, key_uid) = key_secrets_before[0].clone();
    let mut over = seal_secret(&ns.name, &key_name, "Opaque", &[("identity", "x")])?;
    over.metadata.annotations =
        Some([("seal.dev/adopt-existing-secret".into(), "true".into())].into());
    over.spec.template.immutable = Some(true);
    sealed_api.create(&PostParams::default(), &over).await?;

    for name in ["forged", key_name.as_str()] {
        eventually(&format!("{name} refused"), WAIT, || async {
            Ok(ns
                .ready_reason(name)
                .await?
                .filter(|(s, r)| s == "False" && r == "InvalidSpec"))
        })
        .await?;
    }
    assert!(ns.api::<Secret>().get_opt("forged").await?.is_none());

    // A Secret labelled as a key by hand, of another type: not a key.
    let fake: Secret = serde_json::from_value(json!({
        "metadata": {"name": "not-a-key", "labels": {"seal.dev/key": "true"}},
        "type": "Opaque",
        "stringData": {"identity": "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"},
    }))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &fake)
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (_, keys_after) = operator.get(operator.http_port, "/v1/keys").await?;
    assert_eq!(keys_after, keys_before, "the published keys changed");
    let now: Vec<(String, String)> = key_secrets(&ns)
        .await?
        .into_iter()
        .filter(|(name, _)| name != "not-a-key")
        .collect();
    assert_eq!(
        now,
        [(key_name, key_uid)],
        "the key Secret was replaced or deleted"
    );
    assert!(
        !operator.output().contains("AGE-SECRET-KEY-1QQQ"),
        "a key Secret's content was logged"
    );
    drop(operator);
    ns.delete().await
}
