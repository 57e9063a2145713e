//! A map kept in step with a Kubernetes watch, relists included: objects come and go as the
//! watch reports them, and a relist replaces the whole map when it completes, so objects
//! deleted while the watch was down drop out, and readers see the old view until then.
//! The key watch (`keys.rs`) and the owned-Secret versions (`ledger.rs`) both follow one.

use std::collections::HashMap;
use std::hash::Hash;

pub struct Mirror<K, V> {
    current: HashMap<K, V>,
    listing: Option<HashMap<K, V>>,
}

impl<K, V> Default for Mirror<K, V> {
    fn default() -> Self {
        Mirror {
            current: HashMap::new(),
            listing: None,
        }
    }
}

impl<K: Eq + Hash, V> Mirror<K, V> {
    pub fn get(&self, key: &K) -> Option<&V> {
        self.current.get(key)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.current.values()
    }

    pub fn len(&self) -> usize {
        self.current.len()
    }

    /// An object appeared or changed; `None` means there is nothing to keep for it.
    pub fn apply(&mut self, key: K, value: Option<V>) {
        match value {
            Some(value) => self.current.insert(key, value),
            None => self.current.remove(&key),
        };
    }

    pub fn delete(&mut self, key: &K) {
        self.current.remove(key);
    }

    /// A relist begins (`Event::Init`).
    pub fn relist(&mut self) {
        self.listing = Some(HashMap::new());
    }

    /// One object of the relist (`Event::InitApply`).
    pub fn listed(&mut self, key: K, value: Option<V>) {
        if let Some(value) = value {
            self.listing.get_or_insert_default().insert(key, value);
        }
    }

    /// The relist is complete (`Event::InitDone`): it becomes the whole map.
    pub fn relisted(&mut self) {
        self.current = self.listing.take().unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relist_replaces_the_map_only_when_complete() {
        let mut mirror = Mirror::default();
        mirror.apply("a", Some(1));
        mirror.apply("b", Some(2));
        mirror.relist();
        mirror.listed("a", Some(3));
        assert_eq!(mirror.get(&"b"), Some(&2), "the old view holds meanwhile");
        mirror.relisted();
        assert_eq!((mirror.get(&"a"), mirror.get(&"b")), (Some(&3), None));
        mirror.apply("a", None);
        assert_eq!(mirror.len(), 0);
    }

    #[test]
    fn an_empty_relist_empties_the_map() {
        let mut mirror = Mirror::default();
        mirror.apply("a", Some(1));
        mirror.relist();
        mirror.relisted();
        assert_eq!(mirror.len(), 0);
    }
}
