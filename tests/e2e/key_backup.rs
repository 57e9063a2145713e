//! The key backup: every key is in `seal-key-backup`, sealed to the backup recipient, before
//! it is published; the reference `age` opens each entry; a failing backup keeps the key
//! unpublished and says so.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::CustomResourceExt;
use kube::api::{DeleteParams, ListParams, PostParams};
use seal_e2e::operator::Operator;
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::keys::SealIdentity;
use seal_shared::sealed_secret::SealedSecret;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn age() -> Result<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("age"))
            .find(|p| p.is_file())
    });
    found.context("`age` is not installed; ./test.sh installs it (Debian package age)")
}

async fn metric(operator: &Operator, name: &str) -> Result<f64> {
    let (_, text) = operator.get(operator.metrics_port, "/metrics").await?;
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .with_context(|| format!("no {name} in the metrics"))?;
    Ok(line.rsplit(' ').next().unwrap_or_default().parse()?)
}

#[tokio::test]
async fn every_key_is_backed_up_before_it_is_published() -> Result<()> {
    let age = age()?;
    let ns = TestNamespace::create("key-backup").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let backup = SealIdentity::generate();
    let dir = tempfile::tempdir()?;
    let backup_file = dir.path().join("backup.key");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(
            &backup_file,
            format!("{}\n", backup.to_secret_string().expose_secret()),
        )?;
    }

    // A backup that cannot be written: an immutable ConfigMap of that name.
    let maps = ns.api::<ConfigMap>();
    let blocker: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "seal-key-backup"}, "immutable": true, "data": {"x": "y"},
    }))?;
    maps.create(&PostParams::default(), &blocker).await?;
    let recipient_arg = format!("--key-backup-recipient={}", backup.recipient().recipient);
    let operator = Operator::start(&ns.name, &["--leader-election=false", &recipient_arg])?;
    eventually("a backup failure counted", WAIT, || async {
        Ok((metric(&operator, "seal_key_backup_failures_total")
            .await
            .unwrap_or(0.0)
            > 0.0)
            .then_some(()))
    })
    .await?;
    let keys = ns.key_secrets().await?;
    assert_eq!(keys.len(), 1, "the key is made");
    assert_eq!(
        ns.published_recipient().await?,
        None,
        "a key without a backup was published"
    );
    let (ready, _) = operator.get(operator.http_port, "/readyz").await?;
    assert_ne!(ready, 200, "ready before any key could be published");
    let warned = ns
        .api::<Event>()
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("KeyBackupFailed"))
        .count();
    assert_eq!(warned, 1, "one Warning for a lasting failure");

    // The way is cleared: the backup is written, then the key is published.
    maps.delete("seal-key-backup", &DeleteParams::default())
        .await?;
    operator.wait_ready().await?;
    let published = ns.published_recipient().await?.context("no recipient")?;
    let map = maps.get("seal-key-backup").await?;
    let data = map.data.unwrap_or_default();
    assert_eq!(data.len(), 1, "{data:?}");
    let (entry, armored) = data.iter().next().context("no entry")?;
    assert!(!armored.contains("AGE-SECRET-KEY"), "a key in the clear");

    // The reference age opens it, and the result is a working identity for that key.
    let sealed_file = dir.path().join(entry);
    std::fs::write(&sealed_file, armored)?;
    let out = std::process::Command::new(&age)
        .arg("-d")
        .arg("-i")
        .arg(&backup_file)
        .arg(&sealed_file)
        .output()?;
    assert!(
        out.status.success(),
        "age -d: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    assert!(
        text.contains(&format!("# public key: {published}")),
        "{text}"
    );
    let identity = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .context("no identity in the entry")?;
    let restored = SealIdentity::parse(identity)?;
    assert_eq!(format!("{}.age", restored.id), *entry);
    assert!(
        !operator.output().contains(identity),
        "the operator logged a private key"
    );
    drop(operator);
    ns.delete().await
}
