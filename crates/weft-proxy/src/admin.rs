//! The admin server (Envoy's 15000): `/ready`, `/config_dump`, `/listeners`, `/clusters`, `/stats`,
//! `/stats/prometheus`, `/logging`, `/quitquitquit`.

use crate::listener_manager::ListenerManager;
use crate::proxy::Drain;
use crate::stats::Stats;
use crate::upstream::ClusterManager;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// What the admin endpoints read and signal.
pub struct AdminState {
    pub config_dump: Arc<serde_json::Value>,
    pub clusters: Arc<ClusterManager>,
    pub stats: Arc<Stats>,
    pub listeners: Arc<ListenerManager>,
    pub draining: Arc<AtomicBool>,
    /// Notified by `POST /quitquitquit`.
    pub quit: Arc<Notify>,
    /// Backs `/logging` when the binary provides it.
    pub log_control: Option<crate::proxy::LogControl>,
    /// True once the first full configuration is applied.
    pub ready: tokio::sync::watch::Receiver<bool>,
    /// The xDS client, for the dynamic sections of `/config_dump`.
    pub xds: Option<Arc<crate::xds::XdsState>>,
}

/// Serves Istio's status port (15021): `/healthz/ready` only.
pub async fn serve_status(listener: TcpListener, state: Arc<AdminState>, mut drain: Drain) {
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = drain.signaled() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move {
                    Ok::<_, Infallible>(match req.uri().path() {
                        "/healthz/ready" => readiness(&state),
                        _ => reply(
                            StatusCode::NOT_FOUND,
                            "text/plain",
                            "try /healthz/ready\n".into(),
                        ),
                    })
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// 200 once configured and not draining; 503 with the reason otherwise.
fn readiness(state: &AdminState) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=UTF-8";
    if state.draining.load(Ordering::Relaxed) {
        reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, "DRAINING\n".into())
    } else if !*state.ready.borrow() {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "INITIALIZING\n".into(),
        )
    } else {
        reply(StatusCode::OK, TEXT, "LIVE\n".into())
    }
}

/// Serves admin requests until drained.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, mut drain: Drain) {
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            _ = drain.signaled() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle_async(&state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

/// One admin request; `/config_dump` waits for an xDS update in progress to finish.
pub async fn handle_async(state: &AdminState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() == Method::GET && req.uri().path() == "/config_dump" {
        let mut configs = vec![serde_json::json!({
            "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
            "bootstrap": &*state.config_dump,
        })];
        if let Some(xds) = &state.xds {
            configs.extend(xds.config_dump().await);
        }
        let dump = serde_json::json!({ "configs": configs });
        return reply(
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&dump).unwrap_or_default(),
        );
    }
    handle(state, req)
}

/// One admin request.
pub fn handle(state: &AdminState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=UTF-8";
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/ready" | "/healthz/ready") => readiness(state),
        (&Method::GET, "/config_dump") => {
            // The static part only; `handle_async` adds the dynamic sections.
            let configs = vec![serde_json::json!({
                "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
                "bootstrap": &*state.config_dump,
            })];
            let dump = serde_json::json!({ "configs": configs });
            reply(StatusCode::OK, "application/json", serde_json::to_string_pretty(&dump).unwrap_or_default())
        }
        (&Method::GET, "/listeners") => {
            // Envoy's `/listeners?format=json` shape, so tooling can find bound ports.
            let bound = state.listeners.bound();
            let statuses: Vec<serde_json::Value> = bound
                .iter()
                .map(|(name, addr)| {
                    serde_json::json!({
                        "name": &**name,
                        "local_address": {"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}},
                    })
                })
                .collect();
            if req.uri().query().is_some_and(|q| q.contains("format=json")) {
                let body = serde_json::json!({ "listener_statuses": statuses });
                reply(StatusCode::OK, "application/json", serde_json::to_string_pretty(&body).unwrap_or_default())
            } else {
                let text: String = bound.iter().map(|(n, a)| format!("{n}::{a}\n")).collect();
                reply(StatusCode::OK, TEXT, text)
            }
        }
        (&Method::GET, "/clusters") => reply(StatusCode::OK, TEXT, clusters_text(&state.clusters)),
        (&Method::GET, "/stats") => {
            let mut out = String::new();
            for c in state.clusters.all() {
                c.stats.envoy_lines(&c.config.stat_name, &mut out);
                // `track_remaining`: what each circuit breaker still allows.
                for (priority, b) in ["default", "high"].iter().zip(&c.breakers) {
                    if !b.limits.track_remaining {
                        continue;
                    }
                    let p = format!("cluster.{}.circuit_breakers.{priority}", c.config.stat_name);
                    for (name, value) in b.remaining() {
                        let _ = writeln!(out, "{p}.{name}: {value}");
                    }
                }
            }
            for l in state.listeners.all() {
                l.stats.envoy_lines(&l.config.name, &mut out);
            }
            reply(StatusCode::OK, TEXT, out)
        }
        (&Method::GET, "/stats/prometheus") => {
            reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", state.stats.prometheus())
        }
        (method @ (&Method::GET | &Method::POST), "/logging") => {
            let Some(control) = &state.log_control else {
                return reply(StatusCode::NOT_IMPLEMENTED, TEXT, "logging is not controllable here\n".into());
            };
            // Envoy's `?level=debug`; `?filter=<RUST_LOG syntax>` for finer control.
            let wanted = req.uri().query().and_then(|q| {
                crate::config::matcher::query_param(q, "filter")
                    .or_else(|| crate::config::matcher::query_param(q, "level"))
            });
            let result = match (method, wanted.as_deref()) {
                (&Method::POST, Some(filter)) => control(Some(filter)),
                (&Method::POST, None) => Err("use POST /logging?level=<level> or ?filter=<filter>".into()),
                _ => control(None),
            };
            match result {
                Ok(current) => reply(StatusCode::OK, TEXT, format!("active filter: {current}\n")),
                Err(e) => reply(StatusCode::BAD_REQUEST, TEXT, format!("{e}\n")),
            }
        }
        (&Method::POST, "/quitquitquit") => {
            state.quit.notify_one();
            reply(StatusCode::OK, TEXT, "OK\n".into())
        }
        (_, "/quitquitquit") => reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "use POST\n".into()),
        _ => reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "admin endpoints: /ready /config_dump /listeners /clusters /stats /stats/prometheus /logging /quitquitquit (POST)\n".into(),
        ),
    }
}

/// Envoy's `/clusters` text: `cluster::host::stat::value`.
fn clusters_text(clusters: &ClusterManager) -> String {
    let mut out = String::new();
    for c in clusters.all() {
        let name = &c.config.name;
        for (priority, b) in ["default_priority", "high_priority"]
            .iter()
            .zip(&c.breakers)
        {
            let l = &b.limits;
            let _ = writeln!(
                out,
                "{name}::{priority}::max_connections::{}",
                l.max_connections
            );
            let _ = writeln!(
                out,
                "{name}::{priority}::max_pending_requests::{}",
                l.max_pending_requests
            );
            let _ = writeln!(out, "{name}::{priority}::max_requests::{}", l.max_requests);
            let _ = writeln!(out, "{name}::{priority}::max_retries::{}", l.max_retries);
        }
        for ep in &c.endpoints().all {
            let a = ep.addr;
            let mut flags = Vec::new();
            if !ep.healthy {
                flags.push("/failed_eds_health");
            }
            if ep.health.is_hc_failed() {
                flags.push("/failed_active_hc");
            }
            if ep.health.is_ejected() {
                flags.push("/failed_outlier_check");
            }
            let health = if flags.is_empty() {
                "healthy".to_owned()
            } else {
                flags.concat()
            };
            let _ = writeln!(out, "{name}::{a}::rq_active::{}", ep.active_requests());
            let _ = writeln!(out, "{name}::{a}::health_flags::{health}");
            let _ = writeln!(out, "{name}::{a}::weight::{}", ep.weight);
            let _ = writeln!(out, "{name}::{a}::priority::{}", ep.priority);
            let _ = writeln!(
                out,
                "{name}::{a}::hostname::{}",
                ep.hostname.as_deref().unwrap_or("")
            );
        }
    }
    out
}
