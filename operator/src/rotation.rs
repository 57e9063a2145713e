//! When a new sealing key is due, and the leader's loop that makes it and publishes keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;

use crate::audit::Audit;
use seal_shared::keys::KeyId;

use crate::keys::{self, KeySet, Keys};
use crate::labels::{PUBLIC_KEYS_CONFIGMAP, ROTATE_REQUESTED};
use crate::lease::Leadership;
use crate::metrics::Metrics;
use crate::publish;

/// Why the leader should make a key now, if it should.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    FirstKey,
    PeriodElapsed,
    Requested,
}

impl Due {
    /// The Event reason and note for the key `id` made for this reason.
    fn event(&self, id: KeyId) -> (&'static str, String) {
        match self {
            Due::FirstKey => (
                "KeyGenerated",
                format!("generated the first sealing key {id}"),
            ),
            Due::PeriodElapsed => (
                "KeyRotated",
                format!(
                    "rotation period elapsed: new sealing key {id}; older keys stay for decrypting"
                ),
            ),
            Due::Requested => (
                "KeyRotated",
                format!("rotation requested: new sealing key {id}; older keys stay for decrypting"),
            ),
        }
    }
}

/// Decides whether a new key is due. `period` zero disables periodic rotation.
pub fn due(
    set: &KeySet,
    now: Timestamp,
    period: Duration,
    requested: Option<Timestamp>,
) -> Option<Due> {
    let Some(current) = set.current() else {
        return Some(Due::FirstKey);
    };
    if requested.is_some_and(|at| at > current.created) {
        return Some(Due::Requested);
    }
    let age = now.duration_since(current.created);
    (!period.is_zero()
        && age >= jiff::SignedDuration::try_from(period).unwrap_or(jiff::SignedDuration::MAX))
    .then_some(Due::PeriodElapsed)
}

pub struct LeaderDuties {
    pub client: Client,
    pub namespace: String,
    pub keys: Arc<Keys>,
    pub period: Duration,
    pub audit: Arc<Audit>,
    pub metrics: Arc<Metrics>,
    /// Set once the public-key ConfigMap has been written (readiness waits for it).
    pub published: Arc<AtomicBool>,
}

impl LeaderDuties {
    /// Runs until `shutdown` fires: while leading, keeps a sealing key, rotates it when due
    /// and keeps the public-key ConfigMap in step with the keys. A step under way when
    /// shutdown comes finishes first.
    pub async fn run(self, leading: Leadership, mut shutdown: watch::Receiver<bool>) {
        let mut synced = self.keys.subscribe_synced();
        tokio::select! {
            _ = synced.wait_for(|s| *s) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let mut changes = self.keys.subscribe_changes();
        let mut transitions = leading.subscribe();
        let tick = if self.period.is_zero() {
            Duration::from_secs(10)
        } else {
            (self.period / 4).clamp(Duration::from_millis(200), Duration::from_secs(10))
        };
        let mut published: Option<String> = None;
        loop {
            transitions.borrow_and_update();
            if leading.is_leading() {
                if let Err(error) = self.step(&leading, &mut published).await {
                    tracing::warn!(%error, "leader duties failed; retrying");
                }
            } else {
                published = None;
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = changes.changed() => {}
                _ = crate::lease::changed(&mut transitions) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    async fn step(&self, leading: &Leadership, published: &mut Option<String>) -> kube::Result<()> {
        let set = self.keys.snapshot();
        let requested = self.rotation_request().await?;
        // Each write below happens only while the claim still holds.
        if !leading.is_leading() {
            return Ok(());
        }
        if let Some(reason) = due(&set, Timestamp::now(), self.period, requested) {
            let info = keys::create_key(&self.client, &self.namespace).await?;
            for old in set
                .infos
                .iter()
                .filter(|k| k.state == keys::KeyState::Active)
            {
                keys::mark_decrypt_only(&self.client, &self.namespace, &old.secret_name).await?;
            }
            tracing::info!(key_id = %info.id, reason = ?reason, "generated a new sealing key");
            let (event_reason, note) = reason.event(info.id);
            self.audit.key_generated(&info, event_reason, note).await;
            self.metrics.last_rotation.set(info.created.as_second());
            // The watch delivers the new Secret; publish once it is in the set.
            return Ok(());
        }
        let fingerprint = publish::fingerprint(&set);
        if published.as_deref() != Some(fingerprint.as_str()) && leading.is_leading() {
            publish::apply(&self.client, &self.namespace, &set).await?;
            *published = Some(fingerprint);
            self.published.store(true, Ordering::Release);
        }
        Ok(())
    }

    async fn rotation_request(&self) -> kube::Result<Option<Timestamp>> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let map = api.get_opt(PUBLIC_KEYS_CONFIGMAP).await?;
        Ok(map.and_then(|m| {
            m.annotations()
                .get(ROTATE_REQUESTED)
                .and_then(|t| t.parse().ok())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyInfo, KeyState};

    fn set_created_at(created: Timestamp) -> KeySet {
        KeySet {
            ring: Default::default(),
            infos: vec![KeyInfo {
                id: "0c87a417f764bcf7".parse().expect("a key id"),
                recipient: "r".into(),
                created,
                state: KeyState::Active,
                secret_name: "s".into(),
            }],
        }
    }

    #[test]
    fn first_key_period_and_requests() {
        let now: Timestamp = "2026-01-31T00:00:00Z".parse().unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(due(&KeySet::default(), now, day, None), Some(Due::FirstKey));
        let fresh = set_created_at("2026-01-30T12:00:00Z".parse().unwrap());
        assert_eq!(due(&fresh, now, day, None), None);
        assert_eq!(due(&fresh, now, Duration::ZERO, None), None);
        let old = set_created_at("2026-01-29T00:00:00Z".parse().unwrap());
        assert_eq!(due(&old, now, day, None), Some(Due::PeriodElapsed));
        assert_eq!(
            due(&old, now, Duration::ZERO, None),
            None,
            "period 0 disables rotation"
        );
        assert_eq!(
            due(
                &fresh,
                now,
                day,
                Some("2026-01-30T13:00:00Z".parse().unwrap())
            ),
            Some(Due::Requested)
        );
        assert_eq!(
            due(
                &fresh,
                now,
                day,
                Some("2026-01-30T11:00:00Z".parse().unwrap())
            ),
            None,
            "a request older than the key is spent"
        );
    }
}
