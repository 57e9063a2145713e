//! What the operator remembers about SealedSecrets between passes, one small structure per
//! concern, each keyed by namespace and name (a SealedSecret and its Secret share both):
//! - `seen`: the version of each owned Secret as its watch shows it;
//! - `settled`: for each SealedSecret this replica left Ready, what that pass acted on;
//! - `failures`: failed passes in a row, for back-off (only objects that are failing);
//! - `stale`: SealedSecrets last opened with a key that no longer seals (its size is the
//!   metric).
//!
//! No pass is due for a SealedSecret this replica left Ready whose spec and adopt annotation
//! have not changed since, whose Secret is still at the version that pass wrote or found,
//! and whose keys are all still there. A pass over such an object could only read two
//! objects and conclude there is nothing to do, and there are two common moments when
//! thousands of them are due at once: the operator's own write coming back through its
//! Secret watch, and the full pass after every key change.
//!
//! Only versions the watch has shown count, so an edit or deletion by anyone else always
//! gets a pass (its event arrives after the change and wakes the SealedSecret again).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::Event;
use seal_shared::keys::KeyId;

use crate::labels::ADOPT;
use crate::mirror::Mirror;

/// Namespace and name, which a SealedSecret and its Secret share, held as one
/// `namespace/name` string: the ledger keeps several entries for every SealedSecret for the
/// life of the process, and one allocation per entry costs half of two. Neither a namespace
/// nor a name can contain `/`, so the split is unambiguous.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key(Box<str>);

impl Key {
    fn new(namespace: &str, name: &str) -> Key {
        Key(format!("{namespace}/{name}").into_boxed_str())
    }

    fn parts(&self) -> (&str, &str) {
        self.0.split_once('/').unwrap_or(("", &self.0))
    }
}

fn key(meta: &ObjectMeta) -> Key {
    Key::new(
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

fn digest(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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
    key_ids: Box<[KeyId]>,
}

/// The passes that left SealedSecrets Ready, and how many of those each key opened.
#[derive(Default)]
struct Settled {
    marks: HashMap<Key, Mark>,
    uses: BTreeMap<KeyId, usize>,
}

impl Settled {
    fn insert(&mut self, key: Key, mark: Mark) {
        self.count(&mark.key_ids, true);
        if let Some(old) = self.marks.insert(key, mark) {
            self.count(&old.key_ids, false);
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.marks.remove(key) {
            self.count(&old.key_ids, false);
        }
    }

    fn retain(&mut self, keep: impl Fn(&Key) -> bool) {
        let gone: Vec<Key> = self.marks.keys().filter(|k| !keep(k)).cloned().collect();
        for key in &gone {
            self.remove(key);
        }
    }

    fn count(&mut self, ids: &[KeyId], add: bool) {
        for id in ids {
            let uses = self.uses.entry(*id).or_insert(0);
            *uses = if add {
                *uses + 1
            } else {
                uses.saturating_sub(1)
            };
            if *uses == 0 {
                self.uses.remove(id);
            }
        }
    }
}

#[derive(Default)]
pub struct Ledger {
    seen: Mutex<Mirror<Key, u64>>,
    settled: Mutex<Settled>,
    failures: Mutex<HashMap<Key, u32>>,
    stale: Mutex<HashSet<Key>>,
}

impl Ledger {
    /// Follows the owned-Secret watch.
    pub fn observe(&self, event: &Event<PartialObjectMeta<Secret>>) {
        let version = |secret: &PartialObjectMeta<Secret>| Some(digest(secret.resource_version()));
        let mut seen = lock(&self.seen);
        match event {
            Event::Apply(secret) => seen.apply(key(&secret.metadata), version(secret)),
            Event::Delete(secret) => seen.delete(&key(&secret.metadata)),
            Event::Init => seen.relist(),
            Event::InitApply(secret) => seen.listed(key(&secret.metadata), version(secret)),
            Event::InitDone => seen.relisted(),
        }
    }

    /// Records a pass that left the SealedSecret Ready with its Secret at `secret_version`.
    pub fn record(&self, sealed: &ObjectMeta, secret_version: Option<&str>, key_ids: &[KeyId]) {
        let mark = Mark {
            desired: desired_state(sealed),
            secret_version: digest(secret_version),
            key_ids: key_ids.into(),
        };
        lock(&self.settled).insert(key(sealed), mark);
    }

    /// A pass is due: the last one failed, or something changed.
    pub fn unsettle(&self, sealed: &ObjectMeta) {
        lock(&self.settled).remove(&key(sealed));
    }

    /// The key ids of the last pass when nothing has changed since; `None` when a pass is due.
    /// A key that `held` no longer answers for (its Secret was deleted) is a change too: the
    /// SealedSecret can no longer be unsealed, and its status must say so.
    pub fn unchanged(
        &self,
        sealed: &ObjectMeta,
        held: impl Fn(KeyId) -> bool,
    ) -> Option<Vec<KeyId>> {
        let key = key(sealed);
        let settled = lock(&self.settled);
        let mark = settled.marks.get(&key)?;
        let same = mark.desired == desired_state(sealed)
            && lock(&self.seen).get(&key) == Some(&mark.secret_version)
            && mark.key_ids.iter().all(|id| held(*id));
        same.then(|| mark.key_ids.to_vec())
    }

    /// How many SealedSecrets each key opened, as the passes that left them Ready found.
    pub fn key_uses(&self) -> BTreeMap<KeyId, usize> {
        lock(&self.settled).uses.clone()
    }

    /// Counts one more failed pass in a row and answers how many came before it.
    pub fn failed(&self, namespace: &str, name: &str) -> u32 {
        let mut failures = lock(&self.failures);
        let count = failures.entry(Key::new(namespace, name)).or_insert(0);
        *count += 1;
        *count - 1
    }

    pub fn succeeded(&self, namespace: &str, name: &str) {
        lock(&self.failures).remove(&Key::new(namespace, name));
    }

    /// Records whether the SealedSecret's items were opened with a key that no longer
    /// seals, and answers how many SealedSecrets are in that state.
    pub fn note_key_use(&self, namespace: &str, name: &str, stale: bool) -> usize {
        let key = Key::new(namespace, name);
        let mut set = lock(&self.stale);
        if stale {
            set.insert(key);
        } else {
            set.remove(&key);
        }
        set.len()
    }

    /// Forgets a deleted SealedSecret; answers how many stale ones remain. Its Secret's
    /// version stays as long as the Secret does (until garbage collection).
    pub fn forget(&self, sealed: &ObjectMeta) -> usize {
        let key = key(sealed);
        lock(&self.settled).remove(&key);
        lock(&self.failures).remove(&key);
        let mut stale = lock(&self.stale);
        stale.remove(&key);
        stale.len()
    }

    /// Forgets every SealedSecret for which `exists(namespace, name)` no longer holds (after
    /// a relist); answers how many stale ones remain.
    pub fn retain(&self, exists: impl Fn(&str, &str) -> bool) -> usize {
        let keep = |key: &Key| {
            let (namespace, name) = key.parts();
            exists(namespace, name)
        };
        lock(&self.settled).retain(keep);
        lock(&self.failures).retain(|k, _| keep(k));
        let mut stale = lock(&self.stale);
        stale.retain(keep);
        stale.len()
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
        ledger.record(&sealed(1, "u1"), Some(version), &[id()]);
        ledger.observe(&Event::Apply(secret(version)));
        ledger
    }

    fn all_held(_: KeyId) -> bool {
        true
    }

    fn id() -> KeyId {
        "0c87a417f764bcf7".parse().expect("a key id")
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
        let ids = vec![id()];
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
    fn a_deleted_sealed_secret_leaves_nothing_behind_but_its_secrets_version() {
        let ledger = Ledger::default();
        ledger.failed("app", "db");
        ledger.note_key_use("app", "db", true);
        ledger.record(&sealed(1, "u1"), Some("10"), &[id()]);
        ledger.observe(&Event::Apply(secret("10")));
        ledger.forget(&sealed(1, "u1"));
        assert!(lock(&ledger.settled).marks.is_empty() && lock(&ledger.failures).is_empty());
        assert!(ledger.key_uses().is_empty());
        assert!(lock(&ledger.stale).is_empty());
        assert_eq!(lock(&ledger.seen).len(), 1, "its Secret is still there");
        ledger.observe(&Event::Delete(secret("10")));
        assert_eq!(lock(&ledger.seen).len(), 0);
    }

    #[test]
    fn each_key_counts_the_sealed_secrets_it_opened() {
        let other: KeyId = "1d98b528a875cd08".parse().expect("a key id");
        let ledger = Ledger::default();
        ledger.record(&sealed(1, "u1"), Some("10"), &[id()]);
        let mut web = sealed(1, "u2");
        web.name = Some("web".into());
        ledger.record(&web, Some("11"), &[id(), other]);
        assert_eq!(ledger.key_uses(), [(id(), 2), (other, 1)].into());
        // Resealed to the other key only: counted once, under it.
        ledger.record(&web, Some("12"), &[other]);
        assert_eq!(ledger.key_uses(), [(id(), 1), (other, 1)].into());
        ledger.unsettle(&sealed(1, "u1"));
        ledger.retain(|_, name| name != "web");
        assert!(ledger.key_uses().is_empty());
    }

    #[test]
    fn a_key_that_is_gone_makes_a_pass_due() {
        let ledger = settled_at("10");
        assert!(ledger.unchanged(&sealed(1, "u1"), all_held).is_some());
        assert_eq!(
            ledger.unchanged(&sealed(1, "u1"), |held| held != id()),
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
