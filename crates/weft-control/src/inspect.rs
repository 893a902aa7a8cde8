//! What `weft proxy-config` and `weft proxy-status` show: Envoy admin `config_dump` JSON
//! built from generated resources, and the tables istioctl users know, read back from that
//! JSON. The tables read Envoy's own shape, so they work the same on the control plane's
//! view of a proxy (`/debug/config_dump?proxyID=`) and on a proxy's admin `/config_dump`
//! (weft's or a real Envoy's).

use crate::translate::ProxyResources;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use weft_xds::type_url;

/// `@type` of the admin config dump sections.
pub const CLUSTERS_DUMP: &str = "type.googleapis.com/envoy.admin.v3.ClustersConfigDump";
pub const LISTENERS_DUMP: &str = "type.googleapis.com/envoy.admin.v3.ListenersConfigDump";
pub const ROUTES_DUMP: &str = "type.googleapis.com/envoy.admin.v3.RoutesConfigDump";
pub const ENDPOINTS_DUMP: &str = "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump";

/// Short xDS names by type URL, in the order `proxy-status` prints them.
pub const SHORT_NAMES: [(&str, &str); 4] = [
    ("CDS", type_url::CLUSTER),
    ("LDS", type_url::LISTENER),
    ("EDS", type_url::CLUSTER_LOAD_ASSIGNMENT),
    ("RDS", type_url::ROUTE_CONFIGURATION),
];

/// A resource as protobuf JSON with its `@type` first, as Envoy's admin prints it.
fn typed(any: &envoy_types::pb::google::protobuf::Any) -> Value {
    let mut out = Map::new();
    out.insert("@type".to_owned(), Value::String(any.type_url.clone()));
    if let Value::Object(fields) = crate::json::any_to_json(any) {
        out.extend(fields);
    }
    Value::Object(out)
}

/// Envoy's admin `/config_dump` shape (`configs`: clusters, listeners, routes, endpoints
/// sections, dynamic resources only) for the resources generated for one proxy;
/// `versions` holds the version last sent per type URL.
pub fn config_dump(res: &ProxyResources, versions: &BTreeMap<String, String>) -> Value {
    let version = |t: &str| versions.get(t).cloned().unwrap_or_default();
    let of = |t: &str| res.of_type(t).into_values().map(|a| typed(&a));
    let clusters: Vec<Value> = of(type_url::CLUSTER)
        .map(|c| json!({ "version_info": version(type_url::CLUSTER), "cluster": c }))
        .collect();
    let listeners: Vec<Value> = of(type_url::LISTENER)
        .map(|l| {
            json!({
                "name": l["name"],
                "active_state": { "version_info": version(type_url::LISTENER), "listener": l },
            })
        })
        .collect();
    let routes: Vec<Value> = of(type_url::ROUTE_CONFIGURATION)
        .map(|r| {
            json!({ "version_info": version(type_url::ROUTE_CONFIGURATION), "route_config": r })
        })
        .collect();
    let endpoints: Vec<Value> = of(type_url::CLUSTER_LOAD_ASSIGNMENT)
        .map(|e| {
            json!({
                "version_info": version(type_url::CLUSTER_LOAD_ASSIGNMENT),
                "endpoint_config": e,
            })
        })
        .collect();
    json!({ "configs": [
        { "@type": CLUSTERS_DUMP, "dynamic_active_clusters": clusters },
        { "@type": LISTENERS_DUMP, "dynamic_listeners": listeners },
        { "@type": ROUTES_DUMP, "dynamic_route_configs": routes },
        { "@type": ENDPOINTS_DUMP, "dynamic_endpoint_configs": endpoints },
    ]})
}

/// The section of a config dump with this `@type`.
fn section<'a>(dump: &'a Value, ty: &str) -> Option<&'a Value> {
    dump["configs"]
        .as_array()?
        .iter()
        .find(|c| c["@type"] == ty)
}

/// Every item of `keys` arrays of a section, each unwrapped by `field`.
fn items<'a>(dump: &'a Value, ty: &str, keys: &[(&str, &[&str])]) -> Vec<&'a Value> {
    let Some(sec) = section(dump, ty) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, path) in keys {
        for item in sec[*key].as_array().into_iter().flatten() {
            let v = path.iter().fold(item, |v, p| &v[*p]);
            if !v.is_null() {
                out.push(v);
            }
        }
    }
    out
}

/// Clusters of a config dump (static and dynamic), as protobuf JSON.
pub fn clusters(dump: &Value) -> Vec<&Value> {
    items(
        dump,
        CLUSTERS_DUMP,
        &[
            ("static_clusters", &["cluster"]),
            ("dynamic_active_clusters", &["cluster"]),
            ("dynamic_warming_clusters", &["cluster"]),
        ],
    )
}

/// Listeners of a config dump (static and dynamic, active or warming).
pub fn listeners(dump: &Value) -> Vec<&Value> {
    let mut out = items(
        dump,
        LISTENERS_DUMP,
        &[
            ("static_listeners", &["listener"]),
            ("dynamic_listeners", &["active_state", "listener"]),
        ],
    );
    // A dynamic listener that is still warming has no active state yet.
    let warming = items(
        dump,
        LISTENERS_DUMP,
        &[("dynamic_listeners", &["warming_state", "listener"])],
    );
    for w in warming {
        if !out.iter().any(|l| l["name"] == w["name"]) {
            out.push(w);
        }
    }
    out
}

/// Route configurations of a config dump (static and dynamic).
pub fn routes(dump: &Value) -> Vec<&Value> {
    items(
        dump,
        ROUTES_DUMP,
        &[
            ("static_route_configs", &["route_config"]),
            ("dynamic_route_configs", &["route_config"]),
        ],
    )
}

/// Cluster load assignments of a config dump (`include_eds`), static and dynamic.
pub fn endpoint_configs(dump: &Value) -> Vec<&Value> {
    items(
        dump,
        ENDPOINTS_DUMP,
        &[
            ("static_endpoint_configs", &["endpoint_config"]),
            ("dynamic_endpoint_configs", &["endpoint_config"]),
        ],
    )
}

/// A table with a header row, printed with columns padded like istioctl's.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// The rows as text: columns separated by at least three spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let line = |cells: Vec<&str>| {
            let mut s = String::new();
            let last = cells.len().saturating_sub(1);
            for (i, c) in cells.iter().enumerate() {
                s.push_str(c);
                if i < last {
                    let pad = widths[i] - c.chars().count() + 3;
                    s.extend(std::iter::repeat_n(' ', pad));
                }
            }
            s.push('\n');
            s
        };
        let mut out = line(self.header.clone());
        for r in &self.rows {
            out.push_str(&line(r.iter().map(String::as_str).collect()));
        }
        out
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// `/apis/networking.istio.io/v1/namespaces/NS/destination-rule/NAME` → `NAME.NS`; other
/// kinds keep their kind (`http-route/NAME.NS`).
fn config_ref(meta: &Value) -> String {
    let path = str_of(&meta["filter_metadata"]["istio"]["config"]);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["apis", _, _, "namespaces", ns, kind, name] => match *kind {
            "destination-rule" | "virtual-service" => format!("{name}.{ns}"),
            other => format!("{other}/{name}.{ns}"),
        },
        _ => "-".to_owned(),
    }
}

/// `proxy-config clusters`: SERVICE FQDN, PORT, SUBSET, DIRECTION, TYPE, DESTINATION RULE.
pub fn cluster_table(dump: &Value) -> Table {
    let mut t = Table::new(&[
        "SERVICE FQDN",
        "PORT",
        "SUBSET",
        "DIRECTION",
        "TYPE",
        "DESTINATION RULE",
    ]);
    for c in clusters(dump) {
        let name = str_of(&c["name"]);
        let (fqdn, port, subset, dir) = match name.split('|').collect::<Vec<_>>().as_slice() {
            [dir @ ("outbound" | "inbound"), port, subset, host] => (
                (*host).to_owned(),
                (*port).to_owned(),
                (*subset).to_owned(),
                (*dir).to_owned(),
            ),
            _ => (name.to_owned(), "-".into(), "-".into(), "-".into()),
        };
        let ty = c["type"]
            .as_str()
            .unwrap_or(if c["cluster_type"].is_null() {
                "STATIC"
            } else {
                "CUSTOM"
            });
        let or_dash = |s: String| if s.is_empty() { "-".to_owned() } else { s };
        t.rows.push(vec![
            or_dash(fqdn),
            port,
            or_dash(subset),
            dir,
            ty.to_owned(),
            config_ref(&c["metadata"]),
        ]);
    }
    // Istio's named clusters first, then by host, port and subset (the plain one first).
    t.rows.sort_by(|a, b| {
        let key = |r: &Vec<String>| {
            (
                r[3] != "-",
                r[0].clone(),
                r[1].clone(),
                r[2] != "-",
                r[2].clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    t
}

fn socket(addr: &Value) -> (String, String) {
    let sa = &addr["socket_address"];
    (
        str_of(&sa["address"]).to_owned(),
        sa["port_value"]
            .as_u64()
            .map_or_else(|| "-".to_owned(), |p| p.to_string()),
    )
}

/// What a filter chain matches, in istioctl's words (`ALL` when nothing is required).
fn chain_match(m: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(names) = m["server_names"].as_array().filter(|a| !a.is_empty()) {
        let names: Vec<&str> = names.iter().map(str_of).collect();
        parts.push(format!("SNI: {}", names.join(",")));
    }
    if let Some(t) = m["transport_protocol"].as_str() {
        parts.push(format!("Trans: {t}"));
    }
    if let Some(apps) = m["application_protocols"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        let apps: Vec<&str> = apps.iter().map(str_of).collect();
        parts.push(format!("App: {}", apps.join(",")));
    }
    let ranges: Vec<String> = m["prefix_ranges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("{}/{}", str_of(&r["address_prefix"]), r["prefix_len"]))
        .collect();
    let port = m["destination_port"].as_u64();
    match (ranges.is_empty(), port) {
        (true, Some(p)) => parts.push(format!("Addr: *:{p}")),
        (false, p) => parts.push(format!(
            "Addr: {}{}",
            ranges.join(","),
            p.map(|p| format!(":{p}")).unwrap_or_default()
        )),
        (true, None) => {}
    }
    if parts.is_empty() {
        "ALL".to_owned()
    } else {
        parts.join("; ")
    }
}

/// Where a filter chain sends traffic: `Route: NAME` (RDS), `Inline Route: MATCH`,
/// `Cluster: NAME` (TCP), or the last filter's name.
fn chain_destination(chain: &Value) -> String {
    for f in chain["filters"].as_array().into_iter().flatten() {
        let cfg = &f["typed_config"];
        let ty = str_of(&cfg["@type"]);
        if ty.ends_with("HttpConnectionManager") {
            if let Some(name) = cfg["rds"]["route_config_name"].as_str() {
                return format!("Route: {name}");
            }
            let first = cfg["route_config"]["virtual_hosts"][0]["routes"][0].clone();
            let target = str_of(&first["route"]["cluster"]).to_owned();
            return format!("Inline Route: {} -> {target}", route_match(&first["match"]));
        }
        if ty.ends_with("TcpProxy") {
            if let Some(c) = cfg["cluster"].as_str() {
                return format!("Cluster: {c}");
            }
            let weighted: Vec<String> = cfg["weighted_clusters"]["clusters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|w| format!("{}({})", str_of(&w["name"]), w["weight"]))
                .collect();
            return format!("Clusters: {}", weighted.join(", "));
        }
    }
    chain["filters"]
        .as_array()
        .and_then(|f| f.last())
        .map_or("-".to_owned(), |f| str_of(&f["name"]).to_owned())
}

/// `proxy-config listeners`: ADDRESSES, PORT, MATCH, DESTINATION (one row per chain).
pub fn listener_table(dump: &Value) -> Table {
    let mut t = Table::new(&["ADDRESSES", "PORT", "MATCH", "DESTINATION"]);
    for l in listeners(dump) {
        let (addr, port) = socket(&l["address"]);
        let chains = l["filter_chains"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(l.get("default_filter_chain"));
        for chain in chains {
            t.rows.push(vec![
                addr.clone(),
                port.clone(),
                chain_match(&chain["filter_chain_match"]),
                chain_destination(chain),
            ]);
        }
    }
    t
}

/// A route's match in istioctl's words: `/*` for prefix `/`, `/p*`, the exact path or the
/// regex, then header and query conditions.
fn route_match(m: &Value) -> String {
    let mut s = if let Some(p) = m["prefix"].as_str() {
        format!("{p}*")
    } else if let Some(p) = m["path"].as_str() {
        p.to_owned()
    } else if let Some(p) = m["path_separated_prefix"].as_str() {
        format!("{p}/*")
    } else if let Some(r) = m["safe_regex"]["regex"].as_str() {
        r.to_owned()
    } else {
        "/*".to_owned()
    };
    let mut conds = Vec::new();
    for h in m["headers"].as_array().into_iter().flatten() {
        let name = str_of(&h["name"]);
        let sm = &h["string_match"];
        let value = if let Some(v) = sm["exact"].as_str() {
            format!("={v}")
        } else if let Some(v) = sm["prefix"].as_str() {
            format!("={v}*")
        } else if let Some(v) = sm["safe_regex"]["regex"].as_str() {
            format!("~{v}")
        } else {
            String::new()
        };
        let not = if h["invert_match"] == true { "!" } else { "" };
        conds.push(format!("{not}{name}{value}"));
    }
    for q in m["query_parameters"].as_array().into_iter().flatten() {
        let sm = &q["string_match"];
        let value = sm["exact"]
            .as_str()
            .map(|v| format!("={v}"))
            .or_else(|| sm["safe_regex"]["regex"].as_str().map(|v| format!("~{v}")))
            .unwrap_or_default();
        conds.push(format!("?{}{value}", str_of(&q["name"])));
    }
    if !conds.is_empty() {
        s.push_str(&format!(" [{}]", conds.join(" ")));
    }
    s
}

fn domains(vh: &Value) -> String {
    let all: Vec<&str> = vh["domains"]
        .as_array()
        .into_iter()
        .flatten()
        .map(str_of)
        .collect();
    match all.as_slice() {
        [] => "-".to_owned(),
        [a] => (*a).to_owned(),
        [a, b] => format!("{a}, {b}"),
        [a, b, rest @ ..] => format!("{a}, {b} + {} more...", rest.len()),
    }
}

/// `proxy-config routes`: NAME, VHOST NAME, DOMAINS, MATCH, VIRTUAL SERVICE (one row per
/// route of each virtual host).
pub fn route_table(dump: &Value) -> Table {
    let mut t = Table::new(&["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"]);
    for rc in routes(dump) {
        let name = str_of(&rc["name"]);
        for vh in rc["virtual_hosts"].as_array().into_iter().flatten() {
            let routes: Vec<&Value> = vh["routes"].as_array().into_iter().flatten().collect();
            if routes.is_empty() {
                t.rows.push(vec![
                    name.to_owned(),
                    str_of(&vh["name"]).to_owned(),
                    domains(vh),
                    "-".to_owned(),
                    "404".to_owned(),
                ]);
            }
            for r in routes {
                t.rows.push(vec![
                    name.to_owned(),
                    str_of(&vh["name"]).to_owned(),
                    domains(vh),
                    route_match(&r["match"]),
                    config_ref(&r["metadata"]),
                ]);
            }
        }
    }
    t
}

fn endpoint_header() -> Table {
    Table::new(&["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"])
}

/// `proxy-config endpoints` from load assignments (the control plane's view, or an admin
/// `config_dump?include_eds`): the outlier check is unknown there and shown as `-`.
/// Endpoints of non-EDS clusters (static, DNS) come from the clusters' own assignments.
pub fn endpoint_table_from_dump(dump: &Value) -> Table {
    let mut t = endpoint_rows_from_dump(dump);
    sort_endpoints(&mut t);
    t
}

/// By cluster, then address.
fn sort_endpoints(t: &mut Table) {
    t.rows.sort_by(|a, b| (&a[3], &a[0]).cmp(&(&b[3], &b[0])));
}

fn endpoint_rows_from_dump(dump: &Value) -> Table {
    let mut t = endpoint_header();
    let mut assignments: Vec<&Value> = endpoint_configs(dump);
    assignments.extend(
        clusters(dump)
            .into_iter()
            .map(|c| &c["load_assignment"])
            .filter(|la| !la.is_null()),
    );
    for cla in assignments {
        let cluster = str_of(&cla["cluster_name"]);
        for loc in cla["endpoints"].as_array().into_iter().flatten() {
            for lb in loc["lb_endpoints"].as_array().into_iter().flatten() {
                let (addr, port) = socket(&lb["endpoint"]["address"]);
                // Envoy treats an endpoint without health status as healthy.
                let status = lb["health_status"]
                    .as_str()
                    .filter(|s| *s != "UNKNOWN")
                    .unwrap_or("HEALTHY");
                t.rows.push(vec![
                    format!("{addr}:{port}"),
                    status.to_owned(),
                    "-".to_owned(),
                    cluster.to_owned(),
                ]);
            }
        }
    }
    t
}

/// `proxy-config endpoints` from a proxy's admin `/clusters?format=json` (Envoy's
/// `ClusterStatuses`): the health and outlier state the proxy itself sees.
pub fn endpoint_table_from_statuses(statuses: &Value) -> Table {
    let mut t = endpoint_header();
    for c in statuses["cluster_statuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let cluster = str_of(&c["name"]);
        for h in c["host_statuses"].as_array().into_iter().flatten() {
            let (addr, port) = socket(&h["address"]);
            let hs = &h["health_status"];
            let status = hs["eds_health_status"].as_str().unwrap_or("HEALTHY");
            let outlier = if hs["failed_outlier_check"] == true {
                "FAILED"
            } else {
                "OK"
            };
            t.rows.push(vec![
                format!("{addr}:{port}"),
                status.to_owned(),
                outlier.to_owned(),
                cluster.to_owned(),
            ]);
        }
    }
    sort_endpoints(&mut t);
    t
}

/// `proxy-status`: NAME, CLUSTER, CDS, LDS, EDS, RDS, CONTROL PLANE, VERSION from the
/// control plane's `/debug/proxy_status`; NACK errors are returned separately (one line
/// each) since they are too long for a column.
pub fn status_table(status: &Value) -> (Table, Vec<String>) {
    let mut t = Table::new(&[
        "NAME",
        "CLUSTER",
        "CDS",
        "LDS",
        "EDS",
        "RDS",
        "CONTROL PLANE",
        "VERSION",
    ]);
    let mut errors = Vec::new();
    let cp = str_of(&status["controlPlane"]).to_owned();
    for p in status["proxies"].as_array().into_iter().flatten() {
        let name = str_of(&p["name"]).to_owned();
        let mut row = vec![name.clone(), str_of(&p["cluster"]).to_owned()];
        for (short, _) in SHORT_NAMES {
            let s = &p["types"][short];
            let state = s["state"].as_str().unwrap_or("NOT SENT").to_owned();
            if let Some(e) = s["error"].as_str() {
                errors.push(format!("{name} {short} NACKED: {e}"));
            }
            row.push(state);
        }
        row.push(cp.clone());
        row.push(str_of(&p["agent"]).to_owned());
        t.rows.push(row);
    }
    (t, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_read_envoy_shaped_dumps() {
        let dump = json!({"configs": [
            {"@type": CLUSTERS_DUMP, "static_clusters": [{"cluster": {"name": "xds-grpc"}}],
             "dynamic_active_clusters": [{"cluster": {
                "name": "outbound|9080|v1|reviews.default.svc.cluster.local", "type": "EDS",
                "metadata": {"filter_metadata": {"istio": {"config":
                    "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews"}}}}}]},
            {"@type": LISTENERS_DUMP, "dynamic_listeners": [{"name": "virtualInbound", "active_state": {"listener": {
                "name": "virtualInbound",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15006}},
                "filter_chains": [{"filter_chain_match": {"destination_port": 9080}, "filters": [
                    {"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        "cluster": "inbound|9080||"}}]}],
                "default_filter_chain": {"filters": [{"name": "x", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "rds": {"route_config_name": "9080"}}}]}}}}]},
            {"@type": ROUTES_DUMP, "dynamic_route_configs": [{"route_config": {"name": "9080",
                "virtual_hosts": [{"name": "reviews:9080", "domains": ["reviews", "reviews:9080", "a", "b"],
                  "routes": [{"match": {"prefix": "/", "headers": [{"name": "end-user", "string_match": {"exact": "jason"}}]},
                    "metadata": {"filter_metadata": {"istio": {"config":
                      "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"}}}}]}]}}]},
        ]});
        let c = cluster_table(&dump);
        assert_eq!(c.rows[0], ["xds-grpc", "-", "-", "-", "STATIC", "-"]);
        assert_eq!(
            c.rows[1],
            [
                "reviews.default.svc.cluster.local",
                "9080",
                "v1",
                "outbound",
                "EDS",
                "reviews.default"
            ]
        );
        let l = listener_table(&dump);
        assert_eq!(
            l.rows,
            [
                [
                    "0.0.0.0",
                    "15006",
                    "Addr: *:9080",
                    "Cluster: inbound|9080||"
                ],
                ["0.0.0.0", "15006", "ALL", "Route: 9080"]
            ]
        );
        let r = route_table(&dump);
        assert_eq!(
            r.rows[0],
            [
                "9080",
                "reviews:9080",
                "reviews, reviews:9080 + 2 more...",
                "/* [end-user=jason]",
                "reviews.default"
            ]
        );
        let text = c.render();
        assert!(text.starts_with("SERVICE FQDN   "), "{text}");
    }
}
