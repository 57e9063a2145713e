//! Which SealedSecrets need no pass: those this replica left Ready, whose spec and adopt
//! annotation have not changed since, and whose Secret is still at the version that pass
//! wrote or found. A pass over such an object could only read two objects and conclude
//! there is nothing to do, and there are two common moments when thousands of them are due
//! at once: the operator's own write coming back through its Secret watch, and the full pass
//! after every key change.
//!
//! Only versions the watch has shown count, so an edit or deletion by anyone else always
//! gets a pass (its event arrives after the change and wakes the owner again).

use std::collections::HashMap;
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

struct Mark {
    desired: u64,
    secret_version: u64,
    key_ids: Vec<String>,
}

#[derive(Default)]
struct Inner {
    /// Per Secret: the version the watch showed last.
    seen: HashMap<Key, u64>,
    /// The same, gathered during a relist; replaces `seen` when the relist is complete so
    /// Secrets deleted while the watch was down drop out.
    relisting: Option<HashMap<Key, u64>>,
    settled: HashMap<Key, Mark>,
}

#[derive(Default)]
pub struct Settled {
    inner: Mutex<Inner>,
}

impl Settled {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows the owned-Secret watch.
    pub fn observe(&self, event: &Event<PartialObjectMeta<Secret>>) {
        let mut inner = self.lock();
        let version = |secret: &PartialObjectMeta<Secret>| digest(secret.resource_version());
        match event {
            Event::Apply(secret) => {
                inner.seen.insert(key(&secret.metadata), version(secret));
            }
            Event::Delete(secret) => {
                inner.seen.remove(&key(&secret.metadata));
            }
            Event::Init => inner.relisting = Some(HashMap::new()),
            Event::InitApply(secret) => {
                let (k, v) = (key(&secret.metadata), version(secret));
                inner.relisting.get_or_insert_default().insert(k, v);
            }
            Event::InitDone => {
                if let Some(listed) = inner.relisting.take() {
                    inner.seen = listed;
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
        self.lock().settled.insert(key(sealed), mark);
    }

    /// Forgets a SealedSecret: it failed, or it is gone.
    pub fn forget(&self, sealed: &ObjectMeta) {
        self.lock().settled.remove(&key(sealed));
    }

    /// Keeps only the SealedSecrets for which `exists(namespace, name)` holds.
    pub fn retain(&self, exists: impl Fn(&str, &str) -> bool) {
        self.lock()
            .settled
            .retain(|(namespace, name), _| exists(namespace, name));
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
        let k = key(sealed);
        let mark = inner.settled.get(&k)?;
        let same = mark.desired == desired_state(sealed)
            && inner.seen.get(&k) == Some(&mark.secret_version)
            && mark.key_ids.iter().all(|id| held(id));
        same.then(|| mark.key_ids.clone())
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
        let settled = Settled::default();
        let ids = vec!["0c87a417f764bcf7".to_owned()];
        settled.record(&sealed(1, "u1"), Some("10"), &ids);
        assert_eq!(
            settled.unchanged(&sealed(1, "u1"), all_held),
            None,
            "not seen yet"
        );

        settled.observe(&Event::Apply(secret("10")));
        assert_eq!(
            settled.unchanged(&sealed(1, "u1"), all_held),
            Some(ids.clone())
        );
        assert_eq!(
            settled.unchanged(&sealed(2, "u1"), all_held),
            None,
            "new spec"
        );
        assert_eq!(
            settled.unchanged(&sealed(1, "u2"), all_held),
            None,
            "recreated"
        );
        let mut adopting = sealed(1, "u1");
        adopting.annotations = Some([(ADOPT.to_owned(), "true".to_owned())].into());
        assert_eq!(
            settled.unchanged(&adopting, all_held),
            None,
            "annotation changed"
        );

        settled.observe(&Event::Apply(secret("11")));
        assert_eq!(
            settled.unchanged(&sealed(1, "u1"), all_held),
            None,
            "edited by someone"
        );
        settled.record(&sealed(1, "u1"), Some("12"), &ids);
        settled.observe(&Event::Apply(secret("12")));
        assert!(settled.unchanged(&sealed(1, "u1"), all_held).is_some());
        settled.observe(&Event::Delete(secret("12")));
        assert_eq!(
            settled.unchanged(&sealed(1, "u1"), all_held),
            None,
            "deleted"
        );

        settled.observe(&Event::Apply(secret("12")));
        settled.forget(&sealed(1, "u1"));
        assert_eq!(
            settled.unchanged(&sealed(1, "u1"), all_held),
            None,
            "failed since"
        );
    }

    #[test]
    fn a_key_that_is_gone_makes_a_pass_due() {
        let settled = Settled::default();
        let ids = vec!["0c87a417f764bcf7".to_owned()];
        settled.record(&sealed(1, "u1"), Some("10"), &ids);
        settled.observe(&Event::Apply(secret("10")));
        assert!(settled.unchanged(&sealed(1, "u1"), all_held).is_some());
        assert_eq!(
            settled.unchanged(&sealed(1, "u1"), |id| id != "0c87a417f764bcf7"),
            None
        );
    }

    #[test]
    fn a_relist_drops_secrets_deleted_meanwhile() {
        let settled = Settled::default();
        let ids = vec!["0c87a417f764bcf7".to_owned()];
        settled.record(&sealed(1, "u1"), Some("10"), &ids);
        settled.observe(&Event::Apply(secret("10")));
        settled.observe(&Event::Init);
        assert!(
            settled.unchanged(&sealed(1, "u1"), all_held).is_some(),
            "the old view holds until the relist completes"
        );
        settled.observe(&Event::InitDone);
        assert_eq!(settled.unchanged(&sealed(1, "u1"), all_held), None);
    }
}
