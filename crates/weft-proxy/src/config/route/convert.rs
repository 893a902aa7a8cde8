//! Converting Envoy's route protos into [`super::RouteTable`] and friends.

use super::headers::header_name;
use super::retry::retry_policy;
use super::*;
use crate::config::matcher::{HeaderMatcher, QueryParamMatcher, full_regex, search_regex};
use crate::config::util::{data_source, duration};
use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::config::route::v3::{
    self as pb, redirect_action, route, route_action, route_match, weighted_cluster::cluster_weight,
};
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;
use http::{HeaderValue, StatusCode};
use std::sync::Arc;

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
            validate_clusters: rc.validate_clusters.as_ref().is_none_or(|b| b.value),
            filters: FilterOverrides::convert(&rc.typed_per_filter_config)?,
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
            index: super::index::RouteIndex::build(&routes),
            routes,
            retry: vh
                .retry_policy
                .as_ref()
                .map(retry_policy)
                .transpose()
                .at("retry_policy")?,
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
            filters: FilterOverrides::convert(&vh.typed_per_filter_config)?,
            attempt_count_upstream: vh.include_request_attempt_count,
            attempt_count_downstream: vh.include_attempt_count_in_response,
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
            filters: FilterOverrides::convert(&r.typed_per_filter_config)?,
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
pub(super) fn re2_substitution(s: &str) -> String {
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
        let stream_duration = match &a.max_stream_duration {
            None => None,
            Some(m) => Some(Box::new(StreamDuration {
                max: duration(m.max_stream_duration.as_ref())
                    .at("max_stream_duration.max_stream_duration")?,
                grpc_header_max: duration(m.grpc_timeout_header_max.as_ref())
                    .at("max_stream_duration.grpc_timeout_header_max")?,
                grpc_header_offset: duration(m.grpc_timeout_header_offset.as_ref())
                    .at("max_stream_duration.grpc_timeout_header_offset")?,
            })),
        };
        let mirrors = a
            .request_mirror_policies
            .iter()
            .enumerate()
            .map(|(i, m)| mirror_policy(m).at(format!("request_mirror_policies[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ForwardAction {
            mirrors,
            high_priority: a.priority
                == envoy_types::pb::envoy::config::core::v3::RoutingPriority::High as i32,
            idle_timeout: duration(a.idle_timeout.as_ref()).at("idle_timeout")?,
            max_grpc_timeout: duration(a.max_grpc_timeout.as_ref()).at("max_grpc_timeout")?,
            grpc_timeout_offset: duration(a.grpc_timeout_offset.as_ref())
                .at("grpc_timeout_offset")?,
            stream_duration,
            clusters,
            prefix_rewrite: (!a.prefix_rewrite.is_empty()).then(|| a.prefix_rewrite.clone()),
            regex_rewrite: a
                .regex_rewrite
                .as_ref()
                .map(regex_rewrite)
                .transpose()
                .at("regex_rewrite")?,
            host_rewrite,
            timeout_ms_header: timeout.map(|t| http::HeaderValue::from(t.as_millis() as u64)),
            timeout,
            hash_policy,
            retry: a
                .retry_policy
                .as_ref()
                .map(retry_policy)
                .transpose()
                .at("retry_policy")?
                .map(Box::new),
            upgrades: a
                .upgrade_configs
                .iter()
                .map(|u| {
                    (
                        u.upgrade_type.to_ascii_lowercase(),
                        u.enabled.as_ref().is_none_or(|b| b.value),
                    )
                })
                .collect(),
        })
    }
}

fn mirror_policy(m: &route_action::RequestMirrorPolicy) -> Result<MirrorPolicy, ConfigError> {
    if !m.cluster_header.is_empty() {
        return Err(ConfigError::new("cluster_header is not supported").at("cluster_header"));
    }
    if !m.request_headers_mutations.is_empty() {
        return Err(
            ConfigError::new("request_headers_mutations are not supported")
                .at("request_headers_mutations"),
        );
    }
    Ok(MirrorPolicy {
        cluster: cluster_name(&m.cluster).at("cluster")?,
        fraction: match m.runtime_fraction.as_ref() {
            None => crate::config::util::Fraction::ALL,
            Some(r) => crate::config::util::Fraction::from_pb(r.default_value.as_ref())
                .at("runtime_fraction.default_value")?,
        },
        shadow_suffix: !m.disable_shadow_host_suffix_append,
        host: (!m.host_rewrite_literal.is_empty())
            .then(|| HeaderValue::from_str(&m.host_rewrite_literal))
            .transpose()
            .map_err(|_| ConfigError::new("invalid host").at("host_rewrite_literal"))?,
    })
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
