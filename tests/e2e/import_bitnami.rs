//! A repository of Bitnami SealedSecrets moves to seal with `seal import bitnami`: the
//! Secrets their (stand-in) controller made are adopted by seal-operator with their values
//! unchanged throughout, and deleting the Bitnami objects afterwards takes no Secret along.
//! The Bitnami files are sealed by kubesealpy (PyPI), through cli/tests/bitnami/make_vectors.py.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams, WatchEvent, WatchParams};
use seal_e2e::operator::bin;
use seal_e2e::{TestNamespace, eventually};
use seal_shared::sealed_secret::SealedSecret;
use serde_json::{Value, json};

use crate::adoption::{install_bitnami_crd, operator_under_chart_rbac};

const WAIT: Duration = Duration::from_secs(60);

fn docs(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            yaml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}

/// kubesealpy's interpreter, as cli/tests/bitnami/tools installs it; missing fails.
fn python() -> Result<PathBuf> {
    let python = std::env::var_os("SEAL_KUBESEALPY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&python)
        .args(["-c", "import kubesealpy, yaml, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    anyhow::ensure!(
        ok,
        "kubesealpy (PyPI) is not available to {}; run: eval \"$(cli/tests/bitnami/tools)\" (./test.sh does)",
        python.display()
    );
    Ok(python)
}

type Seen = Vec<(String, String, BTreeMap<String, Vec<u8>>, Vec<String>)>;

#[tokio::test]
async fn an_imported_repository_takes_every_secret_over_unchanged() -> Result<()> {
    let python = python()?;
    let ns = TestNamespace::create("import-bitnami").await?;
    let bitnami_kind = install_bitnami_crd(&ns).await?;
    let (_rbac, operator) = operator_under_chart_rbac(&ns).await?;
    let recipient = eventually("the operator's public key", WAIT, || {
        ns.published_recipient()
    })
    .await?;

    let dir = tempfile::tempdir()?;
    let work = dir.path();
    let status = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../cli/tests/bitnami/make_vectors.py"
        ))
        .arg(work)
        .args(["--namespace", &ns.name, "--unsealed"])
        .arg(work.join("unsealed.yaml"))
        .status()?;
    anyhow::ensure!(status.success(), "make_vectors.py failed");
    std::fs::remove_dir_all(work.join("repo/refused"))?;

    // The Bitnami objects, and the Secrets their controller would have made from them.
    let bitnami: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &bitnami_kind);
    let mut files = Vec::new();
    yaml_files(&work.join("repo"), &mut files)?;
    let mut uids = BTreeMap::new();
    for file in &files {
        for doc in docs(file)? {
            let created = bitnami
                .create(&PostParams::default(), &serde_json::from_value(doc)?)
                .await?;
            let name = created.metadata.name.clone().context("no name")?;
            uids.insert(name, created.metadata.uid.clone().context("no uid")?);
        }
    }
    let secrets = ns.api::<Secret>();
    let mut original: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for mut secret in docs(&work.join("unsealed.yaml"))? {
        let name = secret["metadata"]["name"]
            .as_str()
            .context("no name")?
            .to_owned();
        secret["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "name": name,
            "uid": uids[&name], "controller": true,
        }]);
        let created = secrets
            .create(&PostParams::default(), &serde_json::from_value(secret)?)
            .await?;
        original.insert(name, data_of(&created));
    }
    // The plain values are not needed on disk any longer.
    std::fs::remove_file(work.join("unsealed.yaml"))?;
    assert_eq!(original.len(), 7);
    assert_eq!(uids.len(), 7);

    // Everything the Secrets go through from here on.
    let listed = secrets.list(&ListParams::default()).await?;
    let version = listed.metadata.resource_version.unwrap_or_default();
    let mut changes = secrets
        .watch(&WatchParams::default(), &version)
        .await?
        .boxed();

    let import = Command::new(bin("seal")?)
        .args([
            "import",
            "bitnami",
            "--controller-keys",
            "keys.yaml",
            "-r",
            &recipient,
            "repo",
        ])
        .current_dir(work)
        .env("KUBECONFIG", work.join("no-such-kubeconfig"))
        .output()?;
    let stderr = String::from_utf8_lossy(&import.stderr);
    anyhow::ensure!(import.status.success(), "seal import failed: {stderr}");
    anyhow::ensure!(
        stderr.contains("converted 6 file(s) (7 SealedSecret(s)); skipped 0"),
        "{stderr}"
    );

    // Applied as a GitOps tool would: every converted object, as written.
    let sealed_api = ns.api::<SealedSecret>();
    for file in &files {
        for doc in docs(file)? {
            let sealed: SealedSecret = serde_json::from_value(doc)?;
            sealed_api.create(&PostParams::default(), &sealed).await?;
        }
    }

    let mut seen: Seen = Vec::new();
    let mut adopted: BTreeMap<String, bool> = BTreeMap::new();
    let watched = tokio::time::timeout(WAIT, async {
        while let Some(event) = changes.try_next().await? {
            let (kind, secret) = match event {
                WatchEvent::Added(s) => ("added", s),
                WatchEvent::Modified(s) => ("modified", s),
                WatchEvent::Deleted(s) => ("deleted", s),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => anyhow::bail!("watch error: {e}"),
            };
            let name = secret.metadata.name.clone().unwrap_or_default();
            let owners = owners(&secret);
            adopted.insert(name.clone(), owners == ["seal.dev/v1"]);
            seen.push((kind.to_owned(), name, data_of(&secret), owners));
            if adopted.len() == original.len() && adopted.values().all(|a| *a) {
                return Ok(());
            }
        }
        anyhow::bail!("the watch ended")
    })
    .await;
    watched
        .with_context(|| format!("not every Secret was adopted in time: {adopted:?}"))?
        .inspect_err(|_| eprintln!("{}", operator.output()))?;
    for (kind, name, data, owners) in &seen {
        assert_eq!(kind, "modified", "Secret {name} was {kind} on the way");
        assert_eq!(
            data, &original[name],
            "Secret {name} changed value on the way (owners {owners:?})"
        );
    }
    for name in original.keys() {
        eventually(&format!("{name} Ready"), WAIT, || async {
            Ok(ns
                .ready_reason(name)
                .await?
                .filter(|(s, r)| s == "True" && r == "Unsealed"))
        })
        .await?;
    }

    // The Bitnami objects go; with no garbage collector on this server, what matters is
    // that no Secret still names one as an owner (a collector would then delete it).
    for name in uids.keys() {
        bitnami.delete(name, &DeleteParams::default()).await?;
    }
    for (name, data) in &original {
        let secret = secrets.get(name).await?;
        assert_eq!(owners(&secret), ["seal.dev/v1"], "Secret {name}");
        assert!(
            secret
                .metadata
                .owner_references
                .iter()
                .flatten()
                .all(|o| !uids.values().any(|uid| *uid == o.uid)),
            "Secret {name} still names a Bitnami owner"
        );
        assert_eq!(&data_of(&secret), data, "Secret {name}");
    }
    drop(operator);
    ns.delete().await
}

fn data_of(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

fn owners(secret: &Secret) -> Vec<String> {
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .map(|o| o.api_version.clone())
        .collect()
}
