//! Retiring a key: refused while a SealedSecret needs it (named) and for the sealing key;
//! once retired it opens nothing, `seal keys unretire` brings it back, and its Secret is
//! deleted after the grace period, never before. Every step is an Event on the key Secret and
//! an audit line.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::CustomResourceExt;
use kube::api::{DeleteParams, PostParams};
use seal_e2e::operator::{Operator, seal, seal_secret};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::public_keys::{CONFIGMAP, KEYS_KEY, PublishedKey};
use seal_shared::sealed_secret::SealedSecret;

const WAIT: Duration = Duration::from_secs(30);
/// The grace period the operator runs with here.
const GRACE: Duration = Duration::from_secs(6);

async fn published(ns: &TestNamespace) -> Result<Vec<PublishedKey>> {
    let map = ns.api::<ConfigMap>().get(CONFIGMAP).await?;
    Ok(serde_json::from_str(
        map.data
            .and_then(|d| d.get(KEYS_KEY).cloned())
            .as_deref()
            .unwrap_or("[]"),
    )?)
}

/// Runs `seal keys ARGS...` against the operator in `ns`; answers (exit code, stdout, stderr).
fn seal_keys(ns: &TestNamespace, args: &[&str]) -> Result<(i32, String, String)> {
    let dir = tempfile::tempdir()?;
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--controller-namespace", &ns.name]);
    let out = seal(&all, dir.path())?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

/// A SealedSecret `name` sealed offline to `recipient` only.
fn sealed_to(ns: &TestNamespace, name: &str, recipient: &str) -> Result<SealedSecret> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("s.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {}\nstringData:\n  k: legacy\n",
            ns.name
        ),
    )?;
    let out = seal(&["encrypt", "-r", recipient, "s.yaml"], dir.path())?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(
        seal_shared::sealed_secret::parse_sealed_secrets(&String::from_utf8(out.stdout)?)?
            .remove(0),
    )
}

/// The reasons of the Events on key Secret `secret`, oldest first.
async fn key_events(ns: &TestNamespace, secret: &str) -> Result<Vec<(String, String)>> {
    let mut events: Vec<Event> = ns
        .api::<Event>()
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(secret))
        .collect();
    events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    Ok(events
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect())
}

/// The audit lines about key `id` with this outcome.
fn key_audit(operator: &Operator, id: &str, outcome: &str) -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(&operator.stdout)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["event"] == "key" && l["keyId"] == id && l["outcome"] == outcome)
        .collect())
}

async fn ready_with(ns: &TestNamespace, name: &str, reason: &str) -> Result<()> {
    eventually(&format!("{name} {reason}"), WAIT, || async {
        Ok(ns
            .ready_reason(name)
            .await?
            .filter(|(_, r)| r == reason)
            .map(|_| ()))
    })
    .await
}

#[tokio::test]
async fn a_key_is_retired_once_nothing_needs_it_and_deleted_after_its_grace() -> Result<()> {
    let ns = TestNamespace::create("key-retire").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let grace = format!("--key-retire-grace={}s", GRACE.as_secs());
    let operator = Operator::start(&ns.name, &["--key-rotation-period=0", &grace])?;
    operator.wait_ready().await?;
    let sealed_api = ns.api::<SealedSecret>();
    let old = published(&ns).await?.remove(0);
    let old_secret = format!("seal-key-{}", old.id);

    // "db" sealed to the first key, then a rotation: the old key is decrypt-only.
    sealed_api
        .create(
            &PostParams::default(),
            &seal_secret(&ns.name, "db", "Opaque", &[("k", "v1")])?,
        )
        .await?;
    ready_with(&ns, "db", "Unsealed").await?;
    let dir = tempfile::tempdir()?;
    let rotated = seal(&["rotate", "--controller-namespace", &ns.name], dir.path())?;
    anyhow::ensure!(rotated.status.success(), "{rotated:?}");
    let new_id = String::from_utf8(rotated.stdout)?.trim().to_owned();

    // Refused while db needs the old key: one error line naming both, and a hint.
    let (code, _, stderr) = seal_keys(&ns, &["retire", &old.id])?;
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "seal: error: key {}: cannot retire it: 1 SealedSecret(s) still need it: {}/db",
            old.id, ns.name
        )),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("  hint: ") && lines[1].contains("seal reseal"),
        "{stderr}"
    );
    let refused = key_audit(&operator, &old.id, "refused")?;
    assert_eq!(refused.len(), 1, "one audit line per request");
    assert_eq!(refused[0]["sealedSecrets"][0], format!("{}/db", ns.name));
    assert!(
        key_events(&ns, &old_secret)
            .await?
            .iter()
            .any(|(r, _)| r == "KeyRetireRefused"),
        "a Warning on the key Secret"
    );

    // The sealing key is never retired.
    let (code, _, stderr) = seal_keys(&ns, &["retire", &new_id])?;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("is the sealing key") && stderr.contains("seal rotate"),
        "{stderr}"
    );
    assert_eq!(
        published(&ns)
            .await?
            .iter()
            .filter(|k| k.state == "active")
            .count(),
        1
    );

    // db resealed to the new key: the old one is needed no more, and is retired.
    let mut db = sealed_api.get("db").await?;
    db.spec = seal_secret(&ns.name, "db", "Opaque", &[("k", "v2")])?.spec;
    sealed_api
        .replace("db", &PostParams::default(), &db)
        .await?;
    eventually("db opened with the new key", WAIT, || async {
        let status = sealed_api.get("db").await?.status;
        Ok(status.filter(|s| s.key_ids == [new_id.clone()]).map(|_| ()))
    })
    .await?;
    let asked = std::time::Instant::now();
    let (code, _, stderr) = seal_keys(&ns, &["retire", &old.id])?;
    let answered_in = asked.elapsed();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("retired") && stderr.contains("unretire"),
        "{stderr}"
    );
    eprintln!("seal keys retire: answered and published in {answered_in:?}");
    let listed = published(&ns).await?;
    let shown = listed
        .iter()
        .find(|k| k.id == old.id)
        .context("the retired key listed")?;
    assert_eq!(shown.state, "retired");
    let delete_after: Timestamp = shown
        .delete_after
        .as_deref()
        .context("deleteAfter")?
        .parse()?;
    let retired_at: Timestamp = shown.retired_at.as_deref().context("retiredAt")?.parse()?;
    assert_eq!(
        delete_after.duration_since(retired_at).as_secs(),
        GRACE.as_secs() as i64
    );
    let (_, table, _) = seal_keys(&ns, &[])?;
    let row = table
        .lines()
        .find(|l| l.starts_with(&old.id))
        .context("row")?;
    assert!(
        table.starts_with("KEY ID")
            && table
                .lines()
                .next()
                .is_some_and(|h| h.contains("SEALED SECRETS")),
        "{table}"
    );
    assert!(
        row.contains(" retired ") && row.contains(&delete_after.to_string()),
        "{table}"
    );

    // A SealedSecret sealed only to the retired key fails, saying how to get it back.
    sealed_api
        .create(
            &PostParams::default(),
            &sealed_to(&ns, "legacy", &old.recipient)?,
        )
        .await?;
    ready_with(&ns, "legacy", "KeyRetired").await?;
    let message = sealed_api
        .get("legacy")
        .await?
        .status
        .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.message)
        .unwrap_or_default();
    assert!(
        message.contains(&format!("seal keys unretire {}", old.id)),
        "{message}"
    );

    // Unretired within the grace: decrypt-only again, and legacy opens.
    let (code, _, stderr) = seal_keys(&ns, &["unretire", &old.id])?;
    assert_eq!(code, 0, "{stderr}");
    ready_with(&ns, "legacy", "Unsealed").await?;
    let states: Vec<String> = published(&ns).await?.into_iter().map(|k| k.state).collect();
    assert_eq!(states, ["decrypt-only", "active"]);
    tokio::time::sleep(GRACE + Duration::from_secs(2)).await;
    assert!(
        ns.api::<Secret>().get_opt(&old_secret).await?.is_some(),
        "an unretired key is never deleted"
    );

    // Retired again once legacy is gone, and deleted once the grace is over, not before.
    sealed_api
        .delete("legacy", &DeleteParams::default())
        .await?;
    let (code, _, stderr) = seal_keys(&ns, &["retire", &old.id])?;
    assert_eq!(code, 0, "{stderr}");
    let secret = ns.api::<Secret>().get(&old_secret).await?;
    let delete_after: Timestamp = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("seal.dev/delete-after"))
        .context("delete-after on the key Secret")?
        .parse()?;
    let gone_at = eventually("the retired key deleted", WAIT, || async {
        let there = ns.api::<Secret>().get_opt(&old_secret).await?.is_some();
        Ok((!there).then(Timestamp::now))
    })
    .await?;
    assert!(
        gone_at >= delete_after,
        "deleted at {gone_at}, before {delete_after}"
    );
    eventually("the deleted key unpublished", WAIT, || async {
        Ok((!published(&ns).await?.iter().any(|k| k.id == old.id)).then_some(()))
    })
    .await?;
    let (code, _, stderr) = seal_keys(&ns, &["unretire", &old.id])?;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("lists no key {}", old.id)),
        "{stderr}"
    );

    // Every step on the key Secret and in the audit log.
    let reasons: Vec<String> = eventually("the deletion Event", WAIT, || async {
        let reasons: Vec<String> = key_events(&ns, &old_secret)
            .await?
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        Ok(reasons.iter().any(|r| r == "KeyDeleted").then_some(reasons))
    })
    .await?;
    for reason in [
        "KeyRetireRefused",
        "KeyRetired",
        "KeyUnretired",
        "KeyDeleted",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} in {reasons:?}"
        );
    }
    for outcome in ["retired", "unretired", "deleted"] {
        assert!(
            !key_audit(&operator, &old.id, outcome)?.is_empty(),
            "no audit line {outcome}"
        );
    }
    drop(operator);
    ns.delete().await
}
