//! What every reconcile shares: the client, the keys, the audit trail, metrics, whether this
//! replica leads, and what is remembered per SealedSecret.

use std::sync::Arc;

use kube::Client;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use seal_shared::keys::KeyId;
use seal_shared::sealed_secret::SealedSecret;

use crate::audit::Audit;
use crate::keys::{KeySet, Keys};
use crate::lease::Leadership;
use crate::ledger::Ledger;
use crate::metrics::Metrics;

pub struct Context {
    pub client: Client,
    pub keys: Arc<Keys>,
    pub audit: Arc<Audit>,
    pub metrics: Arc<Metrics>,
    /// Whether this replica holds the Lease. Standby replicas keep their watches warm but
    /// write nothing, so there is one writer and one set of Events.
    leading: Leadership,
    /// Back-off, key use and whether a pass is due, per SealedSecret.
    pub ledger: Arc<Ledger>,
    /// The operator's own namespace, where its key Secrets live.
    pub key_namespace: String,
}

impl Context {
    pub fn new(
        client: Client,
        keys: Arc<Keys>,
        audit: Arc<Audit>,
        metrics: Arc<Metrics>,
        leading: Leadership,
        key_namespace: &str,
        ledger: Arc<Ledger>,
    ) -> Self {
        Context {
            client,
            keys,
            audit,
            metrics,
            leading,
            ledger,
            key_namespace: key_namespace.to_owned(),
        }
    }

    /// Publishes how many SealedSecrets each key opened (`seal_sealed_secrets_by_key`),
    /// zero for a held key that opened none.
    pub fn publish_key_uses(&self, keys: &KeySet) {
        let uses = self.ledger.key_uses();
        for info in &keys.infos {
            let count = uses.get(&info.id).copied().unwrap_or(0);
            self.metrics.key_uses(info.id, count);
        }
    }

    /// Fires when this replica starts or stops leading.
    pub fn leadership_changes(&self) -> tokio::sync::watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Checked before every write: false as soon as this replica's claim lapses.
    pub fn is_leading(&self) -> bool {
        self.leading.is_leading()
    }

    /// Records whether a SealedSecret's items were opened with a non-current key, and
    /// publishes how many such SealedSecrets still exist.
    pub fn note_key_use(&self, keys: &KeySet, namespace: &str, name: &str, key_ids: &[KeyId]) {
        let current = keys.current().map(|k| k.id);
        let stale = key_ids.iter().any(|id| Some(*id) != current);
        let count = self.ledger.note_key_use(namespace, name, stale);
        self.metrics.stale_key_sealed.set(count as i64);
    }

    /// A deleted SealedSecret is never reconciled again: forget what was kept about it.
    /// After a relist, deletions missed while disconnected are found against the cache.
    pub(crate) fn forget_deleted(
        &self,
        event: &watcher::Event<CachedSealedSecret>,
        cache: &Store<CachedSealedSecret>,
    ) {
        let stale = match event {
            watcher::Event::Delete(object) => {
                // A deleted SealedSecret leaves the seal_sealed_secrets gauges.
                self.metrics.sealed_secrets.forget(&object.metadata);
                self.ledger.forget(&object.metadata)
            }
            watcher::Event::InitDone => {
                // As above, for deletions missed while the watch was down.
                let listed = cache.state();
                self.metrics
                    .sealed_secrets
                    .retain(listed.iter().map(|o| &o.metadata));
                self.ledger
                    .retain(|ns, name| cache.get(&ObjectRef::new(name).within(ns)).is_some())
            }
            _ => return,
        };
        self.metrics.stale_key_sealed.set(stale as i64);
        self.publish_key_uses(&self.keys.snapshot());
    }
}

/// The cached form of a SealedSecret: metadata only. The reconciler reads the whole object
/// from the API server's watch cache, so the operator's memory does not grow with the size
/// of the sealed values.
pub type CachedSealedSecret = PartialObjectMeta<SealedSecret>;
