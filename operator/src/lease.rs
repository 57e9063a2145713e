//! Leadership through a coordination.k8s.io/v1 Lease, so that one replica writes at a time.
//!
//! Three rules make it safe:
//! - Every write to the Lease is an update guarded by the resourceVersion this replica read,
//!   so of two replicas acting on the same version, one fails; nothing clears or takes a
//!   Lease blindly.
//! - A replica trusts only its own writes. A Lease naming this replica's identity that it did
//!   not write itself in this process (an earlier incarnation with the same pod name) is
//!   someone else's, and must expire before it is taken.
//! - Expiry is judged on this replica's own monotonic clock, never on timestamps written by
//!   other machines: someone else's claim has expired once its resourceVersion has not
//!   changed for a whole lease duration since this replica first saw it. This replica's own
//!   claim ends, for itself, a third of a duration earlier than anyone else could take it
//!   (counted from when its write was sent), so it stops writing before its claim can lapse.
//!
//! `decide` is the pure part; `run` carries it out against the API server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

pub const LEASE_NAME: &str = "seal-operator";

/// How long a claim lasts without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);

/// Whether this replica leads, as every writer checks it: `is_leading` is false as soon as
/// the claim's local deadline passes, even if the Lease task has not noticed yet.
#[derive(Clone)]
pub struct Leadership {
    valid_until: Arc<Mutex<Option<Instant>>>,
    /// False when election is off: then the flag alone says leading.
    bounded: bool,
    transitions: watch::Receiver<bool>,
}

impl Leadership {
    /// Leads for the life of the process: leader election is off.
    pub fn always() -> (Leadership, watch::Sender<bool>) {
        let (sender, transitions) = watch::channel(true);
        let leadership = Leadership {
            valid_until: Arc::new(Mutex::new(None)),
            bounded: false,
            transitions,
        };
        (leadership, sender)
    }

    pub fn is_leading(&self) -> bool {
        if !self.bounded {
            return *self.transitions.borrow();
        }
        self.lock().is_some_and(|until| Instant::now() < until)
    }

    /// A channel that changes when this replica starts or stops leading (not on renewals).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.transitions.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.valid_until.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Waits until leadership changes. A closed channel never changes again, so this then waits
/// forever instead of returning at once, which would turn the caller's loop into a busy one.
pub async fn changed(leading: &mut watch::Receiver<bool>) {
    if leading.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What this replica knows between two looks at the Lease.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Memory {
    /// The resourceVersion of this replica's last successful write.
    pub written: Option<String>,
    /// Someone else's version, and when this replica first saw it.
    pub observed: Option<(String, Instant)>,
}

/// The parts of a Lease that a decision reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub version: String,
    pub holder: Option<String>,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The current version is this replica's own write: renew it.
    Renew,
    /// Nobody holds it, or the holder's claim has expired: take it.
    Acquire,
    /// Someone else holds it: look again later.
    Wait,
}

/// Decides what to do with the Lease as it is now, and updates what is remembered.
pub fn decide(seen: &Seen, memory: &mut Memory, now: Instant) -> Decision {
    if memory.written.as_deref() == Some(seen.version.as_str()) {
        return Decision::Renew;
    }
    memory.written = None;
    if seen.holder.as_deref().is_none_or(str::is_empty) {
        return Decision::Acquire;
    }
    let first_seen = match &memory.observed {
        Some((version, at)) if *version == seen.version => *at,
        _ => {
            memory.observed = Some((seen.version.clone(), now));
            now
        }
    };
    if now.duration_since(first_seen) >= seen.duration {
        Decision::Acquire
    } else {
        Decision::Wait
    }
}

/// How long this replica may act on a claim whose write was sent at `sent`.
pub fn own_deadline(sent: Instant) -> Instant {
    sent + LEASE_DURATION - LEASE_DURATION / 3
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("the Lease {namespace}/{LEASE_NAME} cannot be used: {source}")]
    Forbidden {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

/// One replica's side of the election.
pub struct Elector {
    api: Api<Lease>,
    namespace: String,
    identity: String,
    valid_until: Arc<Mutex<Option<Instant>>>,
    transitions: watch::Sender<bool>,
    memory: Memory,
    metric: crate::metrics::LeaderGauge,
}

impl Elector {
    pub fn new(
        client: Client,
        namespace: &str,
        identity: &str,
        metric: crate::metrics::LeaderGauge,
    ) -> (Elector, Leadership) {
        let (transitions, receiver) = watch::channel(false);
        let valid_until = Arc::new(Mutex::new(None));
        let leadership = Leadership {
            valid_until: valid_until.clone(),
            bounded: true,
            transitions: receiver,
        };
        metric.set(0);
        let elector = Elector {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            identity: identity.to_owned(),
            valid_until,
            transitions,
            memory: Memory::default(),
            metric,
        };
        (elector, leadership)
    }

    fn set_claim(&self, until: Option<Instant>) {
        *self.valid_until.lock().unwrap_or_else(|p| p.into_inner()) = until;
        let leading = until.is_some();
        self.transitions.send_if_modified(|now| {
            let changed = *now != leading;
            *now = leading;
            changed
        });
        self.metric.set(i64::from(leading));
    }

    fn still_valid(&self) -> Option<Instant> {
        let until = *self.valid_until.lock().unwrap_or_else(|p| p.into_inner());
        until.filter(|until| Instant::now() < *until)
    }

    /// Runs the election until `release` fires, then gives the Lease up if this replica holds
    /// it, so a standby takes over at once. Fails only when the Lease cannot be used at all
    /// (RBAC): the process must then end rather than run without a leader.
    pub async fn run(mut self, mut release: watch::Receiver<bool>) -> Result<(), LeaseError> {
        loop {
            let wait = self.step().await?;
            let deadline = self.still_valid();
            if deadline.is_none() {
                self.set_claim(None);
            }
            let sleep = match deadline {
                // Leading: renew well before the claim ends, and notice its end on time.
                Some(until) => {
                    (LEASE_DURATION / 3).min(until.saturating_duration_since(Instant::now()))
                }
                None => wait,
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = release.wait_for(|r| *r) => break,
            }
        }
        self.vacate().await;
        Ok(())
    }

    /// One look at the Lease; answers how long to wait before the next when not leading.
    async fn step(&mut self) -> Result<Duration, LeaseError> {
        let retry = Duration::from_secs(1);
        let sent = Instant::now();
        let lease = match self.api.get_opt(LEASE_NAME).await {
            Ok(lease) => lease,
            Err(error) => return self.failed(error, retry),
        };
        let Some(lease) = lease else {
            return match self
                .api
                .create(&PostParams::default(), &self.claim(None, 0))
                .await
            {
                Ok(created) => {
                    self.won(created, sent);
                    Ok(retry)
                }
                Err(error) => self.failed(error, retry),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let seen = Seen {
            version: lease.metadata.resource_version.clone().unwrap_or_default(),
            holder: spec.holder_identity.clone(),
            duration: spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(LEASE_DURATION, Duration::from_secs),
        };
        let decision = decide(&seen, &mut self.memory, Instant::now());
        let transitions = spec.lease_transitions.unwrap_or(0);
        let body = match decision {
            Decision::Wait => {
                self.set_claim(None);
                return Ok(retry);
            }
            Decision::Renew => Lease {
                spec: Some(LeaseSpec {
                    renew_time: Some(MicroTime(Timestamp::now())),
                    ..spec
                }),
                ..lease
            },
            Decision::Acquire => {
                // Carries the version just read: a competing write makes this one fail.
                let claim = self.claim(Some(&lease), transitions + 1);
                tracing::info!(previous = ?seen.holder, identity = %self.identity, "taking the Lease");
                claim
            }
        };
        match self
            .api
            .replace(LEASE_NAME, &PostParams::default(), &body)
            .await
        {
            Ok(written) => {
                self.won(written, sent);
                Ok(retry)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                // Someone else wrote first: their claim stands.
                if self.memory.written.take().is_some() {
                    tracing::warn!("lost the Lease to another replica");
                }
                self.set_claim(None);
                Ok(Duration::ZERO)
            }
            Err(error) => self.failed(error, retry),
        }
    }

    fn won(&mut self, lease: Lease, sent: Instant) {
        let was_leading = self.still_valid().is_some();
        self.memory.written = lease.metadata.resource_version;
        self.memory.observed = None;
        self.set_claim(Some(own_deadline(sent)));
        if !was_leading {
            tracing::info!(identity = %self.identity, "leading");
        }
    }

    fn failed(&mut self, error: kube::Error, retry: Duration) -> Result<Duration, LeaseError> {
        if let kube::Error::Api(status) = &error
            && (status.code == 401 || status.code == 403)
        {
            return Err(LeaseError::Forbidden {
                namespace: self.namespace.clone(),
                source: error,
            });
        }
        // The claim, if any, lapses on its own deadline; until then it is still good.
        tracing::warn!(%error, "could not reach the Lease; retrying");
        Ok(retry)
    }

    /// A Lease naming this replica, based on `previous` when there is one.
    fn claim(&self, previous: Option<&Lease>, transitions: i32) -> Lease {
        let now = MicroTime(Timestamp::now());
        let metadata = previous.map_or_else(
            || ObjectMeta {
                name: Some(LEASE_NAME.into()),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            |lease| lease.metadata.clone(),
        );
        Lease {
            metadata,
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: i32::try_from(LEASE_DURATION.as_secs()).ok(),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Gives the Lease up, only if the current version is still this replica's own write.
    async fn vacate(&mut self) {
        self.set_claim(None);
        let Some(version) = self.memory.written.take() else {
            return;
        };
        let Ok(Some(mut lease)) = self.api.get_opt(LEASE_NAME).await else {
            return;
        };
        if lease.metadata.resource_version.as_deref() != Some(version.as_str()) {
            return;
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        match self
            .api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!("released the Lease"),
            Err(error) => {
                tracing::warn!(%error, "could not release the Lease; it expires on its own")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(version: &str, holder: Option<&str>) -> Seen {
        Seen {
            version: version.into(),
            holder: holder.map(Into::into),
            duration: LEASE_DURATION,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_this_replicas_own_write_is_renewed() {
        let now = Instant::now();
        let mut memory = Memory {
            written: Some("5".into()),
            observed: None,
        };
        assert_eq!(
            decide(&seen("5", Some("a")), &mut memory, now),
            Decision::Renew
        );
        // Someone wrote since: the claim is theirs, even under this replica's own name.
        assert_eq!(
            decide(&seen("6", Some("a")), &mut memory, now),
            Decision::Wait
        );
        assert_eq!(memory.written, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_expires_by_this_replicas_clock_only() {
        let start = Instant::now();
        let mut memory = Memory::default();
        let held = seen("9", Some("b"));
        assert_eq!(decide(&held, &mut memory, start), Decision::Wait);
        let almost = start + LEASE_DURATION - Duration::from_millis(1);
        assert_eq!(decide(&held, &mut memory, almost), Decision::Wait);
        // A renewal restarts the count from when it was seen.
        let renewed = seen("10", Some("b"));
        assert_eq!(decide(&renewed, &mut memory, almost), Decision::Wait);
        assert_eq!(
            decide(&renewed, &mut memory, start + LEASE_DURATION),
            Decision::Wait
        );
        assert_eq!(
            decide(&renewed, &mut memory, almost + LEASE_DURATION),
            Decision::Acquire
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_named_after_this_replica_but_not_written_by_it_must_expire_first() {
        let start = Instant::now();
        let mut memory = Memory::default();
        let earlier_self = seen("3", Some("a"));
        assert_eq!(decide(&earlier_self, &mut memory, start), Decision::Wait);
        assert_eq!(
            decide(&earlier_self, &mut memory, start + LEASE_DURATION),
            Decision::Acquire
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lease_is_taken_at_once() {
        let mut memory = Memory::default();
        let now = Instant::now();
        assert_eq!(
            decide(&seen("4", None), &mut memory, now),
            Decision::Acquire
        );
        assert_eq!(
            decide(&seen("4", Some("")), &mut memory, now),
            Decision::Acquire
        );
    }

    #[tokio::test(start_paused = true)]
    async fn this_replica_stops_before_anyone_else_may_start() {
        let sent = Instant::now();
        let deadline = own_deadline(sent);
        // The earliest another replica can take over is a full duration after it first saw
        // the write, which is after the write was sent.
        assert!(deadline + Duration::from_secs(4) < sent + LEASE_DURATION);
    }

    #[tokio::test(start_paused = true)]
    async fn leadership_ends_on_its_deadline_without_the_task() {
        let (transitions, receiver) = watch::channel(true);
        let leadership = Leadership {
            valid_until: Arc::new(Mutex::new(Some(Instant::now() + Duration::from_secs(2)))),
            bounded: true,
            transitions: receiver,
        };
        assert!(leadership.is_leading());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(!leadership.is_leading(), "a lapsed claim still counted");
        drop(transitions);
    }

    #[tokio::test]
    async fn without_election_this_replica_leads_and_waiting_for_a_change_blocks() {
        let (leadership, _sender) = Leadership::always();
        assert!(leadership.is_leading());
        let mut changes = leadership.subscribe();
        let waited = tokio::time::timeout(Duration::from_millis(50), changed(&mut changes)).await;
        assert!(waited.is_err(), "a change was reported where none happened");
    }

    #[tokio::test]
    async fn a_closed_channel_does_not_wake_the_waiter() {
        let (sender, mut leading) = watch::channel(true);
        drop(sender);
        let waited = tokio::time::timeout(Duration::from_millis(50), changed(&mut leading)).await;
        assert!(
            waited.is_err(),
            "waiting on a closed channel returned at once"
        );
    }
}
