//! `ServiceEntry`, `WorkloadEntry` and `WorkloadGroup` (networking.istio.io): services and
//! workloads that are not in the Kubernetes registry.
//!
//! Field lists from istio/api `networking/v1alpha3/{service_entry,workload_entry,workload_group}.proto`
//! and the generated CRD schemas; validation follows Istio's `ValidateServiceEntry`,
//! `ValidateWorkloadEntry` and `ValidateWorkloadGroup` plus the CRD's CEL rules.

use super::gateway::mesh_checks::{
    UNIX_PREFIX, check_alpha_selector, check_export_to, check_port_name, check_protocol,
    check_unix_address, fqdn_problem, ip_or_cidr_problem, is_ip, is_partial_wildcard,
    parse_protocol, wildcard_domain_problem,
};
use crate::validate::{Ctx, Validate, check_labels, check_port};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Adds a service (hosts, ports, endpoints) to Istio's registry, e.g. an external API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceEntry {
    /// DNS names of the service; a leading wildcard (`*.example.com`) is allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Virtual IPs (or CIDR blocks) of the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Ports of the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServiceEntryPort>,
    /// Whether the service is outside the mesh (MESH_EXTERNAL, default) or part of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<ServiceEntryLocation>,
    /// How the proxy finds the endpoints: NONE (default), STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<ServiceEntryResolution>,
    /// Endpoints of the service (exclusive with `workloadSelector`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<WorkloadEntry>,
    /// Selects pods and WorkloadEntries as endpoints (MESH_INTERNAL services only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadLabelSelector>,
    /// Namespaces that can see this service: `.`, `*`, `~` or namespace names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    /// Subject alternative names the server certificate must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
}

/// A port of a service entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceEntryPort {
    /// Port number, 1-65535.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    /// HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP or TLS; empty means detect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Port name; endpoints refer to ports by this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Port on the endpoints that receives the traffic (default: `number`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
}

/// Whether a service is part of the mesh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceEntryLocation {
    /// Outside the mesh (e.g. a web API): no mTLS to it.
    #[default]
    MeshExternal,
    /// Part of the mesh (e.g. VMs with sidecars).
    MeshInternal,
}

/// How a service entry's endpoints are resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceEntryResolution {
    /// Forward to the IP the application connected to.
    #[default]
    None,
    /// Use the IPs in `endpoints` (or selected workloads).
    Static,
    /// Resolve the endpoints (or hosts) with DNS, using all addresses.
    Dns,
    /// Resolve with DNS, using the first address returned.
    DnsRoundRobin,
    /// Resolve the actual requested name (Host/SNI) of a wildcard host.
    DynamicDns,
}

impl ServiceEntryResolution {
    fn as_str(self) -> &'static str {
        match self {
            ServiceEntryResolution::None => "NONE",
            ServiceEntryResolution::Static => "STATIC",
            ServiceEntryResolution::Dns => "DNS",
            ServiceEntryResolution::DnsRoundRobin => "DNS_ROUND_ROBIN",
            ServiceEntryResolution::DynamicDns => "DYNAMIC_DNS",
        }
    }
}

/// The networking kinds' workload selector: `{labels: {app: reviews}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadLabelSelector {
    /// Labels a workload must all carry to be selected.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A workload outside Kubernetes (e.g. a VM), or one endpoint of a service entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEntry {
    /// IP address, DNS name or `unix://` socket of the workload (without port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Port name (of the service) to port number on this workload.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u32>,
    /// Labels of the workload.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Network (L3 domain) the workload lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Locality as `region/zone/subzone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// Load-balancing weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Service account of the workload (when it runs a sidecar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// A template for the WorkloadEntries of auto-registered VMs, and their health check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadGroup {
    /// Labels and annotations given to every generated WorkloadEntry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<WorkloadGroupMetadata>,
    /// The WorkloadEntry fields shared by the group (address is filled in per VM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<WorkloadEntry>,
    /// Readiness probe run by the workload's proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ReadinessProbe>,
}

/// Metadata copied onto generated WorkloadEntries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadGroupMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// How the proxy checks that a VM workload is ready.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadinessProbe {
    /// Seconds after start before the first probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds before a probe times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    /// Seconds between probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    /// Consecutive successes needed to become ready after failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    /// Consecutive failures needed to become unready after succeeding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
    /// Probe with an HTTP GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpHealthCheckConfig>,
    /// Probe by opening a TCP connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpHealthCheckConfig>,
    /// Probe by running a command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecHealthCheckConfig>,
    /// Probe with the gRPC health checking protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcHealthCheckConfig>,
}

/// An HTTP GET readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHealthCheckConfig {
    /// Path to request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Port to connect to (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Host to connect to (default: the workload's IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// HTTP or HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Headers to send.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<ProbeHttpHeader>,
}

/// A header sent by an HTTP readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeHttpHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A TCP connect readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpHealthCheckConfig {
    /// Host to connect to (default: the workload's IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port to connect to (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

/// A command readiness check: ready when the command exits 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecHealthCheckConfig {
    /// The command and its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// A gRPC health-checking-protocol readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcHealthCheckConfig {
    /// Port of the gRPC server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Service name sent in the health check request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl Validate for ServiceEntry {
    fn validate(&self, cx: &mut Ctx) {
        let resolution = self.resolution.unwrap_or_default();
        let res = resolution.as_str();
        if let Some(sel) = &self.workload_selector {
            cx.field("workloadSelector", |cx| {
                check_alpha_selector(cx, &sel.labels, "service entry")
            });
        }
        if self.workload_selector.is_some() && !self.endpoints.is_empty() {
            cx.error_at(
                "workloadSelector",
                "only one of `workloadSelector` and `endpoints` may be set: a service entry takes its endpoints from one or the other",
            );
        }

        // Hosts.
        if self.hosts.is_empty() {
            cx.error_at(
                "hosts",
                "`hosts` is required: a service entry needs at least one host",
            );
        }
        cx.each("hosts", &self.hosts, |cx, _, h| {
            if h == "*" {
                cx.error("host `*` is not allowed in a service entry: name the hosts, or use a wildcard like `*.example.com`");
            } else if is_partial_wildcard(h) {
                cx.warn(format!(
                    "host `{h}` has a partial wildcard: only a leading `*.` is matched as a wildcard"
                ));
            } else if let Some(p) = wildcard_domain_problem(h) {
                cx.error(p);
            }
        });

        // Addresses.
        let mut cidr = false;
        cx.each("addresses", &self.addresses, |cx, _, a| {
            cidr |= a.contains('/');
            if let Some(p) = ip_or_cidr_problem(a) {
                cx.error(format!("address {p}"));
            }
        });
        if cidr
            && !matches!(
                resolution,
                ServiceEntryResolution::None | ServiceEntryResolution::Static
            )
        {
            cx.error_at(
                "addresses",
                format!(
                    "CIDR addresses are only allowed with resolution NONE or STATIC, not {res}"
                ),
            );
        }

        // Ports.
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut numbers: BTreeMap<u32, usize> = BTreeMap::new();
        cx.each("ports", &self.ports, |cx, i, port| {
            match port.name.as_deref() {
                None | Some("") => cx.error_at("name", "`name` is required: endpoints refer to service entry ports by name"),
                Some(name) => cx.field("name", |cx| {
                    check_port_name(cx, name);
                    if let Some(first) = names.get(name) {
                        cx.error(format!("port name `{name}` is already used by ports[{first}]"));
                    } else {
                        names.insert(name.to_string(), i);
                    }
                }),
            }
            match port.number {
                None => cx.error_at("number", "`number` is required"),
                Some(n) => cx.field("number", |cx| {
                    check_port(cx, n);
                    if let Some(first) = numbers.get(&n) {
                        cx.error(format!("port {n} is already declared by ports[{first}]"));
                    } else {
                        numbers.insert(n, i);
                    }
                }),
            }
            cx.field("protocol", |cx| check_protocol(cx, port.protocol.as_deref()));
            if let Some(t) = port.target_port.filter(|t| *t != 0) {
                cx.field("targetPort", |cx| {
                    check_port(cx, t);
                    if resolution == ServiceEntryResolution::None {
                        cx.warn("`targetPort` has no effect with resolution NONE: traffic goes to the port the application connected to");
                    }
                });
            }
        });
        let service_ports: BTreeSet<String> = names.keys().cloned().collect();

        // Resolution rules.
        match resolution {
            ServiceEntryResolution::None => {
                if !self.endpoints.is_empty() {
                    cx.error_at(
                        "endpoints",
                        "resolution NONE cannot have `endpoints`: traffic goes to the address the application connected to; use STATIC or DNS to list endpoints",
                    );
                }
                if self.workload_selector.is_some() {
                    cx.warn_at(
                        "workloadSelector",
                        "`workloadSelector` has no effect with resolution NONE",
                    );
                }
            }
            ServiceEntryResolution::Static => {
                if self.endpoints.is_empty() && self.workload_selector.is_none() {
                    cx.warn_at(
                        "resolution",
                        "resolution STATIC with neither `endpoints` nor `workloadSelector`: the service has no endpoints",
                    );
                }
                cx.each("endpoints", &self.endpoints, |cx, _, ep| {
                    check_workload_entry(cx, ep, Some(&service_ports), false);
                });
            }
            ServiceEntryResolution::Dns | ServiceEntryResolution::DnsRoundRobin => {
                if self.endpoints.is_empty() {
                    cx.each("hosts", &self.hosts, |cx, _, h| {
                        if h != "*" && fqdn_problem(h).is_some() && wildcard_domain_problem(h).is_none() {
                            cx.error(format!(
                                "host `{h}` must be a concrete DNS name with resolution {res} and no endpoints: the proxy resolves the host itself"
                            ));
                        }
                    });
                }
                if resolution == ServiceEntryResolution::DnsRoundRobin && self.endpoints.len() > 1 {
                    cx.error_at(
                        "endpoints",
                        format!(
                            "resolution DNS_ROUND_ROBIN allows at most one endpoint, found {}",
                            self.endpoints.len()
                        ),
                    );
                }
                cx.each("endpoints", &self.endpoints, |cx, _, ep| {
                    let addr = ep.address.as_deref().unwrap_or("");
                    if !is_ip(addr) && fqdn_problem(addr).is_some() {
                        cx.error_at(
                            "address",
                            format!("endpoint address `{addr}` is not a valid DNS name or IP address (resolution {res})"),
                        );
                    }
                    cx.field("labels", |cx| check_labels(cx, &ep.labels));
                    check_endpoint_ports(cx, ep, Some(&service_ports));
                });
                if self.workload_selector.is_some() {
                    cx.warn_at(
                        "workloadSelector",
                        format!("`workloadSelector` has no effect with resolution {res}"),
                    );
                }
                if !self.addresses.is_empty()
                    && self.hosts.len() > 1
                    && self.ports.iter().any(|p| {
                        p.protocol
                            .as_deref()
                            .and_then(parse_protocol)
                            .is_some_and(|p| p.is_tcp())
                    })
                {
                    cx.warn_at(
                        "hosts",
                        "a service entry with addresses and a TCP port should have a single host: TCP traffic cannot be told apart by host",
                    );
                }
            }
            ServiceEntryResolution::DynamicDns => {
                cx.each("hosts", &self.hosts, |cx, _, h| {
                    if !h.starts_with("*.") {
                        cx.error(format!(
                            "host `{h}` is not a wildcard: resolution DYNAMIC_DNS is for wildcard hosts like `*.example.com`"
                        ));
                    }
                });
                if self.location == Some(ServiceEntryLocation::MeshInternal) {
                    cx.error_at(
                        "location",
                        "resolution DYNAMIC_DNS is only supported for MESH_EXTERNAL services",
                    );
                }
                if !self.endpoints.is_empty() {
                    cx.warn_at(
                        "endpoints",
                        "`endpoints` are ignored with resolution DYNAMIC_DNS",
                    );
                }
                if self.workload_selector.is_some() {
                    cx.warn_at(
                        "workloadSelector",
                        "`workloadSelector` has no effect with resolution DYNAMIC_DNS",
                    );
                }
            }
        }

        // Several hosts on plain TCP cannot be told apart unless the proxy just forwards.
        if resolution != ServiceEntryResolution::None && self.hosts.len() > 1 {
            let bad = self.ports.iter().position(|p| {
                let proto = p.protocol.as_deref().and_then(parse_protocol);
                !proto.is_some_and(|p| p.is_http() || p.is_tls())
            });
            if let Some(i) = bad {
                let p = &self.ports[i];
                cx.field("ports", |cx| {
                    cx.index(i, |cx| {
                        cx.error(format!(
                            "port {} ({}) is not HTTP or TLS, but the service entry has {} hosts: with resolution {res} only HTTP (Host header) and TLS (SNI) traffic can be told apart by host",
                            p.number.unwrap_or(0),
                            p.protocol.as_deref().filter(|s| !s.is_empty()).unwrap_or("protocol unset"),
                            self.hosts.len()
                        ))
                    })
                });
            }
        }
        check_export_to(cx, &self.export_to, true);
    }
}

/// Endpoint port map: names must be declared service ports, numbers valid.
fn check_endpoint_ports(
    cx: &mut Ctx,
    ep: &WorkloadEntry,
    service_ports: Option<&BTreeSet<String>>,
) {
    cx.field("ports", |cx| {
        for (name, port) in &ep.ports {
            cx.field(name, |cx| {
                check_port_name(cx, name);
                check_port(cx, *port);
                if let Some(sp) = service_ports
                    && !sp.contains(name)
                {
                    let declared: Vec<&str> = sp.iter().map(String::as_str).collect();
                    cx.error(format!(
                        "endpoint port `{name}` is not a port of this service entry (declared: {})",
                        if declared.is_empty() {
                            "none".to_string()
                        } else {
                            declared.join(", ")
                        }
                    ));
                }
            });
        }
    });
}

/// Istio's `validateWorkloadEntry`: for a standalone WorkloadEntry (`service_ports` None,
/// DNS names allowed) or a STATIC service entry endpoint (ports must be declared, IPs only).
fn check_workload_entry(
    cx: &mut Ctx,
    we: &WorkloadEntry,
    service_ports: Option<&BTreeSet<String>>,
    allow_fqdn: bool,
) {
    let addr = we.address.as_deref().unwrap_or("");
    if addr.is_empty() {
        match we.network.as_deref().filter(|n| !n.is_empty()) {
            None => {
                cx.error_at("address", "`address` is required (it may only be left out when `network` is set)");
                return;
            }
            Some(n) => cx.warn_at(
                "address",
                format!("`address` is unset: the workload is only reachable through the gateway of network `{n}`"),
            ),
        }
    }
    let mut unix = false;
    if let Some(path) = addr.strip_prefix(UNIX_PREFIX) {
        unix = true;
        cx.field("address", |cx| check_unix_address(cx, path));
        if !we.ports.is_empty() {
            cx.error_at(
                "ports",
                format!("unix socket endpoint `{addr}` cannot have `ports`"),
            );
        }
    } else if !addr.is_empty() && !is_ip(addr) {
        if !allow_fqdn {
            cx.error_at(
                "address",
                format!("endpoint address `{addr}` is not an IP address: resolution STATIC needs IP addresses (use DNS for host names)"),
            );
        } else if fqdn_problem(addr).is_some() {
            cx.error_at(
                "address",
                format!("address `{addr}` is not a valid DNS name or IP address"),
            );
        }
    }
    if addr.len() > 256 {
        cx.error_at("address", "address is longer than 256 characters");
    }
    check_endpoint_ports(cx, we, service_ports);
    cx.field("labels", |cx| check_labels(cx, &we.labels));
    if unix
        && let Some(sp) = service_ports
        && sp.len() != 1
    {
        cx.error_at(
            "address",
            format!(
                "unix socket endpoint `{addr}` needs exactly one service port, but the service entry declares {}",
                sp.len()
            ),
        );
    }
    if we.service_account.as_deref().is_some_and(|s| s.len() > 253) {
        cx.error_at(
            "serviceAccount",
            "service account name is longer than 253 characters",
        );
    }
}

impl Validate for WorkloadEntry {
    fn validate(&self, cx: &mut Ctx) {
        check_workload_entry(cx, self, None, true);
    }
}

impl Validate for WorkloadGroup {
    fn validate(&self, cx: &mut Ctx) {
        match &self.template {
            None => cx.error_at(
                "template",
                "`template` is required: it describes the WorkloadEntries of the group",
            ),
            Some(t) => cx.field("template", |cx| {
                // Not a full WorkloadEntry check: the address is filled in when a VM registers.
                if let Some(path) = t
                    .address
                    .as_deref()
                    .and_then(|a| a.strip_prefix(UNIX_PREFIX))
                {
                    cx.field("address", |cx| check_unix_address(cx, path));
                    if !t.ports.is_empty() {
                        cx.error_at("ports", "a unix socket address cannot have `ports`");
                    }
                }
                check_endpoint_ports(cx, t, None);
                cx.field("labels", |cx| check_labels(cx, &t.labels));
            }),
        }
        if let Some(m) = &self.metadata {
            cx.field("metadata", |cx| {
                cx.field("labels", |cx| check_labels(cx, &m.labels))
            });
        }
        cx.opt("probe", &self.probe);
    }
}

impl Validate for ReadinessProbe {
    fn validate(&self, cx: &mut Ctx) {
        for (name, v) in [
            ("initialDelaySeconds", self.initial_delay_seconds),
            ("timeoutSeconds", self.timeout_seconds),
            ("periodSeconds", self.period_seconds),
            ("successThreshold", self.success_threshold),
            ("failureThreshold", self.failure_threshold),
        ] {
            if let Some(v) = v.filter(|v| *v < 0) {
                cx.error_at(
                    name,
                    format!("{name} {v} is negative: it must be 0 or more"),
                );
            }
        }
        cx.exactly_one(&[
            ("httpGet", self.http_get.is_some()),
            ("tcpSocket", self.tcp_socket.is_some()),
            ("exec", self.exec.is_some()),
            ("grpc", self.grpc.is_some()),
        ]);
        if let Some(h) = &self.http_get {
            cx.field("httpGet", |cx| {
                match h.port {
                    None => cx.error_at("port", "`port` is required"),
                    Some(p) => cx.field("port", |cx| check_port(cx, p)),
                }
                if let Some(s) = h.scheme.as_deref().filter(|s| !s.is_empty())
                    && s != "HTTP"
                    && s != "HTTPS"
                {
                    cx.error_at(
                        "scheme",
                        format!("scheme `{s}` is invalid: use HTTP or HTTPS"),
                    );
                }
                cx.each("httpHeaders", &h.http_headers, |cx, _, hd| {
                    let name = hd.name.as_deref().unwrap_or("");
                    if name.is_empty() {
                        cx.error_at("name", "header `name` is required");
                    } else if !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    {
                        cx.error_at(
                            "name",
                            format!(
                                "header name `{name}` is invalid: use letters, digits, '-' and '_'"
                            ),
                        );
                    }
                });
            });
        }
        if let Some(t) = &self.tcp_socket {
            cx.field("tcpSocket", |cx| match t.port {
                None => cx.error_at("port", "`port` is required"),
                Some(p) => cx.field("port", |cx| check_port(cx, p)),
            });
        }
        if let Some(e) = &self.exec {
            cx.field("exec", |cx| {
                if e.command.is_empty() {
                    cx.error_at("command", "`command` is required");
                }
                cx.each("command", &e.command, |cx, _, c| {
                    if c.is_empty() {
                        cx.error("command arguments must not be empty");
                    }
                });
            });
        }
        if let Some(g) = &self.grpc
            && let Some(p) = g.port
        {
            cx.field("grpc", |cx| cx.field("port", |cx| check_port(cx, p)));
        }
    }
}
