//! How many SealedSecrets are Ready, and why the others are not: the `seal_sealed_secrets`
//! gauges. A counter of attempts cannot say that a SealedSecret is still failing (a
//! permanent failure is counted once), so alerts need the state itself.
//!
//! The state is an index of what each SealedSecret's Ready condition says, kept apart from
//! the writer: the reconciler reports what it wrote, the watch reports deletions, and the
//! index, which does no I/O, keeps one count per (ready, reason) that the gauges mirror.
//!
//! Only a leader reconciles, so only a leader's index is current. A replica that stops
//! leading keeps what it last saw, and brings it up to date with the full pass it makes
//! when it leads again; queries select the leader (`and on (instance) seal_leader == 1`).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// What a SealedSecret's Ready condition says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, EncodeLabelSet)]
pub struct State {
    pub ready: bool,
    pub reason: String,
}

/// Each SealedSecret's last reported state, and how many SealedSecrets are in each state.
///
/// It holds an entry for every SealedSecret for the life of the process, so an entry is
/// small: a 64-bit digest of the namespace and name (keyed at random per process, so names
/// cannot be chosen to collide) and the position of its state among the few there are;
/// 16 bytes, where the names themselves would take about a hundred.
#[derive(Debug, Default)]
pub struct Index {
    digests: RandomState,
    objects: HashMap<u64, u16>,
    /// Every state seen, with its count. A state stays at zero once seen, so its gauge
    /// reads 0 rather than vanishing.
    states: Vec<(State, usize)>,
}

impl Index {
    /// `namespace/name` now shows `ready` for `reason`. Returns the states whose counts moved.
    pub fn record(&mut self, namespace: &str, name: &str, ready: bool, reason: &str) -> Vec<usize> {
        let state = self.position(ready, reason);
        let digest = self.digest(namespace, name);
        let previous = self.objects.insert(digest, state);
        if previous == Some(state) {
            return Vec::new();
        }
        self.states[usize::from(state)].1 += 1;
        match previous {
            Some(previous) => {
                self.decrement(previous);
                vec![usize::from(previous), usize::from(state)]
            }
            None => vec![usize::from(state)],
        }
    }

    /// `namespace/name` no longer exists.
    pub fn forget(&mut self, namespace: &str, name: &str) -> Vec<usize> {
        let digest = self.digest(namespace, name);
        match self.objects.remove(&digest) {
            Some(previous) => {
                self.decrement(previous);
                vec![usize::from(previous)]
            }
            None => Vec::new(),
        }
    }

    /// Keeps only the SealedSecrets `listed` (namespace, name): after a relist, deletions
    /// missed while the watch was down are found this way.
    pub fn retain<'a>(
        &mut self,
        listed: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<usize> {
        let listed: HashSet<u64> = listed
            .into_iter()
            .map(|(namespace, name)| self.digest(namespace, name))
            .collect();
        let mut gone = Vec::new();
        self.objects.retain(|digest, state| {
            let keep = listed.contains(digest);
            if !keep {
                gone.push(*state);
            }
            keep
        });
        for state in &gone {
            self.decrement(*state);
        }
        gone.sort_unstable();
        gone.dedup();
        gone.into_iter().map(usize::from).collect()
    }

    /// The state at `position` (as `record`, `forget` and `retain` return) and its count.
    pub fn state(&self, position: usize) -> Option<(&State, usize)> {
        self.states
            .get(position)
            .map(|(state, count)| (state, *count))
    }

    /// Every state seen so far, with its count (zero included).
    #[cfg(test)]
    pub fn counts(&self) -> impl Iterator<Item = (&State, usize)> {
        self.states.iter().map(|(state, count)| (state, *count))
    }

    fn digest(&self, namespace: &str, name: &str) -> u64 {
        self.digests.hash_one((namespace, name))
    }

    /// Where the state `ready`/`reason` is counted, added when new. Reasons come from a
    /// small fixed set; should there ever be more states than positions, the last one
    /// absorbs the rest rather than losing count of them.
    fn position(&mut self, ready: bool, reason: &str) -> u16 {
        let found = self
            .states
            .iter()
            .position(|(s, _)| s.ready == ready && s.reason == reason);
        let position = found.unwrap_or_else(|| {
            if self.states.len() <= usize::from(u16::MAX) {
                let state = State {
                    ready,
                    reason: reason.to_owned(),
                };
                self.states.push((state, 0));
            }
            self.states.len() - 1
        });
        u16::try_from(position).unwrap_or(u16::MAX)
    }

    fn decrement(&mut self, state: u16) {
        if let Some((_, count)) = self.states.get_mut(usize::from(state)) {
            *count = count.saturating_sub(1);
        }
    }
}

fn names(meta: &ObjectMeta) -> (&str, &str) {
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// The index and the gauges that show it. The gauges are set while the index is locked, so
/// two updates at once cannot leave a gauge showing the older count.
#[derive(Debug, Default)]
pub struct Readiness {
    index: Mutex<Index>,
    gauges: Family<State, Gauge>,
}

impl Readiness {
    /// The gauges, for registering.
    pub fn gauges(&self) -> Family<State, Gauge> {
        self.gauges.clone()
    }

    pub fn record(&self, namespace: &str, name: &str, ready: bool, reason: &str) {
        self.update(|index| index.record(namespace, name, ready, reason));
    }

    /// The SealedSecret `meta` was deleted.
    pub fn forget(&self, meta: &ObjectMeta) {
        let (namespace, name) = names(meta);
        self.update(|index| index.forget(namespace, name));
    }

    /// The SealedSecrets `listed` are all there are.
    pub fn retain<'a>(&self, listed: impl IntoIterator<Item = &'a ObjectMeta>) {
        self.update(|index| index.retain(listed.into_iter().map(names)));
    }

    fn update(&self, change: impl FnOnce(&mut Index) -> Vec<usize>) {
        // A panic elsewhere while the lock was held leaves counts that are still whole.
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        for position in change(&mut index) {
            if let Some((state, count)) = index.state(position) {
                let count = i64::try_from(count).unwrap_or(i64::MAX);
                self.gauges.get_or_create(state).set(count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(index: &Index) -> Vec<(bool, &str, usize)> {
        let mut all: Vec<_> = index
            .counts()
            .map(|(s, n)| (s.ready, s.reason.as_str(), n))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn each_sealed_secret_is_counted_once_in_its_latest_state() {
        let mut index = Index::default();
        index.record("app", "db", false, "NoMatchingKey");
        index.record("app", "api", false, "NoMatchingKey");
        index.record("web", "db", true, "Unsealed");
        assert_eq!(
            counts(&index),
            [(false, "NoMatchingKey", 2), (true, "Unsealed", 1)]
        );

        // A key arrives for one of them; the other still fails.
        let moved = index.record("app", "db", true, "Unsealed");
        assert_eq!(moved.len(), 2, "both the old and the new state change");
        assert_eq!(
            counts(&index),
            [(false, "NoMatchingKey", 1), (true, "Unsealed", 2)]
        );

        // The same state again changes nothing.
        assert!(index.record("app", "db", true, "Unsealed").is_empty());
        assert_eq!(
            counts(&index),
            [(false, "NoMatchingKey", 1), (true, "Unsealed", 2)]
        );
    }

    #[test]
    fn a_new_reason_moves_a_failing_sealed_secret() {
        let mut index = Index::default();
        index.record("app", "db", false, "NoMatchingKey");
        index.record("app", "db", false, "SecretConflict");
        assert_eq!(
            counts(&index),
            [(false, "NoMatchingKey", 0), (false, "SecretConflict", 1)]
        );
    }

    #[test]
    fn forgotten_and_unlisted_sealed_secrets_leave_the_counts() {
        let mut index = Index::default();
        index.record("app", "a", true, "Unsealed");
        index.record("app", "b", true, "Unsealed");
        index.record("app", "c", false, "InvalidSpec");
        index.record("web", "a", false, "InvalidSpec");

        let moved = index.forget("app", "a");
        assert_eq!(
            moved
                .iter()
                .filter_map(|p| index.state(*p))
                .map(|(s, n)| (s.reason.as_str(), n))
                .collect::<Vec<_>>(),
            [("Unsealed", 1)]
        );
        assert!(index.forget("app", "a").is_empty(), "forgetting twice");
        assert_eq!(
            counts(&index),
            [(false, "InvalidSpec", 2), (true, "Unsealed", 1)]
        );

        // After a relist only app/b is still there.
        let moved = index.retain([("app", "b"), ("app", "gone-before-it-was-seen")]);
        assert_eq!(moved.len(), 1, "two SealedSecrets left one state");
        assert_eq!(
            counts(&index),
            [(false, "InvalidSpec", 0), (true, "Unsealed", 1)]
        );
        // The same name in another namespace is another SealedSecret.
        index.record("web", "b", true, "Unsealed");
        assert_eq!(
            counts(&index),
            [(false, "InvalidSpec", 0), (true, "Unsealed", 2)]
        );
    }

    #[test]
    fn namespace_and_name_are_not_run_together() {
        let mut index = Index::default();
        index.record("ab", "c", true, "Unsealed");
        index.record("a", "bc", true, "Unsealed");
        assert_eq!(counts(&index), [(true, "Unsealed", 2)]);
    }

    #[test]
    fn the_gauges_follow_the_index() {
        let readiness = Readiness::default();
        let gauge = |ready: bool, reason: &str| {
            readiness
                .gauges
                .get(&State {
                    ready,
                    reason: reason.into(),
                })
                .map(|g| g.get())
        };
        readiness.record("app", "db", false, "NoMatchingKey");
        readiness.record("app", "api", false, "NoMatchingKey");
        assert_eq!(gauge(false, "NoMatchingKey"), Some(2));
        assert_eq!(gauge(true, "Unsealed"), None);

        readiness.record("app", "db", true, "Unsealed");
        assert_eq!(gauge(false, "NoMatchingKey"), Some(1));
        assert_eq!(gauge(true, "Unsealed"), Some(1));

        let meta = |namespace: &str, name: &str| ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            ..ObjectMeta::default()
        };
        readiness.forget(&meta("app", "api"));
        assert_eq!(
            gauge(false, "NoMatchingKey"),
            Some(0),
            "a state seen once reads 0, so an alert on it resolves"
        );
        readiness.record("web", "db", true, "Unsealed");
        readiness.retain([&meta("web", "db")]);
        assert_eq!(gauge(true, "Unsealed"), Some(1), "app/db was not listed");
        assert_eq!(gauge(false, "NoMatchingKey"), Some(0));
    }
}
