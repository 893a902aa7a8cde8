//! Local rate limiting: the HTTP filter (`envoy.filters.http.local_ratelimit`, per
//! connection manager or per route) and the network filter
//! (`envoy.filters.network.local_ratelimit`, per listener filter chain), both a token
//! bucket with Envoy's semantics.

use crate::config::route::HeaderMutation;
use crate::config::util::{Fraction, duration};
use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit as HttpPb;
use envoy_types::pb::envoy::extensions::filters::network::local_ratelimit::v3::LocalRateLimit as NetPb;
use http::StatusCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`.
pub const HTTP_LOCAL_RATELIMIT: &str =
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
/// `envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit`.
pub const NETWORK_LOCAL_RATELIMIT: &str =
    "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit";

/// A token bucket: starts full, gains `tokens_per_fill` every `fill_interval` up to
/// `max_tokens` (refilled lazily, by whole intervals, as Envoy's timer would).
#[derive(Debug)]
pub struct TokenBucket {
    pub max_tokens: u32,
    pub tokens_per_fill: u32,
    pub fill_interval: Duration,
    state: Mutex<(u32, Instant)>,
}

impl TokenBucket {
    fn from_pb(
        b: Option<&envoy_types::pb::envoy::r#type::v3::TokenBucket>,
    ) -> Result<TokenBucket, ConfigError> {
        let b = b.ok_or_else(|| ConfigError::new("token_bucket is required").at("token_bucket"))?;
        if b.max_tokens == 0 {
            return Err(ConfigError::new("must be at least 1").at("token_bucket.max_tokens"));
        }
        let fill_interval = duration(b.fill_interval.as_ref())
            .at("token_bucket.fill_interval")?
            .filter(|d| *d >= Duration::from_millis(50))
            .ok_or_else(|| {
                ConfigError::new("must be at least 50ms").at("token_bucket.fill_interval")
            })?;
        Ok(TokenBucket {
            max_tokens: b.max_tokens,
            tokens_per_fill: b.tokens_per_fill.as_ref().map_or(1, |v| v.value),
            fill_interval,
            state: Mutex::new((b.max_tokens, Instant::now())),
        })
    }

    /// Takes a token if one is left.
    pub fn try_take(&self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = &mut *st;
        let elapsed = last.elapsed();
        let fills = (elapsed.as_nanos() / self.fill_interval.as_nanos().max(1)) as u64;
        if fills > 0 {
            let added = fills.saturating_mul(u64::from(self.tokens_per_fill));
            *tokens = (u64::from(*tokens) + added).min(u64::from(self.max_tokens)) as u32;
            *last += self.fill_interval * fills.min(u64::from(u32::MAX)) as u32;
        }
        if *tokens == 0 {
            return false;
        }
        *tokens -= 1;
        true
    }
}

/// A converted HTTP `LocalRateLimit` (its bucket is shared by every request it covers).
#[derive(Debug)]
pub struct HttpRateLimit {
    pub stat_prefix: String,
    pub bucket: Option<TokenBucket>,
    pub status: StatusCode,
    /// `filter_enabled`: the fraction of requests checked (default 0%, as in Envoy).
    pub enabled: Fraction,
    /// `filter_enforced`: the fraction of limited requests actually answered 429.
    pub enforced: Fraction,
    pub response_headers: HeaderMutation,
    pub request_headers_when_not_enforced: HeaderMutation,
    /// `rate_limited_as_resource_exhausted`: gRPC callers get 8 instead of 14.
    pub grpc_resource_exhausted: bool,
}

fn runtime_fraction(
    f: Option<&envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent>,
    field: &str,
) -> Result<Fraction, ConfigError> {
    match f {
        None => Ok(Fraction {
            numerator: 0,
            denominator: 100,
        }),
        Some(r) => Fraction::from_pb(r.default_value.as_ref()).at(format!("{field}.default_value")),
    }
}

impl TryFrom<&HttpPb> for HttpRateLimit {
    type Error = ConfigError;

    fn try_from(r: &HttpPb) -> Result<Self, ConfigError> {
        if r.stat_prefix.is_empty() {
            return Err(ConfigError::new("stat_prefix is required").at("stat_prefix"));
        }
        if !r.descriptors.is_empty() {
            return Err(ConfigError::new("descriptors are not supported by weft").at("descriptors"));
        }
        if r.local_rate_limit_per_downstream_connection {
            return Err(
                ConfigError::new("per-connection buckets are not supported by weft")
                    .at("local_rate_limit_per_downstream_connection"),
            );
        }
        let status = match &r.status {
            None => StatusCode::TOO_MANY_REQUESTS,
            Some(s) => u16::try_from(s.code)
                .ok()
                .filter(|c| *c >= 400)
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| ConfigError::new("must be a 4xx or 5xx status").at("status.code"))?,
        };
        Ok(HttpRateLimit {
            stat_prefix: r.stat_prefix.clone(),
            // A filter-level config without a bucket only enables per-route ones.
            bucket: r
                .token_bucket
                .as_ref()
                .map(|b| TokenBucket::from_pb(Some(b)))
                .transpose()?,
            status,
            enabled: runtime_fraction(r.filter_enabled.as_ref(), "filter_enabled")?,
            enforced: runtime_fraction(r.filter_enforced.as_ref(), "filter_enforced")?,
            response_headers: HeaderMutation::convert(&r.response_headers_to_add, &[], "response")?,
            request_headers_when_not_enforced: HeaderMutation::convert(
                &r.request_headers_to_add_when_not_enforced,
                &[],
                "request",
            )?,
            grpc_resource_exhausted: r.rate_limited_as_resource_exhausted,
        })
    }
}

/// A converted network `LocalRateLimit`: connections beyond the bucket are closed at once.
#[derive(Debug)]
pub struct ConnectionRateLimit {
    pub stat_prefix: String,
    pub bucket: TokenBucket,
}

impl TryFrom<&NetPb> for ConnectionRateLimit {
    type Error = ConfigError;

    fn try_from(r: &NetPb) -> Result<Self, ConfigError> {
        if r.stat_prefix.is_empty() {
            return Err(ConfigError::new("stat_prefix is required").at("stat_prefix"));
        }
        if r.runtime_enabled.is_some() {
            return Err(
                ConfigError::new("runtime overrides are not supported by weft")
                    .at("runtime_enabled"),
            );
        }
        Ok(ConnectionRateLimit {
            stat_prefix: r.stat_prefix.clone(),
            bucket: TokenBucket::from_pb(r.token_bucket.as_ref())?,
        })
    }
}
