//! The `seal` CLI against the test API server: the cluster's key is used only where neither
//! recipients nor a `.seal.yaml` say otherwise, and seal says which cluster and key it used.

use std::io::Write;
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use kube::config::Kubeconfig;
use seal_e2e::operator::bin;
use seal_e2e::{TestNamespace, kubeconfig_path};
use seal_shared::SealRecipient;
use seal_shared::public_keys::{CONFIGMAP, RECIPIENT_KEY};

fn seal(dir: &std::path::Path, args: &[&str], stdin: &str) -> anyhow::Result<std::process::Output> {
    let mut child = Command::new(bin("seal")?)
        .args(args)
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())?;
    Ok(child.wait_with_output()?)
}

#[tokio::test]
async fn the_clusters_key_is_named_with_its_context_server_and_id() -> anyhow::Result<()> {
    let ns = TestNamespace::create("cli-cluster-key").await?;
    let dir = tempfile::tempdir()?;
    let keygen = seal(dir.path(), &["keygen", "-o", "id.key"], "")?;
    anyhow::ensure!(keygen.status.success(), "seal keygen failed");
    let recipient: SealRecipient = String::from_utf8(keygen.stdout)?.trim().parse()?;
    let map: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": CONFIGMAP},
        "data": {RECIPIENT_KEY: recipient.recipient.to_string()},
    }))?;
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &map)
        .await?;
    let kubeconfig = Kubeconfig::read_from(kubeconfig_path())?;
    let context = kubeconfig.current_context.clone().unwrap_or_default();
    let server = kubeconfig.clusters[0]
        .cluster
        .as_ref()
        .and_then(|c| c.server.clone())
        .unwrap_or_default();

    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {}}}\nstringData: {{k: v}}\n",
        ns.name
    );
    std::fs::write(dir.path().join("s.yaml"), &secret)?;
    let announced = format!(
        "seal: sealing to key {} from seal-operator in namespace {} of context {context:?} ({server})\n",
        recipient.id, ns.name
    );
    for (args, stdin) in [
        (
            vec!["encrypt", "--controller-namespace", &ns.name, "s.yaml"],
            "",
        ),
        (
            vec!["encrypt", "--controller-namespace", &ns.name],
            secret.as_str(),
        ),
    ] {
        let out = seal(dir.path(), &args, stdin)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        anyhow::ensure!(out.status.success(), "seal {args:?} failed: {stderr}");
        assert_eq!(stderr, announced, "seal {args:?}");
        std::fs::write(dir.path().join("sealed.yaml"), &out.stdout)?;
        let opened = seal(dir.path(), &["decrypt", "-i", "id.key", "sealed.yaml"], "")?;
        assert!(opened.status.success(), "not sealed to the cluster's key");
    }

    // A .seal.yaml without a rule for the file is a refusal, though the cluster answers (and
    // even though the rule it has names the very same key).
    let other = recipient.recipient.to_string();
    std::fs::write(
        dir.path().join(".seal.yaml"),
        format!("rules:\n  - path: '^other/'\n    recipients: ['{other}']\n"),
    )?;
    for (args, stdin) in [
        (
            vec!["encrypt", "--controller-namespace", &ns.name, "s.yaml"],
            "",
        ),
        (
            vec![
                "encrypt",
                "--controller-namespace",
                &ns.name,
                "--filename",
                "s.yaml",
            ],
            secret.as_str(),
        ),
    ] {
        let out = seal(dir.path(), &args, stdin)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "seal {args:?}: {stderr}");
        assert_refusal(&stderr, ".seal.yaml: no rule matches \"s.yaml\"");
        assert!(out.stdout.is_empty(), "sealed anyway");
    }
    ns.delete().await
}

/// One `seal: error:` line holding `needle` and one `hint:` line, as every refusal is.
fn assert_refusal(stderr: &str, needle: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.len() == 2
            && lines[0].starts_with("seal: error: ")
            && lines[0].contains(needle)
            && lines[1].starts_with("  hint: "),
        "not a refusal naming {needle:?}: {stderr}"
    );
}

#[tokio::test]
async fn a_private_key_published_as_the_clusters_recipient_is_refused_unprinted()
-> anyhow::Result<()> {
    let ns = TestNamespace::create("cli-cluster-private").await?;
    let dir = tempfile::tempdir()?;
    let keygen = seal(dir.path(), &["keygen"], "")?;
    anyhow::ensure!(keygen.status.success(), "seal keygen failed");
    let identity = String::from_utf8(keygen.stdout)?;
    let key = identity
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .expect("keygen prints the identity")
        .to_owned();
    // A hand edit that pasted the private key where the recipient belongs.
    let map: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": CONFIGMAP},
        "data": {RECIPIENT_KEY: key},
    }))?;
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &map)
        .await?;
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {}}}\nstringData: {{k: v}}\n",
        ns.name
    );
    for args in [
        vec!["encrypt", "--controller-namespace", &ns.name],
        vec!["keys", "--recipient", "--controller-namespace", &ns.name],
    ] {
        let out = seal(dir.path(), &args, &secret)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "seal {args:?}: {stderr}");
        assert_refusal(
            &stderr,
            &format!("data.{RECIPIENT_KEY}: this is a private key (an age identity)"),
        );
        let body = &key["AGE-SECRET-KEY-1".len()..];
        assert!(
            !stderr.to_ascii_uppercase().contains(&body[..16]),
            "the key on stderr: {stderr}"
        );
        assert!(out.stdout.is_empty(), "printed anyway");
    }
    ns.delete().await
}
