//! Envoy's response flags (`%RESPONSE_FLAGS%`): why a request ended the way it did.

use std::fmt;

/// A set of response flags; empty renders as `-`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFlags(u32);

impl ResponseFlags {
    /// `UH`: no healthy upstream host.
    pub const NO_HEALTHY_UPSTREAM: ResponseFlags = ResponseFlags(1);
    /// `UF`: upstream connection failure.
    pub const UPSTREAM_CONNECTION_FAILURE: ResponseFlags = ResponseFlags(1 << 1);
    /// `UT`: upstream request timeout.
    pub const UPSTREAM_REQUEST_TIMEOUT: ResponseFlags = ResponseFlags(1 << 2);
    /// `NR`: no route configured.
    pub const NO_ROUTE_FOUND: ResponseFlags = ResponseFlags(1 << 3);
    /// `NC`: upstream cluster not found.
    pub const NO_CLUSTER_FOUND: ResponseFlags = ResponseFlags(1 << 4);
    /// `UR`: upstream remote reset.
    pub const UPSTREAM_REMOTE_RESET: ResponseFlags = ResponseFlags(1 << 5);
    /// `DC`: downstream connection termination.
    pub const DOWNSTREAM_CONNECTION_TERMINATION: ResponseFlags = ResponseFlags(1 << 6);
    /// `UC`: upstream connection termination.
    pub const UPSTREAM_CONNECTION_TERMINATION: ResponseFlags = ResponseFlags(1 << 7);
    /// `DI`... not used; `DPE`: downstream protocol error.
    pub const DOWNSTREAM_PROTOCOL_ERROR: ResponseFlags = ResponseFlags(1 << 8);
    /// `UPE`: upstream protocol error.
    pub const UPSTREAM_PROTOCOL_ERROR: ResponseFlags = ResponseFlags(1 << 9);
    /// `SI`: stream idle timeout.
    pub const STREAM_IDLE_TIMEOUT: ResponseFlags = ResponseFlags(1 << 10);

    /// `URX`: upstream retry limit exceeded.
    pub const UPSTREAM_RETRY_LIMIT_EXCEEDED: ResponseFlags = ResponseFlags(1 << 11);

    /// `DI`: the request was delayed by the fault filter.
    pub const DELAY_INJECTED: ResponseFlags = ResponseFlags(1 << 12);
    /// `FI`: the request was aborted by the fault filter.
    pub const FAULT_INJECTED: ResponseFlags = ResponseFlags(1 << 13);
    /// `UO`: upstream overflow (circuit breaking).
    pub const UPSTREAM_OVERFLOW: ResponseFlags = ResponseFlags(1 << 14);
    /// `RL`: rate limited locally.
    pub const RATE_LIMITED: ResponseFlags = ResponseFlags(1 << 15);
    /// `DT`: the stream exceeded its maximum duration.
    pub const DURATION_TIMEOUT: ResponseFlags = ResponseFlags(1 << 16);

    const NAMES: [(ResponseFlags, &'static str); 17] = [
        (Self::NO_HEALTHY_UPSTREAM, "UH"),
        (Self::UPSTREAM_CONNECTION_FAILURE, "UF"),
        (Self::UPSTREAM_REQUEST_TIMEOUT, "UT"),
        (Self::NO_ROUTE_FOUND, "NR"),
        (Self::NO_CLUSTER_FOUND, "NC"),
        (Self::UPSTREAM_REMOTE_RESET, "UR"),
        (Self::DOWNSTREAM_CONNECTION_TERMINATION, "DC"),
        (Self::UPSTREAM_CONNECTION_TERMINATION, "UC"),
        (Self::DOWNSTREAM_PROTOCOL_ERROR, "DPE"),
        (Self::UPSTREAM_PROTOCOL_ERROR, "UPE"),
        (Self::STREAM_IDLE_TIMEOUT, "SI"),
        (Self::UPSTREAM_RETRY_LIMIT_EXCEEDED, "URX"),
        (Self::DELAY_INJECTED, "DI"),
        (Self::FAULT_INJECTED, "FI"),
        (Self::UPSTREAM_OVERFLOW, "UO"),
        (Self::RATE_LIMITED, "RL"),
        (Self::DURATION_TIMEOUT, "DT"),
    ];

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: ResponseFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Adds the flags of `other`.
    pub fn insert(&mut self, other: ResponseFlags) {
        self.0 |= other.0;
    }
}

impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_envoy() {
        assert_eq!(ResponseFlags::default().to_string(), "-");
        let mut f = ResponseFlags::NO_ROUTE_FOUND;
        assert_eq!(f.to_string(), "NR");
        f.insert(ResponseFlags::NO_HEALTHY_UPSTREAM);
        assert_eq!(f.to_string(), "UH,NR");
    }
}
