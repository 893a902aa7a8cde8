//! The local rate limit HTTP filter at request time.

use crate::config::ratelimit::HttpRateLimit;
use crate::config::route::{FilterOverrides, HeaderMutation, Override};
use crate::flags::ResponseFlags;
use crate::http::respond::LocalReply;
use crate::stats::ListenerStats;

/// The most specific rate limit config for a request (route, virtual host, route table,
/// then the filter's own). `None` when the chain has no rate limit filter.
pub(super) fn resolve<'a>(
    filter: Option<&'a HttpRateLimit>,
    levels: [Option<&'a FilterOverrides>; 3],
) -> Option<&'a HttpRateLimit> {
    let filter = filter?;
    for level in levels.into_iter().flatten() {
        match &level.ratelimit {
            Some(Override::Config(c)) => return Some(c),
            Some(Override::Disabled) => return None,
            None => {}
        }
    }
    Some(filter)
}

/// What the filter decided.
pub(super) enum Decision<'a> {
    Allow,
    /// Over the limit and enforced: answer with this (plus the configured headers).
    Limited(LocalReply, &'a HeaderMutation),
    /// Over the limit but not enforced: forward with these request headers added.
    NotEnforced(&'a HeaderMutation),
}

/// Takes a token from the config's bucket; Envoy's `filter_enabled` / `filter_enforced`
/// fractions decide whether the check happens and whether it is enforced.
pub(super) fn check<'a>(rl: &'a HttpRateLimit, grpc: bool, stats: &ListenerStats) -> Decision<'a> {
    let Some(bucket) = &rl.bucket else {
        return Decision::Allow;
    };
    if !rl.enabled.roll() || bucket.try_take() {
        return Decision::Allow;
    }
    stats.rate_limited.inc();
    if !rl.enforced.roll() {
        return Decision::NotEnforced(&rl.request_headers_when_not_enforced);
    }
    let mut reply = LocalReply::new(
        rl.status,
        ResponseFlags::RATE_LIMITED,
        "local_rate_limited",
        "local_rate_limited",
    );
    if grpc && rl.grpc_resource_exhausted {
        reply = reply.with_grpc_status(8);
    }
    Decision::Limited(reply, &rl.response_headers)
}
