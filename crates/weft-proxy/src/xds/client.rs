//! The ADS streams: connect, subscribe, apply, ACK/NACK, reconnect with back-off.

use super::TypeKind;
use super::state::{Incoming, XdsState};
use crate::proxy::Drain;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(3);
/// gRPC's INVALID_ARGUMENT, the code Envoy puts in a NACK's `error_detail`.
const INVALID_ARGUMENT: i32 = 3;

/// Jittered exponential back-off: each wait is drawn from [d/2, d], d doubling from 100 ms
/// to 3 s; reset once a stream delivers a response.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { next: BACKOFF_BASE }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_BASE;
    }

    fn wait(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(BACKOFF_MAX);
        let half = d.as_millis() as u64 / 2;
        Duration::from_millis(half + fastrand::u64(0..=half))
    }
}

/// Runs the client until the proxy drains: one stream at a time, reconnecting after
/// failures. The proxy keeps serving what it has while the control plane is away.
pub async fn run(state: Arc<XdsState>, mut drain: Drain) {
    let mut backoff = Backoff::new();
    loop {
        let mut got_response = false;
        let outcome = tokio::select! {
            r = stream(&state, &mut got_response) => r,
            _ = drain.signaled() => return,
        };
        if got_response {
            backoff.reset();
        }
        let wait = backoff.wait();
        match outcome {
            Ok(()) => {
                tracing::warn!(server = %state.options.server, "xDS stream closed by the server; reconnecting in {wait:?}")
            }
            Err(e) => {
                tracing::warn!(server = %state.options.server, error = %e, "xDS stream failed; reconnecting in {wait:?}")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = drain.signaled() => return,
        }
    }
}

async fn connect(state: &XdsState) -> Result<AggregatedDiscoveryServiceClient<Channel>, String> {
    let channel = Endpoint::from_shared(state.options.server.clone())
        .map_err(|e| format!("bad xDS address {:?}: {e}", state.options.server))?
        .connect_timeout(Duration::from_secs(1))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| format!("connecting to {}: {e}", state.options.server))?;
    Ok(AggregatedDiscoveryServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

fn nack(msg: Option<String>) -> Option<RpcStatus> {
    msg.map(|message| RpcStatus {
        code: INVALID_ARGUMENT,
        message,
        details: Vec::new(),
    })
}

async fn stream(state: &Arc<XdsState>, got_response: &mut bool) -> Result<(), String> {
    if state.options.delta {
        delta(state, got_response).await
    } else {
        sotw(state, got_response).await
    }
}

/// What one stream has asked for per type, and the last nonce it saw.
#[derive(Default)]
struct Subscriptions {
    names: HashMap<TypeKind, BTreeSet<String>>,
    nonce: HashMap<TypeKind, String>,
}

async fn sotw(state: &Arc<XdsState>, got_response: &mut bool) -> Result<(), String> {
    let mut client = connect(state).await?;
    let (tx, rx) = mpsc::channel::<DiscoveryRequest>(16);
    let mut subs = Subscriptions::default();
    // Wildcard types first; named types that we already hold (a reconnect) right after,
    // each with the version we have so an unchanged config is not re-applied.
    let mut first = true;
    for kind in TypeKind::ALL {
        let names = state.wanted(kind).await;
        if kind.named() && names.is_empty() {
            continue;
        }
        let req = DiscoveryRequest {
            version_info: state.sotw_version(kind).await,
            node: first.then(|| state.options.node.clone()),
            resource_names: names.iter().cloned().collect(),
            type_url: kind.type_url().to_owned(),
            ..Default::default()
        };
        first = false;
        subs.names.insert(kind, names);
        tx.send(req).await.map_err(|_| "request channel closed")?;
    }
    let mut inbound = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
        .map_err(|s| format!("opening the ADS stream: {}", s.message()))?
        .into_inner();
    tracing::info!(server = %state.options.server, "xDS stream open (state of the world)");
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let resp = tokio::select! {
            m = inbound.message() => match m {
                Ok(Some(resp)) => resp,
                Ok(None) => return Ok(()),
                Err(s) => return Err(format!("{}: {}", s.code(), s.message())),
            },
            _ = tick.tick() => {
                state.expire_warming(state.options.initial_fetch_timeout).await;
                sotw_resubscribe(state, &tx, &mut subs).await?;
                continue;
            }
        };
        *got_response = true;
        let Some(kind) = TypeKind::from_url(&resp.type_url) else {
            tracing::debug!(type_url = %resp.type_url, "ignoring a response of an unknown type");
            continue;
        };
        let version = resp.version_info.clone();
        let resources = resp
            .resources
            .into_iter()
            .map(|any| Incoming {
                name: None,
                any,
                version: version.clone(),
            })
            .collect();
        // LDS and CDS responses carry every resource; EDS and RDS only those that changed.
        let full = !kind.named();
        let result = state
            .apply(kind, resources, Vec::new(), full, &version)
            .await;
        if let Err(e) = &result {
            tracing::warn!(type_url = kind.short(), version, error = %e, "rejected part of an xDS update (NACK)");
        }
        subs.nonce.insert(kind, resp.nonce.clone());
        // Subscribe to newly needed endpoints/routes before ACKing, as Envoy does, so the
        // control plane sends them in the same push.
        sotw_resubscribe(state, &tx, &mut subs).await?;
        let ack = DiscoveryRequest {
            version_info: state.sotw_version(kind).await,
            resource_names: subs
                .names
                .get(&kind)
                .map(|n| n.iter().cloned().collect())
                .unwrap_or_default(),
            type_url: kind.type_url().to_owned(),
            response_nonce: resp.nonce,
            error_detail: nack(result.err()),
            ..Default::default()
        };
        tx.send(ack).await.map_err(|_| "request channel closed")?;
    }
}

/// Sends a new request for each named type whose wanted set changed.
async fn sotw_resubscribe(
    state: &Arc<XdsState>,
    tx: &mpsc::Sender<DiscoveryRequest>,
    subs: &mut Subscriptions,
) -> Result<(), String> {
    for kind in [TypeKind::Endpoint, TypeKind::Route] {
        let wanted = state.wanted(kind).await;
        let had = subs.names.get(&kind);
        if had == Some(&wanted) || (had.is_none() && wanted.is_empty()) {
            continue;
        }
        state.prune(kind, &wanted).await;
        let req = DiscoveryRequest {
            version_info: state.sotw_version(kind).await,
            resource_names: wanted.iter().cloned().collect(),
            type_url: kind.type_url().to_owned(),
            response_nonce: subs.nonce.get(&kind).cloned().unwrap_or_default(),
            ..Default::default()
        };
        subs.names.insert(kind, wanted);
        tx.send(req).await.map_err(|_| "request channel closed")?;
    }
    Ok(())
}

async fn delta(state: &Arc<XdsState>, got_response: &mut bool) -> Result<(), String> {
    let mut client = connect(state).await?;
    let (tx, rx) = mpsc::channel::<DeltaDiscoveryRequest>(16);
    let mut subs = Subscriptions::default();
    let mut first = true;
    for kind in TypeKind::ALL {
        let names = state.wanted(kind).await;
        if kind.named() && names.is_empty() {
            continue;
        }
        let req = DeltaDiscoveryRequest {
            node: first.then(|| state.options.node.clone()),
            type_url: kind.type_url().to_owned(),
            resource_names_subscribe: names.iter().cloned().collect(),
            // What we hold: the control plane sends only what differs.
            initial_resource_versions: state.versions(kind).await.into_iter().collect(),
            ..Default::default()
        };
        first = false;
        subs.names.insert(kind, names);
        tx.send(req).await.map_err(|_| "request channel closed")?;
    }
    let mut inbound = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .map_err(|s| format!("opening the delta ADS stream: {}", s.message()))?
        .into_inner();
    tracing::info!(server = %state.options.server, "xDS stream open (delta)");
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let resp = tokio::select! {
            m = inbound.message() => match m {
                Ok(Some(resp)) => resp,
                Ok(None) => return Ok(()),
                Err(s) => return Err(format!("{}: {}", s.code(), s.message())),
            },
            _ = tick.tick() => {
                state.expire_warming(state.options.initial_fetch_timeout).await;
                delta_resubscribe(state, &tx, &mut subs).await?;
                continue;
            }
        };
        *got_response = true;
        let Some(kind) = TypeKind::from_url(&resp.type_url) else {
            tracing::debug!(type_url = %resp.type_url, "ignoring a response of an unknown type");
            continue;
        };
        let mut errors = Vec::new();
        let resources = resp
            .resources
            .into_iter()
            .filter_map(|r| match r.resource {
                Some(any) => Some(Incoming {
                    name: Some(r.name),
                    any,
                    version: r.version,
                }),
                None => {
                    errors.push(format!(
                        "{} {:?}: resource is empty",
                        kind.resource_name(),
                        r.name
                    ));
                    None
                }
            })
            .collect();
        let result = state
            .apply(
                kind,
                resources,
                resp.removed_resources,
                false,
                &resp.system_version_info,
            )
            .await;
        if let Err(e) = result {
            errors.push(e);
        }
        let error = (!errors.is_empty()).then(|| errors.join("; "));
        if let Some(e) = &error {
            tracing::warn!(type_url = kind.short(), error = %e, "rejected part of an xDS update (NACK)");
        }
        delta_resubscribe(state, &tx, &mut subs).await?;
        let ack = DeltaDiscoveryRequest {
            type_url: kind.type_url().to_owned(),
            response_nonce: resp.nonce,
            error_detail: nack(error),
            ..Default::default()
        };
        tx.send(ack).await.map_err(|_| "request channel closed")?;
    }
}

/// Subscribes to newly wanted and unsubscribes from no longer wanted names.
async fn delta_resubscribe(
    state: &Arc<XdsState>,
    tx: &mpsc::Sender<DeltaDiscoveryRequest>,
    subs: &mut Subscriptions,
) -> Result<(), String> {
    for kind in [TypeKind::Endpoint, TypeKind::Route] {
        let wanted = state.wanted(kind).await;
        let had = subs.names.get(&kind).cloned().unwrap_or_default();
        if had == wanted {
            continue;
        }
        state.prune(kind, &wanted).await;
        let req = DeltaDiscoveryRequest {
            type_url: kind.type_url().to_owned(),
            resource_names_subscribe: wanted.difference(&had).cloned().collect(),
            resource_names_unsubscribe: had.difference(&wanted).cloned().collect(),
            ..Default::default()
        };
        subs.names.insert(kind, wanted);
        tx.send(req).await.map_err(|_| "request channel closed")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_three_seconds() {
        let mut b = Backoff::new();
        let waits: Vec<Duration> = (0..8).map(|_| b.wait()).collect();
        assert!(waits[0] >= Duration::from_millis(50) && waits[0] <= BACKOFF_BASE);
        assert!(waits[1] >= Duration::from_millis(100) && waits[1] <= Duration::from_millis(200));
        for w in &waits[5..] {
            assert!(*w >= BACKOFF_MAX / 2 && *w <= BACKOFF_MAX, "{w:?}");
        }
        b.reset();
        assert!(b.wait() <= BACKOFF_BASE);
    }
}
