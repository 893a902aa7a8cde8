//! Retry plumbing: replaying bodyless requests and choosing the next host.

use crate::config::route::RetryPolicy;
use crate::http::body::{BodyLease, RequestBody, SharedBody};
use crate::upstream::{Cluster, Endpoint, PickContext};
use http::{Method, Request, Uri, Version};
use std::net::SocketAddr;
use std::sync::Arc;

/// What a retry needs to send a request again: its head, and its body when it has one
/// (kept in a bounded buffer; past the bound the request is not replayable).
pub(super) struct Replay {
    method: Method,
    uri: Uri,
    version: Version,
    headers: http::HeaderMap,
    /// A leader's lease: the body stays readable (for mirrors too) while a retry may come.
    body: Option<BodyLease>,
}

impl Replay {
    pub(super) fn of(req: &Request<RequestBody>, body: Option<&Arc<SharedBody>>) -> Replay {
        Replay {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
            body: body.map(SharedBody::owner),
        }
    }

    /// Whether the whole request can still be sent again.
    pub(super) fn replayable(&self) -> bool {
        self.body.as_ref().is_none_or(|b| b.body().replayable())
    }

    /// The request for another attempt, `None` when its body cannot be replayed whole.
    pub(super) fn build(&self) -> Option<Request<RequestBody>> {
        if !self.replayable() {
            return None;
        }
        let body = match &self.body {
            Some(b) => b.body().attempt(),
            None => RequestBody::empty(),
        };
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        Some(req)
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
