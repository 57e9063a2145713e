//! What the operator remembers about each SealedSecret between passes, in one map keyed by
//! namespace and name (a SealedSecret and its Secret share both): failed attempts in a row,
//! for back-off; whether its items were last opened with a key that no longer seals, for
//! the metric; and whether a pass is due at all.
//!
//! No pass is due for a SealedSecret this replica left Ready whose spec and adopt annotation
//! have not changed since, whose Secret is still at the version that pass wrote or found,
//! and whose keys are all still there. A pass over such an object could only read two
//! objects and conclude there is nothing to do, and there are two common moments when
//! thousands of them are due at once: the operator's own write coming back through its
//! Secret watch, and the full pass after every key change.
//!
//! Only versions the watch has shown count, so an edit or deletion by anyone else always
//! gets a pass (its event arrives after the change and wakes the owner again).

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::Event;

use crate::labels::ADOPT;

/// Namespace and name: a SealedSecret and its Secret share both.
type Key = (String, String);

fn key(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn digest(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// What a pass acts on, as one number: the object's identity, its spec (through the
/// generation) and the adopt annotation.
pub fn desired_state(meta: &ObjectMeta) -> u64 {
    digest((
        &meta.uid,
        meta.generation,
        meta.annotations.as_ref().and_then(|a| a.get(ADOPT)),
    ))
}

/// What the last pass that left a SealedSecret Ready acted on.
struct Mark {
    desired: u64,
    secret_version: u64,
    key_ids: Vec<String>,
}

#[derive(Default)]
struct Tracked {
    /// Failed passes in a row.
    failures: u32,
    /// Its items were last opened with a key that no longer seals.
    stale: bool,
    /// Set by a pass that left it Ready; cleared by any other outcome.
    settled: Option<Mark>,
    /// The version of its Secret that the watch showed last.
    secret_seen: Option<u64>,
}

impl Tracked {
    fn is_empty(&self) -> bool {
        self.failures == 0 && !self.stale && self.settled.is_none() && self.secret_seen.is_none()
    }

    /// The SealedSecret is gone; its Secret may outlive it until garbage collection.
    fn forget_sealed_secret(&mut self) {
        self.failures = 0;
        self.stale = false;
        self.settled = None;
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Tracked>,
    /// Secret versions gathered during a relist; they replace every `secret_seen` when the
    /// relist is complete, so Secrets deleted while the watch was down drop out.
    relisting: Option<HashMap<Key, u64>>,
    /// How many entries are `stale`.
    stale: usize,
}

impl Inner {
    /// Changes one entry, and drops it once there is nothing left to remember.
    fn update<T>(&mut self, key: Key, change: impl FnOnce(&mut Tracked) -> T) -> T {
        match self.entries.entry(key) {
            Slot::Occupied(mut occupied) => {
                let was_stale = occupied.get().stale;
                let out = change(occupied.get_mut());
                let now_stale = occupied.get().stale;
                if occupied.get().is_empty() {
                    occupied.remove();
                }
                self.stale =
                    (self.stale + usize::from(now_stale)).saturating_sub(usize::from(was_stale));
                out
            }
            Slot::Vacant(vacant) => {
                let mut fresh = Tracked::default();
                let out = change(&mut fresh);
                if !fresh.is_empty() {
                    self.stale += usize::from(fresh.stale);
                    vacant.insert(fresh);
                }
                out
            }
        }
    }
}

#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows the owned-Secret watch.
    pub fn observe(&self, event: &Event<PartialObjectMeta<Secret>>) {
        let mut inner = self.lock();
        let version = |secret: &PartialObjectMeta<Secret>| digest(secret.resource_version());
        match event {
            Event::Apply(secret) => {
                let seen = version(secret);
                inner.update(key(&secret.metadata), |e| e.secret_seen = Some(seen));
            }
            Event::Delete(secret) => {
                inner.update(key(&secret.metadata), |e| e.secret_seen = None);
            }
            Event::Init => inner.relisting = Some(HashMap::new()),
            Event::InitApply(secret) => {
                let (k, v) = (key(&secret.metadata), version(secret));
                inner.relisting.get_or_insert_default().insert(k, v);
            }
            Event::InitDone => {
                if let Some(mut listed) = inner.relisting.take() {
                    for (k, entry) in inner.entries.iter_mut() {
                        entry.secret_seen = listed.remove(k);
                    }
                    inner.entries.retain(|_, entry| !entry.is_empty());
                    for (k, seen) in listed {
                        inner.update(k, |e| e.secret_seen = Some(seen));
                    }
                }
            }
        }
    }

    /// Records a pass that left the SealedSecret Ready with its Secret at `secret_version`.
    pub fn record(&self, sealed: &ObjectMeta, secret_version: Option<&str>, key_ids: &[String]) {
        let mark = Mark {
            desired: desired_state(sealed),
            secret_version: digest(secret_version),
            key_ids: key_ids.to_vec(),
        };
        self.lock().update(key(sealed), |e| e.settled = Some(mark));
    }

    /// A pass is due: the last one failed, or something changed.
    pub fn unsettle(&self, sealed: &ObjectMeta) {
        self.lock().update(key(sealed), |e| e.settled = None);
    }

    /// The key ids of the last pass when nothing has changed since; `None` when a pass is due.
    /// A key that `held` no longer answers for (its Secret was deleted) is a change too: the
    /// SealedSecret can no longer be unsealed, and its status must say so.
    pub fn unchanged(
        &self,
        sealed: &ObjectMeta,
        held: impl Fn(&str) -> bool,
    ) -> Option<Vec<String>> {
        let inner = self.lock();
        let entry = inner.entries.get(&key(sealed))?;
        let mark = entry.settled.as_ref()?;
        let same = mark.desired == desired_state(sealed)
            && entry.secret_seen == Some(mark.secret_version)
            && mark.key_ids.iter().all(|id| held(id));
        same.then(|| mark.key_ids.clone())
    }

    /// Counts one more failed pass in a row and answers how many came before it.
    pub fn failed(&self, namespace: &str, name: &str) -> u32 {
        let key = (namespace.to_owned(), name.to_owned());
        self.lock().update(key, |e| {
            e.failures += 1;
            e.failures - 1
        })
    }

    pub fn succeeded(&self, namespace: &str, name: &str) {
        let key = (namespace.to_owned(), name.to_owned());
        self.lock().update(key, |e| e.failures = 0);
    }

    /// Records whether the SealedSecret's items were opened with a key that no longer
    /// seals, and answers how many SealedSecrets are in that state.
    pub fn note_key_use(&self, namespace: &str, name: &str, stale: bool) -> usize {
        let key = (namespace.to_owned(), name.to_owned());
        let mut inner = self.lock();
        inner.update(key, |e| e.stale = stale);
        inner.stale
    }

    /// Forgets a deleted SealedSecret; answers how many stale ones remain.
    pub fn forget(&self, sealed: &ObjectMeta) -> usize {
        let mut inner = self.lock();
        inner.update(key(sealed), Tracked::forget_sealed_secret);
        inner.stale
    }

    /// Forgets every SealedSecret for which `exists(namespace, name)` no longer holds (after
    /// a relist); answers how many stale ones remain.
    pub fn retain(&self, exists: impl Fn(&str, &str) -> bool) -> usize {
        let mut inner = self.lock();
        for ((namespace, name), entry) in inner.entries.iter_mut() {
            if !exists(namespace, name) {
                entry.forget_sealed_secret();
            }
        }
        inner.entries.retain(|_, entry| !entry.is_empty());
        let stale = inner.entries.values().filter(|e| e.stale).count();
        inner.stale = stale;
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(generation: i64, uid: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some("db".into()),
            namespace: Some("app".into()),
            uid: Some(uid.into()),
            generation: Some(generation),
            ..ObjectMeta::default()
        }
    }

    /// A ledger in which "db" was left Ready by a pass that wrote its Secret at `version`
    /// with key 0c87a417f764bcf7, and the watch has shown that version.
    fn settled_at(version: &str) -> Ledger {
        let ledger = Ledger::default();
        ledger.record(
            &sealed(1, "u1"),
            Some(version),
            &["0c87a417f764bcf7".to_owned()],
        );
        ledger.observe(&Event::Apply(secret(version)));
        ledger
    }

    fn all_held(_: &str) -> bool {
        true
    }

    fn secret(version: &str) -> PartialObjectMeta<Secret> {
        PartialObjectMeta {
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: Some("app".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            ..PartialObjectMeta::default()
        }
    }

    #[test]
    fn a_pass_is_skipped_only_while_nothing_changed() {
        let ledger = Ledger::default();
        let ids = vec!["0c87a417f764bcf7".to_owned()];
        ledger.record(&sealed(1, "u1"), Some("10"), &ids);
        assert_eq!(
            ledger.unchanged(&sealed(1, "u1"), all_held),
            None,
            "not seen yet"
        );

        ledger.observe(&Event::Apply(secret("10")));
        assert_eq!(
            ledger.unchanged(&sealed(1, "u1"), all_held),
            Some(ids.clone())
        );
        assert_eq!(
            ledger.unchanged(&sealed(2, "u1"), all_held),
            None,
            "new spec"
        );
        assert_eq!(
            ledger.unchanged(&sealed(1, "u2"), all_held),
            None,
            "recreated"
        );
        let mut adopting = sealed(1, "u1");
        adopting.annotations = Some([(ADOPT.to_owned(), "true".to_owned())].into());
        assert_eq!(
            ledger.unchanged(&adopting, all_held),
            None,
            "annotation changed"
        );

        ledger.observe(&Event::Apply(secret("11")));
        assert_eq!(
            ledger.unchanged(&sealed(1, "u1"), all_held),
            None,
            "edited by someone"
        );
        ledger.record(&sealed(1, "u1"), Some("12"), &ids);
        ledger.observe(&Event::Apply(secret("12")));
        assert!(ledger.unchanged(&sealed(1, "u1"), all_held).is_some());
        ledger.observe(&Event::Delete(secret("12")));
        assert_eq!(
            ledger.unchanged(&sealed(1, "u1"), all_held),
            None,
            "deleted"
        );

        ledger.observe(&Event::Apply(secret("12")));
        ledger.unsettle(&sealed(1, "u1"));
        assert_eq!(
            ledger.unchanged(&sealed(1, "u1"), all_held),
            None,
            "failed since"
        );
    }

    #[test]
    fn failures_count_up_until_a_success() {
        let ledger = Ledger::default();
        assert_eq!(ledger.failed("app", "db"), 0);
        assert_eq!(ledger.failed("app", "db"), 1);
        assert_eq!(ledger.failed("app", "other"), 0);
        ledger.succeeded("app", "db");
        assert_eq!(ledger.failed("app", "db"), 0);
    }

    #[test]
    fn the_stale_count_follows_key_use_deletion_and_relists() {
        let ledger = Ledger::default();
        assert_eq!(ledger.note_key_use("app", "db", true), 1);
        assert_eq!(ledger.note_key_use("app", "db", true), 1, "counted once");
        assert_eq!(ledger.note_key_use("app", "web", true), 2);
        assert_eq!(ledger.note_key_use("app", "web", false), 1, "resealed");
        assert_eq!(ledger.forget(&sealed(1, "u1")), 0, "db deleted");
        assert_eq!(ledger.note_key_use("app", "web", true), 1);
        assert_eq!(
            ledger.retain(|_, name| name != "web"),
            0,
            "web gone meanwhile"
        );
    }

    #[test]
    fn nothing_is_kept_once_there_is_nothing_to_remember() {
        let ledger = Ledger::default();
        ledger.failed("app", "db");
        ledger.note_key_use("app", "db", true);
        ledger.record(&sealed(1, "u1"), Some("10"), &["k".to_owned()]);
        ledger.observe(&Event::Apply(secret("10")));
        assert_eq!(ledger.lock().entries.len(), 1, "one entry per object");
        ledger.forget(&sealed(1, "u1"));
        assert_eq!(ledger.lock().entries.len(), 1, "its Secret is still there");
        ledger.observe(&Event::Delete(secret("10")));
        assert!(ledger.lock().entries.is_empty());
    }

    #[test]
    fn a_key_that_is_gone_makes_a_pass_due() {
        let ledger = settled_at("10");
        assert!(ledger.unchanged(&sealed(1, "u1"), all_held).is_some());
        assert_eq!(
            ledger.unchanged(&sealed(1, "u1"), |id| id != "0c87a417f764bcf7"),
            None
        );
    }

    #[test]
    fn a_relist_drops_secrets_deleted_meanwhile() {
        let ledger = settled_at("10");
        ledger.observe(&Event::Init);
        assert!(
            ledger.unchanged(&sealed(1, "u1"), all_held).is_some(),
            "the old view holds until the relist completes"
        );
        ledger.observe(&Event::InitDone);
        assert_eq!(ledger.unchanged(&sealed(1, "u1"), all_held), None);
    }
}
