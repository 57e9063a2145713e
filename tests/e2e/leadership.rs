//! One leader, always: replicas that stop and start together with the same identities, and
//! leaders killed with SIGKILL, never lead at the same moment. Every replica's `seal_leader`
//! gauge is sampled every 20 ms throughout, and the writers of Events are checked too.

use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use kube::api::{ListParams, PostParams};
use seal_e2e::operator::{LeaderSampler, Operator, seal_secret};
use seal_e2e::{TestNamespace, eventually, wait::install_crd};
use seal_shared::sealed_secret::SealedSecret;

const IDENTITIES: [&str; 3] = ["replica-0", "replica-1", "replica-2"];

fn start_all(ns: &TestNamespace) -> Result<Vec<Operator>> {
    IDENTITIES
        .iter()
        .map(|id| Operator::start(&ns.name, &[&format!("--identity={id}")]))
        .collect()
}

fn follow(sampler: &LeaderSampler, replicas: &[Option<Operator>]) {
    let named: Vec<(&str, &Operator)> = IDENTITIES
        .iter()
        .zip(replicas)
        .filter_map(|(id, op)| op.as_ref().map(|op| (*id, op)))
        .collect();
    sampler.follow(&named);
}

/// Waits until exactly one replica says it leads, and answers which.
async fn one_leader(replicas: &[Option<Operator>], within: Duration) -> Result<usize> {
    eventually("one leader", within, || async {
        let mut leading = Vec::new();
        for (i, op) in replicas.iter().enumerate() {
            if let Some(op) = op
                && op.leads().await.unwrap_or(false)
            {
                leading.push(i);
            }
        }
        Ok((leading.len() == 1).then(|| leading[0]))
    })
    .await
}

async fn holder(ns: &TestNamespace) -> Result<Option<String>> {
    let lease = ns.api::<Lease>().get_opt("seal-operator").await?;
    Ok(lease.and_then(|l| l.spec).and_then(|s| s.holder_identity))
}

#[tokio::test]
async fn replicas_restarted_together_or_killed_never_lead_at_once() -> Result<()> {
    let ns = TestNamespace::create("leadership").await?;
    install_crd(&ns.client, &SealedSecret::crd()).await?;
    let sampler = LeaderSampler::start();
    let mut replicas: Vec<Option<Operator>> = start_all(&ns)?.into_iter().map(Some).collect();
    follow(&sampler, &replicas);
    let first = one_leader(&replicas, Duration::from_secs(30)).await?;
    assert_eq!(holder(&ns).await?.as_deref(), Some(IDENTITIES[first]));

    // A rollout or node restart: every replica gets SIGTERM, then all start again at once
    // under the same names.
    let mut takeovers = Vec::new();
    for _round in 0..3 {
        for op in replicas.iter_mut().flatten() {
            let status = op.terminate(Duration::from_secs(20))?;
            assert!(status.success(), "SIGTERM ended the operator with {status}");
        }
        let started = Instant::now();
        replicas = start_all(&ns)?.into_iter().map(Some).collect();
        follow(&sampler, &replicas);
        one_leader(&replicas, Duration::from_secs(30)).await?;
        takeovers.push(started.elapsed());
        // Let renewals and standby polls run against each other for a while.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

    // SIGKILL of the leader: no release, so a standby must wait the claim out.
    let mut failovers = Vec::new();
    for _round in 0..2 {
        let leader = one_leader(&replicas, Duration::from_secs(30)).await?;
        let killed = Instant::now();
        if let Some(mut op) = replicas[leader].take() {
            op.stop();
        }
        follow(&sampler, &replicas);
        let next = one_leader(&replicas, Duration::from_secs(40)).await?;
        assert_ne!(next, leader);
        failovers.push(killed.elapsed());
        // The killed replica comes back under its old name while the new leader leads.
        replicas[leader] = Some(Operator::start(
            &ns.name,
            &[&format!("--identity={}", IDENTITIES[leader])],
        )?);
        follow(&sampler, &replicas);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

    // Work still happens, written by one replica only.
    let leader = one_leader(&replicas, Duration::from_secs(30)).await?;
    ns.api::<SealedSecret>()
        .create(
            &PostParams::default(),
            &seal_secret(&ns.name, "db", "Opaque", &[("k", "v")])?,
        )
        .await?;
    let secrets = ns.api::<Secret>();
    eventually("the Secret", Duration::from_secs(20), || async {
        Ok(secrets.get_opt("db").await?)
    })
    .await?;
    let samples = sampler.samples();
    eprintln!(
        "leadership: {} samples, {} overlapping (longest {} in a row); takeover after a joint restart {:?}; failover after SIGKILL {:?}",
        samples.taken,
        samples.overlaps.len(),
        samples.longest_overlap,
        takeovers,
        failovers
    );
    assert!(
        samples.overlaps.is_empty(),
        "two replicas led at once in {} samples: {:?}",
        samples.overlaps.len(),
        &samples.overlaps[..samples.overlaps.len().min(5)]
    );
    assert!(samples.taken > 500, "too few samples: {}", samples.taken);
    // The Event follows the Secret's write: wait for it, then check who wrote what.
    let reporters: Vec<String> =
        eventually("the Unsealed Event", Duration::from_secs(20), || async {
            let reporters: Vec<String> = ns
                .api::<k8s_openapi::api::events::v1::Event>()
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("Unsealed"))
                .filter_map(|e| e.reporting_instance)
                .collect();
            Ok((!reporters.is_empty()).then_some(reporters))
        })
        .await?;
    assert_eq!(
        reporters,
        [IDENTITIES[leader]],
        "Unsealed Events by: {reporters:?}"
    );
    let keys = secrets
        .list(&ListParams::default().labels("seal.dev/key=true"))
        .await?
        .items;
    assert_eq!(keys.len(), 1, "restarts and failovers made or lost keys");
    drop(replicas);
    ns.delete().await
}
