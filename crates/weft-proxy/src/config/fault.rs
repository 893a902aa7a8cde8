//! The HTTP fault filter (`envoy.filters.http.fault`): fixed or header-controlled delays and
//! aborts, each applied to a fraction of requests.

use crate::config::matcher::HeaderMatcher;
use crate::config::util::{Fraction, duration};
use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::fault_delay;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{HttpFault, fault_abort};
use http::StatusCode;
use std::time::Duration;

/// A converted `HTTPFault` (filter level or a per-route override).
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
    /// Only requests routed to this cluster are faulted.
    pub upstream_cluster: Option<String>,
    /// Only requests with all these headers are faulted.
    pub headers: Vec<HeaderMatcher>,
    /// Only requests whose `x-envoy-downstream-service-node` is one of these are faulted.
    pub downstream_nodes: Vec<String>,
    /// At most this many faults in effect at once (per filter); `None` is unlimited.
    pub max_active_faults: Option<u32>,
}

/// A delay before the request is forwarded.
#[derive(Debug, Clone)]
pub struct FaultDelay {
    pub kind: DelayKind,
    pub percentage: Fraction,
}

/// Where a delay's duration comes from.
#[derive(Debug, Clone, Copy)]
pub enum DelayKind {
    Fixed(Duration),
    /// `x-envoy-fault-delay-request` (milliseconds).
    Header,
}

/// An abort: the request is answered by the proxy instead of forwarded.
#[derive(Debug, Clone)]
pub struct FaultAbort {
    pub kind: AbortKind,
    pub percentage: Fraction,
    /// Replaces Envoy's `fault filter abort` body.
    pub body: Option<String>,
}

/// What an abort answers with.
#[derive(Debug, Clone, Copy)]
pub enum AbortKind {
    Http(StatusCode),
    /// A gRPC status (HTTP 200, `grpc-status` in a trailers-only response).
    Grpc(u32),
    /// `x-envoy-fault-abort-request` (HTTP status) or `x-envoy-fault-abort-grpc-request`.
    Header,
}

impl FaultConfig {
    /// Whether this config can fault anything (Istio installs an empty filter everywhere).
    pub fn is_noop(&self) -> bool {
        self.delay.is_none() && self.abort.is_none()
    }
}

/// Runtime keys only rename what is already configured here; weft has no runtime layer,
/// so a non-default key is reported rather than silently ignored.
fn no_runtime(key: &str, field: &str) -> Result<(), ConfigError> {
    if key.is_empty() {
        return Ok(());
    }
    Err(ConfigError::new("runtime overrides are not supported by weft").at(field))
}

impl TryFrom<&HttpFault> for FaultConfig {
    type Error = ConfigError;

    fn try_from(f: &HttpFault) -> Result<Self, ConfigError> {
        if f.response_rate_limit.is_some() {
            return Err(
                ConfigError::new("response rate limiting is not supported by weft")
                    .at("response_rate_limit"),
            );
        }
        for (key, field) in [
            (&f.delay_percent_runtime, "delay_percent_runtime"),
            (&f.abort_percent_runtime, "abort_percent_runtime"),
            (&f.delay_duration_runtime, "delay_duration_runtime"),
            (&f.abort_http_status_runtime, "abort_http_status_runtime"),
            (&f.max_active_faults_runtime, "max_active_faults_runtime"),
            (
                &f.response_rate_limit_percent_runtime,
                "response_rate_limit_percent_runtime",
            ),
            (&f.abort_grpc_status_runtime, "abort_grpc_status_runtime"),
        ] {
            no_runtime(key, field)?;
        }
        let delay = match &f.delay {
            None => None,
            Some(d) => {
                use fault_delay::FaultDelaySecifier as S;
                let kind = match &d.fault_delay_secifier {
                    Some(S::FixedDelay(t)) => DelayKind::Fixed(
                        duration(Some(t))
                            .at("delay.fixed_delay")?
                            .unwrap_or_default(),
                    ),
                    Some(S::HeaderDelay(_)) => DelayKind::Header,
                    None => {
                        return Err(
                            ConfigError::new("fixed_delay or header_delay is required").at("delay")
                        );
                    }
                };
                Some(FaultDelay {
                    kind,
                    percentage: Fraction::from_pb(d.percentage.as_ref()).at("delay.percentage")?,
                })
            }
        };
        let abort = match &f.abort {
            None => None,
            Some(a) => {
                use fault_abort::ErrorType as E;
                let kind = match &a.error_type {
                    Some(E::HttpStatus(s)) => AbortKind::Http(
                        u16::try_from(*s)
                            .ok()
                            .filter(|s| (200..600).contains(s))
                            .and_then(|s| StatusCode::from_u16(s).ok())
                            .ok_or_else(|| {
                                ConfigError::new(format!("http_status {s} is not in [200, 600)"))
                                    .at("abort.http_status")
                            })?,
                    ),
                    Some(E::GrpcStatus(g)) => AbortKind::Grpc(*g),
                    Some(E::HeaderAbort(_)) => AbortKind::Header,
                    None => {
                        return Err(ConfigError::new(
                            "http_status, grpc_status or header_abort is required",
                        )
                        .at("abort"));
                    }
                };
                Some(FaultAbort {
                    kind,
                    percentage: Fraction::from_pb(a.percentage.as_ref()).at("abort.percentage")?,
                    body: (!a.response_body.is_empty()).then(|| a.response_body.clone()),
                })
            }
        };
        let headers = f
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| HeaderMatcher::try_from(h).at(format!("headers[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FaultConfig {
            delay,
            abort,
            upstream_cluster: (!f.upstream_cluster.is_empty()).then(|| f.upstream_cluster.clone()),
            headers,
            downstream_nodes: f.downstream_nodes.clone(),
            max_active_faults: f.max_active_faults.as_ref().map(|m| m.value),
        })
    }
}
