//! What the operator tells those who watch it: the SealedSecrets gauges follow status and
//! deletion, API errors are counted, the chart's alerts and dashboard ask for what the
//! operator really exports, and a text log written to a file holds no colour codes.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use kube::api::{DeleteParams, PostParams};
use seal_e2e::operator::{Operator, seal_secret};
use seal_e2e::tools::{chart_file, render};
use seal_e2e::{TestNamespace, eventually, promql, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The value of the series `series` (name and labels exactly as exposed), if exported.
async fn sample(operator: &Operator, series: &str) -> Result<Option<f64>> {
    let (_, metrics) = operator.get(operator.metrics_port, "/metrics").await?;
    Ok(metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok()))
}

/// Waits until `series` reads `value`.
async fn wait_for(operator: &Operator, series: &str, value: f64) -> Result<()> {
    eventually(&format!("{series} = {value}"), WAIT, || async {
        Ok((sample(operator, series).await? == Some(value)).then_some(()))
    })
    .await
    .inspect_err(|_| eprintln!("{}", operator.output()))
}

async fn wait_ready(ns: &TestNamespace, name: &str, status: &str, reason: &str) -> Result<()> {
    eventually(&format!("{name} Ready={status} {reason}"), WAIT, || async {
        Ok(ns
            .ready_reason(name)
            .await?
            .filter(|(s, r)| s == status && r == reason))
    })
    .await
    .map(|_| ())
}

/// One SealedSecret that unseals ("db") and one whose item was sealed for another name
/// ("moved", BindingMismatch).
async fn one_good_one_refused(ns: &TestNamespace) -> Result<()> {
    let api = ns.api::<SealedSecret>();
    let good = seal_secret(&ns.name, "db", "Opaque", &[("k", "v")])?;
    let mut moved = good.clone();
    moved.metadata.name = Some("moved".into());
    api.create(&PostParams::default(), &good).await?;
    api.create(&PostParams::default(), &moved).await?;
    wait_ready(ns, "db", "True", "Unsealed").await?;
    wait_ready(ns, "moved", "False", "BindingMismatch").await
}

const READY: &str = r#"seal_sealed_secrets{ready="true",reason="Unsealed"}"#;
const MOVED: &str = r#"seal_sealed_secrets{ready="false",reason="BindingMismatch"}"#;

#[tokio::test]
async fn sealed_secrets_are_counted_by_ready_and_reason() -> Result<()> {
    let ns = TestNamespace::create("ready-gauges").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--key-rotation-period=0"])?;
    operator.wait_ready().await?;
    one_good_one_refused(&ns).await?;
    wait_for(&operator, READY, 1.0).await?;
    wait_for(&operator, MOVED, 1.0).await?;

    // Repaired: sealed anew for its own name, it moves from one gauge to the other.
    let api = ns.api::<SealedSecret>();
    let fixed = seal_secret(&ns.name, "moved", "Opaque", &[("k", "v")])?;
    let mut current = api.get("moved").await?;
    current.spec = fixed.spec;
    api.replace("moved", &PostParams::default(), &current)
        .await?;
    wait_ready(&ns, "moved", "True", "Unsealed").await?;
    wait_for(&operator, READY, 2.0).await?;
    wait_for(&operator, MOVED, 0.0).await?;

    // Deleted SealedSecrets leave the count.
    api.delete("db", &DeleteParams::default()).await?;
    wait_for(&operator, READY, 1.0).await?;
    drop(operator);
    ns.delete().await
}

#[tokio::test]
async fn a_status_the_operator_may_not_write_counts_as_an_api_error() -> Result<()> {
    let ns = TestNamespace::create("api-errors").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    // Everything the operator needs in its namespace except writing SealedSecret status.
    let user = format!("{}-no-status", ns.name);
    let rules = json!([
        {"apiGroups": ["seal.dev"], "resources": ["sealedsecrets"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch", "update"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    ]);
    let kubeconfig = seal_e2e::chart::kubeconfig_as(&ns, &user, rules)?;
    let operator = Operator::start_with_kubeconfig(&ns.name, kubeconfig.path(), &[])?;
    operator
        .wait_ready()
        .await
        .inspect_err(|_| eprintln!("{}", operator.output()))?;
    let sealed = seal_secret(&ns.name, "db", "Opaque", &[("k", "v")])?;
    ns.api::<SealedSecret>()
        .create(&PostParams::default(), &sealed)
        .await?;
    eventually("the Secret", WAIT, || async {
        Ok(ns.api::<Secret>().get_opt("db").await?)
    })
    .await?;
    // The Secret is written, its status cannot be: an error, retried, and counted as such.
    eventually("a Forbidden error counted", WAIT, || async {
        let count = sample(
            &operator,
            r#"seal_unseals_total{outcome="error",reason="Forbidden"}"#,
        )
        .await?;
        Ok(count.filter(|n| *n >= 1.0))
    })
    .await
    .inspect_err(|_| eprintln!("{}", operator.output()))?;
    drop(operator);
    ns.delete().await
}

#[tokio::test]
async fn the_alerts_and_the_dashboard_ask_for_what_the_operator_exports() -> Result<()> {
    let ns = TestNamespace::create("metric-names").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--key-rotation-period=0"])?;
    operator.wait_ready().await?;
    // Every family gets series: an unseal, a refusal, keys, the leader.
    one_good_one_refused(&ns).await?;
    wait_for(&operator, MOVED, 1.0).await?;
    let (_, scrape) = operator.get(operator.metrics_port, "/metrics").await?;
    let exported = promql::exported(&scrape)?;

    let docs = render(&["-n", "seal-system", "--set", "prometheusRule.enabled=true"])?;
    let alerts = promql::alert_queries(&docs)?;
    assert!(alerts.len() >= 4, "alerts: {alerts:?}");
    let dashboard: Value = serde_json::from_str(&chart_file("dashboards/seal-operator.json")?)
        .context("the dashboard is not JSON")?;
    let panels = promql::dashboard_queries(&dashboard)?;
    let queries = alerts
        .into_iter()
        .chain(panels.into_iter().map(|q| ("the dashboard".to_owned(), q)));
    for (what, query) in queries {
        assert!(!query.metrics.is_empty(), "{what}: a query of no metric");
        let missing = promql::missing(&query, &exported);
        assert!(
            missing.is_empty(),
            "{what} asks for {missing:?}, which the operator does not export:\n{scrape}"
        );
    }
    drop(operator);
    ns.delete().await
}

#[tokio::test]
async fn a_text_log_in_a_file_has_no_colour_codes() -> Result<()> {
    let ns = TestNamespace::create("text-log").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--log-format", "text"])?;
    operator.wait_ready().await?;
    let sealed = seal_secret(&ns.name, "db", "Opaque", &[("k", "v")])?;
    ns.api::<SealedSecret>()
        .create(&PostParams::default(), &sealed)
        .await?;
    wait_ready(&ns, "db", "True", "Unsealed").await?;
    let log = std::fs::read_to_string(&operator.stderr)?;
    assert!(
        log.contains("starting seal-operator") && !log.trim_start().starts_with('{'),
        "not a text log:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log written to a file:\n{}",
        log.escape_debug()
    );
    drop(operator);
    ns.delete().await
}
