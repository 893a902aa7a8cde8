//! Kubernetes core objects the mesh reads (Service, Endpoints, EndpointSlice, Pod,
//! Deployment): the API server's validation rules that matter to a mesh, Istio's port
//! naming convention, and the upgrade of old Deployment API versions to `apps/v1`.
//!
//! The objects are the `k8s-openapi` types; the loader decodes them and reports unknown
//! fields. Validation here walks the whole object from the document root, so findings
//! carry paths such as `spec.ports[1].name` or `subsets[0].addresses[0].ip`.

use crate::validate::{
    Ctx, check_labels, is_dns1123_label, is_dns1123_subdomain, label_key_problem,
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Container, EndpointPort, Endpoints, Pod, PodSpec, Service, ServicePort},
    discovery::v1::EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

// ---------------------------------------------------------------------------------------
// Istio protocols from port names
// ---------------------------------------------------------------------------------------

/// The application protocol Istio assigns to a port (`protocol.Instance` in Istio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// HTTP/1.1.
    Http,
    /// HTTP/2 (also `kubernetes.io/h2c`).
    Http2,
    /// gRPC (HTTP/2).
    Grpc,
    /// gRPC-Web (name prefix `grpc-web`).
    GrpcWeb,
    /// A generic outbound HTTP proxy port (Sidecar egress listeners).
    HttpProxy,
    /// Opaque TCP.
    Tcp,
    /// TLS with SNI, passed through.
    Tls,
    /// HTTPS (TLS, routed by SNI).
    Https,
    /// MongoDB.
    Mongo,
    /// Redis.
    Redis,
    /// MySQL.
    Mysql,
    /// UDP (not proxied).
    Udp,
    /// No recognised protocol: Istio sniffs the protocol on such ports.
    Unsupported,
}

impl Protocol {
    /// Parses a protocol name as Istio does (case-insensitive): `http`, `http2`, `grpc`,
    /// `grpc-web`, `http_proxy`, `https`, `tls`, `tcp`, `udp`, `mongo`, `redis`, `mysql`.
    pub fn parse(s: &str) -> Protocol {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "grpc" => Protocol::Grpc,
            "grpc-web" => Protocol::GrpcWeb,
            "http" => Protocol::Http,
            "http_proxy" => Protocol::HttpProxy,
            "http2" => Protocol::Http2,
            "https" => Protocol::Https,
            "tls" => Protocol::Tls,
            "mongo" => Protocol::Mongo,
            "redis" => Protocol::Redis,
            "mysql" => Protocol::Mysql,
            _ => Protocol::Unsupported,
        }
    }

    /// Istio's name for the protocol (`HTTP`, `GRPC-Web`, `UnsupportedProtocol`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Http2 => "HTTP2",
            Protocol::Grpc => "GRPC",
            Protocol::GrpcWeb => "GRPC-Web",
            Protocol::HttpProxy => "HTTP_PROXY",
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
            Protocol::Https => "HTTPS",
            Protocol::Mongo => "Mongo",
            Protocol::Redis => "Redis",
            Protocol::Mysql => "MySQL",
            Protocol::Udp => "UDP",
            Protocol::Unsupported => "UnsupportedProtocol",
        }
    }

    /// Protocols carried over HTTP (the proxy's HTTP connection manager handles them).
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http
                | Protocol::Http2
                | Protocol::HttpProxy
                | Protocol::Grpc
                | Protocol::GrpcWeb
        )
    }

    /// Protocols that use HTTP/2 as transport.
    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb)
    }

    /// Protocols proxied as TCP streams.
    pub fn is_tcp(self) -> bool {
        matches!(
            self,
            Protocol::Tcp
                | Protocol::Https
                | Protocol::Tls
                | Protocol::Mongo
                | Protocol::Redis
                | Protocol::Mysql
        )
    }

    /// Protocols on top of TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Tls)
    }

    /// gRPC and gRPC-Web.
    pub fn is_grpc(self) -> bool {
        matches!(self, Protocol::Grpc | Protocol::GrpcWeb)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ports Istio treats as TCP when their name says nothing (SMTP, DNS, MySQL, MongoDB):
/// sniffing would break these server-first protocols.
const WELL_KNOWN_TCP_PORTS: &[u16] = &[25, 53, 3306, 27017];

/// The protocol of a (TCP) Kubernetes port, as Istio derives it (`ConvertProtocol`).
///
/// `appProtocol` wins over the name: `kubernetes.io/h2c` is HTTP/2, `kubernetes.io/ws`
/// HTTP and `kubernetes.io/wss` HTTPS; otherwise the part before the first `-` is parsed
/// (`http-web` is HTTP, `grpc-web*` is gRPC-Web, `tcp` is TCP). Names that say nothing
/// are [`Protocol::Unsupported`] (sniffed), except on the well-known server-first ports
/// 25, 53, 3306 and 27017, which are TCP. A port with `protocol: UDP` is UDP whatever its
/// name; see [`service_port_protocol`].
pub fn protocol_from_port(name: &str, app_protocol: Option<&str>, port: u16) -> Protocol {
    let mut name = name;
    if let Some(ap) = app_protocol {
        match ap {
            "kubernetes.io/h2c" => return Protocol::Http2,
            "kubernetes.io/ws" => return Protocol::Http,
            "kubernetes.io/wss" => return Protocol::Https,
            _ => name = ap,
        }
    }
    if name.len() >= 8 && name[..8].eq_ignore_ascii_case("grpc-web") {
        return Protocol::GrpcWeb;
    }
    let prefix = name.split_once('-').map_or(name, |(p, _)| p);
    match Protocol::parse(prefix) {
        Protocol::Unsupported if WELL_KNOWN_TCP_PORTS.contains(&port) => Protocol::Tcp,
        p => p,
    }
}

/// The protocol of a Service port: UDP for `protocol: UDP`, else [`protocol_from_port`].
pub fn service_port_protocol(p: &ServicePort) -> Protocol {
    if p.protocol.as_deref() == Some("UDP") {
        return Protocol::Udp;
    }
    let port = u16::try_from(p.port).unwrap_or(0);
    protocol_from_port(
        p.name.as_deref().unwrap_or(""),
        p.app_protocol.as_deref(),
        port,
    )
}

// ---------------------------------------------------------------------------------------
// Deployment upgrades
// ---------------------------------------------------------------------------------------

/// The annotation the API server keeps an old `spec.rollbackTo.revision` in when it serves
/// such a Deployment as `apps/v1`.
pub const DEPRECATED_ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";

/// Rewrites a Deployment of `extensions/v1beta1` or `apps/v1beta1`/`v1beta2` into
/// `apps/v1`, keeping what the old version meant:
///
/// - `extensions/v1beta1` and `apps/v1beta1` defaulted `spec.selector` (and an empty
///   `metadata.labels`) to the pod template's labels; `apps/v1` requires a selector, so
///   it is written out. `apps/v1beta2` already required it.
/// - `spec.rollbackTo` was removed; like the API server, its revision is kept in the
///   `deprecated.deployment.rollback.to` annotation (validation warns about it).
/// - Their other defaults differed from `apps/v1` and are made explicit when unset:
///   `extensions/v1beta1` kept every old ReplicaSet and never timed out
///   (`revisionHistoryLimit` and `progressDeadlineSeconds` 2147483647) and rolled with
///   `maxSurge`/`maxUnavailable` 1; `apps/v1beta1` kept 2 old ReplicaSets.
///
/// Any other value is returned unchanged.
pub fn upgrade_deployment(value: &Value) -> Value {
    #[derive(PartialEq)]
    enum Old {
        Extensions,
        AppsV1beta1,
        AppsV1beta2,
    }
    let mut v = value.clone();
    let old = match v.get("apiVersion").and_then(Value::as_str) {
        Some("extensions/v1beta1") => Old::Extensions,
        Some("apps/v1beta1") => Old::AppsV1beta1,
        Some("apps/v1beta2") => Old::AppsV1beta2,
        _ => return v,
    };
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    obj.insert("apiVersion".into(), json!("apps/v1"));
    if old == Old::AppsV1beta2 {
        return v;
    }
    let template_labels = obj
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    let mut rollback_to = None;
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(labels) = &template_labels
            && spec.get("selector").is_none_or(Value::is_null)
        {
            spec.insert("selector".into(), json!({ "matchLabels": labels }));
        }
        if let Some(rb) = spec.remove("rollbackTo") {
            rollback_to = Some(rb.get("revision").and_then(Value::as_i64).unwrap_or(0));
        }
        let (history, deadline) = match old {
            Old::Extensions => (i64::from(i32::MAX), Some(i64::from(i32::MAX))),
            _ => (2, None),
        };
        spec.entry("revisionHistoryLimit").or_insert(json!(history));
        if let Some(d) = deadline {
            spec.entry("progressDeadlineSeconds").or_insert(json!(d));
        }
        if old == Old::Extensions {
            let strategy = spec.entry("strategy").or_insert(json!({}));
            if let Some(s) = strategy.as_object_mut() {
                let ty = s
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("RollingUpdate")
                    .to_string();
                if ty == "RollingUpdate" || s.contains_key("rollingUpdate") {
                    let ru = s.entry("rollingUpdate").or_insert(json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        ru.entry("maxUnavailable").or_insert(json!(1));
                        ru.entry("maxSurge").or_insert(json!(1));
                    }
                }
            }
        }
    }
    let meta = obj.entry("metadata").or_insert(json!({}));
    if let Some(meta) = meta.as_object_mut() {
        if let Some(labels) = template_labels
            && meta
                .get("labels")
                .is_none_or(|l| l.as_object().is_none_or(|m| m.is_empty()))
        {
            meta.insert("labels".into(), labels);
        }
        if let Some(rev) = rollback_to {
            let ann = meta.entry("annotations").or_insert(json!({}));
            if let Some(ann) = ann.as_object_mut() {
                ann.insert(DEPRECATED_ROLLBACK_TO.into(), json!(rev.to_string()));
            }
        }
    }
    v
}

/// Rewrites a `discovery.k8s.io/v1beta1` EndpointSlice into `discovery.k8s.io/v1`, as
/// the API server converts it: each endpoint's `topology` becomes `deprecatedTopology`,
/// minus the zone label (moved to `zone`) and the hostname label when it equals
/// `nodeName`. Any other value is returned unchanged.
///
/// The loader reads v1beta1 EndpointSlices with a deprecation warning; it must pass them
/// through this function before decoding, as it does Deployments with
/// [`upgrade_deployment`].
pub fn upgrade_endpoint_slice(value: &Value) -> Value {
    const ZONE: &str = "topology.kubernetes.io/zone";
    const HOSTNAME: &str = "kubernetes.io/hostname";
    let mut v = value.clone();
    if v.get("apiVersion").and_then(Value::as_str) != Some("discovery.k8s.io/v1beta1") {
        return v;
    }
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    obj.insert("apiVersion".into(), json!("discovery.k8s.io/v1"));
    let Some(endpoints) = obj.get_mut("endpoints").and_then(Value::as_array_mut) else {
        return v;
    };
    for e in endpoints.iter_mut().filter_map(Value::as_object_mut) {
        let Some(topology) = e.remove("topology") else {
            continue;
        };
        let Some(mut topology) = topology.as_object().cloned() else {
            continue;
        };
        if let Some(zone) = topology.remove(ZONE) {
            e.insert("zone".into(), zone);
        }
        if topology.get(HOSTNAME).is_some() && topology.get(HOSTNAME) == e.get("nodeName") {
            topology.remove(HOSTNAME);
        }
        if !topology.is_empty() {
            e.insert("deprecatedTopology".into(), Value::Object(topology));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// Shared checks
// ---------------------------------------------------------------------------------------

const PORT_PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

/// Namespaces `istioctl analyze` leaves alone.
const SYSTEM_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

fn check_port_number(cx: &mut Ctx, name: &str, port: i32) {
    if !(1..=65535).contains(&port) {
        cx.error_at(
            name,
            format!("port {port} is out of range: a port must be between 1 and 65535"),
        );
    }
}

fn check_protocol(cx: &mut Ctx, protocol: Option<&str>) {
    if let Some(p) = protocol
        && !PORT_PROTOCOLS.contains(&p)
    {
        let mut msg = format!("protocol `{p}` is not supported: use TCP, UDP or SCTP");
        if PORT_PROTOCOLS.contains(&p.to_ascii_uppercase().as_str()) {
            msg.push_str(&format!(" (upper case: `{}`)", p.to_ascii_uppercase()));
        } else if crate::kube::Protocol::parse(p) != Protocol::Unsupported {
            msg.push_str(
                "; the application protocol goes in the port name (`http-web`) or `appProtocol`, not in `protocol`",
            );
        }
        cx.error_at("protocol", msg);
    }
}

/// Why `name` is not an IANA service name (`IsValidPortName`): at most 15 lower-case
/// letters, digits and `-`, with a letter, no `--`, not starting or ending with `-`.
pub fn port_name_problem(name: &str) -> Option<String> {
    let prefix = format!("port name `{name}` is invalid: ");
    if name.is_empty() || name.len() > 15 {
        return Some(prefix + "it must be 1 to 15 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some(prefix + "it may contain only lower-case letters, digits and '-'");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        return Some(prefix + "it must contain at least one letter");
    }
    if name.contains("--") {
        return Some(prefix + "it must not contain '--'");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some(prefix + "it must not start or end with '-'");
    }
    None
}

fn check_app_protocol(cx: &mut Ctx, app: Option<&str>) {
    if let Some(a) = app
        && let Some(p) = label_key_problem(a)
    {
        cx.error_at(
            "appProtocol",
            format!(
                "appProtocol `{a}` is invalid: {}",
                p.split_once(": ").map_or(p.as_str(), |(_, m)| m)
            ),
        );
    }
}

fn check_dns_label(cx: &mut Ctx, field: &str, v: &str, what: &str) {
    if !is_dns1123_label(v) {
        cx.error_at(
            field,
            format!("{what} `{v}` is invalid: it must be a DNS label (lower-case letters, digits and '-', at most 63 characters)"),
        );
    }
}

fn check_enum(cx: &mut Ctx, field: &str, v: Option<&str>, allowed: &[&str]) {
    if let Some(v) = v
        && !allowed.contains(&v)
    {
        let mut msg = format!(
            "`{v}` is not a valid value (valid values: {})",
            allowed.join(", ")
        );
        if let Some(s) = crate::validate::suggest(v, allowed.iter().copied()) {
            msg = format!(
                "`{v}` is not a valid value: did you mean `{s}`? (valid values: {})",
                allowed.join(", ")
            );
        }
        cx.error_at(field, msg);
    }
}

/// Rejects addresses the API server refuses for endpoints (`ValidateNonSpecialIP`).
/// Loopback is only a warning: weft's local mode gives workloads 127.0.x.y addresses.
fn check_endpoint_ip(cx: &mut Ctx, ip: &str, family: Option<&str>) {
    let addr = match ip.parse::<IpAddr>() {
        Ok(a) => a,
        Err(_) => {
            let what = family.map_or("an IP address".to_string(), |f| format!("an {f} address"));
            cx.error(format!("`{ip}` is not {what}"));
            return;
        }
    };
    match (family, addr) {
        (Some("IPv4"), IpAddr::V6(_)) => return cx.error(format!("`{ip}` is not an IPv4 address")),
        (Some("IPv6"), IpAddr::V4(_)) => return cx.error(format!("`{ip}` is not an IPv6 address")),
        _ => {}
    }
    let (unspecified, loopback, link_local, ll_multicast) = match addr {
        IpAddr::V4(a) => (
            a.is_unspecified(),
            a.is_loopback(),
            a.is_link_local(),
            a.octets()[..3] == [224, 0, 0],
        ),
        IpAddr::V6(a) => (
            a.is_unspecified(),
            a.is_loopback(),
            (a.segments()[0] & 0xffc0) == 0xfe80,
            (a.segments()[0] & 0xff0f) == 0xff02,
        ),
    };
    if unspecified {
        cx.error(format!(
            "`{ip}` is the unspecified address: an endpoint needs a real address"
        ));
    } else if link_local || ll_multicast {
        cx.error(format!(
            "`{ip}` is a link-local address: Kubernetes does not accept it for endpoints"
        ));
    } else if loopback {
        cx.warn(format!(
            "`{ip}` is a loopback address: the Kubernetes API server rejects it (weft accepts it in local mode)"
        ));
    }
}

fn labels_of(m: &Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    m.clone().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------

const SERVICE_TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

/// Validates a Service: ports, selector, type and the fields that depend on it, and Istio's
/// port naming convention (`istioctl analyze` IST0118 and IST0150).
pub fn validate_service(s: &Service, cx: &mut Ctx) {
    cx.at_root(|cx| {
        let Some(spec) = &s.spec else {
            cx.error_at("spec", "`spec` is required: a Service needs ports and a selector");
            return;
        };
        cx.field("spec", |cx| {
            let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
            check_enum(cx, "type", spec.type_.as_deref(), SERVICE_TYPES);
            let headless = spec.cluster_ip.as_deref() == Some("None");
            let ports = spec.ports.as_deref().unwrap_or(&[]);
            if ports.is_empty() && !headless && ty != "ExternalName" {
                cx.error_at("ports", "`ports` is required: a Service needs at least one port (or `clusterIP: None` for a headless Service)");
            }
            validate_service_ports(cx, ports, ty);
            if let Some(sel) = &spec.selector {
                cx.field("selector", |cx| check_labels(cx, sel));
            }
            if ty == "ExternalName" {
                match spec.external_name.as_deref() {
                    None | Some("") => cx.error_at("externalName", "`externalName` is required for type ExternalName: give the DNS name to alias"),
                    Some(n) => {
                        if !is_dns1123_subdomain(n.strip_suffix('.').unwrap_or(n)) {
                            cx.error_at("externalName", format!("externalName `{n}` is not a valid DNS name"));
                        }
                    }
                }
            }
            if let Some(ip) = spec.cluster_ip.as_deref()
                && !ip.is_empty()
                && ip != "None"
                && ip.parse::<IpAddr>().is_err()
            {
                cx.error_at("clusterIP", format!("clusterIP `{ip}` must be empty, `None` or an IP address"));
            }
            check_enum(cx, "sessionAffinity", spec.session_affinity.as_deref(), &["None", "ClientIP"]);
            check_enum(cx, "externalTrafficPolicy", spec.external_traffic_policy.as_deref(), &["Cluster", "Local"]);
            if spec.external_traffic_policy.is_some() && !matches!(ty, "NodePort" | "LoadBalancer") {
                cx.error_at(
                    "externalTrafficPolicy",
                    format!("`externalTrafficPolicy` may only be set when type is NodePort or LoadBalancer (type is {ty})"),
                );
            }
            check_enum(cx, "internalTrafficPolicy", spec.internal_traffic_policy.as_deref(), &["Cluster", "Local"]);
            check_enum(
                cx,
                "ipFamilyPolicy",
                spec.ip_family_policy.as_deref(),
                &["SingleStack", "PreferDualStack", "RequireDualStack"],
            );
            if let Some(fams) = &spec.ip_families {
                if fams.len() > 2 {
                    cx.error_at("ipFamilies", "`ipFamilies` may list at most two families");
                }
                cx.field("ipFamilies", |cx| {
                    for (i, f) in fams.iter().enumerate() {
                        cx.index(i, |cx| {
                            if !matches!(f.as_str(), "IPv4" | "IPv6") {
                                cx.error(format!("`{f}` is not a valid value (valid values: IPv4, IPv6)"));
                            }
                        });
                    }
                });
            }
            if !SYSTEM_NAMESPACES.contains(&cx.namespace.as_str()) {
                check_istio_port_names(cx, ports, ty);
            }
        });
    });
}

fn validate_service_ports(cx: &mut Ctx, ports: &[ServicePort], ty: &str) {
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut port_protos: BTreeMap<(i32, String), usize> = BTreeMap::new();
    cx.each("ports", ports, |cx, i, p| {
        match p.name.as_deref().filter(|n| !n.is_empty()) {
            None if ports.len() > 1 => cx.error_at("name", "`name` is required when a Service has more than one port"),
            None => {}
            Some(n) => {
                check_dns_label(cx, "name", n, "port name");
                if let Some(first) = names.get(n) {
                    cx.error_at("name", format!("port name `{n}` is already used by ports[{first}]: names must be unique"));
                } else {
                    names.insert(n.to_string(), i);
                }
            }
        }
        check_port_number(cx, "port", p.port);
        check_protocol(cx, p.protocol.as_deref());
        let proto = p.protocol.as_deref().unwrap_or("TCP");
        if let Some(first) = port_protos.get(&(p.port, proto.to_string())) {
            cx.error_at("port", format!("port {} ({proto}) is already defined by ports[{first}]", p.port));
        } else {
            port_protos.insert((p.port, proto.to_string()), i);
        }
        match &p.target_port {
            // 0 and "" mean "same as `port`" (the API server defaults them).
            Some(IntOrString::Int(t)) if !(0..=65535).contains(t) => cx.error_at(
                "targetPort",
                format!("targetPort {t} is out of range: it must be between 1 and 65535, or a container port name"),
            ),
            Some(IntOrString::String(n)) if !n.is_empty() => {
                if let Some(problem) = port_name_problem(n) {
                    cx.error_at("targetPort", problem);
                }
            }
            _ => {}
        }
        if let Some(np) = p.node_port {
            if !matches!(ty, "NodePort" | "LoadBalancer") {
                cx.error_at("nodePort", format!("`nodePort` may only be used when type is NodePort or LoadBalancer (type is {ty})"));
            } else {
                check_port_number(cx, "nodePort", np);
            }
        }
        check_app_protocol(cx, p.app_protocol.as_deref());
    });
}

/// Istio's naming convention: `<protocol>[-<suffix>]` or `appProtocol`.
fn check_istio_port_names(cx: &mut Ctx, ports: &[ServicePort], ty: &str) {
    cx.each("ports", ports, |cx, _, p| {
        let proto = service_port_protocol(p);
        let name = p.name.as_deref().unwrap_or("");
        if ty == "ExternalName" && (proto == Protocol::Unsupported || name == "tcp") {
            cx.warn_at(
                "name",
                format!(
                    "port name `{name}` on an ExternalName Service does not name its protocol (or is plain `tcp`): TCP traffic to it may not be forwarded correctly; name it after the protocol, e.g. `https` or `tls` [IST0150]"
                ),
            );
        } else if proto == Protocol::Unsupported {
            let target = match &p.target_port {
                Some(IntOrString::Int(t)) if *t != 0 => t.to_string(),
                Some(IntOrString::String(s)) if !s.is_empty() => s.clone(),
                _ => p.port.to_string(),
            };
            let field = if p.app_protocol.is_some() { "appProtocol" } else { "name" };
            let what = match (&p.app_protocol, name) {
                (Some(a), _) => format!("appProtocol `{a}`"),
                (None, "") => "an unnamed port".to_string(),
                (None, n) => format!("port name `{n}`"),
            };
            cx.field(field, |cx| {
                cx.info(format!(
                    "{what} (port {}, targetPort {target}) does not follow Istio's port naming convention: name the port `<protocol>[-<suffix>]` (e.g. `http-web`, `grpc`, `tcp-db`) or set `appProtocol`; until then the protocol is sniffed [IST0118]",
                    p.port
                ))
            });
        }
    });
}

// ---------------------------------------------------------------------------------------
// Pod and Deployment
// ---------------------------------------------------------------------------------------

/// Validates a Pod: containers (required, unique DNS-label names, an image, valid ports)
/// and the restart policy.
pub fn validate_pod(s: &Pod, cx: &mut Ctx) {
    cx.at_root(|cx| match &s.spec {
        None => cx.error_at("spec", "`spec` is required: a Pod needs containers"),
        Some(spec) => cx.field("spec", |cx| validate_pod_spec(cx, spec, false)),
    });
}

fn validate_pod_spec(cx: &mut Ctx, spec: &PodSpec, in_template: bool) {
    if spec.containers.is_empty() {
        cx.error_at(
            "containers",
            "`containers` is required: a pod needs at least one container",
        );
    }
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let init = spec.init_containers.as_deref().unwrap_or(&[]);
    for (list, containers) in [
        ("initContainers", init),
        ("containers", spec.containers.as_slice()),
    ] {
        cx.each(list, containers, |cx, i, c| {
            validate_container(cx, c);
            if !c.name.is_empty() {
                if let Some(first) = names.get(&c.name) {
                    cx.error_at("name", format!("container name `{}` is already used by {first}: names must be unique in a pod", c.name));
                } else {
                    names.insert(c.name.clone(), format!("{list}[{i}]"));
                }
            }
        });
    }
    let allowed: &[&str] = if in_template {
        &["Always"]
    } else {
        &["Always", "OnFailure", "Never"]
    };
    if let Some(rp) = spec.restart_policy.as_deref()
        && !allowed.contains(&rp)
    {
        let msg = if in_template && ["OnFailure", "Never"].contains(&rp) {
            format!("restartPolicy `{rp}` is not allowed in a Deployment: its pods must use Always")
        } else {
            format!(
                "`{rp}` is not a valid value (valid values: {})",
                allowed.join(", ")
            )
        };
        cx.error_at("restartPolicy", msg);
    }
    if in_template && spec.active_deadline_seconds.is_some() {
        cx.error_at(
            "activeDeadlineSeconds",
            "`activeDeadlineSeconds` is not supported in a Deployment's pod template",
        );
    }
}

fn validate_container(cx: &mut Ctx, c: &Container) {
    if c.name.is_empty() {
        cx.require("name", false);
    } else {
        check_dns_label(cx, "name", &c.name, "container name");
    }
    if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        cx.error_at(
            "image",
            "`image` is required: name the container image to run",
        );
    }
    let ports = c.ports.as_deref().unwrap_or(&[]);
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    cx.each("ports", ports, |cx, i, p| {
        check_port_number(cx, "containerPort", p.container_port);
        if let Some(hp) = p.host_port
            && hp != 0
        {
            check_port_number(cx, "hostPort", hp);
        }
        if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
            if let Some(problem) = port_name_problem(n) {
                cx.error_at("name", problem);
            } else if let Some(first) = names.get(n) {
                cx.error_at(
                    "name",
                    format!("port name `{n}` is already used by ports[{first}] of this container"),
                );
            } else {
                names.insert(n.to_string(), i);
            }
        }
        check_protocol(cx, p.protocol.as_deref());
        if let Some(ip) = p.host_ip.as_deref().filter(|ip| !ip.is_empty())
            && ip.parse::<IpAddr>().is_err()
        {
            cx.error_at("hostIP", format!("`{ip}` is not an IP address"));
        }
    });
}

const SELECTOR_OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];

fn validate_label_selector(cx: &mut Ctx, sel: &LabelSelector) {
    if let Some(ml) = &sel.match_labels {
        cx.field("matchLabels", |cx| check_labels(cx, ml));
    }
    let exprs = sel.match_expressions.as_deref().unwrap_or(&[]);
    cx.each("matchExpressions", exprs, |cx, _, e| {
        if e.key.is_empty() {
            cx.require("key", false);
        } else if let Some(p) = label_key_problem(&e.key) {
            cx.error_at("key", p);
        }
        let n = e.values.as_ref().map_or(0, Vec::len);
        match e.operator.as_str() {
            "In" | "NotIn" if n == 0 => cx.error_at(
                "values",
                format!("operator {} needs at least one value", e.operator),
            ),
            "Exists" | "DoesNotExist" if n > 0 => {
                cx.error_at("values", format!("operator {} takes no values", e.operator))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            "" => cx.require("operator", false),
            op => check_enum(cx, "operator", Some(op), SELECTOR_OPERATORS),
        }
    });
}

/// True when `labels` satisfy a Kubernetes label selector (an empty selector matches all).
pub fn label_selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let ml = sel.match_labels.clone().unwrap_or_default();
    crate::common::selector_matches(&ml, labels)
        && sel
            .match_expressions
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .all(|e| {
                let v = labels.get(&e.key);
                let values = e.values.as_deref().unwrap_or(&[]);
                match e.operator.as_str() {
                    "In" => v.is_some_and(|v| values.contains(v)),
                    "NotIn" => v.is_none_or(|v| !values.contains(v)),
                    "Exists" => v.is_some(),
                    "DoesNotExist" => v.is_none(),
                    _ => false,
                }
            })
}

fn int_or_percent_problem(v: &IntOrString) -> Option<(i64, bool, String)> {
    match v {
        IntOrString::Int(i) => Some((i64::from(*i), false, i.to_string())),
        IntOrString::String(s) => {
            let n = s.strip_suffix('%')?.parse::<i64>().ok()?;
            Some((n, true, s.clone()))
        }
    }
}

/// Validates a Deployment: a selector that selects the pod template's labels, counts that
/// are not negative, the rollout strategy, and the pod template.
pub fn validate_deployment(s: &Deployment, cx: &mut Ctx) {
    cx.at_root(|cx| {
        if let Some(rev) = s
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DEPRECATED_ROLLBACK_TO))
        {
            cx.field("spec", |cx| {
                cx.warn_at(
                    "rollbackTo",
                    format!(
                    "`spec.rollbackTo` (revision {rev}) was removed in apps/v1 and is ignored: roll back with `kubectl rollout undo` instead"
                    ),
                )
            });
        }
        let Some(spec) = &s.spec else {
            cx.error_at("spec", "`spec` is required: a Deployment needs a selector and a pod template");
            return;
        };
        cx.field("spec", |cx| {
            for (name, v) in [
                ("replicas", spec.replicas),
                ("minReadySeconds", spec.min_ready_seconds),
                ("revisionHistoryLimit", spec.revision_history_limit),
                ("progressDeadlineSeconds", spec.progress_deadline_seconds),
            ] {
                if let Some(v) = v
                    && v < 0
                {
                    cx.error_at(name, format!("{name} {v} is negative: it must be 0 or more"));
                }
            }
            if let (Some(pd), min) = (spec.progress_deadline_seconds, spec.min_ready_seconds.unwrap_or(0))
                && pd >= 0
                && pd <= min
            {
                cx.error_at(
                    "progressDeadlineSeconds",
                    format!("progressDeadlineSeconds {pd} must be greater than minReadySeconds {min}"),
                );
            }
            let sel = &spec.selector;
            let empty = sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
                && sel.match_expressions.as_ref().is_none_or(Vec::is_empty);
            if empty {
                cx.error_at(
                    "selector",
                    "`selector` is required: it must select the pod template's labels (an empty selector is not allowed)",
                );
            } else {
                cx.field("selector", |cx| validate_label_selector(cx, sel));
            }
            cx.field("template", |cx| {
                let labels = labels_of(&spec.template.metadata.as_ref().and_then(|m| m.labels.clone()));
                if let Some(m) = &spec.template.metadata
                    && let Some(l) = &m.labels
                {
                    cx.field("metadata", |cx| cx.field("labels", |cx| check_labels(cx, l)));
                }
                if !empty && !label_selector_matches(sel, &labels) {
                    let shown = if labels.is_empty() {
                        "no labels".to_string()
                    } else {
                        labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
                    };
                    cx.field("metadata", |cx| {
                        cx.error_at(
                            "labels",
                            format!("`selector` does not match template `labels`: the pod template has {shown}, which the Deployment's selector does not select"),
                        )
                    });
                }
                match &spec.template.spec {
                    None => cx.error_at("spec", "`spec` is required: the pod template needs containers"),
                    Some(ps) => cx.field("spec", |cx| validate_pod_spec(cx, ps, true)),
                }
            });
            if let Some(st) = &spec.strategy {
                cx.field("strategy", |cx| {
                    let ty = st.type_.as_deref().unwrap_or("RollingUpdate");
                    check_enum(cx, "type", st.type_.as_deref(), &["Recreate", "RollingUpdate"]);
                    if ty == "Recreate" && st.rolling_update.is_some() {
                        cx.error_at("rollingUpdate", "`rollingUpdate` may not be set when strategy type is Recreate");
                    }
                    if let Some(ru) = &st.rolling_update {
                        cx.field("rollingUpdate", |cx| {
                            let mut zero = 0;
                            for (name, v) in [("maxUnavailable", &ru.max_unavailable), ("maxSurge", &ru.max_surge)] {
                                let Some(v) = v else { continue };
                                match int_or_percent_problem(v) {
                                    None => cx.error_at(name, format!("{name} must be a number or a percentage such as 25%")),
                                    Some((n, _, shown)) if n < 0 => {
                                        cx.error_at(name, format!("{name} {shown} is negative: it must be 0 or more"))
                                    }
                                    Some((n, true, shown)) if n > 100 && name == "maxUnavailable" => {
                                        cx.error_at(name, format!("{name} {shown} is more than 100%"))
                                    }
                                    Some((0, _, _)) => zero += 1,
                                    Some(_) => {}
                                }
                            }
                            if zero == 2 {
                                cx.error_at("maxUnavailable", "maxUnavailable may not be 0 when maxSurge is 0: the rollout could never progress");
                            }
                        });
                    }
                });
            }
        });
    });
}

// ---------------------------------------------------------------------------------------
// Endpoints and EndpointSlice
// ---------------------------------------------------------------------------------------

fn validate_endpoint_ports(cx: &mut Ctx, ports: &[EndpointPort]) {
    cx.each("ports", ports, |cx, _, p| {
        match p.name.as_deref().filter(|n| !n.is_empty()) {
            None if ports.len() > 1 => cx.error_at(
                "name",
                "`name` is required when there is more than one port",
            ),
            None => {}
            Some(n) => check_dns_label(cx, "name", n, "port name"),
        }
        check_port_number(cx, "port", p.port);
        check_protocol(cx, p.protocol.as_deref());
        check_app_protocol(cx, p.app_protocol.as_deref());
    });
}

/// Validates Endpoints: every subset has addresses, each a usable IP, and valid ports.
pub fn validate_endpoints(s: &Endpoints, cx: &mut Ctx) {
    cx.at_root(|cx| {
        let subsets = s.subsets.as_deref().unwrap_or(&[]);
        cx.each("subsets", subsets, |cx, _, ss| {
            let ready = ss.addresses.as_deref().unwrap_or(&[]);
            let not_ready = ss.not_ready_addresses.as_deref().unwrap_or(&[]);
            if ready.is_empty() && not_ready.is_empty() {
                cx.error("a subset must have `addresses` or `notReadyAddresses`");
            }
            for (list, addrs) in [("addresses", ready), ("notReadyAddresses", not_ready)] {
                cx.each(list, addrs, |cx, _, a| {
                    cx.field("ip", |cx| check_endpoint_ip(cx, &a.ip, None));
                    if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
                        check_dns_label(cx, "hostname", h, "hostname");
                    }
                    if let Some(n) = a.node_name.as_deref().filter(|n| !is_dns1123_subdomain(n)) {
                        cx.error_at(
                            "nodeName",
                            format!("nodeName `{n}` is not a valid node name"),
                        );
                    }
                });
            }
            validate_endpoint_ports(cx, ss.ports.as_deref().unwrap_or(&[]));
        });
    });
}

/// Validates an EndpointSlice: address type, endpoints (1 to 100 addresses of that type),
/// and ports (unique names, supported protocols).
pub fn validate_endpoint_slice(s: &EndpointSlice, cx: &mut Ctx) {
    cx.at_root(|cx| {
        let ty = s.address_type.as_str();
        match ty {
            "IPv4" | "IPv6" | "FQDN" => {}
            "" => cx.require("addressType", false),
            "IP" => cx.error_at("addressType", "addressType IP is deprecated and cannot be used for new EndpointSlices: use IPv4 or IPv6"),
            other => check_enum(cx, "addressType", Some(other), &["IPv4", "IPv6", "FQDN"]),
        }
        if s.endpoints.len() > 1000 {
            cx.error_at("endpoints", format!("`endpoints` has {} entries; at most 1000 are allowed", s.endpoints.len()));
        }
        cx.each("endpoints", &s.endpoints, |cx, _, e| {
            if e.addresses.is_empty() {
                cx.error_at("addresses", "`addresses` must contain at least one address");
            } else if e.addresses.len() > 100 {
                cx.error_at("addresses", format!("`addresses` has {} entries; at most 100 are allowed", e.addresses.len()));
            }
            cx.field("addresses", |cx| {
                for (i, a) in e.addresses.iter().enumerate() {
                    cx.index(i, |cx| match ty {
                        "IPv4" | "IPv6" => check_endpoint_ip(cx, a, Some(ty)),
                        "FQDN" if !(is_dns1123_subdomain(a) && a.contains('.')) => {
                            cx.error(format!("`{a}` is not a fully qualified domain name"));
                        }
                        _ => {}
                    });
                }
            });
            if let Some(h) = e.hostname.as_deref() {
                check_dns_label(cx, "hostname", h, "hostname");
            }
            if let Some(t) = &e.deprecated_topology {
                if t.len() > 16 {
                    cx.error_at("deprecatedTopology", format!("`deprecatedTopology` has {} entries; at most 16 are allowed", t.len()));
                }
                cx.field("deprecatedTopology", |cx| check_labels(cx, t));
            }
        });
        let ports = s.ports.as_deref().unwrap_or(&[]);
        if ports.len() > 100 {
            cx.error_at("ports", format!("`ports` has {} entries; at most 100 are allowed", ports.len()));
        }
        let mut names: BTreeSet<String> = BTreeSet::new();
        cx.each("ports", ports, |cx, _, p| {
            let name = p.name.as_deref().unwrap_or("");
            if !name.is_empty() {
                check_dns_label(cx, "name", name, "port name");
            }
            if !names.insert(name.to_string()) {
                cx.error_at("name", format!("port name `{name}` is repeated: names must be unique"));
            }
            if let Some(port) = p.port
                && !(0..=65535).contains(&port)
            {
                check_port_number(cx, "port", port);
            }
            check_protocol(cx, p.protocol.as_deref());
            check_app_protocol(cx, p.app_protocol.as_deref());
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_from_port_names() {
        let p = |n: &str, a: Option<&str>, port: u16| protocol_from_port(n, a, port);
        assert_eq!(p("http", None, 9080), Protocol::Http);
        assert_eq!(p("http-web", None, 80), Protocol::Http);
        assert_eq!(p("HTTP2", None, 80), Protocol::Http2);
        assert_eq!(p("grpc", None, 80), Protocol::Grpc);
        assert_eq!(p("grpc-web", None, 80), Protocol::GrpcWeb);
        assert_eq!(p("grpc-webapp", None, 80), Protocol::GrpcWeb);
        assert_eq!(p("grpc-api", None, 80), Protocol::Grpc);
        assert_eq!(p("tcp-db", None, 5432), Protocol::Tcp);
        assert_eq!(p("tls", None, 443), Protocol::Tls);
        assert_eq!(p("https-admin", None, 443), Protocol::Https);
        assert_eq!(p("mongo", None, 1), Protocol::Mongo);
        assert_eq!(p("redis", None, 6379), Protocol::Redis);
        assert_eq!(p("mysql", None, 1), Protocol::Mysql);
        assert_eq!(p("udp-dns", None, 53), Protocol::Udp);
        assert_eq!(p("web", None, 8080), Protocol::Unsupported);
        assert_eq!(p("", None, 8080), Protocol::Unsupported);
        assert_eq!(p("db", None, 3306), Protocol::Tcp);
        assert_eq!(p("dns", None, 53), Protocol::Tcp);
        assert_eq!(p("web", Some("http"), 8080), Protocol::Http);
        assert_eq!(p("http", Some("kubernetes.io/h2c"), 8080), Protocol::Http2);
        assert_eq!(p("web", Some("kubernetes.io/ws"), 8080), Protocol::Http);
        assert_eq!(p("web", Some("kubernetes.io/wss"), 8080), Protocol::Https);
        assert_eq!(p("http", Some("foo.com/bar"), 8080), Protocol::Unsupported);
    }

    #[test]
    fn port_names() {
        assert_eq!(port_name_problem("http"), None);
        assert_eq!(port_name_problem("http-metrics"), None);
        assert!(port_name_problem("HTTP").is_some());
        assert!(port_name_problem("1234").is_some());
        assert!(port_name_problem("a--b").is_some());
        assert!(port_name_problem("-a").is_some());
        assert!(port_name_problem("very-long-port-name").is_some());
    }

    #[test]
    fn upgrades_v1beta1_endpoint_slices() {
        let v = json!({
            "apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "nodeName": "node-1",
                "topology": {"kubernetes.io/hostname": "node-1", "topology.kubernetes.io/zone": "z1", "rack": "r1"}}]
        });
        let u = upgrade_endpoint_slice(&v);
        assert_eq!(u["apiVersion"], "discovery.k8s.io/v1");
        let e = &u["endpoints"][0];
        assert_eq!(e["zone"], "z1");
        assert_eq!(e["deprecatedTopology"], json!({"rack": "r1"}));
        assert!(e.get("topology").is_none());
    }

    #[test]
    fn upgrades_extensions_deployment() {
        let v = json!({
            "apiVersion": "extensions/v1beta1", "kind": "Deployment",
            "metadata": {"name": "reviews-v1"},
            "spec": {"rollbackTo": {"revision": 3}, "template": {"metadata": {"labels": {"app": "reviews", "version": "v1"}}, "spec": {"containers": []}}}
        });
        let u = upgrade_deployment(&v);
        assert_eq!(u["apiVersion"], "apps/v1");
        assert_eq!(u["spec"]["selector"]["matchLabels"]["version"], "v1");
        assert_eq!(u["metadata"]["labels"]["app"], "reviews");
        assert!(u["spec"].get("rollbackTo").is_none());
        assert_eq!(u["metadata"]["annotations"][DEPRECATED_ROLLBACK_TO], "3");
        assert_eq!(u["spec"]["revisionHistoryLimit"], i32::MAX);
        assert_eq!(u["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 1);
    }

    #[test]
    fn upgrades_keep_explicit_values_and_v1() {
        let v = json!({"apiVersion": "apps/v1beta2", "kind": "Deployment", "spec": {"template": {"metadata": {"labels": {"app": "a"}}}}});
        let u = upgrade_deployment(&v);
        assert_eq!(u["apiVersion"], "apps/v1");
        assert!(
            u["spec"].get("selector").is_none(),
            "apps/v1beta2 required the selector"
        );
        let v1 = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        assert_eq!(upgrade_deployment(&v1), v1);
        let b1 = json!({"apiVersion": "apps/v1beta1", "kind": "Deployment", "spec": {"selector": {"matchLabels": {"x": "y"}}, "revisionHistoryLimit": 5, "template": {"metadata": {"labels": {"app": "a"}}}}});
        let u = upgrade_deployment(&b1);
        assert_eq!(u["spec"]["selector"]["matchLabels"]["x"], "y");
        assert_eq!(u["spec"]["revisionHistoryLimit"], 5);
    }
}
