//! `VirtualService` (networking.istio.io v1, v1beta1, v1alpha3): how requests sent to a host
//! are matched and routed.
//!
//! Also the routing pieces other kinds reuse — [`Destination`], [`PortSelector`],
//! [`StringMatch`], [`Percent`], [`Headers`] — and Istio's checks for host names, gateway
//! names and `exportTo` lists ([`wildcard_host_reason`], [`check_gateway_name`],
//! [`check_export_to`]).
//!
//! Validation follows Istio's own rules (`pkg/config/validation` in istio/istio): the same
//! findings, reported at the exact field and in plain words.

use crate::common::Duration;
use crate::validate::{
    Ctx, Validate, check_duration_min, check_labels, check_port, check_regex, suggest,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// =======================================================================================
// Types
// =======================================================================================

/// Routing rules for traffic sent to a set of hosts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualService {
    /// Hosts the rules apply to: DNS names (optionally `*.`-wildcarded), short names, or IPs
    /// for gateways. Empty only for a delegate VirtualService.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Gateways (`name` or `namespace/name`) and sidecars (`mesh`) that apply the rules;
    /// empty means `mesh`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Ordered HTTP/1.1, HTTP/2 and gRPC rules; the first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpRoute>,
    /// Ordered rules for TLS passthrough traffic, matched by SNI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<TlsRoute>,
    /// Ordered rules for opaque TCP traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<TcpRoute>,
    /// Namespaces that can see this VirtualService: `.`, `*` or namespace names (default all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
}

impl VirtualService {
    /// A VirtualService without hosts is a delegate: only reachable from another
    /// VirtualService's `http[].delegate`.
    pub fn is_delegate(&self) -> bool {
        self.hosts.is_empty()
    }

    /// True when the rules apply to sidecars (`gateways` empty or containing `mesh`).
    pub fn applies_to_mesh(&self) -> bool {
        self.gateways.is_empty() || self.gateways.iter().any(|g| g == MESH_GATEWAY)
    }

    /// True when the rules apply only to gateways (`gateways` set and without `mesh`).
    pub fn is_gateway_bound(&self) -> bool {
        !self.applies_to_mesh()
    }
}

/// The reserved gateway name meaning "every sidecar in the mesh".
pub const MESH_GATEWAY: &str = "mesh";

/// Where traffic goes: a service (host), optionally one of its subsets and a port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// Service name from the registry (Kubernetes service or ServiceEntry host); required.
    #[serde(default)]
    pub host: String,
    /// Subset (version) of the service, defined in a DestinationRule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// Port of the service; needed only when it exposes more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
}

/// A port of a service, by number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSelector {
    /// Port number, 1-65535.
    #[serde(default)]
    pub number: u32,
}

/// A percentage between 0 and 100, with fractions (`{value: 0.5}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Percent {
    /// The percentage.
    #[serde(default)]
    pub value: f64,
}

/// How a string is matched: exactly one of `exact`, `prefix` or `regex` (RE2 syntax).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StringMatch {
    /// The whole string must equal this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// The string must start with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The whole string must match this RE2 regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

impl StringMatch {
    /// True when no match type is set (for headers and query parameters: "is present").
    pub fn is_empty(&self) -> bool {
        self.exact.is_none() && self.prefix.is_none() && self.regex.is_none()
    }
}

/// One HTTP routing rule: match conditions, then what to do with the request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRoute {
    /// Name used in access logs and statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Conditions; the rule applies when any one block matches (all conditions in a block must).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r#match: Vec<HttpMatchRequest>,
    /// Destinations to forward to, with weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<HttpRouteDestination>,
    /// Answer with an HTTP redirect instead of forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<HttpRedirect>,
    /// Answer with a fixed response instead of forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<HttpDirectResponse>,
    /// Hand the rule over to another (delegate) VirtualService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate: Option<Delegate>,
    /// Rewrite the path or authority before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<HttpRewrite>,
    /// Timeout for the whole request (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<HttpRetry>,
    /// Fault injection (delays and aborts) for testing resilience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<HttpFaultInjection>,
    /// Also send a copy of each request to this destination (fire and forget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Destination>,
    /// Deprecated: whole-number share of requests to mirror; use `mirrorPercentage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_percent: Option<u32>,
    /// Deprecated spelling of `mirrorPercent` that Istio's CRD also accepts.
    #[serde(
        rename = "mirror_percent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mirror_percent_snake: Option<u32>,
    /// Share of requests copied to `mirror` (default 100%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_percentage: Option<Percent>,
    /// Several mirror destinations, each with its own share (instead of `mirror`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<HttpMirrorPolicy>,
    /// Cross-origin resource sharing policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors_policy: Option<CorsPolicy>,
    /// Request and response header changes for every destination of the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
}

/// Conditions on an HTTP request; all that are set must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMatchRequest {
    /// Name appended to the route's name in access logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Request path (case-sensitive unless `ignoreUriCase`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    /// URI scheme (`http`, `https`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<StringMatch>,
    /// HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// Authority (Host header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<StringMatch>,
    /// Request headers by lower-case name; an empty match means "present".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
    /// Port the request was addressed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Only for clients (source workloads) with these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_labels: BTreeMap<String, String>,
    /// Only on these gateways (overrides the VirtualService's `gateways`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Query parameters by name; an empty match means "present".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_params: BTreeMap<String, StringMatch>,
    /// Match the path case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_uri_case: Option<bool>,
    /// Headers that must NOT match (an empty match means "absent").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub without_headers: BTreeMap<String, StringMatch>,
    /// Only for clients in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespace: Option<String>,
    /// Human-readable prefix for this route's statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat_prefix: Option<String>,
}

/// A weighted HTTP destination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteDestination {
    /// Where to send the request; required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Relative share of traffic (0 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Header changes for requests to and responses from this destination only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
}

/// A weighted TCP or TLS destination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteDestination {
    /// Where to send the connection; required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Relative share of connections (0 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// Header changes for requests and responses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Headers {
    /// Applied to the request before it is forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderOperations>,
    /// Applied to the response before it is returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HeaderOperations>,
}

/// Set, append and remove headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderOperations {
    /// Overwrite these headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Append these values (comma-separated with any existing value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    /// Remove these headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// An HTTP redirect answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRedirect {
    /// Replace the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Replace the authority (host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Replace the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Derive the port instead of naming it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derive_port: Option<RedirectPortSelection>,
    /// Replace the scheme (`http` or `https`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Status code of the redirect (default 301).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_code: Option<u32>,
}

/// How a redirect chooses its port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedirectPortSelection {
    /// 80 for http, 443 for https.
    #[default]
    FromProtocolDefault,
    /// The port the request arrived on.
    FromRequestPort,
}

/// A fixed response, sent without contacting any destination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpDirectResponse {
    /// HTTP status code; required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u32>,
    /// Response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<HttpBody>,
}

/// A response body: text or base64-encoded bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpBody {
    /// Body as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    /// Body as base64-encoded bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
}

/// A reference to a delegate VirtualService.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delegate {
    /// Name of the delegate VirtualService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its namespace (default: the root's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Path and authority rewrites applied before forwarding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRewrite {
    /// Replace the matched path (or the matched prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Replace the authority (Host header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Rewrite the path with a regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

/// A regex substitution on the path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexRewrite {
    /// RE2 expression to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#match: Option<String>,
    /// Replacement; may use capture groups (`\1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<String>,
}

/// Retry policy for HTTP requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRetry {
    /// Number of retries (0 disables retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// Timeout of each attempt, including the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    /// Comma-separated conditions to retry on (Envoy's `retry_on` names and status codes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
    /// Allow retries to endpoints in other localities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_remote_localities: Option<bool>,
    /// Avoid endpoints already tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_ignore_previous_hosts: Option<bool>,
    /// Base interval between retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Duration>,
}

/// Faults injected into requests on the client side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpFaultInjection {
    /// Delay requests before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<FaultDelay>,
    /// Fail requests with an error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultAbort>,
}

/// A delay fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultDelay {
    /// Deprecated: whole-number share of requests to delay; use `percentage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i32>,
    /// Fixed delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_delay: Option<Duration>,
    /// Exponential delay (not supported by Istio yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponential_delay: Option<Duration>,
    /// Share of requests to delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
}

/// An abort fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultAbort {
    /// HTTP status to answer with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i32>,
    /// gRPC status name to answer with (`UNAVAILABLE`, `NOT_FOUND`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<String>,
    /// HTTP/2 error (not supported by Istio yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_error: Option<String>,
    /// Share of requests to abort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
}

/// One mirror destination with its share of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMirrorPolicy {
    /// Where the copies go; required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Share of requests copied (default 100%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
}

/// Cross-origin resource sharing (CORS) policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsPolicy {
    /// Origins allowed to make cross-origin requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<StringMatch>,
    /// Deprecated: exact origins; use `allowOrigins`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origin: Vec<String>,
    /// Methods allowed (`Access-Control-Allow-Methods`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    /// Request headers allowed (`Access-Control-Allow-Headers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    /// Response headers browsers may read (`Access-Control-Expose-Headers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// How long browsers may cache the preflight answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
    /// Allow requests with credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    /// What to do with preflight requests from origins that do not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched_preflights: Option<UnmatchedPreflights>,
}

/// Handling of CORS preflight requests whose origin is not allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnmatchedPreflights {
    /// Same as `FORWARD`.
    #[default]
    Unspecified,
    /// Forward them to the destination.
    Forward,
    /// Answer them without CORS headers.
    Ignore,
}

/// A rule for TLS passthrough traffic, matched by SNI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsRoute {
    /// Conditions (at least one, each with `sniHosts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r#match: Vec<TlsMatchAttributes>,
    /// Destinations; required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<RouteDestination>,
}

/// Conditions on a TLS connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsMatchAttributes {
    /// SNI names to match (wildcards allowed); required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sni_hosts: Vec<String>,
    /// Destination IPs or CIDR blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_subnets: Vec<String>,
    /// Destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Only for clients with these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_labels: BTreeMap<String, String>,
    /// Only on these gateways.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Only for clients in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespace: Option<String>,
}

/// A rule for opaque TCP traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRoute {
    /// Conditions; the rule applies when any one matches (none: all traffic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r#match: Vec<L4MatchAttributes>,
    /// Destinations; required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<RouteDestination>,
}

/// Conditions on a TCP connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L4MatchAttributes {
    /// Destination IPs or CIDR blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_subnets: Vec<String>,
    /// Destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Source IP or CIDR block (undocumented by Istio; kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_subnet: Option<String>,
    /// Only for clients with these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_labels: BTreeMap<String, String>,
    /// Only on these gateways.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// Only for clients in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespace: Option<String>,
}

// =======================================================================================
// Shared checks (also used by DestinationRule and other networking kinds)
// =======================================================================================

use crate::validate::length_reason;
pub use crate::validate::{fqdn_reason, is_istio_dns_label, wildcard_host_reason};

/// True for an IPv4 or IPv6 address.
pub fn is_ip_address(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// Why `s` is not an IP address or CIDR block (`10.0.0.0/8`, `2001:db8::/32`), if it is not.
pub fn ip_subnet_reason(s: &str) -> Option<String> {
    if s.matches('/').count() == 1 {
        let (addr, bits) = s.split_once('/').unwrap_or((s, ""));
        let max = match addr.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => 32,
            Ok(std::net::IpAddr::V6(_)) => 128,
            Err(_) => {
                return Some(format!(
                    "`{s}` is not a valid CIDR block: `{addr}` is not an IP address"
                ));
            }
        };
        match bits.parse::<u32>() {
            Ok(n) if n <= max && !bits.starts_with('+') => None,
            _ => Some(format!(
                "`{s}` is not a valid CIDR block: the prefix length must be a number from 0 to {max}"
            )),
        }
    } else if is_ip_address(s) {
        None
    } else {
        Some(format!("`{s}` is not a valid IP address or CIDR block"))
    }
}

/// True when two hosts overlap: equal, or one wildcard covers the other (Istio's `host.Name.Matches`).
pub fn hosts_overlap(a: &str, b: &str) -> bool {
    let a = a.to_ascii_lowercase();
    let b = b.to_ascii_lowercase();
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(sa), Some(sb)) => {
            if sa.len() > sb.len() {
                sa.ends_with(sb)
            } else {
                sb.ends_with(sa)
            }
        }
        (Some(sa), None) => b.ends_with(sa),
        (None, Some(sb)) => a.ends_with(sb),
        (None, None) => a == b,
    }
}

/// True when every name `inner` covers is also covered by `outer` (Istio's `host.Name.SubsetOf`).
pub fn host_subset_of(inner: &str, outer: &str) -> bool {
    let inner = inner.to_ascii_lowercase();
    let outer = outer.to_ascii_lowercase();
    match (inner.strip_prefix('*'), outer.strip_prefix('*')) {
        (Some(si), Some(so)) => si.ends_with(so),
        (Some(_), None) => false,
        (None, Some(so)) => inner.ends_with(so),
        (None, None) => inner == outer,
    }
}

/// A gateway reference: `mesh`, `name` (in the resource's namespace) or `namespace/name`.
pub fn check_gateway_name(cx: &mut Ctx, name: &str) {
    match name.split_once('/') {
        None => {
            if let Some((n, rest)) = name.split_once('.') {
                let ns = rest.split('.').next().unwrap_or(rest);
                cx.warn(format!(
                    "gateway `{name}` uses the legacy `name.namespace` form: write it as `{ns}/{n}`"
                ));
            }
            if let Some(r) = fqdn_reason(name) {
                cx.error(format!("gateway `{name}` is not a valid gateway name: {r}"));
            }
        }
        Some((ns, gw)) => {
            if ns.is_empty() || gw.is_empty() {
                cx.error(format!(
                    "gateway `{name}` must be written `namespace/name` with both parts set"
                ));
                return;
            }
            if !is_istio_dns_label(ns) {
                cx.error(format!(
                    "gateway `{name}` has an invalid namespace `{ns}`: it must be a DNS label (letters, digits and '-')"
                ));
            }
            if !is_istio_dns_label(gw) {
                cx.error(format!(
                    "gateway `{name}` has an invalid name `{gw}`: it must be a DNS label (letters, digits and '-', no dots)"
                ));
            }
        }
    }
}

/// The `exportTo` list of a VirtualService, DestinationRule or ServiceEntry, at field
/// `exportTo` of the current path: `.`, `*`, `~` or namespace names, no duplicates, `*`
/// and `~` alone. `selector_bound` applies the rule for DestinationRules with a
/// `workloadSelector` (they may only be exported to their own namespace).
pub fn check_export_to(cx: &mut Ctx, export_to: &[String], selector_bound: bool) {
    if export_to.is_empty() {
        return;
    }
    let ns = cx.namespace.clone();
    // (namespace it stands for, as written)
    let mut seen: Vec<(String, String)> = Vec::new();
    cx.each("exportTo", export_to, |cx, _, e| {
        let key = if e == "." { ns.clone() } else { e.clone() };
        if let Some((_, earlier)) = seen.iter().find(|(k, _)| *k == key) {
            if earlier == e {
                cx.error(format!("`{e}` is listed more than once"));
            } else {
                cx.error(format!("`.` and `{ns}` both mean this namespace: list it only once"));
            }
        } else if matches!(e.as_str(), "." | "*" | "~") || is_istio_dns_label(e) {
            seen.push((key, e.clone()));
        } else {
            cx.error(format!(
                "`{e}` is not a valid exportTo value: use `.` (this namespace), `*` (every namespace) or a namespace name"
            ));
        }
    });
    let seen: Vec<String> = seen.into_iter().map(|(k, _)| k).collect();
    if selector_bound && !seen.is_empty() && (!seen.contains(&ns) || seen.len() > 1) {
        cx.error_at(
            "exportTo",
            format!(
                "a DestinationRule with a `workloadSelector` can only be exported to its own namespace: use `exportTo: [\".\"]` (namespace `{ns}`)"
            ),
        );
    }
    if seen.iter().any(|s| s == "*") && export_to.len() > 1 {
        cx.error_at(
            "exportTo",
            "`*` already exports to every namespace: it cannot be combined with other values",
        );
    }
    if seen.iter().any(|s| s == "~") && export_to.len() > 1 {
        cx.error_at(
            "exportTo",
            "`~` (visible to no namespace) cannot be combined with other values",
        );
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// True for a header name made of RFC 7230 token characters.
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_tchar)
}

const PSEUDO_HEADERS: &[&str] = &[":method", ":scheme", ":authority", ":path", ":status"];

/// A header name that routes on a JWT claim (`@request.auth.claims.group`).
pub fn is_jwt_claim_header(name: &str) -> bool {
    name.strip_prefix("@request.auth.claims")
        .is_some_and(|rest| {
            (rest.starts_with('.') && rest.len() > 1)
                || (rest.starts_with('[') && rest.ends_with(']'))
        })
}

/// A header name in a match: a token, a pseudo-header or a JWT claim.
fn check_match_header_name(cx: &mut Ctx, name: &str) {
    if name.is_empty() {
        cx.error("header name must not be empty");
    } else if !is_jwt_claim_header(name) && !PSEUDO_HEADERS.contains(&name) && !is_header_name(name)
    {
        cx.error(format!(
            "`{name}` is not a valid header name: use letters, digits and !#$%&'*+-.^_`|~"
        ));
    }
}

fn is_authority_header(name: &str) -> bool {
    name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host")
}

/// A header name in `set`/`add`/`remove`. `authority_allowed` for request `set`/`add`,
/// where `:authority` and `host` rewrite the authority.
fn check_header_op_name(cx: &mut Ctx, name: &str, authority_allowed: bool) {
    if name.is_empty() {
        cx.error("header name must not be empty");
    } else if authority_allowed {
        if name.starts_with(':') && !is_authority_header(name) {
            cx.error(format!(
                "header `{name}` cannot be changed: headers starting with ':' are set by the proxy"
            ));
        }
    } else if name.eq_ignore_ascii_case("host") {
        cx.error(format!(
            "header `{name}` cannot be changed here: set the authority with `rewrite.authority` or `headers.request.set`"
        ));
    } else if name.starts_with(':') {
        cx.error(format!(
            "header `{name}` cannot be changed: headers starting with ':' are set by the proxy"
        ));
    }
}

/// Why an Envoy header value is invalid, if it is: no control characters, and `%` only
/// as `%%` or around a `%VARIABLE%` / `%VARIABLE(args)%` expression.
fn header_value_reason(value: &str) -> Option<String> {
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Some("it contains a control character".into());
    }
    #[derive(PartialEq)]
    enum S {
        Literal,
        Name,
        ExpectArray,
        ExpectString,
        Str,
        ExpectDelimOrEnd,
        ExpectArgsEnd,
        ExpectVarEnd,
    }
    let b = value.as_bytes();
    let mut state = S::Literal;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let has_next = i + 1 < b.len();
        match state {
            S::Literal => {
                if c == b'%' {
                    if !has_next {
                        return Some("a lone `%` must be written `%%`".into());
                    }
                    if b[i + 1] == b'%' {
                        i += 1;
                    } else {
                        state = S::Name;
                    }
                }
            }
            S::Name => {
                if c == b'%' {
                    state = S::Literal;
                } else if c == b'(' {
                    state = S::ExpectArray;
                }
            }
            S::ExpectArray => {
                if c == b'[' {
                    state = S::ExpectString;
                } else if c != b' ' {
                    state = S::Str;
                }
            }
            S::ExpectDelimOrEnd => {
                if c == b',' {
                    state = S::ExpectString;
                } else if c == b']' {
                    state = S::ExpectArgsEnd;
                } else if c != b' ' {
                    return Some("expected ',' or ']' in the variable's argument list".into());
                }
            }
            S::ExpectString => {
                if c == b'"' {
                    state = S::Str;
                } else if c != b' ' {
                    return Some("expected '\"' to start an argument of the variable".into());
                }
            }
            S::Str => {
                if c == b'\\' {
                    if !has_next {
                        return Some("unterminated backslash in a variable argument".into());
                    }
                    i += 1;
                } else if c == b')' {
                    state = S::ExpectVarEnd;
                } else if c == b'"' {
                    state = S::ExpectDelimOrEnd;
                }
            }
            S::ExpectArgsEnd => {
                if c == b')' {
                    state = S::ExpectVarEnd;
                } else if c != b' ' {
                    return Some("expected ')' after the variable's arguments".into());
                }
            }
            S::ExpectVarEnd => {
                if c == b'%' {
                    state = S::Literal;
                } else if c != b' ' {
                    return Some("expected '%' to close the variable".into());
                }
            }
        }
        i += 1;
    }
    if state != S::Literal {
        return Some(
            "a `%VARIABLE%` expression is not closed (write a literal `%` as `%%`)".into(),
        );
    }
    None
}

fn check_header_value(cx: &mut Ctx, value: &str) {
    if let Some(r) = header_value_reason(value) {
        cx.error(format!("header value `{value}` is invalid: {r}"));
    }
}

fn check_header_ops(cx: &mut Ctx, ops: &HeaderOperations, request: bool) {
    for (field, map) in [("set", &ops.set), ("add", &ops.add)] {
        cx.field(field, |cx| {
            for (name, value) in map {
                cx.field(name, |cx| {
                    check_header_op_name(cx, name, request);
                    check_header_value(cx, value);
                });
            }
        });
    }
    cx.each("remove", &ops.remove, |cx, _, name| {
        check_header_op_name(cx, name, false)
    });
}

impl Validate for Headers {
    fn validate(&self, cx: &mut Ctx) {
        if let Some(r) = &self.request {
            cx.field("request", |cx| check_header_ops(cx, r, true));
        }
        if let Some(r) = &self.response {
            cx.field("response", |cx| check_header_ops(cx, r, false));
        }
    }
}

/// An RE2 regular expression as Istio accepts it: not empty, at most 1024 characters, compiles.
pub fn check_re2(cx: &mut Ctx, re: &str) {
    if re.is_empty() {
        cx.error("the regular expression must not be empty");
    } else if re.len() > 1024 {
        cx.error(format!(
            "the regular expression is {} characters long; the limit is 1024",
            re.len()
        ));
    } else {
        check_regex(cx, re);
    }
}

impl StringMatch {
    /// Checks the match at the current path. `empty_ok`: an empty match means "present"
    /// (headers, query parameters). `empty_prefix_ok`: `prefix: ""` is allowed (paths).
    pub fn check(&self, cx: &mut Ctx, empty_ok: bool, empty_prefix_ok: bool) {
        let set = [
            ("exact", self.exact.is_some()),
            ("prefix", self.prefix.is_some()),
            ("regex", self.regex.is_some()),
        ];
        let n = set.iter().filter(|s| s.1).count();
        if n > 1 {
            cx.at_most_one(&set);
        } else if n == 0 && !empty_ok {
            cx.error("exactly one of `exact`, `prefix` or `regex` must be set; none is");
        }
        if self.prefix.as_deref() == Some("") && !empty_prefix_ok {
            cx.error_at("prefix", "prefix must not be empty");
        }
        if let Some(re) = &self.regex {
            cx.field("regex", |cx| check_re2(cx, re));
        }
    }
}

fn check_fraction_percent(cx: &mut Ctx, p: &Percent) {
    let v = p.value;
    if v.is_nan() || !(0.0..=100.0).contains(&v) || (v > 0.0 && v < 0.0001) {
        cx.error_at(
            "value",
            format!("percentage {v} is out of range: it must be 0, or between 0.0001 and 100"),
        );
    }
}

fn check_mirror_percent(cx: &mut Ctx, p: &Percent) {
    cx.field("value", |cx| crate::validate::check_percent(cx, p.value));
}

fn check_source_namespace(cx: &mut Ctx, ns: &Option<String>) {
    if let Some(ns) = ns
        && !is_istio_dns_label(ns)
    {
        cx.error_at(
            "sourceNamespace",
            format!("`{ns}` is not a valid namespace name: it must be a DNS label (letters, digits and '-')"),
        );
    }
}

fn check_match_port(cx: &mut Ctx, port: Option<u32>) {
    // Istio reads 0 as "not set".
    if let Some(p) = port.filter(|p| *p != 0) {
        cx.field("port", |cx| check_port(cx, p));
    }
}

/// A subset name: a DNS label.
pub fn check_subset_name(cx: &mut Ctx, name: &str) {
    if name.is_empty() {
        cx.error("subset name must not be empty");
    } else if !is_istio_dns_label(name) {
        cx.error(format!(
            "subset name `{name}` is invalid: it must be a DNS label (1-63 letters, digits or '-', starting and ending with a letter or digit)"
        ));
    }
}

impl Validate for Destination {
    fn validate(&self, cx: &mut Ctx) {
        let host = &self.host;
        if host.is_empty() {
            cx.error_at(
                "host",
                "`host` is required: name the service to send traffic to",
            );
        } else if host == "*" {
            cx.error_at(
                "host",
                "`*` is not a valid destination host: name one service",
            );
        } else if let Some(r) = wildcard_host_reason(host) {
            cx.error_at(
                "host",
                format!("destination host `{host}` is not a valid DNS name: {r}"),
            );
        }
        if let Some(s) = &self.subset {
            cx.field("subset", |cx| check_subset_name(cx, s));
        }
        cx.opt("port", &self.port);
    }
}

impl Validate for PortSelector {
    fn validate(&self, cx: &mut Ctx) {
        cx.field("number", |cx| check_port(cx, self.number));
    }
}

fn check_destination_opt(cx: &mut Ctx, d: &Option<Destination>) {
    match d {
        None => cx.error_at("destination", "`destination` is required"),
        Some(d) => cx.field("destination", |cx| d.validate(cx)),
    }
}

fn check_weight(cx: &mut Ctx, w: Option<i32>) {
    if let Some(w) = w
        && w < 0
    {
        cx.error_at(
            "weight",
            format!("weight {w} is negative: weights must be 0 or more"),
        );
    }
}

fn check_total_weight(cx: &mut Ctx, weights: impl Iterator<Item = Option<i32>>) {
    let ws: Vec<i64> = weights.map(|w| i64::from(w.unwrap_or(0))).collect();
    if ws.len() > 1 && ws.iter().sum::<i64>() == 0 {
        cx.error_at(
            "route",
            "all destination weights are 0 (a weight left out counts as 0): give at least one destination a weight above 0",
        );
    }
}

// =======================================================================================
// VirtualService validation
// =======================================================================================

/// What an HTTP route's checks need to know about its VirtualService.
struct VsCtx {
    delegate_vs: bool,
}

impl Validate for VirtualService {
    fn validate(&self, cx: &mut Ctx) {
        let delegate_vs = self.is_delegate();
        let gateway_bound = self.is_gateway_bound();
        let applies_to_mesh = self.applies_to_mesh();

        if delegate_vs {
            if !self.gateways.is_empty() {
                cx.error_at(
                    "gateways",
                    "a delegate VirtualService (one without `hosts`) must not set `gateways`: the root VirtualService that delegates to it decides where it applies",
                );
            }
            if !self.tls.is_empty() {
                cx.error_at(
                    "tls",
                    "a delegate VirtualService (one without `hosts`) cannot have `tls` routes: only HTTP routes can be delegated",
                );
            }
            if !self.tcp.is_empty() {
                cx.error_at(
                    "tcp",
                    "a delegate VirtualService (one without `hosts`) cannot have `tcp` routes: only HTTP routes can be delegated",
                );
            }
            if self.gateways.is_empty() && self.tls.is_empty() && self.tcp.is_empty() {
                cx.info(
                    "no `hosts`: this is a delegate VirtualService, used only through another VirtualService's `delegate`",
                );
            }
        }

        cx.each("gateways", &self.gateways, |cx, _, g| {
            check_gateway_name(cx, g)
        });

        // Hosts.
        let sni = self
            .tls
            .iter()
            .any(|t| t.r#match.iter().any(|m| !m.sni_hosts.is_empty()));
        let mut all_valid = true;
        cx.each("hosts", &self.hosts, |cx, _, h| {
            let reason = if gateway_bound {
                gateway_host_reason(sni, h)
            } else {
                wildcard_host_reason(h)
            };
            if let Some(r) = reason {
                if !is_ip_address(h) {
                    cx.error(format!("host `{h}` is not a valid host name: {r}"));
                    all_valid = false;
                }
            } else if applies_to_mesh && h == "*" {
                cx.error(
                    "host `*` is not allowed when the VirtualService applies to sidecars (`mesh`): name the hosts, or bind it only to gateways with `gateways`",
                );
                all_valid = false;
            }
        });
        if all_valid {
            for j in 0..self.hosts.len() {
                if let Some(i) = (0..j).find(|&i| hosts_overlap(&self.hosts[i], &self.hosts[j])) {
                    let (a, b) = (&self.hosts[i], &self.hosts[j]);
                    cx.field("hosts", |cx| {
                        cx.index(j, |cx| {
                            cx.error(format!(
                                "host `{b}` overlaps `{a}` (hosts[{i}]): list each host once"
                            ))
                        })
                    });
                }
            }
        }

        if self.http.is_empty() && self.tcp.is_empty() && self.tls.is_empty() {
            cx.error("a VirtualService needs at least one `http`, `tcp` or `tls` route");
        }

        let vcx = VsCtx { delegate_vs };
        cx.each("http", &self.http, |cx, _, r| check_http_route(cx, r, &vcx));
        cx.each("tls", &self.tls, |cx, _, r| check_tls_route(cx, r, self));
        cx.each("tcp", &self.tcp, |cx, _, r| check_tcp_route(cx, r));

        check_export_to(cx, &self.export_to, false);

        if !gateway_bound {
            cx.each("http", &self.http, |cx, _, r| {
                cx.each("match", &r.r#match, |cx, _, m| {
                    for (field, map) in [("headers", &m.headers), ("withoutHeaders", &m.without_headers)] {
                        for key in map.keys().filter(|k| is_jwt_claim_header(k)) {
                            cx.field(field, |cx| {
                                cx.field(key, |cx| {
                                    cx.error(format!(
                                        "routing on JWT claim `{key}` works only on gateways: bind this VirtualService to gateways (without `mesh`)"
                                    ))
                                })
                            });
                        }
                    }
                });
            });
        }

        unreachable_http_rules(cx, &self.http);
        unreachable_rules(cx, "tcp", self.tcp.iter().map(|r| &r.r#match));
        unreachable_rules(cx, "tls", self.tls.iter().map(|r| &r.r#match));
    }
}

/// Hosts of a gateway-bound VirtualService; with TLS SNI routes, the `outbound_.<port>_._.<host>`
/// names Istio generates for AUTO_PASSTHROUGH are accepted too.
fn gateway_host_reason(sni: bool, host: &str) -> Option<String> {
    if let Some(r) = length_reason(host) {
        return Some(r);
    }
    if sni && host.starts_with("outbound_") {
        let parts: Vec<&str> = host.split('_').collect();
        let format = "it must look like `outbound_.<port>_._.<hostname>`";
        if parts.len() < 4 {
            return Some(format.into());
        }
        let port = parts[1].trim_matches('.');
        let name = parts[3].trim_matches('.');
        if parts[0] != "outbound"
            || !port.bytes().any(|b| b.is_ascii_digit())
            || !name.bytes().any(|b| b.is_ascii_alphabetic())
        {
            return Some(format.into());
        }
        return None;
    }
    wildcard_host_reason(host)
}

fn check_http_route(cx: &mut Ctx, r: &HttpRoute, v: &VsCtx) {
    // What the rule does: exactly one action.
    if v.delegate_vs && r.delegate.is_some() {
        cx.error_at(
            "delegate",
            "a delegate VirtualService cannot delegate again: only one level of delegation is supported",
        );
    }
    cx.exactly_one(&[
        ("route", !r.route.is_empty()),
        ("redirect", r.redirect.is_some()),
        ("directResponse", r.direct_response.is_some()),
        ("delegate", r.delegate.is_some()),
    ]);
    if r.delegate.is_none() {
        for (action, set) in [
            ("redirect", r.redirect.is_some()),
            ("directResponse", r.direct_response.is_some()),
        ] {
            if !set {
                continue;
            }
            if r.fault.is_some() {
                cx.error_at("fault", format!("`fault` cannot be combined with `{action}`: no request is forwarded to inject a fault into"));
            }
            if r.rewrite.is_some() {
                cx.error_at("rewrite", format!("`rewrite` cannot be combined with `{action}`: no request is forwarded to rewrite"));
            }
        }
    }
    if r.mirror.is_some() && !r.mirrors.is_empty() {
        cx.error_at(
            "mirrors",
            "`mirror` and `mirrors` cannot both be set: list every mirror under `mirrors`",
        );
    }

    cx.each("match", &r.r#match, |cx, _, m| m.validate(cx));
    cx.opt("headers", &r.headers);
    cx.opt("corsPolicy", &r.cors_policy);
    cx.opt("fault", &r.fault);

    for (field, p) in [
        ("mirrorPercent", r.mirror_percent),
        ("mirror_percent", r.mirror_percent_snake),
    ] {
        if let Some(p) = p {
            cx.field(field, |cx| {
                if p > 100 {
                    cx.error(format!(
                        "{field} {p} is out of range: it must be between 0 and 100"
                    ));
                }
                cx.warn(format!(
                    "`{field}` is deprecated: use `mirrorPercentage: {{value: {p}}}`"
                ));
            });
        }
    }
    if let Some(p) = &r.mirror_percentage {
        cx.field("mirrorPercentage", |cx| check_mirror_percent(cx, p));
        if r.mirror.is_none() {
            cx.warn_at(
                "mirrorPercentage",
                "`mirrorPercentage` has no effect without `mirror` (with `mirrors`, set `percentage` on each)",
            );
        }
    }
    cx.opt("mirror", &r.mirror);
    cx.each("mirrors", &r.mirrors, |cx, _, m| {
        check_destination_opt(cx, &m.destination);
        if let Some(p) = &m.percentage {
            cx.field("percentage", |cx| check_mirror_percent(cx, p));
        }
    });

    if let Some(d) = &r.delegate {
        cx.field("delegate", |cx| check_delegate(cx, d));
    }
    cx.opt("redirect", &r.redirect);
    cx.opt("directResponse", &r.direct_response);
    cx.opt("retries", &r.retries);
    cx.opt("rewrite", &r.rewrite);
    check_authority_rewrite(cx, r);

    cx.each("route", &r.route, |cx, _, d| {
        check_destination_opt(cx, &d.destination);
        cx.opt("headers", &d.headers);
        check_weight(cx, d.weight);
    });
    check_total_weight(cx, r.route.iter().map(|d| d.weight));

    if let Some(t) = &r.timeout {
        cx.field("timeout", |cx| check_duration_min(cx, t, 1));
    }
}

fn check_delegate(cx: &mut Ctx, d: &Delegate) {
    match d.name.as_deref() {
        None | Some("") => cx.error_at("name", "`name` is required: name the delegate VirtualService"),
        Some(n) if !crate::validate::is_dns1123_subdomain(n) => cx.error_at(
            "name",
            format!("`{n}` is not a valid VirtualService name: use lower-case letters, digits, '-' and '.'"),
        ),
        Some(_) => {}
    }
    if let Some(ns) = d.namespace.as_deref().filter(|ns| !ns.is_empty())
        && !crate::validate::is_dns1123_label(ns)
    {
        cx.error_at(
            "namespace",
            format!("`{ns}` is not a valid namespace name: it must be a DNS label (lower-case letters, digits and '-')"),
        );
    }
}

/// The authority may be rewritten in one place only: `rewrite.authority` or a request
/// header operation on `:authority`/`host`.
fn check_authority_rewrite(cx: &mut Ctx, r: &HttpRoute) {
    let mut current: Option<(String, String)> = r
        .rewrite
        .as_ref()
        .and_then(|rw| rw.authority.clone())
        .filter(|a| !a.is_empty())
        .map(|a| ("rewrite.authority".to_string(), a));
    let Some(req) = r.headers.as_ref().and_then(|h| h.request.as_ref()) else {
        return;
    };
    for (op, map) in [("set", &req.set), ("add", &req.add)] {
        for (k, v) in map.iter().filter(|(k, _)| is_authority_header(k)) {
            if let Some((where_, prev)) = &current {
                let (where_, prev) = (where_.clone(), prev.clone());
                cx.field("headers", |cx| {
                    cx.field("request", |cx| {
                        cx.field(op, |cx| {
                            cx.field(k, |cx| {
                                cx.error(format!(
                                    "the authority is set twice: `{prev}` by {where_} and `{v}` here; set it in one place"
                                ))
                            })
                        })
                    })
                });
                return;
            }
            current = Some((format!("headers.request.{op}.{k}"), v.clone()));
        }
    }
}

impl Validate for HttpMatchRequest {
    fn validate(&self, cx: &mut Ctx) {
        if let Some(u) = &self.uri {
            cx.field("uri", |cx| u.check(cx, false, true));
        }
        for (field, sm) in [
            ("scheme", &self.scheme),
            ("method", &self.method),
            ("authority", &self.authority),
        ] {
            if let Some(sm) = sm {
                cx.field(field, |cx| sm.check(cx, false, false));
            }
        }
        cx.field("headers", |cx| {
            for (name, sm) in &self.headers {
                cx.field(name, |cx| {
                    check_match_header_name(cx, name);
                    sm.check(cx, true, false);
                });
            }
        });
        cx.field("withoutHeaders", |cx| {
            for (name, sm) in &self.without_headers {
                cx.field(name, |cx| {
                    check_match_header_name(cx, name);
                    // `regex: "*"` is not a regex: Istio reads it as "header present".
                    if sm.regex.as_deref() != Some("*") {
                        sm.check(cx, true, false);
                    }
                });
            }
        });
        cx.field("queryParams", |cx| {
            for (name, sm) in &self.query_params {
                cx.field(name, |cx| sm.check(cx, true, false));
            }
        });
        check_match_port(cx, self.port);
        cx.field("sourceLabels", |cx| check_labels(cx, &self.source_labels));
        cx.each("gateways", &self.gateways, |cx, _, g| {
            check_gateway_name(cx, g)
        });
        check_source_namespace(cx, &self.source_namespace);
    }
}

impl Validate for CorsPolicy {
    fn validate(&self, cx: &mut Ctx) {
        cx.each("allowOrigins", &self.allow_origins, |cx, _, o| {
            let set = [o.exact.as_deref(), o.prefix.as_deref(), o.regex.as_deref()];
            if set.iter().filter(|s| s.is_some()).count() > 1 {
                o.check(cx, false, false);
            } else if set.iter().flatten().all(|s| s.is_empty()) {
                cx.error("an allowed origin needs one of `exact`, `prefix` or `regex` with a non-empty value");
            } else if let Some(re) = &o.regex {
                cx.field("regex", |cx| check_re2(cx, re));
            }
        });
        if !self.allow_origin.is_empty() {
            cx.warn_at(
                "allowOrigin",
                "`allowOrigin` is deprecated: use `allowOrigins` with `exact` (or `prefix`, `regex`) entries",
            );
        }
        cx.each("allowMethods", &self.allow_methods, |cx, _, m| {
            if !CORS_METHODS.contains(&m.as_str()) {
                let mut msg = format!("`{m}` is not a supported CORS method");
                let upper = m.to_ascii_uppercase();
                if CORS_METHODS.contains(&upper.as_str()) {
                    msg.push_str(&format!(": methods are upper-case, write `{upper}`"));
                } else {
                    msg.push_str(
                        ": use GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE or *",
                    );
                }
                cx.error(msg);
            }
        });
        for (field, list) in [
            ("allowHeaders", &self.allow_headers),
            ("exposeHeaders", &self.expose_headers),
        ] {
            cx.each(field, list, |cx, _, h| {
                if h.is_empty() {
                    cx.error("header name must not be empty");
                } else if h != "*" && !is_header_name(h) {
                    cx.error(format!(
                        "`{h}` is not a valid header name: use letters, digits and !#$%&'*+-.^_`|~ (or `*`)"
                    ));
                }
            });
        }
        if let Some(age) = &self.max_age {
            cx.field("maxAge", |cx| {
                check_duration_min(cx, age, 1);
                if age.0.subsec_nanos() != 0 && age.0.subsec_nanos() % 1_000_000 == 0 {
                    cx.error(format!("maxAge {age} must be a whole number of seconds"));
                }
            });
        }
    }
}

const CORS_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

/// gRPC status names accepted in `fault.abort.grpcStatus`.
pub const GRPC_STATUS_NAMES: &[&str] = &[
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

impl Validate for HttpFaultInjection {
    fn validate(&self, cx: &mut Ctx) {
        if self.delay.is_none() && self.abort.is_none() {
            cx.error("`fault` needs a `delay`, an `abort`, or both");
        }
        if let Some(d) = &self.delay {
            cx.field("delay", |cx| {
                cx.exactly_one(&[
                    ("fixedDelay", d.fixed_delay.is_some()),
                    ("exponentialDelay", d.exponential_delay.is_some()),
                ]);
                if let Some(f) = &d.fixed_delay {
                    cx.field("fixedDelay", |cx| check_duration_min(cx, f, 1));
                }
                if d.exponential_delay.is_some() {
                    cx.error_at(
                        "exponentialDelay",
                        "`exponentialDelay` is not supported yet: use `fixedDelay`",
                    );
                }
                if let Some(p) = d.percent {
                    cx.field("percent", |cx| {
                        if !(0..=100).contains(&p) {
                            cx.error(format!(
                                "percent {p} is out of range: it must be between 0 and 100"
                            ));
                        }
                        cx.warn(format!(
                            "`percent` is deprecated: use `percentage: {{value: {p}}}`"
                        ));
                    });
                }
                if let Some(p) = &d.percentage {
                    cx.field("percentage", |cx| check_fraction_percent(cx, p));
                }
            });
        }
        if let Some(a) = &self.abort {
            cx.field("abort", |cx| {
                if let Some(p) = &a.percentage {
                    cx.field("percentage", |cx| check_fraction_percent(cx, p));
                }
                let kinds = [
                    ("httpStatus", a.http_status.is_some()),
                    ("grpcStatus", a.grpc_status.is_some()),
                    ("http2Error", a.http2_error.is_some()),
                ];
                match kinds.iter().filter(|k| k.1).count() {
                    0 => cx.warn("`abort` has no error to return: set `httpStatus` or `grpcStatus`"),
                    1 => {}
                    _ => cx.at_most_one(&kinds),
                }
                if let Some(s) = a.http_status {
                    cx.field("httpStatus", |cx| check_http_status(cx, i64::from(s)));
                }
                if let Some(g) = &a.grpc_status
                    && !GRPC_STATUS_NAMES.contains(&g.as_str())
                {
                    let mut msg = format!("`{g}` is not a gRPC status name");
                    let upper = g.to_ascii_uppercase();
                    if let Some(s) = suggest(&upper, GRPC_STATUS_NAMES.iter().copied()) {
                        msg.push_str(&format!(": did you mean `{s}`?"));
                    } else {
                        msg.push_str(": use a name such as UNAVAILABLE, NOT_FOUND or INTERNAL");
                    }
                    cx.error_at("grpcStatus", msg);
                }
                if a.http2_error.is_some() {
                    cx.error_at("http2Error", "HTTP/2 error aborts are not supported yet: use `httpStatus` or `grpcStatus`");
                }
            });
        }
    }
}

fn check_http_status(cx: &mut Ctx, status: i64) {
    if !(200..=599).contains(&status) {
        cx.error(format!(
            "HTTP status {status} is out of range: it must be between 200 and 599"
        ));
    }
}

impl Validate for HttpRedirect {
    fn validate(&self, cx: &mut Ctx) {
        let none = |s: &Option<String>| s.as_deref().is_none_or(str::is_empty);
        if none(&self.uri)
            && none(&self.authority)
            && none(&self.scheme)
            && self.port.is_none()
            && self.derive_port.is_none()
        {
            cx.error("`redirect` must set at least one of `uri`, `authority`, `scheme`, `port` or `derivePort`");
        }
        cx.at_most_one(&[
            ("port", self.port.is_some()),
            ("derivePort", self.derive_port.is_some()),
        ]);
        if let Some(c) = self.redirect_code.filter(|c| *c != 0)
            && !(300..=399).contains(&c)
        {
            cx.error_at(
                "redirectCode",
                format!("redirect code {c} is not a redirect status: use a 3xx code such as 301, 302, 307 or 308"),
            );
        }
        if let Some(s) = self.scheme.as_deref().filter(|s| !s.is_empty())
            && s != "http"
            && s != "https"
        {
            cx.error_at(
                "scheme",
                format!("redirect scheme `{s}` is invalid: use `http` or `https`"),
            );
        }
        if let Some(p) = self.port.filter(|p| *p != 0) {
            cx.field("port", |cx| check_port(cx, p));
        }
    }
}

impl Validate for HttpDirectResponse {
    fn validate(&self, cx: &mut Ctx) {
        match self.status {
            None => cx.require("status", false),
            Some(s) => cx.field("status", |cx| check_http_status(cx, i64::from(s))),
        }
        if let Some(b) = &self.body {
            cx.field("body", |cx| {
                cx.at_most_one(&[("string", b.string.is_some()), ("bytes", b.bytes.is_some())]);
                let mut size = b.string.as_ref().map_or(0, String::len);
                if let Some(bytes) = &b.bytes {
                    match base64_decoded_len(bytes) {
                        Some(n) => size = size.max(n),
                        None => cx.error_at("bytes", "`bytes` is not valid base64"),
                    }
                }
                if size > 1024 * 1024 {
                    cx.error(format!(
                        "the body is {size} bytes; direct responses must be under 1MB (large bodies slow down every configuration push)"
                    ));
                } else if size > 100 * 1024 {
                    cx.warn(format!(
                        "the body is {size} bytes; direct responses over 100KB slow down every configuration push"
                    ));
                }
            });
        }
    }
}

/// The decoded length of standard or URL-safe base64 (padding optional), if valid.
fn base64_decoded_len(s: &str) -> Option<usize> {
    let t = s.trim_end_matches('=');
    if s.len() - t.len() > 2
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
    {
        return None;
    }
    match t.len() % 4 {
        1 => None,
        r => Some(t.len() / 4 * 3 + if r == 0 { 0 } else { r - 1 }),
    }
}

impl Validate for HttpRewrite {
    fn validate(&self, cx: &mut Ctx) {
        let uri = self.uri.as_deref().is_some_and(|u| !u.is_empty());
        let authority = self.authority.as_deref().is_some_and(|a| !a.is_empty());
        if uri && self.uri_regex_rewrite.is_some() {
            cx.error("`uri` and `uriRegexRewrite` cannot both be set: choose one");
        }
        if !uri && !authority && self.uri_regex_rewrite.is_none() {
            cx.error("`rewrite` must set `uri`, `uriRegexRewrite` or `authority`");
        }
        if let Some(rr) = &self.uri_regex_rewrite {
            cx.field("uriRegexRewrite", |cx| {
                let m = rr.r#match.as_deref().unwrap_or("");
                if m.is_empty() {
                    cx.error_at(
                        "match",
                        "`match` is required: the regular expression to replace",
                    );
                } else {
                    cx.field("match", |cx| check_re2(cx, m));
                }
                if rr.rewrite.as_deref().unwrap_or("").is_empty() {
                    cx.error_at(
                        "rewrite",
                        "`rewrite` is required: the replacement for what `match` matches",
                    );
                }
            });
        }
    }
}

/// Envoy's `retry_on` conditions (HTTP and gRPC) that Istio accepts.
pub const RETRY_ON_POLICIES: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// HTTP status codes with a standard name (Go's `http.StatusText`), accepted in `retryOn`.
fn is_known_http_status(code: u32) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429 | 431 | 451
        | 500..=508 | 510 | 511)
}

impl Validate for HttpRetry {
    fn validate(&self, cx: &mut Ctx) {
        let attempts = self.attempts.unwrap_or(0);
        if attempts < 0 {
            cx.error_at(
                "attempts",
                format!("attempts {attempts} is negative: it must be 0 or more"),
            );
        }
        let configured = self.per_try_timeout.is_some()
            || self.retry_on.as_deref().is_some_and(|r| !r.is_empty())
            || self.retry_remote_localities.is_some();
        if attempts == 0 && configured {
            let msg = "retries are disabled because `attempts` is 0 (or left out), yet `perTryTimeout`, `retryOn` or `retryRemoteLocalities` is set: set `attempts` to 1 or more";
            if self.attempts.is_some() {
                cx.error_at("attempts", msg);
            } else {
                cx.error(msg);
            }
        }
        if let Some(t) = &self.per_try_timeout {
            cx.field("perTryTimeout", |cx| check_duration_min(cx, t, 1));
        }
        if let Some(b) = &self.backoff {
            cx.field("backoff", |cx| check_duration_min(cx, b, 1));
        }
        if let Some(on) = self.retry_on.as_deref().filter(|r| !r.is_empty()) {
            cx.field("retryOn", |cx| {
                for policy in on.split(',') {
                    let known = RETRY_ON_POLICIES.contains(&policy)
                        || policy.parse::<u32>().is_ok_and(is_known_http_status);
                    if known {
                        continue;
                    }
                    let trimmed = policy.trim();
                    let msg = if trimmed.is_empty() {
                        format!("retryOn `{on}` has an empty condition: remove the stray comma")
                    } else if trimmed != policy {
                        format!("retryOn condition `{policy}` has spaces around it: write the list without spaces, e.g. `5xx,reset`")
                    } else if policy.bytes().all(|b| b.is_ascii_digit()) {
                        format!("`{policy}` is not a known HTTP status code")
                    } else {
                        let mut m = format!("`{policy}` is not a valid retryOn condition");
                        if let Some(s) = suggest(policy, RETRY_ON_POLICIES.iter().copied()) {
                            m.push_str(&format!(": did you mean `{s}`?"));
                        } else {
                            m.push_str(": use Envoy's conditions (5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, ...) or HTTP status codes");
                        }
                        m
                    };
                    cx.error(msg);
                }
            });
        }
    }
}

fn check_tls_route(cx: &mut Ctx, r: &TlsRoute, vs: &VirtualService) {
    if r.r#match.is_empty() {
        cx.error_at(
            "match",
            "a TLS route needs at least one `match` with `sniHosts`",
        );
    }
    cx.each("match", &r.r#match, |cx, _, m| {
        if m.sni_hosts.is_empty() {
            cx.error_at(
                "sniHosts",
                "a TLS match needs at least one SNI host in `sniHosts`",
            );
        }
        cx.each("sniHosts", &m.sni_hosts, |cx, _, sni| {
            check_sni_host(cx, sni, vs)
        });
        cx.each("destinationSubnets", &m.destination_subnets, |cx, _, s| {
            if let Some(r) = ip_subnet_reason(s) {
                cx.error(r);
            }
        });
        check_match_port(cx, m.port);
        cx.field("sourceLabels", |cx| check_labels(cx, &m.source_labels));
        cx.each("gateways", &m.gateways, |cx, _, g| {
            check_gateway_name(cx, g)
        });
        check_source_namespace(cx, &m.source_namespace);
    });
    if r.route.is_empty() {
        cx.error_at(
            "route",
            "`route` is required: a TLS route needs at least one destination",
        );
    }
    check_route_destinations(cx, &r.route);
}

fn check_sni_host(cx: &mut Ctx, sni: &str, vs: &VirtualService) {
    let reason = if vs.is_gateway_bound() {
        gateway_host_reason(true, sni)
    } else {
        wildcard_host_reason(sni)
    };
    if let Some(r) = reason {
        if is_ip_address(sni) {
            cx.warn(format!(
                "SNI host `{sni}` is an IP address: SNI carries names, and most clients never send an IP in it"
            ));
        } else {
            cx.error(format!("SNI host `{sni}` is not a valid host name: {r}"));
        }
        return;
    }
    if !vs.hosts.iter().any(|h| host_subset_of(sni, h)) {
        cx.error(format!(
            "SNI host `{sni}` is not covered by any of the VirtualService's hosts [{}]: each SNI host must be one of them or match one of their wildcards",
            vs.hosts.join(", ")
        ));
    }
}

fn check_tcp_route(cx: &mut Ctx, r: &TcpRoute) {
    cx.each("match", &r.r#match, |cx, _, m| {
        cx.each("destinationSubnets", &m.destination_subnets, |cx, _, s| {
            if let Some(r) = ip_subnet_reason(s) {
                cx.error(r);
            }
        });
        if let Some(s) = &m.source_subnet
            && let Some(r) = ip_subnet_reason(s)
        {
            cx.error_at("sourceSubnet", r);
        }
        check_match_port(cx, m.port);
        cx.field("sourceLabels", |cx| check_labels(cx, &m.source_labels));
        cx.each("gateways", &m.gateways, |cx, _, g| {
            check_gateway_name(cx, g)
        });
        check_source_namespace(cx, &m.source_namespace);
    });
    if r.route.is_empty() {
        cx.error_at(
            "route",
            "`route` is required: a TCP route needs at least one destination",
        );
    }
    check_route_destinations(cx, &r.route);
}

fn check_route_destinations(cx: &mut Ctx, route: &[RouteDestination]) {
    cx.each("route", route, |cx, _, d| {
        check_destination_opt(cx, &d.destination);
        check_weight(cx, d.weight);
    });
    check_total_weight(cx, route.iter().map(|d| d.weight));
}

/// Warnings for HTTP rules and matches that can never be reached: a rule after a rule
/// without `match`, and a match identical (apart from its name) to an earlier one.
fn unreachable_http_rules(cx: &mut Ctx, routes: &[HttpRoute]) {
    let normalized = |m: &HttpMatchRequest| HttpMatchRequest {
        name: None,
        ..m.clone()
    };
    let mut seen: Vec<(HttpMatchRequest, usize)> = Vec::new();
    let mut catch_all: Option<usize> = None;
    for (i, r) in routes.iter().enumerate() {
        let label = route_label(r.name.as_deref(), i);
        if let Some(k) = catch_all {
            cx.field("http", |cx| {
                cx.index(i, |cx| {
                    cx.warn(format!(
                        "rule {label} is never used: rule {} before it has no `match` and takes every request",
                        route_label(routes[k].name.as_deref(), k)
                    ))
                })
            });
            continue;
        }
        if r.r#match.is_empty() {
            catch_all = Some(i);
            continue;
        }
        let mut dups = 0;
        for (j, m) in r.r#match.iter().enumerate() {
            let n = normalized(m);
            if let Some((_, k)) = seen.iter().find(|(s, _)| *s == n) {
                let earlier = route_label(routes[*k].name.as_deref(), *k);
                cx.field("http", |cx| {
                    cx.index(i, |cx| {
                        cx.field("match", |cx| {
                            cx.index(j, |cx| {
                                cx.warn(format!(
                                    "this match is never used: rule {earlier} has the same match and comes first"
                                ))
                            })
                        })
                    })
                });
                dups += 1;
            } else {
                seen.push((n, i));
            }
        }
        if dups == r.r#match.len() && dups > 1 {
            cx.field("http", |cx| {
                cx.index(i, |cx| {
                    cx.warn(format!(
                        "rule {label} is never used: earlier rules take all of its matches"
                    ))
                })
            });
        }
    }
}

fn route_label(name: Option<&str>, i: usize) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("\"{n}\""),
        _ => format!("#{i}"),
    }
}

/// The same analysis for TCP and TLS rules (which have no names).
fn unreachable_rules<'a, M: PartialEq + 'a>(
    cx: &mut Ctx,
    field: &str,
    matches: impl Iterator<Item = &'a Vec<M>>,
) {
    let mut seen: Vec<(&M, usize)> = Vec::new();
    let mut catch_all: Option<usize> = None;
    for (i, ms) in matches.enumerate() {
        if let Some(k) = catch_all {
            cx.field(field, |cx| {
                cx.index(i, |cx| {
                    cx.warn(format!(
                        "rule #{i} is never used: rule #{k} before it has no `match` and takes every connection"
                    ))
                })
            });
            continue;
        }
        if ms.is_empty() {
            catch_all = Some(i);
            continue;
        }
        for (j, m) in ms.iter().enumerate() {
            if let Some((_, k)) = seen.iter().find(|(s, _)| *s == m) {
                let k = *k;
                cx.field(field, |cx| {
                    cx.index(i, |cx| {
                        cx.field("match", |cx| {
                            cx.index(j, |cx| {
                                cx.warn(format!(
                                    "this match is never used: rule #{k} has the same match and comes first"
                                ))
                            })
                        })
                    })
                });
            } else {
                seen.push((m, i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for ok in [
            "*",
            "*.example.com",
            "reviews",
            "reviews.default.svc.cluster.local",
            "Foo.com",
            "*-bar.foo.com",
            "istio.io.",
        ] {
            assert_eq!(wildcard_host_reason(ok), None, "{ok}");
        }
        for bad in [
            "",
            "foo.*.com",
            "foo..com",
            "-a.com",
            "a_b.com",
            "10.0.0.1",
            "foo.123",
        ] {
            assert!(wildcard_host_reason(bad).is_some(), "{bad}");
        }
        assert!(fqdn_reason("*.foo.com").is_some());
        assert!(fqdn_reason("mesh").is_none());
    }

    #[test]
    fn overlap_and_subset() {
        assert!(hosts_overlap("*.foo.com", "*.com"));
        assert!(hosts_overlap("a.foo.com", "*.foo.com"));
        assert!(hosts_overlap("*", "anything"));
        assert!(!hosts_overlap("a.com", "b.com"));
        assert!(host_subset_of("login.bookinfo.com", "*.bookinfo.com"));
        assert!(host_subset_of("*.a.bookinfo.com", "*.bookinfo.com"));
        assert!(!host_subset_of("*.bookinfo.com", "login.bookinfo.com"));
    }

    #[test]
    fn subnets() {
        assert_eq!(ip_subnet_reason("10.0.0.0/8"), None);
        assert_eq!(ip_subnet_reason("2001:db8::/32"), None);
        assert_eq!(ip_subnet_reason("1.2.3.4"), None);
        assert!(ip_subnet_reason("10.0.0.0/33").is_some());
        assert!(ip_subnet_reason("bogus").is_some());
    }

    #[test]
    fn header_values() {
        for ok in [
            "foo",
            "%HOSTNAME%",
            "100%%",
            "prefix %HOSTNAME% suffix",
            "%REQ(x-foo)%",
            "%START_TIME(%s)%",
        ] {
            assert_eq!(header_value_reason(ok), None, "{ok}");
        }
        for bad in ["abc%", "%START_TIME", "a\nb"] {
            assert!(header_value_reason(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decoded_len("aGVsbG8="), Some(5));
        assert_eq!(base64_decoded_len("aGVsbG8"), Some(5));
        assert_eq!(base64_decoded_len("aGVsbG8h"), Some(6));
        assert_eq!(base64_decoded_len("a"), None);
        assert_eq!(base64_decoded_len("!!!!"), None);
    }

    #[test]
    fn jwt_claims() {
        assert!(is_jwt_claim_header("@request.auth.claims.group"));
        assert!(is_jwt_claim_header("@request.auth.claims[nested][key]"));
        assert!(!is_jwt_claim_header("@request.auth.claims"));
        assert!(!is_jwt_claim_header("x-user"));
    }
}
