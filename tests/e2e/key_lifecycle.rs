//! Rotation that cannot run away: a request is answered by exactly one key whatever the
//! clocks say, and exactly one key seals after a rotation cut short or a restore.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::CustomResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use seal_e2e::operator::Operator;
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::keys::SealIdentity;
use seal_shared::public_keys::{CONFIGMAP, ROTATE_ANSWERED, ROTATE_REQUESTED};
use seal_shared::sealed_secret::SealedSecret;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// (key id, state) of every key Secret, oldest first by name order of creation time.
async fn key_states(ns: &TestNamespace) -> Result<Vec<(String, String)>> {
    let mut keys: Vec<(String, String, String)> = ns
        .key_secrets()
        .await?
        .into_iter()
        .map(|s| {
            let a = s.metadata.annotations.unwrap_or_default();
            (
                a.get("seal.dev/created").cloned().unwrap_or_default(),
                a.get("seal.dev/key-id").cloned().unwrap_or_default(),
                a.get("seal.dev/state").cloned().unwrap_or_default(),
            )
        })
        .collect();
    keys.sort();
    Ok(keys.into_iter().map(|(_, id, state)| (id, state)).collect())
}

async fn annotate(ns: &TestNamespace, key: &str, value: &str) -> Result<()> {
    ns.api::<ConfigMap>()
        .patch(
            CONFIGMAP,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {key: value}}})),
        )
        .await?;
    Ok(())
}

async fn answered(ns: &TestNamespace) -> Result<Option<String>> {
    let map = ns.api::<ConfigMap>().get(CONFIGMAP).await?;
    Ok(map
        .metadata
        .annotations
        .and_then(|a| a.get(ROTATE_ANSWERED).cloned()))
}

/// A key Secret as a backup restore would put it back: an older creation time, active.
fn restored_key(created: &str) -> Result<Secret> {
    let identity = SealIdentity::generate();
    let text = identity.to_secret_string();
    use age::secrecy::ExposeSecret;
    Ok(serde_json::from_value(json!({
        "metadata": {"name": format!("seal-key-{}", identity.id),
                     "labels": {"seal.dev/key": "true"},
                     "annotations": {"seal.dev/key-id": identity.id.to_string(),
                                     "seal.dev/created": created,
                                     "seal.dev/state": "active"}},
        "type": "seal.dev/age-key",
        "stringData": {"identity": text.expose_secret(),
                       "recipient": identity.recipient().recipient.to_string()},
    }))?)
}

#[tokio::test]
async fn a_request_is_answered_by_one_key_whatever_the_clocks_say() -> Result<()> {
    let ns = TestNamespace::create("rotation-request").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--key-rotation-period=0"])?;
    operator.wait_ready().await?;
    assert_eq!(key_states(&ns).await?.len(), 1);

    // A client whose clock runs years ahead: one new key, then nothing more.
    let ahead = "2099-01-01T00:00:00Z";
    let asked = Instant::now();
    annotate(&ns, ROTATE_REQUESTED, ahead).await?;
    eventually("the request answered", WAIT, || async {
        Ok(answered(&ns).await?.filter(|a| a == ahead))
    })
    .await?;
    let latency = asked.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let states = key_states(&ns).await?;
    assert_eq!(states.len(), 2, "one request, one key: {states:?}");
    assert_eq!(
        states.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        ["decrypt-only", "active"]
    );

    // An opaque request id works the same way.
    annotate(&ns, ROTATE_REQUESTED, "request-7f3a").await?;
    eventually("the second request answered", WAIT, || async {
        Ok(answered(&ns).await?.filter(|a| a == "request-7f3a"))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(key_states(&ns).await?.len(), 3);
    eprintln!("rotation request answered and published after {latency:?}");
    assert!(
        latency < Duration::from_secs(5),
        "a request waited {latency:?}: the ConfigMap is watched, not polled every 10 s"
    );
    drop(operator);
    ns.delete().await
}

#[tokio::test]
async fn exactly_one_key_seals_after_a_restore_or_a_rotation_cut_short() -> Result<()> {
    let ns = TestNamespace::create("one-sealing-key").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--key-rotation-period=0"])?;
    operator.wait_ready().await?;
    let first = key_states(&ns).await?;
    let current = first[0].0.clone();

    // An older key restored from a backup, still marked active: it must not take over.
    ns.api::<Secret>()
        .create(
            &PostParams::default(),
            &restored_key("2020-01-01T00:00:00Z")?,
        )
        .await?;
    let repaired = eventually("the restored key made decrypt-only", WAIT, || async {
        let states = key_states(&ns).await?;
        let actives = states.iter().filter(|(_, s)| s == "active").count();
        Ok((states.len() == 2 && actives == 1).then_some(states))
    })
    .await?;
    assert_eq!(
        repaired[1],
        (current.clone(), "active".into()),
        "{repaired:?}"
    );
    let published = ns.published_recipient().await?.context("no recipient")?;

    // A newer key left active next to the old one, as a rotation stopped halfway leaves it:
    // the newest seals, the other is retired.
    let newer = restored_key("2099-01-01T00:00:00Z")?;
    let newer_id = newer
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("seal.dev/key-id"))
        .cloned()
        .context("no id")?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &newer)
        .await?;
    eventually("the newest key sealing alone", WAIT, || async {
        let states = key_states(&ns).await?;
        let actives: Vec<&String> = states
            .iter()
            .filter(|(_, s)| s == "active")
            .map(|(id, _)| id)
            .collect();
        Ok((actives == [&newer_id]).then_some(()))
    })
    .await?;
    let now_published = eventually("the newest key published", WAIT, || async {
        Ok(ns.published_recipient().await?.filter(|r| *r != published))
    })
    .await?;
    assert!(now_published.starts_with("age1"));
    drop(operator);
    ns.delete().await
}

#[tokio::test]
async fn each_key_counts_the_sealed_secrets_it_opened() -> Result<()> {
    use seal_e2e::operator::seal_secret;
    let ns = TestNamespace::create("key-uses").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--key-rotation-period=0"])?;
    operator.wait_ready().await?;
    let sealed_api = ns.api::<SealedSecret>();
    for name in ["one", "two"] {
        sealed_api
            .create(
                &PostParams::default(),
                &seal_secret(&ns.name, name, "Opaque", &[("k", "v")])?,
            )
            .await?;
    }
    let first = key_states(&ns).await?[0].0.clone();
    annotate(&ns, ROTATE_REQUESTED, "count-test").await?;
    eventually("the request answered", WAIT, || async {
        Ok(answered(&ns).await?.filter(|a| a == "count-test"))
    })
    .await?;
    sealed_api
        .create(
            &PostParams::default(),
            &seal_secret(&ns.name, "three", "Opaque", &[("k", "v")])?,
        )
        .await?;
    let second = key_states(&ns).await?[1].0.clone();
    let counts = eventually("counts per key", WAIT, || async {
        let (_, body) = operator.get(operator.http_port, "/v1/keys").await?;
        let keys: serde_json::Value = serde_json::from_str(&body)?;
        let count = |id: &str| {
            keys["keys"]
                .as_array()
                .and_then(|k| k.iter().find(|k| k["id"] == id))
                .and_then(|k| k["sealedSecrets"].as_u64())
        };
        Ok((count(&first) == Some(2) && count(&second) == Some(1)).then_some(body))
    })
    .await?;
    let (_, metrics) = operator.get(operator.metrics_port, "/metrics").await?;
    assert!(
        metrics.contains(&format!(
            "seal_sealed_secrets_by_key{{key_id=\"{first}\"}} 2"
        )),
        "{metrics}"
    );
    sealed_api
        .delete("one", &kube::api::DeleteParams::default())
        .await?;
    eventually("a deleted SealedSecret uncounted", WAIT, || async {
        let (_, metrics) = operator.get(operator.metrics_port, "/metrics").await?;
        Ok(metrics
            .contains(&format!(
                "seal_sealed_secrets_by_key{{key_id=\"{first}\"}} 1"
            ))
            .then_some(()))
    })
    .await?;
    assert!(counts.contains("sealedSecrets"));
    drop(operator);
    ns.delete().await
}
