//! Active health checking (`Cluster.health_checks`): HTTP and TCP checkers.

use crate::config::util::duration;
use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::config::core::v3::{HealthCheck, health_check};
use std::time::Duration;

/// A converted `HealthCheck`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckConfig {
    pub timeout: Duration,
    pub interval: Duration,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    pub kind: CheckKind,
}

/// What one check does.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// `GET path` with `Host: host`; healthy when the status is in one of the ranges
    /// (`[start, end)`, default `[200, 201)`).
    Http {
        host: String,
        path: String,
        expected: Vec<(u16, u16)>,
    },
    /// Connect; write `send` if any; healthy when every `receive` payload shows up in order.
    Tcp {
        send: Vec<u8>,
        receive: Vec<Vec<u8>>,
    },
}

fn payload(p: &health_check::Payload) -> Result<Vec<u8>, ConfigError> {
    use health_check::payload::Payload as P;
    match &p.payload {
        Some(P::Binary(b)) => Ok(b.clone()),
        Some(P::Text(hex)) => {
            let hex: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
            if !hex.len().is_multiple_of(2) {
                return Err(ConfigError::new("hex text must have an even length").at("text"));
            }
            (0..hex.len())
                .step_by(2)
                .map(|i| {
                    u8::from_str_radix(&hex[i..i + 2], 16)
                        .map_err(|_| ConfigError::new(format!("{hex:?} is not hex")).at("text"))
                })
                .collect()
        }
        None => Err(ConfigError::new("text or binary is required")),
    }
}

impl TryFrom<&HealthCheck> for HealthCheckConfig {
    type Error = ConfigError;

    fn try_from(h: &HealthCheck) -> Result<Self, ConfigError> {
        let required = |d: Option<Duration>, field: &str| {
            d.filter(|d| !d.is_zero())
                .ok_or_else(|| ConfigError::new("a non-zero duration is required").at(field))
        };
        let timeout = required(duration(h.timeout.as_ref()).at("timeout")?, "timeout")?;
        let interval = required(duration(h.interval.as_ref()).at("interval")?, "interval")?;
        let threshold = |v: &Option<envoy_types::pb::google::protobuf::UInt32Value>,
                         field: &str| {
            v.as_ref()
                .map(|v| v.value.max(1))
                .ok_or_else(|| ConfigError::new("is required").at(field))
        };
        use health_check::HealthChecker as C;
        let kind = match &h.health_checker {
            Some(C::HttpHealthCheck(c)) => {
                if c.path.is_empty() || !c.path.starts_with('/') {
                    return Err(
                        ConfigError::new("path must start with '/'").at("http_health_check.path")
                    );
                }
                let mut expected = Vec::new();
                for (i, r) in c.expected_statuses.iter().enumerate() {
                    let ok = (100..=600).contains(&r.start) && r.start < r.end && r.end <= 600;
                    if !ok {
                        return Err(ConfigError::new("ranges must lie within [100, 600)")
                            .at(format!("http_health_check.expected_statuses[{i}]")));
                    }
                    expected.push((r.start as u16, r.end as u16));
                }
                if expected.is_empty() {
                    expected.push((200, 201));
                }
                CheckKind::Http {
                    host: c.host.clone(),
                    path: c.path.clone(),
                    expected,
                }
            }
            Some(C::TcpHealthCheck(t)) => CheckKind::Tcp {
                send: t
                    .send
                    .as_ref()
                    .map(payload)
                    .transpose()
                    .at("tcp_health_check.send")?
                    .unwrap_or_default(),
                receive: t
                    .receive
                    .iter()
                    .enumerate()
                    .map(|(i, p)| payload(p).at(format!("tcp_health_check.receive[{i}]")))
                    .collect::<Result<_, _>>()?,
            },
            Some(C::GrpcHealthCheck(_)) => {
                return Err(ConfigError::new("gRPC health checks are not supported")
                    .at("grpc_health_check"));
            }
            Some(C::CustomHealthCheck(_)) => {
                return Err(ConfigError::new("custom health checks are not supported")
                    .at("custom_health_check"));
            }
            None => {
                return Err(ConfigError::new(
                    "http_health_check or tcp_health_check is required",
                ));
            }
        };
        Ok(HealthCheckConfig {
            timeout,
            interval,
            unhealthy_threshold: threshold(&h.unhealthy_threshold, "unhealthy_threshold")?,
            healthy_threshold: threshold(&h.healthy_threshold, "healthy_threshold")?,
            kind,
        })
    }
}
