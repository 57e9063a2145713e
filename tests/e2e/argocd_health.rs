//! The Argo CD health check shipped in the chart, run by the real Lua 5.1 interpreter (as
//! Argo CD runs it) against SealedSecrets as the operator really left them: Ready, each
//! failure, and none yet; and the kstatus `Stalled` condition beside them.

use std::time::Duration;

use anyhow::{Context, Result};
use kube::CustomResourceExt;
use kube::api::PostParams;
use seal_e2e::operator::{Operator, seal_secret};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::keys::SealIdentity;
use seal_shared::sealed_secret::{SealedSecret, seal_items_into};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// `value` as a Lua table constructor.
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\{:03}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("[{}] = {}", lua(&Value::String(k.clone())), lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What the chart's health check says of `object`: (status, message).
fn health(object: &SealedSecret) -> Result<(String, String)> {
    let interpreter = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("lua5.1"))
                .find(|p| p.is_file())
        })
        .context("`lua5.1` is not installed; ./test.sh installs it (Debian package lua5.1)")?;
    let check = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/seal-operator/argocd/health.lua"
    );
    let script = format!(
        "obj = {}\nlocal hs = assert(loadfile({:?}))()\nprint(hs.status)\nprint(hs.message or \"\")\n",
        lua(&serde_json::to_value(object)?),
        check
    );
    let out = std::process::Command::new(interpreter)
        .arg("-e")
        .arg(&script)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "lua5.1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let mut lines = text.lines();
    Ok((
        lines.next().unwrap_or_default().to_owned(),
        lines.next().unwrap_or_default().to_owned(),
    ))
}

fn stalled(object: &SealedSecret) -> Option<String> {
    object
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True")
        .map(|c| c.reason.clone())
}

#[tokio::test]
async fn argo_cd_sees_ready_failing_and_pending_sealed_secrets_as_they_are() -> Result<()> {
    let ns = TestNamespace::create("argocd-health").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(&ns.name, &["--leader-election=false"])?;
    operator.wait_ready().await?;
    let api = ns.api::<SealedSecret>();

    let good = seal_secret(&ns.name, "good", "Opaque", &[("k", "v")])?;
    let mut moved = good.clone();
    moved.metadata.name = Some("moved".into());
    let mut foreign: SealedSecret = serde_json::from_value(serde_json::json!({
        "apiVersion": "seal.dev/v1", "kind": "SealedSecret",
        "metadata": {"name": "foreign", "namespace": ns.name},
        "spec": {"encryptedData": {}},
    }))?;
    seal_items_into(
        &mut foreign,
        [("k", b"v".as_slice())],
        &[SealIdentity::generate().recipient()],
    )?;
    for object in [&good, &moved, &foreign] {
        api.create(&PostParams::default(), object).await?;
    }
    let expect = [
        ("good", "Healthy", "Unsealed", None),
        (
            "moved",
            "Degraded",
            "BindingMismatch",
            Some("BindingMismatch"),
        ),
        ("foreign", "Degraded", "NoMatchingKey", None),
    ];
    for (name, status, reason, stalled_reason) in expect {
        let object = eventually(&format!("{name} reported"), WAIT, || async {
            let object = api.get(name).await?;
            Ok(object
                .status
                .as_ref()
                .filter(|s| !s.conditions.is_empty())
                .map(|_| object.clone()))
        })
        .await?;
        let (said, message) = health(&object)?;
        assert_eq!(said, status, "{name}: {message}");
        assert!(message.starts_with(reason), "{name}: {message}");
        assert_eq!(stalled(&object).as_deref(), stalled_reason, "{name}");
    }

    // As applied, before the operator has said anything.
    let mut pending = api.get("good").await?;
    pending.status = None;
    assert_eq!(health(&pending)?.0, "Progressing");
    // A newer spec than the status speaks for.
    let mut newer = api.get("good").await?;
    newer.metadata.generation = newer.metadata.generation.map(|g| g + 1);
    assert_eq!(health(&newer)?.0, "Progressing");

    // Cured: the moved item replaced by one sealed for its place clears Stalled.
    let fixed = seal_secret(&ns.name, "moved", "Opaque", &[("k", "v")])?;
    let patch = serde_json::json!({"spec": {"encryptedData": fixed.spec.encrypted_data}});
    api.patch(
        "moved",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await?;
    let cured = eventually("moved cured", WAIT, || async {
        let object = api.get("moved").await?;
        Ok((ns
            .ready_reason("moved")
            .await?
            .is_some_and(|(s, _)| s == "True"))
        .then_some(object))
    })
    .await?;
    assert_eq!(stalled(&cured), None, "Stalled outlived the cure");
    assert_eq!(health(&cured)?.0, "Healthy");
    drop(operator);
    ns.delete().await
}
