//! Gateway API: HTTPRoute and GRPCRoute become Envoy routes, for sidecars when a route's
//! parent is a Service (GAMMA, "mesh") and for gateway proxies when its parent is a
//! Gateway of class `istio` or `weft` (listeners `ADDR_PORT`, RDS `http.PORT`).
//!
//! Routes attached to the same place are merged and ordered by the Gateway API's
//! precedence: exact path, then regex, then the longest prefix; then a method match; then
//! the most header matches; then the most query parameter matches; then the oldest route
//! (`creationTimestamp`), then `namespace/name`; then rule and match order within a route.
//! A backend in another namespace needs a ReferenceGrant there; a rule left with no usable
//! backend answers 500, as the specification asks.

use super::route::{default_retry_policy, fraction, regex};
use super::{Ctx, ProxyResources, config_metadata, duration, socket_address};
use crate::registry::Service;
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, RuntimeFractionalPercent, TrafficDirection,
    header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, HeaderMatcher, QueryParameterMatcher, RedirectAction, RetryPolicy, Route,
    RouteAction, RouteMatch, VirtualHost, WeightedCluster, header_matcher, query_parameter_matcher,
    redirect_action, retry_policy, route, route_action, route_match, weighted_cluster,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatchAndSubstitute, StringMatcher, string_matcher,
};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};
use std::collections::BTreeMap;
use weft_model::analyze::{BUILTIN_GATEWAY_CLASSES, DOMAIN_SUFFIX, host_matches};
use weft_model::gateway_api::{
    FromNamespaces, GrpcMethodMatchType, GrpcRouteMatch, GrpcRouteSpec, HeaderMatchType,
    HttpHeaderFilter, HttpPathModifier, HttpPathModifierType, HttpRequestMirrorFilter,
    HttpRequestRedirectFilter, HttpRouteMatch, HttpRouteRetry, HttpRouteSpec, HttpUrlRewriteFilter,
    ParentReference, PathMatchType, RedirectScheme,
};
use weft_model::{Resource, Spec};
use weft_xds::naming::ClusterName;

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// The label Istio puts on the deployment of a Gateway: a gateway proxy carrying it (in
/// the Gateway's namespace) serves that Gateway.
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// One route of either kind, normalised to what translation needs.
struct ApiRoute<'a> {
    res: &'a Resource,
    parents: &'a [ParentReference],
    hostnames: &'a [String],
    rules: Vec<ApiRule<'a>>,
    /// `HTTPRoute` or `GRPCRoute` (ReferenceGrant's `from.kind`).
    kind: &'static str,
}

struct ApiRule<'a> {
    /// Each match as an Envoy match with its precedence facts; empty means "everything".
    matches: Vec<(RouteMatch, MatchRank)>,
    filters: Vec<Filter<'a>>,
    backends: Vec<Backend<'a>>,
    timeout: Option<std::time::Duration>,
    backend_timeout: Option<std::time::Duration>,
    retry: Option<&'a HttpRouteRetry>,
    name: Option<&'a str>,
}

enum Filter<'a> {
    RequestHeaders(&'a HttpHeaderFilter),
    ResponseHeaders(&'a HttpHeaderFilter),
    Redirect(&'a HttpRequestRedirectFilter),
    Rewrite(&'a HttpUrlRewriteFilter),
    Mirror(&'a HttpRequestMirrorFilter),
}

struct Backend<'a> {
    group: Option<&'a str>,
    kind: Option<&'a str>,
    name: &'a str,
    namespace: Option<&'a str>,
    port: Option<u32>,
    weight: i32,
    filters: Vec<Filter<'a>>,
}

/// The precedence facts of one match (smaller sorts first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct MatchRank {
    /// 0 exact, 1 regex, 2 prefix.
    path_kind: u8,
    /// Negative prefix length (longer first).
    prefix_len: i64,
    /// 0 with a method match.
    no_method: u8,
    /// Negative counts (more first).
    headers: i64,
    query: i64,
}

fn http_routes(snap: &crate::Snapshot) -> Vec<ApiRoute<'_>> {
    let mut out = Vec::new();
    for r in snap.routing_resources() {
        match &r.spec {
            Spec::HttpRoute(spec) => out.push(http_route(r, spec)),
            Spec::GrpcRoute(spec) => out.push(grpc_route(r, spec)),
            _ => {}
        }
    }
    out
}

fn http_route<'a>(res: &'a Resource, spec: &'a HttpRouteSpec) -> ApiRoute<'a> {
    let rules = spec
        .rules
        .iter()
        .map(|rule| ApiRule {
            matches: rule.matches.iter().map(http_match).collect(),
            filters: rule.filters.iter().filter_map(http_filter).collect(),
            backends: rule
                .backend_refs
                .iter()
                .map(|b| Backend {
                    group: b.group.as_deref(),
                    kind: b.kind.as_deref(),
                    name: &b.name,
                    namespace: b.namespace.as_deref(),
                    port: b.port,
                    weight: b.weight.unwrap_or(1),
                    filters: b.filters.iter().filter_map(http_filter).collect(),
                })
                .collect(),
            timeout: rule
                .timeouts
                .as_ref()
                .and_then(|t| t.request)
                .map(|d| d.as_std()),
            backend_timeout: rule
                .timeouts
                .as_ref()
                .and_then(|t| t.backend_request)
                .map(|d| d.as_std()),
            retry: rule.retry.as_ref(),
            name: rule.name.as_deref(),
        })
        .collect();
    ApiRoute {
        res,
        parents: &spec.parent_refs,
        hostnames: &spec.hostnames,
        rules,
        kind: "HTTPRoute",
    }
}

fn http_filter(f: &weft_model::gateway_api::HttpRouteFilter) -> Option<Filter<'_>> {
    if let Some(h) = &f.request_header_modifier {
        Some(Filter::RequestHeaders(h))
    } else if let Some(h) = &f.response_header_modifier {
        Some(Filter::ResponseHeaders(h))
    } else if let Some(r) = &f.request_redirect {
        Some(Filter::Redirect(r))
    } else if let Some(r) = &f.url_rewrite {
        Some(Filter::Rewrite(r))
    } else {
        f.request_mirror.as_ref().map(Filter::Mirror)
    }
}

fn grpc_route<'a>(res: &'a Resource, spec: &'a GrpcRouteSpec) -> ApiRoute<'a> {
    let grpc_filter = |f: &'a weft_model::gateway_api::GrpcRouteFilter| {
        if let Some(h) = &f.request_header_modifier {
            Some(Filter::RequestHeaders(h))
        } else if let Some(h) = &f.response_header_modifier {
            Some(Filter::ResponseHeaders(h))
        } else {
            f.request_mirror.as_ref().map(Filter::Mirror)
        }
    };
    let rules = spec
        .rules
        .iter()
        .map(|rule| ApiRule {
            matches: rule.matches.iter().map(grpc_match).collect(),
            filters: rule.filters.iter().filter_map(grpc_filter).collect(),
            backends: rule
                .backend_refs
                .iter()
                .map(|b| Backend {
                    group: b.group.as_deref(),
                    kind: b.kind.as_deref(),
                    name: &b.name,
                    namespace: b.namespace.as_deref(),
                    port: b.port,
                    weight: b.weight.unwrap_or(1),
                    filters: b.filters.iter().filter_map(grpc_filter).collect(),
                })
                .collect(),
            timeout: None,
            backend_timeout: None,
            retry: None,
            name: rule.name.as_deref(),
        })
        .collect();
    ApiRoute {
        res,
        parents: &spec.parent_refs,
        hostnames: &spec.hostnames,
        rules,
        kind: "GRPCRoute",
    }
}

fn exact_or_regex(exact: bool, value: &str) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(if exact {
            string_matcher::MatchPattern::Exact(value.to_owned())
        } else {
            string_matcher::MatchPattern::SafeRegex(regex(value))
        }),
        ignore_case: false,
    }
}

fn header(name: &str, exact: bool, value: &str) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_ascii_lowercase(),
        header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
            exact_or_regex(exact, value),
        )),
        ..Default::default()
    }
}

fn http_match(m: &HttpRouteMatch) -> (RouteMatch, MatchRank) {
    use route_match::PathSpecifier as P;
    let kind = m.path.as_ref().and_then(|p| p.type_).unwrap_or_default();
    let value = m
        .path
        .as_ref()
        .and_then(|p| p.value.clone())
        .unwrap_or_else(|| "/".to_owned());
    let (path, path_kind, prefix_len) = match kind {
        PathMatchType::Exact => (P::Path(value.clone()), 0, 0),
        PathMatchType::RegularExpression => (P::SafeRegex(regex(&value)), 1, 0),
        PathMatchType::PathPrefix => {
            // Whole segments: `/api` matches `/api` and `/api/x`, not `/apix`; a trailing
            // slash is ignored.
            let trimmed = value.trim_end_matches('/');
            let spec = if trimmed.is_empty() {
                P::Prefix("/".to_owned())
            } else {
                P::PathSeparatedPrefix(trimmed.to_owned())
            };
            (spec, 2, -(trimmed.len() as i64))
        }
    };
    let mut headers: Vec<HeaderMatcher> = m
        .headers
        .iter()
        .map(|h| {
            header(
                &h.name,
                h.type_.unwrap_or_default() == HeaderMatchType::Exact,
                &h.value,
            )
        })
        .collect();
    if let Some(method) = m.method {
        let name = serde_json::to_value(method)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        headers.push(header(":method", true, &name));
    }
    let query_parameters = m
        .query_params
        .iter()
        .map(|q| QueryParameterMatcher {
            name: q.name.clone(),
            query_parameter_match_specifier: Some(
                query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(exact_or_regex(
                    q.type_.unwrap_or_default() == HeaderMatchType::Exact,
                    &q.value,
                )),
            ),
        })
        .collect();
    let rank = MatchRank {
        path_kind,
        prefix_len,
        no_method: u8::from(m.method.is_none()),
        headers: -(m.headers.len() as i64),
        query: -(m.query_params.len() as i64),
    };
    (
        RouteMatch {
            path_specifier: Some(path),
            headers,
            query_parameters,
            ..Default::default()
        },
        rank,
    )
}

/// gRPC methods are paths `/SERVICE/METHOD`: both given and exact is an exact path, a
/// service alone is a prefix, anything else a regex.
fn grpc_match(m: &GrpcRouteMatch) -> (RouteMatch, MatchRank) {
    use route_match::PathSpecifier as P;
    let (path, path_kind, prefix_len) = match &m.method {
        None => (P::Prefix("/".to_owned()), 2, 0),
        Some(mm) => {
            let exact = mm.type_.unwrap_or_default() == GrpcMethodMatchType::Exact;
            match (mm.service.as_deref(), mm.method.as_deref(), exact) {
                (Some(s), Some(me), true) => (P::Path(format!("/{s}/{me}")), 0, 0),
                (Some(s), None, true) => {
                    let p = format!("/{s}/");
                    let len = -(p.len() as i64);
                    (P::Prefix(p), 2, len)
                }
                (s, me, exact) => {
                    let part = |v: Option<&str>| match v {
                        Some(v) if exact => regex_escape(v),
                        Some(v) => v.to_owned(),
                        None => "[^/]+".to_owned(),
                    };
                    (
                        P::SafeRegex(regex(&format!("/{}/{}", part(s), part(me)))),
                        1,
                        0,
                    )
                }
            }
        }
    };
    let headers: Vec<HeaderMatcher> = m
        .headers
        .iter()
        .map(|h| {
            header(
                &h.name,
                h.type_.unwrap_or_default() == weft_model::gateway_api::GrpcHeaderMatchType::Exact,
                &h.value,
            )
        })
        .collect();
    let rank = MatchRank {
        path_kind,
        prefix_len,
        no_method: 1,
        headers: -(m.headers.len() as i64),
        query: 0,
    };
    (
        RouteMatch {
            path_specifier: Some(path),
            headers,
            ..Default::default()
        },
        rank,
    )
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

/// True when a ReferenceGrant in `to_ns` lets `from_kind` routes of `from_ns` use the
/// Service `name`.
fn granted(
    snap: &crate::Snapshot,
    from_kind: &str,
    from_ns: &str,
    to_ns: &str,
    name: &str,
) -> bool {
    snap.resources.iter().any(|r| {
        let Spec::ReferenceGrant(g) = &r.spec else {
            return false;
        };
        r.namespace() == to_ns
            && g.from.iter().any(|f| {
                f.group.as_deref().unwrap_or("") == GATEWAY_GROUP
                    && f.kind == from_kind
                    && f.namespace == from_ns
            })
            && g.to.iter().any(|t| {
                t.group.as_deref().unwrap_or("").is_empty()
                    && t.kind == "Service"
                    && t.name.as_deref().is_none_or(|n| n == name)
            })
    })
}

/// The cluster a backend reference names, or why it cannot be used.
fn backend_cluster(ctx: &Ctx, route: &ApiRoute, b: &Backend) -> Option<String> {
    let core = b.group.is_none_or(str::is_empty) && b.kind.is_none_or(|k| k == "Service");
    if !core {
        return None;
    }
    let ns = b.namespace.unwrap_or(route.res.namespace());
    if ns != route.res.namespace()
        && !granted(ctx.snap, route.kind, route.res.namespace(), ns, b.name)
    {
        tracing::debug!(route = %route.res.display_name(), backend = b.name, namespace = ns,
            "backend in another namespace without a ReferenceGrant: not used");
        return None;
    }
    let host = format!("{}.{ns}.{DOMAIN_SUFFIX}", b.name);
    let svc = ctx.snap.registry.service(&host)?;
    let port = match b.port {
        Some(p) => u16::try_from(p).ok()?,
        None => match svc.ports.as_slice() {
            [only] => only.number,
            _ => return None,
        },
    };
    svc.port(port)?;
    Some(ClusterName::outbound(port, "", &host).to_string())
}

fn header_options(h: &HttpHeaderFilter) -> (Vec<HeaderValueOption>, Vec<String>) {
    let hv = |name: &str, value: &str, action: HeaderAppendAction| HeaderValueOption {
        header: Some(HeaderValue {
            key: name.to_ascii_lowercase(),
            value: value.to_owned(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    };
    let mut add: Vec<HeaderValueOption> = h
        .set
        .iter()
        .map(|x| {
            hv(
                &x.name,
                &x.value,
                HeaderAppendAction::OverwriteIfExistsOrAdd,
            )
        })
        .collect();
    add.extend(
        h.add
            .iter()
            .map(|x| hv(&x.name, &x.value, HeaderAppendAction::AppendIfExistsOrAdd)),
    );
    (
        add,
        h.remove.iter().map(|s| s.to_ascii_lowercase()).collect(),
    )
}

/// The matched prefix of a route match, for `ReplacePrefixMatch`.
fn matched_prefix(m: &RouteMatch) -> Option<&str> {
    match &m.path_specifier {
        Some(route_match::PathSpecifier::Prefix(p))
        | Some(route_match::PathSpecifier::PathSeparatedPrefix(p)) => Some(p),
        _ => None,
    }
}

fn path_rewrite(action: &mut RouteAction, m: &RouteMatch, path: &HttpPathModifier) {
    match path.type_.unwrap_or_default() {
        HttpPathModifierType::ReplaceFullPath => {
            action.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(regex("^/.*$")),
                substitution: path.replace_full_path.clone().unwrap_or_else(|| "/".into()),
            });
        }
        HttpPathModifierType::ReplacePrefixMatch => {
            let to = path
                .replace_prefix_match
                .clone()
                .unwrap_or_else(|| "/".into());
            let from = matched_prefix(m).unwrap_or("/");
            if to == "/" && from != "/" {
                // `/api/x` with `/api` → `/` must become `/x`, not `//x`.
                action.regex_rewrite = Some(RegexMatchAndSubstitute {
                    pattern: Some(regex(&format!("^{}/*", regex_escape(from)))),
                    substitution: "/".to_owned(),
                });
            } else {
                action.prefix_rewrite = to;
            }
        }
    }
}

fn redirect(m: &RouteMatch, r: &HttpRequestRedirectFilter) -> RedirectAction {
    use redirect_action::RedirectResponseCode as Code;
    let code = match r.status_code.unwrap_or(302) {
        301 => Code::MovedPermanently,
        303 => Code::SeeOther,
        307 => Code::TemporaryRedirect,
        308 => Code::PermanentRedirect,
        _ => Code::Found,
    };
    let mut out = RedirectAction {
        host_redirect: r.hostname.clone().unwrap_or_default(),
        port_redirect: r.port.unwrap_or(0),
        response_code: code as i32,
        scheme_rewrite_specifier: r.scheme.map(|s| {
            redirect_action::SchemeRewriteSpecifier::SchemeRedirect(
                match s {
                    RedirectScheme::Http => "http",
                    RedirectScheme::Https => "https",
                }
                .to_owned(),
            )
        }),
        ..Default::default()
    };
    if let Some(p) = &r.path {
        out.path_rewrite_specifier = Some(match p.type_.unwrap_or_default() {
            HttpPathModifierType::ReplaceFullPath => {
                redirect_action::PathRewriteSpecifier::PathRedirect(
                    p.replace_full_path.clone().unwrap_or_else(|| "/".into()),
                )
            }
            HttpPathModifierType::ReplacePrefixMatch => {
                let _ = m;
                redirect_action::PathRewriteSpecifier::PrefixRewrite(
                    p.replace_prefix_match.clone().unwrap_or_else(|| "/".into()),
                )
            }
        });
    }
    out
}

fn retry(r: Option<&HttpRouteRetry>) -> Option<RetryPolicy> {
    let Some(r) = r else {
        return Some(default_retry_policy());
    };
    let attempts = u32::try_from(r.attempts.unwrap_or(0)).unwrap_or(0);
    if attempts == 0 {
        return None;
    }
    let mut p = default_retry_policy();
    p.num_retries = Some(UInt32Value { value: attempts });
    if !r.codes.is_empty() {
        p.retry_on = "retriable-status-codes".to_owned();
        p.retriable_status_codes = r
            .codes
            .iter()
            .filter_map(|c| u32::try_from(*c).ok())
            .collect();
    }
    if let Some(b) = r.backoff {
        p.retry_back_off = Some(retry_policy::RetryBackOff {
            base_interval: Some(duration(b.as_std())),
            ..Default::default()
        });
    }
    Some(p)
}

/// The Envoy route for one match of a rule.
fn envoy_route(ctx: &Ctx, route: &ApiRoute, rule: &ApiRule, m: RouteMatch) -> Route {
    let mut out = Route {
        name: rule.name.map(str::to_owned).unwrap_or_default(),
        metadata: Some(config_metadata(route.res)),
        ..Default::default()
    };
    for f in &rule.filters {
        match f {
            Filter::RequestHeaders(h) => {
                let (add, remove) = header_options(h);
                out.request_headers_to_add.extend(add);
                out.request_headers_to_remove.extend(remove);
            }
            Filter::ResponseHeaders(h) => {
                let (add, remove) = header_options(h);
                out.response_headers_to_add.extend(add);
                out.response_headers_to_remove.extend(remove);
            }
            _ => {}
        }
    }
    if let Some(r) = rule.filters.iter().find_map(|f| match f {
        Filter::Redirect(r) => Some(*r),
        _ => None,
    }) {
        out.action = Some(route::Action::Redirect(redirect(&m, r)));
        out.r#match = Some(m);
        return out;
    }
    let backends: Vec<(String, u32, &Backend)> = rule
        .backends
        .iter()
        .filter(|b| b.weight > 0)
        .filter_map(|b| Some((backend_cluster(ctx, route, b)?, b.weight as u32, b)))
        .collect();
    if backends.is_empty() {
        // No backend (or none usable): the specification's answer is 500.
        out.action = Some(route::Action::DirectResponse(DirectResponseAction {
            status: 500,
            ..Default::default()
        }));
        out.r#match = Some(m);
        return out;
    }
    let mut action = RouteAction {
        timeout: Some(duration(rule.timeout.unwrap_or_default())),
        retry_policy: retry(rule.retry),
        ..Default::default()
    };
    if let (Some(p), Some(t)) = (action.retry_policy.as_mut(), rule.backend_timeout) {
        p.per_try_timeout = Some(duration(t));
    }
    action.cluster_specifier = Some(match backends.as_slice() {
        [(only, _, b)] if b.filters.is_empty() => {
            route_action::ClusterSpecifier::Cluster(only.clone())
        }
        many => route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: many
                .iter()
                .map(|(name, weight, b)| {
                    let mut cw = weighted_cluster::ClusterWeight {
                        name: name.clone(),
                        weight: Some(UInt32Value { value: *weight }),
                        ..Default::default()
                    };
                    for f in &b.filters {
                        match f {
                            Filter::RequestHeaders(h) => {
                                let (add, remove) = header_options(h);
                                cw.request_headers_to_add.extend(add);
                                cw.request_headers_to_remove.extend(remove);
                            }
                            Filter::ResponseHeaders(h) => {
                                let (add, remove) = header_options(h);
                                cw.response_headers_to_add.extend(add);
                                cw.response_headers_to_remove.extend(remove);
                            }
                            _ => {}
                        }
                    }
                    cw
                })
                .collect(),
            ..Default::default()
        }),
    });
    for f in &rule.filters {
        match f {
            Filter::Rewrite(rw) => {
                if let Some(h) = &rw.hostname {
                    action.host_rewrite_specifier = Some(
                        route_action::HostRewriteSpecifier::HostRewriteLiteral(h.clone()),
                    );
                }
                if let Some(p) = &rw.path {
                    path_rewrite(&mut action, &m, p);
                }
            }
            Filter::Mirror(mirror) => {
                let Some(target) = mirror.backend_ref.as_ref() else {
                    continue;
                };
                let b = Backend {
                    group: target.group.as_deref(),
                    kind: target.kind.as_deref(),
                    name: &target.name,
                    namespace: target.namespace.as_deref(),
                    port: target.port,
                    weight: 1,
                    filters: Vec::new(),
                };
                let Some(cluster) = backend_cluster(ctx, route, &b) else {
                    continue;
                };
                let percent = if let Some(p) = mirror.percent {
                    f64::from(p)
                } else if let Some(fr) = &mirror.fraction {
                    let num = f64::from(fr.numerator.unwrap_or(0));
                    let den = f64::from(fr.denominator.unwrap_or(100).max(1));
                    num * 100.0 / den
                } else {
                    100.0
                };
                action
                    .request_mirror_policies
                    .push(route_action::RequestMirrorPolicy {
                        cluster,
                        runtime_fraction: Some(RuntimeFractionalPercent {
                            default_value: Some(fraction(percent)),
                            ..Default::default()
                        }),
                        trace_sampled: Some(BoolValue { value: false }),
                        ..Default::default()
                    });
            }
            _ => {}
        }
    }
    out.action = Some(route::Action::Route(action));
    out.r#match = Some(m);
    out
}

/// One attached route's Envoy routes with their sort keys.
type Ranked = ((MatchRank, String, String, usize, usize), Route);

fn ranked_routes(ctx: &Ctx, route: &ApiRoute) -> Vec<Ranked> {
    let created = route.res.raw["metadata"]["creationTimestamp"]
        .as_str()
        // A route without a timestamp (local files) sorts after dated ones, by name.
        .unwrap_or("~")
        .to_owned();
    let key = format!("{}/{}", route.res.namespace(), route.res.name());
    let mut out = Vec::new();
    for (ri, rule) in route.rules.iter().enumerate() {
        let matches = if rule.matches.is_empty() {
            vec![http_match(&HttpRouteMatch::default())]
        } else {
            rule.matches.clone()
        };
        for (mi, (m, rank)) in matches.into_iter().enumerate() {
            out.push((
                (rank, created.clone(), key.clone(), ri, mi),
                envoy_route(ctx, route, rule, m),
            ));
        }
    }
    out
}

fn sorted(mut ranked: Vec<Ranked>) -> Vec<Route> {
    ranked.sort_by(|a, b| a.0.cmp(&b.0));
    ranked.into_iter().map(|(_, r)| r).collect()
}

fn is_service_parent(p: &ParentReference) -> bool {
    p.kind.as_deref() == Some("Service") && p.group.as_deref().is_none_or(str::is_empty)
}

/// Routes of HTTPRoutes/GRPCRoutes whose parent is `svc` (on `port`, or all ports), for
/// a sidecar: producer routes (in the service's namespace) and consumer routes (in the
/// proxy's namespace). `None` when no route is attached: the caller falls back to
/// VirtualServices and the default route.
pub(super) fn mesh_routes(ctx: &Ctx, svc: &Service, port: u16) -> Option<Vec<Route>> {
    let mut ranked = Vec::new();
    for route in http_routes(ctx.snap) {
        let ns = route.res.namespace();
        if ns != svc.namespace && ns != ctx.proxy.namespace {
            continue;
        }
        let attached = route.parents.iter().any(|p| {
            let pns = p.namespace.as_deref().unwrap_or(ns);
            is_service_parent(p)
                && format!("{}.{pns}.{DOMAIN_SUFFIX}", p.name) == svc.hostname
                && p.port.is_none_or(|pp| pp == u32::from(port))
        });
        if attached {
            ranked.extend(ranked_routes(ctx, &route));
        }
    }
    (!ranked.is_empty()).then(|| sorted(ranked))
}

/// The Gateway API Gateways this gateway proxy serves: class `istio` or `weft`, in the
/// proxy's namespace, named by the proxy's `gateway.networking.k8s.io/gateway-name` label.
fn served_gateways<'a>(
    ctx: &'a Ctx,
) -> impl Iterator<Item = (&'a Resource, &'a weft_model::gateway_api::GatewaySpec)> {
    let name = ctx.proxy.labels.get(GATEWAY_NAME_LABEL);
    ctx.snap
        .resources
        .iter()
        .filter_map(move |r| match &r.spec {
            Spec::KubeGateway(g)
                if BUILTIN_GATEWAY_CLASSES.contains(&g.gateway_class_name.as_str())
                    && r.namespace() == ctx.proxy.namespace
                    && name.is_some_and(|n| n == r.name()) =>
            {
                Some((r, g))
            }
            _ => None,
        })
}

/// The hostnames a route serves on a listener: the intersection of the listener's
/// hostname and the route's; `None` when they do not meet.
fn effective_hosts(listener: Option<&str>, route: &[String]) -> Option<Vec<String>> {
    match (listener, route.is_empty()) {
        (None, true) => Some(vec!["*".to_owned()]),
        (Some(l), true) => Some(vec![l.to_owned()]),
        (None, false) => Some(route.to_vec()),
        (Some(l), false) => {
            let hosts: Vec<String> = route
                .iter()
                .filter_map(|h| {
                    if host_matches(l, h) {
                        Some(h.clone())
                    } else if host_matches(h, l) {
                        Some(l.to_owned())
                    } else {
                        None
                    }
                })
                .collect();
            (!hosts.is_empty()).then_some(hosts)
        }
    }
}

/// Whether a listener lets routes from `route_ns` of this kind attach.
fn allowed(
    ctx: &Ctx,
    gw: &Resource,
    l: &weft_model::gateway_api::Listener,
    route_ns: &str,
    kind: &str,
) -> bool {
    let ar = l.allowed_routes.as_ref();
    let kinds_ok = ar.is_none_or(|a| {
        a.kinds.is_empty()
            || a.kinds
                .iter()
                .any(|k| k.kind == kind && k.group.as_deref().is_none_or(|g| g == GATEWAY_GROUP))
    });
    let from = ar
        .and_then(|a| a.namespaces.as_ref())
        .and_then(|n| n.from)
        .unwrap_or_default();
    let ns_ok = match from {
        FromNamespaces::All => true,
        FromNamespaces::Same => route_ns == gw.namespace(),
        FromNamespaces::None => false,
        FromNamespaces::Selector => {
            let sel = ar
                .and_then(|a| a.namespaces.as_ref())
                .and_then(|n| n.selector.as_ref());
            ctx.snap.resources.iter().any(|r| {
                matches!(r.spec, Spec::Namespace(_))
                    && r.name() == route_ns
                    && sel.is_some_and(|s| {
                        let labels = &r.meta.labels;
                        s.match_expressions.is_empty()
                            && s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
                    })
            })
        }
    };
    kinds_ok && ns_ok
}

/// Listeners and route configs for the Gateways this gateway proxy serves: each HTTP
/// listener port becomes listener `ADDR_PORT` (the Gateway's first IPAddress, else
/// `0.0.0.0`) with RDS `http.PORT`; one virtual host per effective hostname.
pub(super) fn gateway_listeners(ctx: &Ctx, out: &mut ProxyResources) {
    // port → (bind address, hostname → ranked routes)
    let mut ports: BTreeMap<u16, (String, BTreeMap<String, Vec<Ranked>>)> = BTreeMap::new();
    let routes = http_routes(ctx.snap);
    for (gw_res, gw) in served_gateways(ctx) {
        let bind = gw
            .addresses
            .iter()
            .find(|a| a.type_.as_deref().is_none_or(|t| t == "IPAddress"))
            .and_then(|a| a.value.clone())
            .unwrap_or_else(|| "0.0.0.0".to_owned());
        for l in &gw.listeners {
            // HTTPS and TLS need certificates (SDS), which come with the identity work.
            if l.protocol != "HTTP" {
                continue;
            }
            let Some(port) = l.port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let entry = ports
                .entry(port)
                .or_insert_with(|| (bind.clone(), BTreeMap::new()));
            for route in &routes {
                let rns = route.res.namespace();
                let attached = route.parents.iter().any(|p| {
                    p.kind.as_deref().is_none_or(|k| k == "Gateway")
                        && p.group.as_deref().is_none_or(|g| g == GATEWAY_GROUP)
                        && p.name == gw_res.name()
                        && p.namespace.as_deref().unwrap_or(rns) == gw_res.namespace()
                        && p.section_name.as_deref().is_none_or(|s| s == l.name)
                        && p.port.is_none_or(|pp| pp == u32::from(port))
                });
                if !attached || !allowed(ctx, gw_res, l, rns, route.kind) {
                    continue;
                }
                let Some(hosts) = effective_hosts(l.hostname.as_deref(), route.hostnames) else {
                    continue;
                };
                let ranked = ranked_routes(ctx, route);
                for h in hosts {
                    entry.1.entry(h).or_default().extend(ranked.iter().cloned());
                }
            }
        }
    }
    for (port, (bind, hosts)) in ports {
        let route_name = format!("http.{port}");
        let vhosts: Vec<VirtualHost> = hosts
            .into_iter()
            .map(|(host, ranked)| VirtualHost {
                name: format!("{host}:{port}"),
                domains: if host == "*" {
                    vec!["*".to_owned()]
                } else {
                    vec![host.clone(), format!("{host}:{port}")]
                },
                routes: sorted(ranked),
                include_request_attempt_count: true,
                ..Default::default()
            })
            .collect();
        // An Istio Gateway on the same port already made this route config: add to it.
        let rc = out
            .routes
            .entry(route_name.clone())
            .or_insert_with(|| super::route::route_config(&route_name, Vec::new(), false));
        for vh in vhosts {
            if vh
                .domains
                .iter()
                .all(|d| !rc.virtual_hosts.iter().any(|have| have.domains.contains(d)))
            {
                rc.virtual_hosts.push(vh);
            }
        }
        let listener_name = format!("{bind}_{port}");
        out.listeners
            .entry(listener_name.clone())
            .or_insert_with(|| Listener {
                name: listener_name,
                address: Some(socket_address(&bind, port)),
                filter_chains: vec![FilterChain {
                    filters: vec![super::listener::hcm_filter(super::listener::hcm_rds(
                        ctx,
                        &format!("outbound_{bind}_{port}"),
                        &route_name,
                    ))],
                    ..Default::default()
                }],
                traffic_direction: TrafficDirection::Outbound as i32,
                ..Default::default()
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_intersect_as_the_specification_says() {
        let r = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(effective_hosts(None, &[]), Some(r(&["*"])));
        assert_eq!(
            effective_hosts(Some("*.example.com"), &r(&["a.example.com", "b.other.org"])),
            Some(r(&["a.example.com"]))
        );
        assert_eq!(
            effective_hosts(Some("a.example.com"), &r(&["*.example.com"])),
            Some(r(&["a.example.com"]))
        );
        assert_eq!(
            effective_hosts(Some("a.example.com"), &r(&["b.example.com"])),
            None
        );
    }

    #[test]
    fn precedence_orders_exact_regex_longest_prefix_method_headers_query() {
        let m = |yaml: &str| -> MatchRank {
            let hm: HttpRouteMatch = serde_json::from_str(yaml).expect("match");
            http_match(&hm).1
        };
        let mut ranks = [
            ("query", m(r#"{"queryParams":[{"name":"q","value":"1"}]}"#)),
            ("plain", m("{}")),
            (
                "headers2",
                m(r#"{"headers":[{"name":"a","value":"1"},{"name":"b","value":"1"}]}"#),
            ),
            ("method", m(r#"{"method":"GET"}"#)),
            (
                "long",
                m(r#"{"path":{"type":"PathPrefix","value":"/api/v1"}}"#),
            ),
            (
                "short",
                m(r#"{"path":{"type":"PathPrefix","value":"/api"}}"#),
            ),
            (
                "regex",
                m(r#"{"path":{"type":"RegularExpression","value":"/r.*"}}"#),
            ),
            ("exact", m(r#"{"path":{"type":"Exact","value":"/x"}}"#)),
        ];
        ranks.sort_by(|a, b| a.1.cmp(&b.1));
        let order: Vec<&str> = ranks.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            order,
            [
                "exact", "regex", "long", "short", "method", "headers2", "query", "plain"
            ]
        );
    }
}
