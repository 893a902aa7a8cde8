//! The HTTP connection manager: serves HTTP/1.1 and h2c downstream, routes each request and
//! proxies it upstream, or answers locally (direct response, redirect, errors).
//!
//! `HttpManager::handle` reads top to bottom in the order Envoy processes a request:
//! normalise the authority, edit forwarding headers, route, then act on the route.

pub mod body;
pub mod headers;
mod respond;

use crate::access_log::LogRecord;
use crate::config::cluster::UpstreamProtocol;
use crate::config::listener::{HttpConnectionManagerConfig, ServerHeader};
use crate::config::route::{
    ClusterSelect, ForwardAction, HashPolicy, HostRewrite, PathMatch, PathRedirect, RedirectAction,
    Route, RouteAction, RouteTable, VirtualHost, WeightedTarget, strip_port,
};
use crate::flags::ResponseFlags;
use crate::proxy::Drain;
use crate::stats::ListenerStats;
use crate::upstream::lb::hash64;
use crate::upstream::pool::{ConnectOptions, Returner};
use crate::upstream::{ClusterManager, Endpoint, PickContext};
use arc_swap::ArcSwap;
use body::{OnEnd, RequestBody, ResponseBody};
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use respond::LocalReply;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
static X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName =
    HeaderName::from_static("x-envoy-upstream-service-time");

/// Facts about the downstream connection a request arrived on.
#[derive(Debug, Clone)]
pub struct Downstream {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// Where the client meant to connect (differs from `local` under traffic capture).
    pub original_dst: SocketAddr,
    pub server_name: Option<String>,
    /// `http` or `https`.
    pub scheme: &'static str,
}

/// One HTTP connection manager (one per filter chain that has one).
#[derive(Debug)]
pub struct HttpManager {
    pub config: Arc<HttpConnectionManagerConfig>,
    /// Swapped whole when routes change (RDS will write here).
    pub routes: ArcSwap<RouteTable>,
    clusters: Arc<ClusterManager>,
    stats: ListenerStats,
    server: auto::Builder<TokioExecutor>,
}

impl HttpManager {
    /// A manager for `config`, proxying to `clusters`.
    pub fn new(
        config: Arc<HttpConnectionManagerConfig>,
        clusters: Arc<ClusterManager>,
        stats: ListenerStats,
    ) -> HttpManager {
        let mut server = auto::Builder::new(TokioExecutor::new());
        server
            .http1()
            .timer(TokioTimer::new())
            .keep_alive(true)
            // hyper answers 431 past this; Envoy's max_request_headers_kb.
            .max_buf_size((config.max_request_headers_kb as usize * 1024).max(8192));
        server
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(config.max_request_headers_kb * 1024);
        let server = match config.codec {
            crate::config::listener::Codec::Auto => server,
            crate::config::listener::Codec::Http1 => server.http1_only(),
            crate::config::listener::Codec::Http2 => server.http2_only(),
        };
        HttpManager {
            routes: ArcSwap::new(config.routes.clone()),
            config,
            clusters,
            stats,
            server,
        }
    }

    /// Serves one downstream connection until it closes or a drain finishes it gracefully.
    pub async fn serve(
        self: Arc<Self>,
        stream: tokio::net::TcpStream,
        ds: Downstream,
        mut drain: Drain,
    ) {
        let ds = Arc::new(ds);
        let this = self.clone();
        let svc = hyper::service::service_fn(move |req| {
            let this = this.clone();
            let ds = ds.clone();
            async move { Ok::<_, Infallible>(this.handle(req, &ds).await) }
        });
        let conn = self
            .server
            .serve_connection_with_upgrades(TokioIo::new(stream), svc);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = drain.signaled() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }

    /// Handles one request; never fails (errors become local replies).
    pub async fn handle(
        &self,
        mut req: Request<Incoming>,
        ds: &Downstream,
    ) -> Response<ResponseBody> {
        let started = Instant::now();
        self.stats.rq_total.inc();
        let cfg = &*self.config;
        let authority = self.normalize_authority(&mut req);
        self.forwarding_headers(&mut req, ds);
        let mut log = (!cfg.access_logs.is_empty()).then(|| self.start_log(&req, &authority, ds));
        let request_id = req.headers().get(&X_REQUEST_ID).cloned();
        let grpc = respond::is_grpc(req.headers());

        let table = self.routes.load_full();
        let view = crate::config::route::RequestView {
            method: req.method(),
            authority: &authority,
            path_and_query: req.uri().path_and_query().map_or("/", |p| p.as_str()),
            scheme: ds.scheme,
            headers: req.headers(),
        };
        let Some((vh, route)) = table.route(&view) else {
            let reply = LocalReply::new(
                StatusCode::NOT_FOUND,
                ResponseFlags::NO_ROUTE_FOUND,
                "route_not_found",
                "",
            );
            return self.local(reply, grpc, None, request_id, log, started);
        };
        if let Some(log) = log.as_mut() {
            log.route_name = (!route.name.is_empty()).then(|| Arc::from(route.name.as_str()));
        }
        let mutations = Mutations {
            target: None,
            route,
            vh,
            table: &table,
        };
        match &route.action {
            RouteAction::Direct(d) => {
                let reply =
                    LocalReply::new(d.status, ResponseFlags::default(), "direct_response", "")
                        .with_body(d.body.clone());
                self.local(reply, false, Some(&mutations), request_id, log, started)
            }
            RouteAction::Redirect(r) => {
                let location =
                    redirect_location(r, route, ds.scheme, &authority, view.path_and_query);
                let reply = LocalReply::new(r.status, ResponseFlags::default(), "redirect", "")
                    .with_location(location);
                self.local(reply, false, Some(&mutations), request_id, log, started)
            }
            RouteAction::Forward(f) => {
                self.forward(
                    req, authority, f, mutations, ds, request_id, grpc, log, started,
                )
                .await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn forward(
        &self,
        mut req: Request<Incoming>,
        authority: String,
        f: &ForwardAction,
        mut mutations: Mutations<'_>,
        ds: &Downstream,
        request_id: Option<HeaderValue>,
        grpc: bool,
        mut log: Option<LogRecord>,
        started: Instant,
    ) -> Response<ResponseBody> {
        let (cluster_name, target) = match &f.clusters {
            ClusterSelect::Single(name) => (name.clone(), None),
            ClusterSelect::Weighted { targets, total } => {
                let t = pick_weighted(targets, *total);
                (t.name.clone(), Some(t))
            }
            ClusterSelect::Header(h) => match req.headers().get(h).and_then(|v| v.to_str().ok()) {
                Some(name) => (Arc::from(name), None),
                None => (Arc::from(""), None),
            },
        };
        mutations.target = target;
        if let Some(log) = log.as_mut() {
            log.upstream_cluster = Some(cluster_name.clone());
        }
        let Some(cluster) = self.clusters.get(&cluster_name) else {
            let reply = LocalReply::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ResponseFlags::NO_CLUSTER_FOUND,
                "cluster_not_found",
                "",
            );
            return self.local(reply, grpc, None, request_id, log, started);
        };

        // Request edits: most specific level first, so the route table level wins (Envoy's
        // default `most_specific_header_mutations_wins: false`).
        mutations.apply_request(req.headers_mut());
        rewrite_path(&mut req, f, mutations.route);

        let pick = PickContext {
            hash: request_hash(&f.hash_policy, &req, ds.remote),
            original_dst: Some(ds.original_dst),
            original_dst_header: cluster
                .config
                .original_dst
                .http_header
                .as_ref()
                .and_then(|h| req.headers().get(h))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        };
        let Some(endpoint) = cluster.pick(&pick) else {
            cluster.stats.no_healthy_upstream.inc();
            let reply = LocalReply::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ResponseFlags::NO_HEALTHY_UPSTREAM,
                "no_healthy_upstream",
                "no healthy upstream",
            );
            return self.local(reply, grpc, None, request_id, log, started);
        };
        if let Some(log) = log.as_mut() {
            log.upstream_host = Some(endpoint.addr);
        }

        let authority = host_rewrite(&mutations, f, &req, &endpoint).unwrap_or(authority);
        let http2 = match cluster.config.protocol {
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::UseDownstream => req.version() == Version::HTTP_2,
        };
        let counter = log.as_ref().map(|_| Arc::new(AtomicU64::new(0)));
        let upstream_req = match upstream_request(req, &authority, http2, counter.clone()) {
            Ok(r) => r,
            Err(reply) => return self.local(reply, grpc, None, request_id, log, started),
        };

        let stats = &cluster.stats;
        stats.rq_total.inc();
        stats.rq_active.inc();
        endpoint.begin_request();
        let sent_at = Instant::now();
        let opts = ConnectOptions {
            http2,
            connect_timeout: cluster.config.connect_timeout,
        };
        let send = endpoint.send(upstream_req, opts, stats);
        let result = match f.timeout {
            Some(t) => tokio::time::timeout(t, send).await.ok(),
            None => Some(send.await),
        };
        let reply = match result {
            Some(Ok((resp, returner))) => {
                let upstream = Upstream {
                    endpoint,
                    returner,
                    sent_at,
                    counter,
                };
                return self.proxied(
                    resp,
                    upstream,
                    &cluster.stats,
                    &mutations,
                    request_id,
                    log,
                    started,
                );
            }
            None => {
                stats.rq_timeout.inc();
                LocalReply::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    ResponseFlags::UPSTREAM_REQUEST_TIMEOUT,
                    "upstream_response_timeout",
                    "upstream request timeout",
                )
            }
            Some(Err(e)) => {
                let (flag, details) = if e.is_connect_failure() {
                    (
                        ResponseFlags::UPSTREAM_CONNECTION_FAILURE,
                        "upstream_reset_before_response_started{connection_failure}",
                    )
                } else {
                    (
                        ResponseFlags::UPSTREAM_CONNECTION_TERMINATION,
                        "upstream_reset_before_response_started{connection_termination}",
                    )
                };
                let body = format!(
                    "upstream connect error or disconnect/reset before headers. reset reason: {}",
                    e.reset_reason()
                );
                LocalReply::new(StatusCode::SERVICE_UNAVAILABLE, flag, details, &body)
            }
        };
        endpoint.end_request();
        stats.rq_active.dec();
        stats.record_status(reply.status.as_u16());
        if let (Some(c), Some(log)) = (&counter, log.as_mut()) {
            log.bytes_received = c.load(Ordering::Relaxed);
        }
        self.local(reply, grpc, None, request_id, log, started)
    }

    /// Turns an upstream response into the downstream one, streaming its body.
    #[allow(clippy::too_many_arguments)]
    fn proxied(
        &self,
        resp: Response<Incoming>,
        up: Upstream,
        stats: &crate::stats::ClusterStats,
        mutations: &Mutations<'_>,
        request_id: Option<HeaderValue>,
        log: Option<LogRecord>,
        started: Instant,
    ) -> Response<ResponseBody> {
        let Upstream {
            endpoint,
            returner,
            sent_at,
            counter,
        } = up;
        let upstream_ms = sent_at.elapsed().as_millis() as u64;
        stats
            .rq_time
            .observe(sent_at.elapsed().as_secs_f64() * 1000.0);
        stats.record_status(resp.status().as_u16());

        let (mut parts, incoming) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(
            &X_ENVOY_UPSTREAM_SERVICE_TIME,
            HeaderValue::from(upstream_ms),
        );
        mutations.apply_response(&mut parts.headers);
        self.response_headers(&mut parts.headers, request_id.as_ref());
        // hyper picks the downstream framing; the upstream's version is not ours to keep.
        parts.version = Version::default();
        let end = UpstreamEnd {
            returner,
            endpoint,
            rq_active: stats.rq_active.clone(),
            log: log.map(|mut log| {
                log.response_code = parts.status.as_u16();
                log.details = "via_upstream";
                self.config
                    .access_logs
                    .capture_response(&mut log, &parts.headers);
                LogTail {
                    record: log,
                    manager: self.config.clone(),
                    started,
                    request_bytes: counter,
                }
            }),
        };
        Response::from_parts(
            parts,
            ResponseBody::upstream(incoming).with_on_end(Box::new(end)),
        )
    }

    /// Applies `strip_any_host_port` / `strip_matching_host_port` and returns the authority.
    fn normalize_authority(&self, req: &mut Request<Incoming>) -> String {
        let raw = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let cfg = &self.config;
        if !(cfg.strip_any_host_port || cfg.strip_matching_host_port) {
            return raw;
        }
        // Matching-port stripping needs the listener port, which Downstream carries; the
        // common Istio setting is strip_any, so both strip here for now.
        let stripped = strip_port(&raw).to_owned();
        if stripped != raw {
            if let Ok(v) = HeaderValue::from_str(&stripped) {
                req.headers_mut().insert(header::HOST, v);
            }
        }
        stripped
    }

    /// `x-forwarded-for`, `x-forwarded-proto`, `x-request-id`, and hop-by-hop removal.
    fn forwarding_headers(&self, req: &mut Request<Incoming>, ds: &Downstream) {
        let cfg = &*self.config;
        let headers = req.headers_mut();
        headers::strip_hop_by_hop(headers);
        if cfg.use_remote_address && !cfg.skip_xff_append {
            let ip = ds.remote.ip().to_string();
            let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
                Some(prev) if !prev.is_empty() => format!("{prev},{ip}"),
                _ => ip,
            };
            if let Ok(v) = HeaderValue::from_str(&xff) {
                headers.insert(&X_FORWARDED_FOR, v);
            }
        }
        // At the edge the scheme is ours to state; inside the mesh keep what the client said.
        if cfg.use_remote_address || !headers.contains_key(&X_FORWARDED_PROTO) {
            headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(ds.scheme));
        }
        if cfg.generate_request_id && !headers.contains_key(&X_REQUEST_ID) {
            headers.insert(&X_REQUEST_ID, headers::uuid_v4());
        }
        if let Some(via) = &cfg.via {
            headers.append(header::VIA, via.clone());
        }
    }

    fn response_headers(&self, headers: &mut http::HeaderMap, request_id: Option<&HeaderValue>) {
        let cfg = &*self.config;
        match cfg.server_header {
            ServerHeader::Overwrite => {
                headers.insert(header::SERVER, cfg.server_name.clone());
            }
            ServerHeader::AppendIfAbsent => {
                if !headers.contains_key(header::SERVER) {
                    headers.insert(header::SERVER, cfg.server_name.clone());
                }
            }
            ServerHeader::PassThrough => {}
        }
        if cfg.always_set_request_id_in_response {
            if let Some(id) = request_id {
                headers.insert(&X_REQUEST_ID, id.clone());
            }
        }
        if let Some(via) = &cfg.via {
            headers.append(header::VIA, via.clone());
        }
    }

    fn start_log(&self, req: &Request<Incoming>, authority: &str, ds: &Downstream) -> LogRecord {
        let mut log = LogRecord {
            start: Some(SystemTime::now()),
            method: Some(req.method().clone()),
            path: req.uri().path_and_query().map(|p| p.as_str().to_owned()),
            authority: Some(authority.to_owned()),
            scheme: Some(ds.scheme),
            protocol: Some(match req.version() {
                Version::HTTP_2 => "HTTP/2",
                Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            }),
            downstream_local: Some(ds.local),
            downstream_remote: Some(ds.remote),
            server_name: ds.server_name.clone(),
            ..Default::default()
        };
        self.config
            .access_logs
            .capture_request(&mut log, req.headers());
        log
    }

    fn local(
        &self,
        reply: LocalReply,
        grpc: bool,
        mutations: Option<&Mutations<'_>>,
        request_id: Option<HeaderValue>,
        log: Option<LogRecord>,
        started: Instant,
    ) -> Response<ResponseBody> {
        let mut resp = reply.clone().into_response(grpc);
        if let Some(m) = mutations {
            m.apply_response(resp.headers_mut());
        }
        self.response_headers(resp.headers_mut(), request_id.as_ref());
        let Some(mut log) = log else { return resp };
        log.response_code = resp.status().as_u16();
        log.flags.insert(reply.flags);
        log.details = reply.details;
        self.config
            .access_logs
            .capture_response(&mut log, resp.headers());
        let tail = LogTail {
            record: log,
            manager: self.config.clone(),
            started,
            request_bytes: None,
        };
        let (parts, body) = resp.into_parts();
        Response::from_parts(parts, body.with_on_end(Box::new(tail)))
    }
}

/// An upstream exchange that got response headers.
struct Upstream {
    endpoint: Arc<Endpoint>,
    returner: Option<Returner>,
    sent_at: Instant,
    counter: Option<Arc<AtomicU64>>,
}

/// The header-mutation levels that apply to one request, most specific first.
struct Mutations<'a> {
    target: Option<&'a WeightedTarget>,
    route: &'a Route,
    vh: &'a VirtualHost,
    table: &'a RouteTable,
}

impl Mutations<'_> {
    fn apply_request(&self, h: &mut http::HeaderMap) {
        if let Some(t) = self.target {
            t.request_headers.apply(h);
        }
        self.route.request_headers.apply(h);
        self.vh.request_headers.apply(h);
        self.table.request_headers.apply(h);
    }

    fn apply_response(&self, h: &mut http::HeaderMap) {
        if let Some(t) = self.target {
            t.response_headers.apply(h);
        }
        self.route.response_headers.apply(h);
        self.vh.response_headers.apply(h);
        self.table.response_headers.apply(h);
    }
}

fn pick_weighted(targets: &[WeightedTarget], total: u64) -> &WeightedTarget {
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

/// Applies `prefix_rewrite` / `regex_rewrite`, keeping the original in
/// `x-envoy-original-path` as Envoy does.
fn rewrite_path(req: &mut Request<Incoming>, f: &ForwardAction, route: &Route) {
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
fn replace_prefix(path: &str, matched: &PathMatch, new_prefix: &str) -> String {
    let len = match matched {
        PathMatch::Prefix(p) | PathMatch::SeparatedPrefix(p) => p.len().min(path.len()),
        PathMatch::Exact(_) | PathMatch::Regex(_) => path.len(),
    };
    format!("{new_prefix}{}", &path[len..])
}

fn host_rewrite(
    m: &Mutations<'_>,
    f: &ForwardAction,
    req: &Request<Incoming>,
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
fn request_hash(
    policies: &[HashPolicy],
    req: &Request<Incoming>,
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

fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
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

/// Builds the upstream request: origin-form with `Host` for HTTP/1.1, absolute form with
/// `:authority` (and no `Host`) for HTTP/2.
fn upstream_request(
    req: Request<Incoming>,
    authority: &str,
    http2: bool,
    counter: Option<Arc<AtomicU64>>,
) -> Result<Request<RequestBody>, LocalReply> {
    let (mut parts, body) = req.into_parts();
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
        parts.headers.insert(
            header::HOST,
            HeaderValue::from_str(authority).map_err(|_| bad())?,
        );
    }
    Ok(Request::from_parts(parts, RequestBody::new(body, counter)))
}

/// Envoy's redirect URL construction.
fn redirect_location(
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
    if r.strip_query {
        if let Some(i) = location.find('?') {
            location.truncate(i);
        }
    }
    location
}

/// Finishes an access-log record when the response body ends.
struct LogTail {
    record: LogRecord,
    manager: Arc<HttpConnectionManagerConfig>,
    started: Instant,
    request_bytes: Option<Arc<AtomicU64>>,
}

impl LogTail {
    fn write(mut self, bytes: u64, complete: bool, upstream: bool) {
        self.record.bytes_sent = bytes;
        self.record.duration_ms = self.started.elapsed().as_millis() as u64;
        if let Some(c) = &self.request_bytes {
            self.record.bytes_received = c.load(Ordering::Relaxed);
        }
        if !complete && upstream {
            self.record
                .flags
                .insert(ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION);
        }
        self.manager.access_logs.log(&self.record);
    }
}

impl OnEnd for LogTail {
    fn on_end(self: Box<Self>, bytes: u64, complete: bool) {
        self.write(bytes, complete, false);
    }
}

/// Runs when a proxied response body ends: returns the connection, updates counters, logs.
struct UpstreamEnd {
    returner: Option<Returner>,
    endpoint: Arc<Endpoint>,
    rq_active: prometheus_client::metrics::gauge::Gauge,
    log: Option<LogTail>,
}

impl OnEnd for UpstreamEnd {
    fn on_end(self: Box<Self>, bytes: u64, complete: bool) {
        let this = *self;
        if let (Some(r), true) = (this.returner, complete) {
            r.give_back();
        }
        this.endpoint.end_request();
        this.rq_active.dec();
        if let Some(log) = this.log {
            log.write(bytes, complete, true);
        }
    }
}
