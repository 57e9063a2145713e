//! When a new sealing key is due, the one-sealing-key rule, and the leader's loop that makes
//! keys and publishes them.
//!
//! A rotation request is an identity, not a time: the ConfigMap's annotation holds an opaque
//! request id, and the key made for it records that id. A request is done once any key
//! answers it, so no clock (the requester's or the leader's) can make the leader generate a
//! key on every tick. Exactly one key seals, the newest active one by creation: every pass
//! of the leader marks any other active key decrypt-only, whether it was left active by a
//! rotation cut short or restored from a backup.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use seal_shared::keys::KeyId;
use tokio::sync::watch;

use crate::backup::{self, BackupFailure};
use crate::duties::LeaderDuties;
use crate::keys::{self, KeyInfo, KeySet, KeyState};
use crate::labels::{PUBLIC_KEYS_CONFIGMAP, ROTATE_REQUESTED};
use crate::lease::Leadership;
use crate::publish;

/// Why the leader should make a key now, if it should.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// No key seals: none exists, or none is active.
    FirstKey,
    PeriodElapsed,
    /// This rotation request has no key answering it yet.
    Requested(String),
}

impl Due {
    /// The Event reason and note for the key `id` made for this reason.
    fn event(&self, id: KeyId) -> (&'static str, String) {
        match self {
            Due::FirstKey => (
                "KeyGenerated",
                format!("generated the sealing key {id}: no key was sealing"),
            ),
            Due::PeriodElapsed => (
                "KeyRotated",
                format!(
                    "rotation period elapsed: new sealing key {id}; older keys stay for decrypting"
                ),
            ),
            Due::Requested(request) => (
                "KeyRotated",
                format!(
                    "rotation request {request}: new sealing key {id}; older keys stay for decrypting"
                ),
            ),
        }
    }

    /// The request this key answers, recorded on it.
    fn answers(&self) -> Option<&str> {
        match self {
            Due::Requested(request) => Some(request),
            _ => None,
        }
    }
}

/// Whether a request still waits for its key. Any key that records the request answers it.
/// A request written by an older `seal rotate` is a time; one no newer than the sealing key
/// was answered before keys recorded requests.
fn pending(set: &KeySet, current: &KeyInfo, request: &str) -> bool {
    let answered = set
        .infos
        .iter()
        .any(|k| k.answers.as_deref() == Some(request));
    let older_time = request
        .parse::<Timestamp>()
        .is_ok_and(|at| at <= current.created);
    !answered && !older_time
}

/// Decides whether a new key is due. `period` zero disables periodic rotation.
pub fn due(set: &KeySet, now: Timestamp, period: Duration, request: Option<&str>) -> Option<Due> {
    let Some(current) = set.current() else {
        return Some(Due::FirstKey);
    };
    if let Some(request) = request.map(str::trim).filter(|r| !r.is_empty())
        && pending(set, current, request)
    {
        return Some(Due::Requested(request.to_owned()));
    }
    let age = now.duration_since(current.created);
    (!period.is_zero()
        && age >= jiff::SignedDuration::try_from(period).unwrap_or(jiff::SignedDuration::MAX))
    .then_some(Due::PeriodElapsed)
}

/// How long to wait before retrying a step that failed on the API: from half a second,
/// doubling, never longer than the tick. Nothing else may wake the loop once the API server
/// is back (a ConfigMap not yet written has no watch event to send), so waiting a whole tick
/// would leave a new cluster without published keys for that long.
fn next_retry(last: Option<Duration>, tick: Duration) -> Duration {
    last.map_or(Duration::from_millis(500), |d| d.saturating_mul(2))
        .min(tick)
}

/// The active keys that must become decrypt-only: all but the sealing key.
pub fn surplus_active(set: &KeySet) -> Vec<&KeyInfo> {
    let current = set.current().map(|k| k.id);
    set.infos
        .iter()
        .filter(|k| k.state == KeyState::Active && Some(k.id) != current)
        .collect()
}

/// Why a step of the leader's duties failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Backup(BackupFailure),
}

/// What was last published, and when.
struct Published {
    keys: String,
    counts: String,
    at: Instant,
}

/// Counts alone change the ConfigMap at most this often: during a full pass over thousands
/// of SealedSecrets they change all the time, and each write wakes every reader.
const COUNTS_EVERY: Duration = Duration::from_secs(10);

impl Published {
    /// Whether the ConfigMap should be written now: any change to the keys at once, a change
    /// of counts alone at most every [`COUNTS_EVERY`].
    fn due(last: Option<&Published>, keys: &str, counts: &str, now: Instant) -> bool {
        match last {
            None => true,
            Some(last) => {
                last.keys != keys
                    || (last.counts != counts && now.duration_since(last.at) >= COUNTS_EVERY)
            }
        }
    }
}

impl LeaderDuties {
    /// Runs until `shutdown` fires: while leading, keeps exactly one sealing key, rotates it
    /// when due and keeps the public-key ConfigMap in step with the keys. The ConfigMap is
    /// watched, so a rotation request is answered at once. A step under way when shutdown
    /// comes finishes first.
    pub async fn run(self, leading: Leadership, mut shutdown: watch::Receiver<bool>) {
        let mut synced = self.keys.subscribe_synced();
        tokio::select! {
            _ = synced.wait_for(|s| *s) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let mut changes = self.keys.subscribe_changes();
        let mut transitions = leading.subscribe();
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let only_ours =
            watcher::Config::default().fields(&format!("metadata.name={PUBLIC_KEYS_CONFIGMAP}"));
        let mut requests = watcher::watcher(maps, only_ours)
            .default_backoff()
            .touched_objects()
            .boxed();
        let tick = if self.period.is_zero() {
            Duration::from_secs(10)
        } else {
            (self.period / 4).clamp(Duration::from_millis(200), Duration::from_secs(10))
        };
        let mut published: Option<Published> = None;
        let mut backup_failing: Option<String> = None;
        let mut retry: Option<Duration> = None;
        loop {
            transitions.borrow_and_update();
            if leading.is_leading() {
                match self.step(&leading, &mut published).await {
                    Ok(()) => retry = None,
                    Err(Failure::Backup(error)) => {
                        retry = None;
                        self.backup_failed(&error, &mut backup_failing).await
                    }
                    Err(Failure::Api(error)) => {
                        retry = Some(next_retry(retry, tick));
                        tracing::warn!(%error, "leader duties failed; retrying");
                    }
                }
            } else {
                published = None;
                retry = None;
            }
            // A retired key due for deletion before the next tick is deleted on time.
            let wake = crate::retire::next_deletion(
                &self.keys.snapshot(),
                self.retire_grace,
                Timestamp::now(),
            )
            .map_or(tick, |due| due.clamp(Duration::from_millis(100), tick))
            .min(retry.unwrap_or(tick));
            tokio::select! {
                _ = tokio::time::sleep(wake) => {}
                _ = changes.changed() => {}
                _ = requests.next() => {}
                _ = crate::lease::changed(&mut transitions) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    /// Says once per distinct failure that the backup is failing (a Warning Event on the
    /// public-key ConfigMap), and every time in the log and the metrics.
    async fn backup_failed(&self, error: &BackupFailure, last: &mut Option<String>) {
        let message = error.to_string();
        tracing::warn!(error = %message, "key backup failed; the newest key stays unpublished until it is backed up");
        self.metrics.key_backup_failures.inc();
        if last.as_deref() != Some(message.as_str()) {
            self.audit
                .on_public_keys(
                    true,
                    "KeyBackupFailed",
                    format!("{message}; keys without a backup are not published"),
                )
                .await;
            *last = Some(message);
        }
    }

    async fn step(
        &self,
        leading: &Leadership,
        published: &mut Option<Published>,
    ) -> Result<(), Failure> {
        let set = self.keys.snapshot();
        let map = self.public_keys_map().await?;
        let request = map
            .as_ref()
            .and_then(|m| m.annotations().get(ROTATE_REQUESTED).cloned());
        // Each write below happens only while the claim still holds.
        if !leading.is_leading() {
            return Ok(());
        }
        if let Some(reason) = due(&set, Timestamp::now(), self.period, request.as_deref()) {
            let info = keys::create_key(&self.client, &self.namespace, reason.answers()).await?;
            tracing::info!(key_id = %info.id, reason = ?reason, "generated a new sealing key");
            let (event_reason, note) = reason.event(info.id);
            self.audit.key_generated(&info, event_reason, note).await;
            self.metrics.last_rotation.set(info.created.as_second());
            // The watch delivers the new Secret; the next step retires the old key and
            // publishes once it is in the set.
            return Ok(());
        }
        let surplus = surplus_active(&set);
        for old in &surplus {
            if !leading.is_leading() {
                return Ok(());
            }
            keys::mark_decrypt_only(&self.client, &self.namespace, &old.secret_name).await?;
            tracing::info!(key_id = %old.id, "only the newest active key seals; marked decrypt-only");
        }
        if !surplus.is_empty() {
            // Publish once the watch shows the repaired states.
            return Ok(());
        }
        // As above: a key written here is published once the watch shows it.
        let answered = self
            .answer_key_requests(leading, &set, map.as_ref())
            .await?;
        let retired = self.retire_due(leading, &set).await?;
        if answered || retired {
            return Ok(());
        }
        if !self.backup_recipients.is_empty() && leading.is_leading() {
            let written =
                backup::ensure(&self.client, &self.namespace, &set, &self.backup_recipients)
                    .await
                    .map_err(Failure::Backup)?;
            if written > 0 {
                tracing::info!(entries = written, "keys backed up");
            }
            self.metrics
                .keys_backed_up_at
                .set(jiff::Timestamp::now().as_second());
        }
        let uses = self.ledger.key_uses();
        let (keys, counts) = publish::fingerprint(&set, &uses);
        let now = Instant::now();
        if Published::due(published.as_ref(), &keys, &counts, now) && leading.is_leading() {
            publish::apply(&self.client, &self.namespace, &set, &uses).await?;
            *published = Some(Published {
                keys,
                counts,
                at: now,
            });
            self.published.store(true, Ordering::Release);
        }
        Ok(())
    }

    async fn public_keys_map(&self) -> kube::Result<Option<ConfigMap>> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        api.get_opt(PUBLIC_KEYS_CONFIGMAP).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_step_is_retried_soon_then_less_often_never_beyond_the_tick() {
        let tick = Duration::from_secs(10);
        let mut waits = Vec::new();
        let mut last = None;
        for _ in 0..7 {
            let next = next_retry(last, tick);
            waits.push(next.as_millis());
            last = Some(next);
        }
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 10000, 10000]);
        assert_eq!(
            next_retry(None, Duration::from_millis(200)),
            Duration::from_millis(200)
        );
    }

    fn key(id: &str, created: &str, state: KeyState, answers: Option<&str>) -> KeyInfo {
        KeyInfo {
            id: id.parse().expect("a key id"),
            recipient: "r".into(),
            created: created.parse().expect("a time"),
            state,
            secret_name: format!("seal-key-{id}"),
            answers: answers.map(Into::into),
            retired_at: None,
            delete_after: None,
            uid: None,
            version: None,
        }
    }

    fn set(infos: Vec<KeyInfo>) -> KeySet {
        let mut infos = infos;
        infos.sort_by_key(|k| k.created);
        KeySet {
            ring: Default::default(),
            infos,
        }
    }

    const A: &str = "0c87a417f764bcf7";
    const B: &str = "1d98b528a875cd08";
    const C: &str = "2ea9c639b986de19";

    #[test]
    fn first_key_and_period() {
        let now: Timestamp = "2026-01-31T00:00:00Z".parse().expect("a time");
        let day = Duration::from_secs(86_400);
        assert_eq!(due(&KeySet::default(), now, day, None), Some(Due::FirstKey));
        let fresh = set(vec![key(A, "2026-01-30T12:00:00Z", KeyState::Active, None)]);
        assert_eq!(due(&fresh, now, day, None), None);
        assert_eq!(due(&fresh, now, Duration::ZERO, None), None);
        let old = set(vec![key(A, "2026-01-29T00:00:00Z", KeyState::Active, None)]);
        assert_eq!(due(&old, now, day, None), Some(Due::PeriodElapsed));
        assert_eq!(
            due(&old, now, Duration::ZERO, None),
            None,
            "period 0 disables rotation"
        );
        // Only decrypt-only keys left: nothing seals, so a key is due.
        let retired = set(vec![key(
            A,
            "2026-01-30T12:00:00Z",
            KeyState::DecryptOnly,
            None,
        )]);
        assert_eq!(due(&retired, now, day, None), Some(Due::FirstKey));
    }

    #[test]
    fn a_request_is_answered_once_whatever_the_clocks_say() {
        let now: Timestamp = "2026-01-31T00:00:00Z".parse().expect("a time");
        let keys = set(vec![key(A, "2026-01-30T12:00:00Z", KeyState::Active, None)]);
        assert_eq!(
            due(&keys, now, Duration::ZERO, Some("req-1")),
            Some(Due::Requested("req-1".into()))
        );
        // The key made for it answers it, even if the leader's clock lags the requester's.
        let answered = set(vec![
            key(A, "2026-01-30T12:00:00Z", KeyState::DecryptOnly, None),
            key(B, "2026-01-30T12:00:01Z", KeyState::Active, Some("req-1")),
        ]);
        assert_eq!(due(&answered, now, Duration::ZERO, Some("req-1")), None);
        // A request that is a time far in the future (a client clock ahead) is answered once.
        let ahead = "2030-01-01T00:00:00Z";
        assert!(due(&keys, now, Duration::ZERO, Some(ahead)).is_some());
        let once = set(vec![
            key(A, "2026-01-30T12:00:00Z", KeyState::DecryptOnly, None),
            key(B, "2026-01-30T12:00:01Z", KeyState::Active, Some(ahead)),
        ]);
        assert_eq!(due(&once, now, Duration::ZERO, Some(ahead)), None);
        // An old-style request no newer than the sealing key was answered before.
        assert_eq!(
            due(&keys, now, Duration::ZERO, Some("2026-01-30T11:00:00Z")),
            None
        );
        assert_eq!(due(&keys, now, Duration::ZERO, Some("  ")), None);
    }

    #[test]
    fn exactly_one_key_seals_the_newest_active_one() {
        // A rotation cut short, and an older key restored from a backup: both left active.
        let keys = set(vec![
            key(A, "2026-01-01T00:00:00Z", KeyState::Active, None),
            key(B, "2026-01-10T00:00:00Z", KeyState::DecryptOnly, None),
            key(C, "2026-01-20T00:00:00Z", KeyState::Active, None),
        ]);
        assert_eq!(keys.current().map(|k| k.id.to_string()), Some(C.into()));
        let surplus: Vec<String> = surplus_active(&keys)
            .iter()
            .map(|k| k.id.to_string())
            .collect();
        assert_eq!(surplus, [A]);
        // The newest key decrypt-only (a newer one deleted): an older active key does not
        // take over silently; the newest active still seals.
        let keys = set(vec![
            key(A, "2026-01-01T00:00:00Z", KeyState::Active, None),
            key(B, "2026-01-10T00:00:00Z", KeyState::DecryptOnly, None),
        ]);
        assert_eq!(keys.current().map(|k| k.id.to_string()), Some(A.into()));
        assert!(surplus_active(&keys).is_empty());
    }
}
