//! Retry plumbing: replaying bodyless requests and choosing the next host.

use crate::config::route::RetryPolicy;
use crate::http::body::RequestBody;
use crate::upstream::{Cluster, Endpoint, PickContext};
use http::{Method, Request, Uri, Version};
use std::net::SocketAddr;
use std::sync::Arc;

/// The parts of a bodyless request needed to send it again.
pub(super) struct Replay {
    method: Method,
    uri: Uri,
    version: Version,
    headers: http::HeaderMap,
}

impl Replay {
    pub(super) fn of(req: &Request<RequestBody>) -> Replay {
        Replay {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        }
    }

    pub(super) fn build(&self) -> Request<RequestBody> {
        let mut req = Request::new(RequestBody::empty());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// Picks the next host for a retry, avoiding hosts already tried when the policy says so
/// (Envoy's previous_hosts predicate, re-picking up to `host_selection_max_attempts`).
pub(super) fn pick_retry_host(
    cluster: &Cluster,
    pick: &PickContext,
    tried: &[SocketAddr],
    policy: &RetryPolicy,
) -> Option<Arc<Endpoint>> {
    let mut last = None;
    for _ in 0..=policy.host_selection_max_attempts {
        let ep = cluster.pick(pick)?;
        if !policy.avoid_previous_hosts || !tried.contains(&ep.addr) {
            return Some(ep);
        }
        last = Some(ep);
    }
    last
}
