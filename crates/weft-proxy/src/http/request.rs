//! Facts about and transformations of the downstream request: upgrades, rewrites,
//! redirects, hashing, and the request sent upstream.

use super::h1server::DownstreamBody;
use super::{Mutations, X_ENVOY_ORIGINAL_PATH};
use crate::config::route::{
    ForwardAction, HashPolicy, HostRewrite, PathMatch, PathRedirect, RedirectAction, Route,
    WeightedTarget, strip_port,
};
use crate::flags::ResponseFlags;
use crate::http::headers;
use crate::http::respond::LocalReply;
use crate::upstream::Endpoint;
use crate::upstream::lb::hash64;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};
use std::net::SocketAddr;

/// The `Upgrade` header when an HTTP/1.1 request asks to switch protocols.
pub(super) fn requested_upgrade(req: &Request<DownstreamBody>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    // Most requests carry no `Upgrade`: one lookup decides, before `Connection` is parsed.
    let upgrade = req.headers().get(header::UPGRADE)?;
    // As Envoy, an HTTP/2 upgrade is not taken up: the request goes on as HTTP/1.1.
    if upgrade.as_bytes().trim_ascii().eq_ignore_ascii_case(b"h2c") {
        return None;
    }
    let wants = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    wants.then(|| upgrade.clone())
}

pub(super) fn protocol_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

/// Envoy's default notion of an internal address: loopback, RFC 1918, unique-local IPv6.
pub(super) fn is_external(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_private() || v4.is_link_local()),
        std::net::IpAddr::V6(v6) => {
            let unique_local = (v6.segments()[0] & 0xfe00) == 0xfc00;
            !(v6.is_loopback() || unique_local)
                && v6
                    .to_ipv4_mapped()
                    .is_none_or(|v4| !(v4.is_loopback() || v4.is_private()))
        }
    }
}

pub(super) fn pick_weighted(targets: &[WeightedTarget], total: u64) -> &WeightedTarget {
    let mut r = fastrand::u64(..total);
    for t in targets {
        let w = u64::from(t.weight);
        if r < w {
            return t;
        }
        r -= w;
    }
    &targets[targets.len() - 1]
}

/// Rewrites the request path in place when normalization changes it (before routing, so
/// routes, logs and the upstream all see the normalized path, as in Envoy).
pub(super) fn normalize_request_path(req: &mut Request<DownstreamBody>, dots: bool, merge: bool) {
    let Some(pq) = req.uri().path_and_query() else {
        return;
    };
    let Some(path) = headers::normalize_path(pq.path(), dots, merge) else {
        return;
    };
    let new_pq = match pq.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(parsed) = new_pq.parse() {
        parts.path_and_query = Some(parsed);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

/// Applies `prefix_rewrite` / `regex_rewrite`, keeping the original in
/// `x-envoy-original-path` as Envoy does.
pub(super) fn rewrite_path(req: &mut Request<DownstreamBody>, f: &ForwardAction, route: &Route) {
    if f.prefix_rewrite.is_none() && f.regex_rewrite.is_none() {
        return;
    }
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let (path, query) = match pq.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (pq.as_str(), None),
    };
    let new_path = if let Some(prefix) = &f.prefix_rewrite {
        replace_prefix(path, &route.matcher.path, prefix)
    } else if let Some(rr) = &f.regex_rewrite {
        rr.apply(path)
    } else {
        return;
    };
    let new_pq = match query {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    };
    let mut parts = req.uri().clone().into_parts();
    let Ok(pq_parsed) = new_pq.parse() else {
        return;
    };
    parts.path_and_query = Some(pq_parsed);
    let Ok(uri) = Uri::from_parts(parts) else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(&pq) {
        req.headers_mut().insert(&X_ENVOY_ORIGINAL_PATH, v);
    }
    *req.uri_mut() = uri;
}

/// Replaces the part of `path` the route matched with `new_prefix`.
pub(super) fn replace_prefix(path: &str, matched: &PathMatch, new_prefix: &str) -> String {
    let len = match matched {
        PathMatch::Prefix(p) | PathMatch::SeparatedPrefix(p) => p.len().min(path.len()),
        PathMatch::Exact(_) | PathMatch::Regex(_) => path.len(),
    };
    format!("{new_prefix}{}", &path[len..])
}

pub(super) fn host_rewrite(
    m: &Mutations<'_>,
    f: &ForwardAction,
    req: &Request<DownstreamBody>,
    ep: &Endpoint,
) -> Option<String> {
    if let Some(h) = m.target.and_then(|t| t.host_rewrite.as_ref()) {
        return h.to_str().ok().map(str::to_owned);
    }
    match &f.host_rewrite {
        HostRewrite::None => None,
        HostRewrite::Literal(h) => h.to_str().ok().map(str::to_owned),
        HostRewrite::Auto => Some(
            ep.hostname
                .as_deref()
                .map_or_else(|| ep.addr.to_string(), str::to_owned),
        ),
        HostRewrite::Header(name) => req
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// Envoy combines several hash policies by rotating and xoring; `terminal` stops early.
pub(super) fn request_hash(
    policies: &[HashPolicy],
    req: &Request<DownstreamBody>,
    remote: SocketAddr,
) -> Option<u64> {
    let mut hash: Option<u64> = None;
    for p in policies {
        let (h, terminal) = match p {
            HashPolicy::Header { name, terminal } => (
                req.headers().get(name).map(|v| hash64(v.as_bytes())),
                *terminal,
            ),
            HashPolicy::Cookie { name, terminal } => (
                cookie(req.headers(), name).map(|v| hash64(v.as_bytes())),
                *terminal,
            ),
            HashPolicy::SourceIp { terminal } => {
                (Some(hash64(remote.ip().to_string().as_bytes())), *terminal)
            }
            HashPolicy::QueryParameter { name, terminal } => (
                req.uri()
                    .query()
                    .and_then(|q| crate::config::matcher::query_param(q, name))
                    .map(|v| hash64(v.as_bytes())),
                *terminal,
            ),
        };
        if let Some(h) = h {
            hash = Some(hash.map_or(h, |prev| prev.rotate_left(1) ^ h));
            if terminal {
                break;
            }
        }
    }
    hash
}

pub(super) fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';').find_map(|pair| {
                let (k, val) = pair.trim().split_once('=')?;
                (k == name).then(|| val.to_owned())
            })
        })
}

/// Turns the downstream request head into the upstream one, in place (it is not moved):
/// origin-form with `Host` for HTTP/1.1, absolute form with `:authority` (and no `Host`)
/// for HTTP/2. `body_ended`: the request has no body (left to come); `upgrade`: the
/// request asks to switch protocols.
pub(super) fn upstream_head(
    parts: &mut http::request::Parts,
    body_ended: bool,
    authority: &str,
    http2: bool,
    upgrade: bool,
) -> Result<(), LocalReply> {
    let pq = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let bad = || {
        LocalReply::new(
            StatusCode::BAD_REQUEST,
            ResponseFlags::DOWNSTREAM_PROTOCOL_ERROR,
            "invalid_authority",
            "",
        )
    };
    if http2 {
        parts.uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(pq)
            .build()
            .map_err(|_| bad())?;
        parts.version = Version::HTTP_2;
        parts.headers.remove(header::HOST);
    } else {
        parts.uri = Uri::from(pq);
        parts.version = Version::HTTP_11;
        // Usually the client's own single `Host` already says it: keep that value rather
        // than validating and allocating an equal one.
        let mut hosts = parts.headers.get_all(header::HOST).iter();
        let same = hosts
            .next()
            .is_some_and(|h| h.as_bytes() == authority.as_bytes())
            && hosts.next().is_none();
        if !same {
            parts.headers.insert(
                header::HOST,
                HeaderValue::from_str(authority).map_err(|_| bad())?,
            );
        }
        // Envoy states an empty body explicitly for methods that normally carry one, but not
        // on an upgrade, whose bytes after the head belong to the tunnel (Envoy's
        // `http_skip_adding_content_length_to_upgrade`).
        if !upgrade
            && matches!(parts.method, Method::POST | Method::PUT | Method::PATCH)
            && body_ended
            && !parts.headers.contains_key(header::CONTENT_LENGTH)
            && !parts.headers.contains_key(header::TRANSFER_ENCODING)
        {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
    }
    Ok(())
}

/// Envoy's redirect URL construction.
pub(super) fn redirect_location(
    r: &RedirectAction,
    route: &Route,
    scheme: &str,
    authority: &str,
    path_and_query: &str,
) -> String {
    let new_scheme = r.scheme.as_deref().unwrap_or(scheme);
    let mut host = r.host.clone().unwrap_or_else(|| authority.to_owned());
    if let Some(port) = r.port {
        host = format!("{}:{port}", strip_port(&host));
    } else if r.scheme.is_some() {
        // Moving between http and https drops the old scheme's default port.
        let bare = strip_port(&host);
        let port = host.get(bare.len() + 1..);
        if matches!(
            (new_scheme, port),
            ("https", Some("80")) | ("http", Some("443"))
        ) {
            host = bare.to_owned();
        }
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let (new_path, keep_query) = match &r.path {
        PathRedirect::Keep => (path.to_owned(), true),
        PathRedirect::Path(p) if p.contains('?') => (p.clone(), false),
        PathRedirect::Path(p) => (p.clone(), true),
        PathRedirect::Prefix(p) => (replace_prefix(path, &route.matcher.path, p), true),
        PathRedirect::Regex(rr) => (rr.apply(path), true),
    };
    let mut location = format!("{new_scheme}://{host}{new_path}");
    if let (Some(q), true, false) = (query, keep_query, r.strip_query) {
        location.push('?');
        location.push_str(q);
    }
    if r.strip_query
        && let Some(i) = location.find('?')
    {
        location.truncate(i);
    }
    location
}
