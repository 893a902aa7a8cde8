//! `Gateway` (networking.istio.io): the ports, hosts and TLS settings of an edge proxy.
//!
//! Field list from istio/api `networking/v1alpha3/gateway.proto` and the generated CRD
//! schema; validation follows Istio's `ValidateGateway` and `validateTLSOptions`.

use self::mesh_checks::{
    Protocol, check_ns_slash_host, check_unix_address, ip_problem, parse_protocol,
};
use crate::validate::{Ctx, Validate, check_labels, check_port};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A load balancer at the edge of the mesh: which ports it listens on and for which hosts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gateway {
    /// The servers (port + hosts + TLS) this gateway exposes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Server>,
    /// Labels of the gateway pods (in this namespace) that take this configuration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
}

/// One listener of a gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Server {
    /// The port the proxy listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<ServerPort>,
    /// IP address or `unix://` socket to bind to (hidden in Istio's docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// Hosts exposed, as `dnsName` or `namespace/dnsName` (`*`, `.` allowed as namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// TLS settings: redirect to HTTPS, termination mode and certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
    /// Loopback endpoint or unix socket to forward to (not implemented by Istio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_endpoint: Option<String>,
    /// Optional server name, unique across servers; used as a stats prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The port of a gateway server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerPort {
    /// Port number, 1-65535 (0 only with a unix socket bind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    /// HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP or TLS (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Port name, unique across the gateway's servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Deprecated; has no effect on gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
}

/// TLS settings of a server (gateways, and sidecar ingress listeners).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerTlsSettings {
    /// Send a 301 redirect to HTTPS for plain HTTP requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect: Option<bool>,
    /// How TLS is handled on this port (default PASSTHROUGH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ServerTlsMode>,
    /// Path to the server certificate file (SIMPLE/MUTUAL without credentialName).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<String>,
    /// Path to the server private key file (SIMPLE/MUTUAL without credentialName).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// Path to the CA bundle that verifies client certificates (MUTUAL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
    /// Secret or ConfigMap holding the CA certificates for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_credential_name: Option<String>,
    /// Path to a certificate revocation list used to check client certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_crl: Option<String>,
    /// Kubernetes secret holding the key, certificate and (for MUTUAL) CA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<String>,
    /// Like `credentialName`, for up to two certificates (e.g. RSA and ECDSA).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential_names: Vec<String>,
    /// Up to two file-based certificate/key pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_certificates: Vec<ServerTlsCertificate>,
    /// Subject alternative names accepted in client certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// Base64 SHA-256 hashes of the SPKI of accepted client certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_certificate_spki: Vec<String>,
    /// Hex SHA-256 hashes of accepted client certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_certificate_hash: Vec<String>,
    /// Lowest TLS version accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_protocol_version: Option<ServerTlsProtocol>,
    /// Highest TLS version accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_protocol_version: Option<ServerTlsProtocol>,
    /// Cipher suites to offer instead of Envoy's defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
}

/// A certificate/key pair given by file paths.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerTlsCertificate {
    /// Path to the certificate file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<String>,
    /// Path to the private key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// Path to the CA bundle for client verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
}

/// How a server handles TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTlsMode {
    /// Route on SNI without terminating TLS.
    #[default]
    Passthrough,
    /// Terminate TLS with a server certificate.
    Simple,
    /// Terminate TLS and require a client certificate.
    Mutual,
    /// Route on SNI encoding the destination (multi-network east-west gateways).
    AutoPassthrough,
    /// Terminate mTLS with Istio-issued workload certificates.
    IstioMutual,
    /// Terminate TLS; verify a client certificate if one is presented.
    OptionalMutual,
}

impl ServerTlsMode {
    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerTlsMode::Passthrough => "PASSTHROUGH",
            ServerTlsMode::Simple => "SIMPLE",
            ServerTlsMode::Mutual => "MUTUAL",
            ServerTlsMode::AutoPassthrough => "AUTO_PASSTHROUGH",
            ServerTlsMode::IstioMutual => "ISTIO_MUTUAL",
            ServerTlsMode::OptionalMutual => "OPTIONAL_MUTUAL",
        }
    }
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServerTlsProtocol {
    /// Let Envoy choose.
    #[default]
    #[serde(rename = "TLS_AUTO")]
    TlsAuto,
    #[serde(rename = "TLSV1_0")]
    Tlsv1_0,
    #[serde(rename = "TLSV1_1")]
    Tlsv1_1,
    #[serde(rename = "TLSV1_2")]
    Tlsv1_2,
    #[serde(rename = "TLSV1_3")]
    Tlsv1_3,
}

impl ServerTlsProtocol {
    fn as_str(self) -> &'static str {
        match self {
            ServerTlsProtocol::TlsAuto => "TLS_AUTO",
            ServerTlsProtocol::Tlsv1_0 => "TLSV1_0",
            ServerTlsProtocol::Tlsv1_1 => "TLSV1_1",
            ServerTlsProtocol::Tlsv1_2 => "TLSV1_2",
            ServerTlsProtocol::Tlsv1_3 => "TLSV1_3",
        }
    }
}

impl Validate for Gateway {
    fn validate(&self, cx: &mut Ctx) {
        cx.field("selector", |cx| check_labels(cx, &self.selector));
        if self.servers.is_empty() {
            cx.error_at(
                "servers",
                "`servers` is required: a gateway needs at least one server",
            );
        }
        let mut port_names: BTreeMap<String, usize> = BTreeMap::new();
        let mut server_names: BTreeMap<String, usize> = BTreeMap::new();
        cx.each("servers", &self.servers, |cx, i, server| {
            server.validate(cx);
            if let Some(name) = server.port.as_ref().and_then(|p| p.name.as_deref()) {
                if let Some(first) = port_names.get(name) {
                    cx.error_at(
                        "port",
                        format!(
                            "port name `{name}` is already used by servers[{first}]: port names must be unique across a gateway's servers"
                        ),
                    );
                } else {
                    port_names.insert(name.to_string(), i);
                }
            }
            if let Some(name) = server.name.as_deref().filter(|n| !n.is_empty()) {
                if let Some(first) = server_names.get(name) {
                    cx.error_at(
                        "name",
                        format!("server name `{name}` is already used by servers[{first}]: server names must be unique"),
                    );
                } else {
                    server_names.insert(name.to_string(), i);
                }
            }
        });
    }
}

impl Validate for Server {
    fn validate(&self, cx: &mut Ctx) {
        if self.hosts.is_empty() {
            cx.error_at(
                "hosts",
                "`hosts` is required: a server must expose at least one host (use \"*\" for any)",
            );
        }
        cx.each("hosts", &self.hosts, |cx, _, h| {
            check_ns_slash_host(cx, h, true)
        });

        let bind = self.bind.as_deref().unwrap_or("");
        let unix_bind = bind.starts_with(mesh_checks::UNIX_PREFIX);
        let mut protocol = None;
        match &self.port {
            None => cx.error_at("port", "`port` is required"),
            Some(port) => cx.field("port", |cx| {
                protocol = check_server_port(cx, port, unix_bind);
            }),
        }
        if let Some(b) = self.bind.as_deref().filter(|b| !b.is_empty()) {
            cx.field("bind", |cx| {
                if let Some(path) = b.strip_prefix(mesh_checks::UNIX_PREFIX) {
                    check_unix_address(cx, path);
                    if let Some(n) = self
                        .port
                        .as_ref()
                        .and_then(|p| p.number)
                        .filter(|n| *n != 0)
                    {
                        cx.error(format!(
                            "port number must be 0 when binding to unix socket `{b}`, not {n}"
                        ));
                    }
                } else if let Some(p) = ip_problem(b) {
                    cx.error(format!(
                        "bind {p}: it must be an IP address or unix:// socket path"
                    ));
                }
            });
        }
        if let Some(tls) = &self.tls {
            cx.field("tls", |cx| tls.validate(cx));
        }
        let Some(protocol) = protocol else { return };
        let redirect = self
            .tls
            .as_ref()
            .and_then(|t| t.https_redirect)
            .unwrap_or(false);
        match &self.tls {
            None if protocol.is_tls() => cx.error_at(
                "tls",
                format!(
                    "a server with protocol {} must have `tls` settings (mode SIMPLE, MUTUAL, PASSTHROUGH, ...)",
                    protocol.as_str()
                ),
            ),
            Some(tls) if !protocol.is_tls() => {
                if protocol.is_http() {
                    let mode = tls.mode.unwrap_or_default();
                    let passthrough = matches!(mode, ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough);
                    if !passthrough || has(&tls.ca_certificates) || has(&tls.private_key) || has(&tls.server_certificate) {
                        cx.error_at(
                            "tls",
                            format!(
                                "a plain-text {} server cannot terminate TLS: only `httpsRedirect` may be set; use protocol HTTPS to terminate TLS",
                                protocol.as_str()
                            ),
                        );
                    }
                } else {
                    cx.error_at(
                        "tls",
                        format!(
                            "a {} server cannot have `tls` settings: only HTTPS and TLS servers use them",
                            protocol.as_str()
                        ),
                    );
                }
            }
            _ => {}
        }
        if redirect && !protocol.is_http() {
            cx.field("tls", |cx| {
                cx.warn_at(
                    "httpsRedirect",
                    format!("`httpsRedirect` only applies to HTTP servers; it has no effect on a {} server", protocol.as_str()),
                )
            });
        }
    }
}

/// Checks a gateway server port; returns its protocol when valid.
fn check_server_port(cx: &mut Ctx, port: &ServerPort, unix_bind: bool) -> Option<Protocol> {
    let protocol = match port.protocol.as_deref() {
        None | Some("") => {
            cx.error_at("protocol", "`protocol` is required: one of HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP, TLS");
            None
        }
        Some(p) => {
            let parsed = parse_protocol(p);
            if parsed.is_none() {
                cx.error_at(
                    "protocol",
                    format!("protocol `{p}` is not supported: use one of HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP, TLS"),
                );
            }
            parsed
        }
    };
    match port.number {
        None => {
            if !unix_bind {
                cx.error_at("number", "`number` is required");
            }
        }
        Some(n) => {
            if n > 0 || !unix_bind {
                cx.field("number", |cx| check_port(cx, n));
            }
        }
    }
    if port.target_port.is_some_and(|t| t > 0) {
        cx.error_at(
            "targetPort",
            "`targetPort` has no effect on gateways: remove it",
        );
    }
    match port.name.as_deref() {
        None | Some("") => cx.error_at(
            "name",
            "`name` is required: every gateway server port needs a name",
        ),
        Some(_) => {}
    }
    protocol
}

fn has(o: &Option<String>) -> bool {
    o.as_deref().is_some_and(|s| !s.is_empty())
}

impl Validate for ServerTlsSettings {
    fn validate(&self, cx: &mut Ctx) {
        let mode = self.mode.unwrap_or_default();
        let m = mode.as_str();
        cx.at_most_one(&[
            ("credentialName", has(&self.credential_name)),
            ("credentialNames", !self.credential_names.is_empty()),
            ("tlsCertificates", !self.tls_certificates.is_empty()),
        ]);
        if self.credential_names.len() > 2 {
            cx.error_at(
                "credentialNames",
                format!(
                    "{} credential names given: at most 2 are allowed",
                    self.credential_names.len()
                ),
            );
        }
        if self.tls_certificates.len() > 2 {
            cx.error_at(
                "tlsCertificates",
                format!(
                    "{} certificates given: at most 2 are allowed",
                    self.tls_certificates.len()
                ),
            );
        }
        cx.each("credentialNames", &self.credential_names, |cx, _, n| {
            if n.is_empty() {
                cx.error("credential name must not be empty");
            }
        });
        cx.each("tlsCertificates", &self.tls_certificates, |cx, _, c| {
            if !has(&c.server_certificate) {
                cx.error_at("serverCertificate", "`serverCertificate` is required");
            }
            if !has(&c.private_key) {
                cx.error_at("privateKey", "`privateKey` is required");
            }
        });

        // Versions and ciphers.
        if let (Some(min), Some(max)) = (self.min_protocol_version, self.max_protocol_version)
            && min != ServerTlsProtocol::TlsAuto
            && max != ServerTlsProtocol::TlsAuto
            && min > max
        {
            cx.error_at(
                "minProtocolVersion",
                format!(
                    "minProtocolVersion {} is above maxProtocolVersion {}: no TLS version could be negotiated",
                    min.as_str(),
                    max.as_str()
                ),
            );
        }
        if matches!(
            self.min_protocol_version,
            Some(ServerTlsProtocol::Tlsv1_0 | ServerTlsProtocol::Tlsv1_1)
        ) && self.cipher_suites.is_empty()
        {
            cx.warn_at(
                "minProtocolVersion",
                "TLS versions below TLSV1_2 need `cipherSuites` set to compatible ciphers: the default ciphers no longer include any",
            );
        }
        let mut seen = BTreeSet::new();
        cx.each("cipherSuites", &self.cipher_suites, |cx, _, cs| {
            if !mesh_checks::is_valid_cipher_suite(cs) {
                cx.warn(format!(
                    "cipher suite `{cs}` is not supported by Envoy and will be ignored"
                ));
            } else if !seen.insert(cs.clone()) {
                cx.warn(format!(
                    "cipher suite `{cs}` is listed twice; the duplicate is ignored"
                ));
            }
        });
        cx.each("verifyCertificateHash", &self.verify_certificate_hash, |cx, _, h| {
            let hex: String = h.chars().filter(|c| *c != ':').collect();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                cx.error(format!(
                    "`{h}` is not a hex-encoded SHA-256 hash: it must be 64 hex digits, optionally separated by ':'"
                ));
            }
        });
        cx.each("verifyCertificateSpki", &self.verify_certificate_spki, |cx, _, h| {
            let ok = h.len() == 44
                && h.ends_with('=')
                && h[..43].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
            if !ok {
                cx.error(format!(
                    "`{h}` is not a base64-encoded SHA-256 hash: it must be 44 base64 characters ending in '='"
                ));
            }
        });

        match mode {
            ServerTlsMode::IstioMutual => {
                for (field, set) in [
                    ("serverCertificate", has(&self.server_certificate)),
                    ("privateKey", has(&self.private_key)),
                    ("caCertificates", has(&self.ca_certificates)),
                    ("credentialName", has(&self.credential_name)),
                    ("credentialNames", !self.credential_names.is_empty()),
                    ("tlsCertificates", !self.tls_certificates.is_empty()),
                ] {
                    if set {
                        cx.error_at(
                            field,
                            format!("mode ISTIO_MUTUAL uses Istio's workload certificates: `{field}` must not be set"),
                        );
                    }
                }
                return;
            }
            ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough => {
                if has(&self.ca_crl)
                    || has(&self.server_certificate)
                    || has(&self.private_key)
                    || has(&self.ca_certificates)
                    || has(&self.credential_name)
                {
                    cx.warn(format!(
                        "mode {m} does not terminate TLS: the certificate settings are ignored"
                    ));
                }
                return;
            }
            _ => {}
        }
        // SIMPLE, MUTUAL, OPTIONAL_MUTUAL.
        let mutual = matches!(mode, ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual);
        let from_credential = has(&self.credential_name) || !self.credential_names.is_empty();
        if has(&self.ca_crl) {
            if from_credential {
                cx.error_at(
                    "caCrl",
                    "`caCrl` cannot be used with `credentialName`: put the CRL in the credential (key `ca.crl`)",
                );
            }
            if mode == ServerTlsMode::Simple {
                cx.error_at(
                    "caCrl",
                    "`caCrl` is not supported with mode SIMPLE: it only checks client certificates",
                );
            }
        }
        if from_credential {
            return;
        }
        if self.tls_certificates.is_empty() {
            if !has(&self.server_certificate) {
                cx.error_at(
                    "serverCertificate",
                    format!("mode {m} needs a certificate: set `credentialName` or `serverCertificate` and `privateKey`"),
                );
            }
            if !has(&self.private_key) {
                cx.error_at(
                    "privateKey",
                    format!("mode {m} needs a private key: set `credentialName` or `serverCertificate` and `privateKey`"),
                );
            }
        }
        let ca_in_certs = self
            .tls_certificates
            .iter()
            .any(|c| has(&c.ca_certificates));
        if mutual
            && !has(&self.ca_certificates)
            && !has(&self.ca_cert_credential_name)
            && !ca_in_certs
        {
            cx.error_at(
                "caCertificates",
                format!(
                    "mode {m} needs a CA bundle to verify client certificates: set `caCertificates` (or use `credentialName`)"
                ),
            );
        }
    }
}

/// Checks shared by the networking kinds (and by security and telemetry): protocols, IP
/// addresses, host forms, selectors and `exportTo`.
pub(crate) mod mesh_checks {
    use crate::validate::{
        Ctx, check_port, is_dns1123_label, is_label_value, label_key_problem, wildcard_host_reason,
    };
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::IpAddr;

    /// Prefix of unix domain socket addresses.
    pub const UNIX_PREFIX: &str = "unix://";

    pub use crate::kube::Protocol;

    /// Parses a protocol name like Istio does (case-insensitive); `None` if unsupported.
    pub fn parse_protocol(s: &str) -> Option<Protocol> {
        Some(Protocol::parse(s)).filter(|p| *p != Protocol::Unsupported)
    }

    /// An optional protocol (empty means "detect"): reports an unsupported one.
    pub fn check_protocol(cx: &mut Ctx, protocol: Option<&str>) {
        if let Some(p) = protocol.filter(|p| !p.is_empty())
            && parse_protocol(p).is_none()
        {
            cx.error(format!(
                "protocol `{p}` is not supported: use one of HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, REDIS, MYSQL, TCP, TLS or UDP"
            ));
        }
    }

    /// A port name as Istio accepts it: a DNS-1123 label (letters of either case, digits, '-').
    pub fn is_port_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    }

    pub fn check_port_name(cx: &mut Ctx, name: &str) {
        if !is_port_name(name) {
            cx.error(format!(
                "port name `{name}` is invalid: it must be 1-63 letters, digits or '-', starting and ending with a letter or digit"
            ));
        }
    }

    /// Why `s` is not an IP address, if it is not.
    pub fn ip_problem(s: &str) -> Option<String> {
        match s.parse::<IpAddr>() {
            Ok(_) => None,
            Err(_) => Some(format!("`{s}` is not a valid IP address")),
        }
    }

    pub fn is_ip(s: &str) -> bool {
        s.parse::<IpAddr>().is_ok()
    }

    /// Why `s` is neither an IP address nor a CIDR block, if it is neither.
    pub fn ip_or_cidr_problem(s: &str) -> Option<String> {
        if let Some((addr, bits)) = s.split_once('/') {
            let Ok(ip) = addr.parse::<IpAddr>() else {
                return Some(format!(
                    "`{s}` is not a valid CIDR block: `{addr}` is not an IP address"
                ));
            };
            let max = if ip.is_ipv4() { 32 } else { 128 };
            match bits.parse::<u8>() {
                Ok(b) if b <= max && !bits.starts_with('+') => None,
                _ => Some(format!(
                    "`{s}` is not a valid CIDR block: the prefix length must be 0-{max}"
                )),
            }
        } else {
            ip_problem(s).map(|_| format!("`{s}` is not a valid IP address or CIDR block"))
        }
    }

    /// A unix socket path (after `unix://`): absolute file path or `@abstract` name.
    pub fn check_unix_address(cx: &mut Ctx, path: &str) {
        if path.is_empty() {
            cx.error("unix socket address must not be empty");
        } else if !path.starts_with('@') && (!path.starts_with('/') || path.ends_with('/')) {
            cx.error(format!(
                "unix socket `{path}` must be an absolute path to a file (like /var/run/app.sock) or an abstract name starting with '@'"
            ));
        }
    }

    /// Why `host` is not a DNS name with an optional leading wildcard label (Istio's
    /// `ValidateWildcardDomain`, plus its rejection of partial wildcards).
    pub fn wildcard_domain_problem(host: &str) -> Option<String> {
        if let Some(p) = wildcard_host_reason(host) {
            return Some(p);
        }
        let trimmed = host.strip_suffix('.').unwrap_or(host);
        if let Some(tld) = trimmed.rsplit('.').next()
            && trimmed.contains('.')
            && !tld.is_empty()
            && tld.bytes().all(|b| b.is_ascii_digit())
        {
            return Some(format!(
                "host `{host}` is not a valid DNS name: the top-level domain `{tld}` cannot be all digits"
            ));
        }
        None
    }

    /// Why `host` is not a fully qualified DNS name (no wildcards), if it is not.
    pub fn fqdn_problem(host: &str) -> Option<String> {
        if host.contains('*') {
            return Some(format!(
                "`{host}` contains a wildcard: a concrete DNS name is needed here"
            ));
        }
        wildcard_domain_problem(host)
    }

    /// A `*` somewhere other than as the whole first label (`*foo.com`, `foo.*.com`).
    pub fn is_partial_wildcard(host: &str) -> bool {
        let leading = host
            .strip_prefix("*.")
            .is_some_and(|rest| !rest.contains('*'));
        host.contains('*') && host != "*" && !leading
    }

    /// A gateway or sidecar host: `namespace/dnsName` (gateways also accept a bare `dnsName`).
    pub fn check_ns_slash_host(cx: &mut Ctx, host: &str, is_gateway: bool) {
        let what = if is_gateway {
            "gateway"
        } else {
            "sidecar egress"
        };
        let Some((ns, name)) = host.split_once('/') else {
            if is_gateway {
                check_host_part(cx, host, host, true);
            } else {
                cx.error(format!(
                    "host `{host}` must be of the form namespace/dnsName, e.g. `./{host}` or `*/{host}`"
                ));
            }
            return;
        };
        if ns.is_empty() || name.is_empty() {
            cx.error(format!(
                "host `{host}`: the namespace and the dnsName must both be non-empty"
            ));
            return;
        }
        let special = ns == "*" || ns == "." || (!is_gateway && ns == "~");
        if !special && !is_dns1123_label(ns) {
            cx.error(format!(
                "host `{host}` has an invalid namespace `{ns}` in {what} hosts: use a namespace name, `*` (any) or `.` (this namespace)"
            ));
        }
        check_host_part(cx, host, name, is_gateway);
    }

    fn check_host_part(cx: &mut Ctx, full: &str, name: &str, is_gateway: bool) {
        if is_gateway && is_ip(name) {
            return;
        }
        if is_partial_wildcard(name) {
            cx.error(format!(
                "host `{full}` has a partial wildcard: only `*` alone or a leading `*.` is allowed"
            ));
            return;
        }
        if let Some(p) = wildcard_domain_problem(name) {
            cx.error(p);
            return;
        }
        if name != "*" && !name.contains('.') {
            cx.error(format!(
                "host `{full}` is a short name: use a fully qualified name such as `{name}.<namespace>.svc.cluster.local`"
            ));
        }
    }

    /// A `workloadSelector: {labels: ...}` selector (networking kinds).
    pub fn check_alpha_selector(cx: &mut Ctx, labels: &BTreeMap<String, String>, kind: &str) {
        if labels.is_empty() {
            cx.warn_at(
                "labels",
                format!("workload selector has no labels: this {kind} applies to every workload in the namespace"),
            );
        }
        cx.field("labels", |cx| check_selector_labels(cx, labels));
    }

    /// Selector labels: no empty keys, no wildcards, valid Kubernetes labels.
    pub fn check_selector_labels(cx: &mut Ctx, labels: &BTreeMap<String, String>) {
        for (k, v) in labels {
            cx.field(k, |cx| {
                if k.is_empty() {
                    cx.error("empty label key is not allowed in a selector");
                } else if k.contains('*') || v.contains('*') {
                    cx.error(format!("wildcard in selector `{k}={v}` is not supported: selectors match exact labels"));
                } else if let Some(p) = label_key_problem(k) {
                    cx.error(p);
                } else if !is_label_value(v) {
                    cx.error(format!(
                        "label value `{v}` is invalid: it must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
                    ));
                }
            });
        }
    }

    /// `exportTo`: `.`, `*`, namespace names (and `~` for service entries), no duplicates.
    pub fn check_export_to(cx: &mut Ctx, export_to: &[String], is_service_entry: bool) {
        let ns = cx.namespace.clone();
        let mut seen = BTreeSet::new();
        cx.each("exportTo", export_to, |cx, _, e| {
            let key = if e == "." { ns.as_str() } else { e.as_str() };
            let valid = e == "." || e == "*" || (is_service_entry && e == "~") || is_dns1123_label(e);
            if !valid {
                let extra = if is_service_entry { ", `~` (nobody)" } else { "" };
                cx.error(format!(
                    "`{e}` is not a valid exportTo value: use `.` (this namespace), `*` (all namespaces){extra} or a namespace name"
                ));
                return;
            }
            if !seen.insert(key.to_string()) {
                if key != e {
                    cx.error(format!("`.` and the current namespace `{ns}` both appear in exportTo"));
                } else {
                    cx.error(format!("`{e}` appears twice in exportTo"));
                }
            }
        });
        if export_to.len() > 1 {
            if export_to.iter().any(|e| e == "*") {
                cx.error_at(
                    "exportTo",
                    "exportTo cannot mix `*` (all namespaces) with other values: `*` alone already exports everywhere",
                );
            }
            if export_to.iter().any(|e| e == "~") {
                cx.error_at(
                    "exportTo",
                    "exportTo cannot mix `~` (nobody) with other values",
                );
            }
        }
    }

    /// A `127.0.0.1:PORT`, `0.0.0.0:PORT`, `[::1]:PORT`, `[::]:PORT`, `:PORT` or `unix://` endpoint.
    pub fn check_default_endpoint(cx: &mut Ctx, ep: &str) {
        if let Some(path) = ep.strip_prefix(UNIX_PREFIX) {
            check_unix_address(cx, path);
            return;
        }
        let split = if let Some(rest) = ep.strip_prefix('[') {
            rest.split_once("]:")
        } else {
            ep.rsplit_once(':').filter(|(h, _)| !h.contains(':'))
        };
        let Some((host, port)) = split else {
            cx.error(format!(
                "defaultEndpoint `{ep}` must be of the form 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix:///path"
            ));
            return;
        };
        if !matches!(host, "" | "127.0.0.1" | "0.0.0.0" | "::1" | "::") {
            cx.error(format!(
                "defaultEndpoint `{ep}` must forward to 127.0.0.1, 0.0.0.0, [::1], [::] or a unix:// socket, not `{host}`"
            ));
        }
        match port.parse::<u32>() {
            Ok(n) => check_port(cx, n),
            Err(_) => cx.error(format!(
                "defaultEndpoint `{ep}` has a port `{port}` that is not a number"
            )),
        }
    }

    /// Envoy (BoringSSL) cipher suite names accepted in `cipherSuites`.
    pub fn is_valid_cipher_suite(cs: &str) -> bool {
        const VALID: &[&str] = &[
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "ECDHE-RSA-CHACHA20-POLY1305",
            "ECDHE-ECDSA-AES128-SHA",
            "ECDHE-RSA-AES128-SHA",
            "ECDHE-ECDSA-AES256-SHA",
            "ECDHE-RSA-AES256-SHA",
            "AES128-GCM-SHA256",
            "AES256-GCM-SHA384",
            "AES128-SHA",
            "AES256-SHA",
            "DES-CBC3-SHA",
        ];
        // Operators such as `-` or `+` and bracketed groups are passed through to BoringSSL.
        cs.is_empty()
            || cs == "ALL"
            || !cs.as_bytes()[0].is_ascii_alphanumeric()
            || VALID.contains(&cs)
    }
}
