//! Route retry policies (Envoy's `RetryPolicy`, the conditions weft implements).

use crate::config::matcher::HeaderMatcher;
use crate::config::util::duration;
use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::config::route::v3 as pb;
use http::header::HeaderName;
use http::{HeaderMap, StatusCode};
use std::time::Duration;

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// Envoy's `RetryPolicy`, for the conditions weft implements.
///
/// Bodyless requests are replayed whole; a request with a body is retried only when it was
/// never written (connect failures), since weft does not buffer bodies.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub on: RetryOn,
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
    /// No response bytes for this long ends an attempt (also while the body streams).
    pub per_try_idle_timeout: Option<Duration>,
    pub retriable_status_codes: Vec<u16>,
    /// `envoy.retry_host_predicates.previous_hosts`: avoid hosts already tried.
    pub avoid_previous_hosts: bool,
    pub host_selection_max_attempts: u32,
    pub back_off_base: Duration,
    pub back_off_max: Duration,
    /// `retriable_headers`: with `retriable-headers`, a response matching any is retried.
    pub retriable_headers: Vec<HeaderMatcher>,
    /// `retriable_request_headers`: when set, only requests matching one are retried.
    pub retriable_request_headers: Vec<HeaderMatcher>,
}

/// The `retry_on` conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn {
    pub five_xx: bool,
    pub gateway_error: bool,
    pub connect_failure: bool,
    pub reset: bool,
    pub refused_stream: bool,
    pub retriable_4xx: bool,
    pub retriable_status_codes: bool,
    pub retriable_headers: bool,
    /// gRPC status codes (from `grpc-status` in response headers) that are retriable.
    pub grpc: [bool; 17],
}

impl RetryPolicy {
    /// Whether a response with these status and headers should be retried.
    pub fn retriable_response(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        let code = status.as_u16();
        let on = &self.on;
        (on.five_xx && code >= 500)
            || (on.gateway_error && matches!(code, 502..=504))
            || (on.retriable_4xx && code == 409)
            || (on.retriable_status_codes && self.retriable_status_codes.contains(&code))
            || (on.retriable_headers
                && self
                    .retriable_headers
                    .iter()
                    .any(|m| m.matches(joined(headers, &m.name).as_deref())))
            // Looked up only when a gRPC code is retriable, by a ready-made name (a `&str`
            // name is parsed on every lookup: ~140 instructions per request).
            || (on.grpc.contains(&true)
                && headers
                    .get(&GRPC_STATUS)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok())
                    .is_some_and(|g| on.grpc.get(g).copied().unwrap_or(false)))
    }

    /// Whether this request may be retried at all (`retriable_request_headers`).
    pub fn request_allowed(&self, headers: &HeaderMap) -> bool {
        self.retriable_request_headers.is_empty()
            || self
                .retriable_request_headers
                .iter()
                .any(|m| m.matches(joined(headers, &m.name).as_deref()))
    }

    /// Whether a failure to get response headers should be retried.
    pub fn retriable_failure(&self, connect_failure: bool, timed_out: bool) -> bool {
        let on = &self.on;
        let any_5xx = on.five_xx || on.gateway_error;
        if timed_out {
            return any_5xx;
        }
        any_5xx || on.reset || (connect_failure && (on.connect_failure || on.refused_stream))
    }

    /// Envoy's jittered exponential back-off before retry number `n` (1-based).
    pub fn back_off(&self, n: u32) -> Duration {
        let ceiling = self
            .back_off_base
            .saturating_mul(1 << n.saturating_sub(1).min(16))
            .min(self.back_off_max);
        let ms = ceiling.as_millis().max(1) as u64;
        Duration::from_millis(fastrand::u64(..ms))
    }
}

pub(super) fn retry_policy(p: &pb::RetryPolicy) -> Result<RetryPolicy, ConfigError> {
    let mut on = RetryOn::default();
    for token in p
        .retry_on
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        match token {
            "5xx" => on.five_xx = true,
            "gateway-error" => on.gateway_error = true,
            "connect-failure" => on.connect_failure = true,
            "reset" | "reset-before-request" => on.reset = true,
            "refused-stream" => on.refused_stream = true,
            "retriable-4xx" => on.retriable_4xx = true,
            "retriable-status-codes" => on.retriable_status_codes = true,
            "retriable-headers" => on.retriable_headers = true,
            "cancelled" => on.grpc[1] = true,
            "deadline-exceeded" => on.grpc[4] = true,
            "resource-exhausted" => on.grpc[8] = true,
            "internal" => on.grpc[13] = true,
            "unavailable" => on.grpc[14] = true,
            other => {
                return Err(ConfigError::new(format!(
                    "retry condition {other:?} is not supported"
                ))
                .at("retry_on"));
            }
        }
    }
    let mut avoid_previous_hosts = false;
    for (i, pred) in p.retry_host_predicate.iter().enumerate() {
        if pred.name != "envoy.retry_host_predicates.previous_hosts" {
            return Err(ConfigError::new(format!(
                "retry host predicate {:?} is not supported",
                pred.name
            ))
            .at(format!("retry_host_predicate[{i}]")));
        }
        avoid_previous_hosts = true;
    }
    let (base, max) = match &p.retry_back_off {
        Some(b) => {
            let base = duration(b.base_interval.as_ref())
                .at("retry_back_off.base_interval")?
                .unwrap_or(Duration::from_millis(25));
            let max = duration(b.max_interval.as_ref())
                .at("retry_back_off.max_interval")?
                .unwrap_or(base * 10);
            (base, max)
        }
        None => (Duration::from_millis(25), Duration::from_millis(250)),
    };
    Ok(RetryPolicy {
        on,
        num_retries: p.num_retries.as_ref().map_or(1, |n| n.value),
        per_try_timeout: duration(p.per_try_timeout.as_ref())
            .at("per_try_timeout")?
            .filter(|d| !d.is_zero()),
        per_try_idle_timeout: duration(p.per_try_idle_timeout.as_ref())
            .at("per_try_idle_timeout")?
            .filter(|d| !d.is_zero()),
        retriable_status_codes: p
            .retriable_status_codes
            .iter()
            .filter_map(|c| u16::try_from(*c).ok())
            .collect(),
        avoid_previous_hosts,
        host_selection_max_attempts: u32::try_from(p.host_selection_retry_max_attempts.max(1))
            .unwrap_or(1),
        back_off_base: base,
        back_off_max: max,
        retriable_headers: matchers(&p.retriable_headers).at("retriable_headers")?,
        retriable_request_headers: matchers(&p.retriable_request_headers)
            .at("retriable_request_headers")?,
    })
}

fn matchers(list: &[pb::HeaderMatcher]) -> Result<Vec<HeaderMatcher>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, h)| HeaderMatcher::try_from(h).at(format!("[{i}]")))
        .collect()
}

/// A header's values joined with `,` (how route header matchers see them).
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    Some(values.fold(first.to_owned(), |mut acc, v| {
        acc.push(',');
        acc.push_str(v);
        acc
    }))
}
