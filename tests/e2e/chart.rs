//! The Helm chart: rendered objects are hardened and least-privilege, the values schema
//! rejects wrong types, and the operator does its whole job under exactly the chart's RBAC.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use kube::api::PostParams;
use seal_e2e::chart::ChartRbac;
use seal_e2e::operator::{Operator, seal_secret};
use seal_e2e::tools::{helm_output, kubectl, render};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;
use serde_json::{Value, json};

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn the_pod_is_hardened() -> Result<()> {
    let docs = render(&["-n", "seal-system"])?;
    let deployment = of_kind(&docs, "Deployment")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        pod["automountServiceAccountToken"], true,
        "the operator needs its token"
    );
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert!(security["capabilities"]["add"].is_null());
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    let account = of_kind(&docs, "ServiceAccount")[0];
    assert_eq!(
        account["automountServiceAccountToken"], false,
        "no token for other pods using the account"
    );
    Ok(())
}

/// Every RBAC rule the chart grants, as (kind, apiGroups, resources, resourceNames, verbs).
fn rules(docs: &[Value]) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for role in docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
    {
        for rule in role["rules"].as_array().into_iter().flatten() {
            all.insert(format!(
                "{} {} {} {} {}",
                role["kind"].as_str().unwrap_or_default(),
                rule["apiGroups"],
                rule["resources"],
                rule.get("resourceNames").cloned().unwrap_or(json!([])),
                rule["verbs"]
            ));
        }
    }
    all
}

#[test]
fn rbac_is_exactly_as_intended() -> Result<()> {
    let docs = render(&["-n", "seal-system"])?;
    let expected: BTreeSet<String> = [
        r#"ClusterRole ["seal.dev"] ["sealedsecrets"] [] ["get","list","watch"]"#,
        r#"ClusterRole ["seal.dev"] ["sealedsecrets/status"] [] ["patch"]"#,
        r#"ClusterRole [""] ["secrets"] [] ["get","list","watch","create","patch","delete"]"#,
        r#"ClusterRole ["events.k8s.io"] ["events"] [] ["create"]"#,
        r#"Role [""] ["secrets"] [] ["get","list","watch","create","patch"]"#,
        r#"Role [""] ["configmaps"] [] ["create"]"#,
        r#"Role [""] ["configmaps"] ["seal-public-keys"] ["get","list","watch","patch"]"#,
        r#"Role [""] ["configmaps"] ["seal-key-backup"] ["get","patch"]"#,
        r#"Role ["coordination.k8s.io"] ["leases"] [] ["create"]"#,
        r#"Role ["coordination.k8s.io"] ["leases"] ["seal-operator"] ["get","patch","update"]"#,
        r#"Role ["events.k8s.io"] ["events"] [] ["create"]"#,
        r#"Role [""] ["configmaps"] ["seal-public-keys"] ["get"]"#,
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(rules(&docs), expected);
    assert!(
        !rules(&docs).iter().any(|r| r.contains("\"*\"")),
        "wildcards granted"
    );

    // Narrowed to one namespace, the unseal rules become a Role there.
    let narrow = render(&["-n", "seal-system", "--set", "watchNamespace=apps"])?;
    assert!(
        of_kind(&narrow, "ClusterRole").is_empty()
            && of_kind(&narrow, "ClusterRoleBinding").is_empty()
    );
    assert!(
        of_kind(&narrow, "Role")
            .iter()
            .any(|r| r["metadata"]["namespace"] == "apps")
    );

    let reader = of_kind(&docs, "RoleBinding")
        .into_iter()
        .find(|b| {
            b["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("public-keys-reader"))
        })
        .context("no reader binding")?;
    assert_eq!(reader["subjects"][0]["name"], "system:authenticated");
    Ok(())
}

#[test]
fn the_values_schema_rejects_wrong_types() -> Result<()> {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/seal-operator");
    for bad in [
        "replicaCount=two",
        "logFormat=xml",
        "leaderElection=maybe",
        "service.httpPort=http",
        "keyRotationPeriod=monthly",
        "unknownValue=1",
    ] {
        let out = helm_output(&["template", "seal", chart, "--set", bad])?;
        assert!(!out.status.success(), "{bad} was accepted");
        let key = bad
            .split('=')
            .next()
            .unwrap_or_default()
            .rsplit('.')
            .next()
            .unwrap_or_default();
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(key),
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The resource rows of `kubectl auth can-i --list`, minus what every authenticated user has.
fn permissions(listing: &str) -> BTreeSet<String> {
    listing
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' ') && !l.starts_with("selfsubject"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[tokio::test]
async fn the_operator_does_its_job_with_exactly_the_charts_rbac() -> Result<()> {
    let ns = TestNamespace::create("chart-rbac").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let rbac = ChartRbac::install(&ns)?;
    let account = rbac.account.clone();

    let listing = kubectl(
        &[
            "auth",
            "can-i",
            "--list",
            "-n",
            &ns.name,
            &format!("--as=system:serviceaccount:{}:{account}", ns.name),
        ],
        None,
    )?;
    let expected: BTreeSet<String> = [
        "configmaps [] [] [create]",
        "configmaps [] [seal-key-backup] [get patch]",
        "configmaps [] [seal-public-keys] [get list watch patch]",
        "events.events.k8s.io [] [] [create]",
        "leases.coordination.k8s.io [] [] [create]",
        "leases.coordination.k8s.io [] [seal-operator] [get patch update]",
        "sealedsecrets.seal.dev [] [] [get list watch]",
        "sealedsecrets.seal.dev/status [] [] [patch]",
        "secrets [] [] [get list watch create patch delete]",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        permissions(&listing),
        expected,
        "kubectl auth can-i --list:\n{listing}"
    );

    let operator =
        Operator::start_with_kubeconfig(&ns.name, &rbac.kubeconfig, &["--identity=chart"])?;
    operator
        .wait_ready()
        .await
        .inspect_err(|_| eprintln!("{}", operator.output()))?;
    let sealed = ns.api::<SealedSecret>();
    sealed
        .create(
            &PostParams::default(),
            &seal_secret(&ns.name, "db", "Opaque", &[("k", "v")])?,
        )
        .await?;
    let secrets = ns.api::<Secret>();
    eventually(
        "the Secret, under the chart's RBAC",
        Duration::from_secs(30),
        || async { Ok(secrets.get_opt("db").await?) },
    )
    .await
    .inspect_err(|_| eprintln!("{}", operator.output()))?;
    let ready = eventually("Ready", Duration::from_secs(10), || async {
        let obj = sealed.get("db").await?;
        Ok(obj.status.and_then(|s| {
            s.conditions
                .into_iter()
                .find(|c| c.type_ == "Ready" && c.status == "True")
        }))
    })
    .await?;
    assert_eq!(ready.reason, "Unsealed");
    assert!(
        !operator.output().contains("forbidden"),
        "the operator hit RBAC denials:\n{}",
        operator.output()
    );
    drop(operator);
    drop(rbac);
    ns.delete().await
}
