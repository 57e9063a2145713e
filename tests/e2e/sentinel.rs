//! One sentinel value and one sentinel private key, carried through every surface of seal:
//! the CLI's stderr (including the mistakes people make with keys), the files it writes, the
//! operator's logs and audit lines, Events, status and metrics. Each may appear only where it
//! is meant to: the value in the Secret and in `seal decrypt`'s output, the key nowhere but
//! its own file.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::CustomResourceExt;
use kube::api::{ListParams, PostParams};
use seal_e2e::operator::Operator;
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::keys::SealIdentity;
use seal_shared::sealed_secret::{SealedSecret, parse_sealed_secrets};

const VALUE: &str = "sentinel-value-7f21-never-printed";
const WAIT: Duration = Duration::from_secs(30);

/// Every file under `dir` other than `allowed`, with its contents.
fn other_files(dir: &Path, allowed: &[&str]) -> Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && !allowed.contains(&name.as_str()) {
            found.push((
                name,
                String::from_utf8_lossy(&std::fs::read(entry.path())?).into_owned(),
            ));
        }
    }
    Ok(found)
}

#[tokio::test]
async fn a_sentinel_value_and_key_appear_only_where_they_belong() -> Result<()> {
    let ns = TestNamespace::create("sentinel").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let recovery = SealIdentity::generate();
    let key = {
        use age::secrecy::ExposeSecret;
        recovery.to_secret_string().expose_secret().to_owned()
    };
    let public = recovery.recipient().recipient.to_string();

    // The operator refuses a private key given as its backup recipient, and does not echo it.
    let mistaken = Operator::start(
        &ns.name,
        &[
            "--leader-election=false",
            &format!("--key-backup-recipient={key}"),
        ],
    )?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refused = mistaken.output();
    drop(mistaken);
    assert!(refused.contains("private key"), "{refused}");

    let operator = Operator::start(&ns.name, &["--leader-election=false"])?;
    operator.wait_ready().await?;
    let cluster = ns.published_recipient().await?.context("no recipient")?;

    let dir = tempfile::tempdir()?;
    let path = dir.path();
    std::fs::write(path.join("recovery.key"), format!("{key}\n"))?;
    std::fs::write(
        path.join("secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {}}}\nstringData:\n  password: {VALUE}\n",
            ns.name
        ),
    )?;
    let mut stderr = String::new();
    let mut run = |args: &[&str], env: &[(&str, &str)]| -> Result<std::process::Output> {
        let mut command = std::process::Command::new(seal_e2e::operator::bin("seal")?);
        command
            .args(args)
            .current_dir(path)
            .env("KUBECONFIG", seal_e2e::kubeconfig_path());
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output()?;
        stderr.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(out)
    };

    // Mistakes with the key: as a recipient, in the environment, in a recipients file, in
    // a .seal.yaml, as a file name. All refused, none echoed.
    std::fs::write(path.join("keys.txt"), format!("{key}\n"))?;
    for (args, env) in [
        (vec!["encrypt", "-r", key.as_str(), "secret.yaml"], vec![]),
        (
            vec!["encrypt", "secret.yaml"],
            vec![("SEAL_RECIPIENT", key.as_str())],
        ),
        (vec!["encrypt", "-R", "keys.txt", "secret.yaml"], vec![]),
        (vec!["encrypt", "-R", key.as_str(), "secret.yaml"], vec![]),
    ] {
        let out = run(&args, &env)?;
        assert!(!out.status.success(), "{args:?} was accepted");
    }
    std::fs::write(
        path.join(".seal.yaml"),
        format!("rules:\n  - recipients: [{key}]\n"),
    )?;
    assert!(!run(&["encrypt", "secret.yaml"], &[])?.status.success());
    std::fs::remove_file(path.join(".seal.yaml"))?;
    std::fs::remove_file(path.join("keys.txt"))?;

    // The intended path: sealed to the cluster and the recovery key, opened with the latter.
    let out = run(
        &[
            "encrypt",
            "-r",
            &cluster,
            "-r",
            &public,
            "secret.yaml",
            "-o",
            "db.sealed.yaml",
        ],
        &[],
    )?;
    anyhow::ensure!(
        out.status.success(),
        "seal encrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &[
            "decrypt",
            "-i",
            "recovery.key",
            "db.sealed.yaml",
            "-o",
            "db.plain.yaml",
        ],
        &[],
    )?;
    anyhow::ensure!(
        out.status.success(),
        "seal decrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(VALUE);
    assert!(std::fs::read_to_string(path.join("db.plain.yaml"))?.contains(&encoded));
    let sealed_text = std::fs::read_to_string(path.join("db.sealed.yaml"))?;
    let sealed = parse_sealed_secrets(&sealed_text)?.remove(0);
    ns.api::<SealedSecret>()
        .create(&PostParams::default(), &sealed)
        .await?;
    let secrets = ns.api::<Secret>();
    eventually("the Secret", WAIT, || async {
        Ok(secrets.get_opt("db").await?.filter(|s| {
            s.data
                .as_ref()
                .and_then(|d| d.get("password"))
                .is_some_and(|v| v.0 == VALUE.as_bytes())
        }))
    })
    .await?;
    eventually("Ready", WAIT, || async {
        Ok(ns.ready_reason("db").await?.filter(|(s, _)| s == "True"))
    })
    .await?;

    // Where neither may be.
    let events =
        serde_json::to_string(&ns.api::<Event>().list(&ListParams::default()).await?.items)?;
    let status = serde_json::to_string(&ns.api::<SealedSecret>().get("db").await?.status)?;
    let (_, metrics) = operator.get(operator.metrics_port, "/metrics").await?;
    let (_, keys) = operator.get(operator.http_port, "/v1/keys").await?;
    let mut surfaces = vec![
        ("the CLI's stderr".to_owned(), stderr.clone()),
        ("the operator refusing the key".to_owned(), refused),
        (
            "the operator's logs and audit lines".to_owned(),
            operator.output(),
        ),
        ("Events".to_owned(), events),
        ("status".to_owned(), status),
        ("metrics".to_owned(), metrics),
        ("/v1/keys".to_owned(), keys),
        ("the sealed file".to_owned(), sealed_text),
    ];
    for (name, text) in other_files(
        path,
        &[
            "recovery.key",
            "db.plain.yaml",
            "secret.yaml",
            "db.sealed.yaml",
        ],
    )? {
        surfaces.push((format!("file {name}"), text));
    }
    for (what, text) in &surfaces {
        assert!(!text.contains(VALUE), "the value appeared in {what}");
        assert!(
            !text.contains(&encoded),
            "the value appeared, in base64, in {what}"
        );
        assert!(!text.contains(&key), "the private key appeared in {what}");
        assert!(
            !text.to_ascii_uppercase().contains(&key[..30]),
            "part of the private key appeared in {what}"
        );
    }
    assert!(
        !std::fs::read_to_string(path.join("db.plain.yaml"))?.contains(&key),
        "the key appeared in the decrypted output"
    );
    drop(operator);
    ns.delete().await
}
