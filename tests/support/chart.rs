//! Running the operator with exactly the RBAC the chart grants, and clients for users with
//! rights of their own.

use std::path::PathBuf;

use anyhow::Result;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

use crate::TestNamespace;
use crate::tools::{kubectl, render};

/// The chart's ServiceAccount, Roles and bindings applied for one test namespace, and a
/// kubeconfig holding that ServiceAccount's token. Its cluster-scoped objects are removed
/// on drop.
pub struct ChartRbac {
    pub kubeconfig: PathBuf,
    /// The ServiceAccount's name.
    pub account: String,
    release: String,
    _dir: tempfile::TempDir,
}

impl ChartRbac {
    pub fn install(ns: &TestNamespace) -> Result<ChartRbac> {
        let release = ns.name.clone();
        let rendered = render(&["-n", &ns.name, "--kube-version", "v1.20.2"])?;
        let rbac: Vec<&Value> = rendered
            .iter()
            .filter(|d| {
                [
                    "ServiceAccount",
                    "ClusterRole",
                    "ClusterRoleBinding",
                    "Role",
                    "RoleBinding",
                ]
                .contains(&d["kind"].as_str().unwrap_or_default())
            })
            .collect();
        // Cluster-scoped names carry the release name; make them unique to this test.
        let text =
            serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": rbac}))?
                .replace("seal-seal-operator", &format!("{release}-seal-operator"));
        kubectl(&["apply", "-f", "-"], Some(&text))?;
        let account = format!("{release}-seal-operator");
        // A token for the ServiceAccount (TokenRequest API), and a kubeconfig that uses it.
        let token = kubectl(
            &["create", "token", &account, "-n", &ns.name, "--duration=1h"],
            None,
        )?;
        let admin = std::fs::read_to_string(crate::kubeconfig_path())?;
        let mut config: Value = serde_saphyr::from_str(&admin)?;
        config["users"][0]["user"] = json!({"token": token.trim()});
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, serde_json::to_string(&config)?)?;
        Ok(ChartRbac {
            kubeconfig,
            account,
            release,
            _dir: dir,
        })
    }
}

impl Drop for ChartRbac {
    fn drop(&mut self) {
        let name = format!("{}-seal-operator-unseal", self.release);
        let _ = kubectl(&["delete", "clusterrole,clusterrolebinding", &name], None);
    }
}

/// Gives `user` in `ns` exactly what `rules` (RBAC policy rules) allow, through a Role and
/// RoleBinding of its own.
fn grant(ns: &TestNamespace, user: &str, rules: Value) -> Result<()> {
    let role = format!("{user}-role");
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": role, "namespace": ns.name}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": role, "namespace": ns.name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]},
    ]});
    kubectl(
        &["apply", "-f", "-"],
        Some(&serde_json::to_string(&objects)?),
    )?;
    Ok(())
}

/// A client that acts as `user`, who may do in `ns` exactly what `rules` (RBAC policy rules)
/// allow, through a Role and RoleBinding of its own.
pub async fn client_as(ns: &TestNamespace, user: &str, rules: Value) -> Result<Client> {
    grant(ns, user, rules)?;
    let kubeconfig = Kubeconfig::read_from(crate::kubeconfig_path())?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    config.auth_info.impersonate = Some(user.to_owned());
    Ok(Client::try_from(config)?)
}

/// A kubeconfig for a process that acts as `user`, who may do in `ns` exactly what `rules`
/// allow. The file goes when the returned handle is dropped.
pub fn kubeconfig_as(
    ns: &TestNamespace,
    user: &str,
    rules: Value,
) -> Result<tempfile::NamedTempFile> {
    grant(ns, user, rules)?;
    let admin = std::fs::read_to_string(crate::kubeconfig_path())?;
    let mut config: Value = serde_saphyr::from_str(&admin)?;
    config["users"][0]["user"]["as"] = json!(user);
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), serde_json::to_string(&config)?)?;
    Ok(file)
}
