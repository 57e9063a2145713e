//! `seal reseal` on 1,000 SealedSecret files after a rotation: online through seal-operator's
//! reseal endpoint (at its default rate limit, and with the limit lifted to see what the
//! endpoint itself costs) and offline with the recovery key. Prints its figures.
//!
//! Needs `tests/cluster/cluster up` and release builds of seal-cli and seal-operator:
//! cargo build --release -p seal-cli -p seal-operator && cargo bench -p seal-e2e --bench reseal

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::CustomResourceExt;
use seal_e2e::operator::{Operator, seal};
use seal_e2e::{TestNamespace, wait::install_crd};
use seal_shared::Scope;
use seal_shared::keys::{SealIdentity, SealRecipient};
use seal_shared::manifest::PlainSecret;
use seal_shared::public_keys::{CONFIGMAP, KEYS_KEY, RECIPIENT_KEY};
use seal_shared::sealed_secret::{SealRequest, SealedSecret, seal_secret};
use zeroize::Zeroizing;

const FILES: usize = 1_000;

async fn published(ns: &TestNamespace) -> Result<(String, String)> {
    let map = ns.api::<ConfigMap>().get(CONFIGMAP).await?;
    let data = map.data.context("no data")?;
    Ok((
        data.get(RECIPIENT_KEY).cloned().context("no recipient")?,
        data.get(KEYS_KEY).cloned().context("no keys.json")?,
    ))
}

/// FILES SealedSecret files in `dir`, each with one item sealed to `to`.
fn write_files(dir: &Path, namespace: &str, to: &[SealRecipient]) -> Result<()> {
    for i in 0..FILES {
        let name = format!("app-{i:04}");
        let secret = PlainSecret {
            name: Some(name.clone()),
            namespace: Some(namespace.into()),
            type_: None,
            labels: Default::default(),
            annotations: Default::default(),
            immutable: None,
            data: [(
                "password".to_owned(),
                Zeroizing::new(format!("value-of-{name}").into_bytes()),
            )]
            .into(),
        };
        let sealed = seal_secret(&SealRequest {
            secret: &secret,
            namespace: Some(namespace),
            name: &name,
            scope: Scope::Strict,
            recipients: to,
        })?;
        std::fs::write(
            dir.join(format!("{name}.yaml")),
            seal_shared::yaml::to_string_multiple(std::slice::from_ref(&sealed))?,
        )?;
    }
    Ok(())
}

fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(") ").context("malformed stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()?;
    let per_second: f64 = String::from_utf8(out.stdout)?.trim().parse()?;
    Ok(ticks as f64 / per_second)
}

/// Runs `seal reseal` with `args` on a fresh copy of `source`; answers the wall time.
fn reseal(source: &Path, args: &[&str]) -> Result<Duration> {
    let dir = tempfile::tempdir()?;
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.path().join(entry.file_name()))?;
    }
    let mut all = vec!["reseal"];
    all.extend_from_slice(args);
    all.push(".");
    let started = Instant::now();
    let out = seal(&all, dir.path())?;
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(out.status.success(), "seal reseal failed: {stderr}");
    anyhow::ensure!(
        stderr.contains(&format!("{FILES} item(s) resealed in {FILES} file(s)")),
        "not every item resealed: {stderr}"
    );
    Ok(took)
}

fn report(what: &str, took: Duration, cpu: Option<f64>) {
    let per_second = FILES as f64 / took.as_secs_f64();
    let cpu = cpu.map_or(String::new(), |c| format!(", operator CPU {c:.2} s"));
    println!(
        "{what}: {FILES} files in {:.2} s ({per_second:.0} items/s){cpu}",
        took.as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let ns = TestNamespace::create("bench-reseal").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let operator = Operator::start_with_log(&ns.name, &["--key-rotation-period=0"], "warn")?;
    operator.wait_ready().await?;
    let (old, _) = published(&ns).await?;
    let recovery = SealIdentity::generate();
    let source = tempfile::tempdir()?;
    write_files(
        source.path(),
        &ns.name,
        &[old.parse()?, recovery.recipient()],
    )?;
    let out = seal(
        &["rotate", "--controller-namespace", &ns.name],
        source.path(),
    )?;
    anyhow::ensure!(out.status.success(), "seal rotate failed");
    let (_, keys_json) = published(&ns).await?;
    let recovery_recipient = recovery.recipient().recipient.to_string();
    let url = format!("http://127.0.0.1:{}", operator.http_port);
    let online = [
        "--controller-namespace",
        ns.name.as_str(),
        "--operator-url",
        url.as_str(),
        "-r",
        recovery_recipient.as_str(),
    ];

    let cpu = cpu_seconds(operator.pid())?;
    let took = reseal(source.path(), &online)?;
    report(
        "online, default rate limit (50/s, burst 100)",
        took,
        Some(cpu_seconds(operator.pid())? - cpu),
    );
    drop(operator);

    let operator = Operator::start_with_log(
        &ns.name,
        &[
            "--key-rotation-period=0",
            "--reseal-rate=1000000",
            "--reseal-burst=1000000",
        ],
        "warn",
    )?;
    operator.wait_ready().await?;
    let url = format!("http://127.0.0.1:{}", operator.http_port);
    let online = [
        "--controller-namespace",
        ns.name.as_str(),
        "--operator-url",
        url.as_str(),
        "-r",
        recovery_recipient.as_str(),
    ];
    let cpu = cpu_seconds(operator.pid())?;
    let took = reseal(source.path(), &online)?;
    report(
        "online, rate limit lifted",
        took,
        Some(cpu_seconds(operator.pid())? - cpu),
    );

    let key_dir = tempfile::tempdir()?;
    let keys = key_dir.path().join("keys.json");
    let identity = key_dir.path().join("recovery.key");
    std::fs::write(&keys, keys_json)?;
    {
        use age::secrecy::ExposeSecret;
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&identity)?
            .write_all(format!("{}\n", recovery.to_secret_string().expose_secret()).as_bytes())?;
    }
    let took = reseal(
        source.path(),
        &[
            "-i",
            identity.to_str().context("path")?,
            "--keys",
            keys.to_str().context("path")?,
        ],
    );
    report("offline, recovery key", took?, None);
    Ok(())
}
