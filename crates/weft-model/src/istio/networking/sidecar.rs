//! `Sidecar` (networking.istio.io): what a workload's proxy listens on and which services it
//! can reach.
//!
//! Field list from istio/api `networking/v1alpha3/sidecar.proto` and the generated CRD schema;
//! validation follows Istio's `ValidateSidecar`.

use super::gateway::ServerTlsSettings;
use super::gateway::mesh_checks::{
    UNIX_PREFIX, check_alpha_selector, check_default_endpoint, check_ns_slash_host,
    check_port_name, check_protocol, check_unix_address, fqdn_problem, ip_problem, parse_protocol,
    wildcard_domain_problem,
};
use super::service_entry::WorkloadLabelSelector;
use crate::common::Duration;
use crate::validate::{Ctx, Validate, check_duration_min, check_port, is_dns1123_label};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Tunes the proxy of selected workloads: inbound listeners, reachable services, outbound policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sidecar {
    /// Workloads this Sidecar applies to; without it, the whole namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadLabelSelector>,
    /// Inbound listeners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<IstioIngressListener>,
    /// Outbound listeners and the services each can reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<IstioEgressListener>,
    /// Connection limits for all inbound traffic (per-port settings override it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_connection_pool: Option<SidecarConnectionPool>,
    /// What to do with traffic to unknown destinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_traffic_policy: Option<SidecarOutboundTrafficPolicy>,
}

/// An inbound listener of the sidecar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioIngressListener {
    /// The port to listen on (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<SidecarPort>,
    /// IP address to bind to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// How traffic reaches the listener (DEFAULT, IPTABLES, NONE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_mode: Option<SidecarCaptureMode>,
    /// Where to forward: `127.0.0.1:PORT`, `0.0.0.0:PORT`, `[::1]:PORT`, `[::]:PORT` or `unix://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_endpoint: Option<String>,
    /// TLS termination for traffic from outside the mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
    /// Connection limits for this port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<SidecarConnectionPool>,
}

/// An outbound listener of the sidecar and the hosts it can reach.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioEgressListener {
    /// The port; without it, the listener catches all ports (at most one, listed last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<SidecarPort>,
    /// IP address or `unix://` socket to bind to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// How traffic reaches the listener (DEFAULT, IPTABLES, NONE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_mode: Option<SidecarCaptureMode>,
    /// Reachable hosts as `namespace/dnsName` (`./*`, `istio-system/*`, `*/foo.example.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// A sidecar listener port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarPort {
    /// Port number, 1-65535 (0 only for a unix socket egress listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    /// Protocol of the port (HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP, TLS ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Port name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Deprecated; has no effect on sidecars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
}

/// How traffic is captured into a sidecar listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SidecarCaptureMode {
    /// The environment's default capture mode.
    #[default]
    Default,
    /// Captured with iptables redirection.
    Iptables,
    /// Not captured: the application talks to the listener directly.
    None,
}

/// Outbound traffic policy of a sidecar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarOutboundTrafficPolicy {
    /// REGISTRY_ONLY blocks unknown destinations; ALLOW_ANY passes them through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SidecarOutboundMode>,
    /// Service that receives traffic to unknown destinations (ALLOW_ANY only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_proxy: Option<SidecarDestination>,
}

/// Outbound traffic mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SidecarOutboundMode {
    /// Only services in the registry are reachable.
    #[default]
    RegistryOnly,
    /// Unknown destinations are passed through.
    AllowAny,
}

/// A service (host, subset, port) traffic is sent to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarDestination {
    /// Service host from the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Subset of the service (from a DestinationRule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// Port of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<SidecarPortSelector>,
}

/// A port by number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarPortSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
}

/// Connection limits (Istio's `ConnectionPoolSettings`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarConnectionPool {
    /// Settings for all TCP connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<SidecarTcpSettings>,
    /// Settings for HTTP connections and requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<SidecarHttpSettings>,
}

/// TCP connection limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarTcpSettings {
    /// Maximum number of connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i32>,
    /// TCP connect timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// TCP keepalive probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<SidecarTcpKeepalive>,
    /// Maximum lifetime of a connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connection_duration: Option<Duration>,
    /// Idle timeout of a connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
}

/// TCP keepalive settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarTcpKeepalive {
    /// Unanswered probes before the connection is considered dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<u32>,
    /// Idle time before probing starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Duration>,
    /// Time between probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// HTTP connection and request limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarHttpSettings {
    /// Maximum queued requests waiting for a connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http1_max_pending_requests: Option<i32>,
    /// Maximum active requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_max_requests: Option<i32>,
    /// Maximum requests per connection (1 disables keep-alive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<i32>,
    /// Maximum outstanding retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
    /// Idle timeout of connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    /// Whether HTTP/1.1 connections are upgraded to HTTP/2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h2_upgrade_policy: Option<SidecarH2UpgradePolicy>,
    /// Keep the client's protocol instead of upgrading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_client_protocol: Option<bool>,
    /// Maximum concurrent streams per HTTP/2 connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<i32>,
}

/// HTTP/1.1 to HTTP/2 upgrade policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SidecarH2UpgradePolicy {
    /// The mesh-wide default.
    #[default]
    Default,
    /// Do not upgrade.
    DoNotUpgrade,
    /// Upgrade.
    Upgrade,
}

impl Validate for Sidecar {
    fn validate(&self, cx: &mut Ctx) {
        if let Some(sel) = &self.workload_selector {
            cx.field("workloadSelector", |cx| {
                check_alpha_selector(cx, &sel.labels, "Sidecar")
            });
        }
        if self.egress.is_empty()
            && self.ingress.is_empty()
            && self.outbound_traffic_policy.is_none()
            && self.inbound_connection_pool.is_none()
        {
            cx.error("empty Sidecar: set at least one of `egress`, `ingress`, `outboundTrafficPolicy` or `inboundConnectionPool`");
        }

        let mut ingress_ports: BTreeMap<u32, usize> = BTreeMap::new();
        cx.each("ingress", &self.ingress, |cx, i, l| {
            let Some(port) = &l.port else {
                cx.error_at("port", "`port` is required for ingress listeners");
                return;
            };
            cx.field("port", |cx| {
                check_sidecar_port_basics(cx, port);
                match port.number {
                    None => cx.error_at("number", "`number` is required"),
                    Some(n) => cx.field("number", |cx| {
                        check_port(cx, n);
                        if let Some(first) = ingress_ports.get(&n) {
                            cx.error(format!("port {n} is already used by ingress[{first}]: ports of IP-bound listeners must be unique"));
                        } else {
                            ingress_ports.insert(n, i);
                        }
                    }),
                }
            });
            check_bind_ip(cx, l.bind.as_deref());
            if let Some(ep) = l.default_endpoint.as_deref().filter(|e| !e.is_empty()) {
                cx.field("defaultEndpoint", |cx| check_default_endpoint(cx, ep));
            }
            if let Some(tls) = &l.tls {
                cx.field("tls", |cx| {
                    if !tls.subject_alt_names.is_empty() {
                        cx.error_at("subjectAltNames", "`subjectAltNames` is not supported in sidecar ingress TLS");
                    }
                    if tls.https_redirect == Some(true) {
                        cx.error_at("httpsRedirect", "`httpsRedirect` is not supported in sidecar ingress TLS");
                    }
                    if tls.credential_name.as_deref().is_some_and(|c| !c.is_empty()) {
                        cx.error_at("credentialName", "`credentialName` is not supported in sidecar ingress TLS: use file paths");
                    }
                    if let Some(m @ (super::ServerTlsMode::IstioMutual | super::ServerTlsMode::AutoPassthrough)) = tls.mode {
                        cx.error_at("mode", format!("mode {} cannot be used in sidecar ingress TLS", m.as_str()));
                    }
                    tls.validate(cx);
                });
            }
            if let Some(pool) = &l.connection_pool {
                cx.field("connectionPool", |cx| {
                    pool.validate(cx);
                    let proto = port.protocol.as_deref().and_then(parse_protocol);
                    if pool.http.is_some() && !proto.is_some_and(|p| p.is_http()) {
                        cx.warn_at(
                            "http",
                            format!(
                                "HTTP settings have no effect: port {} is not HTTP (protocol {}); only the TCP settings apply",
                                port.number.unwrap_or(0),
                                port.protocol.as_deref().filter(|p| !p.is_empty()).unwrap_or("unset")
                            ),
                        );
                    }
                });
            }
        });
        cx.opt("inboundConnectionPool", &self.inbound_connection_pool);

        let mut egress_ports: BTreeMap<u32, usize> = BTreeMap::new();
        let mut uds: BTreeSet<String> = BTreeSet::new();
        let mut catch_all: Option<usize> = None;
        let last = self.egress.len().saturating_sub(1);
        let ns = cx.namespace.clone();
        cx.each("egress", &self.egress, |cx, i, l| {
            match &l.port {
                None => {
                    if let Some(first) = catch_all {
                        cx.error(format!(
                            "egress[{first}] already has no port: only one egress listener may omit `port`"
                        ));
                    } else if i != last {
                        cx.error("the egress listener without `port` must be the last one in the list");
                        catch_all = Some(i);
                    } else {
                        catch_all = Some(i);
                    }
                }
                Some(port) => {
                    let bind = l.bind.as_deref().unwrap_or("");
                    cx.field("port", |cx| check_sidecar_port_basics(cx, port));
                    let n = port.number.unwrap_or(0);
                    if n == 0 {
                        match bind.strip_prefix(UNIX_PREFIX) {
                            None => cx.field("port", |cx| {
                                cx.error_at(
                                    "number",
                                    "`number` is required: a port may only be 0 (or unset) when `bind` is a unix:// socket",
                                )
                            }),
                            Some(path) => {
                                cx.field("bind", |cx| check_unix_address(cx, path));
                                if matches!(l.capture_mode, Some(SidecarCaptureMode::Iptables)) {
                                    cx.error_at("captureMode", "captureMode must be DEFAULT or NONE for a unix socket listener");
                                }
                                if !uds.insert(bind.to_string()) {
                                    cx.error_at("bind", format!("unix socket `{bind}` is used by another egress listener"));
                                }
                            }
                        }
                    } else {
                        cx.field("port", |cx| {
                            cx.field("number", |cx| {
                                check_port(cx, n);
                                if let Some(first) = egress_ports.get(&n) {
                                    cx.error(format!("port {n} is already used by egress[{first}]: ports of IP-bound listeners must be unique"));
                                } else {
                                    egress_ports.insert(n, i);
                                }
                            })
                        });
                        check_bind_ip(cx, Some(bind));
                    }
                }
            }
            if l.hosts.is_empty() {
                cx.error_at("hosts", "`hosts` is required: an egress listener must list at least one host, e.g. `./*`");
                return;
            }
            // Duplicate and overlapping hosts per namespace (warnings, as Istio does).
            let mut by_ns: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            cx.each("hosts", &l.hosts, |cx, _, h| {
                check_ns_slash_host(cx, h, false);
                if let Some((hns, svc)) = h.split_once('/') {
                    let hns = if hns == "." { ns.clone() } else { hns.to_string() };
                    let set = by_ns.entry(hns).or_default();
                    let dup = if svc == "*" { !set.is_empty() } else { set.contains(svc) || set.contains("*") };
                    if dup {
                        cx.warn(format!("host `{h}` duplicates or overlaps another host of this listener"));
                    }
                    set.insert(svc.to_string());
                }
            });
            if by_ns.get("*").is_some_and(|s| s.contains("*")) && by_ns.len() != 1 {
                cx.warn_at("hosts", "`*/*` already selects every host: the other hosts add nothing");
            }
        });

        cx.opt("outboundTrafficPolicy", &self.outbound_traffic_policy);
    }
}

/// Port name and protocol (both optional), and no `targetPort`.
fn check_sidecar_port_basics(cx: &mut Ctx, port: &SidecarPort) {
    if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
        cx.field("name", |cx| check_port_name(cx, name));
    }
    cx.field("protocol", |cx| {
        check_protocol(cx, port.protocol.as_deref())
    });
    if port.target_port.is_some_and(|t| t > 0) {
        cx.error_at(
            "targetPort",
            "`targetPort` has no effect on Sidecars: remove it",
        );
    }
}

fn check_bind_ip(cx: &mut Ctx, bind: Option<&str>) {
    if let Some(b) = bind.filter(|b| !b.is_empty())
        && let Some(p) = ip_problem(b)
    {
        cx.error_at("bind", format!("bind {p}: it must be an IP address"));
    }
}

impl Validate for SidecarOutboundTrafficPolicy {
    fn validate(&self, cx: &mut Ctx) {
        let Some(proxy) = &self.egress_proxy else {
            return;
        };
        if self.mode.unwrap_or_default() != SidecarOutboundMode::AllowAny {
            cx.error_at(
                "egressProxy",
                "`egressProxy` can only be set with mode ALLOW_ANY: with REGISTRY_ONLY unknown traffic is blocked",
            );
            return;
        }
        cx.field("egressProxy", |cx| {
            let host = proxy.host.as_deref().unwrap_or("");
            if host.is_empty() {
                cx.error_at("host", "`host` is required");
            } else if host == "*" {
                cx.error_at("host", "host `*` is not a valid destination");
            } else if let Some(p) = fqdn_problem(host).or_else(|| wildcard_domain_problem(host)) {
                cx.error_at("host", p);
            }
            if let Some(s) = proxy.subset.as_deref()
                && !is_dns1123_label(s)
            {
                cx.error_at(
                    "subset",
                    format!("subset name `{s}` is invalid: it must be a DNS label (lower-case letters, digits, '-')"),
                );
            }
            match proxy.port.as_ref().and_then(|p| p.number) {
                None => cx.error_at("port", "`port` is required for the egress proxy"),
                Some(n) => cx.field("port", |cx| cx.field("number", |cx| check_port(cx, n))),
            }
        });
    }
}

impl Validate for SidecarConnectionPool {
    fn validate(&self, cx: &mut Ctx) {
        if self.http.is_none() && self.tcp.is_none() {
            cx.error("a connection pool needs `tcp` or `http` settings");
        }
        let non_negative = |cx: &mut Ctx, name: &str, v: Option<i32>| {
            if let Some(v) = v.filter(|v| *v < 0) {
                cx.error_at(
                    name,
                    format!("{name} {v} is negative: it must be 0 or more"),
                );
            }
        };
        let duration = |cx: &mut Ctx, name: &str, d: &Option<Duration>| {
            if let Some(d) = d {
                cx.field(name, |cx| check_duration_min(cx, d, 1));
            }
        };
        if let Some(h) = &self.http {
            cx.field("http", |cx| {
                non_negative(cx, "http1MaxPendingRequests", h.http1_max_pending_requests);
                non_negative(cx, "http2MaxRequests", h.http2_max_requests);
                non_negative(
                    cx,
                    "maxRequestsPerConnection",
                    h.max_requests_per_connection,
                );
                non_negative(cx, "maxRetries", h.max_retries);
                non_negative(cx, "maxConcurrentStreams", h.max_concurrent_streams);
                duration(cx, "idleTimeout", &h.idle_timeout);
                if h.h2_upgrade_policy == Some(SidecarH2UpgradePolicy::Upgrade)
                    && h.use_client_protocol == Some(true)
                {
                    cx.error_at(
                        "useClientProtocol",
                        "`useClientProtocol` cannot be true when h2UpgradePolicy is UPGRADE",
                    );
                }
            });
        }
        if let Some(t) = &self.tcp {
            cx.field("tcp", |cx| {
                non_negative(cx, "maxConnections", t.max_connections);
                duration(cx, "connectTimeout", &t.connect_timeout);
                duration(cx, "maxConnectionDuration", &t.max_connection_duration);
                duration(cx, "idleTimeout", &t.idle_timeout);
                if let Some(k) = &t.tcp_keepalive {
                    cx.field("tcpKeepalive", |cx| {
                        duration(cx, "time", &k.time);
                        duration(cx, "interval", &k.interval);
                    });
                }
            });
        }
    }
}
