//! Sealing a Secret that already exists, the way people do it:
//! `kubectl get secret db -o yaml | seal encrypt`. What the real kubectl prints carries the
//! server's bookkeeping and kubectl's last-applied annotation, which holds every value in
//! plain text; none of it may reach the SealedSecret.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use kube::CustomResourceExt;
use seal_e2e::operator::bin;
use seal_e2e::tools::kubectl;
use seal_e2e::{TestNamespace, kubeconfig_path, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;

const SENTINEL: &str = "sentinel-6b1e-kubectl-get-never-print-me";

/// Runs `seal` with `stdin`, failing with its stderr when it fails.
fn seal(args: &[&str], dir: &std::path::Path, stdin: &str) -> Result<String> {
    let out = run_seal(args, dir, stdin)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "seal {args:?} failed: {stderr}");
    Ok(String::from_utf8(out.stdout)?)
}

/// Runs `seal` with `stdin`; no value may reach its stderr, whatever the outcome.
fn run_seal(args: &[&str], dir: &std::path::Path, stdin: &str) -> Result<std::process::Output> {
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
        .context("no stdin")?
        .write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!stderr.contains(SENTINEL), "a value on stderr: {stderr}");
    Ok(out)
}

#[tokio::test]
async fn kubectl_get_piped_into_seal_keeps_no_value_and_no_bookkeeping() -> Result<()> {
    let ns = TestNamespace::create("kubectl-get").await?;
    let namespace = ns.name.as_str();
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: {namespace}\n  labels: {{app: db}}\n  annotations: {{team: payments}}\ntype: Opaque\nstringData:\n  password: {SENTINEL}\n"
    );
    kubectl(&["apply", "-f", "-"], Some(&secret))?;
    let got = kubectl(
        &["get", "secret", "db", "-n", namespace, "-o", "yaml"],
        None,
    )?;
    // The premise: what kubectl prints does carry all of this.
    for expected in [
        "kubectl.kubernetes.io/last-applied-configuration",
        SENTINEL,
        "resourceVersion:",
        "uid:",
        "creationTimestamp:",
    ] {
        ensure!(
            got.contains(expected),
            "kubectl get lacks {expected:?}:\n{got}"
        );
    }

    let dir = tempfile::tempdir()?;
    let keygen = Command::new(bin("seal")?)
        .args(["keygen", "-o", "id.key"])
        .current_dir(dir.path())
        .output()?;
    ensure!(keygen.status.success(), "seal keygen failed");
    let recipient = String::from_utf8(keygen.stdout)?.trim().to_owned();

    let sealed = seal(&["encrypt", "-r", &recipient], dir.path(), &got)?;
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(SENTINEL);
    ensure!(
        !sealed.contains(SENTINEL) && !sealed.contains(&encoded),
        "a value in the SealedSecret:\n{sealed}"
    );
    for bookkeeping in [
        "last-applied-configuration",
        "managedFields",
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "selfLink",
        "ownerReferences",
        "generation",
    ] {
        ensure!(
            !sealed.contains(bookkeeping),
            "{bookkeeping} kept in the SealedSecret:\n{sealed}"
        );
    }
    let parsed = seal_shared::sealed_secret::parse_sealed_secrets(&sealed)?.remove(0);
    let template = &parsed.spec.template;
    ensure!(
        template.metadata.labels.get("app").map(String::as_str) == Some("db")
            && template.metadata.annotations.keys().collect::<Vec<_>>() == ["team"]
            && template.type_.as_deref() == Some("Opaque"),
        "the user's own metadata was not kept: {template:?}"
    );
    ensure!(parsed.metadata.namespace.as_deref() == Some(namespace));

    // The value itself survived, and the SealedSecret is one the API server accepts.
    std::fs::write(dir.path().join("sealed.yaml"), &sealed)?;
    let plain = seal(&["decrypt", "-i", "id.key", "sealed.yaml"], dir.path(), "")?;
    ensure!(plain.contains(&encoded), "decrypt lost the value:\n{plain}");
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    kubectl(&["apply", "-f", "-"], Some(&sealed))?;

    // The same pipe in a repository with a .seal.yaml: a rule with a path cannot be decided
    // for stdin, so seal asks for --filename; given it, the rule's key is used and named.
    std::fs::write(
        dir.path().join(".seal.yaml"),
        format!("rules:\n  - path: '^clusters/prod/'\n    recipients: ['{recipient}']\n"),
    )?;
    let out = run_seal(&["encrypt"], dir.path(), &got)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1)
            && stderr.lines().count() == 2
            && stderr.starts_with("seal: error: ")
            && stderr.contains("--filename")
            && out.stdout.is_empty(),
        "stdin against a path rule was not refused: {stderr}"
    );
    let out = run_seal(
        &["encrypt", "--filename", "clusters/prod/db.yaml"],
        dir.path(),
        &got,
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "seal --filename failed: {stderr}");
    ensure!(
        stderr.starts_with("seal: sealing to key ")
            && stderr.contains("(matching \"clusters/prod/db.yaml\")"),
        "the rule's key was not named: {stderr}"
    );
    let sealed = String::from_utf8(out.stdout)?;
    ensure!(
        !sealed.contains(SENTINEL)
            && !sealed.contains(&encoded)
            && !sealed.contains("last-applied-configuration"),
        "a value or kubectl's copy in the SealedSecret:\n{sealed}"
    );
    ns.delete().await
}
