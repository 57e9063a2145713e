//! seal-operator on the local API server: time from applying a SealedSecret to its Secret
//! existing (p50/p99), time for 10,000 SealedSecrets to converge, RSS with 10,000
//! SealedSecrets plus 10,000 unrelated Secrets, and start-to-ready time. Prints its figures.
//!
//! Needs `tests/cluster/cluster up` and a release build of seal-operator.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use kube::{CustomResourceExt, ResourceExt};
use seal_e2e::operator::Operator;
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::Scope;
use seal_shared::keys::SealRecipient;
use seal_shared::manifest::PlainSecret;
use seal_shared::sealed_secret::{SealRequest, SealedSecret, seal_secret};
use tokio::sync::watch;
use zeroize::Zeroizing;

const MANY: usize = 10_000;
const LATENCY_SAMPLES: usize = 200;
const CONCURRENCY: usize = 64;
/// The label selector for the Secrets the operator writes.
const MANAGED: &str = "seal.dev/managed-by=seal-operator";

fn sealed(namespace: &str, name: &str, recipient: &SealRecipient) -> Result<SealedSecret> {
    let secret = PlainSecret {
        name: Some(name.into()),
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
    let request = SealRequest {
        secret: &secret,
        namespace: Some(namespace),
        name,
        scope: Scope::Strict,
        recipients: std::slice::from_ref(recipient),
    };
    Ok(seal_secret(&request)?)
}

fn rss_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .context("no such field")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("no value")?
        .parse()?)
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after_name = stat.rsplit_once(") ").context("malformed stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()?;
    let per_second: f64 = String::from_utf8(out.stdout)?.trim().parse()?;
    Ok(ticks as f64 / per_second)
}

/// The local cluster's processes, by the PID files `tests/cluster/cluster` records.
fn cluster_pids() -> Result<Vec<(&'static str, u32)>> {
    let state = std::env::var_os("SEAL_CLUSTER_DIR").unwrap_or_else(|| "/tmp/seal-cluster".into());
    ["kube-apiserver", "etcd"]
        .into_iter()
        .map(|name| {
            let path = std::path::Path::new(&state).join(format!("{name}.pid"));
            let pid = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .trim()
                .parse()?;
            Ok((name, pid))
        })
        .collect()
}

fn cpu_snapshot(processes: &[(&str, u32)]) -> Result<Vec<f64>> {
    processes.iter().map(|(_, pid)| cpu_seconds(*pid)).collect()
}

/// CPU seconds each process used since `before`, for printing.
fn cpu_report(processes: &[(&str, u32)], before: &[f64]) -> Result<Vec<String>> {
    processes
        .iter()
        .zip(before)
        .map(|((name, pid), before)| Ok(format!("{name} {:.1} s", cpu_seconds(*pid)? - before)))
        .collect()
}

async fn managed_count(secrets: &kube::Api<Secret>) -> Result<usize> {
    let list = secrets
        .list_metadata(&ListParams::default().labels(MANAGED))
        .await?;
    Ok(list.items.len())
}

/// When each managed Secret first appeared, as one watch saw it. Polling instead would both
/// load the API server being measured (an earlier version of this benchmark listed 20,000
/// Secrets every 50 ms, which cost more CPU than the operator's own requests) and round
/// every latency up to the polling interval.
struct Arrivals {
    seen: watch::Receiver<Seen>,
    task: tokio::task::JoinHandle<Result<()>>,
}

#[derive(Default)]
struct Seen {
    /// The watch has listed what already exists: later arrivals are timed as they happen.
    listed: bool,
    at: HashMap<String, Instant>,
}

impl Arrivals {
    async fn start(secrets: kube::Api<PartialObjectMeta<Secret>>) -> Result<Arrivals> {
        let (sender, mut seen) = watch::channel(Seen::default());
        let task = tokio::spawn(async move {
            let events = watcher::watcher(secrets, watcher::Config::default().labels(MANAGED));
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.try_next().await? {
                let now = Instant::now();
                sender.send_modify(|seen| match event {
                    watcher::Event::InitApply(object) | watcher::Event::Apply(object) => {
                        seen.at.entry(object.name_any()).or_insert(now);
                    }
                    watcher::Event::InitDone => seen.listed = true,
                    watcher::Event::Init | watcher::Event::Delete(_) => {}
                });
            }
            anyhow::bail!("the watch of managed Secrets ended")
        });
        tokio::time::timeout(Duration::from_secs(30), seen.wait_for(|s| s.listed))
            .await
            .context("the watch of managed Secrets did not start")??;
        Ok(Arrivals { seen, task })
    }

    /// When the Secret `name` first appeared.
    async fn of(&mut self, name: &str) -> Result<Instant> {
        self.until(|seen| seen.at.get(name).copied()).await
    }

    /// When the `count`th Secret appeared.
    async fn all(&mut self, count: usize) -> Result<Instant> {
        self.until(|seen| {
            (seen.at.len() >= count)
                .then(|| seen.at.values().max().copied())
                .flatten()
        })
        .await
    }

    async fn until(&mut self, found: impl Fn(&Seen) -> Option<Instant>) -> Result<Instant> {
        let waiting = self.seen.wait_for(|seen| found(seen).is_some());
        match tokio::time::timeout(Duration::from_secs(600), waiting).await {
            Ok(Ok(seen)) => found(&seen).context("seen, then lost"),
            Ok(Err(_)) if self.task.is_finished() => match (&mut self.task).await? {
                Ok(()) => anyhow::bail!("the watch of managed Secrets ended"),
                Err(error) => Err(error),
            },
            Ok(Err(error)) => Err(error.into()),
            Err(_) => anyhow::bail!("timed out after 600 s waiting for managed Secrets"),
        }
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<()> {
    let ns = TestNamespace::create("bench").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let secrets = ns.api::<Secret>();
    let sealed_api = ns.api::<SealedSecret>();

    // Start-up: the first start generates a key; a restart finds it.
    let started = Instant::now();
    let operator = Operator::start_with_log(&ns.name, &["--leader-election=false"], "info")?;
    operator.wait_ready().await?;
    let first_ready = started.elapsed();
    drop(operator);
    let started = Instant::now();
    let operator = Operator::start_with_log(&ns.name, &["--leader-election=false"], "info")?;
    operator.wait_ready().await?;
    let ready = started.elapsed();
    let pid = operator.pid();
    let keys: serde_json::Value =
        serde_json::from_str(&operator.get(operator.http_port, "/v1/keys").await?.1)?;
    let recipient: SealRecipient = keys["recipient"]
        .as_str()
        .context("no recipient")?
        .parse()?;

    // 10,000 unrelated Secrets, which the operator must not cache.
    let unrelated_start = Instant::now();
    futures::stream::iter(0..MANY)
        .map(|i| {
            let secrets = secrets.clone();
            async move {
                let s: Secret = serde_json::from_value(serde_json::json!({"metadata": {"name": format!("unrelated-{i}")}, "stringData": {"k": "v"}}))?;
                secrets.create(&PostParams::default(), &s).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    eprintln!(
        "created {MANY} unrelated Secrets in {:.1?}",
        unrelated_start.elapsed()
    );

    // Latency: one at a time, apply then wait for the watch to show the Secret.
    let mut arrivals = Arrivals::start(ns.api()).await?;
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let name = format!("latency-{i}");
        let object = sealed(&ns.name, &name, &recipient)?;
        let start = Instant::now();
        sealed_api.create(&PostParams::default(), &object).await?;
        latencies.push(arrivals.of(&name).await? - start);
    }
    latencies.sort();

    // Throughput: 10,000 SealedSecrets applied as fast as the API server takes them.
    let objects = (0..MANY)
        .map(|i| sealed(&ns.name, &format!("many-{i}"), &recipient))
        .collect::<Result<Vec<_>>>()?;
    let mut processes = cluster_pids()?;
    processes.push(("seal-operator", pid));
    let expected = MANY + LATENCY_SAMPLES;
    let cpu_before = cpu_snapshot(&processes)?;
    let start = Instant::now();
    futures::stream::iter(objects)
        .map(|object| {
            let api = sealed_api.clone();
            async move {
                api.create(&PostParams::default(), &object)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let applied = start.elapsed();
    let converged = arrivals.all(expected).await? - start;
    drop(arrivals);
    let cpu_used = cpu_report(&processes, &cpu_before)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_kib(pid, "VmRSS:")?;
    let hwm = rss_kib(pid, "VmHWM:")?;

    println!("seal-operator on kube-apiserver v1.20.2 (local, loopback):");
    println!("  start to ready (first start, generates a key): {first_ready:.0?}");
    println!("  start to ready (restart, key exists):          {ready:.0?}   (target <= 1 s)");
    println!(
        "  apply -> Secret exists, {LATENCY_SAMPLES} samples:         p50 {:.1?}  p99 {:.1?}  max {:.1?}   (target p99 <= 200 ms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    println!(
        "  {MANY} SealedSecrets: all applied in {applied:.1?}, all Secrets present after {converged:.1?}   (target <= 60 s)"
    );
    println!(
        "    CPU used meanwhile ({} cores): {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_used.join(", ")
    );
    println!(
        "  RSS with {} SealedSecrets + {MANY} unrelated Secrets: {:.1} MiB (peak {:.1} MiB)   (target <= 40 MB)",
        expected,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    drop(operator);

    // Catch-up: the operator was down while all 10,000 Secrets went away; with no load
    // generator competing for the CPU, this is the operator and the API server alone.
    secrets
        .delete_collection(
            &kube::api::DeleteParams::default(),
            &ListParams::default().labels(MANAGED),
        )
        .await?;
    eventually(
        "the managed Secrets gone",
        Duration::from_secs(300),
        || async { Ok((managed_count(&secrets).await? == 0).then_some(())) },
    )
    .await?;
    let mut arrivals = Arrivals::start(ns.api()).await?;
    let start = Instant::now();
    let operator = Operator::start_with_log(&ns.name, &["--leader-election=false"], "info")?;
    processes.pop();
    processes.push(("seal-operator", operator.pid()));
    let cpu_before = cpu_snapshot(&processes)?;
    let caught_up = arrivals.all(expected).await? - start;
    let cpu_used = cpu_report(&processes, &cpu_before)?;
    let rss = rss_kib(operator.pid(), "VmRSS:")?;
    println!(
        "  operator started with {expected} SealedSecrets and no Secrets: all Secrets present after {caught_up:.1?}   (target <= 60 s)"
    );
    println!("    CPU used meanwhile: {}", cpu_used.join(", "));
    println!("    RSS then: {:.1} MiB", rss as f64 / 1024.0);
    drop(operator);

    // This API server has no namespace controller: without this, the objects would stay in
    // etcd and the watch cache and slow every later run.
    let everything = kube::api::DeleteParams::default();
    let all = ListParams::default();
    sealed_api.delete_collection(&everything, &all).await?;
    secrets.delete_collection(&everything, &all).await?;
    ns.delete().await
}
