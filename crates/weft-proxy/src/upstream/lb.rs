//! Endpoint sets and load-balancing policies.
//!
//! An [`EndpointSet`] is immutable: it is rebuilt (with its policy's tables) whenever a
//! cluster's endpoints change and swapped in atomically, so picking never takes a lock.
//! Only the round-robin cursor and per-endpoint active-request counts are atomics.

use crate::config::cluster::LbPolicy;
use crate::upstream::Endpoint;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Round-robin schedules longer than this fall back to weighted random (bounded memory).
const MAX_SCHEDULE: u64 = 1 << 16;

/// The endpoints a cluster can pick from, with the policy's precomputed tables.
#[derive(Debug)]
pub struct EndpointSet {
    /// Every endpoint, all priorities, healthy or not (for `/clusters`).
    pub all: Vec<Arc<Endpoint>>,
    /// The endpoints of the priority level in use.
    active: Vec<Arc<Endpoint>>,
    picker: Picker,
}

#[derive(Debug)]
enum Picker {
    Empty,
    /// Equal weights: a plain rotating cursor.
    RoundRobin {
        next: AtomicUsize,
    },
    /// Unequal weights: an EDF schedule of endpoint indices.
    WeightedRoundRobin {
        schedule: Vec<u32>,
        next: AtomicUsize,
    },
    LeastRequest {
        choices: u32,
    },
    Random {
        cumulative: Vec<u64>,
    },
    Ring {
        ring: Vec<(u64, u32)>,
    },
    Maglev {
        table: Vec<u32>,
    },
}

impl EndpointSet {
    /// An empty set (a cluster with no endpoints yet).
    pub fn empty() -> EndpointSet {
        EndpointSet {
            all: Vec::new(),
            active: Vec::new(),
            picker: Picker::Empty,
        }
    }

    /// Builds the set for `policy`: the lowest priority with a healthy endpoint is used
    /// (degraded endpoints only when none is healthy).
    pub fn build(all: Vec<Arc<Endpoint>>, policy: LbPolicy) -> EndpointSet {
        let usable = |degraded: bool| -> Option<u32> {
            all.iter()
                .filter(|e| e.healthy && e.degraded == degraded)
                .map(|e| e.priority)
                .min()
        };
        let Some((priority, degraded)) = usable(false)
            .map(|p| (p, false))
            .or(usable(true).map(|p| (p, true)))
        else {
            return EndpointSet {
                all,
                active: Vec::new(),
                picker: Picker::Empty,
            };
        };
        let active: Vec<Arc<Endpoint>> = all
            .iter()
            .filter(|e| e.healthy && e.degraded == degraded && e.priority == priority)
            .cloned()
            .collect();
        let picker = Picker::build(&active, policy);
        EndpointSet {
            all,
            active,
            picker,
        }
    }

    /// The endpoints in use.
    pub fn active(&self) -> &[Arc<Endpoint>] {
        &self.active
    }

    /// Picks an endpoint; `hash` feeds RING_HASH and MAGLEV (random without one).
    pub fn pick(&self, hash: Option<u64>) -> Option<&Arc<Endpoint>> {
        let n = self.active.len();
        let i = match &self.picker {
            Picker::Empty => return None,
            Picker::RoundRobin { next } => next.fetch_add(1, Ordering::Relaxed) % n,
            Picker::WeightedRoundRobin { schedule, next } => {
                schedule[next.fetch_add(1, Ordering::Relaxed) % schedule.len()] as usize
            }
            Picker::LeastRequest { choices } => {
                let mut best = fastrand::usize(..n);
                for _ in 1..*choices {
                    let other = fastrand::usize(..n);
                    if self.active[other].active_requests() < self.active[best].active_requests() {
                        best = other;
                    }
                }
                best
            }
            Picker::Random { cumulative } => weighted_random(cumulative),
            Picker::Ring { ring } => {
                let h = hash.unwrap_or_else(|| fastrand::u64(..));
                let at = ring.partition_point(|(k, _)| *k < h);
                ring[if at == ring.len() { 0 } else { at }].1 as usize
            }
            Picker::Maglev { table } => {
                let h = hash.unwrap_or_else(|| fastrand::u64(..));
                table[(h % table.len() as u64) as usize] as usize
            }
        };
        self.active.get(i)
    }
}

fn weighted_random(cumulative: &[u64]) -> usize {
    let total = *cumulative.last().unwrap_or(&1);
    let r = fastrand::u64(..total);
    cumulative.partition_point(|c| *c <= r)
}

impl Picker {
    fn build(eps: &[Arc<Endpoint>], policy: LbPolicy) -> Picker {
        if eps.is_empty() {
            return Picker::Empty;
        }
        let weights: Vec<u64> = eps.iter().map(|e| u64::from(e.weight.max(1))).collect();
        let equal = weights.iter().all(|w| *w == weights[0]);
        let cumulative = || {
            weights
                .iter()
                .scan(0u64, |acc, w| {
                    *acc += w;
                    Some(*acc)
                })
                .collect::<Vec<_>>()
        };
        match policy {
            LbPolicy::RoundRobin | LbPolicy::ClusterProvided if equal => Picker::RoundRobin {
                // Start somewhere random so many proxies do not all hit the first endpoint.
                next: AtomicUsize::new(fastrand::usize(..eps.len())),
            },
            LbPolicy::RoundRobin | LbPolicy::ClusterProvided => match edf_schedule(&weights) {
                Some(schedule) => Picker::WeightedRoundRobin {
                    next: AtomicUsize::new(fastrand::usize(..schedule.len())),
                    schedule,
                },
                None => Picker::Random {
                    cumulative: cumulative(),
                },
            },
            LbPolicy::LeastRequest { choice_count } => Picker::LeastRequest {
                choices: choice_count.max(1),
            },
            LbPolicy::Random => Picker::Random {
                cumulative: cumulative(),
            },
            LbPolicy::RingHash {
                min_ring_size,
                max_ring_size,
            } => Picker::Ring {
                ring: build_ring(eps, &weights, min_ring_size, max_ring_size),
            },
            LbPolicy::Maglev { table_size } => Picker::Maglev {
                table: build_maglev(eps, &weights, table_size),
            },
        }
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Earliest-deadline-first schedule: each endpoint appears weight/gcd times, spread evenly.
fn edf_schedule(weights: &[u64]) -> Option<Vec<u32>> {
    let g = weights.iter().copied().fold(0, gcd).max(1);
    let len: u64 = weights.iter().map(|w| w / g).sum();
    if len > MAX_SCHEDULE {
        return None;
    }
    // Deadlines as exact fractions k/w compared by cross-multiplication would be cleaner;
    // scaled integers are enough at these sizes.
    const SCALE: u128 = 1 << 40;
    let mut heap: BinaryHeap<Reverse<(u128, u32)>> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| Reverse((SCALE / u128::from(*w), i as u32)))
        .collect();
    let mut schedule = Vec::with_capacity(len as usize);
    while (schedule.len() as u64) < len {
        let Reverse((deadline, i)) = heap.pop()?;
        schedule.push(i);
        heap.push(Reverse((
            deadline + SCALE / u128::from(weights[i as usize]),
            i,
        )));
    }
    Some(schedule)
}

fn build_ring(eps: &[Arc<Endpoint>], weights: &[u64], min: u64, max: u64) -> Vec<(u64, u32)> {
    let total: u64 = weights.iter().sum();
    let min_weight = *weights.iter().min().unwrap_or(&1);
    // As Envoy: scale so the lightest endpoint gets at least one entry, within [min, max].
    let size = (total / min_weight).max(min).min(max).max(eps.len() as u64);
    let mut ring = Vec::with_capacity(size as usize);
    for (i, (ep, w)) in eps.iter().zip(weights).enumerate() {
        let entries = (size * w / total).max(1);
        let key = ep.addr.to_string();
        for n in 0..entries {
            ring.push((hash64(format!("{key}_{n}").as_bytes()), i as u32));
        }
    }
    ring.sort_unstable();
    ring
}

fn build_maglev(eps: &[Arc<Endpoint>], weights: &[u64], m: u64) -> Vec<u32> {
    struct Entry {
        offset: u64,
        skip: u64,
        next: u64,
        weight: u64,
        target: u64,
    }
    let max_weight = *weights.iter().max().unwrap_or(&1);
    let mut entries: Vec<Entry> = eps
        .iter()
        .zip(weights)
        .map(|(ep, w)| {
            let key = ep.addr.to_string();
            Entry {
                offset: hash64(key.as_bytes()) % m,
                skip: hash64(format!("{key}#skip").as_bytes()) % (m - 1) + 1,
                next: 0,
                weight: *w,
                target: 0,
            }
        })
        .collect();
    let mut table = vec![u32::MAX; m as usize];
    let mut filled = 0;
    let mut iteration: u64 = 1;
    while filled < m {
        for (i, e) in entries.iter_mut().enumerate() {
            if filled == m {
                break;
            }
            // An endpoint of max weight fills every iteration; half of it every other one.
            if iteration * e.weight < e.target {
                continue;
            }
            e.target += max_weight;
            let mut c = (e.offset + e.skip * e.next) % m;
            while table[c as usize] != u32::MAX {
                e.next += 1;
                c = (e.offset + e.skip * e.next) % m;
            }
            table[c as usize] = i as u32;
            e.next += 1;
            filled += 1;
        }
        iteration += 1;
    }
    table
}

/// A stable 64-bit hash (FNV-1a with a splitmix64 finalizer): the same key lands on the same
/// endpoint across restarts and across proxies.
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::SocketAddr;

    fn eps(weights: &[u32]) -> Vec<Arc<Endpoint>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let addr: SocketAddr = format!("127.0.0.1:{}", 1000 + i).parse().expect("addr");
                Arc::new(Endpoint::new(addr, None, *w, 0, true, false))
            })
            .collect()
    }

    fn counts(
        set: &EndpointSet,
        n: usize,
        hash: impl Fn(usize) -> Option<u64>,
    ) -> HashMap<u16, usize> {
        let mut out = HashMap::new();
        for i in 0..n {
            let ep = set.pick(hash(i)).expect("endpoint");
            *out.entry(ep.addr.port()).or_default() += 1;
        }
        out
    }

    #[test]
    fn round_robin_is_exact_and_weighted() {
        let set = EndpointSet::build(eps(&[1, 1, 1]), LbPolicy::RoundRobin);
        assert_eq!(
            counts(&set, 300, |_| None)
                .values()
                .copied()
                .collect::<Vec<_>>(),
            vec![100; 3]
        );
        let set = EndpointSet::build(eps(&[1, 3]), LbPolicy::RoundRobin);
        let c = counts(&set, 400, |_| None);
        assert_eq!((c[&1000], c[&1001]), (100, 300));
    }

    #[test]
    fn random_and_least_request_spread() {
        for policy in [LbPolicy::Random, LbPolicy::LeastRequest { choice_count: 2 }] {
            let set = EndpointSet::build(eps(&[1, 1]), policy);
            let c = counts(&set, 2000, |_| None);
            assert!(c[&1000] > 800 && c[&1001] > 800, "{policy:?}: {c:?}");
        }
    }

    #[test]
    fn least_request_prefers_idle_endpoints() {
        let all = eps(&[1, 1]);
        for _ in 0..5 {
            all[0].begin_request();
        }
        let set = EndpointSet::build(all, LbPolicy::LeastRequest { choice_count: 2 });
        let c = counts(&set, 1000, |_| None);
        // P2C picks the busy one only when both choices land on it (~1/4).
        assert!(c[&1001] > 650, "{c:?}");
    }

    #[test]
    fn consistent_hashing_is_sticky_and_spreads() {
        for policy in [
            LbPolicy::RingHash {
                min_ring_size: 1024,
                max_ring_size: 8 << 20,
            },
            LbPolicy::Maglev { table_size: 65537 },
        ] {
            let set = EndpointSet::build(eps(&[1, 1, 1, 1]), policy);
            let first = set.pick(Some(hash64(b"user-1"))).expect("ep").addr;
            for _ in 0..10 {
                assert_eq!(set.pick(Some(hash64(b"user-1"))).expect("ep").addr, first);
            }
            let c = counts(&set, 4000, |i| Some(hash64(format!("k{i}").as_bytes())));
            assert_eq!(c.len(), 4, "{policy:?}: {c:?}");
            assert!(c.values().all(|n| *n > 600), "{policy:?}: {c:?}");
        }
    }

    #[test]
    fn maglev_weights_shape_the_table() {
        let set = EndpointSet::build(eps(&[1, 3]), LbPolicy::Maglev { table_size: 65537 });
        let c = counts(&set, 8000, |i| Some(hash64(format!("k{i}").as_bytes())));
        let share = c[&1001] as f64 / 8000.0;
        assert!((0.70..0.80).contains(&share), "{c:?}");
    }

    #[test]
    fn lowest_healthy_priority_wins() {
        let mut all = eps(&[1, 1, 1]);
        all[0] = Arc::new(Endpoint::new(all[0].addr, None, 1, 0, false, false));
        all[1] = Arc::new(Endpoint::new(all[1].addr, None, 1, 1, true, false));
        all[2] = Arc::new(Endpoint::new(all[2].addr, None, 1, 2, true, false));
        let set = EndpointSet::build(all, LbPolicy::RoundRobin);
        assert_eq!(set.active().len(), 1);
        assert_eq!(set.pick(None).expect("ep").addr.port(), 1001);
        let none = EndpointSet::build(Vec::new(), LbPolicy::RoundRobin);
        assert!(none.pick(None).is_none());
    }
}
