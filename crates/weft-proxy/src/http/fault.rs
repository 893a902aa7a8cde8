//! The fault filter at request time: pick the config that applies to the route, then delay
//! and/or abort a fraction of requests (Envoy's `envoy.filters.http.fault`).
//!
//! The delay happens before the router starts its timers, so (as in Envoy) it does not
//! count against the route timeout.

use crate::config::fault::{AbortKind, DelayKind, FaultConfig};
use crate::config::route::{FilterOverrides, Override};
use crate::flags::ResponseFlags;
use crate::http::respond::LocalReply;
use crate::stats::ListenerStats;
use http::{HeaderMap, StatusCode};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const DELAY_HEADER: &str = "x-envoy-fault-delay-request";
const DELAY_PERCENT_HEADER: &str = "x-envoy-fault-delay-request-percentage";
const ABORT_HEADER: &str = "x-envoy-fault-abort-request";
const ABORT_GRPC_HEADER: &str = "x-envoy-fault-abort-grpc-request";
const ABORT_PERCENT_HEADER: &str = "x-envoy-fault-abort-request-percentage";
const DOWNSTREAM_NODE_HEADER: &str = "x-envoy-downstream-service-node";

/// The most specific fault config for a request: route, then virtual host, then route table
/// overrides, then the filter's own config. `None` when the chain has no fault filter.
pub(super) fn resolve<'a>(
    filter: Option<&'a FaultConfig>,
    levels: [Option<&'a FilterOverrides>; 3],
) -> Option<&'a FaultConfig> {
    let filter = filter?;
    for level in levels.into_iter().flatten() {
        match &level.fault {
            Some(Override::Config(c)) => return Some(c),
            Some(Override::Disabled) => return None,
            None => {}
        }
    }
    Some(filter)
}

/// Whether a fault config applies to this request at all (cluster, headers, nodes).
fn applies(cfg: &FaultConfig, headers: &HeaderMap, cluster: Option<&str>) -> bool {
    if let Some(want) = &cfg.upstream_cluster
        && cluster != Some(want.as_str())
    {
        return false;
    }
    if !cfg.downstream_nodes.is_empty() {
        let node = headers
            .get(DOWNSTREAM_NODE_HEADER)
            .and_then(|v| v.to_str().ok());
        if !node.is_some_and(|n| cfg.downstream_nodes.iter().any(|d| d == n)) {
            return false;
        }
    }
    cfg.headers
        .iter()
        .all(|m| m.matches(joined(headers, &m.name).as_deref()))
}

fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    Some(values.fold(first.to_owned(), |mut acc, v| {
        acc.push(',');
        acc.push_str(v);
        acc
    }))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A header percentage replaces the numerator, capped at the configured one (Envoy's
/// `HeaderPercentageProvider`).
fn percentage(
    configured: crate::config::util::Fraction,
    from_header: bool,
    headers: &HeaderMap,
    name: &str,
) -> crate::config::util::Fraction {
    match (from_header, header_u64(headers, name)) {
        (true, Some(n)) => configured.with_numerator(configured.numerator.min(n as u32)),
        _ => configured,
    }
}

/// Counts faults in effect (the filter's `max_active_faults`); released on drop.
pub(super) struct ActiveFault<'a> {
    active: &'a AtomicU32,
    gauge: &'a prometheus_client::metrics::gauge::Gauge,
}

impl Drop for ActiveFault<'_> {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        self.gauge.dec();
    }
}

/// What the fault filter decided for one request.
pub(super) struct Injected {
    pub(super) flags: ResponseFlags,
    pub(super) abort: Option<LocalReply>,
}

/// Runs the fault filter: sleeps for an injected delay, then returns the abort reply if one
/// is injected. `active` is the filter's count of faults in effect.
pub(super) async fn inject(
    cfg: &FaultConfig,
    headers: &HeaderMap,
    cluster: Option<&str>,
    active: &AtomicU32,
    stats: &ListenerStats,
) -> Injected {
    let mut out = Injected {
        flags: ResponseFlags::default(),
        abort: None,
    };
    if cfg.is_noop() || !applies(cfg, headers, cluster) {
        return out;
    }
    let overflow = || {
        cfg.max_active_faults
            .is_some_and(|max| active.load(Ordering::Relaxed) >= max)
    };
    if let Some(d) = &cfg.delay {
        let (duration, from_header) = match d.kind {
            DelayKind::Fixed(t) => (Some(t), false),
            DelayKind::Header => (
                header_u64(headers, DELAY_HEADER).map(Duration::from_millis),
                true,
            ),
        };
        if let Some(duration) = duration
            && percentage(d.percentage, from_header, headers, DELAY_PERCENT_HEADER).roll()
        {
            if overflow() {
                stats.fault_overflow.inc();
            } else {
                active.fetch_add(1, Ordering::Relaxed);
                stats.fault_active.inc();
                let _guard = ActiveFault {
                    active,
                    gauge: &stats.fault_active,
                };
                stats.fault_delays.inc();
                out.flags.insert(ResponseFlags::DELAY_INJECTED);
                tokio::time::sleep(duration).await;
            }
        }
    }
    if let Some(a) = &cfg.abort {
        let (status, grpc, from_header) = match a.kind {
            AbortKind::Http(s) => (Some(s), None, false),
            AbortKind::Grpc(g) => (Some(StatusCode::OK), Some(g), false),
            AbortKind::Header => {
                let http = header_u64(headers, ABORT_HEADER)
                    .filter(|s| (200..600).contains(s))
                    .and_then(|s| StatusCode::from_u16(s as u16).ok());
                match http {
                    Some(s) => (Some(s), None, true),
                    None => match header_u64(headers, ABORT_GRPC_HEADER) {
                        Some(g) => (Some(StatusCode::OK), Some(g as u32), true),
                        None => (None, None, true),
                    },
                }
            }
        };
        if let Some(status) = status
            && percentage(a.percentage, from_header, headers, ABORT_PERCENT_HEADER).roll()
        {
            if overflow() {
                stats.fault_overflow.inc();
            } else {
                stats.fault_aborts.inc();
                out.flags.insert(ResponseFlags::FAULT_INJECTED);
                let body = a.body.as_deref().unwrap_or("fault filter abort");
                let mut reply = LocalReply::new(
                    status,
                    ResponseFlags::FAULT_INJECTED,
                    "fault_filter_abort",
                    body,
                );
                if let Some(g) = grpc {
                    reply = reply.with_grpc_status(g);
                }
                out.abort = Some(reply);
            }
        }
    }
    out
}
