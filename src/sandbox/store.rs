//! Bounded, expiring in-memory maps for authorization codes and access tokens.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;

/// An authorization code issued by the dialog or by `Sandbox::issue_code`.
#[derive(Clone, Debug)]
pub(super) struct CodeGrant {
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// Set on the first exchange attempt that gets past the code checks, because codes are
    /// single use even when that attempt fails later.
    pub used: bool,
}

/// A user access token issued by the token exchange.
#[derive(Clone, Debug)]
pub(super) struct TokenGrant {
    pub scopes: Vec<String>,
}

/// A map whose entries are dropped once older than `retention`, and oldest first when it
/// contains `capacity` entries.
///
/// Entries are inserted with the current time and aged together, so insertion order is also age
/// order, and purging only ever looks at the front of `order`.
pub(super) struct ExpiringMap<V> {
    entries: HashMap<String, Entry<V>>,
    order: VecDeque<String>,
    retention: Duration,
    capacity: usize,
}

struct Entry<V> {
    value: V,
    created: Instant,
    /// Age added by `age_all`, so tests can expire entries without waiting.
    extra_age: Duration,
}

impl<V> Entry<V> {
    fn age(&self) -> Duration {
        self.created.elapsed() + self.extra_age
    }
}

impl<V> ExpiringMap<V> {
    pub fn new(retention: Duration, capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            retention,
            capacity: capacity.max(1),
        }
    }

    /// Inserts `value` under `key` after dropping expired entries and, if still full, the oldest.
    /// Keys are random, so an existing key is not expected, but if one recurs it is replaced.
    pub fn insert(&mut self, key: String, value: V) {
        self.purge_expired();
        if self.entries.remove(&key).is_some() {
            self.order.retain(|existing| existing != &key);
        }
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        let entry = Entry {
            value,
            created: Instant::now(),
            extra_age: Duration::ZERO,
        };
        self.entries.insert(key.clone(), entry);
        self.order.push_back(key);
    }

    /// Returns the entry under `key` with its age, or `None` if it is unknown or was purged.
    pub fn get_mut(&mut self, key: &str) -> Option<(&mut V, Duration)> {
        let entry = self.entries.get_mut(key)?;
        let age = entry.age();
        Some((&mut entry.value, age))
    }

    pub fn age_all(&mut self, by: Duration) {
        for entry in self.entries.values_mut() {
            entry.extra_age += by;
        }
    }

    fn purge_expired(&mut self) {
        while let Some(oldest) = self.order.front() {
            let expired = self
                .entries
                .get(oldest)
                .is_none_or(|entry| entry.age() >= self.retention);
            if !expired {
                break;
            }
            if let Some(key) = self.order.pop_front() {
                self.entries.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Returns a new random authorization code. Facebook's codes are long opaque strings too.
pub(super) fn new_code() -> String {
    format!("AQ{}", random_alphanumeric(64))
}

/// Returns a new random user access token, shaped like Facebook's `EAA...` tokens.
pub(super) fn new_access_token() -> String {
    format!("EAASandbox{}", random_alphanumeric(48))
}

pub(super) fn random_alphanumeric(length: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiring_map_drops_oldest_when_full() {
        let mut map = ExpiringMap::new(Duration::from_secs(60), 2);
        map.insert("a".to_owned(), 1);
        map.insert("b".to_owned(), 2);
        map.insert("c".to_owned(), 3);

        assert_eq!(map.len(), 2, "capacity holds");
        assert!(map.get_mut("a").is_none(), "oldest entry dropped");
        assert!(map.get_mut("c").is_some(), "newest entry kept");
    }

    #[test]
    fn expiring_map_purges_expired_on_insert() {
        let mut map = ExpiringMap::new(Duration::from_secs(60), 10);
        map.insert("old".to_owned(), 1);
        map.age_all(Duration::from_secs(61));
        map.insert("new".to_owned(), 2);

        assert!(map.get_mut("old").is_none(), "expired entry purged");
        assert_eq!(map.len(), 1, "only the new entry is left");
    }

    #[test]
    fn expiring_map_reports_added_age() {
        let mut map = ExpiringMap::new(Duration::from_secs(60), 10);
        map.insert("key".to_owned(), 1);
        map.age_all(Duration::from_secs(30));

        let (_, age) = map.get_mut("key").expect("entry present");
        assert!(age >= Duration::from_secs(30), "age includes age_all");
    }

    #[test]
    fn new_code_and_token_are_distinct() {
        assert_ne!(new_code(), new_code(), "codes are random");
        assert!(new_access_token().starts_with("EAA"), "token prefix");
    }
}
