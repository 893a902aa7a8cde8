//! The control plane's shared state: the config in force, the connected proxies, the
//! current [`Snapshot`] (rebuilt, debounced, when either changes), and per-connection xDS
//! status for `/debug/syncz`.

use crate::proxy::ProxyIdentity;
use crate::snapshot::Snapshot;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Notify, watch};
use weft_model::Resource;

/// How long config must be quiet before a snapshot is built...
pub const DEBOUNCE_QUIET: Duration = Duration::from_millis(50);
/// ...unless changes keep coming for this long.
pub const DEBOUNCE_MAX: Duration = Duration::from_millis(300);

/// Counters for pushes and convergence (also rendered at `/metrics`).
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub snapshots: AtomicU64,
    pub pushes: AtomicU64,
    pub resources_pushed: AtomicU64,
    /// Encoded bytes of the resources pushed (protobuf, before gRPC framing).
    pub bytes_pushed: AtomicU64,
    pub acks: AtomicU64,
    pub nacks: AtomicU64,
    pub connects: AtomicU64,
    /// Time from the latest snapshot's build to the last ACK of it, over all proxies.
    pub last_convergence_ms: AtomicU64,
}

/// xDS status of one type on one connection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TypeStatus {
    pub sent_version: String,
    pub sent_nonce: String,
    pub acked_version: String,
    /// The proxy's error for the last response it rejected (cleared by the next ACK).
    pub last_nack: Option<String>,
    pub resources: usize,
    pub pushes: u64,
    /// Snapshot version the last response was generated from.
    pub snapshot: u64,
}

/// Where one xDS type stands on one connection, as `weft proxy-status` shows it (Istio's
/// words: `SYNCED`, `NOT SENT`, `STALE`, plus `NACKED` with the proxy's error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "error")]
pub enum SyncState {
    /// Nothing of this type was sent (the proxy did not ask, or there is nothing to send).
    #[serde(rename = "NOT SENT")]
    NotSent,
    /// The last response was ACKed.
    #[serde(rename = "SYNCED")]
    Synced,
    /// The last response was neither ACKed nor NACKed yet.
    #[serde(rename = "STALE")]
    Stale,
    /// The proxy rejected the last response it answered; it keeps its last good config.
    #[serde(rename = "NACKED")]
    Nacked(String),
}

impl TypeStatus {
    /// This type's state: a NACK not yet followed by an ACK wins over everything.
    pub fn state(&self) -> SyncState {
        if let Some(e) = &self.last_nack {
            SyncState::Nacked(e.clone())
        } else if self.sent_nonce.is_empty() {
            SyncState::NotSent
        } else if self.acked_version == self.sent_version {
            SyncState::Synced
        } else {
            SyncState::Stale
        }
    }
}

/// One connected proxy, as `/debug/syncz` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnStatus {
    pub id: u64,
    pub proxy: ProxyIdentity,
    /// `sotw` or `delta`.
    pub protocol: &'static str,
    /// What the proxy says it is (`envoy/1.40.0`, `weft/0.1.0`), from its node's user agent.
    pub agent: String,
    pub connected_at_unix_ms: u64,
    /// By type URL.
    pub types: BTreeMap<String, TypeStatus>,
}

impl ConnStatus {
    /// True when every type's last response was ACKed.
    pub fn synced(&self) -> bool {
        self.types
            .values()
            .all(|t| t.sent_nonce.is_empty() || t.acked_version == t.sent_version)
    }
}

/// Shared by the store, the ADS server and the API.
pub struct Hub {
    config: Mutex<Vec<Resource>>,
    conns: Mutex<BTreeMap<u64, ConnStatus>>,
    next_conn: AtomicU64,
    next_nonce: AtomicU64,
    dirty: Notify,
    snapshot: watch::Sender<Arc<Snapshot>>,
    built_at: Mutex<Instant>,
    pub stats: Stats,
    /// Encoded resources shared by the streams (see [`crate::encoded`]).
    pub encoded: crate::encoded::Interner,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind: keep serving it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hub {
    /// A hub serving `resources`; call [`Hub::run_builder`] to keep the snapshot current.
    pub fn new(resources: Vec<Resource>) -> Arc<Hub> {
        let snap = Snapshot::build(1, resources.clone(), Vec::new());
        let (tx, _) = watch::channel(Arc::new(snap));
        Arc::new(Hub {
            config: Mutex::new(resources),
            conns: Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(1),
            next_nonce: AtomicU64::new(1),
            dirty: Notify::new(),
            snapshot: tx,
            built_at: Mutex::new(Instant::now()),
            stats: Stats::default(),
            encoded: crate::encoded::Interner::default(),
        })
    }

    /// Replaces the config in force; a new snapshot follows (debounced).
    pub fn set_config(&self, resources: Vec<Resource>) {
        *lock(&self.config) = resources;
        self.dirty.notify_one();
    }

    /// The config in force.
    pub fn config(&self) -> Vec<Resource> {
        lock(&self.config).clone()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver that sees every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.subscribe()
    }

    /// When the current snapshot was built (for convergence times).
    pub fn built_at(&self) -> Instant {
        *lock(&self.built_at)
    }

    /// A fresh nonce, unique for this control plane.
    pub fn nonce(&self) -> String {
        self.next_nonce.fetch_add(1, Ordering::Relaxed).to_string()
    }

    /// Registers a connected proxy: its workload joins the registry (debounced) until the
    /// returned guard drops.
    pub fn connect(
        self: &Arc<Hub>,
        proxy: ProxyIdentity,
        protocol: &'static str,
        agent: String,
    ) -> ConnGuard {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        lock(&self.conns).insert(
            id,
            ConnStatus {
                id,
                proxy,
                protocol,
                agent,
                connected_at_unix_ms: now,
                types: BTreeMap::new(),
            },
        );
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        self.dirty.notify_one();
        ConnGuard {
            hub: self.clone(),
            id,
        }
    }

    /// Updates one type's status of a connection.
    pub fn update_status(&self, id: u64, type_url: &str, f: impl FnOnce(&mut TypeStatus)) {
        if let Some(c) = lock(&self.conns).get_mut(&id) {
            f(c.types.entry(type_url.to_owned()).or_default());
        }
    }

    /// Every connection's status, by connection id.
    pub fn connections(&self) -> Vec<ConnStatus> {
        lock(&self.conns).values().cloned().collect()
    }

    /// Builds snapshots forever: waits for a change, lets a burst settle (quiet for
    /// [`DEBOUNCE_QUIET`], at most [`DEBOUNCE_MAX`]), then publishes one snapshot.
    pub async fn run_builder(self: Arc<Hub>) {
        loop {
            self.dirty.notified().await;
            let start = Instant::now();
            loop {
                let left = DEBOUNCE_MAX.saturating_sub(start.elapsed());
                if left.is_zero() {
                    break;
                }
                tokio::select! {
                    () = self.dirty.notified() => {}
                    () = tokio::time::sleep(DEBOUNCE_QUIET.min(left)) => break,
                }
            }
            self.rebuild();
        }
    }

    /// Builds and publishes a snapshot now.
    pub fn rebuild(&self) {
        let resources = self.config();
        let mut proxies: Vec<ProxyIdentity> = lock(&self.conns)
            .values()
            .map(|c| c.proxy.clone())
            .collect();
        proxies.sort_by(|a, b| a.id.cmp(&b.id));
        proxies.dedup_by(|a, b| a.id == b.id);
        let prev = self.snapshot();
        let snap = Snapshot::build_after(&prev, prev.version + 1, resources, proxies);
        drop(prev);
        *lock(&self.built_at) = Instant::now();
        self.stats.snapshots.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(version = snap.version, epoch = snap.epoch, "snapshot built");
        self.snapshot.send_replace(Arc::new(snap));
        // Streams regenerate from the new snapshot; what the old one alone used goes.
        self.encoded.sweep();
    }
}

/// Keeps a proxy registered; dropping it removes the proxy's workload from the registry.
pub struct ConnGuard {
    hub: Arc<Hub>,
    /// The connection id (for [`Hub::update_status`]).
    pub id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        lock(&self.hub.conns).remove(&self.id);
        self.hub.dirty.notify_one();
    }
}
