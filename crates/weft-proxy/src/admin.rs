//! The admin server (Envoy's 15000): `/ready`, `/config_dump`, `/clusters`, `/stats`,
//! `/stats/prometheus`, `/quitquitquit`.

use crate::listener::ListenerRuntime;
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
#[derive(Debug)]
pub struct AdminState {
    pub config_dump: Arc<serde_json::Value>,
    pub clusters: Arc<ClusterManager>,
    pub stats: Arc<Stats>,
    pub listeners: Arc<Vec<Arc<ListenerRuntime>>>,
    pub draining: Arc<AtomicBool>,
    /// Notified by `POST /quitquitquit`.
    pub quit: Arc<Notify>,
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
                async move { Ok::<_, Infallible>(handle(&state, req)) }
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

/// One admin request.
pub fn handle(state: &AdminState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=UTF-8";
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/ready" | "/healthz/ready") => {
            if state.draining.load(Ordering::Relaxed) {
                reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, "DRAINING\n".into())
            } else {
                reply(StatusCode::OK, TEXT, "LIVE\n".into())
            }
        }
        (&Method::GET, "/config_dump") => {
            let dump = serde_json::json!({
                "configs": [{
                    "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
                    "bootstrap": &*state.config_dump,
                }]
            });
            reply(StatusCode::OK, "application/json", serde_json::to_string_pretty(&dump).unwrap_or_default())
        }
        (&Method::GET, "/clusters") => reply(StatusCode::OK, TEXT, clusters_text(&state.clusters)),
        (&Method::GET, "/stats") => {
            let mut out = String::new();
            for c in state.clusters.all() {
                c.stats.envoy_lines(&c.config.name, &mut out);
            }
            for l in state.listeners.iter() {
                l.stats.envoy_lines(&l.config.name, &mut out);
            }
            reply(StatusCode::OK, TEXT, out)
        }
        (&Method::GET, "/stats/prometheus") => {
            reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", state.stats.prometheus())
        }
        (&Method::POST, "/quitquitquit") => {
            state.quit.notify_one();
            reply(StatusCode::OK, TEXT, "OK\n".into())
        }
        (_, "/quitquitquit") => reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "use POST\n".into()),
        _ => reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "admin endpoints: /ready /config_dump /clusters /stats /stats/prometheus /quitquitquit (POST)\n".into(),
        ),
    }
}

/// Envoy's `/clusters` text: `cluster::host::stat::value`.
fn clusters_text(clusters: &ClusterManager) -> String {
    let mut out = String::new();
    for c in clusters.all() {
        let name = &c.config.name;
        let _ = writeln!(out, "{name}::default_priority::max_connections::1024");
        for ep in &c.endpoints().all {
            let a = ep.addr;
            let health = if ep.healthy {
                "healthy"
            } else {
                "/failed_eds_health"
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
