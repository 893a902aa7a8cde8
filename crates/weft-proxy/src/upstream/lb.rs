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

/// How a cluster spreads load across priorities and endpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LbSettings {
    pub policy: LbPolicy,
    /// Envoy's `overprovisioning_factor` as a percentage (140 by default): a priority
    /// level keeps all traffic while at least 100/1.4 ≈ 71% of its hosts are healthy.
    pub overprovisioning: u32,
    /// Below this total health (percent), health is ignored ("panic mode", Envoy's
    /// `healthy_panic_threshold`, 50 by default; 0 disables).
    pub panic_threshold: f64,
    /// Pick a locality first by `load_balancing_weight` × availability, then a host in it
    /// (Envoy's `locality_weighted_lb_config`).
    pub locality_weighted: bool,
}

impl LbSettings {
    /// Envoy's defaults for `policy`.
    pub fn new(policy: LbPolicy) -> LbSettings {
        LbSettings {
            policy,
            overprovisioning: 140,
            panic_threshold: 50.0,
            locality_weighted: false,
        }
    }
}

/// The endpoints a cluster can pick from, with the policy's precomputed tables.
#[derive(Debug)]
pub struct EndpointSet {
    /// Every endpoint, all priorities, healthy or not (for `/clusters`).
    pub all: Vec<Arc<Endpoint>>,
    /// Priority levels that get traffic, in priority order.
    levels: Vec<Level>,
    /// Cumulative share of traffic (out of 100) per level.
    cumulative_load: Vec<u32>,
}

/// One priority level's usable endpoints and its policy table.
#[derive(Debug)]
struct Level {
    endpoints: Vec<Arc<Endpoint>>,
    picker: Picker,
    /// With locality-weighted LB: one sub-level per locality and an EDF schedule over
    /// their effective weights.
    localities: Option<Localities>,
}

#[derive(Debug)]
struct Localities {
    levels: Vec<Level>,
    schedule: Vec<u32>,
    next: AtomicUsize,
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
            levels: Vec::new(),
            cumulative_load: Vec::new(),
        }
    }

    /// Builds the set with Envoy's priority load: each level's health is its healthy share
    /// times the overprovisioning factor (capped at 100%); levels take traffic in priority
    /// order up to their health, normalised to the total. With no healthy host anywhere,
    /// degraded hosts serve; failing that, below the panic threshold every host of the
    /// first level does.
    pub fn build(all: Vec<Arc<Endpoint>>, lb: LbSettings) -> EndpointSet {
        let mut priorities: Vec<u32> = all.iter().map(|e| e.priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        let hosts = |p: u32| all.iter().filter(move |e| e.priority == p);
        let health: Vec<u64> = priorities
            .iter()
            .map(|&p| {
                let total = hosts(p).count() as u64;
                let healthy = hosts(p).filter(|e| e.is_healthy() && !e.degraded).count() as u64;
                (healthy * u64::from(lb.overprovisioning) / total.max(1)).min(100)
            })
            .collect();
        let total_health = health.iter().sum::<u64>().min(100);
        let level = |eps: Vec<Arc<Endpoint>>| Level {
            picker: Picker::build(&eps, lb.policy),
            endpoints: eps,
            localities: None,
        };
        if total_health == 0 {
            let degraded = priorities.iter().find_map(|&p| {
                let d: Vec<_> = hosts(p)
                    .filter(|e| e.is_healthy() && e.degraded)
                    .cloned()
                    .collect();
                (!d.is_empty()).then_some(d)
            });
            let fallback = match (degraded, priorities.first()) {
                (Some(d), _) => Some(d),
                (None, Some(&p)) if lb.panic_threshold > 0.0 => Some(hosts(p).cloned().collect()),
                _ => None,
            };
            let levels: Vec<Level> = fallback.into_iter().map(level).collect();
            let cumulative_load = levels.iter().map(|_| 100).collect();
            return EndpointSet {
                all,
                levels,
                cumulative_load,
            };
        }
        let panic = (total_health as f64) < lb.panic_threshold;
        let mut levels = Vec::new();
        let mut cumulative_load = Vec::new();
        let mut assigned = 0u64;
        for (&p, h) in priorities.iter().zip(&health) {
            let load = (h * 100 / total_health).min(100 - assigned);
            if load == 0 {
                continue;
            }
            assigned += load;
            let eps: Vec<_> = hosts(p)
                .filter(|e| panic || (e.is_healthy() && !e.degraded))
                .cloned()
                .collect();
            let mut l = level(eps);
            if lb.locality_weighted && !panic {
                l.localities = Localities::build(hosts(p).cloned().collect(), lb);
            }
            levels.push(l);
            cumulative_load.push(assigned as u32);
        }
        // Integer division can leave a sliver; the last level takes it.
        if let Some(last) = cumulative_load.last_mut() {
            *last = 100;
        }
        EndpointSet {
            all,
            levels,
            cumulative_load,
        }
    }

    /// The endpoints of the first level that takes traffic.
    pub fn active(&self) -> &[Arc<Endpoint>] {
        self.levels.first().map_or(&[], |l| &l.endpoints)
    }

    /// Picks an endpoint; `hash` feeds RING_HASH and MAGLEV (random without one) and, as in
    /// Envoy, also chooses the priority level.
    pub fn pick(&self, hash: Option<u64>) -> Option<&Arc<Endpoint>> {
        let level = match self.levels.len() {
            0 => return None,
            1 => &self.levels[0],
            _ => {
                let r = (hash.unwrap_or_else(|| fastrand::u64(..)) % 100) as u32;
                let i = self.cumulative_load.partition_point(|c| *c <= r);
                &self.levels[i.min(self.levels.len() - 1)]
            }
        };
        level.pick(hash)
    }
}

impl Localities {
    /// Envoy's effective locality weight: `load_balancing_weight` × availability, where
    /// availability is the healthy share × overprovisioning factor, capped at 1.
    fn build(hosts: Vec<Arc<Endpoint>>, lb: LbSettings) -> Option<Localities> {
        let mut ids: Vec<u32> = hosts.iter().map(|e| e.locality).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut levels = Vec::new();
        let mut weights = Vec::new();
        for id in ids {
            let all: Vec<_> = hosts.iter().filter(|e| e.locality == id).cloned().collect();
            let healthy: Vec<_> = all
                .iter()
                .filter(|e| e.is_healthy() && !e.degraded)
                .cloned()
                .collect();
            let availability =
                (healthy.len() as u64 * u64::from(lb.overprovisioning) / all.len() as u64).min(100);
            let weight = u64::from(all[0].locality_weight) * availability;
            if weight == 0 {
                continue;
            }
            weights.push(weight);
            levels.push(Level {
                picker: Picker::build(&healthy, lb.policy),
                endpoints: healthy,
                localities: None,
            });
        }
        let schedule = edf_schedule(&weights)?;
        Some(Localities {
            next: AtomicUsize::new(fastrand::usize(..schedule.len().max(1))),
            levels,
            schedule,
        })
    }
}

impl Level {
    fn pick(&self, hash: Option<u64>) -> Option<&Arc<Endpoint>> {
        if let Some(l) = &self.localities
            && !l.schedule.is_empty()
        {
            let i = l.schedule[l.next.fetch_add(1, Ordering::Relaxed) % l.schedule.len()];
            return l.levels[i as usize].pick(hash);
        }
        let n = self.endpoints.len();
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
                    if self.endpoints[other].active_requests()
                        < self.endpoints[best].active_requests()
                    {
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
        self.endpoints.get(i)
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
        let set = EndpointSet::build(eps(&[1, 1, 1]), LbSettings::new(LbPolicy::RoundRobin));
        assert_eq!(
            counts(&set, 300, |_| None)
                .values()
                .copied()
                .collect::<Vec<_>>(),
            vec![100; 3]
        );
        let set = EndpointSet::build(eps(&[1, 3]), LbSettings::new(LbPolicy::RoundRobin));
        let c = counts(&set, 400, |_| None);
        assert_eq!((c[&1000], c[&1001]), (100, 300));
    }

    #[test]
    fn random_and_least_request_spread() {
        for policy in [LbPolicy::Random, LbPolicy::LeastRequest { choice_count: 2 }] {
            let set = EndpointSet::build(eps(&[1, 1]), LbSettings::new(policy));
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
        let set = EndpointSet::build(
            all,
            LbSettings::new(LbPolicy::LeastRequest { choice_count: 2 }),
        );
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
            let set = EndpointSet::build(eps(&[1, 1, 1, 1]), LbSettings::new(policy));
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
        let set = EndpointSet::build(
            eps(&[1, 3]),
            LbSettings::new(LbPolicy::Maglev { table_size: 65537 }),
        );
        let c = counts(&set, 8000, |i| Some(hash64(format!("k{i}").as_bytes())));
        let share = c[&1001] as f64 / 8000.0;
        assert!((0.70..0.80).contains(&share), "{c:?}");
    }

    fn at(addr_port: u16, priority: u32, healthy: bool) -> Arc<Endpoint> {
        let addr: SocketAddr = format!("127.0.0.1:{addr_port}").parse().expect("addr");
        Arc::new(Endpoint::new(addr, None, 1, priority, healthy, false))
    }

    fn shares(set: &EndpointSet, n: usize) -> HashMap<u16, usize> {
        counts(set, n, |_| None)
    }

    #[test]
    fn healthy_priority_zero_takes_everything() {
        let set = EndpointSet::build(
            vec![at(1, 0, true), at(2, 0, true), at(3, 1, true)],
            LbSettings::new(LbPolicy::RoundRobin),
        );
        let c = shares(&set, 300);
        assert_eq!(c.get(&3), None, "{c:?}");
    }

    #[test]
    fn degraded_priority_spills_with_overprovisioning() {
        // P0: 2 of 4 healthy → 50% × 1.4 = 70%; P1 takes the other 30%.
        let all = vec![
            at(1, 0, true),
            at(2, 0, true),
            at(3, 0, false),
            at(4, 0, false),
            at(5, 1, true),
        ];
        let set = EndpointSet::build(all, LbSettings::new(LbPolicy::RoundRobin));
        let c = shares(&set, 4000);
        let p1 = *c.get(&5).unwrap_or(&0) as f64 / 4000.0;
        assert!((0.25..0.35).contains(&p1), "{c:?}");
        assert_eq!(
            c.get(&3).or(c.get(&4)),
            None,
            "unhealthy hosts get nothing: {c:?}"
        );
    }

    #[test]
    fn panic_mode_ignores_health_and_zero_threshold_disables_it() {
        let all = || vec![at(1, 0, false), at(2, 0, false)];
        let set = EndpointSet::build(all(), LbSettings::new(LbPolicy::RoundRobin));
        assert!(
            set.pick(None).is_some(),
            "panic: unhealthy hosts still serve"
        );
        let strict = LbSettings {
            panic_threshold: 0.0,
            ..LbSettings::new(LbPolicy::RoundRobin)
        };
        assert!(EndpointSet::build(all(), strict).pick(None).is_none());
        // 1 of 4 healthy: 25% × 1.4 = 35% < 50% → panic spreads over all four.
        let set = EndpointSet::build(
            vec![
                at(1, 0, true),
                at(2, 0, false),
                at(3, 0, false),
                at(4, 0, false),
            ],
            LbSettings::new(LbPolicy::RoundRobin),
        );
        assert_eq!(shares(&set, 400).len(), 4);
    }

    #[test]
    fn locality_weights_and_availability_shape_the_split() {
        let ep = |port: u16, locality: u32, weight: u32, healthy: bool| {
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            Arc::new(Endpoint::new(addr, None, 1, 0, healthy, false).in_locality(locality, weight))
        };
        let lb = LbSettings {
            locality_weighted: true,
            ..LbSettings::new(LbPolicy::RoundRobin)
        };
        // 3:1 by weight.
        let set = EndpointSet::build(vec![ep(1, 0, 3, true), ep(2, 1, 1, true)], lb);
        let c = shares(&set, 400);
        assert_eq!((c[&1], c[&2]), (300, 100));
        // Equal weights, but locality 0 is half healthy: 0.5 × 1.4 = 0.7 vs 1.0.
        let set = EndpointSet::build(
            vec![ep(1, 0, 1, true), ep(3, 0, 1, false), ep(2, 1, 1, true)],
            lb,
        );
        let c = shares(&set, 1700);
        assert_eq!((c[&1], c[&2]), (700, 1000));
    }

    #[test]
    fn lowest_healthy_priority_wins() {
        let mut all = eps(&[1, 1, 1]);
        all[0] = Arc::new(Endpoint::new(all[0].addr, None, 1, 0, false, false));
        all[1] = Arc::new(Endpoint::new(all[1].addr, None, 1, 1, true, false));
        all[2] = Arc::new(Endpoint::new(all[2].addr, None, 1, 2, true, false));
        let set = EndpointSet::build(all, LbSettings::new(LbPolicy::RoundRobin));
        assert_eq!(set.active().len(), 1);
        assert_eq!(set.pick(None).expect("ep").addr.port(), 1001);
        let none = EndpointSet::build(Vec::new(), LbSettings::new(LbPolicy::RoundRobin));
        assert!(none.pick(None).is_none());
    }
}
