//! Istio's cluster names: `outbound|9080|v1|reviews.default.svc.cluster.local`,
//! `inbound|9080||`. Istio's stats and access logs carry them, and tooling parses them back.

use crate::XdsError;
use std::fmt;

/// Which way traffic flows through the sidecar for a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// A parsed Istio cluster name: `direction|port|subset|host`. `subset` and `host` may be
/// empty (`inbound|9080||`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterName {
    pub direction: Direction,
    pub port: u16,
    pub subset: String,
    pub host: String,
}

impl ClusterName {
    /// `outbound|port|subset|host`.
    pub fn outbound(port: u16, subset: &str, host: &str) -> ClusterName {
        ClusterName {
            direction: Direction::Outbound,
            port,
            subset: subset.to_owned(),
            host: host.to_owned(),
        }
    }

    /// `inbound|port|subset|host` (Istio leaves subset and host empty for sidecars).
    pub fn inbound(port: u16, subset: &str, host: &str) -> ClusterName {
        ClusterName {
            direction: Direction::Inbound,
            port,
            subset: subset.to_owned(),
            host: host.to_owned(),
        }
    }

    /// Parses `direction|port|subset|host`; anything else (including `PassthroughCluster`)
    /// is an error.
    pub fn parse(name: &str) -> Result<ClusterName, XdsError> {
        let bad = || XdsError::ClusterName(name.to_owned());
        let mut parts = name.split('|');
        let (Some(dir), Some(port), Some(subset), Some(host), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let direction = match dir {
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            _ => return Err(bad()),
        };
        Ok(ClusterName {
            direction,
            port: port.parse().map_err(|_| bad())?,
            subset: subset.to_owned(),
            host: host.to_owned(),
        })
    }

    /// Istio's stat-friendly spelling: `outbound_.9080_.v1_.reviews.default.svc.cluster.local`
    /// (what Envoy's `alt_stat_name` carries; `|` is not allowed in stat names).
    pub fn stat_name(&self) -> String {
        format!(
            "{}_.{}_.{}_.{}",
            self.direction.as_str(),
            self.port,
            self.subset,
            self.host
        )
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}|{}|{}|{}",
            self.direction.as_str(),
            self.port,
            self.subset,
            self.host
        )
    }
}

/// Istio's catch-all cluster that forwards to the original destination.
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";
/// Istio's cluster that drops everything sent to it.
pub const BLACKHOLE_CLUSTER: &str = "BlackHoleCluster";
/// Istio's cluster for inbound traffic to a port the sidecar does not know.
pub const INBOUND_PASSTHROUGH_CLUSTER: &str = "InboundPassthroughCluster";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases = [
            "outbound|9080|v1|reviews.default.svc.cluster.local",
            "outbound|9080||reviews.default.svc.cluster.local",
            "inbound|9080||",
        ];
        for case in cases {
            let parsed = ClusterName::parse(case).expect(case);
            assert_eq!(parsed.to_string(), case);
        }
    }

    #[test]
    fn builds_and_stat_names() {
        let c = ClusterName::outbound(9080, "v1", "reviews.default.svc.cluster.local");
        assert_eq!(
            c.to_string(),
            "outbound|9080|v1|reviews.default.svc.cluster.local"
        );
        assert_eq!(
            c.stat_name(),
            "outbound_.9080_.v1_.reviews.default.svc.cluster.local"
        );
        assert_eq!(ClusterName::inbound(80, "", "").to_string(), "inbound|80||");
    }

    #[test]
    fn rejects_non_istio_names() {
        for bad in [
            PASSTHROUGH_CLUSTER,
            "outbound|x|v1|h",
            "sideways|80||h",
            "outbound|80|v1",
            "outbound|80|v1|h|extra",
            "outbound|70000||h",
        ] {
            assert!(ClusterName::parse(bad).is_err(), "{bad}");
        }
    }
}
