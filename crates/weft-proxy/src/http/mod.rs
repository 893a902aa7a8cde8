//! The HTTP connection manager: serves HTTP/1.1 and h2c downstream, routes each request and
//! proxies it upstream, or answers locally (direct response, redirect, errors).
//!
//! `HttpManager::handle` reads top to bottom in the order Envoy processes a request:
//! normalise the authority, edit forwarding headers, route, then act on the route.

pub mod body;
mod end;
mod fault;
mod gate;
mod h1server;
pub mod headers;
mod idle;
mod ratelimit;
mod request;
mod respond;
mod retry;
mod timeout;

use end::{InFlight, LogTail, UpstreamEnd};
use idle::ConnActivity;
use request::{
    host_rewrite, is_external, normalize_request_path, pick_weighted, protocol_name,
    redirect_location, request_hash, requested_upgrade, rewrite_path, upstream_head,
};
use retry::{Replay, pick_retry_host};
use timeout::{Fired, RequestTimer, Timeouts};

use crate::access_log::LogRecord;
use crate::config::cluster::UpstreamProtocol;
use crate::config::listener::{Codec, HttpConnectionManagerConfig, ServerHeader};
use crate::config::route::{
    ClusterSelect, FilterOverrides, ForwardAction, HeaderContext, HeaderMutation, MirrorPolicy,
    Route, RouteAction, RouteTable, VirtualHost, WeightedTarget, strip_port,
};
use crate::flags::ResponseFlags;
use crate::proxy::Drain;
use crate::stats::ListenerStats;
use crate::upstream::outlier::Outcome;
use crate::upstream::pool::{ConnectOptions, SendError, UpstreamBody, UpstreamError};
use crate::upstream::{ClusterManager, PickContext};
use arc_swap::ArcSwap;
use body::{BodyDone, RETRY_BUFFER_LIMIT, RequestBody, ResponseBody, SharedBody};
pub use h1server::DownstreamBody;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use respond::LocalReply;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
static X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName =
    HeaderName::from_static("x-envoy-upstream-service-time");
static X_ENVOY_INTERNAL: HeaderName = HeaderName::from_static("x-envoy-internal");
static X_ENVOY_EXTERNAL_ADDRESS: HeaderName = HeaderName::from_static("x-envoy-external-address");
static X_ENVOY_ORIGINAL_HOST: HeaderName = HeaderName::from_static("x-envoy-original-host");
static X_ENVOY_ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");
static X_ENVOY_EXPECTED_RQ_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");

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
    /// Swapped whole when routes change; shared by every manager naming the same RDS
    /// route configuration.
    pub routes: Arc<ArcSwap<RouteTable>>,
    clusters: Arc<ClusterManager>,
    stats: Arc<ListenerStats>,
    server: auto::Builder<TokioExecutor>,
    /// Fault-filter delays in effect now (`max_active_faults`).
    active_faults: std::sync::atomic::AtomicU32,
    /// Mirrored requests in flight.
    mirrors_in_flight: Arc<std::sync::atomic::AtomicU32>,
}

/// Mirrored copies in flight per connection manager; beyond, copies are dropped.
const MAX_MIRRORS_IN_FLIGHT: u32 = 256;

/// Envoy's shadow host: `-shadow` after the host name, before any port.
fn shadow_host(host: &str) -> String {
    let bare = strip_port(host);
    format!("{bare}-shadow{}", &host[bare.len()..])
}

impl HttpManager {
    /// A manager for `config`, proxying to `clusters`.
    pub fn new(
        config: Arc<HttpConnectionManagerConfig>,
        clusters: Arc<ClusterManager>,
        stats: ListenerStats,
    ) -> HttpManager {
        let routes = Arc::new(ArcSwap::new(config.routes.clone()));
        HttpManager::with_routes(config, routes, clusters, stats)
    }

    /// A manager reading its route table from `routes` (an RDS slot shared with others).
    pub fn with_routes(
        config: Arc<HttpConnectionManagerConfig>,
        routes: Arc<ArcSwap<RouteTable>>,
        clusters: Arc<ClusterManager>,
        stats: ListenerStats,
    ) -> HttpManager {
        let mut server = auto::Builder::new(TokioExecutor::new());
        server
            .http1()
            .timer(TokioTimer::new())
            // hyper's default (30 s) arms a timer for every request head; Envoy's
            // `request_headers_timeout` is off by default, and `idle_timeout` bounds idle
            // connections.
            .header_read_timeout(None)
            .keep_alive(true)
            // hyper answers 431 past this; Envoy's max_request_headers_kb.
            .max_buf_size((config.max_request_headers_kb as usize * 1024).max(8192));
        server
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(config.max_request_headers_kb * 1024);
        let server = match config.codec {
            Codec::Auto => server,
            Codec::Http1 => server.http1_only(),
            Codec::Http2 => server.http2_only(),
        };
        HttpManager {
            routes,
            config,
            clusters,
            stats: Arc::new(stats),
            server,
            active_faults: Default::default(),
            mirrors_in_flight: Default::default(),
        }
    }

    /// Serves one downstream connection until it closes or a drain finishes it gracefully:
    /// HTTP/1.1 inline ([`h1server`]), HTTP/2 with hyper.
    pub async fn serve(
        self: Arc<Self>,
        stream: tokio::net::TcpStream,
        ds: Downstream,
        drain: Drain,
    ) {
        match self.config.codec {
            Codec::Http2 => self.serve_hyper(stream, ds, drain).await,
            Codec::Http1 | Codec::Auto => h1server::serve(self, stream, ds, drain).await,
        }
    }

    /// Serves a connection with hyper's server (HTTP/2: `Codec::Http2` listeners, and h2c
    /// connections an `Auto` listener recognised by their preface).
    async fn serve_hyper<I>(self: Arc<Self>, io: I, ds: Downstream, mut drain: Drain)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        // One reference count per request for all three (hyper wants a 'static future).
        let shared = Arc::new(ConnShared {
            manager: self.clone(),
            ds,
            activity: ConnActivity::new(),
            epoch: tokio::time::Instant::now(),
        });
        let per_request = shared.clone();
        let svc = hyper::service::service_fn(move |req| {
            let c = per_request.clone();
            // Boxed: hyper's HTTP/2 server spawns a task per stream holding this ~7 KB
            // future (see `boxed_in_place`); h2c went from 56.1k to 50.2k instructions per
            // request.
            crate::runtime::boxed_in_place(move || async move {
                c.activity.begin();
                // HTTP/2 streams run concurrently: a timer each, registered only if used.
                let timer = std::pin::pin!(RequestTimer::new(c.epoch));
                let resp = c
                    .manager
                    .handle(req.map(DownstreamBody::Hyper), &c.ds, timer)
                    .await;
                c.manager.stats.record_status(resp.status().as_u16());
                c.activity.end();
                Ok::<_, Infallible>(resp)
            })
        });
        let conn = self
            .server
            .serve_connection_with_upgrades(TokioIo::new(io), svc);
        tokio::pin!(conn);
        // Drain and idle timeout: rare, so polled only when their own wake-up fires, not
        // on each of the connection's several wake-ups per request.
        let idle_timeout = self.config.idle_timeout;
        let rare = gate::WakeGate::new(async move {
            let idle = async {
                match idle_timeout {
                    Some(t) => shared.activity.idle_for(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = drain.signaled() => {}
                _ = idle => {}
            }
        });
        let ended = tokio::select! {
            biased;
            ended = conn.as_mut() => ended,
            // Drained or idle: HTTP/1.1 closes, HTTP/2 sends GOAWAY; a response still
            // streaming finishes.
            _ = rare => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if ended.as_ref().is_err_and(|e| is_protocol_error(&**e)) {
            self.stats.cx_protocol_error.inc();
        }
    }

    /// Handles one request; never fails (errors become local replies). `timer` is where the
    /// request's limits are timed: a connection serving one request at a time lends the same
    /// timer to each (see [`send_within`]); its deadline on entry does not matter.
    // Not `async fn` on purpose (see the comment in the body): measured, 150 Ir per request.
    #[allow(clippy::manual_async_fn)]
    fn handle(
        &self,
        mut req: Request<DownstreamBody>,
        ds: &Downstream,
        timer: Pin<&mut RequestTimer>,
    ) -> impl Future<Output = Response<ResponseBody>> {
        // A block, not an `async fn`: an async fn moves its arguments into its body's
        // locals on first poll (a copy of the request); a block uses its captures
        // where they are.
        async move {
            let started = Instant::now();
            self.stats.rq_total.inc();
            let cfg = &*self.config;
            let authority = self.normalize_authority(&mut req, ds.local.port());
            // Read before hop-by-hop headers go: an upgrade is requested through them.
            let upgrade = requested_upgrade(&req);
            if cfg.normalize_path || cfg.merge_slashes {
                normalize_request_path(&mut req, cfg.normalize_path, cfg.merge_slashes);
            }
            let request_id = self.forwarding_headers(&mut req, ds);
            // Boxed: the record (~450 bytes) is moved along with the request through
            // `forward` and the attempt, and most listeners have no access log.
            let mut log = (!cfg.access_logs.is_empty())
                .then(|| Box::new(self.start_log(&req, &authority, ds)));
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
                // The HTTP filters run before the router, with their own configs when no route.
                if let Some((reply, extra)) = self
                    .http_filters(&mut req, [None, None, None], None, &mut log)
                    .await
                {
                    let mut resp = self.local(reply, grpc, None, request_id, log, started);
                    if let Some(extra) = extra {
                        extra.apply(resp.headers_mut(), &HeaderContext::default());
                    }
                    return resp;
                }
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
                cx: HeaderContext {
                    downstream_remote: Some(ds.remote),
                    downstream_local: Some(ds.local),
                    upstream_host: None,
                    protocol: Some(protocol_name(req.version())),
                    request_headers: None,
                },
            };
            // Envoy's route entry settles the weighted cluster before filters run, so the fault
            // filter's `upstream_cluster` sees the chosen one.
            let chosen = match &route.action {
                RouteAction::Forward(f) => Some(match &f.clusters {
                    ClusterSelect::Single(name) => (name.clone(), None),
                    ClusterSelect::Weighted { targets, total } => {
                        let t = pick_weighted(targets, *total);
                        (t.name.clone(), Some(t))
                    }
                    ClusterSelect::Header(h) => {
                        match req.headers().get(h).and_then(|v| v.to_str().ok()) {
                            Some(name) => (Arc::from(name), None),
                            None => (Arc::from(""), None),
                        }
                    }
                }),
                _ => None,
            };
            let levels = [
                Some(&route.filters),
                Some(&vh.filters),
                Some(&table.filters),
            ];
            let cluster = chosen.as_ref().map(|(name, _)| &**name);
            if let Some((reply, extra)) =
                self.http_filters(&mut req, levels, cluster, &mut log).await
            {
                let mut resp = self.local(reply, grpc, Some(&mutations), request_id, log, started);
                if let Some(extra) = extra {
                    extra.apply(resp.headers_mut(), &mutations.cx);
                }
                return resp;
            }
            match &route.action {
                RouteAction::Direct(d) => {
                    let reply =
                        LocalReply::new(d.status, ResponseFlags::default(), "direct_response", "")
                            .with_body(d.body.clone());
                    self.local(reply, false, Some(&mutations), request_id, log, started)
                }
                RouteAction::Redirect(r) => {
                    let location =
                        redirect_location(r, route, ds.scheme, &authority, path_and_query(&req));
                    let reply = LocalReply::new(r.status, ResponseFlags::default(), "redirect", "")
                        .with_location(location);
                    self.local(reply, false, Some(&mutations), request_id, log, started)
                }
                RouteAction::Forward(f) => {
                    // Only a fault filter can have waited (its delay) since `started`: without
                    // one, the request goes on in the wake-up it started in, and that reading
                    // serves for the time it went on too (one clock read per request saved).
                    let filtered_at = match cfg.fault {
                        Some(_) => Instant::now(),
                        None => started,
                    };
                    let rq = RequestCx {
                        request_id,
                        grpc,
                        log,
                        started,
                        filtered_at,
                        upgrade,
                    };
                    let chosen = chosen.unwrap_or_else(|| (Arc::from(""), None));
                    self.forward(req, authority, f, chosen, mutations, ds, rq, timer)
                        .await
                }
            }
        }
    }

    /// Sends a fire-and-forget copy of `req` to the mirror's cluster: `Host` gets `-shadow`,
    /// the body is read only as far as the original's attempts have read it, the copy's
    /// response is discarded, and at most [`MAX_MIRRORS_IN_FLIGHT`] copies run at once
    /// (more are dropped), so a slow shadow never delays or fails the original.
    fn mirror(
        &self,
        m: &MirrorPolicy,
        head: &http::request::Parts,
        shared: Option<&Arc<SharedBody>>,
        timeout: Option<std::time::Duration>,
    ) {
        let Some(cluster) = self.clusters.get(&m.cluster) else {
            return;
        };
        if self.mirrors_in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_MIRRORS_IN_FLIGHT {
            self.mirrors_in_flight.fetch_sub(1, Ordering::AcqRel);
            self.stats.mirror_dropped.inc();
            return;
        }
        let Some(endpoint) = cluster.pick(&PickContext::default()) else {
            self.mirrors_in_flight.fetch_sub(1, Ordering::AcqRel);
            self.stats.mirror_dropped.inc();
            return;
        };
        let http2 = match cluster.config.protocol {
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::UseDownstream => head.version == Version::HTTP_2,
        };
        let host = head
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                head.headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let host = match (&m.host, m.shadow_suffix) {
            (Some(h), _) => h.to_str().unwrap_or("").to_owned(),
            (None, true) => shadow_host(&host),
            (None, false) => host,
        };
        let body = shared.map_or_else(RequestBody::empty, |s| s.follower());
        let mut copy = Request::new(body);
        *copy.method_mut() = head.method.clone();
        *copy.headers_mut() = head.headers.clone();
        let pq = head
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let uri = if http2 {
            *copy.version_mut() = Version::HTTP_2;
            copy.headers_mut().remove(header::HOST);
            format!("http://{host}{pq}").parse()
        } else {
            *copy.version_mut() = Version::HTTP_11;
            if let Ok(v) = HeaderValue::from_str(&host) {
                copy.headers_mut().insert(header::HOST, v);
            }
            pq.parse()
        };
        let Ok(uri) = uri else {
            self.mirrors_in_flight.fetch_sub(1, Ordering::AcqRel);
            return;
        };
        *copy.uri_mut() = uri;
        let in_flight = self.mirrors_in_flight.clone();
        let limit = timeout.unwrap_or(crate::config::route::DEFAULT_ROUTE_TIMEOUT);
        let source = shared.cloned();
        tokio::spawn(async move {
            let breaker = &cluster.breakers[0];
            if let Some(slot) = breaker.request() {
                let _guard = InFlight::begin(endpoint.clone(), cluster.clone(), slot);
                let opts = ConnectOptions {
                    http2,
                    connect_timeout: cluster.config.connect_timeout,
                    breaker,
                    max_requests_per_connection: cluster.config.max_requests_per_connection,
                    idle_timeout: cluster.config.idle_timeout,
                };
                let stats = &cluster.stats;
                stats.rq_total.inc();
                // Read to the end, so the connection goes back to the pool.
                let exchange = async {
                    let resp = endpoint.send(copy, opts, stats).await.ok()?;
                    stats.record_status(resp.status().as_u16());
                    resp.into_body().collect().await.ok()?;
                    Some(())
                };
                // A copy whose body the original stopped reading is cut at once, even while
                // its upstream is not reading (its body is then not polled to see it fail):
                // dropped mid-body, its upstream connection closes (HTTP/2: the stream resets).
                let abandoned = async {
                    match &source {
                        Some(s) => s.abandoned().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::time::timeout(limit, exchange) => {}
                    () = abandoned => {}
                }
            }
            in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }

    /// Runs the HTTP filters before the router (local rate limit and fault injection, in
    /// their configured order); a local reply (and headers to add to it) ends the request.
    async fn http_filters<'a>(
        &'a self,
        req: &mut Request<DownstreamBody>,
        levels: [Option<&'a FilterOverrides>; 3],
        cluster: Option<&str>,
        log: &mut Option<Box<LogRecord>>,
    ) -> Option<(LocalReply, Option<&'a HeaderMutation>)> {
        let cfg = &*self.config;
        let rl = ratelimit::resolve(cfg.ratelimit.as_deref(), levels);
        // `is_grpc` only when a rate limit applies (a header lookup per request otherwise).
        let limit = |req: &mut Request<DownstreamBody>| match rl
            .map(|rl| ratelimit::check(rl, respond::is_grpc(req.headers()), &self.stats))
        {
            Some(ratelimit::Decision::Limited(reply, extra)) => Some((reply, Some(extra))),
            Some(ratelimit::Decision::NotEnforced(add)) => {
                add.apply(req.headers_mut(), &HeaderContext::default());
                None
            }
            Some(ratelimit::Decision::Allow) | None => None,
        };
        if cfg.ratelimit_first
            && let Some(r) = limit(req)
        {
            return Some(r);
        }
        if let Some(fc) = fault::resolve(cfg.fault.as_deref(), levels) {
            let injected =
                fault::inject(fc, req.headers(), cluster, &self.active_faults, &self.stats).await;
            if let Some(log) = log.as_mut() {
                log.flags.insert(injected.flags);
            }
            if let Some(reply) = injected.abort {
                return Some((reply, None));
            }
        }
        if !cfg.ratelimit_first {
            return limit(req);
        }
        None
    }

    // Not `async fn` on purpose, as `handle`.
    #[allow(clippy::too_many_arguments, clippy::manual_async_fn)]
    fn forward<'r>(
        &self,
        mut req: Request<DownstreamBody>,
        authority: String,
        f: &'r ForwardAction,
        (cluster_name, target): (Arc<str>, Option<&'r WeightedTarget>),
        mut mutations: Mutations<'r>,
        ds: &Downstream,
        rq: RequestCx,
        mut timer: Pin<&mut RequestTimer>,
    ) -> impl Future<Output = Response<ResponseBody>> {
        // A block, not an `async fn`: an async fn moves its arguments into its body's
        // locals on first poll (a copy of the request); a block uses its captures
        // where they are.
        async move {
            let RequestCx {
                request_id,
                grpc,
                mut log,
                started,
                filtered_at,
                upgrade,
            } = rq;
            if let Some(kind) = &upgrade {
                let kind = kind.to_str().unwrap_or("").to_ascii_lowercase();
                let allowed = f
                    .upgrades
                    .iter()
                    .find(|(t, _)| *t == kind)
                    .map_or_else(|| self.config.upgrades.contains(&kind), |(_, on)| *on);
                if !allowed {
                    let reply = LocalReply::new(
                        StatusCode::FORBIDDEN,
                        ResponseFlags::default(),
                        "upgrade_failed",
                        "",
                    );
                    return self.local(reply, grpc, Some(&mutations), request_id, log, started);
                }
            }
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
                return self.local(reply, grpc, Some(&mutations), request_id, log, started);
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
                return self.local(reply, grpc, Some(&mutations), request_id, log, started);
            };
            if let Some(log) = log.as_mut() {
                log.upstream_host = Some(endpoint.addr);
            }
            mutations.cx.upstream_host = Some(endpoint.addr);

            let authority = match host_rewrite(&mutations, f, &req, &endpoint) {
                Some(new) => {
                    if !self.config.suppress_envoy_headers
                        && let Ok(v) = HeaderValue::from_str(&authority)
                    {
                        req.headers_mut().insert(&X_ENVOY_ORIGINAL_HOST, v);
                    }
                    new
                }
                None => authority,
            };
            // Upgrades (WebSocket...) go over HTTP/1.1 whatever the cluster's protocol.
            let http2 = upgrade.is_none()
                && match cluster.config.protocol {
                    UpstreamProtocol::Http1 => false,
                    UpstreamProtocol::Http2 => true,
                    UpstreamProtocol::UseDownstream => req.version() == Version::HTTP_2,
                };
            let downstream_upgrade = upgrade.as_ref().map(|_| DownstreamUpgrade::of(&mut req));
            let counter = log.as_ref().map(|_| Arc::new(AtomicU64::new(0)));
            // The head stays here for every attempt. HTTP/1.1 attempts borrow it (they only
            // encode it), so a retry rebuilds nothing and the ~220-byte head is not moved down
            // the attempt. HTTP/2 and upgrades (hyper's client) take an owned request: the head
            // moves into the only attempt when no retry can follow, else each gets a copy.
            let (head, body) = req.into_parts();
            let mut head = KeptHead {
                parts: head,
                recycle: false,
            };
            let ended = body.is_end_stream();
            if let Err(reply) =
                upstream_head(&mut head.parts, ended, &authority, http2, upgrade.is_some())
            {
                return self.local(reply, grpc, Some(&mutations), request_id, log, started);
            }
            let body = RequestBody::new(body, counter.clone(), None);
            let retry = match (&upgrade, f.retry.as_deref()) {
                (Some(_), _) => None,
                (None, Some(r)) => Some(r),
                (None, None) => mutations.vh.retry.as_ref(),
            }
            .filter(|p| p.request_allowed(&head.parts.headers));
            // With a retry policy each response head needs a header map of its own (the
            // request's stays for a retry): the request's is kept for a later one.
            head.recycle = retry.is_some();
            let started_at = tokio::time::Instant::from_std(started);
            let timeouts = Timeouts::compute(
                f,
                retry,
                &self.config,
                &head.parts.headers,
                grpc,
                started_at,
            );
            if let (Some(t), false) = (timeouts.expected, self.config.suppress_envoy_headers) {
                // Tells the upstream how long we will wait, as Envoy's router does.
                let v = match &f.timeout_ms_header {
                    Some(v) if f.timeout == Some(t) => v.clone(),
                    _ => HeaderValue::from(t.as_millis() as u64),
                };
                head.parts
                    .headers
                    .insert(&X_ENVOY_EXPECTED_RQ_TIMEOUT_MS, v);
            }
            if let (Some(t), true) = (timeouts.expected, timeouts.rewrite_grpc_timeout)
                && let Ok(v) = HeaderValue::from_str(&format!("{}m", t.as_millis()))
            {
                head.parts.headers.insert("grpc-timeout", v);
            }
            if let Some(kind) = &upgrade {
                let h = &mut head.parts.headers;
                h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                h.insert(header::UPGRADE, kind.clone());
            }

            let stats = &cluster.stats;
            let breaker = &cluster.breakers[usize::from(f.high_priority)];
            let opts = ConnectOptions {
                http2,
                connect_timeout: cluster.config.connect_timeout,
                breaker,
                max_requests_per_connection: cluster.config.max_requests_per_connection,
                idle_timeout: cluster.config.idle_timeout,
            };
            // Bodies are read through a shared buffer when a retry may need them again.
            // A bodyless request's flag is set from the start and shared with no body: it lives
            // here, not behind an `Arc` (an allocation per request saved).
            // Nothing waits between the filters and the first attempt: one clock reading
            // stands for when a bodyless request ended, when the body's flag was made, and when
            // the first attempt was sent.
            let pending_body = (!ended).then(|| Arc::new(BodyDone::new(filtered_at.into())));
            let ended_flag;
            let done: &BodyDone = match &pending_body {
                Some(d) => d,
                None => {
                    ended_flag = BodyDone::ended(filtered_at.into());
                    &ended_flag
                }
            };
            let mut first_sent_at = Some(filtered_at);
            // Mirrors: decided once per request, before the first attempt.
            let mirrors: Vec<&MirrorPolicy> = if upgrade.is_none() {
                f.mirrors.iter().filter(|m| m.fraction.roll()).collect()
            } else {
                Vec::new()
            };
            let (first_body, shared) = match &pending_body {
                Some(done) if retry.is_some() || !mirrors.is_empty() => {
                    let shared = body.into_shared(done.clone(), RETRY_BUFFER_LIMIT);
                    (shared.attempt(), Some(shared))
                }
                Some(done) => (body.with_done(done.clone()), None),
                None => (body, None),
            };
            for m in mirrors {
                self.mirror(m, &head.parts, shared.as_ref(), timeouts.global);
            }
            let replay = retry.map(|_| Replay::of(shared.as_ref()));
            let mut pending = Some(first_body);
            let mut endpoint = endpoint;
            let mut tried: Vec<SocketAddr> = Vec::new();
            let mut retries = 0;
            let mut _retry_slot = None;
            let mut downstream_upgrade = downstream_upgrade;
            loop {
                let Some(body) = pending
                    .take()
                    .or_else(|| replay.as_ref().and_then(Replay::body))
                else {
                    break self.local(
                        internal_error(),
                        grpc,
                        Some(&mutations),
                        request_id,
                        log,
                        started,
                    );
                };
                if mutations.vh.attempt_count_upstream {
                    head.parts
                        .headers
                        .insert(&X_ENVOY_ATTEMPT_COUNT, HeaderValue::from(retries + 1));
                }
                let Some(rq_slot) = breaker.request() else {
                    stats.pending_overflow.inc();
                    stats.record_status(503);
                    break self.local(overflow(), grpc, Some(&mutations), request_id, log, started);
                };
                stats.rq_total.inc();
                let in_flight = InFlight::begin(endpoint.clone(), cluster.clone(), rq_slot);
                // A retry comes after a back-off: its own reading.
                let sent_at = first_sent_at.take().unwrap_or_else(Instant::now);
                // Pinned where it is built and lent to `send_within`: moving this future (it holds
                // the body) into `send_within` and pinning it there copied it twice.
                let result = {
                    let send = std::pin::pin!(async {
                        if upgrade.is_some() {
                            // Rare: boxed so it does not size the common path's future.
                            let req = Request::from_parts(take_head(&mut head.parts), body);
                            Box::pin(endpoint.send_upgrade(req, opts, stats))
                                .await
                                .map(|r| r.map(UpstreamBody::Hyper))
                                .map_err(|error| SendError { error, body: None })
                        } else if http2 {
                            let head = match retry {
                                Some(_) => copy_head(&mut head.parts, retries == 0),
                                None => take_head(&mut head.parts),
                            };
                            endpoint
                                .send(Request::from_parts(head, body), opts, stats)
                                .await
                        } else {
                            // No retry can follow without a policy: the exchange may reuse the
                            // head's header map for the response's.
                            endpoint
                                .send_h1(&mut head.parts, body, retry.is_none(), opts, stats)
                                .await
                        }
                    });
                    send_within(send, &timeouts, done, sent_at.into(), timer.as_mut()).await
                };
                match &result {
                    Ok(Ok(resp)) => {
                        cluster.report(&endpoint, Outcome::Http(resp.status().as_u16()))
                    }
                    Ok(Err(e)) if !e.error.is_overflow() && !e.error.is_downstream_body_error() => {
                        cluster.report(
                            &endpoint,
                            Outcome::LocalFailure {
                                timeout: matches!(e.error, UpstreamError::ConnectTimeout),
                            },
                        )
                    }
                    Err(Fired::Global | Fired::PerTry | Fired::PerTryIdle) => {
                        cluster.report(&endpoint, Outcome::LocalFailure { timeout: true })
                    }
                    _ => {}
                }
                let retriable = match (&result, retry) {
                    (_, None) => false,
                    (Ok(Ok(resp)), Some(p)) => p.retriable_response(resp.status(), resp.headers()),
                    (Ok(Err(e)), _)
                        if e.error.is_overflow() || e.error.is_downstream_body_error() =>
                    {
                        false
                    }
                    (Ok(Err(e)), Some(p)) => {
                        p.retriable_failure(e.error.is_connect_failure(), false)
                    }
                    (Err(fired), Some(p)) => fired.per_try() && p.retriable_failure(false, true),
                };
                if let Err(fired) = &result
                    && fired.per_try()
                {
                    stats.per_try_timeout.inc();
                }
                // Read the clock only when a retry is on the table.
                let global_expired = || {
                    timeouts
                        .global_deadline(done)
                        .is_some_and(|d| tokio::time::Instant::now() >= d)
                };
                let retry_limit = retry.map_or(0, |r| r.num_retries);
                if retriable && retries < retry_limit && !global_expired() {
                    let unsent = matches!(&result, Ok(Err(e)) if e.body.is_some());
                    let replayable = replay.as_ref().is_some_and(Replay::replayable);
                    // Retries in flight are bounded per cluster (max_retries or a budget).
                    _retry_slot = None;
                    let slot = if unsent || replayable {
                        breaker.retry()
                    } else {
                        None
                    };
                    if slot.is_none() && (unsent || replayable) {
                        stats.retry_overflow.inc();
                    }
                    if let Some(slot) = slot {
                        _retry_slot = Some(slot);
                        let back = match result {
                            Ok(Err(e)) => e.body,
                            _ => None,
                        };
                        drop(in_flight);
                        stats.rq_retry.inc();
                        retries += 1;
                        pending = back;
                        if let Some(policy) = retry {
                            // Recorded only once a retry comes (an allocation per request before).
                            tried.push(endpoint.addr);
                            tokio::time::sleep(policy.back_off(retries)).await;
                            endpoint = pick_retry_host(&cluster, &pick, &tried, policy)
                                .unwrap_or(endpoint);
                        }
                        if let Some(log) = log.as_mut() {
                            log.upstream_host = Some(endpoint.addr);
                        }
                        continue;
                    }
                    // No retry (the body outgrew the replay buffer, or the retry circuit breaker
                    // is open): the client gets what this attempt got.
                    if !(unsent || replayable) {
                        stats.body_too_large_for_retry.inc();
                    }
                    let attempt = Attempt {
                        in_flight,
                        sent_at,
                        retriable: false,
                        retries,
                        downstream_upgrade: downstream_upgrade.take(),
                    };
                    break self.finish_attempt(
                        result, attempt, &timeouts, done, counter, &mutations, request_id, log,
                        started, grpc,
                    );
                }
                if retriable {
                    stats.retry_limit_exceeded.inc();
                    if let Some(log) = log.as_mut() {
                        log.flags
                            .insert(ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
                    }
                }
                break self.finish_attempt(
                    result,
                    Attempt {
                        in_flight,
                        sent_at,
                        retriable,
                        retries,
                        downstream_upgrade: downstream_upgrade.take(),
                    },
                    &timeouts,
                    done,
                    counter,
                    &mutations,
                    request_id,
                    log,
                    started,
                    grpc,
                );
            }
        }
    }

    /// Turns the last attempt's outcome into the downstream response.
    #[allow(clippy::too_many_arguments)]
    fn finish_attempt(
        &self,
        result: AttemptResult,
        attempt: Attempt,
        timeouts: &Timeouts,
        done: &BodyDone,
        counter: Option<Arc<AtomicU64>>,
        mutations: &Mutations<'_>,
        request_id: Option<HeaderValue>,
        mut log: Option<Box<LogRecord>>,
        started: Instant,
        grpc: bool,
    ) -> Response<ResponseBody> {
        let Attempt {
            in_flight,
            sent_at,
            retriable,
            retries,
            downstream_upgrade,
        } = attempt;
        let stats = &in_flight.cluster().stats;
        // Stream timers belong to the connection manager, not the router: Envoy's replies
        // for them carry no attempt count.
        let router_reply = !matches!(
            result,
            Err(Fired::StreamIdle | Fired::Duration | Fired::Request)
        );
        let reply = match (result, downstream_upgrade) {
            (Ok(Ok(resp)), Some(downstream))
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS =>
            {
                let tunnel = Tunnel {
                    downstream,
                    in_flight,
                    log: log.map(|log| LogTail {
                        record: log,
                        manager: self.config.clone(),
                        started,
                        request_bytes: None,
                    }),
                };
                return self.tunnel(resp, tunnel, mutations, request_id);
            }
            (Ok(Ok(resp)), _) => {
                if retries > 0 && !retriable {
                    stats.retry_success.inc();
                }
                // One reading for the upstream time and the body's timers.
                let now = Instant::now();
                // The timers act only when the body has to wait for the upstream: a body
                // that came whole with its head (most small responses) never does, and
                // needs none (~150 instructions: their plan and an allocation).
                let timers = if resp.body().arrived_whole() {
                    None
                } else {
                    timeouts.body_timers(
                        timeouts
                            .global
                            .map(|t| done.ended_at().unwrap_or(now.into()) + t),
                        now.into(),
                    )
                };
                let upstream = Upstream {
                    in_flight,
                    upstream_time: now.saturating_duration_since(sent_at),
                    counter,
                    timers,
                    attempts: retries + 1,
                };
                return self.proxied(resp, upstream, mutations, request_id, log, started);
            }
            (Err(fired), _) => {
                match fired {
                    Fired::Global | Fired::PerTry | Fired::PerTryIdle => stats.rq_timeout.inc(),
                    Fired::StreamIdle => self.stats.rq_idle_timeout.inc(),
                    Fired::Duration => self.stats.rq_max_duration.inc(),
                    Fired::Request => self.stats.rq_timeout.inc(),
                };
                fired.reply(done.is_done())
            }
            (Ok(Err(e)), _) if e.error.is_overflow() => {
                stats.pending_overflow.inc();
                overflow()
            }
            // As Envoy's codec answers a malformed request body (the connection closes).
            (Ok(Err(e)), _) if e.error.is_downstream_body_error() => LocalReply::new(
                StatusCode::BAD_REQUEST,
                ResponseFlags::DOWNSTREAM_PROTOCOL_ERROR,
                "downstream_body_error",
                "Bad Request",
            ),
            (Ok(Err(e)), _) => {
                let e = e.error;
                let flag = if e.is_connect_failure() {
                    ResponseFlags::UPSTREAM_CONNECTION_FAILURE
                } else if matches!(e, UpstreamError::Protocol(_)) {
                    ResponseFlags::UPSTREAM_PROTOCOL_ERROR
                } else {
                    ResponseFlags::UPSTREAM_CONNECTION_TERMINATION
                };
                // As Envoy words it once a retry happened.
                let reason = if retries > 0 {
                    "retried and the latest reset reason"
                } else {
                    "reset reason"
                };
                let body = format!(
                    "upstream connect error or disconnect/reset before headers. {reason}: {}",
                    e.reset_reason()
                );
                // Envoy 1.40 answers an upstream protocol error 502 (the upstream spoke, but
                // not HTTP), other resets 503.
                let status = if flag == ResponseFlags::UPSTREAM_PROTOCOL_ERROR {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                if let Some(log) = log.as_mut() {
                    log.transport_failure = e.transport_failure();
                }
                LocalReply::new(status, flag, e.details(), &body)
            }
        };
        stats.record_status(reply.status.as_u16());
        drop(in_flight);
        if let (Some(c), Some(log)) = (&counter, log.as_mut()) {
            log.bytes_received = c.load(Ordering::Relaxed);
        }
        let mut resp = self.local(reply, grpc, Some(mutations), request_id, log, started);
        if mutations.vh.attempt_count_downstream && router_reply {
            resp.headers_mut()
                .insert(&X_ENVOY_ATTEMPT_COUNT, HeaderValue::from(retries + 1));
        }
        resp
    }

    /// Answers `101` downstream and splices the two upgraded connections together.
    fn tunnel(
        &self,
        mut resp: Response<UpstreamBody>,
        t: Tunnel,
        mutations: &Mutations<'_>,
        request_id: Option<HeaderValue>,
    ) -> Response<ResponseBody> {
        let upstream = hyper::upgrade::on(&mut resp);
        let (mut parts, _) = resp.into_parts();
        // Connection/Upgrade are hop-by-hop, but a 101 must carry them to the client.
        let upgrade_headers = (
            parts.headers.remove(header::CONNECTION),
            parts.headers.remove(header::UPGRADE),
        );
        headers::strip_hop_by_hop(&mut parts.headers);
        if let (Some(c), Some(u)) = upgrade_headers {
            parts.headers.insert(header::CONNECTION, c);
            parts.headers.insert(header::UPGRADE, u);
        }
        mutations.apply_response(&mut parts.headers);
        self.response_headers(&mut parts.headers, request_id.as_ref());
        let mut log = t.log;
        if let Some(l) = log.as_mut() {
            l.record.response_code = 101;
            l.record.details = "via_upstream";
        }
        let Tunnel {
            downstream,
            in_flight,
            ..
        } = t;
        tokio::spawn(async move {
            let mut moved = (0, 0);
            if let (Some(mut d), Ok(u)) = tokio::join!(downstream.connection(), upstream) {
                let mut u = TokioIo::new(u);
                moved = tokio::io::copy_bidirectional(&mut d, &mut u)
                    .await
                    .unwrap_or_default();
            }
            drop(in_flight);
            if let Some(mut log) = log {
                log.record.bytes_received = moved.0;
                log.write(moved.1, true, true, ResponseFlags::default());
            }
        });
        Response::from_parts(parts, ResponseBody::empty())
    }

    /// Turns an upstream response into the downstream one, streaming its body.
    #[allow(clippy::too_many_arguments)]
    fn proxied(
        &self,
        resp: Response<UpstreamBody>,
        up: Upstream,
        mutations: &Mutations<'_>,
        request_id: Option<HeaderValue>,
        log: Option<Box<LogRecord>>,
        started: Instant,
    ) -> Response<ResponseBody> {
        let Upstream {
            in_flight,
            upstream_time,
            counter,
            timers,
            attempts,
        } = up;
        let stats = &in_flight.cluster().stats;
        let upstream_ms = upstream_time.as_millis() as u64;
        stats.rq_time.observe(upstream_time.as_secs_f64() * 1000.0);
        stats.record_status(resp.status().as_u16());

        let (mut parts, incoming) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        if !self.config.suppress_envoy_headers {
            parts.headers.insert(
                &X_ENVOY_UPSTREAM_SERVICE_TIME,
                headers::decimal(upstream_ms),
            );
        }
        if mutations.vh.attempt_count_downstream {
            parts
                .headers
                .insert(&X_ENVOY_ATTEMPT_COUNT, HeaderValue::from(attempts));
        }
        mutations.apply_response(&mut parts.headers);
        self.response_headers(&mut parts.headers, request_id.as_ref());
        // hyper picks the downstream framing; the upstream's version is not ours to keep.
        parts.version = Version::default();
        let end = UpstreamEnd {
            listener: self.stats.clone(),
            log: log.map(|mut log| {
                log.response_code = parts.status.as_u16();
                log.details = "via_upstream";
                log.upstream_local = incoming.local_addr();
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
            in_flight,
        };
        Response::from_parts(
            parts,
            ResponseBody::upstream(incoming, timers).with_on_end(Box::new(end)),
        )
    }

    /// Applies `strip_any_host_port` / `strip_matching_host_port` (the port the connection
    /// arrived on) and returns the authority.
    fn normalize_authority(&self, req: &mut Request<DownstreamBody>, listener_port: u16) -> String {
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
        let bare = strip_port(&raw);
        let port = raw
            .get(bare.len() + 1..)
            .and_then(|p| p.parse::<u16>().ok());
        if !cfg.strip_any_host_port && port != Some(listener_port) {
            return raw;
        }
        let stripped = bare.to_owned();
        if stripped != raw
            && let Ok(v) = HeaderValue::from_str(&stripped)
        {
            req.headers_mut().insert(header::HOST, v);
        }
        stripped
    }

    /// `x-forwarded-for`, `x-forwarded-proto`, `x-request-id`, and hop-by-hop removal;
    /// returns the `x-request-id` to echo in responses (`always_set_request_id_in_response`).
    fn forwarding_headers(
        &self,
        req: &mut Request<DownstreamBody>,
        ds: &Downstream,
    ) -> Option<HeaderValue> {
        let cfg = &*self.config;
        let headers = req.headers_mut();
        headers::strip_hop_by_hop(headers);
        // hyper answers `100 Continue` when the body is first read (as we start sending it
        // upstream); like Envoy, the expectation itself is not forwarded.
        headers.remove(header::EXPECT);
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
        // (`entry`: one lookup where `contains_key` then `insert` took two.)
        let proto = HeaderValue::from_static(ds.scheme);
        if cfg.use_remote_address {
            headers.insert(&X_FORWARDED_PROTO, proto);
        } else if let header::Entry::Vacant(e) = headers.entry(&X_FORWARDED_PROTO) {
            e.insert(proto);
        }
        // At the edge an external client's id is not trusted unless configured to be.
        let distrust = cfg.use_remote_address
            && !cfg.preserve_external_request_id
            && is_external(ds.remote.ip());
        if cfg.generate_request_id {
            if distrust {
                headers.insert(&X_REQUEST_ID, headers::uuid_v4());
            } else if let header::Entry::Vacant(e) = headers.entry(&X_REQUEST_ID) {
                e.insert(headers::uuid_v4());
            }
        }
        // Only the response echo reads it again: no clone (an allocation) otherwise.
        let request_id = cfg
            .always_set_request_id_in_response
            .then(|| headers.get(&X_REQUEST_ID).cloned())
            .flatten();
        if cfg.use_remote_address {
            // Envoy marks where an edge request came from for everything downstream.
            headers.remove(&X_ENVOY_INTERNAL);
            headers.remove(&X_ENVOY_EXTERNAL_ADDRESS);
            let ip = ds.remote.ip();
            if is_external(ip) {
                if let Ok(v) = HeaderValue::from_str(&ip.to_string()) {
                    headers.insert(&X_ENVOY_EXTERNAL_ADDRESS, v);
                }
            } else {
                headers.insert(&X_ENVOY_INTERNAL, HeaderValue::from_static("true"));
            }
        }
        if let Some(via) = &cfg.via {
            headers.append(header::VIA, via.clone());
        }
        request_id
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
        if cfg.always_set_request_id_in_response
            && let Some(id) = request_id
        {
            headers.insert(&X_REQUEST_ID, id.clone());
        }
        if let Some(via) = &cfg.via {
            headers.append(header::VIA, via.clone());
        }
    }

    fn start_log(
        &self,
        req: &Request<DownstreamBody>,
        authority: &str,
        ds: &Downstream,
    ) -> LogRecord {
        let mut log = LogRecord {
            start: Some(SystemTime::now()),
            method: Some(req.method().clone()),
            path: req.uri().path_and_query().cloned(),
            authority: Some(authority.to_owned()),
            scheme: Some(ds.scheme),
            protocol: Some(protocol_name(req.version())),
            downstream_local: Some(ds.local),
            downstream_remote: Some(ds.remote),
            // Envoy's trusted client address without `use_remote_address`: the last
            // `x-forwarded-for` entry (no trusted hops configured).
            downstream_xff: if self.config.use_remote_address {
                None
            } else {
                req.headers()
                    .get(&X_FORWARDED_FOR)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit(',').next())
                    .and_then(|ip| ip.trim().parse().ok())
            },
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
        log: Option<Box<LogRecord>>,
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

/// What every request of one downstream connection shares.
struct ConnShared {
    manager: Arc<HttpManager>,
    ds: Downstream,
    activity: ConnActivity,
    /// When the connection started (for [`RequestTimer::new`], without a clock read per
    /// request).
    epoch: tokio::time::Instant,
}

/// Per-request facts carried from `handle` into `forward`.
struct RequestCx {
    request_id: Option<HeaderValue>,
    grpc: bool,
    log: Option<Box<LogRecord>>,
    started: Instant,
    /// When the HTTP filters let the request go on (`started` when none could wait).
    filtered_at: Instant,
    /// The `Upgrade` header of an HTTP/1.1 upgrade request.
    upgrade: Option<HeaderValue>,
}

/// The downstream side of an upgrade: hyper's (HTTP/2 listeners) or the inline HTTP/1.1
/// server's, which hands the connection over once `101` is written.
enum DownstreamUpgrade {
    Hyper(hyper::upgrade::OnUpgrade),
    Inline(Option<tokio::sync::oneshot::Receiver<h1server::Upgraded>>),
}

/// A byte stream to splice.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

impl DownstreamUpgrade {
    fn of(req: &mut Request<DownstreamBody>) -> DownstreamUpgrade {
        match req.extensions_mut().remove::<h1server::PendingUpgrade>() {
            Some(p) => DownstreamUpgrade::Inline(p.take()),
            None => DownstreamUpgrade::Hyper(hyper::upgrade::on(req)),
        }
    }

    /// The downstream connection, once the `101` has gone out.
    async fn connection(self) -> Option<Box<dyn Io>> {
        match self {
            DownstreamUpgrade::Hyper(on) => on.await.ok().map(|u| Box::new(TokioIo::new(u)) as _),
            DownstreamUpgrade::Inline(rx) => rx?.await.ok().map(|u| Box::new(u) as _),
        }
    }
}

/// An accepted upgrade, waiting for both sides to hand over their connections.
struct Tunnel {
    downstream: DownstreamUpgrade,
    in_flight: InFlight,
    log: Option<LogTail>,
}

fn path_and_query(req: &Request<DownstreamBody>) -> &str {
    req.uri().path_and_query().map_or("/", |p| p.as_str())
}

/// The upstream request head `forward` keeps; with `recycle` its header map is kept for a
/// later response head on this thread when the request is done (a `Drop`, so the response
/// is returned where it is built).
struct KeptHead {
    parts: http::request::Parts,
    recycle: bool,
}

impl Drop for KeptHead {
    fn drop(&mut self) {
        if self.recycle {
            crate::upstream::h1::recycle_headers(std::mem::take(&mut self.parts.headers));
        }
    }
}

/// Moves the request head out for an attempt that needs an owned request (the only one).
fn take_head(head: &mut http::request::Parts) -> http::request::Parts {
    std::mem::replace(head, Request::new(()).into_parts().0)
}

/// A copy of the request head for an HTTP/2 attempt that a retry may follow; the first
/// attempt also takes the extensions (they are not `Clone`; retries go without, as before).
fn copy_head(head: &mut http::request::Parts, first: bool) -> http::request::Parts {
    let mut copy = Request::new(()).into_parts().0;
    copy.method = head.method.clone();
    copy.uri = head.uri.clone();
    copy.version = head.version;
    copy.headers = head.headers.clone();
    if first {
        copy.extensions = std::mem::take(&mut head.extensions);
    }
    copy
}

/// A circuit breaker is open: Envoy's 503 `UO`.
fn overflow() -> LocalReply {
    LocalReply::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ResponseFlags::UPSTREAM_OVERFLOW,
        "upstream_reset_before_response_started{overflow}",
        "upstream connect error or disconnect/reset before headers. reset reason: overflow",
    )
}

fn internal_error() -> LocalReply {
    LocalReply::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ResponseFlags::default(),
        "internal_error",
        "",
    )
}

/// An upstream exchange that got response headers.
struct Upstream {
    in_flight: InFlight,
    /// From sending the request to its response head.
    upstream_time: std::time::Duration,
    counter: Option<Arc<AtomicU64>>,
    timers: Option<body::BodyTimers>,
    attempts: u32,
}

/// What one attempt ended with: response headers, a send failure, or a timeout.
type AttemptResult = Result<Result<Response<UpstreamBody>, SendError>, Fired>;

/// The last attempt of a request.
struct Attempt {
    in_flight: InFlight,
    sent_at: Instant,
    /// Still retriable, but no retries left.
    retriable: bool,
    retries: u32,
    downstream_upgrade: Option<DownstreamUpgrade>,
}

/// Runs one upstream exchange until response headers or the first limit that fires.
/// `request_timeout` only counts while the request body is still arriving.
///
/// The limit is timed on `timer`, which an HTTP/1.1 connection keeps from one request to
/// the next. A timer still armed for no later than the limit is left as it is; if it fires
/// first, the re-plan moves it to the limit. A keep-alive connection so registers it in
/// tokio's timer wheel about once per timeout period, and takes it out when it closes (a
/// fresh `sleep_until` per request was registered at first poll and taken out at drop:
/// ≈580 instructions per request). Responses almost always arrive long before the limit:
/// a timer armed for an earlier request fires once at most while the connection is idle, a
/// spurious wake-up of its task, and stays unregistered until the next request's limit.
async fn send_within<F, T>(
    mut send: Pin<&mut F>,
    timeouts: &Timeouts,
    done: &BodyDone,
    attempt_start: tokio::time::Instant,
    mut timer: Pin<&mut RequestTimer>,
) -> Result<T, Fired>
where
    F: std::future::Future<Output = T>,
{
    loop {
        // The route timeout only runs once the request has fully arrived, and request-body
        // bytes keep the stream from idling: re-plan when either happens.
        let body_pending = !done.is_done();
        let plan = |done: &BodyDone| {
            timeouts.attempt_limit(
                timeouts.global_deadline(done),
                attempt_start,
                done.is_done(),
                done.last_activity(),
            )
        };
        let Some((at, kind)) = plan(done) else {
            tokio::select! {
                biased;
                r = &mut send => return Ok(r),
                _ = done.wait(), if body_pending => continue,
            }
        };
        timer.as_mut().aim(at);
        tokio::select! {
            // The response first when both are ready (and no random start per poll).
            biased;
            r = &mut send => return Ok(r),
            _ = timer.as_mut() => {
                // Something may have moved the limit (body ended, bytes arrived): re-plan.
                if plan(done).is_none_or(|(next, _)| next > tokio::time::Instant::now()) {
                    continue;
                }
                return Err(kind);
            }
            _ = done.wait(), if body_pending => continue,
        }
    }
}

/// The header-mutation levels that apply to one request, most specific first.
struct Mutations<'a> {
    target: Option<&'a WeightedTarget>,
    route: &'a Route,
    vh: &'a VirtualHost,
    table: &'a RouteTable,
    /// What header value format strings (`%DOWNSTREAM_REMOTE_ADDRESS%`) render from.
    cx: HeaderContext<'static>,
}

impl Mutations<'_> {
    fn apply_request(&self, h: &mut http::HeaderMap) {
        let cx = &self.cx;
        if let Some(t) = self.target {
            t.request_headers.apply(h, cx);
        }
        self.route.request_headers.apply(h, cx);
        self.vh.request_headers.apply(h, cx);
        self.table.request_headers.apply(h, cx);
    }

    fn apply_response(&self, h: &mut http::HeaderMap) {
        let cx = &self.cx;
        if let Some(t) = self.target {
            t.response_headers.apply(h, cx);
        }
        self.route.response_headers.apply(h, cx);
        self.vh.response_headers.apply(h, cx);
        self.table.response_headers.apply(h, cx);
    }
}

/// Whether a connection hyper served ended on a protocol error of the client's (Envoy's
/// `downstream_cx_protocol_error`): a malformed HTTP/1 message, or an HTTP/2 connection
/// error h2 itself raised (GOAWAY with `PROTOCOL_ERROR`, `FRAME_SIZE_ERROR`, ...), not a
/// reset or an I/O error.
fn is_protocol_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse)
        {
            return true;
        }
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.is_library() && h2.is_go_away();
        }
        next = e.source();
    }
    false
}
