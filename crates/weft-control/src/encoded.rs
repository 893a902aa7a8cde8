//! Encoded resources shared across xDS streams.
//!
//! Translation runs per proxy (it is a pure function of the snapshot and the proxy), but
//! most of what it produces is byte-for-byte the same for every proxy of a mesh: the
//! outbound clusters, their endpoints, the route configs. Each stream keeps what it last
//! generated only as [`Encoded`] handles taken from one [`Interner`], so 100 proxies that
//! were generated the same cluster hold one copy of its bytes, name and content digest.
//!
//! Sharing is decided by the encoded bytes themselves, never by a key computed from some
//! of the inputs: two proxies share a resource only when translation produced identical
//! output for both.

use envoy_types::pb::google::protobuf::Any;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};

/// One generated resource, encoded once.
#[derive(Debug)]
pub struct Encoded {
    pub name: Arc<str>,
    pub any: Any,
    /// Content hash of the encoded bytes: what the ADS server compares and sends as the
    /// delta resource version.
    pub digest: u64,
}

impl Encoded {
    /// The digest as the version string sent to delta clients.
    pub fn version(&self) -> String {
        format!("{:016x}", self.digest)
    }
}

fn content_hash(any: &Any) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    any.value.hash(&mut h);
    h.finish()
}

/// Resources of one type by name.
pub type EncodedSet = BTreeMap<Arc<str>, Arc<Encoded>>;

/// The table of live encoded resources. Entries are weak: a resource is freed when no
/// stream holds it any more; [`Interner::sweep`] drops the empty slots.
#[derive(Debug, Default)]
pub struct Interner {
    slots: Mutex<HashMap<u64, Vec<Weak<Encoded>>>>,
}

impl Interner {
    /// Shares every `(name, resource)` with identical resources already held by other
    /// streams; the rest are added. One lock for the whole batch.
    pub fn intern_all(&self, items: BTreeMap<String, Any>) -> EncodedSet {
        let hashed: Vec<(String, Any, u64)> = items
            .into_iter()
            .map(|(n, a)| {
                let d = content_hash(&a);
                (n, a, d)
            })
            .collect();
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = BTreeMap::new();
        for (name, any, digest) in hashed {
            let slot = slots.entry(digest).or_default();
            let found = slot.iter().filter_map(Weak::upgrade).find(|e| {
                *e.name == *name && e.any.type_url == any.type_url && e.any.value == any.value
            });
            let e = match found {
                Some(e) => e,
                None => {
                    let e = Arc::new(Encoded {
                        name: name.into(),
                        any,
                        digest,
                    });
                    slot.retain(|w| w.strong_count() > 0);
                    slot.push(Arc::downgrade(&e));
                    e
                }
            };
            out.insert(e.name.clone(), e);
        }
        out
    }

    /// Forgets resources no stream holds any more.
    pub fn sweep(&self) {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.retain(|_, v| {
            v.retain(|w| w.strong_count() > 0);
            !v.is_empty()
        });
    }

    /// Distinct live resources (for `/metrics` and the benchmark).
    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|v| v.iter().filter(|w| w.strong_count() > 0).count())
            .sum()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(v: &[u8]) -> Any {
        Any {
            type_url: "t".into(),
            value: v.to_vec(),
        }
    }

    #[test]
    fn identical_output_is_shared_and_freed_with_its_last_holder() {
        let i = Interner::default();
        let a = i.intern_all([("x".to_owned(), any(b"1")), ("y".into(), any(b"2"))].into());
        let b = i.intern_all([("x".to_owned(), any(b"1")), ("y".into(), any(b"3"))].into());
        assert!(
            Arc::ptr_eq(&a["x"], &b["x"]),
            "same bytes, same name: shared"
        );
        assert!(
            !Arc::ptr_eq(&a["y"], &b["y"]),
            "different bytes: not shared"
        );
        assert_eq!(i.len(), 3);
        drop(a);
        i.sweep();
        assert_eq!(i.len(), 2, "a's own y is gone, the shared x stays with b");
        drop(b);
        i.sweep();
        assert!(i.is_empty());
    }
}
