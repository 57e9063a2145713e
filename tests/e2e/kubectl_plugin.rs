//! `kubectl seal ...` through the real kubectl, and the cluster flags every cluster command
//! takes: `--kubeconfig` replaces KUBECONFIG, `--context` picks a context, and whichever
//! cluster is used is named.

use std::path::Path;
use std::process::Output;

use anyhow::{Context, Result, ensure};
use seal_e2e::operator::{Operator, bin};
use seal_e2e::tools::kubectl_command;
use seal_e2e::{TestNamespace, kubeconfig_path, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;

use kube::CustomResourceExt;

/// Runs the real kubectl with `plugins` first on PATH and only `kubeconfig` to read.
fn kubectl_in(plugins: &Path, kubeconfig: &Path, dir: &Path, args: &[&str]) -> Result<Output> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![plugins.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    Ok(kubectl_command()?
        .args(args)
        .current_dir(dir)
        .env("PATH", std::env::join_paths(paths)?)
        .env("KUBECONFIG", kubeconfig)
        .output()?)
}

fn stdout_of(out: Output, what: &str) -> Result<String> {
    ensure!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[tokio::test]
async fn kubectl_seal_works_and_names_the_context_it_used() -> Result<()> {
    let ns = TestNamespace::create("kubectl-plugin").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--leader-election=false"])?;
    operator.wait_ready().await?;

    // A kubeconfig whose current context is a cluster that is not there; the real one stays
    // reachable as a second context.
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::copy(kubeconfig_path(), &kubeconfig)?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins)?;
    let none = dir.path().join("none");
    let kubectl = |args: &[&str]| kubectl_in(&none, &kubeconfig, dir.path(), args);
    let real = stdout_of(kubectl(&["config", "current-context"])?, "current-context")?
        .trim()
        .to_owned();
    let user = stdout_of(
        kubectl(&[
            "config",
            "view",
            "-o",
            &format!("jsonpath={{.contexts[?(@.name==\"{real}\")].context.user}}"),
        ])?,
        "config view",
    )?;
    for args in [
        vec![
            "config",
            "set-cluster",
            "gone",
            "--server=https://127.0.0.1:1",
        ],
        vec![
            "config",
            "set-context",
            "gone",
            "--cluster=gone",
            &format!("--user={user}"),
        ],
        vec!["config", "use-context", "gone"],
    ] {
        stdout_of(kubectl(&args)?, "kubectl config")?;
    }

    // Before the plugin is on PATH kubectl knows no `seal`; after, it runs it.
    let missing = kubectl(&["seal", "--help"])?;
    ensure!(
        !missing.status.success(),
        "kubectl ran a seal plugin before there was one"
    );
    std::os::unix::fs::symlink(bin("seal")?, plugins.join("kubectl-seal"))?;
    let kubectl = |args: &[&str]| kubectl_in(&plugins, &kubeconfig, dir.path(), args);
    let listed = stdout_of(kubectl(&["plugin", "list"])?, "kubectl plugin list")?;
    assert!(listed.contains("kubectl-seal"), "{listed}");
    let help = stdout_of(
        kubectl(&["seal", "encrypt", "--help"])?,
        "kubectl seal --help",
    )?;
    assert!(help.contains("Usage: kubectl seal encrypt"), "{help}");

    let namespace = ns.name.as_str();
    // The current context is the one that is gone: seal says so rather than trying another.
    let refused = kubectl(&["seal", "keys", "--controller-namespace", namespace])?;
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("in context \"gone\" (https://127.0.0.1:1): cannot connect"),
        "{said}"
    );

    // --context picks the real cluster; the exported list is what verify takes offline.
    let exported = kubectl(&[
        "seal",
        "keys",
        "--export",
        "--context",
        &real,
        "--controller-namespace",
        namespace,
    ])?;
    let said = String::from_utf8_lossy(&exported.stderr).into_owned();
    let keys_json = stdout_of(exported, "kubectl seal keys --export")?;
    assert!(said.contains(&format!("in context \"{real}\"")), "{said}");
    let keys: Vec<serde_json::Value> = serde_json::from_str(&keys_json)?;
    assert_eq!(keys.len(), 1, "{keys_json}");
    assert_eq!(keys[0]["state"], "active");
    std::fs::write(dir.path().join("keys.json"), &keys_json)?;

    std::fs::write(
        dir.path().join("db.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {namespace}}}\nstringData: {{k: v}}\n"
        ),
    )?;
    let sealed = kubectl(&[
        "seal",
        "encrypt",
        "--context",
        &real,
        "--controller-namespace",
        namespace,
        "db.yaml",
    ])?;
    let said = String::from_utf8_lossy(&sealed.stderr).into_owned();
    let sealed = stdout_of(sealed, "kubectl seal encrypt")?;
    assert!(said.contains(&format!("context \"{real}\"")), "{said}");
    assert!(
        said.contains(keys[0]["id"].as_str().context("no id")?),
        "the key used is not named: {said}"
    );
    std::fs::write(dir.path().join("db.sealed.yaml"), sealed)?;
    let verified = kubectl(&["seal", "verify", "--keys", "keys.json", "db.sealed.yaml"])?;
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    drop(operator);
    ns.delete().await
}
