//! Route tables: virtual hosts, routes and their actions, converted from Envoy's
//! `RouteConfiguration`, plus matching with Envoy's semantics (see `RouteTable::route`).

use crate::config::matcher::{self, HeaderMatcher, QueryParamMatcher};
use crate::error::ConfigError;
use envoy_types::pb::envoy::config::route::v3::{self as pb};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use regex::Regex;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

mod convert;
pub mod filters;
mod headers;
mod index;
mod retry;

pub use filters::{FilterOverrides, Override};
pub use headers::{
    AppendAction, HeaderAdd, HeaderContext, HeaderMutation, HeaderOp, HeaderTemplate, Piece,
};
pub use retry::{RetryOn, RetryPolicy};

/// Envoy's default route timeout when `timeout` is unset.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// A converted `RouteConfiguration`.
#[derive(Debug)]
pub struct RouteTable {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
    /// Whether unknown clusters are rejected at load (Envoy's `validate_clusters`, on by
    /// default for static route tables); when off they get `503 NC` per request.
    pub validate_clusters: bool,
    /// `typed_per_filter_config` of the table (least specific level).
    pub filters: FilterOverrides,
    ignore_port: bool,
    domains: DomainIndex,
}

/// A converted `VirtualHost`.
#[derive(Debug)]
pub struct VirtualHost {
    pub name: String,
    pub routes: Vec<Route>,
    index: index::RouteIndex,
    /// Default retry policy for routes that have none.
    pub retry: Option<RetryPolicy>,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
    pub filters: FilterOverrides,
    /// `include_request_attempt_count`: upstream requests carry `x-envoy-attempt-count`.
    pub attempt_count_upstream: bool,
    /// `include_attempt_count_in_response`: so do downstream responses.
    pub attempt_count_downstream: bool,
}

/// A converted `Route`: first matching route in a virtual host wins.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub matcher: RouteMatch,
    pub action: RouteAction,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
    pub filters: FilterOverrides,
}

/// What a route matches on; all parts must match.
#[derive(Debug)]
pub struct RouteMatch {
    pub path: PathMatch,
    pub case_sensitive: bool,
    pub headers: Vec<HeaderMatcher>,
    pub query: Vec<QueryParamMatcher>,
    pub grpc: bool,
}

/// The path part of a route match. Paths exclude the query string.
#[derive(Debug)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(Regex),
    /// `path_separated_prefix`: the prefix followed by `/` or the end of the path.
    SeparatedPrefix(String),
}

/// What a matched route does.
#[derive(Debug)]
// One per route in an immutable table; boxing the common variant would only add a pointer
// chase on every request.
#[allow(clippy::large_enum_variant)]
pub enum RouteAction {
    Forward(ForwardAction),
    Redirect(RedirectAction),
    Direct(DirectResponse),
}

/// `route:` — send upstream.
#[derive(Debug)]
pub struct ForwardAction {
    pub clusters: ClusterSelect,
    pub prefix_rewrite: Option<String>,
    pub regex_rewrite: Option<RegexRewrite>,
    pub host_rewrite: HostRewrite,
    /// `None` disables the timeout (`timeout: 0s`). Covers the whole upstream response.
    pub timeout: Option<Duration>,
    /// `timeout` in milliseconds, as `x-envoy-expected-rq-timeout-ms` says it: formatted
    /// once here rather than on every request.
    pub timeout_ms_header: Option<http::HeaderValue>,
    /// `idle_timeout`: replaces the connection manager's `stream_idle_timeout` (`Some(0)`
    /// disables it).
    pub idle_timeout: Option<Duration>,
    /// Deprecated `max_grpc_timeout`: gRPC requests take their timeout from `grpc-timeout`
    /// (infinite when absent), capped here (`0` = no cap).
    pub max_grpc_timeout: Option<Duration>,
    pub grpc_timeout_offset: Option<Duration>,
    /// `max_stream_duration` (its presence disables `timeout`, as in Envoy).
    pub stream_duration: Option<Box<StreamDuration>>,
    /// `priority: HIGH`: the cluster's HIGH circuit-breaker thresholds apply.
    pub high_priority: bool,
    /// `request_mirror_policies`: fire-and-forget copies.
    pub mirrors: Vec<MirrorPolicy>,
    pub hash_policy: Vec<HashPolicy>,
    /// Per-route upgrade overrides: (lowercase type, enabled).
    pub upgrades: Vec<(String, bool)>,
    /// The route's retry policy (the virtual host's applies when this is `None`).
    pub retry: Option<Box<RetryPolicy>>,
}

/// One `request_mirror_policies` entry.
#[derive(Debug, Clone)]
pub struct MirrorPolicy {
    pub cluster: Arc<str>,
    /// `runtime_fraction.default_value` (all requests when unset).
    pub fraction: crate::config::util::Fraction,
    /// Append `-shadow` to the host (unless `disable_shadow_host_suffix_append`).
    pub shadow_suffix: bool,
    /// `host_rewrite_literal`: the mirror's host instead.
    pub host: Option<HeaderValue>,
}

/// A route's `max_stream_duration`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamDuration {
    /// `max_stream_duration` (`Some(0)`: no limit; `None`: the connection manager's).
    pub max: Option<Duration>,
    /// `grpc_timeout_header_max`: use `grpc-timeout` when present, capped here (0 = no cap).
    pub grpc_header_max: Option<Duration>,
    pub grpc_header_offset: Option<Duration>,
}

/// How the upstream cluster is chosen.
#[derive(Debug)]
pub enum ClusterSelect {
    Single(Arc<str>),
    /// `cluster_header`: the cluster is named by a request header.
    Header(HeaderName),
    Weighted {
        targets: Vec<WeightedTarget>,
        total: u64,
    },
}

/// One cluster of `weighted_clusters`.
#[derive(Debug)]
pub struct WeightedTarget {
    pub name: Arc<str>,
    pub weight: u32,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
    pub host_rewrite: Option<HeaderValue>,
}

/// A regex applied to the path with every match substituted (Envoy's `regex_rewrite`).
#[derive(Debug)]
pub struct RegexRewrite {
    pub pattern: Regex,
    /// Substitution in `regex` crate syntax (`${1}`), converted from RE2's `\1`.
    pub substitution: String,
}

impl RegexRewrite {
    /// Rewrites `path` (without query).
    pub fn apply(&self, path: &str) -> String {
        self.pattern
            .replace_all(path, self.substitution.as_str())
            .into_owned()
    }
}

/// How the upstream `Host`/`:authority` is rewritten.
#[derive(Debug, Clone)]
pub enum HostRewrite {
    None,
    Literal(HeaderValue),
    /// `auto_host_rewrite`: the chosen endpoint's hostname (DNS clusters) or address.
    Auto,
    /// `host_rewrite_header`: the value of another request header, when present.
    Header(HeaderName),
}

/// A consistent-hash input (Envoy's `hash_policy`).
#[derive(Debug, Clone)]
pub enum HashPolicy {
    Header { name: HeaderName, terminal: bool },
    Cookie { name: String, terminal: bool },
    SourceIp { terminal: bool },
    QueryParameter { name: String, terminal: bool },
}

/// `redirect:` — answer with a 3xx and a `Location`.
#[derive(Debug)]
pub struct RedirectAction {
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: PathRedirect,
    pub status: StatusCode,
    pub strip_query: bool,
}

/// How a redirect builds its path.
#[derive(Debug)]
pub enum PathRedirect {
    Keep,
    Path(String),
    Prefix(String),
    Regex(RegexRewrite),
}

/// `direct_response:` — answer locally.
#[derive(Debug)]
pub struct DirectResponse {
    pub status: StatusCode,
    pub body: Option<bytes::Bytes>,
}

/// Domain lookup in Envoy's order: exact, then `*.suffix` (longest first), then `prefix*`
/// (longest first), then `*`.
#[derive(Debug, Default)]
struct DomainIndex {
    /// Looked up once per request (Istio's virtual hosts name their domains exactly):
    /// foldhash rather than SipHash, as for the cluster map.
    exact: HashMap<String, usize, foldhash::fast::RandomState>,
    suffixes: Vec<(String, usize)>,
    prefixes: Vec<(String, usize)>,
    any: Option<usize>,
}

impl DomainIndex {
    fn build(vhosts: &[pb::VirtualHost]) -> Result<DomainIndex, ConfigError> {
        let mut index = DomainIndex::default();
        let mut seen = HashMap::new();
        for (i, vh) in vhosts.iter().enumerate() {
            for (j, domain) in vh.domains.iter().enumerate() {
                let d = domain.to_ascii_lowercase();
                let at = || format!("virtual_hosts[{i}].domains[{j}]");
                if let Some(prev) = seen.insert(d.clone(), i) {
                    return Err(ConfigError::new(format!(
                        "domain {domain:?} is already in virtual_hosts[{prev}]"
                    ))
                    .at(at()));
                }
                if d == "*" {
                    index.any = Some(i);
                } else if let Some(suffix) = d.strip_prefix('*') {
                    index.suffixes.push((suffix.to_owned(), i));
                } else if let Some(prefix) = d.strip_suffix('*') {
                    index.prefixes.push((prefix.to_owned(), i));
                } else if d.is_empty() || d.contains('*') {
                    return Err(ConfigError::new(format!("invalid domain {domain:?}")).at(at()));
                } else {
                    index.exact.insert(d, i);
                }
            }
        }
        // Longest wildcard first; the stable sort keeps config order among equals.
        index
            .suffixes
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        index
            .prefixes
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Ok(index)
    }

    fn find(&self, host: &str) -> Option<usize> {
        if let Some(&i) = self.exact.get(host) {
            return Some(i);
        }
        // A wildcard stands for at least one character.
        let suffix = self
            .suffixes
            .iter()
            .find(|(s, _)| host.len() > s.len() && host.ends_with(s.as_str()));
        if let Some(&(_, i)) = suffix {
            return Some(i);
        }
        let prefix = self
            .prefixes
            .iter()
            .find(|(p, _)| host.len() > p.len() && host.starts_with(p.as_str()));
        if let Some(&(_, i)) = prefix {
            return Some(i);
        }
        self.any
    }
}

/// The parts of a request that routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// Host or `:authority`, as received (port included).
    pub authority: &'a str,
    /// Path with query string.
    pub path_and_query: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    pub headers: &'a HeaderMap,
}

impl<'a> RequestView<'a> {
    fn path(&self) -> &'a str {
        let p = self.path_and_query;
        p.split(['?', '#']).next().unwrap_or(p)
    }

    fn query(&self) -> &'a str {
        let p = self.path_and_query;
        p.split_once('?')
            .map(|(_, q)| q.split('#').next().unwrap_or(q))
            .unwrap_or("")
    }

    /// A header's value, several values joined with `,`; pseudo-headers by `:name`.
    pub fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        match name {
            ":authority" | "host" if !self.authority.is_empty() => {
                return Some(Cow::Borrowed(self.authority));
            }
            ":method" => return Some(Cow::Borrowed(self.method.as_str())),
            ":path" => return Some(Cow::Borrowed(self.path_and_query)),
            ":scheme" => return Some(Cow::Borrowed(self.scheme)),
            _ => {}
        }
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?.to_str().ok()?;
        match values.next() {
            None => Some(Cow::Borrowed(first)),
            Some(second) => {
                let mut joined = format!("{first},{}", second.to_str().ok()?);
                for v in values {
                    joined.push(',');
                    joined.push_str(v.to_str().ok()?);
                }
                Some(Cow::Owned(joined))
            }
        }
    }
}

/// Strips a `:port` from a host (IPv6 literals keep their brackets).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map(|end| &host[..=end]).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl RouteTable {
    /// The virtual host for an authority, as Envoy chooses it (case-insensitive).
    pub fn virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        let host = if self.ignore_port {
            strip_port(authority)
        } else {
            authority
        };
        let lowered;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = host.to_ascii_lowercase();
            lowered.as_str()
        } else {
            host
        };
        self.domains.find(host).map(|i| &self.virtual_hosts[i])
    }

    /// The virtual host and first matching route for a request.
    pub fn route(&self, req: &RequestView<'_>) -> Option<(&VirtualHost, &Route)> {
        // A CONNECT request has no path: in Envoy only a `connect_matcher` route matches it
        // (path matchers never do), and weft refuses `connect_matcher` at load. So CONNECT
        // finds no route (404, `NR`) rather than reaching a backend as if it were a GET.
        if *req.method == Method::CONNECT {
            return None;
        }
        let vh = self.virtual_host(req.authority)?;
        vh.index
            .find(&vh.routes, req.path(), |r| r.matcher.matches(req))
            .map(|r| (vh, r))
    }
}

impl RouteMatch {
    /// Whether the request matches path, headers, query parameters and gRPC-ness.
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        let path = req.path();
        let path_ok = match &self.path {
            PathMatch::Prefix(p) => starts_with(path, p, self.case_sensitive),
            PathMatch::Exact(p) => {
                if self.case_sensitive {
                    path == p
                } else {
                    path.eq_ignore_ascii_case(p)
                }
            }
            PathMatch::Regex(r) => r.is_match(path),
            PathMatch::SeparatedPrefix(p) => {
                starts_with(path, p, self.case_sensitive)
                    && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/')
            }
        };
        if !path_ok {
            return false;
        }
        if self.grpc {
            let grpc = req
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/grpc"));
            if !grpc {
                return false;
            }
        }
        if !self
            .headers
            .iter()
            .all(|h| h.matches(req.header(&h.name).as_deref()))
        {
            return false;
        }
        if self.query.is_empty() {
            return true;
        }
        let query = req.query();
        self.query
            .iter()
            .all(|q| q.matches(matcher::query_param(query, &q.name).as_deref()))
    }
}

fn starts_with(path: &str, prefix: &str, case_sensitive: bool) -> bool {
    if case_sensitive {
        path.starts_with(prefix)
    } else {
        path.len() >= prefix.len()
            && path.is_char_boundary(prefix.len())
            && path[..prefix.len()].eq_ignore_ascii_case(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::convert::re2_substitution;
    use super::*;

    #[test]
    fn re2_substitutions_translate() {
        assert_eq!(re2_substitution(r"/v2/\1/x"), "/v2/${1}/x");
        assert_eq!(re2_substitution("$5"), "$$5");
        assert_eq!(re2_substitution(r"a\\b"), r"a\b");
    }

    #[test]
    fn ports_strip() {
        assert_eq!(strip_port("a.com:80"), "a.com");
        assert_eq!(strip_port("a.com"), "a.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }
}
