//! HTTPRoute (`gateway.networking.k8s.io/v1`), following `apis/v1/httproute_types.go`
//! (standard and experimental channel fields) and the CRD's CEL rules and webhook checks.

use super::gateway::GatewayDefaultScope;
use super::shared::*;
use crate::common::Duration;
use crate::validate::{Ctx, Validate, check_max_items, check_regex};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Routes HTTP requests by host, path, headers, query parameters and method.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteSpec {
    /// Gateways (or Services, for mesh routing) the route attaches to (at most 32).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentReference>,
    /// Asks to be attached to default Gateways of this scope (experimental, GEP-3793).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_default_gateway: Option<GatewayDefaultScope>,
    /// Host header values to match (at most 16; `*.` wildcard prefix allowed, no IPs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Matching rules, filters and backends (at most 16; one prefix match on `/` by default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<HttpRouteRule>,
}

/// One rule: matches, filters, backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRule {
    /// Rule name, unique within the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Conditions, any of which selects the rule (at most 64; prefix `/` when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpRouteMatch>,
    /// Processing applied to matching requests (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<HttpRouteFilter>,
    /// Where matching requests are sent (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<HttpBackendRef>,
    /// Request and per-backend-request timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<HttpRouteTimeouts>,
    /// When and how often to retry a backend request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<HttpRouteRetry>,
    /// Session persistence (experimental; deprecated in favour of the Backend resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_persistence: Option<SessionPersistence>,
}

/// A request predicate; all given conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteMatch {
    /// Path condition; a prefix match on `/` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
    /// Header conditions (at most 16, names unique ignoring case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeaderMatch>,
    /// Query parameter conditions (at most 16, names unique).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<HttpQueryParamMatch>,
    /// HTTP method condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
}

/// A path condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPathMatch {
    /// `Exact`, `PathPrefix` (default) or `RegularExpression`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<PathMatchType>,
    /// The path (default `/`); for Exact and PathPrefix it starts with `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// How a path is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathMatchType {
    /// The whole path, case-sensitive.
    Exact,
    /// Whole path segments (`/abc` matches `/abc/def`, not `/abcd`).
    #[default]
    PathPrefix,
    /// A regular expression (RE2 in weft).
    RegularExpression,
}

/// A header condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeaderMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<HeaderMatchType>,
    /// Header name, matched case-insensitively (required).
    #[serde(default)]
    pub name: String,
    /// Value to match (required, 1 to 4096 characters).
    #[serde(default)]
    pub value: String,
}

/// How a header or query parameter value is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeaderMatchType {
    /// The whole value, case-sensitive.
    #[default]
    Exact,
    /// A regular expression (RE2 in weft).
    RegularExpression,
}

/// How a query parameter value is compared (same values as headers).
pub type QueryParamMatchType = HeaderMatchType;

/// A query parameter condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpQueryParamMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<QueryParamMatchType>,
    /// Parameter name, matched exactly (required).
    #[serde(default)]
    pub name: String,
    /// Value to match (required, 1 to 1024 characters).
    #[serde(default)]
    pub value: String,
}

/// An HTTP method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
}

/// A processing step; `type` says which of the other fields is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteFilter {
    /// The filter type (required).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<HttpRouteFilterType>,
    /// Adds, sets or removes request headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_modifier: Option<HttpHeaderFilter>,
    /// Adds, sets or removes response headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header_modifier: Option<HttpHeaderFilter>,
    /// Sends a copy of requests to another backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_mirror: Option<HttpRequestMirrorFilter>,
    /// Answers with a redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_redirect: Option<HttpRequestRedirectFilter>,
    /// Rewrites the host or path before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_rewrite: Option<HttpUrlRewriteFilter>,
    /// Answers CORS preflight requests and adds CORS response headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<HttpCorsFilter>,
    /// Asks an external service to authenticate the request (experimental).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_auth: Option<HttpExternalAuthFilter>,
    /// An implementation-specific filter object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_ref: Option<LocalObjectReference>,
}

/// The HTTPRoute filter types.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum HttpRouteFilterType {
    /// Edits request headers (`requestHeaderModifier`).
    #[default]
    RequestHeaderModifier,
    /// Edits response headers (`responseHeaderModifier`).
    ResponseHeaderModifier,
    /// Mirrors requests (`requestMirror`); may be repeated.
    RequestMirror,
    /// Redirects (`requestRedirect`); not with URLRewrite or backendRefs.
    RequestRedirect,
    /// Rewrites host and path (`urlRewrite`); not with RequestRedirect.
    #[serde(rename = "URLRewrite")]
    UrlRewrite,
    /// An implementation-specific filter (`extensionRef`); may be repeated.
    ExtensionRef,
    /// CORS (`cors`).
    #[serde(rename = "CORS")]
    Cors,
    /// External authentication (`externalAuth`); experimental channel.
    ExternalAuth,
}

impl HttpRouteFilterType {
    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestHeaderModifier => "RequestHeaderModifier",
            Self::ResponseHeaderModifier => "ResponseHeaderModifier",
            Self::RequestMirror => "RequestMirror",
            Self::RequestRedirect => "RequestRedirect",
            Self::UrlRewrite => "URLRewrite",
            Self::ExtensionRef => "ExtensionRef",
            Self::Cors => "CORS",
            Self::ExternalAuth => "ExternalAuth",
        }
    }

    /// True for filters that may appear more than once in a list.
    pub fn repeatable(self) -> bool {
        matches!(
            self,
            Self::RequestMirror | Self::ExtensionRef | Self::ExternalAuth
        )
    }
}

/// Header edits: each header name may appear in only one action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeaderFilter {
    /// Headers to overwrite (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<HttpHeader>,
    /// Headers to append to (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<HttpHeader>,
    /// Header names to remove (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// A header name and value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    /// Header name (required).
    #[serde(default)]
    pub name: String,
    /// Header value (required, 1 to 4096 characters).
    #[serde(default)]
    pub value: String,
}

/// A path rewrite or redirect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPathModifier {
    /// `ReplaceFullPath` or `ReplacePrefixMatch` (required).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<HttpPathModifierType>,
    /// The new path (with `ReplaceFullPath`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_full_path: Option<String>,
    /// What replaces the matched prefix (with `ReplacePrefixMatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_prefix_match: Option<String>,
}

/// How a path is modified.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpPathModifierType {
    /// Replace the whole path with `replaceFullPath`.
    #[default]
    ReplaceFullPath,
    /// Replace the matched PathPrefix with `replacePrefixMatch`.
    ReplacePrefixMatch,
}

/// Answers the request with a redirect to a modified location.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRequestRedirectFilter {
    /// `http` or `https`; the request's scheme when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<RedirectScheme>,
    /// The host for `Location`; the request's host when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// A path modification for `Location`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathModifier>,
    /// The port for `Location`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// 301, 302 (default), 303, 307 or 308.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i32>,
}

/// A redirect scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedirectScheme {
    #[default]
    Http,
    Https,
}

/// Rewrites the request before forwarding it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpUrlRewriteFilter {
    /// The new Host header value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// A path rewrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathModifier>,
}

/// Mirrors requests to another backend (responses ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRequestMirrorFilter {
    /// Where copies are sent (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<BackendObjectReference>,
    /// Percentage of requests mirrored, 0 to 100 (all when neither this nor `fraction` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i32>,
    /// Fraction of requests mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<Fraction>,
}

/// A fraction `numerator / denominator` (denominator 100 by default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fraction {
    /// Numerator, at least 0 and at most the denominator (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<i32>,
    /// Denominator, at least 1 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<i32>,
}

/// Cross-origin resource sharing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCorsFilter {
    /// Allowed origins, `<scheme>://<host>[:<port>]` or `*` (at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<String>,
    /// Whether credentials are allowed (`Access-Control-Allow-Credentials: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    /// Allowed methods, or `*` (at most 9).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    /// Allowed request headers, or `*` (at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    /// Response headers exposed to scripts (at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// Seconds a preflight response may be cached (at least 1; 5 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i32>,
}

/// External authentication (experimental channel).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpExternalAuthFilter {
    /// `HTTP` or `GRPC` (Envoy ext_authz) (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ExternalAuthProtocol>,
    /// The authorization service (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<BackendObjectReference>,
    /// Settings for a gRPC authorization service (protocol GRPC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcAuthConfig>,
    /// Settings for an HTTP authorization service (protocol HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpAuthConfig>,
    /// Whether (and how much of) the request body is sent to the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_body: Option<ForwardBodyConfig>,
}

/// The protocol of an external authorization service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExternalAuthProtocol {
    #[default]
    Http,
    Grpc,
}

/// gRPC (ext_authz) authorization settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcAuthConfig {
    /// Request headers sent to the service (all when empty; at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
}

/// HTTP authorization settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpAuthConfig {
    /// Prefix added to the request path when sent to the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Extra request headers sent to the service (at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    /// Headers of the service's response copied into the forwarded request (at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_response_headers: Vec<String>,
}

/// Request body forwarding to the authorization service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardBodyConfig {
    /// Bytes of body buffered and sent (0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<i32>,
}

/// A backend for an HTTP rule, with its own filters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpBackendRef {
    /// API group of the backend; `""` (the core group) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the backend; `Service` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the backend (required).
    #[serde(default)]
    pub name: String,
    /// Namespace of the backend; the route's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Destination port; the Service port for a Service backend (required then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Share of requests: weight / sum of weights (default 1; 0 sends none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Filters applied only to requests sent to this backend (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<HttpRouteFilter>,
}

backend_object_ref!(HttpBackendRef);

/// Timeouts of a rule (GEP-2257 durations; `0s` disables).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteTimeouts {
    /// Time for the gateway to answer the whole request.
    #[serde(
        default,
        deserialize_with = "de_gep2257",
        skip_serializing_if = "Option::is_none"
    )]
    pub request: Option<Duration>,
    /// Time for one request to a backend (at most `request`).
    #[serde(
        default,
        deserialize_with = "de_gep2257",
        skip_serializing_if = "Option::is_none"
    )]
    pub backend_request: Option<Duration>,
}

/// Retries of a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRetry {
    /// Response status codes (400 to 599) that are retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<i32>,
    /// Retries after the first attempt (0 disables retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// Base interval between attempts.
    #[serde(
        default,
        deserialize_with = "de_gep2257",
        skip_serializing_if = "Option::is_none"
    )]
    pub backoff: Option<Duration>,
}

/// Session persistence (sticky sessions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionPersistence {
    /// Name of the cookie or header carrying the session (at most 128 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// Lifetime of a session.
    #[serde(
        default,
        deserialize_with = "de_gep2257",
        skip_serializing_if = "Option::is_none"
    )]
    pub absolute_timeout: Option<Duration>,
    /// Idle time after which a session ends.
    #[serde(
        default,
        deserialize_with = "de_gep2257",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
    /// `Cookie` (default) or `Header`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<SessionPersistenceType>,
    /// Cookie settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_config: Option<CookieConfig>,
}

/// How a session is carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionPersistenceType {
    /// A cookie carries the session.
    #[default]
    Cookie,
    /// A header carries the session.
    Header,
}

/// Cookie settings for session persistence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CookieConfig {
    /// `Session` (default) or `Permanent` (needs `absoluteTimeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_type: Option<CookieLifetimeType>,
}

/// Cookie lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CookieLifetimeType {
    /// The cookie expires after `absoluteTimeout`.
    Permanent,
    /// The cookie ends with the browser session.
    #[default]
    Session,
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// The rules every HTTP-level route (HTTPRoute, GRPCRoute) shares: parents, hostnames, at
/// most 16 uniquely named rules and at most 128 matches across them.
pub(crate) fn check_route_spec<'a>(
    cx: &mut Ctx,
    parent_refs: &[ParentReference],
    hostnames: &[String],
    rules: impl Iterator<Item = (Option<&'a str>, usize)> + Clone,
) {
    validate_parent_refs(cx, parent_refs);
    check_route_hostnames(cx, hostnames, 16);
    check_max_items(cx, "rules", rules.clone().count(), 16);
    check_unique(
        cx,
        "rules",
        "name",
        rules.clone().map(|(name, _)| name.unwrap_or("")),
        false,
        "rule name",
    );
    let total: usize = rules.map(|(_, matches)| matches).sum();
    if total > 128 {
        cx.error_at(
            "rules",
            format!("the rules have {total} matches in total; at most 128 are allowed across all rules of a route"),
        );
    }
}

impl Validate for HttpRouteSpec {
    fn validate(&self, cx: &mut Ctx) {
        check_route_spec(
            cx,
            &self.parent_refs,
            &self.hostnames,
            self.rules
                .iter()
                .map(|r| (r.name.as_deref(), r.matches.len())),
        );
        cx.list("rules", &self.rules);
    }
}

impl Validate for HttpRouteRule {
    fn validate(&self, cx: &mut Ctx) {
        opt_check(cx, "name", &self.name, check_section_name);
        check_max_items(cx, "matches", self.matches.len(), 64);
        cx.list("matches", &self.matches);
        validate_http_filters(cx, &self.filters, &self.matches);
        if !self.backend_refs.is_empty() {
            cx.each("filters", &self.filters, |cx, _, f| {
                if f.request_redirect.is_some() {
                    cx.error_at(
                        "requestRedirect",
                        "a RequestRedirect filter answers the request itself: it cannot be used in a rule with `backendRefs`",
                    );
                }
            });
        }
        check_max_items(cx, "backendRefs", self.backend_refs.len(), 16);
        cx.each("backendRefs", &self.backend_refs, |cx, _, b| {
            b.object_ref().validate(cx);
            check_weight(cx, b.weight);
            validate_http_filters(cx, &b.filters, &self.matches);
        });
        if let Some(t) = &self.timeouts {
            cx.field("timeouts", |cx| check_timeouts(cx, t));
        }
        if let Some(r) = &self.retry {
            cx.field("retry", |cx| {
                let mut seen = std::collections::BTreeSet::new();
                cx.each("codes", &r.codes, |cx, _, c| {
                    if !(400..=599).contains(c) {
                        cx.error(format!("status code {c} cannot be retried: retry codes must be between 400 and 599"));
                    } else if !seen.insert(*c) {
                        cx.error(format!("status code {c} is listed twice"));
                    }
                });
                if let Some(a) = r.attempts
                    && a < 0
                {
                    cx.error_at("attempts", format!("attempts {a} is negative: use 0 to disable retries"));
                }
            });
        }
        if let Some(sp) = &self.session_persistence {
            cx.warn_at(
                "sessionPersistence",
                "`sessionPersistence` on HTTPRoute rules is deprecated: configure session persistence on the backend (GEP-4894)",
            );
            cx.field("sessionPersistence", |cx| sp.validate(cx));
        }
    }
}

/// `backendRequest` must not exceed `request` (unless `request` is 0, i.e. disabled).
fn check_timeouts(cx: &mut Ctx, t: &HttpRouteTimeouts) {
    if let (Some(req), Some(backend)) = (t.request, t.backend_request)
        && !req.0.is_zero()
        && backend > req
    {
        cx.error_at(
            "backendRequest",
            format!(
                "backendRequest timeout {backend} is longer than the request timeout {req}: a backend request must fit within the request timeout"
            ),
        );
    }
}

impl Validate for SessionPersistence {
    fn validate(&self, cx: &mut Ctx) {
        if let Some(n) = &self.session_name
            && n.len() > 128
        {
            cx.error_at(
                "sessionName",
                format!(
                    "sessionName is {} characters long; at most 128 are allowed",
                    n.len()
                ),
            );
        }
        if self
            .cookie_config
            .as_ref()
            .and_then(|c| c.lifetime_type)
            .is_some_and(|l| l == CookieLifetimeType::Permanent)
            && self.absolute_timeout.is_none()
        {
            cx.error_at(
                "absoluteTimeout",
                "`absoluteTimeout` is required when the cookie lifetimeType is Permanent: it sets the cookie's expiry",
            );
        }
    }
}

impl Validate for HttpRouteMatch {
    fn validate(&self, cx: &mut Ctx) {
        if let Some(p) = &self.path {
            cx.field("path", |cx| check_path_match(cx, p));
        }
        check_max_items(cx, "headers", self.headers.len(), 16);
        check_unique(
            cx,
            "headers",
            "name",
            self.headers.iter().map(|h| h.name.as_str()),
            true,
            "header",
        );
        cx.each("headers", &self.headers, |cx, _, h| {
            check_header_name(cx, "name", &h.name, "header");
            check_len(cx, "value", &h.value, 1, 4096);
            if h.type_ == Some(HeaderMatchType::RegularExpression) {
                cx.field("value", |cx| check_regex(cx, &h.value));
            }
        });
        check_max_items(cx, "queryParams", self.query_params.len(), 16);
        check_unique(
            cx,
            "queryParams",
            "name",
            self.query_params.iter().map(|q| q.name.as_str()),
            false,
            "query parameter",
        );
        cx.each("queryParams", &self.query_params, |cx, _, q| {
            check_header_name(cx, "name", &q.name, "query parameter");
            check_len(cx, "value", &q.value, 1, 1024);
            if q.type_ == Some(HeaderMatchType::RegularExpression) {
                cx.field("value", |cx| check_regex(cx, &q.value));
            }
        });
    }
}

/// Why `path` is not a valid Exact/PathPrefix path value (the CRD's CEL rules).
pub fn path_value_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(format!("path `{path}` must start with '/'"));
    }
    for seq in ["//", "/./", "/../", "%2f", "%2F", "#"] {
        if path.contains(seq) {
            return Some(format!("path `{path}` must not contain `{seq}`"));
        }
    }
    for suffix in ["/..", "/."] {
        if path.ends_with(suffix) {
            return Some(format!("path `{path}` must not end with `{suffix}`"));
        }
    }
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
                i += 3;
                continue;
            }
            return Some(format!(
                "path `{path}` has a `%` that is not followed by two hex digits"
            ));
        }
        if !(c.is_ascii_alphanumeric() || b"-/._~!$&'()*+,;=:@".contains(&c)) {
            let ch = path[i..].chars().next().unwrap_or('?');
            return Some(format!(
                "path `{path}` contains `{ch}`, which must be percent-encoded: only letters, digits and -/._~!$&'()*+,;=:@ are allowed"
            ));
        }
        i += 1;
    }
    None
}

fn check_path_match(cx: &mut Ctx, p: &HttpPathMatch) {
    let ty = p.type_.unwrap_or_default();
    let Some(value) = p.value.as_deref() else {
        return;
    };
    if value.len() > 1024 {
        cx.error_at(
            "value",
            format!(
                "path is {} characters long; at most 1024 are allowed",
                value.len()
            ),
        );
        return;
    }
    match ty {
        PathMatchType::Exact | PathMatchType::PathPrefix => {
            if let Some(problem) = path_value_problem(value) {
                let kind = if ty == PathMatchType::Exact {
                    "Exact"
                } else {
                    "PathPrefix"
                };
                cx.error_at("value", format!("{problem} (match type {kind})"));
            }
        }
        PathMatchType::RegularExpression => cx.field("value", |cx| check_regex(cx, value)),
    }
}

/// A rule's matches with defaults applied: is there exactly one, and is it a PathPrefix?
fn single_prefix_match(matches: &[HttpRouteMatch]) -> bool {
    match matches {
        [] => true,
        [m] => m
            .path
            .as_ref()
            .is_none_or(|p| p.type_.unwrap_or_default() == PathMatchType::PathPrefix),
        _ => false,
    }
}

fn validate_http_filters(cx: &mut Ctx, filters: &[HttpRouteFilter], matches: &[HttpRouteMatch]) {
    check_max_items(cx, "filters", filters.len(), 16);
    let mut first: BTreeMap<HttpRouteFilterType, usize> = BTreeMap::new();
    cx.field("filters", |cx| {
        for (i, f) in filters.iter().enumerate() {
            let Some(t) = f.type_ else { continue };
            match first.get(&t) {
                Some(j) if !t.repeatable() => cx.index(i, |cx| {
                    cx.error_at(
                        "type",
                        format!("a {} filter is already used at filters[{j}]: it cannot be repeated", t.as_str()),
                    )
                }),
                Some(_) => {}
                None => {
                    first.insert(t, i);
                }
            }
        }
        if let (Some(r), Some(_)) = (
            first.get(&HttpRouteFilterType::RequestRedirect),
            first.get(&HttpRouteFilterType::UrlRewrite),
        ) {
            cx.index(*r, |cx| {
                cx.error(
                    "RequestRedirect and URLRewrite filters cannot be used together: a redirect answers the request, a rewrite forwards it",
                )
            });
        }
    });
    cx.each("filters", filters, |cx, _, f| {
        validate_http_filter(cx, f, matches)
    });
}

fn validate_http_filter(cx: &mut Ctx, f: &HttpRouteFilter, matches: &[HttpRouteMatch]) {
    use HttpRouteFilterType as T;
    let fields = [
        (
            "requestHeaderModifier",
            T::RequestHeaderModifier,
            f.request_header_modifier.is_some(),
        ),
        (
            "responseHeaderModifier",
            T::ResponseHeaderModifier,
            f.response_header_modifier.is_some(),
        ),
        (
            "requestMirror",
            T::RequestMirror,
            f.request_mirror.is_some(),
        ),
        (
            "requestRedirect",
            T::RequestRedirect,
            f.request_redirect.is_some(),
        ),
        ("urlRewrite", T::UrlRewrite, f.url_rewrite.is_some()),
        ("cors", T::Cors, f.cors.is_some()),
        ("externalAuth", T::ExternalAuth, f.external_auth.is_some()),
        ("extensionRef", T::ExtensionRef, f.extension_ref.is_some()),
    ];
    check_filter_union(
        cx,
        f.type_.map(T::as_str),
        &fields.map(|(field, t, set)| (field, t.as_str(), set)),
    );
    if let Some(h) = &f.request_header_modifier {
        cx.field("requestHeaderModifier", |cx| h.validate(cx));
    }
    if let Some(h) = &f.response_header_modifier {
        cx.field("responseHeaderModifier", |cx| h.validate(cx));
    }
    if let Some(m) = &f.request_mirror {
        cx.field("requestMirror", |cx| m.validate(cx));
    }
    if let Some(r) = &f.request_redirect {
        cx.field("requestRedirect", |cx| {
            opt_check(cx, "hostname", &r.hostname, check_precise_hostname);
            opt_port(cx, "port", r.port);
            if let Some(code) = r.status_code
                && ![301, 302, 303, 307, 308].contains(&code)
            {
                cx.error_at(
                    "statusCode",
                    format!(
                        "status code {code} is not a redirect status: use 301, 302, 303, 307 or 308"
                    ),
                );
            }
            if let Some(p) = &r.path {
                cx.field("path", |cx| check_path_modifier(cx, p, matches));
            }
        });
    }
    if let Some(r) = &f.url_rewrite {
        cx.field("urlRewrite", |cx| {
            opt_check(cx, "hostname", &r.hostname, check_precise_hostname);
            if let Some(p) = &r.path {
                cx.field("path", |cx| check_path_modifier(cx, p, matches));
            }
        });
    }
    if let Some(c) = &f.cors {
        cx.field("cors", |cx| c.validate(cx));
    }
    if let Some(a) = &f.external_auth {
        cx.field("externalAuth", |cx| a.validate(cx));
    }
    cx.opt("extensionRef", &f.extension_ref);
}

/// The `type` of a union filter must name exactly the one field that is set.
pub(crate) fn check_filter_union(cx: &mut Ctx, ty: Option<&str>, fields: &[(&str, &str, bool)]) {
    let Some(ty) = ty else {
        let set: Vec<&(&str, &str, bool)> = fields.iter().filter(|f| f.2).collect();
        let hint = match set.as_slice() {
            [(field, t, _)] => format!(": set it to {t} to use `{field}`"),
            _ => String::new(),
        };
        cx.error_at("type", format!("`type` is required{hint}"));
        return;
    };
    for (field, t, set) in fields {
        if *t == ty && !set {
            cx.error_at(
                field,
                format!("`{field}` is required when the filter type is {ty}"),
            );
        } else if *t != ty && *set {
            cx.error_at(
                field,
                format!("`{field}` must not be set when the filter type is {ty}: it belongs to filter type {t}"),
            );
        }
    }
}

impl Validate for HttpHeaderFilter {
    fn validate(&self, cx: &mut Ctx) {
        check_max_items(cx, "set", self.set.len(), 16);
        check_max_items(cx, "add", self.add.len(), 16);
        check_max_items(cx, "remove", self.remove.len(), 16);
        // One action per header name (case-insensitive), across set, add and remove.
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut once = |cx: &mut Ctx, list: &str, i: usize, name: &str| {
            if name.is_empty() {
                return;
            }
            let key = name.to_ascii_lowercase();
            if let Some(first) = seen.get(&key) {
                cx.error(format!(
                    "header `{name}` already has an action at {first}: each header may appear once, in only one of set, add and remove"
                ));
            } else {
                seen.insert(key, format!("{list}[{i}]"));
            }
        };
        for list in ["set", "add"] {
            let items = if list == "set" { &self.set } else { &self.add };
            cx.each(list, items, |cx, i, h| {
                check_header_name(cx, "name", &h.name, "header");
                check_len(cx, "value", &h.value, 1, 4096);
                cx.field("name", |cx| once(cx, list, i, &h.name));
            });
        }
        cx.each("remove", &self.remove, |cx, i, name| {
            if let Some(p) = header_name_problem(name, "header") {
                cx.error(p);
            }
            once(cx, "remove", i, name);
        });
    }
}

fn check_path_modifier(cx: &mut Ctx, p: &HttpPathModifier, matches: &[HttpRouteMatch]) {
    for v in [&p.replace_full_path, &p.replace_prefix_match]
        .into_iter()
        .flatten()
    {
        if v.len() > 1024 {
            cx.error(format!(
                "path is {} characters long; at most 1024 are allowed",
                v.len()
            ));
        }
    }
    match p.type_ {
        None => cx.require("type", false),
        Some(HttpPathModifierType::ReplaceFullPath) => {
            if p.replace_full_path.is_none() {
                cx.error_at(
                    "replaceFullPath",
                    "`replaceFullPath` is required when type is ReplaceFullPath",
                );
            }
            if p.replace_prefix_match.is_some() {
                cx.error_at(
                    "replacePrefixMatch",
                    "`replacePrefixMatch` must not be set when type is ReplaceFullPath (set type: ReplacePrefixMatch instead)",
                );
            }
        }
        Some(HttpPathModifierType::ReplacePrefixMatch) => {
            if p.replace_prefix_match.is_none() {
                cx.error_at(
                    "replacePrefixMatch",
                    "`replacePrefixMatch` is required when type is ReplacePrefixMatch",
                );
            } else if !single_prefix_match(matches) {
                cx.error_at(
                    "replacePrefixMatch",
                    "ReplacePrefixMatch needs exactly one match in the rule, and it must be a PathPrefix path match: it replaces that prefix",
                );
            }
            if p.replace_full_path.is_some() {
                cx.error_at(
                    "replaceFullPath",
                    "`replaceFullPath` must not be set when type is ReplacePrefixMatch (set type: ReplaceFullPath instead)",
                );
            }
        }
    }
}

impl Validate for HttpRequestMirrorFilter {
    fn validate(&self, cx: &mut Ctx) {
        match &self.backend_ref {
            None => cx.require("backendRef", false),
            Some(b) => cx.field("backendRef", |cx| b.validate(cx)),
        }
        if let Some(p) = self.percent
            && !(0..=100).contains(&p)
        {
            cx.error_at(
                "percent",
                format!("percent {p} is out of range: it must be between 0 and 100"),
            );
        }
        if self.percent.is_some() && self.fraction.is_some() {
            cx.error("only one of `percent` and `fraction` may be set");
        }
        if let Some(f) = &self.fraction {
            cx.field("fraction", |cx| f.validate(cx));
        }
    }
}

impl Validate for Fraction {
    fn validate(&self, cx: &mut Ctx) {
        let den = self.denominator.unwrap_or(100);
        if let Some(d) = self.denominator
            && d < 1
        {
            cx.error_at("denominator", format!("denominator {d} must be at least 1"));
        }
        match self.numerator {
            None => cx.require("numerator", false),
            Some(n) if n < 0 => cx.error_at("numerator", format!("numerator {n} is negative")),
            Some(n) if n > den && den >= 1 => cx.error_at(
                "numerator",
                format!("numerator {n} is larger than the denominator {den}: a fraction must be at most 1"),
            ),
            Some(_) => {}
        }
    }
}

/// Why `origin` is not a CORS origin (`*` or `<scheme>://<host>[:<port>]`).
fn origin_problem(origin: &str) -> Option<String> {
    if origin == "*" {
        return None;
    }
    let bad = || {
        Some(format!(
            "origin `{origin}` is invalid: write `<scheme>://<host>[:<port>]` with scheme http or https (such as https://www.example.com), or `*`"
        ))
    };
    let Some((scheme, rest)) = origin.split_once("://") else {
        return bad();
    };
    if !(scheme == "http" || scheme == "https") {
        return bad();
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '*' || c == '_')
    {
        return bad();
    }
    if let Some(p) = port
        && !(p.len() <= 5
            && !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && (1..=65535).contains(&p.parse::<u32>().unwrap_or(0)))
    {
        return bad();
    }
    None
}

const CORS_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "*",
];

impl Validate for HttpCorsFilter {
    fn validate(&self, cx: &mut Ctx) {
        check_max_items(cx, "allowOrigins", self.allow_origins.len(), 64);
        check_wildcard_alone(cx, "allowOrigins", &self.allow_origins);
        cx.each("allowOrigins", &self.allow_origins, |cx, _, o| {
            if let Some(p) = origin_problem(o) {
                cx.error(p);
            }
        });
        check_max_items(cx, "allowMethods", self.allow_methods.len(), 9);
        check_wildcard_alone(cx, "allowMethods", &self.allow_methods);
        cx.each("allowMethods", &self.allow_methods, |cx, _, m| {
            if !CORS_METHODS.contains(&m.as_str()) {
                let mut msg = format!(
                    "method `{m}` is not allowed: use GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH or `*`"
                );
                if CORS_METHODS.contains(&m.to_ascii_uppercase().as_str()) {
                    msg.push_str(&format!(" (method names are case-sensitive: `{}`)", m.to_ascii_uppercase()));
                }
                cx.error(msg);
            }
        });
        for (name, list) in [
            ("allowHeaders", &self.allow_headers),
            ("exposeHeaders", &self.expose_headers),
        ] {
            check_max_items(cx, name, list.len(), 64);
            if name == "allowHeaders" {
                check_wildcard_alone(cx, name, list);
            }
            cx.each(name, list, |cx, _, h| {
                if let Some(p) = header_name_problem(h, "header") {
                    cx.error(p);
                }
            });
        }
        if let Some(age) = self.max_age
            && age < 1
        {
            cx.error_at(
                "maxAge",
                format!("maxAge {age} must be at least 1 (seconds)"),
            );
        }
    }
}

impl Validate for HttpExternalAuthFilter {
    fn validate(&self, cx: &mut Ctx) {
        match self.protocol {
            None => cx.require("protocol", false),
            Some(ExternalAuthProtocol::Grpc) => {
                if self.grpc.is_none() {
                    cx.error_at("grpc", "`grpc` is required when protocol is GRPC");
                }
                if self.http.is_some() {
                    cx.error_at("http", "`http` must not be set when protocol is GRPC");
                }
            }
            Some(ExternalAuthProtocol::Http) => {
                if self.http.is_none() {
                    cx.error_at("http", "`http` is required when protocol is HTTP");
                }
                if self.grpc.is_some() {
                    cx.error_at("grpc", "`grpc` must not be set when protocol is HTTP");
                }
            }
        }
        match &self.backend_ref {
            None => cx.require("backendRef", false),
            Some(b) => cx.field("backendRef", |cx| b.validate(cx)),
        }
        if let Some(g) = &self.grpc {
            cx.field("grpc", |cx| {
                check_header_list(cx, "allowedHeaders", &g.allowed_headers)
            });
        }
        if let Some(h) = &self.http {
            cx.field("http", |cx| {
                if let Some(p) = h.path.as_deref().filter(|p| !p.is_empty()) {
                    if p.len() > 1024 {
                        cx.error_at(
                            "path",
                            format!(
                                "path is {} characters long; at most 1024 are allowed",
                                p.len()
                            ),
                        );
                    } else if let Some(problem) = path_chars_problem(p) {
                        cx.error_at("path", problem);
                    }
                }
                check_header_list(cx, "allowedHeaders", &h.allowed_headers);
                check_header_list(cx, "allowedResponseHeaders", &h.allowed_response_headers);
            });
        }
        if let Some(fb) = &self.forward_body
            && let Some(m) = fb.max_size
            && m < 0
        {
            cx.field("forwardBody", |cx| {
                cx.error_at(
                    "maxSize",
                    format!("maxSize {m} is negative: use 0 to send no body"),
                )
            });
        }
    }
}

/// Only the character rule of path values (HTTP auth path prefixes need not start with `/`).
fn path_chars_problem(p: &str) -> Option<String> {
    path_value_problem(&format!("/{}", p.trim_start_matches('/')))
        .filter(|m| m.contains("percent") || m.contains("hex"))
        .map(|m| {
            m.replacen(
                &format!("`/{}`", p.trim_start_matches('/')),
                &format!("`{p}`"),
                1,
            )
        })
}

fn check_header_list(cx: &mut Ctx, name: &str, list: &[String]) {
    check_max_items(cx, name, list.len(), 64);
    cx.each(name, list, |cx, _, h| {
        if let Some(p) = header_name_problem(h, "header") {
            cx.error(p);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in [
            "/",
            "/productpage",
            "/api/v1/",
            "/a%20b",
            "/static/*.css",
            "/~user",
        ] {
            assert_eq!(path_value_problem(ok), None, "{ok}");
        }
        for bad in [
            "foo", "//a", "/a/./b", "/a/../b", "/a%2fb", "/a#b", "/a/..", "/a/.", "/a b", "/a%2",
            "/a%zz",
        ] {
            assert!(path_value_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn origins() {
        for ok in [
            "*",
            "https://www.example.com",
            "http://*.example.com:8080",
            "https://*",
        ] {
            assert_eq!(origin_problem(ok), None, "{ok}");
        }
        for bad in [
            "www.example.com",
            "ftp://a.com",
            "https://a.com/path",
            "https://a.com:99999",
            "https://",
        ] {
            assert!(origin_problem(bad).is_some(), "{bad}");
        }
    }
}
