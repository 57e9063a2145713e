//! Proves the harness is a real API server: namespaces, Secrets, a CRD, a custom object
//! watched as it changes, and a server-side apply conflict.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::{CustomResourceExt, ResourceExt};
use seal_e2e::{TestNamespace, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;

#[tokio::test]
async fn the_test_server_is_a_real_api_server() -> anyhow::Result<()> {
    let ns = TestNamespace::create("smoke").await?;

    let secrets = ns.api::<Secret>();
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "plain"}, "stringData": {"k": "v"}
    }))?;
    secrets.create(&PostParams::default(), &secret).await?;
    let stored = secrets.get("plain").await?;
    assert_eq!(stored.data.unwrap()["k"].0, b"v", "stringData became data");

    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let sealed = ns.api::<SealedSecret>();
    let mut events = watcher::watcher(sealed.clone(), watcher::Config::default()).boxed();
    // The initial list must finish before the object exists, or its creation could be
    // folded into the list.
    loop {
        if let Some(Ok(Event::InitDone)) = events.next().await {
            break;
        }
    }
    let object: SealedSecret = serde_json::from_value(serde_json::json!({
        "apiVersion": "seal.dev/v1", "kind": "SealedSecret",
        "metadata": {"name": "watched"},
        "spec": {"encryptedData": {"k": "YQ=="}}
    }))?;
    sealed.create(&PostParams::default(), &object).await?;
    let patch = serde_json::json!({"spec": {"scope": "cluster-wide"}});
    sealed
        .patch("watched", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;

    let changed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.next().await {
            if let Ok(Event::Apply(obj)) = event
                && obj.name_any() == "watched"
                && obj.spec.scope == seal_shared::Scope::ClusterWide
            {
                return Some(obj);
            }
        }
        None
    })
    .await?;
    assert!(changed.is_some(), "the watch never showed the change");

    let apply = |manager: &'static str, type_: &'static str| {
        let sealed = sealed.clone();
        async move {
            let body = serde_json::json!({
                "apiVersion": "seal.dev/v1", "kind": "SealedSecret",
                "metadata": {"name": "watched"},
                "spec": {"encryptedData": {"k": "YQ=="}, "template": {"type": type_}}
            });
            sealed
                .patch(
                    "watched",
                    &PatchParams::apply(manager),
                    &Patch::Apply(&body),
                )
                .await
        }
    };
    apply("first-manager", "A").await?;
    let conflict = apply("second-manager", "B")
        .await
        .expect_err("a second manager took over a field without force");
    match conflict {
        kube::Error::Api(status) => assert_eq!(status.code, 409, "{status:?}"),
        other => panic!("expected a 409 conflict, got {other}"),
    }

    ns.delete().await
}
