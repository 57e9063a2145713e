//! Disaster recovery, rehearsed: an operator with a backup recipient and 200 SealedSecrets
//! sealed to two keys loses its keys and its namespace; `seal keys restore` brings the keys
//! back from the exported backup into a namespace of another name, and every SealedSecret
//! is Ready again with the same values, with no key lost or duplicated.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, CustomResourceExt};
use seal_e2e::operator::{Operator, seal};
use seal_e2e::tools::kubectl;
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::keys::{SealIdentity, SealRecipient};
use seal_shared::sealed_secret::{SealedSecret, seal_items_into};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const COUNT: usize = 200;

fn sealed_for(
    namespace: &str,
    name: &str,
    value: &str,
    to: &SealRecipient,
) -> Result<SealedSecret> {
    let mut sealed: SealedSecret = serde_json::from_value(json!({
        "apiVersion": "seal.dev/v1", "kind": "SealedSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"encryptedData": {}},
    }))?;
    seal_items_into(
        &mut sealed,
        [("value", value.as_bytes())],
        std::slice::from_ref(to),
    )?;
    Ok(sealed)
}

async fn key_ids(ns: &TestNamespace) -> Result<BTreeMap<String, String>> {
    Ok(ns
        .key_secrets()
        .await?
        .into_iter()
        .map(|s| {
            let a = s.metadata.annotations.unwrap_or_default();
            (
                a.get("seal.dev/key-id").cloned().unwrap_or_default(),
                a.get("seal.dev/state").cloned().unwrap_or_default(),
            )
        })
        .collect())
}

async fn all_values(secrets: &Api<Secret>) -> Result<BTreeMap<String, String>> {
    Ok(secrets
        .list(&ListParams::default().labels("seal.dev/managed-by=seal-operator"))
        .await?
        .items
        .into_iter()
        .filter_map(|s| {
            let value = s
                .data?
                .get("value")
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())?;
            Some((s.metadata.name?, value))
        })
        .collect())
}

#[tokio::test]
async fn keys_restored_from_the_backup_bring_every_sealed_secret_back() -> Result<()> {
    let app = TestNamespace::create("dr-app").await?;
    let first_home = TestNamespace::create("dr-ops").await?;
    let second_home = TestNamespace::create("dr-ops-again").await?;
    install_crd(&app.client, &SealedSecret::crd()).await?;
    let dir = tempfile::tempdir()?;
    let backup = SealIdentity::generate();
    let backup_file = dir.path().join("backup.key");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(
            &backup_file,
            format!("{}\n", backup.to_secret_string().expose_secret()),
        )?;
    }
    let recipient_arg = format!("--key-backup-recipient={}", backup.recipient().recipient);
    let watch_arg = format!("--watch-namespace={}", app.name);
    let operator = Operator::start(
        &first_home.name,
        &["--leader-election=false", &recipient_arg, &watch_arg],
    )?;
    operator
        .wait_ready()
        .await
        .inspect_err(|_| eprintln!("{}", operator.output()))?;

    // Half the SealedSecrets sealed to the first key, half to the second.
    let sealed_api = app.api::<SealedSecret>();
    let mut expected = BTreeMap::new();
    for half in 0..2 {
        if half == 1 {
            let out = seal(
                &["rotate", "--controller-namespace", &first_home.name],
                dir.path(),
            )?;
            anyhow::ensure!(
                out.status.success(),
                "seal rotate: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let recipient: SealRecipient = first_home
            .published_recipient()
            .await?
            .context("no recipient")?
            .parse()?;
        for i in (half * COUNT / 2)..((half + 1) * COUNT / 2) {
            let (name, value) = (format!("s{i:03}"), format!("value-{i}"));
            sealed_api
                .create(
                    &PostParams::default(),
                    &sealed_for(&app.name, &name, &value, &recipient)?,
                )
                .await?;
            expected.insert(name, value);
        }
    }
    let secrets = app.api::<Secret>();
    eventually("every Secret", WAIT, || async {
        Ok((all_values(&secrets).await? == expected).then_some(()))
    })
    .await?;
    let keys_before = key_ids(&first_home).await?;
    assert_eq!(keys_before.len(), 2, "{keys_before:?}");
    let exported = kubectl(
        &[
            "get",
            "cm",
            "seal-key-backup",
            "-n",
            &first_home.name,
            "-o",
            "yaml",
        ],
        None,
    )?;
    let backup_yaml = dir.path().join("seal-key-backup.yaml");
    std::fs::write(&backup_yaml, exported)?;

    // The disaster: the operator, its keys, its namespace and every unsealed Secret go.
    drop(operator);
    let home_secrets: Api<Secret> = first_home.api();
    home_secrets
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("seal.dev/key=true"),
        )
        .await?;
    Api::<Namespace>::all(first_home.client.clone())
        .delete(&first_home.name, &DeleteParams::default())
        .await?;
    secrets
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;

    // The restore, into a namespace of another name.
    let out = seal(
        &[
            "keys",
            "restore",
            "--from",
            "seal-key-backup.yaml",
            "-i",
            "backup.key",
            "--controller-namespace",
            &second_home.name,
        ],
        dir.path(),
    )?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    anyhow::ensure!(out.status.success(), "seal keys restore: {said}");
    assert!(said.contains("restored 2 key(s)"), "{said}");
    let operator = Operator::start(
        &second_home.name,
        &["--leader-election=false", &recipient_arg, &watch_arg],
    )?;
    operator
        .wait_ready()
        .await
        .inspect_err(|_| eprintln!("{}", operator.output()))?;
    eventually("every Secret back with its value", WAIT, || async {
        Ok((all_values(&secrets).await? == expected).then_some(()))
    })
    .await
    .inspect_err(|_| eprintln!("{}", operator.output()))?;
    for name in ["s000", "s199"] {
        eventually(&format!("{name} Ready"), WAIT, || async {
            Ok(app
                .ready_reason(name)
                .await?
                .filter(|(s, r)| s == "True" && r == "Unsealed"))
        })
        .await?;
    }
    let keys_after = key_ids(&second_home).await?;
    assert_eq!(
        keys_after.keys().collect::<Vec<_>>(),
        keys_before.keys().collect::<Vec<_>>(),
        "a key was lost or made anew"
    );
    assert_eq!(
        keys_after.values().filter(|s| *s == "active").count(),
        1,
        "{keys_after:?}"
    );
    let (_, published) = operator.get(operator.http_port, "/v1/keys").await?;
    let sealing = second_home
        .published_recipient()
        .await?
        .context("nothing published")?;
    assert!(published.contains(&sealing));
    assert!(!said.contains("AGE-SECRET-KEY"), "restore printed a key");
    drop(operator);
    for ns in [app, second_home] {
        ns.delete().await?;
    }
    Ok(())
}
