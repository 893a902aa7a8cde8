//! Retry plumbing: replaying request bodies and choosing the next host.

use crate::config::route::RetryPolicy;
use crate::http::body::{BodyLease, RequestBody, SharedBody};
use crate::upstream::{Cluster, Endpoint, PickContext};
use std::net::SocketAddr;
use std::sync::Arc;

/// What a retry needs to send a request's body again, when it has one (kept in a bounded
/// buffer; past the bound the request is not replayable). The head needs no copy here: it
/// stays with `HttpManager::forward`, which HTTP/1.1 attempts only borrow.
pub(super) struct Replay {
    /// A leader's lease: the body stays readable (for mirrors too) while a retry may come.
    body: Option<BodyLease>,
}

impl Replay {
    pub(super) fn of(body: Option<&Arc<SharedBody>>) -> Replay {
        Replay {
            body: body.map(SharedBody::owner),
        }
    }

    /// Whether the whole request can still be sent again.
    pub(super) fn replayable(&self) -> bool {
        self.body.as_ref().is_none_or(|b| b.body().replayable())
    }

    /// The body for another attempt, `None` when it cannot be replayed whole.
    pub(super) fn body(&self) -> Option<RequestBody> {
        if !self.replayable() {
            return None;
        }
        Some(match &self.body {
            Some(b) => b.body().attempt(),
            None => RequestBody::empty(),
        })
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
