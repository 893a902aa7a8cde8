//! RDS: VirtualService HTTP rules become Envoy routes; sidecar route configs `"PORT"` and
//! `http_proxy` hold one virtual host per service port, covering every name a client may
//! use for it.

use super::{Ctx, ProxyResources, any, duration};
use crate::registry::Service;
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, HeaderValue, HeaderValueOption, RuntimeFractionalPercent, data_source,
    header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, HeaderMatcher, QueryParameterMatcher, RedirectAction, RetryPolicy, Route,
    RouteAction, RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster, header_matcher,
    query_parameter_matcher, redirect_action, retry_policy, route, route_action, route_match,
    weighted_cluster,
};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{FaultDelay, fault_delay};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    FaultAbort, HttpFault, fault_abort,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatchAndSubstitute, RegexMatcher, StringMatcher, string_matcher,
};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};
use std::collections::{BTreeMap, BTreeSet};
use weft_model::Resource;
use weft_model::analyze::{DOMAIN_SUFFIX, host_matches, resolve_host};
use weft_model::common::selector_matches;
use weft_model::istio::networking::{
    Destination, HeaderOperations, Headers, HttpFaultInjection, HttpMatchRequest, HttpRetry,
    HttpRoute, Percent, StringMatch, VirtualService,
};
use weft_xds::naming::{ClusterName, PASSTHROUGH_CLUSTER};

/// The HTTP fault filter's name (per-route config key).
pub(crate) const FAULT_FILTER: &str = "envoy.filters.http.fault";
/// Route config served to the explicit-proxy chain of `virtualOutbound`.
pub const HTTP_PROXY_ROUTE: &str = "http_proxy";

/// Where a set of routes is evaluated: which gateway (or the mesh) and which port.
pub(crate) struct RouteCtx<'a> {
    pub ctx: &'a Ctx<'a>,
    /// Listener port the routes serve.
    pub port: u16,
    /// `None` for sidecars (`mesh`); the bound gateways' `namespace/name` for gateways.
    pub gateways: Option<&'a [String]>,
}

/// The mesh VirtualService for `hostname` visible to the proxy: an exact host beats a
/// wildcard; among equals, key order (namespace, name) decides.
pub(crate) fn mesh_virtual_service<'a>(
    ctx: &'a Ctx,
    hostname: &str,
) -> Option<(&'a Resource, &'a VirtualService)> {
    let mut best: Option<(usize, &Resource, &VirtualService)> = None;
    for (r, vs) in ctx.snap.virtual_services() {
        if !vs.applies_to_mesh()
            || !crate::registry::exported_to(&vs.export_to, r.namespace(), &ctx.proxy.namespace)
        {
            continue;
        }
        for h in &vs.hosts {
            let h = resolve_host(h, r.namespace());
            if host_matches(&h, hostname) {
                let rank = usize::from(h != hostname);
                if best.as_ref().is_none_or(|(b, _, _)| rank < *b) {
                    best = Some((rank, r, vs));
                }
            }
        }
    }
    best.map(|(_, r, vs)| (r, vs))
}

/// Route configs `"PORT"` (one per HTTP port of the visible services) and `http_proxy`.
pub(super) fn sidecar_route_configs(ctx: &Ctx, out: &mut ProxyResources) {
    let mut by_port: BTreeMap<u16, Vec<VirtualHost>> = BTreeMap::new();
    let mut proxy_hosts: Vec<VirtualHost> = Vec::new();
    for svc in &ctx.services {
        for port in svc.ports.iter().filter(|p| p.protocol.is_http()) {
            let routes = service_routes(ctx, svc, port.number);
            let names = name_forms(svc, &ctx.proxy.namespace);
            let vh_name = format!("{}:{}", svc.hostname, port.number);
            by_port.entry(port.number).or_default().push(VirtualHost {
                name: vh_name.clone(),
                domains: names
                    .iter()
                    .flat_map(|n| [n.clone(), format!("{n}:{}", port.number)])
                    .collect(),
                routes: routes.clone(),
                include_request_attempt_count: true,
                ..Default::default()
            });
            // An explicit proxy sees `Host: name:port`; the bare name only means port 80.
            proxy_hosts.push(VirtualHost {
                name: vh_name,
                domains: names
                    .iter()
                    .flat_map(|n| {
                        let mut d = vec![format!("{n}:{}", port.number)];
                        if port.number == 80 {
                            d.push(n.clone());
                        }
                        d
                    })
                    .collect(),
                routes,
                include_request_attempt_count: true,
                ..Default::default()
            });
        }
    }
    for (port, hosts) in by_port {
        let name = port.to_string();
        out.routes
            .insert(name.clone(), route_config(&name, hosts, true));
    }
    out.routes.insert(
        HTTP_PROXY_ROUTE.to_owned(),
        route_config(HTTP_PROXY_ROUTE, proxy_hosts, true),
    );
}

/// A route config; with `allow_any`, unknown hosts pass through (Istio's default
/// `outboundTrafficPolicy: ALLOW_ANY`). Domains already claimed by an earlier virtual
/// host are dropped, since Envoy rejects a config with duplicate domains.
pub(crate) fn route_config(
    name: &str,
    hosts: Vec<VirtualHost>,
    allow_any: bool,
) -> RouteConfiguration {
    let mut seen = BTreeSet::new();
    let mut virtual_hosts: Vec<VirtualHost> = hosts
        .into_iter()
        .map(|mut vh| {
            vh.domains.retain(|d| seen.insert(d.clone()));
            vh
        })
        .filter(|vh| !vh.domains.is_empty())
        .collect();
    if allow_any && !seen.contains("*") {
        virtual_hosts.push(VirtualHost {
            name: "allow_any".to_owned(),
            domains: vec!["*".to_owned()],
            routes: vec![Route {
                name: "allow_any".to_owned(),
                r#match: Some(prefix_match("/")),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                        PASSTHROUGH_CLUSTER.to_owned(),
                    )),
                    timeout: Some(duration(std::time::Duration::ZERO)),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            include_request_attempt_count: true,
            ..Default::default()
        });
    }
    RouteConfiguration {
        name: name.to_owned(),
        virtual_hosts,
        validate_clusters: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

/// Every name a client may use for a service, from a proxy in `proxy_ns`: the FQDN, for
/// Kubernetes-style names `name.ns.svc`, `name.ns` (and `name` from the same namespace),
/// and its VIPs.
pub(crate) fn name_forms(svc: &Service, proxy_ns: &str) -> Vec<String> {
    let mut names = vec![svc.hostname.clone()];
    if let Some(short) = svc.hostname.strip_suffix(&format!(".{DOMAIN_SUFFIX}"))
        && let Some((name, ns)) = short.split_once('.')
        && !ns.contains('.')
    {
        if ns == proxy_ns {
            names.push(name.to_owned());
        }
        names.push(format!("{name}.{ns}.svc"));
        names.push(short.to_owned());
    }
    names.extend(svc.addresses.iter().filter(|a| !a.contains('/')).cloned());
    names
}

/// The routes for one service port: its VirtualService's rules, else Istio's default.
fn service_routes(ctx: &Ctx, svc: &Service, port: u16) -> Vec<Route> {
    // Gateway API routes attached to the service (GAMMA) come first.
    if let Some(routes) = super::gateway_api::mesh_routes(ctx, svc, port) {
        return routes;
    }
    let rc = RouteCtx {
        ctx,
        port,
        gateways: None,
    };
    if let Some((r, vs)) = mesh_virtual_service(ctx, &svc.hostname) {
        let routes = virtual_service_routes(&rc, r, vs);
        if !routes.is_empty() {
            return routes;
        }
    }
    vec![default_route(
        &ClusterName::outbound(port, "", &svc.hostname).to_string(),
    )]
}

/// Istio's route when no VirtualService applies: everything to the service's cluster, no
/// timeout, the default retry policy.
pub(crate) fn default_route(cluster: &str) -> Route {
    Route {
        name: "default".to_owned(),
        r#match: Some(prefix_match("/")),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.to_owned())),
            timeout: Some(duration(std::time::Duration::ZERO)),
            retry_policy: Some(default_retry_policy()),
            ..Default::default()
        })),
        ..Default::default()
    }
}

const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/// Istio's default: 2 retries on connection failures and 503, each to another host.
pub fn default_retry_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: DEFAULT_RETRY_ON.to_owned(),
        num_retries: Some(UInt32Value { value: 2 }),
        retry_host_predicate: vec![previous_hosts()],
        host_selection_retry_max_attempts: 5,
        retriable_status_codes: vec![503],
        ..Default::default()
    }
}

fn previous_hosts() -> retry_policy::RetryHostPredicate {
    retry_policy::RetryHostPredicate {
        name: "envoy.retry_host_predicates.previous_hosts".to_owned(),
        config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(
            any(&PreviousHostsPredicate {}),
        )),
    }
}

/// The Envoy routes of a VirtualService's HTTP rules, in order. A rule with several
/// matches becomes several routes with the same action (Envoy has no OR of matches).
pub(crate) fn virtual_service_routes(
    rc: &RouteCtx,
    r: &Resource,
    vs: &VirtualService,
) -> Vec<Route> {
    let mut out = Vec::new();
    for rule in &vs.http {
        if rule.delegate.is_some() {
            // Delegation is not translated yet; the rule is skipped rather than guessed.
            continue;
        }
        let matches: Vec<&HttpMatchRequest> = rule
            .r#match
            .iter()
            .filter(|m| match_applies(rc, m))
            .collect();
        if !rule.r#match.is_empty() && matches.is_empty() {
            continue;
        }
        let Some(action) = rule_action(rc, r.namespace(), rule) else {
            continue;
        };
        let name = rule.name.clone().unwrap_or_default();
        let mut template = Route {
            name,
            action: Some(action),
            metadata: Some(super::config_metadata(r)),
            ..Default::default()
        };
        apply_headers(&mut template, rule.headers.as_ref());
        if let [only] = rule.route.as_slice()
            && let Some(h) = &only.headers
        {
            // One destination: its header edits apply to the whole route, as Istio merges.
            extend_headers(&mut template, h);
        }
        if let Some(f) = &rule.fault {
            template
                .typed_per_filter_config
                .insert(FAULT_FILTER.to_owned(), any(&fault(f)));
        }
        if matches.is_empty() {
            let mut route = template.clone();
            route.r#match = Some(prefix_match("/"));
            out.push(route);
        } else {
            for m in matches {
                let mut route = template.clone();
                route.r#match = Some(route_match(m));
                if route.name.is_empty()
                    && let Some(n) = &m.name
                {
                    route.name = n.clone();
                }
                out.push(route);
            }
        }
    }
    out
}

/// Whether a match condition can apply where these routes are evaluated (port, source
/// workload, source namespace, gateway).
fn match_applies(rc: &RouteCtx, m: &HttpMatchRequest) -> bool {
    let proxy = rc.ctx.proxy;
    if m.port.is_some_and(|p| p != u32::from(rc.port)) {
        return false;
    }
    if !m.source_labels.is_empty() && !selector_matches(&m.source_labels, &proxy.labels) {
        return false;
    }
    if m.source_namespace
        .as_ref()
        .is_some_and(|ns| *ns != proxy.namespace)
    {
        return false;
    }
    if !m.gateways.is_empty() {
        return match rc.gateways {
            None => m.gateways.iter().any(|g| g == "mesh"),
            Some(bound) => m.gateways.iter().any(|g| bound.contains(g)),
        };
    }
    true
}

fn string_matcher(m: &StringMatch, ignore_case: bool) -> StringMatcher {
    let pattern = if let Some(e) = &m.exact {
        string_matcher::MatchPattern::Exact(e.clone())
    } else if let Some(p) = &m.prefix {
        string_matcher::MatchPattern::Prefix(p.clone())
    } else {
        string_matcher::MatchPattern::SafeRegex(regex(m.regex.as_deref().unwrap_or(".*")))
    };
    StringMatcher {
        match_pattern: Some(pattern),
        ignore_case,
    }
}

pub(crate) fn regex(re: &str) -> RegexMatcher {
    RegexMatcher {
        regex: re.to_owned(),
        ..Default::default()
    }
}

fn header_matcher(name: &str, m: &StringMatch, invert: bool) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_owned(),
        header_match_specifier: Some(if m.is_empty() {
            header_matcher::HeaderMatchSpecifier::PresentMatch(true)
        } else {
            header_matcher::HeaderMatchSpecifier::StringMatch(string_matcher(m, false))
        }),
        invert_match: invert,
        ..Default::default()
    }
}

fn prefix_match(prefix: &str) -> RouteMatch {
    RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.to_owned())),
        ..Default::default()
    }
}

fn route_match(m: &HttpMatchRequest) -> RouteMatch {
    let ignore_case = m.ignore_uri_case == Some(true);
    let path = match &m.uri {
        Some(StringMatch { exact: Some(e), .. }) => route_match::PathSpecifier::Path(e.clone()),
        Some(StringMatch {
            prefix: Some(p), ..
        }) => route_match::PathSpecifier::Prefix(p.clone()),
        Some(StringMatch { regex: Some(r), .. }) => route_match::PathSpecifier::SafeRegex(regex(r)),
        _ => route_match::PathSpecifier::Prefix("/".to_owned()),
    };
    let mut headers: Vec<HeaderMatcher> = Vec::new();
    for (pseudo, sm) in [
        (":method", &m.method),
        (":authority", &m.authority),
        (":scheme", &m.scheme),
    ] {
        if let Some(sm) = sm {
            headers.push(header_matcher(pseudo, sm, false));
        }
    }
    headers.extend(m.headers.iter().map(|(k, v)| header_matcher(k, v, false)));
    headers.extend(
        m.without_headers
            .iter()
            .map(|(k, v)| header_matcher(k, v, true)),
    );
    RouteMatch {
        path_specifier: Some(path),
        case_sensitive: ignore_case.then_some(BoolValue { value: false }),
        headers,
        query_parameters: m
            .query_params
            .iter()
            .map(|(k, v)| QueryParameterMatcher {
                name: k.clone(),
                query_parameter_match_specifier: Some(if v.is_empty() {
                    query_parameter_matcher::QueryParameterMatchSpecifier::PresentMatch(true)
                } else {
                    query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(
                        string_matcher(v, false),
                    )
                }),
            })
            .collect(),
        ..Default::default()
    }
}

/// The cluster a destination names: its port, else the only port of the service, else
/// the port the routes are served on.
pub(crate) fn destination_cluster(rc: &RouteCtx, vs_ns: &str, d: &Destination) -> String {
    let host = resolve_host(&d.host, vs_ns);
    let port = d
        .port
        .as_ref()
        .and_then(|p| u16::try_from(p.number).ok())
        .or_else(|| {
            rc.ctx
                .snap
                .registry
                .service(&host)
                .filter(|s| s.ports.len() == 1)
                .map(|s| s.ports[0].number)
        })
        .unwrap_or(rc.port);
    ClusterName::outbound(port, d.subset.as_deref().unwrap_or(""), &host).to_string()
}

fn rule_action(rc: &RouteCtx, vs_ns: &str, rule: &HttpRoute) -> Option<route::Action> {
    if let Some(dr) = &rule.direct_response {
        let body = dr.body.as_ref().and_then(|b| {
            b.string
                .clone()
                .map(data_source::Specifier::InlineString)
                .or_else(|| {
                    b.bytes
                        .as_deref()
                        .and_then(base64_decode)
                        .map(data_source::Specifier::InlineBytes)
                })
        });
        return Some(route::Action::DirectResponse(DirectResponseAction {
            status: dr.status.unwrap_or(200),
            body: body.map(|s| DataSource {
                specifier: Some(s),
                ..Default::default()
            }),
            ..Default::default()
        }));
    }
    if let Some(rd) = &rule.redirect {
        use redirect_action::RedirectResponseCode as Code;
        let code = match rd.redirect_code.unwrap_or(301) {
            302 => Code::Found,
            303 => Code::SeeOther,
            307 => Code::TemporaryRedirect,
            308 => Code::PermanentRedirect,
            _ => Code::MovedPermanently,
        };
        return Some(route::Action::Redirect(RedirectAction {
            host_redirect: rd.authority.clone().unwrap_or_default(),
            port_redirect: rd.port.unwrap_or(0),
            response_code: code as i32,
            scheme_rewrite_specifier: rd
                .scheme
                .clone()
                .map(redirect_action::SchemeRewriteSpecifier::SchemeRedirect),
            path_rewrite_specifier: rd
                .uri
                .clone()
                .map(redirect_action::PathRewriteSpecifier::PathRedirect),
            ..Default::default()
        }));
    }
    let dests: Vec<_> = rule
        .route
        .iter()
        .filter_map(|d| Some((d.destination.as_ref()?, d)))
        .collect();
    if dests.is_empty() {
        return None;
    }
    let mut action = RouteAction {
        timeout: Some(duration(
            rule.timeout
                .map_or(std::time::Duration::ZERO, |t| t.as_std()),
        )),
        retry_policy: retry_policy(rule.retries.as_ref()),
        ..Default::default()
    };
    action.cluster_specifier = Some(if dests.len() == 1 {
        route_action::ClusterSpecifier::Cluster(destination_cluster(rc, vs_ns, dests[0].0))
    } else {
        let all_unweighted = dests.iter().all(|(_, d)| d.weight.unwrap_or(0) == 0);
        route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: dests
                .iter()
                .filter(|(_, d)| all_unweighted || d.weight.unwrap_or(0) > 0)
                .map(|(dest, d)| {
                    let mut cw = weighted_cluster::ClusterWeight {
                        name: destination_cluster(rc, vs_ns, dest),
                        weight: Some(UInt32Value {
                            value: if all_unweighted {
                                1
                            } else {
                                u32::try_from(d.weight.unwrap_or(0)).unwrap_or(0)
                            },
                        }),
                        ..Default::default()
                    };
                    if let Some(h) = &d.headers {
                        let (add, remove) = header_ops(h.request.as_ref());
                        cw.request_headers_to_add = add;
                        cw.request_headers_to_remove = remove;
                        let (add, remove) = header_ops(h.response.as_ref());
                        cw.response_headers_to_add = add;
                        cw.response_headers_to_remove = remove;
                    }
                    cw
                })
                .collect(),
            ..Default::default()
        })
    });
    if let Some(rw) = &rule.rewrite {
        if let Some(uri) = &rw.uri {
            action.prefix_rewrite = uri.clone();
        }
        if let Some(re) = &rw.uri_regex_rewrite {
            action.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(regex(re.r#match.as_deref().unwrap_or(".*"))),
                substitution: re.rewrite.clone().unwrap_or_default(),
            });
        }
        if let Some(a) = &rw.authority {
            action.host_rewrite_specifier = Some(
                route_action::HostRewriteSpecifier::HostRewriteLiteral(a.clone()),
            );
        }
    }
    let mut mirrors: Vec<(&Destination, Option<Percent>)> = Vec::new();
    if let Some(m) = &rule.mirror {
        let pct = rule.mirror_percentage.or_else(|| {
            rule.mirror_percent
                .or(rule.mirror_percent_snake)
                .map(|v| Percent {
                    value: f64::from(v),
                })
        });
        mirrors.push((m, pct));
    }
    for m in &rule.mirrors {
        if let Some(d) = &m.destination {
            mirrors.push((d, m.percentage));
        }
    }
    action.request_mirror_policies = mirrors
        .into_iter()
        .map(|(d, pct)| route_action::RequestMirrorPolicy {
            cluster: destination_cluster(rc, vs_ns, d),
            runtime_fraction: Some(RuntimeFractionalPercent {
                default_value: Some(fraction(pct.map_or(100.0, |p| p.value))),
                ..Default::default()
            }),
            trace_sampled: Some(BoolValue { value: false }),
            ..Default::default()
        })
        .collect();
    action.hash_policy = hash_policy(rc, vs_ns, dests[0].0);
    Some(route::Action::Route(action))
}

/// The route's hash key when the destination's DestinationRule asks for consistent hashing.
fn hash_policy(rc: &RouteCtx, vs_ns: &str, d: &Destination) -> Vec<route_action::HashPolicy> {
    use route_action::hash_policy::{
        ConnectionProperties, Cookie, Header, PolicySpecifier, QueryParameter,
    };
    let host = resolve_host(&d.host, vs_ns);
    let svc_ns = rc
        .ctx
        .snap
        .registry
        .service(&host)
        .map_or(vs_ns, |s| s.namespace.as_str());
    let Some((_, dr)) = rc
        .ctx
        .snap
        .destination_rule_for(&host, &rc.ctx.proxy.namespace, svc_ns)
    else {
        return Vec::new();
    };
    let port = d
        .port
        .as_ref()
        .map_or(rc.port, |p| u16::try_from(p.number).unwrap_or(rc.port));
    let policy = super::cluster::Policy::of(Some(dr), port, d.subset.as_deref());
    let Some(ch) = policy.load_balancer.and_then(|lb| lb.consistent_hash) else {
        return Vec::new();
    };
    let spec = if let Some(h) = ch.http_header_name {
        PolicySpecifier::Header(Header {
            header_name: h,
            ..Default::default()
        })
    } else if let Some(c) = ch.http_cookie {
        PolicySpecifier::Cookie(Cookie {
            name: c.name,
            path: c.path.unwrap_or_default(),
            ttl: c.ttl.map(|t| duration(t.as_std())),
            ..Default::default()
        })
    } else if ch.use_source_ip == Some(true) {
        PolicySpecifier::ConnectionProperties(ConnectionProperties { source_ip: true })
    } else if let Some(q) = ch.http_query_parameter_name {
        PolicySpecifier::QueryParameter(QueryParameter { name: q })
    } else {
        return Vec::new();
    };
    vec![route_action::HashPolicy {
        policy_specifier: Some(spec),
        terminal: false,
    }]
}

/// A VirtualService retry block: `attempts: 0` disables retries; status codes listed in
/// `retryOn` become `retriable_status_codes`.
fn retry_policy(r: Option<&HttpRetry>) -> Option<RetryPolicy> {
    let Some(r) = r else {
        return Some(default_retry_policy());
    };
    let attempts = u32::try_from(r.attempts.unwrap_or(0)).unwrap_or(0);
    if attempts == 0 {
        return None;
    }
    let mut p = default_retry_policy();
    p.num_retries = Some(UInt32Value { value: attempts });
    if let Some(on) = r.retry_on.as_deref().filter(|s| !s.is_empty()) {
        let mut kinds = Vec::new();
        let mut codes = Vec::new();
        for part in on.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match part.parse::<u32>() {
                Ok(code) => codes.push(code),
                Err(_) => kinds.push(part.to_owned()),
            }
        }
        if !codes.is_empty() && !kinds.iter().any(|k| k == "retriable-status-codes") {
            kinds.push("retriable-status-codes".to_owned());
        }
        p.retry_on = kinds.join(",");
        p.retriable_status_codes = codes;
    }
    p.per_try_timeout = r.per_try_timeout.map(|d| duration(d.as_std()));
    if r.retry_ignore_previous_hosts == Some(false) {
        p.retry_host_predicate.clear();
    }
    if let Some(b) = r.backoff {
        p.retry_back_off = Some(retry_policy::RetryBackOff {
            base_interval: Some(duration(b.as_std())),
            ..Default::default()
        });
    }
    Some(p)
}

/// Istio writes percentages as parts per million.
pub(crate) fn fraction(percent: f64) -> FractionalPercent {
    FractionalPercent {
        numerator: (percent.clamp(0.0, 100.0) * 10_000.0).round() as u32,
        denominator: fractional_percent::DenominatorType::Million as i32,
    }
}

fn fault(f: &HttpFaultInjection) -> HttpFault {
    let mut out = HttpFault::default();
    if let Some(d) = &f.delay {
        let pct = d
            .percentage
            .map(|p| p.value)
            .or_else(|| d.percent.map(f64::from))
            .unwrap_or(100.0);
        out.delay = Some(FaultDelay {
            percentage: Some(fraction(pct)),
            fault_delay_secifier: d
                .fixed_delay
                .or(d.exponential_delay)
                .map(|t| fault_delay::FaultDelaySecifier::FixedDelay(duration(t.as_std()))),
        });
    }
    if let Some(a) = &f.abort {
        let error_type = if let Some(s) = a.http_status {
            Some(fault_abort::ErrorType::HttpStatus(
                u32::try_from(s).unwrap_or(503),
            ))
        } else {
            a.grpc_status
                .as_deref()
                .map(|g| fault_abort::ErrorType::GrpcStatus(grpc_code(g)))
        };
        out.abort = Some(FaultAbort {
            percentage: Some(fraction(a.percentage.map_or(100.0, |p| p.value))),
            error_type,
            ..Default::default()
        });
    }
    out
}

fn grpc_code(name: &str) -> u32 {
    const CODES: [&str; 17] = [
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
    CODES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map_or_else(|| name.parse().unwrap_or(2), |i| i as u32)
}

fn header_ops(ops: Option<&HeaderOperations>) -> (Vec<HeaderValueOption>, Vec<String>) {
    let Some(ops) = ops else {
        return (Vec::new(), Vec::new());
    };
    let hv = |k: &String, v: &String, action: HeaderAppendAction| HeaderValueOption {
        header: Some(HeaderValue {
            key: k.clone(),
            value: v.clone(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    };
    let mut add: Vec<HeaderValueOption> = ops
        .set
        .iter()
        .map(|(k, v)| hv(k, v, HeaderAppendAction::OverwriteIfExistsOrAdd))
        .collect();
    add.extend(
        ops.add
            .iter()
            .map(|(k, v)| hv(k, v, HeaderAppendAction::AppendIfExistsOrAdd)),
    );
    (add, ops.remove.clone())
}

fn apply_headers(route: &mut Route, h: Option<&Headers>) {
    let Some(h) = h else { return };
    let (add, remove) = header_ops(h.request.as_ref());
    route.request_headers_to_add = add;
    route.request_headers_to_remove = remove;
    let (add, remove) = header_ops(h.response.as_ref());
    route.response_headers_to_add = add;
    route.response_headers_to_remove = remove;
}

fn extend_headers(route: &mut Route, h: &Headers) {
    let (add, remove) = header_ops(h.request.as_ref());
    route.request_headers_to_add.extend(add);
    route.request_headers_to_remove.extend(remove);
    let (add, remove) = header_ops(h.response.as_ref());
    route.response_headers_to_add.extend(add);
    route.response_headers_to_remove.extend(remove);
}

/// Standard base64 (what `directResponse.body.bytes` holds); `None` when malformed.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let trimmed: &[u8] = match bytes.iter().position(|&c| c == b'=') {
        Some(i) => &bytes[..i],
        None => &bytes,
    };
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..=n]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_fractions() {
        assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64_decode("a$"), None);
        assert_eq!(fraction(0.5).numerator, 5_000);
        assert_eq!(fraction(100.0).numerator, 1_000_000);
        assert_eq!(grpc_code("unavailable"), 14);
    }

    #[test]
    fn retry_on_status_codes_become_retriable_codes() {
        let r = HttpRetry {
            attempts: Some(3),
            retry_on: Some("gateway-error,503,504".into()),
            ..Default::default()
        };
        let p = retry_policy(Some(&r)).expect("policy");
        assert_eq!(p.retry_on, "gateway-error,retriable-status-codes");
        assert_eq!(p.retriable_status_codes, [503, 504]);
        assert_eq!(p.num_retries, Some(UInt32Value { value: 3 }));
        let off = HttpRetry {
            attempts: Some(0),
            ..Default::default()
        };
        assert!(retry_policy(Some(&off)).is_none());
    }
}
