//! GatewayClass and Gateway (`gateway.networking.k8s.io/v1`).
//!
//! Fields follow `apis/v1/gatewayclass_types.go` and `apis/v1/gateway_types.go` of the
//! current release (v1.5): Gateway-level `tls.frontend`/`tls.backend` replaced the
//! experimental `backendTLS` and listener `tls.frontendValidation` of v1.3–v1.4, which
//! are still read with a warning.

use super::shared::*;
use crate::validate::{Ctx, Validate, check_max_items, check_port};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------
// GatewayClass
// ---------------------------------------------------------------------------------------

/// A class of Gateways and the controller that implements them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayClassSpec {
    /// The controller managing Gateways of this class: a domain-prefixed path such as
    /// `istio.io/gateway-controller` (required, immutable).
    #[serde(default)]
    pub controller_name: String,
    /// Controller-specific configuration for the class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_ref: Option<ParametersReference>,
    /// A human-readable description (at most 64 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A reference to a cluster-wide or namespaced configuration object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParametersReference {
    /// API group of the referent (required; `""` for the core group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the referent (required), e.g. `ConfigMap`.
    #[serde(default)]
    pub kind: String,
    /// Name of the referent (required).
    #[serde(default)]
    pub name: String,
    /// Namespace, for a namespaced referent (must be unset for a cluster-scoped one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl Validate for ParametersReference {
    fn validate(&self, cx: &mut Ctx) {
        check_required_group(cx, "group", &self.group);
        check_required_kind(cx, "kind", &self.kind);
        check_required_name(cx, "name", &self.name);
        opt_check(cx, "namespace", &self.namespace, check_namespace);
    }
}

/// Why `name` is not a `GatewayController` (`example.net/gateway-controller`).
pub fn controller_name_problem(name: &str) -> Option<String> {
    let shape = || {
        Some(format!(
            "controllerName `{name}` is invalid: it must be a domain-prefixed path such as `example.net/gateway-controller`"
        ))
    };
    if name.len() > 253 {
        return Some(format!(
            "controllerName `{name}` is longer than 253 characters"
        ));
    }
    let Some((domain, path)) = name.split_once('/') else {
        return shape();
    };
    if !crate::validate::is_dns1123_subdomain(domain)
        || path.is_empty()
        || !path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c))
    {
        return shape();
    }
    None
}

impl Validate for GatewayClassSpec {
    fn validate(&self, cx: &mut Ctx) {
        if self.controller_name.is_empty() {
            cx.require("controllerName", false);
        } else if let Some(p) = controller_name_problem(&self.controller_name) {
            cx.error_at("controllerName", p);
        }
        cx.opt("parametersRef", &self.parameters_ref);
        if let Some(d) = &self.description
            && d.chars().count() > 64
        {
            cx.error_at(
                "description",
                format!(
                    "description is {} characters long; at most 64 are allowed",
                    d.chars().count()
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------

/// A Gateway: listeners bound to addresses, for routes to attach to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// The GatewayClass this Gateway belongs to (required).
    #[serde(default)]
    pub gateway_class_name: String,
    /// Logical endpoints (port, protocol, hostname) bound on the Gateway's addresses
    /// (1 to 64, names unique).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
    /// Addresses requested for the Gateway (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<GatewaySpecAddress>,
    /// Labels, annotations and parameters for the infrastructure created for the Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<GatewayInfrastructure>,
    /// Which ListenerSets may attach to this Gateway (none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_listeners: Option<AllowedListeners>,
    /// Gateway-wide TLS: client certificate validation (frontend) and the client
    /// certificate presented to backends (backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<GatewayTlsConfig>,
    /// Makes this a default Gateway for routes that ask for one (experimental, GEP-3793).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_scope: Option<GatewayDefaultScope>,
    /// Deprecated (experimental in v1.3–v1.4): moved to `tls.backend`.
    #[serde(
        rename = "backendTLS",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub backend_tls: Option<GatewayBackendTls>,
}

/// The scope of a default Gateway (GEP-3793).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GatewayDefaultScope {
    /// Claims any route asking for a default Gateway.
    All,
    /// Not a default Gateway.
    #[default]
    None,
}

/// A listener: where the Gateway accepts connections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    /// Name, unique within the Gateway (routes select it with `sectionName`).
    #[serde(default)]
    pub name: String,
    /// Virtual hostname to match (SNI and/or Host header); all hostnames when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Network port (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP`, or a domain-prefixed implementation protocol.
    #[serde(default)]
    pub protocol: String,
    /// TLS settings; required for HTTPS and TLS, forbidden for HTTP, TCP and UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTlsConfig>,
    /// Which routes (kinds and namespaces) may attach; routes in the same namespace by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// The core listener protocols (matched without regard to case).
pub const CORE_PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "TLS", "TCP", "UDP"];

/// TLS settings of a listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerTlsConfig {
    /// `Terminate` (default) or `Passthrough`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<TlsModeType>,
    /// Secrets with the certificate and key (at least one in Terminate mode).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_refs: Vec<SecretObjectReference>,
    /// Implementation-specific TLS options (domain-prefixed keys, at most 16).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Deprecated (experimental in v1.3): moved to the Gateway's `tls.frontend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend_validation: Option<LegacyFrontendValidation>,
}

/// How a listener handles TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsModeType {
    /// TLS is terminated at the Gateway.
    #[default]
    Terminate,
    /// The TLS stream is passed through (routed by SNI).
    Passthrough,
}

/// The v1.3 experimental listener client-certificate validation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegacyFrontendValidation {
    /// CA certificates to validate client certificates with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certificate_refs: Vec<ObjectReference>,
}

/// Which routes may attach to a listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedRoutes {
    /// Namespaces routes may come from (`Same` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<RouteNamespaces>,
    /// Route kinds allowed (at most 8); derived from the protocol when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<RouteGroupKind>,
}

/// Namespaces routes may attach from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteNamespaces {
    /// `All`, `Same` (default) or `Selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<FromNamespaces>,
    /// Namespace label selector, required when `from` is `Selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Where routes (or ListenerSets) may attach from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromNamespaces {
    /// Any namespace.
    All,
    /// Namespaces whose labels match `selector`.
    Selector,
    /// The Gateway's own namespace.
    #[default]
    Same,
    /// No ListenerSets (only valid in `allowedListeners`).
    None,
}

/// A route group and kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteGroupKind {
    /// Group of the route; `gateway.networking.k8s.io` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the route (required), e.g. `HTTPRoute`.
    #[serde(default)]
    pub kind: String,
}

/// An address requested for a Gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpecAddress {
    /// `IPAddress` (default), `Hostname`, or a domain-prefixed implementation type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The address; the implementation assigns one when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Attributes of the infrastructure created for a Gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayInfrastructure {
    /// Labels for generated resources (at most 8).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations for generated resources (at most 16).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Per-Gateway controller parameters, in the Gateway's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_ref: Option<LocalParametersReference>,
}

/// A reference to a configuration object in the Gateway's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalParametersReference {
    /// API group of the referent (required; `""` for the core group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the referent (required).
    #[serde(default)]
    pub kind: String,
    /// Name of the referent (required).
    #[serde(default)]
    pub name: String,
}

impl Validate for LocalParametersReference {
    fn validate(&self, cx: &mut Ctx) {
        check_required_group(cx, "group", &self.group);
        check_required_kind(cx, "kind", &self.kind);
        check_required_name(cx, "name", &self.name);
    }
}

/// Which ListenerSets may attach to a Gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedListeners {
    /// Namespaces ListenerSets may come from (`None` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<ListenerNamespaces>,
}

/// Namespaces ListenerSets may attach from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerNamespaces {
    /// `All`, `Selector`, `Same` or `None` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<FromNamespaces>,
    /// Namespace label selector, required when `from` is `Selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Gateway-wide TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayTlsConfig {
    /// The Gateway as a TLS client of its backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<GatewayBackendTls>,
    /// Client certificate validation for clients connecting to the Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend: Option<FrontendTlsConfig>,
}

/// The client certificate the Gateway presents to TLS backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayBackendTls {
    /// A Secret (`kubernetes.io/tls`) with the client certificate and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_ref: Option<SecretObjectReference>,
}

/// Client certificate validation, by default and per port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FrontendTlsConfig {
    /// Validation for every HTTPS listener without a per-port setting (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<TlsConfig>,
    /// Per-port overrides (ports unique, at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_port: Vec<TlsPortConfig>,
}

/// TLS settings that apply to several listeners.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// Client certificate validation (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<FrontendTlsValidation>,
}

/// TLS settings for the HTTPS listeners on one port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsPortConfig {
    /// The port (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// The settings for that port (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// How client certificates are validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FrontendTlsValidation {
    /// CA bundles (ConfigMaps with `ca.crt`) that client certificates must chain to (1 to 8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certificate_refs: Vec<ObjectReference>,
    /// `AllowValidOnly` (default) or `AllowInsecureFallback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FrontendValidationMode>,
}

/// Whether connections without a valid client certificate are accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrontendValidationMode {
    /// Only clients with a valid certificate are accepted.
    #[default]
    AllowValidOnly,
    /// Clients without a valid certificate are accepted too (authorization left to backends).
    AllowInsecureFallback,
}

impl Validate for TlsConfig {
    fn validate(&self, cx: &mut Ctx) {
        if let Some(v) = &self.validation {
            cx.field("validation", |cx| {
                if v.ca_certificate_refs.is_empty() {
                    cx.error_at("caCertificateRefs", "`caCertificateRefs` is required: name at least one CA certificate");
                }
                check_max_items(cx, "caCertificateRefs", v.ca_certificate_refs.len(), 8);
                cx.list("caCertificateRefs", &v.ca_certificate_refs);
                if v.mode == Some(FrontendValidationMode::AllowInsecureFallback) {
                    cx.warn_at(
                        "mode",
                        "mode AllowInsecureFallback accepts clients without a valid certificate: authorization is left to the backends",
                    );
                }
            });
        }
    }
}

impl Validate for GatewayBackendTls {
    fn validate(&self, cx: &mut Ctx) {
        cx.opt("clientCertificateRef", &self.client_certificate_ref);
    }
}

fn check_from_selector(
    cx: &mut Ctx,
    from: Option<FromNamespaces>,
    selector: &Option<LabelSelector>,
) {
    if from == Some(FromNamespaces::Selector) && selector.is_none() {
        cx.error_at("selector", "`selector` is required when `from` is Selector");
    }
    cx.opt("selector", selector);
}

impl Validate for GatewaySpec {
    fn validate(&self, cx: &mut Ctx) {
        if self.gateway_class_name.is_empty() {
            cx.require("gatewayClassName", false);
        } else {
            check_required_name(cx, "gatewayClassName", &self.gateway_class_name);
        }
        if self.listeners.is_empty() {
            cx.error_at(
                "listeners",
                "`listeners` is required: a Gateway needs at least one listener",
            );
        }
        check_max_items(cx, "listeners", self.listeners.len(), 64);
        cx.list("listeners", &self.listeners);
        validate_listener_set(cx, &self.listeners);

        check_max_items(cx, "addresses", self.addresses.len(), 16);
        validate_addresses(cx, &self.addresses);

        if let Some(infra) = &self.infrastructure {
            cx.field("infrastructure", |cx| {
                check_qualified_keys(cx, "labels", &infra.labels, 8, usize::MAX);
                cx.field("labels", |cx| {
                    for (k, v) in &infra.labels {
                        if !crate::validate::is_label_value(v) {
                            cx.error_at(
                                k,
                                format!("label value `{v}` is invalid: it must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"),
                            );
                        }
                    }
                });
                check_qualified_keys(cx, "annotations", &infra.annotations, 16, usize::MAX);
                cx.opt("parametersRef", &infra.parameters_ref);
            });
        }
        if let Some(al) = &self.allowed_listeners
            && let Some(ns) = &al.namespaces
        {
            cx.field("allowedListeners", |cx| {
                cx.field("namespaces", |cx| {
                    check_from_selector(cx, ns.from, &ns.selector)
                })
            });
        }
        if let Some(tls) = &self.tls {
            cx.field("tls", |cx| {
                cx.opt("backend", &tls.backend);
                if let Some(f) = &tls.frontend {
                    cx.field("frontend", |cx| {
                        match &f.default {
                            None => cx.require("default", false),
                            Some(d) => cx.field("default", |cx| d.validate(cx)),
                        }
                        check_max_items(cx, "perPort", f.per_port.len(), 64);
                        let mut ports = BTreeSet::new();
                        cx.each("perPort", &f.per_port, |cx, _, p| {
                            match p.port {
                                None => cx.require("port", false),
                                Some(port) => {
                                    cx.field("port", |cx| check_port(cx, port));
                                    if !ports.insert(port) {
                                        cx.error_at("port", format!("port {port} already has a TLS configuration: ports must be unique"));
                                    }
                                }
                            }
                            match &p.tls {
                                None => cx.require("tls", false),
                                Some(t) => cx.field("tls", |cx| t.validate(cx)),
                            }
                        });
                    });
                }
            });
        }
        if let Some(b) = &self.backend_tls {
            cx.warn_at(
                "backendTLS",
                "`backendTLS` was experimental in Gateway API v1.3 and v1.4 and is replaced by `tls.backend` since v1.5: move `clientCertificateRef` there",
            );
            cx.field("backendTLS", |cx| b.validate(cx));
        }
    }
}

impl Validate for Listener {
    fn validate(&self, cx: &mut Ctx) {
        if self.name.is_empty() {
            cx.require("name", false);
        } else {
            cx.field("name", |cx| check_section_name(cx, &self.name));
        }
        match self.port {
            None => cx.require("port", false),
            Some(p) => cx.field("port", |cx| check_port(cx, p)),
        }
        let proto = self.protocol.to_ascii_uppercase();
        if self.protocol.is_empty() {
            cx.require("protocol", false);
        } else {
            cx.field("protocol", |cx| check_protocol(cx, &self.protocol));
        }
        if let Some(h) = &self.hostname {
            cx.field("hostname", |cx| check_hostname(cx, h));
            if matches!(proto.as_str(), "TCP" | "UDP") {
                cx.error_at(
                    "hostname",
                    format!("`hostname` must not be set for protocol {}: {0} listeners do not match on hostnames", self.protocol),
                );
            }
        }
        match (&self.tls, proto.as_str()) {
            (Some(_), "HTTP" | "TCP" | "UDP") => cx.error_at(
                "tls",
                format!("`tls` must not be set for protocol {}: use HTTPS or TLS to terminate or pass through TLS", self.protocol),
            ),
            (None, "HTTPS") => cx.error_at(
                "tls",
                "`tls` is required for protocol HTTPS: set `tls.certificateRefs` to the certificate Secret",
            ),
            (None, "TLS") => cx.error_at(
                "tls",
                "`tls` is required for protocol TLS: set `tls.mode` to Passthrough or Terminate",
            ),
            _ => {}
        }
        if let Some(tls) = &self.tls {
            cx.field("tls", |cx| validate_listener_tls(cx, tls, &proto));
        }
        if let Some(ar) = &self.allowed_routes {
            cx.field("allowedRoutes", |cx| {
                if let Some(ns) = &ar.namespaces {
                    cx.field("namespaces", |cx| {
                        if ns.from == Some(FromNamespaces::None) {
                            cx.error_at("from", "`None` is not a valid value here (valid values: All, Selector, Same)");
                        }
                        check_from_selector(cx, ns.from, &ns.selector);
                    });
                }
                check_max_items(cx, "kinds", ar.kinds.len(), 8);
                cx.each("kinds", &ar.kinds, |cx, _, k| {
                    opt_check(cx, "group", &k.group, check_group);
                    check_required_kind(cx, "kind", &k.kind);
                });
            });
        }
    }
}

/// A listener `protocol`: a core protocol (any case), or a domain-prefixed name.
fn check_protocol(cx: &mut Ctx, p: &str) {
    if p.len() > 255 {
        cx.error(format!("protocol `{p}` is longer than 255 characters"));
        return;
    }
    if CORE_PROTOCOLS.iter().any(|c| c.eq_ignore_ascii_case(p)) {
        return;
    }
    if let Some((domain, name)) = p.split_once('/') {
        if crate::validate::is_dns1123_subdomain(domain)
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            cx.warn(format!(
                "protocol `{p}` is implementation-specific: weft implements HTTP, HTTPS, TLS and TCP, so this listener will not be accepted"
            ));
            return;
        }
        cx.error(format!(
            "protocol `{p}` is invalid: a custom protocol must be a DNS domain, '/', and letters or digits, such as `example.com/my-protocol`"
        ));
        return;
    }
    let mut msg = format!(
        "protocol `{p}` is not a Gateway API protocol: use HTTP, HTTPS, TLS, TCP or UDP (or a domain-prefixed custom protocol such as `example.com/my-protocol`)"
    );
    match p.to_ascii_uppercase().as_str() {
        "GRPC" | "HTTP2" => msg.push_str("; gRPC and HTTP/2 are served on HTTP or HTTPS listeners"),
        _ => {
            if let Some(s) =
                crate::validate::suggest(&p.to_ascii_uppercase(), CORE_PROTOCOLS.iter().copied())
            {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
        }
    }
    cx.error(msg);
}

fn validate_listener_tls(cx: &mut Ctx, tls: &ListenerTlsConfig, proto: &str) {
    let mode = tls.mode.unwrap_or_default();
    if proto == "HTTPS" && mode != TlsModeType::Terminate {
        cx.error_at(
            "mode",
            "tls mode must be Terminate for protocol HTTPS: use protocol TLS with a TLSRoute to pass TLS through",
        );
    }
    if proto == "TLS" && tls.mode.is_none() {
        cx.error_at(
            "mode",
            "`mode` is required for protocol TLS: set Passthrough or Terminate",
        );
    }
    if mode == TlsModeType::Terminate
        && matches!(proto, "HTTPS" | "TLS")
        && tls.certificate_refs.is_empty()
        && tls.options.is_empty()
    {
        cx.error_at(
            "certificateRefs",
            "`certificateRefs` must name at least one certificate Secret when TLS is terminated (mode Terminate)",
        );
    }
    check_max_items(cx, "certificateRefs", tls.certificate_refs.len(), 64);
    cx.list("certificateRefs", &tls.certificate_refs);
    check_qualified_keys(cx, "options", &tls.options, 16, 4096);
    if let Some(fv) = &tls.frontend_validation {
        cx.warn_at(
            "frontendValidation",
            "`frontendValidation` was experimental in Gateway API v1.3 and is replaced by the Gateway's `tls.frontend.default.validation` (or `tls.frontend.perPort`) since v1.4",
        );
        cx.field("frontendValidation", |cx| {
            check_max_items(cx, "caCertificateRefs", fv.ca_certificate_refs.len(), 8);
            cx.list("caCertificateRefs", &fv.ca_certificate_refs);
        });
    }
}

/// Rules across listeners: unique names, and a unique (port, protocol, hostname) each.
fn validate_listener_set(cx: &mut Ctx, listeners: &[Listener]) {
    check_unique(
        cx,
        "listeners",
        "name",
        listeners.iter().map(|l| l.name.as_str()),
        false,
        "listener name",
    );
    let mut seen: BTreeMap<(Option<u32>, &str, &str), usize> = BTreeMap::new();
    cx.field("listeners", |cx| {
        for (i, l) in listeners.iter().enumerate() {
            let key = (l.port, l.protocol.as_str(), l.hostname.as_deref().unwrap_or(""));
            if let Some(first) = seen.get(&key) {
                let host = l.hostname.as_deref().map(|h| format!(" and hostname `{h}`")).unwrap_or_default();
                cx.index(i, |cx| {
                    cx.error(format!(
                        "listeners[{first}] already uses port {} with protocol {}{host}: the combination of port, protocol and hostname must be unique for each listener",
                        l.port.unwrap_or(0),
                        l.protocol
                    ))
                });
            } else {
                seen.insert(key, i);
            }
        }
    });
}

fn validate_addresses(cx: &mut Ctx, addresses: &[GatewaySpecAddress]) {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    cx.each("addresses", addresses, |cx, i, a| {
        let ty = a.type_.as_deref().unwrap_or("IPAddress");
        if let Some(t) = &a.type_ {
            let custom = t.split_once('/').is_some_and(|(d, p)| crate::validate::is_dns1123_subdomain(d) && !p.is_empty());
            if t == "NamedAddress" {
                cx.warn_at("type", "address type NamedAddress is deprecated: use an implementation-specific domain-prefixed type");
            } else if !(t == "IPAddress" || t == "Hostname" || custom) {
                let mut msg = format!(
                    "address type `{t}` is invalid: use IPAddress, Hostname or a domain-prefixed type such as `example.com/my-address`"
                );
                if let Some(s) = crate::validate::suggest(t, ["IPAddress", "Hostname"]) {
                    msg.push_str(&format!("; did you mean `{s}`?"));
                }
                cx.error_at("type", msg);
            }
        }
        let Some(value) = a.value.as_deref().filter(|v| !v.is_empty()) else {
            return;
        };
        if value.len() > 253 {
            cx.error_at("value", format!("address `{value}` is longer than 253 characters"));
        }
        match ty {
            "IPAddress" => {
                if value.parse::<std::net::IpAddr>().is_err() {
                    cx.error_at("value", format!("`{value}` is not a valid IP address"));
                }
            }
            "Hostname" => {
                if let Some(p) = hostname_problem(value, true) {
                    cx.error_at("value", p);
                }
            }
            _ => return,
        }
        let key = (ty.to_string(), value.to_string());
        if let Some(first) = seen.get(&key) {
            cx.error_at("value", format!("{ty} `{value}` is already listed at addresses[{first}]: values must be unique"));
        } else {
            seen.insert(key, i);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_names() {
        assert_eq!(controller_name_problem("istio.io/gateway-controller"), None);
        assert_eq!(controller_name_problem("example.net/gateway/v1"), None);
        assert!(controller_name_problem("example.net").is_some());
        assert!(controller_name_problem("Example.net/x").is_some());
        assert!(controller_name_problem("example.net/").is_some());
    }
}
