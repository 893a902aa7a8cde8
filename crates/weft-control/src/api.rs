//! The REST API and debug views on the monitoring port (15014):
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/api/v1/apply?file=NAME` | validate then apply the YAML body (422 with `weft validate`'s messages when invalid) |
//! | POST | `/api/v1/delete?file=NAME` | delete the resources the body names |
//! | GET | `/api/v1/resources/KIND?namespace=NS&name=NAME` | resources in force, as written |
//! | GET | `/debug/syncz` | every connected proxy: identity and per-type sent/ACKed versions, NACKs |
//! | GET | `/debug/proxy_status` | every connected proxy: per xDS type `SYNCED`, `NOT SENT`, `STALE` or `NACKED` (with the error) |
//! | GET | `/debug/config_dump?proxyID=ID` | what the control plane sends that proxy, in Envoy's admin `/config_dump` shape (ID: node id, `NAME.NAMESPACE` or `NAME`) |
//! | GET | `/debug/configz` | snapshot version, resource counts, files rejected and why |
//! | GET | `/metrics` | push and convergence counters (Prometheus text) |
//! | GET | `/ready` | 200 once serving |

use crate::ControlError;
use crate::hub::Hub;
use crate::store::ConfigStore;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[derive(Clone)]
struct Api {
    hub: Arc<Hub>,
    store: Arc<ConfigStore>,
}

/// The API's router.
pub fn router(hub: Arc<Hub>, store: Arc<ConfigStore>) -> Router {
    Router::new()
        .route("/api/v1/apply", post(apply))
        .route("/api/v1/delete", post(delete))
        .route("/api/v1/resources/{kind}", get(list))
        .route("/debug/syncz", get(syncz))
        .route("/debug/proxy_status", get(proxy_status))
        .route("/debug/config_dump", get(config_dump))
        .route("/debug/configz", get(configz))
        .route("/metrics", get(metrics))
        .route("/ready", get(|| async { "ok\n" }))
        .with_state(Api { hub, store })
}

#[derive(Deserialize)]
struct FileParam {
    file: Option<String>,
}

fn error_response(e: ControlError) -> Response {
    match e {
        ControlError::Invalid(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "errors": errors })),
        )
            .into_response(),
        other => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "errors": [other.to_string()] })),
        )
            .into_response(),
    }
}

async fn apply(State(api): State<Api>, Query(q): Query<FileParam>, body: String) -> Response {
    let file = q.file.unwrap_or_else(|| "<stdin>".to_owned());
    // File I/O and parsing are quick but blocking: keep them off the async workers.
    let store = api.store.clone();
    match tokio::task::spawn_blocking(move || store.apply(&file, &body)).await {
        Ok(Ok(results)) => Json(json!({ "results": results })).into_response(),
        Ok(Err(e)) => error_response(e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn delete(State(api): State<Api>, Query(q): Query<FileParam>, body: String) -> Response {
    let file = q.file.unwrap_or_else(|| "<stdin>".to_owned());
    let store = api.store.clone();
    match tokio::task::spawn_blocking(move || store.delete(&file, &body)).await {
        Ok(Ok((deleted, not_found))) => {
            Json(json!({ "deleted": deleted, "notFound": not_found })).into_response()
        }
        Ok(Err(e)) => error_response(e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct ListParams {
    namespace: Option<String>,
    name: Option<String>,
}

async fn list(
    State(api): State<Api>,
    Path(kind): Path<String>,
    Query(q): Query<ListParams>,
) -> Response {
    match api
        .store
        .get(&kind, q.namespace.as_deref(), q.name.as_deref())
    {
        Ok(items) => {
            let items: Vec<_> = items.into_iter().map(|r| r.raw).collect();
            Json(json!({ "items": items })).into_response()
        }
        Err(e) => error_response(e),
    }
}

async fn syncz(State(api): State<Api>) -> Response {
    let snap = api.hub.snapshot();
    let proxies: Vec<_> = api
        .hub
        .connections()
        .into_iter()
        .map(|c| {
            let synced = c.synced();
            let mut v = serde_json::to_value(&c).unwrap_or_default();
            v["synced"] = json!(synced);
            v
        })
        .collect();
    Json(json!({ "snapshot": snap.version, "proxies": proxies })).into_response()
}

async fn proxy_status(State(api): State<Api>) -> Response {
    let snap = api.hub.snapshot();
    let proxies: Vec<_> = api
        .hub
        .connections()
        .into_iter()
        .map(|c| {
            let types: serde_json::Map<String, serde_json::Value> = crate::inspect::SHORT_NAMES
                .iter()
                .map(|(short, url)| {
                    let st = c.types.get(*url).cloned().unwrap_or_default();
                    let mut v = serde_json::to_value(st.state()).unwrap_or_default();
                    v["sent"] = json!(st.sent_version);
                    v["acked"] = json!(st.acked_version);
                    v["resources"] = json!(st.resources);
                    ((*short).to_owned(), v)
                })
                .collect();
            json!({
                "name": format!("{}.{}", c.proxy.name, c.proxy.namespace),
                "id": c.proxy.id,
                "cluster": c.proxy.cluster_id,
                "agent": c.agent,
                "protocol": c.protocol,
                "types": types,
            })
        })
        .collect();
    Json(json!({
        "controlPlane": format!("weft-control/{}", env!("CARGO_PKG_VERSION")),
        "snapshot": snap.version,
        "proxies": proxies,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct DumpParams {
    #[serde(rename = "proxyID")]
    proxy_id: Option<String>,
}

/// The connection a `proxyID` names: the node id, `NAME.NAMESPACE`, or a `NAME` only one
/// proxy has. The error lists the connected proxies.
fn find_proxy(
    conns: &[crate::hub::ConnStatus],
    want: Option<&str>,
) -> Result<crate::hub::ConnStatus, String> {
    let known = || {
        let names: Vec<String> = conns
            .iter()
            .map(|c| format!("{}.{}", c.proxy.name, c.proxy.namespace))
            .collect();
        if names.is_empty() {
            "no proxy is connected".to_owned()
        } else {
            format!("connected: {}", names.join(", "))
        }
    };
    let found: Vec<&crate::hub::ConnStatus> = match want {
        None => conns.iter().collect(),
        Some(w) => {
            let exact: Vec<_> = conns
                .iter()
                .filter(|c| {
                    c.proxy.id == w || format!("{}.{}", c.proxy.name, c.proxy.namespace) == w
                })
                .collect();
            if exact.is_empty() {
                conns.iter().filter(|c| c.proxy.name == w).collect()
            } else {
                exact
            }
        }
    };
    match (found.as_slice(), want) {
        ([one], _) => Ok((*one).clone()),
        ([], Some(w)) => Err(format!("no connected proxy is named {w:?} ({})", known())),
        ([], None) => Err(known()),
        (_, None) => Err(format!("name a proxy ({})", known())),
        (_, Some(w)) => Err(format!("{w:?} names several proxies ({})", known())),
    }
}

async fn config_dump(State(api): State<Api>, Query(q): Query<DumpParams>) -> Response {
    let conn = match find_proxy(&api.hub.connections(), q.proxy_id.as_deref()) {
        Ok(c) => c,
        Err(e) => return (StatusCode::NOT_FOUND, Json(json!({ "errors": [e] }))).into_response(),
    };
    let snap = api.hub.snapshot();
    let proxy = conn.proxy.clone();
    // Generation is CPU work: keep it off the async workers.
    let res = tokio::task::spawn_blocking(move || crate::translate::generate(&snap, &proxy)).await;
    let Ok(res) = res else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "generation failed").into_response();
    };
    let versions = conn
        .types
        .iter()
        .map(|(t, s)| (t.clone(), s.sent_version.clone()))
        .collect();
    Json(crate::inspect::config_dump(&res, &versions)).into_response()
}

async fn configz(State(api): State<Api>) -> Response {
    let snap = api.hub.snapshot();
    Json(json!({
        "snapshot": snap.version,
        "configDir": api.store.dir().display().to_string(),
        "resources": snap.resources.len(),
        "services": snap.registry.services.len(),
        "workloads": snap.registry.workloads.len(),
        "rejectedFiles": api.store.rejected(),
    }))
    .into_response()
}

async fn metrics(State(api): State<Api>) -> Response {
    let s = &api.hub.stats;
    let conns = api.hub.connections();
    let synced = conns.iter().filter(|c| c.synced()).count();
    let lines = [
        (
            "weft_control_snapshots_total",
            "counter",
            s.snapshots.load(Ordering::Relaxed),
        ),
        (
            "weft_control_xds_pushes_total",
            "counter",
            s.pushes.load(Ordering::Relaxed),
        ),
        (
            "weft_control_xds_resources_pushed_total",
            "counter",
            s.resources_pushed.load(Ordering::Relaxed),
        ),
        (
            "weft_control_xds_bytes_pushed_total",
            "counter",
            s.bytes_pushed.load(Ordering::Relaxed),
        ),
        (
            "weft_control_xds_acks_total",
            "counter",
            s.acks.load(Ordering::Relaxed),
        ),
        (
            "weft_control_xds_nacks_total",
            "counter",
            s.nacks.load(Ordering::Relaxed),
        ),
        (
            "weft_control_xds_connects_total",
            "counter",
            s.connects.load(Ordering::Relaxed),
        ),
        (
            "weft_control_last_convergence_milliseconds",
            "gauge",
            s.last_convergence_ms.load(Ordering::Relaxed),
        ),
        (
            "weft_control_connected_proxies",
            "gauge",
            conns.len() as u64,
        ),
        ("weft_control_synced_proxies", "gauge", synced as u64),
    ];
    let mut out = String::new();
    for (name, kind, value) in lines {
        out.push_str(&format!("# TYPE {name} {kind}\n{name} {value}\n"));
    }
    out.into_response()
}
