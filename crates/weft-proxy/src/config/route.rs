//! Route tables: virtual hosts, routes and their actions, converted from Envoy's
//! `RouteConfiguration`, plus matching with Envoy's semantics (see `RouteTable::route`).

use crate::config::matcher::{self, HeaderMatcher, QueryParamMatcher, full_regex, search_regex};
use crate::config::util::{data_source, duration};
use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValueOption, header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::route::v3::{
    self as pb, redirect_action, route, route_action, route_match, weighted_cluster::cluster_weight,
};
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use regex::Regex;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Envoy's default route timeout when `timeout` is unset.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// A converted `RouteConfiguration`.
#[derive(Debug)]
pub struct RouteTable {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
    ignore_port: bool,
    domains: DomainIndex,
}

/// A converted `VirtualHost`.
#[derive(Debug)]
pub struct VirtualHost {
    pub name: String,
    pub routes: Vec<Route>,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
}

/// A converted `Route`: first matching route in a virtual host wins.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub matcher: RouteMatch,
    pub action: RouteAction,
    pub request_headers: HeaderMutation,
    pub response_headers: HeaderMutation,
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
    /// `None` disables the timeout (`timeout: 0s`).
    pub timeout: Option<Duration>,
    pub hash_policy: Vec<HashPolicy>,
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

/// Header edits at one level (route, virtual host, route table, weighted cluster).
#[derive(Debug, Default, Clone)]
pub struct HeaderMutation {
    pub add: Vec<HeaderAdd>,
    pub remove: Vec<HeaderName>,
}

/// One header to add, with Envoy's `append_action`.
#[derive(Debug, Clone)]
pub struct HeaderAdd {
    pub name: HeaderName,
    pub value: HeaderValue,
    pub action: AppendAction,
}

/// Envoy's `HeaderValueOption.append_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendAction {
    AppendIfExistsOrAdd,
    AddIfAbsent,
    OverwriteIfExistsOrAdd,
    OverwriteIfExists,
}

impl HeaderMutation {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// Applies removals, then additions, as Envoy does.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for h in &self.add {
            match h.action {
                AppendAction::AppendIfExistsOrAdd => {
                    headers.append(h.name.clone(), h.value.clone());
                }
                AppendAction::AddIfAbsent => {
                    if !headers.contains_key(&h.name) {
                        headers.insert(h.name.clone(), h.value.clone());
                    }
                }
                AppendAction::OverwriteIfExistsOrAdd => {
                    headers.insert(h.name.clone(), h.value.clone());
                }
                AppendAction::OverwriteIfExists => {
                    if headers.contains_key(&h.name) {
                        headers.insert(h.name.clone(), h.value.clone());
                    }
                }
            }
        }
    }

    fn convert(
        add: &[HeaderValueOption],
        remove: &[String],
        prefix: &str,
    ) -> Result<HeaderMutation, ConfigError> {
        let add = add
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                header_add(o)
                    .at(format!("{prefix}_headers_to_add[{i}]"))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let remove = remove
            .iter()
            .enumerate()
            .map(|(i, name)| header_name(name).at(format!("{prefix}_headers_to_remove[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HeaderMutation { add, remove })
    }
}

fn header_name(name: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
        .map_err(|_| ConfigError::new(format!("invalid header name {name:?}")))
}

/// `None` for an empty value without `keep_empty_value` (Envoy skips those).
fn header_add(o: &HeaderValueOption) -> Result<Option<HeaderAdd>, ConfigError> {
    let h = o
        .header
        .as_ref()
        .ok_or_else(|| ConfigError::new("header is required"))?;
    let name = header_name(&h.key).at("header.key")?;
    let raw: &[u8] = if h.raw_value.is_empty() {
        h.value.as_bytes()
    } else {
        &h.raw_value
    };
    if raw.is_empty() && !o.keep_empty_value {
        return Ok(None);
    }
    let value = HeaderValue::from_bytes(raw)
        .map_err(|_| ConfigError::new("invalid header value").at("header.value"))?;
    let action = match (o.append.as_ref().map(|b| b.value), o.append_action) {
        (Some(true), _) => AppendAction::AppendIfExistsOrAdd,
        (Some(false), _) => AppendAction::OverwriteIfExistsOrAdd,
        (None, a) => match HeaderAppendAction::try_from(a) {
            Ok(HeaderAppendAction::AppendIfExistsOrAdd) => AppendAction::AppendIfExistsOrAdd,
            Ok(HeaderAppendAction::AddIfAbsent) => AppendAction::AddIfAbsent,
            Ok(HeaderAppendAction::OverwriteIfExistsOrAdd) => AppendAction::OverwriteIfExistsOrAdd,
            Ok(HeaderAppendAction::OverwriteIfExists) => AppendAction::OverwriteIfExists,
            Err(_) => return Err(ConfigError::new(format!("unknown append_action {a}"))),
        },
    };
    Ok(Some(HeaderAdd {
        name,
        value,
        action,
    }))
}

/// Domain lookup in Envoy's order: exact, then `*.suffix` (longest first), then `prefix*`
/// (longest first), then `*`.
#[derive(Debug, Default)]
struct DomainIndex {
    exact: HashMap<String, usize>,
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
        let vh = self.virtual_host(req.authority)?;
        vh.routes
            .iter()
            .find(|r| r.matcher.matches(req))
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

// ---- conversion -------------------------------------------------------------------------

impl TryFrom<&pb::RouteConfiguration> for RouteTable {
    type Error = ConfigError;

    fn try_from(rc: &pb::RouteConfiguration) -> Result<Self, ConfigError> {
        let virtual_hosts = rc
            .virtual_hosts
            .iter()
            .enumerate()
            .map(|(i, vh)| VirtualHost::try_from(vh).at(format!("virtual_hosts[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RouteTable {
            name: rc.name.clone(),
            domains: DomainIndex::build(&rc.virtual_hosts)?,
            virtual_hosts,
            request_headers: HeaderMutation::convert(
                &rc.request_headers_to_add,
                &rc.request_headers_to_remove,
                "request",
            )?,
            response_headers: HeaderMutation::convert(
                &rc.response_headers_to_add,
                &rc.response_headers_to_remove,
                "response",
            )?,
            ignore_port: rc.ignore_port_in_host_matching,
        })
    }
}

impl TryFrom<&pb::VirtualHost> for VirtualHost {
    type Error = ConfigError;

    fn try_from(vh: &pb::VirtualHost) -> Result<Self, ConfigError> {
        if vh.domains.is_empty() {
            return Err(ConfigError::new("at least one domain is required").at("domains"));
        }
        let routes = vh
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| Route::try_from(r).at(format!("routes[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(VirtualHost {
            name: vh.name.clone(),
            routes,
            request_headers: HeaderMutation::convert(
                &vh.request_headers_to_add,
                &vh.request_headers_to_remove,
                "request",
            )?,
            response_headers: HeaderMutation::convert(
                &vh.response_headers_to_add,
                &vh.response_headers_to_remove,
                "response",
            )?,
        })
    }
}

impl TryFrom<&pb::Route> for Route {
    type Error = ConfigError;

    fn try_from(r: &pb::Route) -> Result<Self, ConfigError> {
        let m = r
            .r#match
            .as_ref()
            .ok_or_else(|| ConfigError::new("match is required").at("match"))?;
        let matcher = RouteMatch::try_from(m).at("match")?;
        let action = match &r.action {
            Some(route::Action::Route(a)) => {
                RouteAction::Forward(ForwardAction::try_from(a).at("route")?)
            }
            Some(route::Action::Redirect(a)) => {
                RouteAction::Redirect(RedirectAction::try_from(a).at("redirect")?)
            }
            Some(route::Action::DirectResponse(d)) => {
                let status = u16::try_from(d.status)
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .filter(|s| (200..600).contains(&s.as_u16()))
                    .ok_or_else(|| {
                        ConfigError::new(format!("invalid status {}", d.status))
                            .at("status")
                            .at("direct_response")
                    })?;
                let body = d
                    .body
                    .as_ref()
                    .map(data_source)
                    .transpose()
                    .at("body")
                    .at("direct_response")?;
                RouteAction::Direct(DirectResponse { status, body })
            }
            Some(route::Action::FilterAction(_)) => {
                return Err(ConfigError::new("filter_action is not supported").at("filter_action"));
            }
            Some(route::Action::NonForwardingAction(_)) => {
                return Err(ConfigError::new("non_forwarding_action is not supported")
                    .at("non_forwarding_action"));
            }
            None => {
                return Err(ConfigError::new(
                    "one of route, redirect or direct_response is required",
                ));
            }
        };
        Ok(Route {
            name: r.name.clone(),
            matcher,
            action,
            request_headers: HeaderMutation::convert(
                &r.request_headers_to_add,
                &r.request_headers_to_remove,
                "request",
            )?,
            response_headers: HeaderMutation::convert(
                &r.response_headers_to_add,
                &r.response_headers_to_remove,
                "response",
            )?,
        })
    }
}

impl TryFrom<&pb::RouteMatch> for RouteMatch {
    type Error = ConfigError;

    fn try_from(m: &pb::RouteMatch) -> Result<Self, ConfigError> {
        use route_match::PathSpecifier as P;
        let path = match &m.path_specifier {
            Some(P::Prefix(p)) => PathMatch::Prefix(p.clone()),
            Some(P::Path(p)) => PathMatch::Exact(p.clone()),
            Some(P::SafeRegex(r)) => PathMatch::Regex(full_regex(r).at("safe_regex")?),
            Some(P::PathSeparatedPrefix(p)) => {
                if p.is_empty() || !p.starts_with('/') || p.ends_with('/') || p.contains(['?', '#'])
                {
                    return Err(ConfigError::new(
                        "must start with '/', not end with '/', and hold no '?' or '#'",
                    )
                    .at("path_separated_prefix"));
                }
                PathMatch::SeparatedPrefix(p.clone())
            }
            Some(P::ConnectMatcher(_)) => {
                return Err(
                    ConfigError::new("connect_matcher is not supported").at("connect_matcher")
                );
            }
            Some(P::PathMatchPolicy(_)) => {
                return Err(
                    ConfigError::new("path_match_policy is not supported").at("path_match_policy")
                );
            }
            None => {
                return Err(ConfigError::new(
                    "a path specifier (prefix, path, safe_regex, path_separated_prefix) is required",
                ));
            }
        };
        let case_sensitive = m.case_sensitive.as_ref().is_none_or(|b| b.value);
        let headers = m
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| HeaderMatcher::try_from(h).at(format!("headers[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let query = m
            .query_parameters
            .iter()
            .enumerate()
            .map(|(i, q)| QueryParamMatcher::try_from(q).at(format!("query_parameters[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RouteMatch {
            path,
            case_sensitive,
            headers,
            query,
            grpc: m.grpc.is_some(),
        })
    }
}

fn regex_rewrite(r: &RegexMatchAndSubstitute) -> Result<RegexRewrite, ConfigError> {
    let pattern = r
        .pattern
        .as_ref()
        .ok_or_else(|| ConfigError::new("pattern is required").at("pattern"))?;
    Ok(RegexRewrite {
        pattern: search_regex(pattern).at("pattern")?,
        substitution: re2_substitution(&r.substitution),
    })
}

/// RE2 writes group references as `\1`; the regex crate as `${1}` and a literal `$` as `$$`.
fn re2_substitution(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str(&format!("${{{d}}}"));
                    chars.next();
                }
                Some('\\') => {
                    out.push('\\');
                    chars.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn cluster_name(name: &str) -> Result<Arc<str>, ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::new("cluster name must not be empty"));
    }
    Ok(Arc::from(name))
}

impl TryFrom<&pb::RouteAction> for ForwardAction {
    type Error = ConfigError;

    fn try_from(a: &pb::RouteAction) -> Result<Self, ConfigError> {
        use route_action::{ClusterSpecifier as C, HostRewriteSpecifier as H};
        let clusters = match &a.cluster_specifier {
            Some(C::Cluster(name)) => ClusterSelect::Single(cluster_name(name).at("cluster")?),
            Some(C::ClusterHeader(h)) => {
                ClusterSelect::Header(header_name(h).at("cluster_header")?)
            }
            Some(C::WeightedClusters(w)) => {
                let targets = w
                    .clusters
                    .iter()
                    .enumerate()
                    .map(|(i, c)| weighted_target(c).at(format!("clusters[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
                    .at("weighted_clusters")?;
                let total: u64 = targets.iter().map(|t| u64::from(t.weight)).sum();
                if total == 0 {
                    return Err(ConfigError::new("weights must add up to more than 0")
                        .at("weighted_clusters"));
                }
                ClusterSelect::Weighted { targets, total }
            }
            Some(C::ClusterSpecifierPlugin(_)) | Some(C::InlineClusterSpecifierPlugin(_)) => {
                return Err(ConfigError::new(
                    "cluster specifier plugins are not supported",
                ));
            }
            None => {
                return Err(ConfigError::new(
                    "one of cluster, cluster_header or weighted_clusters is required",
                ));
            }
        };
        let host_rewrite = match &a.host_rewrite_specifier {
            None => HostRewrite::None,
            Some(H::HostRewriteLiteral(h)) => HostRewrite::Literal(
                HeaderValue::from_str(h)
                    .map_err(|_| ConfigError::new("invalid host").at("host_rewrite_literal"))?,
            ),
            Some(H::AutoHostRewrite(b)) if b.value => HostRewrite::Auto,
            Some(H::AutoHostRewrite(_)) => HostRewrite::None,
            Some(H::HostRewriteHeader(h)) => {
                HostRewrite::Header(header_name(h).at("host_rewrite_header")?)
            }
            Some(H::HostRewrite(_)) => {
                return Err(
                    ConfigError::new("host_rewrite (format string) is not supported")
                        .at("host_rewrite"),
                );
            }
            Some(H::HostRewritePathRegex(_)) => {
                return Err(ConfigError::new("host_rewrite_path_regex is not supported")
                    .at("host_rewrite_path_regex"));
            }
        };
        let timeout = match duration(a.timeout.as_ref()).at("timeout")? {
            None => Some(DEFAULT_ROUTE_TIMEOUT),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        };
        let hash_policy = a
            .hash_policy
            .iter()
            .enumerate()
            .map(|(i, h)| hash_policy(h).at(format!("hash_policy[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        if !a.prefix_rewrite.is_empty() && a.regex_rewrite.is_some() {
            return Err(ConfigError::new(
                "prefix_rewrite and regex_rewrite are exclusive",
            ));
        }
        Ok(ForwardAction {
            clusters,
            prefix_rewrite: (!a.prefix_rewrite.is_empty()).then(|| a.prefix_rewrite.clone()),
            regex_rewrite: a
                .regex_rewrite
                .as_ref()
                .map(regex_rewrite)
                .transpose()
                .at("regex_rewrite")?,
            host_rewrite,
            timeout,
            hash_policy,
        })
    }
}

fn weighted_target(c: &pb::weighted_cluster::ClusterWeight) -> Result<WeightedTarget, ConfigError> {
    if !c.cluster_header.is_empty() {
        return Err(
            ConfigError::new("cluster_header in weighted clusters is not supported")
                .at("cluster_header"),
        );
    }
    let host_rewrite = match &c.host_rewrite_specifier {
        Some(cluster_weight::HostRewriteSpecifier::HostRewriteLiteral(h)) => Some(
            HeaderValue::from_str(h)
                .map_err(|_| ConfigError::new("invalid host").at("host_rewrite_literal"))?,
        ),
        None => None,
    };
    Ok(WeightedTarget {
        name: cluster_name(&c.name).at("name")?,
        weight: c.weight.as_ref().map_or(0, |w| w.value),
        request_headers: HeaderMutation::convert(
            &c.request_headers_to_add,
            &c.request_headers_to_remove,
            "request",
        )?,
        response_headers: HeaderMutation::convert(
            &c.response_headers_to_add,
            &c.response_headers_to_remove,
            "response",
        )?,
        host_rewrite,
    })
}

fn hash_policy(h: &route_action::HashPolicy) -> Result<HashPolicy, ConfigError> {
    use route_action::hash_policy::PolicySpecifier as P;
    let terminal = h.terminal;
    Ok(match &h.policy_specifier {
        Some(P::Header(hd)) => HashPolicy::Header {
            name: header_name(&hd.header_name).at("header.header_name")?,
            terminal,
        },
        Some(P::Cookie(c)) => {
            if c.ttl.is_some() {
                return Err(
                    ConfigError::new("generated cookies (ttl) are not supported yet")
                        .at("cookie.ttl"),
                );
            }
            HashPolicy::Cookie {
                name: c.name.clone(),
                terminal,
            }
        }
        Some(P::ConnectionProperties(p)) if p.source_ip => HashPolicy::SourceIp { terminal },
        Some(P::QueryParameter(q)) => HashPolicy::QueryParameter {
            name: q.name.clone(),
            terminal,
        },
        Some(P::ConnectionProperties(_)) => {
            return Err(ConfigError::new(
                "connection_properties needs source_ip: true",
            ));
        }
        Some(P::FilterState(_)) => {
            return Err(
                ConfigError::new("filter_state hashing is not supported").at("filter_state")
            );
        }
        None => return Err(ConfigError::new("a hash policy specifier is required")),
    })
}

impl TryFrom<&pb::RedirectAction> for RedirectAction {
    type Error = ConfigError;

    fn try_from(r: &pb::RedirectAction) -> Result<Self, ConfigError> {
        use redirect_action::{
            PathRewriteSpecifier as P, RedirectResponseCode as Code, SchemeRewriteSpecifier as S,
        };
        let scheme = match &r.scheme_rewrite_specifier {
            Some(S::HttpsRedirect(true)) => Some("https".to_owned()),
            Some(S::SchemeRedirect(s)) if !s.is_empty() => Some(s.to_ascii_lowercase()),
            _ => None,
        };
        let path = match &r.path_rewrite_specifier {
            None => PathRedirect::Keep,
            Some(P::PathRedirect(p)) => PathRedirect::Path(p.clone()),
            Some(P::PrefixRewrite(p)) => PathRedirect::Prefix(p.clone()),
            Some(P::RegexRewrite(rr)) => {
                PathRedirect::Regex(regex_rewrite(rr).at("regex_rewrite")?)
            }
            Some(P::PathRewrite(_)) => {
                return Err(
                    ConfigError::new("path_rewrite (format string) is not supported")
                        .at("path_rewrite"),
                );
            }
        };
        let status = match Code::try_from(r.response_code) {
            Ok(Code::MovedPermanently) => StatusCode::MOVED_PERMANENTLY,
            Ok(Code::Found) => StatusCode::FOUND,
            Ok(Code::SeeOther) => StatusCode::SEE_OTHER,
            Ok(Code::TemporaryRedirect) => StatusCode::TEMPORARY_REDIRECT,
            Ok(Code::PermanentRedirect) => StatusCode::PERMANENT_REDIRECT,
            Err(_) => {
                return Err(
                    ConfigError::new(format!("unknown response_code {}", r.response_code))
                        .at("response_code"),
                );
            }
        };
        let port = match r.port_redirect {
            0 => None,
            p => Some(
                u16::try_from(p)
                    .map_err(|_| ConfigError::new("port out of range").at("port_redirect"))?,
            ),
        };
        Ok(RedirectAction {
            scheme,
            host: (!r.host_redirect.is_empty()).then(|| r.host_redirect.clone()),
            port,
            path,
            status,
            strip_query: r.strip_query,
        })
    }
}

#[cfg(test)]
mod tests {
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
