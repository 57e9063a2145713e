//! Wires the watches to the reconciler: SealedSecrets, the Secrets they own (by label, not
//! every Secret in the cluster), and a full pass whenever the key set changes.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use seal_shared::sealed_secret::SealedSecret;
use tokio_stream_compat::watch_stream;

use crate::audit::Audit;
use crate::keys::{KeySet, Keys};
use crate::labels::{ADOPT, MANAGED_BY, MANAGED_BY_VALUE};
use crate::lease::Leadership;
use crate::ledger::{Ledger, desired_state};
use crate::metrics::Metrics;
use crate::unseal::{error_policy, reconcile};

/// Trims a SealedSecret's metadata before it enters the cache, which holds every
/// SealedSecret for the life of the process. The reconciler needs from the cache only what
/// names the object, what tells whether it changed, and the adopt annotation; managedFields
/// and kubectl's last-applied copy alone are often most of an object's size.
fn keep_what_reconcile_reads(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.labels = None;
    meta.finalizers = None;
    meta.owner_references = None;
    meta.creation_timestamp = None;
    meta.generate_name = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|key, _| key == ADOPT);
    }
}

/// How many SealedSecrets are reconciled at once.
const RECONCILE_CONCURRENCY: u16 = 48;

pub struct Context {
    pub client: Client,
    pub keys: Arc<Keys>,
    pub audit: Arc<Audit>,
    pub metrics: Arc<Metrics>,
    /// Whether this replica holds the Lease. Standby replicas keep their watches warm but
    /// write nothing, so there is one writer and one set of Events.
    leading: Leadership,
    /// Back-off, key use and whether a pass is due, per SealedSecret.
    pub ledger: Ledger,
}

impl Context {
    pub fn new(
        client: Client,
        keys: Arc<Keys>,
        audit: Arc<Audit>,
        metrics: Arc<Metrics>,
        leading: Leadership,
    ) -> Self {
        Context {
            client,
            keys,
            audit,
            metrics,
            leading,
            ledger: Ledger::default(),
        }
    }

    /// Checked before every write: false as soon as this replica's claim lapses.
    pub fn is_leading(&self) -> bool {
        self.leading.is_leading()
    }

    /// Records whether a SealedSecret's items were opened with a non-current key, and
    /// publishes how many such SealedSecrets still exist.
    pub fn note_key_use(&self, keys: &KeySet, namespace: &str, name: &str, key_ids: &[String]) {
        let current = keys.current().map(|k| k.id.as_str());
        let stale = key_ids.iter().any(|id| Some(id.as_str()) != current);
        let count = self.ledger.note_key_use(namespace, name, stale);
        self.metrics.stale_key_sealed.set(count as i64);
    }

    /// A deleted SealedSecret is never reconciled again: forget what was kept about it.
    /// After a relist, deletions missed while disconnected are found against the cache.
    fn forget_deleted(
        &self,
        event: &watcher::Event<CachedSealedSecret>,
        cache: &Store<CachedSealedSecret>,
    ) {
        let stale = match event {
            watcher::Event::Delete(object) => {
                // metrics hook: a deleted SealedSecret leaves the seal_sealed_secrets gauges.
                self.metrics.sealed_secrets.forget(&object.metadata);
                self.ledger.forget(&object.metadata)
            }
            watcher::Event::InitDone => {
                // metrics hook, as above, for deletions missed while the watch was down.
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
    }
}

/// The cached form of a SealedSecret: metadata only. The reconciler reads the whole object
/// from the API server's watch cache, so the operator's memory does not grow with the size
/// of the sealed values.
pub type CachedSealedSecret = PartialObjectMeta<SealedSecret>;

/// Runs the controller until `shutdown` fires; in-flight reconciles finish first.
pub async fn run(
    ctx: Arc<Context>,
    watch_namespace: Option<&str>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // `PartialObjectMeta` makes these metadata-only requests: no sealed values are cached
    // and no Secret values pass through the operator's watches.
    let (sealed_api, secrets): (Api<CachedSealedSecret>, Api<PartialObjectMeta<Secret>>) =
        match watch_namespace {
            Some(ns) => (
                Api::namespaced(ctx.client.clone(), ns),
                Api::namespaced(ctx.client.clone(), ns),
            ),
            None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
        };
    let owned = watcher::Config::default().labels(&format!("{MANAGED_BY}={MANAGED_BY_VALUE}"));
    // A full pass when keys change (items may now open) and when this replica starts leading
    // (it skipped everything while standing by).
    let key_changes = watch_stream(ctx.keys.subscribe_changes());
    let leadership = watch_stream(ctx.leading.subscribe());
    let triggers = futures::stream::select(key_changes, leadership);
    let (reader, writer) = reflector::store();
    let cache = reader.clone();
    let forgetting = ctx.clone();
    let observing = ctx.clone();
    let sealed = watcher::watcher(sealed_api, watcher::Config::default())
        .default_backoff()
        .modify(|object: &mut CachedSealedSecret| {
            // The kind is known from the type; two strings per object are not worth keeping.
            object.types = None;
            keep_what_reconcile_reads(&mut object.metadata);
        })
        .reflect(writer)
        .inspect_ok(move |event| forgetting.forget_deleted(event, &cache))
        .touched_objects()
        // Our own status writes change neither; without this filter each one would wake
        // the reconciler again.
        .predicate_filter(
            |object: &CachedSealedSecret| Some(desired_state(&object.metadata)),
            Default::default(),
        );
    // Bounded concurrency keeps memory flat when thousands of objects need work at once
    // (start-up, a key change): unbounded, every reconcile's buffers and requests pile up.
    Controller::for_stream(sealed, reader)
        .with_config(controller::Config::default().concurrency(RECONCILE_CONCURRENCY))
        // A Secret wakes the SealedSecret of its own namespace and name, not its owner
        // reference: a Secret whose owner reference someone removed must be repaired too.
        .watches_stream(
            watcher::watcher(secrets, owned)
                .default_backoff()
                .inspect_ok(move |event| observing.ledger.observe(event))
                .touched_objects(),
            |secret: PartialObjectMeta<Secret>| {
                let namespace = secret.metadata.namespace.unwrap_or_default();
                secret
                    .metadata
                    .name
                    .map(|name| ObjectRef::new(&name).within(&namespace))
            },
        )
        .reconcile_all_on(triggers)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
}

mod tokio_stream_compat {
    use futures::Stream;
    use tokio::sync::watch;

    /// Turns a watch channel into a stream that yields once per change.
    pub fn watch_stream<T: Send + Sync + 'static>(
        receiver: watch::Receiver<T>,
    ) -> impl Stream<Item = ()> + Send + 'static {
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.changed().await.ok()?;
            Some(((), receiver))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_identity_generation_and_the_adopt_annotation_only() {
        let mut meta: ObjectMeta = serde_json::from_value(serde_json::json!({
            "name": "db",
            "namespace": "app",
            "uid": "0b7e4f0e-1f3a-4c55-9b0c-8d1f2b3c4d5e",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"team": "a"},
            "annotations": {
                ADOPT: "true",
                "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}",
            },
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        }))
        .expect("valid metadata");
        keep_what_reconcile_reads(&mut meta);

        assert_eq!(meta.name.as_deref(), Some("db"));
        assert_eq!(meta.namespace.as_deref(), Some("app"));
        assert!(meta.uid.is_some());
        assert_eq!(meta.resource_version.as_deref(), Some("42"));
        assert_eq!(meta.generation, Some(3));
        assert_eq!(
            meta.annotations.clone().unwrap_or_default(),
            [(ADOPT.to_owned(), "true".to_owned())].into()
        );
        assert!(meta.managed_fields.is_none() && meta.labels.is_none());
        assert!(meta.creation_timestamp.is_none());
    }
}
