//! Outlier detection (`Cluster.outlier_detection`) with Envoy's defaults.

use crate::config::util::duration;
use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::config::cluster::v3::OutlierDetection;
use std::time::Duration;

/// A converted `OutlierDetection`. Enforcement values are percentages (0..=100).
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierConfig {
    pub consecutive_5xx: u32,
    pub consecutive_gateway_failure: u32,
    pub consecutive_local_origin_failure: u32,
    /// Count connect failures, resets and timeouts on their own (`consecutive_local_origin_
    /// failure`) instead of as 503/504 responses.
    pub split_external_local_origin_errors: bool,
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_time: Duration,
    pub max_ejection_percent: u32,
    pub enforcing_consecutive_5xx: u32,
    pub enforcing_consecutive_gateway_failure: u32,
    pub enforcing_consecutive_local_origin_failure: u32,
    pub enforcing_success_rate: u32,
    pub enforcing_local_origin_success_rate: u32,
    pub success_rate_minimum_hosts: u32,
    pub success_rate_request_volume: u32,
    /// Divided by 1000: hosts below mean − factor × stdev are outliers.
    pub success_rate_stdev_factor: u32,
    pub failure_percentage_threshold: u32,
    pub enforcing_failure_percentage: u32,
    pub enforcing_failure_percentage_local_origin: u32,
    pub failure_percentage_minimum_hosts: u32,
    pub failure_percentage_request_volume: u32,
}

impl TryFrom<&OutlierDetection> for OutlierConfig {
    type Error = ConfigError;

    fn try_from(o: &OutlierDetection) -> Result<Self, ConfigError> {
        let u = |v: &Option<envoy_types::pb::google::protobuf::UInt32Value>, d: u32| {
            v.as_ref().map_or(d, |v| v.value)
        };
        let pct = |v: &Option<envoy_types::pb::google::protobuf::UInt32Value>,
                   d: u32,
                   field: &str|
         -> Result<u32, ConfigError> {
            let n = u(v, d);
            if n > 100 {
                return Err(ConfigError::new(format!("{n} is more than 100")).at(field));
            }
            Ok(n)
        };
        let base = duration(o.base_ejection_time.as_ref())
            .at("base_ejection_time")?
            .unwrap_or(Duration::from_secs(30));
        Ok(OutlierConfig {
            consecutive_5xx: u(&o.consecutive_5xx, 5),
            consecutive_gateway_failure: u(&o.consecutive_gateway_failure, 5),
            consecutive_local_origin_failure: u(&o.consecutive_local_origin_failure, 5),
            split_external_local_origin_errors: o.split_external_local_origin_errors,
            interval: duration(o.interval.as_ref())
                .at("interval")?
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(10)),
            base_ejection_time: base,
            max_ejection_time: duration(o.max_ejection_time.as_ref())
                .at("max_ejection_time")?
                .unwrap_or(Duration::from_secs(300))
                .max(base),
            max_ejection_percent: pct(&o.max_ejection_percent, 10, "max_ejection_percent")?,
            enforcing_consecutive_5xx: pct(
                &o.enforcing_consecutive_5xx,
                100,
                "enforcing_consecutive_5xx",
            )?,
            enforcing_consecutive_gateway_failure: pct(
                &o.enforcing_consecutive_gateway_failure,
                0,
                "enforcing_consecutive_gateway_failure",
            )?,
            enforcing_consecutive_local_origin_failure: pct(
                &o.enforcing_consecutive_local_origin_failure,
                100,
                "enforcing_consecutive_local_origin_failure",
            )?,
            enforcing_success_rate: pct(&o.enforcing_success_rate, 100, "enforcing_success_rate")?,
            enforcing_local_origin_success_rate: pct(
                &o.enforcing_local_origin_success_rate,
                100,
                "enforcing_local_origin_success_rate",
            )?,
            success_rate_minimum_hosts: u(&o.success_rate_minimum_hosts, 5),
            success_rate_request_volume: u(&o.success_rate_request_volume, 100),
            success_rate_stdev_factor: u(&o.success_rate_stdev_factor, 1900),
            failure_percentage_threshold: pct(
                &o.failure_percentage_threshold,
                85,
                "failure_percentage_threshold",
            )?,
            enforcing_failure_percentage: pct(
                &o.enforcing_failure_percentage,
                0,
                "enforcing_failure_percentage",
            )?,
            enforcing_failure_percentage_local_origin: pct(
                &o.enforcing_failure_percentage_local_origin,
                0,
                "enforcing_failure_percentage_local_origin",
            )?,
            failure_percentage_minimum_hosts: u(&o.failure_percentage_minimum_hosts, 5),
            failure_percentage_request_volume: u(&o.failure_percentage_request_volume, 50),
        })
    }
}
