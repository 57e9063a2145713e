//! Key rotation with a short period: new seals use the new key, old SealedSecrets still
//! unseal, and no key is ever deleted.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use kube::api::{ListParams, PostParams};
use seal_e2e::operator::{Operator, seal_secret};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;

const WAIT: Duration = Duration::from_secs(30);

async fn key_secrets(ns: &TestNamespace) -> Result<Vec<Secret>> {
    Ok(ns
        .api::<Secret>()
        .list(&ListParams::default().labels("seal.dev/key=true"))
        .await?
        .items)
}

/// The id of the published key whose recipient is `recipient`.
async fn published_id(ns: &TestNamespace, recipient: &str) -> Result<String> {
    use seal_shared::public_keys::{CONFIGMAP, KEYS_KEY, PublishedKey};
    let map = ns
        .api::<k8s_openapi::api::core::v1::ConfigMap>()
        .get(CONFIGMAP)
        .await?;
    let keys: Vec<PublishedKey> = serde_json::from_str(
        map.data
            .and_then(|d| d.get(KEYS_KEY).cloned())
            .as_deref()
            .unwrap_or("[]"),
    )?;
    keys.into_iter()
        .find(|k| k.recipient == recipient)
        .map(|k| k.id)
        .ok_or_else(|| anyhow::anyhow!("{recipient} is not published"))
}

/// The value of `seal_sealed_with_noncurrent_key` on the operator's metrics endpoint.
async fn noncurrent_gauge(operator: &Operator) -> Result<i64> {
    let (_, metrics) = operator.get(operator.metrics_port, "/metrics").await?;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("seal_sealed_with_noncurrent_key "))
        .ok_or_else(|| anyhow::anyhow!("no seal_sealed_with_noncurrent_key in {metrics}"))?;
    Ok(line.rsplit(' ').next().unwrap_or_default().parse()?)
}

#[tokio::test]
async fn rotation_keeps_old_keys_and_seals_with_the_new_one() -> Result<()> {
    let ns = TestNamespace::create("rotation").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(
        &ns.name,
        &["--leader-election=true", "--key-rotation-period=3s"],
    )?;
    operator.wait_ready().await?;
    let sealed_api = ns.api::<SealedSecret>();
    let secrets = ns.api::<Secret>();

    let first = eventually("a first key", WAIT, || ns.published_recipient()).await?;
    let old = seal_secret(&ns.name, "old", "Opaque", &[("k", "old-value")])?;
    let second = eventually("a rotated key", WAIT, || async {
        Ok(ns.published_recipient().await?.filter(|r| *r != first))
    })
    .await?;
    let new = seal_secret(&ns.name, "new", "Opaque", &[("k", "new-value")])?;
    sealed_api.create(&PostParams::default(), &old).await?;
    sealed_api.create(&PostParams::default(), &new).await?;
    for name in ["old", "new"] {
        let value = eventually(&format!("Secret {name}"), WAIT, || async {
            Ok(secrets
                .get_opt(name)
                .await?
                .and_then(|s| s.data)
                .map(|d| String::from_utf8_lossy(&d["k"].0).into_owned()))
        })
        .await?;
        assert_eq!(value, format!("{name}-value"));
    }
    let keys = key_secrets(&ns).await?;
    assert!(
        keys.len() >= 2,
        "rotation deleted or never made keys: {}",
        keys.len()
    );
    let states: Vec<String> = keys
        .iter()
        .filter_map(|s| {
            s.metadata
                .annotations
                .as_ref()?
                .get("seal.dev/state")
                .cloned()
        })
        .collect();
    assert!(
        states.iter().any(|s| s == "decrypt-only"),
        "older keys should be decrypt-only: {states:?}"
    );
    assert!(
        states.iter().any(|s| s == "active"),
        "one key must seal: {states:?}"
    );
    // A Secret is written before its status: compare statuses only once both say Ready, or
    // an empty one would differ from anything.
    for name in ["old", "new"] {
        eventually(&format!("{name} Ready"), WAIT, || async {
            Ok(ns.ready_reason(name).await?.filter(|(s, _)| s == "True"))
        })
        .await?;
    }
    let new_status = sealed_api.get("new").await?.status.unwrap_or_default();
    let old_status = sealed_api.get("old").await?.status.unwrap_or_default();
    let first_id = published_id(&ns, &first).await?;
    assert_eq!(
        old_status.key_ids,
        [first_id.as_str()],
        "old was sealed with the first key"
    );
    assert!(
        new_status.key_ids.len() == 1 && new_status.key_ids[0] != first_id,
        "new seals must use a newer key ({second}), not {:?}",
        new_status.key_ids
    );

    // Every rotation reconciles everything; an unchanged Secret must not be written again.
    let before = secrets.get("old").await?.metadata.resource_version;
    let current = ns.published_recipient().await?;
    eventually("another rotation", WAIT, || async {
        Ok(ns
            .published_recipient()
            .await?
            .filter(|r| Some(r) != current.as_ref()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        secrets.get("old").await?.metadata.resource_version,
        before,
        "an unchanged Secret was rewritten"
    );
    drop(operator);
    ns.delete().await
}

#[tokio::test]
async fn seal_rotate_asks_for_a_key_and_sigterm_stops_cleanly() -> Result<()> {
    let ns = TestNamespace::create("manual-rotation").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let mut operator = Operator::start(&ns.name, &["--key-rotation-period=0"])?;
    operator.wait_ready().await?;
    let first = eventually("a first key", WAIT, || ns.published_recipient()).await?;
    let sealed_api = ns.api::<SealedSecret>();
    let old = seal_secret(&ns.name, "old", "Opaque", &[("k", "old-value")])?;
    sealed_api.create(&PostParams::default(), &old).await?;
    eventually("Secret old", WAIT, || async {
        Ok(ns.api::<Secret>().get_opt("old").await?)
    })
    .await?;
    assert_eq!(noncurrent_gauge(&operator).await?, 0);

    let dir = tempfile::tempdir()?;
    let out =
        seal_e2e::operator::seal(&["rotate", "--controller-namespace", &ns.name], dir.path())?;
    assert!(
        out.status.success(),
        "seal rotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = eventually("the requested key", WAIT, || async {
        Ok(ns.published_recipient().await?.filter(|r| *r != first))
    })
    .await?;
    let keys = key_secrets(&ns).await?;
    assert_eq!(keys.len(), 2, "one request, one new key");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ns.published_recipient().await?,
        Some(second),
        "a spent request must not rotate again"
    );
    assert_eq!(key_secrets(&ns).await?.len(), 2);

    // "old" still opens, with the key that is no longer current: the gauge counts it until
    // it is sealed anew, or, as here, deleted.
    eventually(
        "old counted as sealed with a non-current key",
        WAIT,
        || async { Ok((noncurrent_gauge(&operator).await? == 1).then_some(())) },
    )
    .await?;
    sealed_api
        .delete("old", &kube::api::DeleteParams::default())
        .await?;
    eventually("a deleted SealedSecret no longer counted", WAIT, || async {
        Ok((noncurrent_gauge(&operator).await? == 0).then_some(()))
    })
    .await?;

    let status = operator.terminate(Duration::from_secs(10))?;
    assert!(
        status.success(),
        "SIGTERM should end the operator cleanly, got {status}"
    );
    ns.delete().await
}

#[tokio::test]
async fn a_key_deleted_by_hand_is_reported_on_what_it_sealed() -> Result<()> {
    let ns = TestNamespace::create("key-deleted").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--key-rotation-period=0"])?;
    operator.wait_ready().await?;
    let first = eventually("a first key", WAIT, || ns.published_recipient()).await?;
    let sealed_api = ns.api::<SealedSecret>();
    let secrets = ns.api::<Secret>();
    let sealed = seal_secret(&ns.name, "app", "Opaque", &[("k", "app-value")])?;
    sealed_api.create(&PostParams::default(), &sealed).await?;
    eventually("app Ready", WAIT, || async {
        Ok(ns
            .ready_reason("app")
            .await?
            .filter(|(status, _)| status == "True"))
    })
    .await?;

    // The only key goes. The leader makes a new one, and "app", settled until now, must show
    // that nothing can open it any more; its Secret is left as it is.
    ns.api::<Secret>()
        .delete_collection(
            &kube::api::DeleteParams::default(),
            &ListParams::default().labels("seal.dev/key=true"),
        )
        .await?;
    let reason = eventually("app to report the missing key", WAIT, || async {
        Ok(ns
            .ready_reason("app")
            .await?
            .filter(|(status, _)| status == "False"))
    })
    .await?;
    assert_eq!(reason.1, "NoMatchingKey");
    let value = secrets.get("app").await?.data.unwrap_or_default();
    assert_eq!(
        value["k"].0, b"app-value",
        "the Secret must be left as it was"
    );
    // The Event follows the status write.
    eventually("a NoMatchingKey Event on app", WAIT, || async {
        let events = ns
            .api::<k8s_openapi::api::events::v1::Event>()
            .list(&ListParams::default())
            .await?
            .items;
        Ok(events
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("NoMatchingKey")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("app")
            })
            .then_some(()))
    })
    .await?;
    let second = eventually("a new key", WAIT, || async {
        Ok(ns.published_recipient().await?.filter(|r| *r != first))
    })
    .await?;
    assert_ne!(second, first);
    drop(operator);
    ns.delete().await
}
