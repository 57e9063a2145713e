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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// What a SealedSecret's Ready condition says. Reasons come from a small fixed set, so each
/// is held once and shared by every SealedSecret that shows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    pub ready: bool,
    pub reason: Arc<str>,
}

/// The labels of one `seal_sealed_secrets` gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    pub ready: bool,
    pub reason: String,
}

impl From<&State> for ReadyLabels {
    fn from(state: &State) -> Self {
        ReadyLabels {
            ready: state.ready,
            reason: state.reason.to_string(),
        }
    }
}

/// Namespace and name.
type Key = (String, String);

/// Each SealedSecret's last reported state, and how many SealedSecrets are in each state.
/// Every change returns the states whose counts moved, for the gauges to follow.
#[derive(Debug, Default)]
pub struct Index {
    objects: HashMap<Key, State>,
    /// A state stays here at zero once seen, so its gauge reads 0 rather than vanishing.
    counts: BTreeMap<State, usize>,
}

impl Index {
    /// `namespace/name` now shows `ready` for `reason`.
    pub fn record(&mut self, namespace: &str, name: &str, ready: bool, reason: &str) -> Vec<State> {
        let state = self.intern(ready, reason);
        let key = (namespace.to_owned(), name.to_owned());
        match self.objects.insert(key, state.clone()) {
            Some(previous) if previous == state => Vec::new(),
            Some(previous) => {
                self.decrement(&previous);
                *self.counts.entry(state.clone()).or_default() += 1;
                vec![previous, state]
            }
            None => {
                *self.counts.entry(state.clone()).or_default() += 1;
                vec![state]
            }
        }
    }

    /// `namespace/name` no longer exists.
    pub fn forget(&mut self, namespace: &str, name: &str) -> Vec<State> {
        let key = (namespace.to_owned(), name.to_owned());
        match self.objects.remove(&key) {
            Some(previous) => {
                self.decrement(&previous);
                vec![previous]
            }
            None => Vec::new(),
        }
    }

    /// Keeps only the SealedSecrets for which `exists(namespace, name)` holds: after a
    /// relist, deletions missed while the watch was down are found this way.
    pub fn retain(&mut self, exists: impl Fn(&str, &str) -> bool) -> Vec<State> {
        let mut gone = Vec::new();
        self.objects.retain(|(namespace, name), state| {
            let keep = exists(namespace, name);
            if !keep {
                gone.push(state.clone());
            }
            keep
        });
        for state in &gone {
            self.decrement(state);
        }
        gone.sort();
        gone.dedup();
        gone
    }

    /// How many SealedSecrets are in `state`.
    pub fn count(&self, state: &State) -> usize {
        self.counts.get(state).copied().unwrap_or(0)
    }

    /// Every state seen so far, with its count (zero included).
    pub fn counts(&self) -> impl Iterator<Item = (&State, usize)> {
        self.counts.iter().map(|(state, count)| (state, *count))
    }

    fn intern(&self, ready: bool, reason: &str) -> State {
        let reason = self
            .counts
            .keys()
            .find(|s| &*s.reason == reason)
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| Arc::from(reason));
        State { ready, reason }
    }

    fn decrement(&mut self, state: &State) {
        if let Some(count) = self.counts.get_mut(state) {
            *count = count.saturating_sub(1);
        }
    }
}

/// The index and the gauges that show it. The gauges are set while the index is locked, so
/// two updates at once cannot leave a gauge showing the older count.
#[derive(Debug, Default)]
pub struct Readiness {
    index: Mutex<Index>,
    gauges: Family<ReadyLabels, Gauge>,
}

impl Readiness {
    /// The gauges, for registering.
    pub fn gauges(&self) -> Family<ReadyLabels, Gauge> {
        self.gauges.clone()
    }

    pub fn record(&self, namespace: &str, name: &str, ready: bool, reason: &str) {
        self.update(|index| index.record(namespace, name, ready, reason));
    }

    pub fn forget(&self, namespace: &str, name: &str) {
        self.update(|index| index.forget(namespace, name));
    }

    pub fn retain(&self, exists: impl Fn(&str, &str) -> bool) {
        self.update(|index| index.retain(exists));
    }

    fn update(&self, change: impl FnOnce(&mut Index) -> Vec<State>) {
        // A panic elsewhere while the lock was held leaves counts that are still whole.
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        for state in change(&mut index) {
            let count = i64::try_from(index.count(&state)).unwrap_or(i64::MAX);
            self.gauges
                .get_or_create(&ReadyLabels::from(&state))
                .set(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(index: &Index) -> Vec<(bool, String, usize)> {
        index
            .counts()
            .map(|(s, n)| (s.ready, s.reason.to_string(), n))
            .collect()
    }

    fn row(ready: bool, reason: &str, n: usize) -> (bool, String, usize) {
        (ready, reason.to_owned(), n)
    }

    #[test]
    fn each_sealed_secret_is_counted_once_in_its_latest_state() {
        let mut index = Index::default();
        index.record("app", "db", false, "NoMatchingKey");
        index.record("app", "api", false, "NoMatchingKey");
        index.record("web", "db", true, "Unsealed");
        assert_eq!(
            counts(&index),
            [row(false, "NoMatchingKey", 2), row(true, "Unsealed", 1)]
        );

        // A key arrives for one of them; the other still fails.
        let moved = index.record("app", "db", true, "Unsealed");
        assert_eq!(moved.len(), 2, "both the old and the new state change");
        assert_eq!(
            counts(&index),
            [row(false, "NoMatchingKey", 1), row(true, "Unsealed", 2)]
        );

        // The same state again changes nothing.
        assert!(index.record("app", "db", true, "Unsealed").is_empty());
        assert_eq!(
            counts(&index),
            [row(false, "NoMatchingKey", 1), row(true, "Unsealed", 2)]
        );
    }

    #[test]
    fn a_new_reason_moves_a_failing_sealed_secret() {
        let mut index = Index::default();
        index.record("app", "db", false, "NoMatchingKey");
        index.record("app", "db", false, "SecretConflict");
        assert_eq!(
            counts(&index),
            [
                row(false, "NoMatchingKey", 0),
                row(false, "SecretConflict", 1)
            ]
        );
    }

    #[test]
    fn forgotten_and_unlisted_sealed_secrets_leave_the_counts() {
        let mut index = Index::default();
        index.record("app", "a", true, "Unsealed");
        index.record("app", "b", true, "Unsealed");
        index.record("app", "c", false, "InvalidSpec");
        index.record("web", "a", false, "InvalidSpec");

        assert_eq!(index.forget("app", "a"), [index.intern(true, "Unsealed")]);
        assert!(index.forget("app", "a").is_empty(), "forgetting twice");
        assert_eq!(
            counts(&index),
            [row(false, "InvalidSpec", 2), row(true, "Unsealed", 1)]
        );

        // After a relist only app/b is still there.
        let moved = index.retain(|ns, name| (ns, name) == ("app", "b"));
        assert_eq!(moved, [index.intern(false, "InvalidSpec")]);
        assert_eq!(
            counts(&index),
            [row(false, "InvalidSpec", 0), row(true, "Unsealed", 1)]
        );
        // The same name in another namespace is another SealedSecret.
        index.record("web", "b", true, "Unsealed");
        assert_eq!(index.count(&index.intern(true, "Unsealed")), 2);
    }

    #[test]
    fn a_reason_is_held_once() {
        let mut index = Index::default();
        index.record("app", "a", false, "NoMatchingKey");
        index.record("app", "b", true, "NoMatchingKey");
        let reasons: Vec<&Arc<str>> = index.objects.values().map(|s| &s.reason).collect();
        assert!(Arc::ptr_eq(reasons[0], reasons[1]));
    }

    #[test]
    fn the_gauges_follow_the_index() {
        let readiness = Readiness::default();
        let gauge = |ready: bool, reason: &str| {
            readiness
                .gauges
                .get(&ReadyLabels {
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

        readiness.forget("app", "api");
        assert_eq!(
            gauge(false, "NoMatchingKey"),
            Some(0),
            "a state seen once reads 0, so an alert on it resolves"
        );
        readiness.retain(|_, _| false);
        assert_eq!(gauge(true, "Unsealed"), Some(0));
    }
}
