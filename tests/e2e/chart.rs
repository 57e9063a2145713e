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
use seal_e2e::promql;
use seal_e2e::tools::{chart_file, helm_output, kubectl, promtool, render};
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
        r#"Role [""] ["secrets"] [] ["get","list","watch","create","patch","delete"]"#,
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

/// The promtool unit tests of the chart's alerts, and the alerts of the chart.
const ALERT_TESTS: [&str; 2] = ["alerts.test.yaml", "alerts-week.test.yaml"];

#[test]
fn the_alerts_fire_for_lasting_failures_and_only_then() -> Result<()> {
    let docs = render(&["-n", "seal-system", "--set", "prometheusRule.enabled=true"])?;
    let rule = of_kind(&docs, "PrometheusRule")
        .into_iter()
        .next()
        .context("no PrometheusRule rendered")?;
    let dir = tempfile::tempdir()?;
    // JSON is YAML: the rendered groups, as a Prometheus rules file.
    let rules = json!({"groups": rule["spec"]["groups"]});
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_json::to_string(&rules)?,
    )?;
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/chart");
    let mut tested: Vec<(String, bool)> = Vec::new();
    for file in ALERT_TESTS {
        let text = std::fs::read_to_string(format!("{source}/{file}"))?;
        std::fs::write(dir.path().join(file), &text)?;
        let tests: Value = serde_saphyr::from_str(&text)?;
        for case in tests["tests"].as_array().into_iter().flatten() {
            for check in case["alert_rule_test"].as_array().into_iter().flatten() {
                let fires = check["exp_alerts"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty());
                tested.push((
                    check["alertname"].as_str().unwrap_or_default().into(),
                    fires,
                ));
            }
        }
    }
    let mut args = vec!["test", "rules"];
    args.extend(ALERT_TESTS);
    let out = promtool(&args, dir.path())?;
    assert!(
        out.status.success(),
        "promtool test rules failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every alert is shown both to fire and to stay silent.
    for (alert, _) in promql::alert_queries(&docs)? {
        for fires in [true, false] {
            assert!(
                tested.contains(&(alert.clone(), fires)),
                "no promtool test where {alert} {}",
                if fires { "fires" } else { "stays silent" }
            );
        }
    }
    Ok(())
}

#[test]
fn the_grafana_dashboard_is_off_by_default_and_well_formed() -> Result<()> {
    let is_dashboard = |d: &&Value| {
        d["kind"] == "ConfigMap" && d["metadata"]["labels"]["grafana_dashboard"] == "1"
    };
    assert!(
        !render(&["-n", "seal-system"])?
            .iter()
            .any(|d| is_dashboard(&d)),
        "the dashboard must be off by default"
    );
    let docs = render(&[
        "-n",
        "seal-system",
        "--set",
        "grafanaDashboard.enabled=true",
    ])?;
    let map = docs
        .iter()
        .find(is_dashboard)
        .context("no ConfigMap with grafana_dashboard: \"1\"")?;
    assert_eq!(map["metadata"]["namespace"], "seal-system");
    let text = map["data"]["seal-operator.json"]
        .as_str()
        .context("no seal-operator.json in the ConfigMap")?;
    let dashboard: Value = serde_json::from_str(text).context("the dashboard is not JSON")?;
    let committed: Value = serde_json::from_str(&chart_file("dashboards/seal-operator.json")?)?;
    assert_eq!(dashboard, committed, "the ConfigMap holds the chart's file");
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());

    let panels = dashboard["panels"].as_array().context("no panels")?;
    let ids: BTreeSet<i64> = panels.iter().filter_map(|p| p["id"].as_i64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids must be unique");
    for panel in panels {
        assert!(
            panel["gridPos"]["w"].is_i64() && panel["gridPos"]["h"].is_i64(),
            "{}: no gridPos",
            panel["title"]
        );
        assert!(
            panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "{}: no query",
            panel["title"]
        );
    }
    // What the dashboard is for: every metric the operator exports has a panel.
    let queried: BTreeSet<String> = promql::dashboard_queries(&dashboard)?
        .into_iter()
        .flat_map(|q| q.metrics)
        .collect();
    for metric in [
        "seal_unseals_total",
        "seal_sealed_secrets",
        "seal_unseal_duration_seconds_bucket",
        "seal_keys",
        "seal_leader",
        "seal_sealed_with_noncurrent_key",
        "seal_last_key_rotation_timestamp_seconds",
    ] {
        assert!(queried.contains(metric), "no panel shows {metric}");
    }
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
        "prometheusRule.noLeaderFor=soon",
        "grafanaDashboard.enabled=yes",
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
