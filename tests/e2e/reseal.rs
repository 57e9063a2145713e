//! `seal reseal` online: after a rotation, the operator reseals stale items to its new key
//! (keeping the recovery key), the SealedSecret still unseals, and the endpoint refuses
//! what would let it decrypt or add a recipient, and answers 429 past its rate.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::CustomResourceExt;
use kube::api::PostParams;
use seal_e2e::operator::{Operator, seal};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::KeyRing;
use seal_shared::keys::SealIdentity;
use seal_shared::public_keys::{CONFIGMAP, RECIPIENT_KEY};
use seal_shared::sealed_secret::{SealedSecret, inspect_entry, parse_sealed_secrets, unseal_entry};

const WAIT: Duration = Duration::from_secs(30);
const VALUE: &str = "reseal-e2e-value-3b1f";

async fn sealing_recipient(ns: &TestNamespace) -> Result<String> {
    let map = ns.api::<ConfigMap>().get(CONFIGMAP).await?;
    map.data
        .and_then(|d| d.get(RECIPIENT_KEY).cloned())
        .filter(|r| !r.is_empty())
        .context("no sealing key published")
}

fn run_seal(args: &[&str], dir: &std::path::Path) -> Result<(String, String)> {
    let out = seal(args, dir)?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    anyhow::ensure!(out.status.success(), "seal {args:?} failed: {stderr}");
    Ok((stdout, stderr))
}

/// POSTs `body` to the operator's reseal endpoint; answers the status, body and headers.
async fn post(operator: &Operator, body: &serde_json::Value) -> Result<(u16, String)> {
    let url = format!(
        "http://127.0.0.1:{}{}",
        operator.http_port,
        seal_shared::reseal::RESEAL_PATH
    );
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), body.to_string())?;
    let data = format!("@{}", file.path().display());
    let output = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-i",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            &data,
            &url,
        ])
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let code = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, text))
}

fn ids(sealed: &SealedSecret, key: &str) -> Result<Vec<String>> {
    let (_, ids) = inspect_entry(key, &sealed.spec.encrypted_data[key])?;
    Ok(ids.iter().map(ToString::to_string).collect())
}

#[tokio::test]
async fn rotate_then_reseal_online_keeps_the_recovery_key_and_still_unseals() -> Result<()> {
    let ns = TestNamespace::create("reseal").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start(
        &ns.name,
        &[
            "--key-rotation-period=0",
            "--reseal-rate=1",
            "--reseal-burst=12",
        ],
    )?;
    operator.wait_ready().await?;
    let dir = tempfile::tempdir()?;
    let recovery = SealIdentity::generate();
    let recovery_recipient = recovery.recipient().recipient.to_string();
    let old = sealing_recipient(&ns).await?;
    std::fs::write(
        dir.path().join("s.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {}}}\nstringData: {{password: {VALUE}, user: admin}}\n",
            ns.name
        ),
    )?;
    run_seal(
        &[
            "encrypt",
            "-r",
            &old,
            "-r",
            &recovery_recipient,
            "s.yaml",
            "-o",
            "db.yaml",
        ],
        dir.path(),
    )?;
    let stale_text = std::fs::read_to_string(dir.path().join("db.yaml"))?;
    let stale = parse_sealed_secrets(&stale_text)?.remove(0);
    let api = ns.api::<SealedSecret>();
    api.create(&PostParams::default(), &stale).await?;
    let secrets = ns.api::<Secret>();
    eventually("the Secret", WAIT, || async {
        Ok(secrets.get_opt("db").await?)
    })
    .await?;

    let (_, stderr) = run_seal(&["rotate", "--controller-namespace", &ns.name], dir.path())?;
    let new = sealing_recipient(&ns).await?;
    anyhow::ensure!(new != old, "rotate published no new key: {stderr}");
    let new_id = new.parse::<seal_shared::SealRecipient>()?.id.to_string();
    let old_id = old.parse::<seal_shared::SealRecipient>()?.id.to_string();
    let recovery_id = recovery.id.to_string();
    let url = format!("http://127.0.0.1:{}", operator.http_port);

    // Without the recovery key's recipient the CLI refuses, rather than drop it.
    let out = seal(
        &[
            "reseal",
            "--controller-namespace",
            &ns.name,
            "--operator-url",
            &url,
            "db.yaml",
        ],
        dir.path(),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("also sealed to {recovery_id}")),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("db.yaml"))?,
        stale_text
    );

    let (stdout, stderr) = run_seal(
        &[
            "reseal",
            "--controller-namespace",
            &ns.name,
            "--operator-url",
            &url,
            "-r",
            &recovery_recipient,
            "db.yaml",
        ],
        dir.path(),
    )?;
    assert!(
        stdout.contains(&format!("item \"password\": {old_id} -> {new_id}")),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("2 item(s) resealed in 1 file(s)"),
        "{stderr}"
    );
    let resealed =
        parse_sealed_secrets(&std::fs::read_to_string(dir.path().join("db.yaml"))?)?.remove(0);
    for key in ["password", "user"] {
        assert_eq!(
            ids(&resealed, key)?,
            vec![new_id.clone(), recovery_id.clone()]
        );
    }
    // The recovery key still opens it, where it sits.
    let mut ring = KeyRing::new();
    ring.insert(SealIdentity::from_identity(recovery.identity.clone()));
    let opened = unseal_entry(
        &resealed,
        "password",
        &resealed.spec.encrypted_data["password"],
        &ring,
    )?;
    assert_eq!(opened.value.as_slice(), VALUE.as_bytes());

    // Applied, it unseals with the new key into the same Secret.
    let mut live = api.get("db").await?;
    live.spec = resealed.spec.clone();
    api.replace("db", &PostParams::default(), &live).await?;
    eventually("status.keyIds names the new key only", WAIT, || async {
        let live = api.get("db").await?;
        Ok(live
            .status
            .filter(|s| s.key_ids == vec![new_id.clone()])
            .map(|_| ()))
    })
    .await?;
    let secret = secrets.get("db").await?;
    let value = secret.data.unwrap_or_default()["password"].0.clone();
    assert_eq!(value, VALUE.as_bytes());

    // The endpoint itself: a stale item with a recipient it does not name is refused, and so
    // is one sent for another place. Neither answer carries anything but a refusal.
    let stranger = SealIdentity::generate().recipient().recipient.to_string();
    let request = |name: &str, recipients: Vec<String>| {
        serde_json::json!({
            "namespace": ns.name, "name": name, "scope": "strict", "key": "password",
            "item": stale.spec.encrypted_data["password"], "recipients": recipients, "to": new_id,
        })
    };
    let (code, body) = post(
        &operator,
        &request("db", vec![recovery_recipient.clone(), stranger]),
    )
    .await?;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("\"reason\":\"ForeignRecipient\""), "{body}");
    let (code, body) = post(
        &operator,
        &request("other", vec![recovery_recipient.clone()]),
    )
    .await?;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("\"reason\":\"BindingMismatch\""), "{body}");
    // Without the recovery key the operator refuses too: it never drops a recipient.
    let (code, body) = post(&operator, &request("db", vec![])).await?;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("\"reason\":\"UnknownRecipient\""), "{body}");
    // A key the operator does not seal to.
    let mut wrong = request("db", vec![recovery_recipient.clone()]);
    wrong["to"] = old_id.clone().into();
    let (code, body) = post(&operator, &wrong).await?;
    assert_eq!(code, 409, "{body}");

    // Past the burst, 429 with a Retry-After, until a token is back.
    let mut limited = None;
    for _ in 0..20 {
        let (code, body) =
            post(&operator, &request("db", vec![recovery_recipient.clone()])).await?;
        if code == 429 {
            limited = Some(body);
            break;
        }
        assert_eq!(code, 200, "{body}");
    }
    let body = limited.context("no 429 within 20 requests past a burst of 12")?;
    assert!(
        body.to_ascii_lowercase().contains("retry-after: "),
        "{body}"
    );
    assert!(body.contains("\"retryAfterSeconds\":"), "{body}");

    // One audit line per call, none with the value.
    let output = operator.output();
    let audit: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("\"event\":\"reseal\""))
        .collect();
    assert!(audit.len() >= 7, "{audit:?}");
    assert!(
        audit.iter().any(|l| l.contains("\"outcome\":\"resealed\"")
            && l.contains(&format!("\"toKeyIds\":[\"{new_id}\",\"{recovery_id}\"]"))),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|l| l.contains("\"reason\":\"ForeignRecipient\""))
    );
    assert!(audit.iter().any(|l| l.contains("\"outcome\":\"limited\"")));
    assert!(
        !output.contains(VALUE),
        "the value reached the operator's output"
    );
    Ok(())
}

/// Without --operator-url the CLI goes through the API server's service proxy with the
/// kubeconfig. This server runs no pods (and refuses loopback endpoints), so the Service has
/// no endpoint to reach: what is checked is that the request reaches the proxy for the chart's
/// Service and that its answer is reported, with nothing written.
/// This machine's own address (not loopback, which an Endpoints object may not name): the
/// one a packet to a documentation address would leave from. Nothing is sent.
fn own_address() -> Result<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    socket.connect("192.0.2.1:9")?;
    let ip = socket.local_addr()?.ip();
    anyhow::ensure!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "this machine has no address but loopback ({ip}), so the API server's service proxy cannot reach a local operator"
    );
    Ok(ip)
}

/// The Service `seal-operator` with port `http`, its endpoint this machine's address and the
/// operator's port. The API server proxies only to an address a Pod of the namespace has,
/// so a Pod that no node runs stands in, with that address in its status.
async fn service_to(ns: &TestNamespace, ip: std::net::IpAddr, port: u16) -> Result<()> {
    use k8s_openapi::api::core::v1::{Endpoints, Pod, Service, ServiceAccount};
    use kube::api::{Patch, PatchParams};
    let ip = ip.to_string();
    ns.api::<ServiceAccount>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "default"}}))?,
        )
        .await?;
    let pods = ns.api::<Pod>();
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({
            "metadata": {"name": "seal-operator-0"},
            "spec": {"automountServiceAccountToken": false,
                     "containers": [{"name": "operator", "image": "seal-operator"}]},
        }))?,
    )
    .await?;
    pods.patch_status(
        "seal-operator-0",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"podIP": ip, "podIPs": [{"ip": ip}]}})),
    )
    .await?;
    ns.api::<Service>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "seal-operator"},
                "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": port}]},
            }))?,
        )
        .await?;
    ns.api::<Endpoints>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "seal-operator"},
                "subsets": [{
                    "addresses": [{"ip": ip, "targetRef": {"kind": "Pod", "name": "seal-operator-0", "namespace": ns.name}}],
                    "ports": [{"name": "http", "port": port}],
                }],
            }))?,
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn online_reseal_goes_through_the_service_proxy() -> Result<()> {
    let ns = TestNamespace::create("reseal-proxy").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start_reachable(&ns.name, &["--key-rotation-period=0"])?;
    operator.wait_ready().await?;
    service_to(&ns, own_address()?, operator.http_port).await?;
    let dir = tempfile::tempdir()?;
    let recovery = SealIdentity::generate();
    let recovery_recipient = recovery.recipient().recipient.to_string();
    let old = sealing_recipient(&ns).await?;
    std::fs::write(
        dir.path().join("s.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {}}}\nstringData: {{password: {VALUE}}}\n",
            ns.name
        ),
    )?;
    run_seal(
        &[
            "encrypt",
            "-r",
            &old,
            "-r",
            &recovery_recipient,
            "s.yaml",
            "-o",
            "db.yaml",
        ],
        dir.path(),
    )?;
    run_seal(&["rotate", "--controller-namespace", &ns.name], dir.path())?;
    let new = sealing_recipient(&ns).await?;
    assert_ne!(new, old, "the rotation made no new key");
    // No --operator-url: the CLI goes through the API server's service proxy.
    let (_, stderr) = run_seal(
        &[
            "reseal",
            "--controller-namespace",
            &ns.name,
            "-r",
            &recovery_recipient,
            "db.yaml",
        ],
        dir.path(),
    )?;
    assert!(
        stderr.contains(&format!(
            "Service {}/seal-operator (through the API server's service proxy)",
            ns.name
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(VALUE), "the value on stderr: {stderr}");
    let resealed =
        parse_sealed_secrets(&std::fs::read_to_string(dir.path().join("db.yaml"))?)?.remove(0);
    let new_id = new.parse::<seal_shared::SealRecipient>()?.id.to_string();
    let mut expected = vec![new_id, recovery.recipient().id.to_string()];

    expected.sort();
    let mut got = ids(&resealed, "password")?;
    got.sort();
    assert_eq!(
        got, expected,
        "not sealed to the new key and the recovery key"
    );
    // The recovery key still opens it, bound where it was.
    let mut ring = KeyRing::new();
    ring.insert(SealIdentity::from_identity(recovery.identity.clone()));
    let opened = unseal_entry(
        &resealed,
        "password",
        &resealed.spec.encrypted_data["password"],
        &ring,
    )?;
    assert_eq!(opened.value.as_slice(), VALUE.as_bytes());
    let audit = std::fs::read_to_string(&operator.stdout)?;
    assert!(
        audit.contains("\"event\":\"reseal\"") && audit.contains("\"outcome\":\"resealed\""),
        "no reseal audit line: {audit}"
    );
    drop(operator);
    ns.delete().await
}
