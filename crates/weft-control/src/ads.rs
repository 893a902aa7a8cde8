//! The ADS server: Envoy's `AggregatedDiscoveryService`, state-of-the-world and delta, for
//! CDS, EDS, LDS and RDS.
//!
//! One task per stream, reading top to bottom: the first request names the proxy; then it
//! waits for either a request (subscription change, ACK, NACK) or a new snapshot, and
//! sends each type only what changed for this proxy. Versions and nonces are per stream
//! and type. A NACK is logged with the proxy's error and not retried: the proxy keeps its
//! last good config until a later snapshot changes the resource.

use crate::encoded::EncodedSet;
use crate::hub::{ConnGuard, Hub};
use crate::proxy::ProxyIdentity;
use crate::snapshot::Snapshot;
use crate::translate::{ProxyResources, generate, generate_endpoints};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse, Resource,
};
use envoy_types::pb::google::protobuf::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use weft_xds::type_url;

/// The types served, in the order a push sends them (clusters before their endpoints,
/// listeners before their routes, as ADS requires to avoid traffic drops).
pub const PUSH_ORDER: [&str; 4] = [
    type_url::CLUSTER,
    type_url::CLUSTER_LOAD_ASSIGNMENT,
    type_url::LISTENER,
    type_url::ROUTE_CONFIGURATION,
];

/// Types the proxy asks for by name (the others are wildcard).
fn named(t: &str) -> bool {
    t == type_url::CLUSTER_LOAD_ASSIGNMENT || t == type_url::ROUTE_CONFIGURATION
}

/// The gRPC service.
#[derive(Clone)]
pub struct AdsServer {
    hub: Arc<Hub>,
    http10: bool,
}

impl AdsServer {
    /// A server for `hub`'s snapshots.
    pub fn new(hub: Arc<Hub>) -> AdsServer {
        AdsServer { hub, http10: false }
    }

    /// Every proxy's HTTP listeners accept HTTP/1.0, whatever its `HTTP10` metadata says
    /// (Istio's `PILOT_HTTP10`).
    pub fn accept_http10(mut self, all: bool) -> AdsServer {
        self.http10 = all;
        self
    }

    /// The tonic service, ready for `Server::add_service`.
    pub fn into_service(self) -> AggregatedDiscoveryServiceServer<AdsServer> {
        AggregatedDiscoveryServiceServer::new(self)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsServer {
    type StreamAggregatedResourcesStream = BoxStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = BoxStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        let (hub, http10) = (self.hub.clone(), self.http10);
        tokio::spawn(async move {
            if let Err(status) = sotw(hub, http10, request.into_inner(), tx.clone()).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        let (hub, http10) = (self.hub.clone(), self.http10);
        tokio::spawn(async move {
            if let Err(status) = delta(hub, http10, request.into_inner(), tx.clone()).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// What one stream knows about one type.
#[derive(Default)]
struct Watch {
    /// Names asked for (named types) or `*` semantics (wildcard types).
    names: BTreeSet<String>,
    wildcard: bool,
    /// Content digest of every resource the proxy was sent (and not told to remove): a
    /// resource whose bytes did not change is not sent again.
    sent: BTreeMap<Arc<str>, u64>,
    nonce: String,
    version: u64,
}

/// Per-stream state shared by both protocols.
struct Conn {
    hub: Arc<Hub>,
    proxy: ProxyIdentity,
    guard: ConnGuard,
    snap: Arc<Snapshot>,
    /// What translation made for this proxy, encoded and shared with every other stream
    /// that was generated the same bytes (see [`crate::encoded`]).
    resources: BTreeMap<&'static str, EncodedSet>,
    watches: BTreeMap<String, Watch>,
}

impl Conn {
    fn new(hub: Arc<Hub>, proxy: ProxyIdentity, protocol: &'static str, agent: String) -> Conn {
        let guard = hub.connect(proxy.clone(), protocol, agent);
        let snap = hub.snapshot();
        let resources = encode(&hub, generate(&snap, &proxy));
        tracing::info!(proxy = %proxy.id, protocol, "proxy connected");
        Conn {
            hub,
            proxy,
            guard,
            snap,
            resources,
            watches: BTreeMap::new(),
        }
    }

    fn refresh(&mut self, snap: Arc<Snapshot>) {
        if snap.epoch == self.snap.epoch {
            // Only endpoints of EDS clusters changed since the last snapshot: CDS, LDS and
            // RDS are the same function of the same inputs, so only EDS is regenerated.
            let t = type_url::CLUSTER_LOAD_ASSIGNMENT;
            self.resources.remove(t);
            let eds = ProxyResources {
                endpoints: generate_endpoints(&snap, &self.proxy),
                ..Default::default()
            };
            self.resources
                .insert(t, self.hub.encoded.intern_all(eds.of_type(t)));
        } else {
            // Drop the old handles first, so unchanged resources are found shared, not copied.
            self.resources.clear();
            self.resources = encode(&self.hub, generate(&snap, &self.proxy));
        }
        self.snap = snap;
    }

    /// Records an ACK or NACK of `nonce` for `t`; returns false for a stale nonce.
    fn ack(&mut self, t: &str, nonce: &str, version: &str, error: Option<&str>) -> bool {
        let Some(w) = self.watches.get(t) else {
            return false;
        };
        if nonce != w.nonce {
            return false;
        }
        let hub = &self.hub;
        match error {
            Some(msg) => {
                hub.stats.nacks.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(proxy = %self.proxy.id, type_url = t, version, error = msg,
                    "proxy rejected config (NACK); it keeps its last accepted version");
                hub.update_status(self.guard.id, t, |s| s.last_nack = Some(msg.to_owned()));
            }
            None => {
                hub.stats.acks.fetch_add(1, Ordering::Relaxed);
                let ms = hub.built_at().elapsed().as_millis() as u64;
                hub.stats.last_convergence_ms.store(ms, Ordering::Relaxed);
                hub.update_status(self.guard.id, t, |s| {
                    s.acked_version = version.to_owned();
                    s.last_nack = None;
                });
            }
        }
        true
    }

    /// The resources of `t` this proxy should have, by name.
    fn desired(&self, t: &str) -> EncodedSet {
        let Some(all) = self.resources.get(t) else {
            return EncodedSet::new();
        };
        match self.watches.get(t) {
            Some(w) if !w.wildcard => all
                .iter()
                .filter(|(n, _)| w.names.contains(&***n))
                .map(|(n, e)| (n.clone(), e.clone()))
                .collect(),
            _ => all.clone(),
        }
    }

    fn record_push(&self, t: &str, version: u64, nonce: &str, count: usize, bytes: usize) {
        self.hub.stats.pushes.fetch_add(1, Ordering::Relaxed);
        self.hub
            .stats
            .bytes_pushed
            .fetch_add(bytes as u64, Ordering::Relaxed);
        self.hub
            .stats
            .resources_pushed
            .fetch_add(count as u64, Ordering::Relaxed);
        let total = self.watches.get(t).map_or(0, |w| w.sent.len());
        let snap = self.snap.version;
        self.hub.update_status(self.guard.id, t, |s| {
            s.sent_version = version.to_string();
            s.sent_nonce = nonce.to_owned();
            s.resources = total;
            s.pushes += 1;
            s.snapshot = snap;
        });
    }

    /// Envoy re-creates a cluster whose definition changed, and the new cluster waits
    /// ("warms") for its endpoints before Envoy ACKs the clusters. So the endpoints of
    /// every changed cluster are sent again with the next EDS push, changed or not.
    fn clusters_replaced(&mut self, t: &str, names: &[Arc<str>]) {
        if t != type_url::CLUSTER || names.is_empty() {
            return;
        }
        if let Some(eds) = self.watches.get_mut(type_url::CLUSTER_LOAD_ASSIGNMENT) {
            for n in names {
                eds.sent.remove(&**n);
            }
        }
    }

    /// State of the world: the response for `t`, or `None` when nothing changed.
    /// Wildcard types resend all their resources when any changed; named types send only
    /// the changed ones (Envoy keeps the others).
    fn sotw_response(&mut self, t: &str, force: bool) -> Option<DiscoveryResponse> {
        let desired = self.desired(t);
        let nonce = self.hub.nonce();
        let w = self.watches.entry(t.to_owned()).or_default();
        let digests: BTreeMap<Arc<str>, u64> =
            desired.iter().map(|(n, e)| (n.clone(), e.digest)).collect();
        let send: Vec<Any> = if w.wildcard {
            if digests == w.sent && !force {
                return None;
            }
            desired.values().map(|e| e.any.clone()).collect()
        } else {
            // Forget what is no longer asked for, so a re-subscription resends it.
            w.sent.retain(|n, _| w.names.contains(&**n));
            let changed: Vec<Any> = desired
                .iter()
                .filter(|(n, e)| w.sent.get(*n) != Some(&e.digest))
                .map(|(_, e)| e.any.clone())
                .collect();
            if changed.is_empty() && !force {
                return None;
            }
            changed
        };
        let changed: Vec<Arc<str>> = digests
            .iter()
            .filter(|(n, d)| w.sent.get(*n) != Some(*d))
            .map(|(n, _)| n.clone())
            .collect();
        if w.wildcard {
            w.sent = digests;
        } else {
            w.sent.extend(digests);
        }
        self.clusters_replaced(t, &changed);
        let w = self.watches.entry(t.to_owned()).or_default();
        w.version += 1;
        w.nonce = nonce.clone();
        let version = w.version;
        let count = send.len();
        let bytes = send.iter().map(|a| a.value.len()).sum();
        self.record_push(t, version, &nonce, count, bytes);
        Some(DiscoveryResponse {
            version_info: version.to_string(),
            resources: send,
            type_url: t.to_owned(),
            nonce,
            ..Default::default()
        })
    }

    /// Delta: changed resources and removed names for `t`, or `None` when nothing changed.
    fn delta_response(&mut self, t: &str, force: bool) -> Option<DeltaDiscoveryResponse> {
        let desired = self.desired(t);
        let nonce = self.hub.nonce();
        let w = self.watches.entry(t.to_owned()).or_default();
        let mut resources = Vec::new();
        let mut changed: Vec<Arc<str>> = Vec::new();
        for (name, e) in desired.iter() {
            if w.sent.get(name) != Some(&e.digest) {
                resources.push(Resource {
                    name: name.to_string(),
                    version: e.version(),
                    resource: Some(e.any.clone()),
                    ..Default::default()
                });
                w.sent.insert(name.clone(), e.digest);
                changed.push(name.clone());
            }
        }
        let removed: Vec<String> = w
            .sent
            .keys()
            .filter(|n| !desired.contains_key(*n))
            .map(|n| n.to_string())
            .collect();
        for n in &removed {
            w.sent.remove(n.as_str());
        }
        if resources.is_empty() && removed.is_empty() && !force {
            return None;
        }
        self.clusters_replaced(t, &changed);
        let w = self.watches.entry(t.to_owned()).or_default();
        w.version += 1;
        w.nonce = nonce.clone();
        let version = w.version;
        let count = resources.len();
        let bytes = resources
            .iter()
            .filter_map(|r| r.resource.as_ref())
            .map(|a| a.value.len())
            .sum();
        self.record_push(t, version, &nonce, count, bytes);
        Some(DeltaDiscoveryResponse {
            system_version_info: self.snap.version.to_string(),
            resources,
            type_url: t.to_owned(),
            removed_resources: removed,
            nonce,
            ..Default::default()
        })
    }
}

type Tx<T> = mpsc::Sender<Result<T, Status>>;

/// Every type of `res`, encoded and interned in the hub's table.
fn encode(hub: &Hub, res: ProxyResources) -> BTreeMap<&'static str, EncodedSet> {
    let mut out = BTreeMap::new();
    for t in PUSH_ORDER {
        out.insert(t, hub.encoded.intern_all(res.of_type(t)));
    }
    out
}

/// `NAME/VERSION` from the node's user agent (`envoy/1.40.0`), or what there is of it.
fn user_agent(node: &Node) -> String {
    use envoy_types::pb::envoy::config::core::v3::node::UserAgentVersionType;
    let version = match &node.user_agent_version_type {
        Some(UserAgentVersionType::UserAgentVersion(v)) => v.clone(),
        Some(UserAgentVersionType::UserAgentBuildVersion(b)) => b
            .version
            .as_ref()
            .map(|v| format!("{}.{}.{}", v.major_number, v.minor_number, v.patch))
            .unwrap_or_default(),
        None => String::new(),
    };
    match (node.user_agent_name.as_str(), version.as_str()) {
        ("", "") => "unknown".to_owned(),
        (name, "") => name.to_owned(),
        ("", v) => v.to_owned(),
        (name, v) => format!("{name}/{v}"),
    }
}

/// The proxy a stream's first request names, with the server-wide HTTP/1.0 switch applied.
fn identity(node: &Node, http10_all: bool) -> Result<ProxyIdentity, Status> {
    let mut proxy =
        ProxyIdentity::from_node(node).map_err(|e| Status::invalid_argument(e.to_string()))?;
    proxy.http10 |= http10_all;
    Ok(proxy)
}

async fn sotw(
    hub: Arc<Hub>,
    http10: bool,
    mut inbound: Streaming<DiscoveryRequest>,
    tx: Tx<DiscoveryResponse>,
) -> Result<(), Status> {
    let Some(first) = inbound.message().await? else {
        return Ok(());
    };
    let node = first
        .node
        .as_ref()
        .ok_or_else(|| Status::invalid_argument(crate::ControlError::NoNode.to_string()))?;
    let proxy = identity(node, http10)?;
    let mut snaps = hub.subscribe();
    let mut conn = Conn::new(hub, proxy, "sotw", user_agent(node));
    let mut next = Some(first);
    loop {
        if let Some(req) = next.take() {
            for resp in sotw_request(&mut conn, req) {
                if tx.send(Ok(resp)).await.is_err() {
                    return Ok(());
                }
            }
        }
        tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(req)) => next = Some(req),
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(proxy = %conn.proxy.id, %status, "stream ended");
                    break;
                }
            },
            changed = snaps.changed() => {
                if changed.is_err() { break; }
                let snap = snaps.borrow_and_update().clone();
                conn.refresh(snap);
                for t in PUSH_ORDER {
                    if !conn.watches.contains_key(t) { continue; }
                    if let Some(resp) = conn.sotw_response(t, false)
                        && tx.send(Ok(resp)).await.is_err()
                    {
                        return Ok(());
                    }
                }
            }
        }
    }
    tracing::info!(proxy = %conn.proxy.id, "proxy disconnected");
    Ok(())
}

/// Handles one state-of-the-world request; returns the responses to send.
fn sotw_request(conn: &mut Conn, req: DiscoveryRequest) -> Vec<DiscoveryResponse> {
    let t = req.type_url.clone();
    if !PUSH_ORDER.contains(&t.as_str()) {
        tracing::debug!(type_url = %t, "ignoring request for an unserved type");
        return Vec::new();
    }
    let names: BTreeSet<String> = req.resource_names.iter().cloned().collect();
    let first = !conn.watches.contains_key(&t);
    // A first request may carry a nonce from an earlier stream (reconnect): answer it.
    if !first && !req.response_nonce.is_empty() {
        let error = req.error_detail.as_ref().map(|s| s.message.as_str());
        if !conn.ack(&t, &req.response_nonce, &req.version_info, error) || error.is_some() {
            return Vec::new();
        }
    }
    let w = conn.watches.entry(t.clone()).or_default();
    let names_changed = w.names != names;
    w.wildcard = !named(&t) && (names.is_empty() || names.contains("*"));
    w.names = names;
    if first || names_changed || req.response_nonce.is_empty() {
        // A request without a nonce is a (re)subscription: it always gets an answer.
        let force = first || req.response_nonce.is_empty();
        return conn.sotw_response(&t, force).into_iter().collect();
    }
    Vec::new()
}

async fn delta(
    hub: Arc<Hub>,
    http10: bool,
    mut inbound: Streaming<DeltaDiscoveryRequest>,
    tx: Tx<DeltaDiscoveryResponse>,
) -> Result<(), Status> {
    let Some(first) = inbound.message().await? else {
        return Ok(());
    };
    let node = first
        .node
        .as_ref()
        .ok_or_else(|| Status::invalid_argument(crate::ControlError::NoNode.to_string()))?;
    let proxy = identity(node, http10)?;
    let mut snaps = hub.subscribe();
    let mut conn = Conn::new(hub, proxy, "delta", user_agent(node));
    let mut next = Some(first);
    loop {
        if let Some(req) = next.take()
            && let Some(resp) = delta_request(&mut conn, req)
            && tx.send(Ok(resp)).await.is_err()
        {
            return Ok(());
        }
        tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(req)) => next = Some(req),
                Ok(None) => break,
                Err(status) => {
                    tracing::debug!(proxy = %conn.proxy.id, %status, "stream ended");
                    break;
                }
            },
            changed = snaps.changed() => {
                if changed.is_err() { break; }
                let snap = snaps.borrow_and_update().clone();
                conn.refresh(snap);
                for t in PUSH_ORDER {
                    if !conn.watches.contains_key(t) { continue; }
                    if let Some(resp) = conn.delta_response(t, false)
                        && tx.send(Ok(resp)).await.is_err()
                    {
                        return Ok(());
                    }
                }
            }
        }
    }
    tracing::info!(proxy = %conn.proxy.id, "proxy disconnected");
    Ok(())
}

/// Handles one delta request; returns the response to send, if any.
fn delta_request(conn: &mut Conn, req: DeltaDiscoveryRequest) -> Option<DeltaDiscoveryResponse> {
    let t = req.type_url.clone();
    if !PUSH_ORDER.contains(&t.as_str()) {
        return None;
    }
    let first = !conn.watches.contains_key(&t);
    if !req.response_nonce.is_empty() {
        let error = req.error_detail.as_ref().map(|s| s.message.as_str());
        let version = conn
            .watches
            .get(&t)
            .map(|w| w.version.to_string())
            .unwrap_or_default();
        conn.ack(&t, &req.response_nonce, &version, error);
    }
    let w = conn.watches.entry(t.clone()).or_default();
    if first {
        // Wildcard unless the proxy names resources (`*` keeps the wildcard explicitly).
        w.wildcard = !named(&t)
            && (req.resource_names_subscribe.is_empty()
                || req.resource_names_subscribe.iter().any(|n| n == "*"));
        // After a reconnect the proxy says what it has; unchanged resources are not resent.
        // Versions are our digests in hex; anything else is simply resent.
        w.sent = req
            .initial_resource_versions
            .iter()
            .map(|(n, v)| {
                (
                    Arc::from(n.as_str()),
                    u64::from_str_radix(v, 16).unwrap_or(0),
                )
            })
            .collect();
    }
    let before = (w.names.clone(), w.wildcard);
    for n in &req.resource_names_subscribe {
        if n == "*" {
            w.wildcard = true;
        } else {
            w.names.insert(n.clone());
        }
    }
    for n in &req.resource_names_unsubscribe {
        if n == "*" {
            w.wildcard = false;
        } else {
            w.names.remove(n);
            // Unsubscribed resources are forgotten, not "removed" (the proxy dropped them).
            w.sent.remove(n.as_str());
        }
    }
    let changed = before != (w.names.clone(), w.wildcard);
    if first || changed {
        return conn.delta_response(&t, first);
    }
    None
}
