//! Wires the watches to the reconciler: SealedSecrets, the Secrets they own (by label, not
//! every Secret in the cluster), and a full pass whenever the key set changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use seal_shared::sealed_secret::SealedSecret;
use tokio::sync::watch;
use tokio_stream_compat::watch_stream;

use crate::audit::Audit;
use crate::keys::Keys;
use crate::labels::{ADOPT, MANAGED_BY, MANAGED_BY_VALUE};
use crate::metrics::Metrics;
use crate::unseal::{error_policy, reconcile};

/// What a reconcile acts on: the spec (through the generation) and the adopt annotation.
fn desired_state(object: &SealedSecret) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    object.metadata.generation.hash(&mut hasher);
    object.annotations().get(ADOPT).hash(&mut hasher);
    Some(hasher.finish())
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// How many SealedSecrets are reconciled at once.
const RECONCILE_CONCURRENCY: u16 = 48;

pub struct Context {
    pub client: Client,
    pub keys: Arc<Keys>,
    pub audit: Arc<Audit>,
    pub metrics: Arc<Metrics>,
    /// True while this replica holds the Lease. Standby replicas keep their watches warm
    /// but write nothing, so there is one writer and one set of Events.
    leading: watch::Receiver<bool>,
    backoff: Mutex<HashMap<(String, String), u32>>,
    /// Per SealedSecret: whether its items were last opened with a non-current key.
    stale: Mutex<HashMap<(String, String), bool>>,
}

impl Context {
    pub fn new(
        client: Client,
        keys: Arc<Keys>,
        audit: Arc<Audit>,
        metrics: Arc<Metrics>,
        leading: watch::Receiver<bool>,
    ) -> Self {
        Context {
            client,
            keys,
            audit,
            metrics,
            leading,
            backoff: Mutex::default(),
            stale: Mutex::default(),
        }
    }

    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    pub fn bump_backoff(&self, namespace: &str, name: &str) -> u32 {
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let attempt = map
            .entry((namespace.to_owned(), name.to_owned()))
            .or_insert(0);
        *attempt += 1;
        *attempt - 1
    }

    pub fn clear_backoff(&self, namespace: &str, name: &str) {
        let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(namespace.to_owned(), name.to_owned()));
    }

    pub fn note_key_use(&self, namespace: &str, name: &str, key_ids: &[String]) {
        let keys = self.keys.snapshot();
        let current = keys.current().map(|k| k.id.as_str());
        let stale = key_ids.iter().any(|id| Some(id.as_str()) != current);
        let mut map = self.stale.lock().unwrap_or_else(|p| p.into_inner());
        map.insert((namespace.to_owned(), name.to_owned()), stale);
        let count = map.values().filter(|s| **s).count();
        self.metrics.stale_key_sealed.set(count as i64);
    }
}

/// Runs the controller until a shutdown signal; in-flight reconciles finish first.
pub async fn run(ctx: Arc<Context>, watch_namespace: Option<&str>) {
    let (sealed_api, secrets): (Api<SealedSecret>, Api<PartialObjectMeta<Secret>>) =
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
    let leadership = watch_stream(ctx.leading.clone());
    let triggers = futures::stream::select(key_changes, leadership);
    // Bounded concurrency keeps memory flat when thousands of objects need work at once
    // (start-up, a key change): unbounded, every reconcile's buffers and requests pile up.
    // The cache keeps every SealedSecret; managedFields and kubectl's last-applied copy are
    // most of an object's size and the reconciler reads neither.
    let (reader, writer) = reflector::store();
    let sealed = watcher::watcher(sealed_api, watcher::Config::default())
        .default_backoff()
        .modify(|object: &mut SealedSecret| {
            object.managed_fields_mut().clear();
            object.annotations_mut().remove(LAST_APPLIED);
        })
        .reflect(writer)
        .touched_objects()
        // Our own status writes change neither; without this filter each one would wake
        // the reconciler again.
        .predicate_filter(desired_state, Default::default());
    Controller::for_stream(sealed, reader)
        .with_config(controller::Config::default().concurrency(RECONCILE_CONCURRENCY))
        // Metadata only: owner references are all a trigger needs, and no Secret values pass
        // through this watch.
        .owns_stream(
            watcher::watcher(secrets, owned)
                .default_backoff()
                .touched_objects(),
        )
        .reconcile_all_on(triggers)
        .shutdown_on_signal()
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
