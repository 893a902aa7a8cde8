//! Gateway, ServiceEntry, WorkloadEntry, WorkloadGroup, Sidecar, PeerAuthentication,
//! AuthorizationPolicy, RequestAuthentication and Telemetry: realistic documents from
//! Istio's docs must load without errors; each invalid document has one mistake and must be
//! reported at the right field, line and with a clear message.
//!
//! In the invalid documents, `#!` marks the line the finding must point at.

use weft_model::istio::networking::{ServerTlsMode, ServiceEntryResolution};
use weft_model::istio::security::{AuthorizationAction, MtlsMode};
use weft_model::{Severity, Spec, load_str};

const E: Severity = Severity::Error;
const W: Severity = Severity::Warning;

/// A valid document: (name, yaml, may it have warnings?).
type Valid = (&'static str, &'static str, bool);
/// An invalid document: (name, severity, field path, message fragment, yaml with a `#!` line).
type Bad = (
    &'static str,
    Severity,
    &'static str,
    &'static str,
    &'static str,
);

fn check_valid(cases: &[Valid]) {
    let mut failures = Vec::new();
    for (name, yaml, warnings_ok) in cases {
        let out = load_str(&format!("{name}.yaml"), yaml);
        let bad: Vec<String> = out
            .diagnostics
            .iter()
            .filter(|d| d.is_error() || (!warnings_ok && d.severity != Severity::Info))
            .map(|d| d.to_string())
            .collect();
        if !bad.is_empty() || out.resources.len() != out.documents {
            failures.push(format!("{name}:\n  {}", bad.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "valid documents with findings:\n{}",
        failures.join("\n")
    );
}

fn check_bad(cases: &[Bad]) {
    let mut failures = Vec::new();
    for (name, severity, field, msg, yaml) in cases {
        let line = yaml
            .lines()
            .position(|l| l.contains("#!"))
            .unwrap_or_else(|| panic!("{name}: no `#!` marker"))
            + 1;
        let out = load_str(&format!("{name}.yaml"), yaml);
        let hit = out.diagnostics.iter().find(|d| {
            d.severity == *severity && d.field.as_deref() == Some(field) && d.message.contains(msg)
        });
        match hit {
            Some(d) if d.line == Some(line) => {}
            Some(d) => failures.push(format!(
                "{name}: expected line {line}, got {:?}: {d}",
                d.line
            )),
            None => failures.push(format!(
                "{name}: no {severity} at `{field}` containing {msg:?}; got:\n  {}",
                out.diagnostics
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )),
        }
        if *severity == E && !out.resources.is_empty() {
            failures.push(format!("{name}: a document with an error must be rejected"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------

const BOOKINFO_GATEWAY: &str = r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 8080
      name: http
      protocol: HTTP
    hosts:
    - "*"
"#;

const GATEWAY_VALID: &[Valid] = &[
    ("bookinfo-gateway", BOOKINFO_GATEWAY, false),
    (
        "https-credential-name",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: SIMPLE
      credentialName: httpbin-credential
    hosts:
    - httpbin.example.com
"#,
        false,
    ),
    (
        "mutual-credential-name",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: MUTUAL
      credentialName: httpbin-credential
      minProtocolVersion: TLSV1_2
      maxProtocolVersion: TLSV1_3
      cipherSuites:
      - ECDHE-RSA-AES256-GCM-SHA384
      - ECDHE-ECDSA-AES128-GCM-SHA256
    hosts:
    - httpbin.example.com
"#,
        false,
    ),
    (
        "reference-my-gateway",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: my-gateway
  namespace: some-config-namespace
spec:
  selector:
    app: my-gateway-controller
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - uk.bookinfo.com
    - eu.bookinfo.com
    tls:
      httpsRedirect: true # sends 301 redirect for http requests
  - port:
      number: 443
      name: https-443
      protocol: HTTPS
    hosts:
    - uk.bookinfo.com
    - eu.bookinfo.com
    tls:
      mode: SIMPLE # enables HTTPS on this port
      serverCertificate: /etc/certs/servercert.pem
      privateKey: /etc/certs/privatekey.pem
  - port:
      number: 9443
      name: https-9443
      protocol: HTTPS
    hosts:
    - "bookinfo-namespace/*.bookinfo.com"
    tls:
      mode: SIMPLE # enables HTTPS on this port
      credentialName: bookinfo-secret # fetches certs from Kubernetes secret
  - port:
      number: 9080
      name: http-wildcard
      protocol: HTTP
    hosts:
    - "*"
  - port:
      number: 2379 # to expose internal service via external port 2379
      name: mongo
      protocol: MONGO
    hosts:
    - "*"
"#,
        false,
    ),
    (
        "namespace-scoped-hosts",
        r#"apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata:
  name: my-gateway
  namespace: some-config-namespace
spec:
  selector:
    app: my-gateway-controller
  servers:
  - port:
      number: 80
      name: http
      protocol: http
    hosts:
    - "ns1/*"
    - "ns2/foo.bar.com"
    - "./svc.example.com"
"#,
        false,
    ),
    (
        "tls-passthrough-and-egress",
        r#"apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
  namespace: istio-system
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 443
      name: tls
      protocol: TLS
    hosts:
    - edition.cnn.com
    tls:
      mode: PASSTHROUGH
  - port:
      number: 15443
      name: tls-mtls
      protocol: TLS
    hosts:
    - "*.local"
    tls:
      mode: AUTO_PASSTHROUGH
  - port:
      number: 8443
      name: https-istio
      protocol: HTTPS
    hosts:
    - edition.cnn.com
    tls:
      mode: ISTIO_MUTUAL
"#,
        false,
    ),
];

const GATEWAY_BAD: &[Bad] = &[
    (
        "no-servers",
        E,
        "spec.servers",
        "`servers` is required",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec: #!
  selector:
    istio: ingressgateway
"#,
    ),
    (
        "bad-protocol",
        E,
        "spec.servers[0].port.protocol",
        "protocol `HTTPX` is not supported",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTPX #!
    hosts: ["*"]
"#,
    ),
    (
        "port-out-of-range",
        E,
        "spec.servers[0].port.number",
        "port 70000 is out of range",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port:
      number: 70000 #!
      name: http
      protocol: HTTP
    hosts: ["*"]
"#,
    ),
    (
        "port-name-missing",
        E,
        "spec.servers[0].port.name",
        "`name` is required",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: #!
      number: 80
      protocol: HTTP
    hosts: ["*"]
"#,
    ),
    (
        "duplicate-port-name",
        E,
        "spec.servers[1].port",
        "port name `http` is already used by servers[0]",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 8080, name: http, protocol: HTTP} #!
    hosts: ["*"]
"#,
    ),
    (
        "duplicate-server-name",
        E,
        "spec.servers[1].name",
        "server name `web` is already used",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    name: web
    hosts: ["*"]
  - port: {number: 8080, name: http-alt, protocol: HTTP}
    name: web #!
    hosts: ["*"]
"#,
    ),
    (
        "hosts-missing",
        E,
        "spec.servers[0].hosts",
        "`hosts` is required",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP} #!
"#,
    ),
    (
        "bad-host-namespace",
        E,
        "spec.servers[0].hosts[0]",
        "invalid namespace `ns_1`",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts:
    - ns_1/foo.example.com #!
"#,
    ),
    (
        "short-host",
        E,
        "spec.servers[0].hosts[1]",
        "host `prod/reviews` is a short name",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts:
    - foo.example.com
    - prod/reviews #!
"#,
    ),
    (
        "partial-wildcard-host",
        E,
        "spec.servers[0].hosts[0]",
        "partial wildcard",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts:
    - "*foo.example.com" #!
"#,
    ),
    (
        "https-without-tls",
        E,
        "spec.servers[0].tls",
        "protocol HTTPS must have `tls` settings",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS} #!
    hosts: [httpbin.example.com]
"#,
    ),
    (
        "simple-without-certificate",
        E,
        "spec.servers[0].tls.serverCertificate",
        "mode SIMPLE needs a certificate",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.example.com]
    tls: #!
      mode: SIMPLE
"#,
    ),
    (
        "simple-without-key",
        E,
        "spec.servers[0].tls.privateKey",
        "mode SIMPLE needs a private key",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.example.com]
    tls: #!
      mode: SIMPLE
      serverCertificate: /etc/certs/cert.pem
"#,
    ),
    (
        "mutual-without-ca",
        E,
        "spec.servers[0].tls.caCertificates",
        "mode MUTUAL needs a CA bundle",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.example.com]
    tls: #!
      mode: MUTUAL
      serverCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem
"#,
    ),
    (
        "plain-http-terminating-tls",
        E,
        "spec.servers[0].tls",
        "a plain-text HTTP server cannot terminate TLS",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [httpbin.example.com]
    tls: #!
      mode: SIMPLE
      credentialName: httpbin-credential
"#,
    ),
    (
        "tcp-with-tls",
        E,
        "spec.servers[0].tls",
        "a TCP server cannot have `tls` settings",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 3306, name: tcp, protocol: TCP}
    hosts: ["*"]
    tls: #!
      mode: PASSTHROUGH
"#,
    ),
    (
        "https-redirect-on-https",
        W,
        "spec.servers[0].tls.httpsRedirect",
        "`httpsRedirect` only applies to HTTP servers",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.example.com]
    tls:
      httpsRedirect: true #!
      mode: SIMPLE
      credentialName: httpbin-credential
"#,
    ),
    (
        "istio-mutual-with-credential",
        E,
        "spec.servers[0].tls.credentialName",
        "mode ISTIO_MUTUAL uses Istio's workload certificates",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.example.com]
    tls:
      mode: ISTIO_MUTUAL
      credentialName: httpbin-credential #!
"#,
    ),
    (
        "crl-with-simple",
        E,
        "spec.servers[0].tls.caCrl",
        "`caCrl` is not supported with mode SIMPLE",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.example.com]
    tls:
      mode: SIMPLE
      serverCertificate: /etc/certs/cert.pem
      privateKey: /etc/certs/key.pem
      caCrl: /etc/certs/crl.pem #!
"#,
    ),
    (
        "credential-name-and-names",
        E,
        "spec.servers[0].tls",
        "only one of `credentialName`, `credentialNames` may be set",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.example.com]
    tls: #!
      mode: SIMPLE
      credentialName: rsa-cert
      credentialNames: [rsa-cert, ecdsa-cert]
"#,
    ),
    (
        "min-above-max-version",
        E,
        "spec.servers[0].tls.minProtocolVersion",
        "minProtocolVersion TLSV1_3 is above maxProtocolVersion TLSV1_2",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.example.com]
    tls:
      mode: SIMPLE
      credentialName: httpbin-credential
      minProtocolVersion: TLSV1_3 #!
      maxProtocolVersion: TLSV1_2
"#,
    ),
    (
        "unknown-cipher",
        W,
        "spec.servers[0].tls.cipherSuites[0]",
        "cipher suite `RC4-MD5` is not supported",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.example.com]
    tls:
      mode: SIMPLE
      credentialName: httpbin-credential
      cipherSuites:
      - RC4-MD5 #!
"#,
    ),
    (
        "target-port",
        E,
        "spec.servers[0].port.targetPort",
        "`targetPort` has no effect on gateways",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
      targetPort: 8080 #!
    hosts: ["*"]
"#,
    ),
    (
        "bad-bind",
        E,
        "spec.servers[0].bind",
        "`localhost` is not a valid IP address",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    bind: localhost #!
    hosts: ["*"]
"#,
    ),
    (
        "bad-mode",
        E,
        "spec.servers[0].tls.mode",
        "did you mean `MUTUAL`?",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.example.com]
    tls:
      mode: MUTUALL #!
"#,
    ),
    (
        "typo-credential-name",
        E,
        "spec.servers[0].tls.credentialNam",
        "did you mean `credentialName`?",
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [httpbin.example.com]
    tls:
      mode: SIMPLE
      credentialNam: httpbin-credential #!
"#,
    ),
];

#[test]
fn gateways_valid() {
    check_valid(GATEWAY_VALID);
}

#[test]
fn gateways_invalid() {
    check_bad(GATEWAY_BAD);
}

#[test]
fn gateway_fields_are_typed() {
    let out = load_str("gw.yaml", GATEWAY_VALID[2].1);
    let Spec::Gateway(gw) = &out.resources[0].spec else {
        panic!("not a Gateway")
    };
    let s = &gw.servers[0];
    assert_eq!(s.port.as_ref().and_then(|p| p.number), Some(443));
    let tls = s.tls.as_ref().unwrap();
    assert_eq!(tls.mode, Some(ServerTlsMode::Mutual));
    assert_eq!(tls.credential_name.as_deref(), Some("httpbin-credential"));
    assert_eq!(tls.cipher_suites.len(), 2);
    assert_eq!(
        gw.selector.get("istio").map(String::as_str),
        Some("ingressgateway")
    );
}

// ---------------------------------------------------------------------------------------
// ServiceEntry
// ---------------------------------------------------------------------------------------

const SERVICE_ENTRY_VALID: &[Valid] = &[
    (
        "httpbin-ext",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
"#,
        false,
    ),
    (
        "external-svc-https",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-svc-https
spec:
  hosts:
  - api.dropboxapi.com
  - www.googleapis.com
  - api.facebook.com
  location: MESH_EXTERNAL
  ports:
  - number: 443
    name: https
    protocol: TLS
  resolution: DNS
"#,
        false,
    ),
    (
        "external-svc-mongocluster",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-svc-mongocluster
spec:
  hosts:
  - mymongodb.somedomain # not used
  addresses:
  - 192.192.192.192/24 # VIPs
  ports:
  - number: 27018
    name: mongodb
    protocol: MONGO
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints:
  - address: 2.2.2.2
  - address: 3.3.3.3
"#,
        false,
    ),
    (
        "external-svc-wildcard",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-svc-redirect
spec:
  hosts:
  - wikipedia.org
  - "*.wikipedia.org"
  location: MESH_EXTERNAL
  ports:
  - number: 443
    name: https
    protocol: TLS
  resolution: NONE
"#,
        false,
    ),
    (
        "unix-domain-socket",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: unix-domain-socket-example
spec:
  hosts:
  - "example.unix.local"
  location: MESH_EXTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: STATIC
  endpoints:
  - address: unix:///var/run/example/socket
"#,
        false,
    ),
    (
        "external-svc-dns-endpoints",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-svc-dns
spec:
  hosts:
  - foo.bar.com
  location: MESH_EXTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  endpoints:
  - address: us.foo.bar.com
    ports:
      http: 8080
  - address: uk.foo.bar.com
    ports:
      http: 9080
  - address: in.foo.bar.com
    ports:
      http: 7080
"#,
        false,
    ),
    (
        "subject-alt-names-and-export",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin
  namespace: httpbin-ns
spec:
  hosts:
  - example.com
  exportTo:
  - "."
  location: MESH_INTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: STATIC
  endpoints:
  - address: 2.2.2.2
  - address: 3.3.3.3
  subjectAltNames:
  - "spiffe://cluster.local/ns/httpbin-ns/sa/httpbin-service-account"
"#,
        false,
    ),
    (
        "details-svc-workload-selector",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: details-svc
spec:
  hosts:
  - details.bookinfo.com
  location: MESH_INTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: STATIC
  workloadSelector:
    labels:
      app: details
"#,
        false,
    ),
];

const SERVICE_ENTRY_BAD: &[Bad] = &[
    (
        "no-hosts",
        E,
        "spec.hosts",
        "`hosts` is required",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec: #!
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
"#,
    ),
    (
        "wildcard-only-host",
        E,
        "spec.hosts[0]",
        "host `*` is not allowed in a service entry",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts:
  - "*" #!
  ports: [{number: 80, name: http, protocol: HTTP}]
"#,
    ),
    (
        "bad-host",
        E,
        "spec.hosts[0]",
        "label `foo_bar` is invalid",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts:
  - foo_bar.example.com #!
  ports: [{number: 80, name: http, protocol: HTTP}]
"#,
    ),
    (
        "bad-address",
        E,
        "spec.addresses[0]",
        "`10.0.0.300` is not a valid IP address or CIDR block",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [db.example.com]
  addresses:
  - 10.0.0.300 #!
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1}]
"#,
    ),
    (
        "cidr-with-dns",
        E,
        "spec.addresses",
        "CIDR addresses are only allowed with resolution NONE or STATIC, not DNS",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [db.example.com]
  addresses: #!
  - 10.0.0.0/24
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: DNS
"#,
    ),
    (
        "duplicate-port-number",
        E,
        "spec.ports[1].number",
        "port 80 is already declared by ports[0]",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  ports:
  - number: 80
    name: http
    protocol: HTTP
  - number: 80 #!
    name: http-alt
    protocol: HTTP
  resolution: DNS
"#,
    ),
    (
        "duplicate-port-name",
        E,
        "spec.ports[1].name",
        "port name `http` is already used by ports[0]",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  ports:
  - number: 80
    name: http
    protocol: HTTP
  - number: 8080
    name: http #!
    protocol: HTTP
  resolution: DNS
"#,
    ),
    (
        "bad-port-name",
        E,
        "spec.ports[0].name",
        "port name `http_1` is invalid",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  ports:
  - number: 80
    name: http_1 #!
    protocol: HTTP
  resolution: DNS
"#,
    ),
    (
        "bad-port-protocol",
        E,
        "spec.ports[0].protocol",
        "protocol `WEBSOCKET` is not supported",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  ports:
  - number: 80
    name: http
    protocol: WEBSOCKET #!
  resolution: DNS
"#,
    ),
    (
        "none-with-endpoints",
        E,
        "spec.endpoints",
        "resolution NONE cannot have `endpoints`",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: NONE
  endpoints: #!
  - address: 1.2.3.4
"#,
    ),
    (
        "static-with-hostname-endpoint",
        E,
        "spec.endpoints[0].address",
        "endpoint address `db.internal` is not an IP address",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [db.example.com]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints:
  - address: db.internal #!
"#,
    ),
    (
        "dns-with-bad-endpoint",
        E,
        "spec.endpoints[0].address",
        "endpoint address `bad_host!` is not a valid DNS name or IP address",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  endpoints:
  - address: bad_host! #!
"#,
    ),
    (
        "endpoints-and-selector",
        E,
        "spec.workloadSelector",
        "only one of `workloadSelector` and `endpoints` may be set",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [details.bookinfo.com]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: #!
    labels: {app: details}
  endpoints:
  - address: 2.2.2.2
"#,
    ),
    (
        "endpoint-port-undeclared",
        E,
        "spec.endpoints[0].ports.https",
        "endpoint port `https` is not a port of this service entry (declared: http)",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [foo.bar.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  endpoints:
  - address: us.foo.bar.com
    ports:
      https: 8443 #!
"#,
    ),
    (
        "dns-wildcard-without-endpoints",
        E,
        "spec.hosts[0]",
        "must be a concrete DNS name with resolution DNS and no endpoints",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts:
  - "*.example.com" #!
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
"#,
    ),
    (
        "dns-round-robin-two-endpoints",
        E,
        "spec.endpoints",
        "resolution DNS_ROUND_ROBIN allows at most one endpoint, found 2",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS_ROUND_ROBIN
  endpoints: #!
  - address: a.example.com
  - address: b.example.com
"#,
    ),
    (
        "multiple-hosts-tcp",
        E,
        "spec.ports[0]",
        "port 3306 (TCP) is not HTTP or TLS, but the service entry has 2 hosts",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [db1.example.com, db2.example.com]
  ports:
  - number: 3306 #!
    name: tcp
    protocol: TCP
  resolution: DNS
"#,
    ),
    (
        "bad-export-to",
        E,
        "spec.exportTo[0]",
        "`Foo` is not a valid exportTo value",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  exportTo:
  - Foo #!
"#,
    ),
    (
        "export-to-star-and-more",
        E,
        "spec.exportTo",
        "exportTo cannot mix `*`",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  exportTo: #!
  - "*"
  - istio-system
"#,
    ),
    (
        "static-without-endpoints",
        W,
        "spec.resolution",
        "resolution STATIC with neither `endpoints` nor `workloadSelector`",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [db.example.com]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC #!
"#,
    ),
    (
        "unix-endpoint-two-ports",
        E,
        "spec.endpoints[0].address",
        "needs exactly one service port, but the service entry declares 2",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [example.unix.local]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 81, name: http-admin, protocol: HTTP}
  resolution: STATIC
  endpoints:
  - address: unix:///var/run/example/socket #!
"#,
    ),
    (
        "dynamic-dns-concrete-host",
        E,
        "spec.hosts[0]",
        "resolution DYNAMIC_DNS is for wildcard hosts",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts:
  - api.example.com #!
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DYNAMIC_DNS
"#,
    ),
    (
        "bad-resolution",
        E,
        "spec.resolution",
        "`DNS_RR` is not a valid value",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS_RR #!
"#,
    ),
    (
        "typo-resolution",
        E,
        "spec.resolutoin",
        "did you mean `resolution`?",
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolutoin: DNS #!
"#,
    ),
];

#[test]
fn service_entries_valid() {
    check_valid(SERVICE_ENTRY_VALID);
}

#[test]
fn service_entries_invalid() {
    check_bad(SERVICE_ENTRY_BAD);
}

#[test]
fn service_entry_fields_are_typed() {
    let out = load_str("se.yaml", SERVICE_ENTRY_VALID[5].1);
    let Spec::ServiceEntry(se) = &out.resources[0].spec else {
        panic!("not a ServiceEntry")
    };
    assert_eq!(se.resolution, Some(ServiceEntryResolution::Dns));
    assert_eq!(se.endpoints.len(), 3);
    assert_eq!(se.endpoints[1].ports.get("http"), Some(&9080));
}

// ---------------------------------------------------------------------------------------
// WorkloadEntry and WorkloadGroup
// ---------------------------------------------------------------------------------------

const WORKLOAD_VALID: &[Valid] = &[
    (
        "details-vm-1",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: details-vm-1
spec:
  serviceAccount: details
  address: 2.2.2.2
  labels:
    app: details
    instance-id: vm1
"#,
        false,
    ),
    (
        "vm-with-ports-and-locality",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: details-svc
  namespace: bookinfo
spec:
  serviceAccount: details-legacy
  address: vm1.vpc01.corp.net
  network: vm-us-east
  locality: us-east-1/us-east-1a
  weight: 10
  ports:
    http: 8080
    grpc: 9090
  labels:
    app: details-legacy
"#,
        false,
    ),
    (
        "workload-group",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata:
  name: reviews
  namespace: bookinfo
spec:
  metadata:
    labels:
      app.kubernetes.io/name: reviews
      app.kubernetes.io/version: "1.3.4"
  template:
    ports:
      grpc: 3550
      http: 8080
    serviceAccount: default
  probe:
    initialDelaySeconds: 5
    timeoutSeconds: 3
    periodSeconds: 4
    successThreshold: 3
    failureThreshold: 3
    httpGet:
     path: /foo/bar
     host: 127.0.0.1
     port: 3100
     scheme: HTTPS
     httpHeaders:
     - name: Lit-Header
       value: Im-The-Best
"#,
        false,
    ),
    (
        "workload-group-tcp-probe",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata:
  name: mongo
spec:
  template:
    labels:
      app: mongo
  probe:
    tcpSocket:
      port: 27017
"#,
        false,
    ),
];

const WORKLOAD_BAD: &[Bad] = &[
    (
        "entry-no-address",
        E,
        "spec.address",
        "`address` is required",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec: #!
  labels: {app: details}
"#,
    ),
    (
        "entry-network-only",
        W,
        "spec.address",
        "only reachable through the gateway of network `vm-net`",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec: #!
  network: vm-net
"#,
    ),
    (
        "entry-bad-address",
        E,
        "spec.address",
        "address `not a host` is not a valid DNS name or IP address",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec:
  address: not a host #!
"#,
    ),
    (
        "entry-bad-port",
        E,
        "spec.ports.http",
        "port 0 is out of range",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec:
  address: 10.0.0.1
  ports:
    http: 0 #!
"#,
    ),
    (
        "entry-bad-port-name",
        E,
        "spec.ports.http_x",
        "port name `http_x` is invalid",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec:
  address: 10.0.0.1
  ports:
    http_x: 8080 #!
"#,
    ),
    (
        "entry-bad-label",
        E,
        "spec.labels.version",
        "label value `v1-` is invalid",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec:
  address: 10.0.0.1
  labels:
    version: v1- #!
"#,
    ),
    (
        "entry-bad-unix-address",
        E,
        "spec.address",
        "must be an absolute path",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec:
  address: unix://var/run/app.sock #!
"#,
    ),
    (
        "entry-negative-weight",
        E,
        "spec.weight",
        "-5",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec:
  address: 10.0.0.1
  weight: -5 #!
"#,
    ),
    (
        "entry-typo",
        E,
        "spec.serviceAcount",
        "did you mean `serviceAccount`?",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: we}
spec:
  address: 10.0.0.1
  serviceAcount: details #!
"#,
    ),
    (
        "group-no-template",
        E,
        "spec.template",
        "`template` is required",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: wg}
spec: #!
  metadata:
    labels: {app: reviews}
"#,
    ),
    (
        "group-probe-without-method",
        E,
        "spec.probe",
        "exactly one of `httpGet`, `tcpSocket`, `exec`, `grpc` must be set; none is",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: wg}
spec:
  template: {serviceAccount: default}
  probe: #!
    periodSeconds: 4
"#,
    ),
    (
        "group-probe-negative",
        E,
        "spec.probe.periodSeconds",
        "periodSeconds -4 is negative",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: wg}
spec:
  template: {serviceAccount: default}
  probe:
    periodSeconds: -4 #!
    tcpSocket: {port: 8080}
"#,
    ),
    (
        "group-probe-bad-scheme",
        E,
        "spec.probe.httpGet.scheme",
        "scheme `https` is invalid: use HTTP or HTTPS",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: wg}
spec:
  template: {serviceAccount: default}
  probe:
    httpGet:
      port: 8080
      scheme: https #!
"#,
    ),
    (
        "group-probe-no-port",
        E,
        "spec.probe.httpGet.port",
        "`port` is required",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: wg}
spec:
  template: {serviceAccount: default}
  probe:
    httpGet: #!
      path: /ready
"#,
    ),
    (
        "group-probe-bad-header",
        E,
        "spec.probe.httpGet.httpHeaders[0].name",
        "header name `X Custom` is invalid",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: wg}
spec:
  template: {serviceAccount: default}
  probe:
    httpGet:
      port: 8080
      httpHeaders:
      - name: X Custom #!
        value: "1"
"#,
    ),
    (
        "group-exec-without-command",
        E,
        "spec.probe.exec.command",
        "`command` is required",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: wg}
spec:
  template: {serviceAccount: default}
  probe:
    exec: {} #!
"#,
    ),
    (
        "group-bad-metadata-label",
        E,
        "spec.metadata.labels.app",
        "label value `-reviews` is invalid",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: wg}
spec:
  metadata:
    labels:
      app: -reviews #!
  template: {serviceAccount: default}
"#,
    ),
    (
        "group-typo",
        E,
        "spec.probe.initialDelaySecond",
        "did you mean `initialDelaySeconds`?",
        r#"apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: wg}
spec:
  template: {serviceAccount: default}
  probe:
    initialDelaySecond: 5 #!
    tcpSocket: {port: 8080}
"#,
    ),
];

#[test]
fn workloads_valid() {
    check_valid(WORKLOAD_VALID);
}

#[test]
fn workloads_invalid() {
    check_bad(WORKLOAD_BAD);
}

// ---------------------------------------------------------------------------------------
// Sidecar
// ---------------------------------------------------------------------------------------

const SIDECAR_VALID: &[Valid] = &[
    (
        "default-namespace-egress",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: istio-config
spec:
  egress:
  - hosts:
    - "./*"
    - "istio-system/*"
"#,
        false,
    ),
    (
        "ratings-uds",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: ratings
  namespace: prod-us1
spec:
  workloadSelector:
    labels:
      app: ratings
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: somename
    defaultEndpoint: unix:///var/run/someuds.sock
  egress:
  - port:
      number: 9080
      protocol: HTTP
      name: egresshttp
    hosts:
    - "prod-us1/*"
  - hosts:
    - "istio-system/*"
"#,
        false,
    ),
    (
        "no-iptables",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: no-ip-tables
  namespace: prod-us1
spec:
  workloadSelector:
    labels:
      app: productpage
  ingress:
  - port:
      number: 9080 # binds to proxy_instance_ip:9080 (0.0.0.0:9080, if no unicast IP is available for the instance)
      protocol: HTTP
      name: somename
    defaultEndpoint: 127.0.0.1:8080
    captureMode: NONE # not needed if metadata is set for entire proxy
  egress:
  - port:
      number: 3306
      protocol: MYSQL
      name: egressmysql
    captureMode: NONE # not needed if metadata is set for entire proxy
    bind: 127.0.0.1
    hosts:
    - "*/mysql.foo.com"
  - port:
      number: 9080
      protocol: HTTP
      name: egresshttp
    captureMode: NONE
    bind: 127.0.0.1
    hosts:
    - "*/bookinfo.com"
"#,
        false,
    ),
    (
        "ingress-tls",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: filter-tls
  namespace: prod-us1
spec:
  workloadSelector:
    labels:
      app: productpage
  ingress:
  - port:
      number: 9080
      protocol: HTTPS
      name: somename
    defaultEndpoint: 127.0.0.1:8080
    tls:
      mode: SIMPLE
      privateKey: "/etc/istio/filter-example-com-certs/tls.key"
      serverCertificate: "/etc/istio/filter-example-com-certs/tls.crt"
"#,
        false,
    ),
    (
        "connection-pools",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: connection-pool-settings
  namespace: prod-us1
spec:
  workloadSelector:
    labels:
      app: productpage
  inboundConnectionPool:
      http:
        http1MaxPendingRequests: 1024
        http2MaxRequests: 1024
        maxRequestsPerConnection: 1024
        maxRetries: 100
  ingress:
  - port:
      number: 80
      protocol: HTTP
      name: somename
    connectionPool:
      http:
        http1MaxPendingRequests: 1024
        http2MaxRequests: 1024
        maxRequestsPerConnection: 1024
        maxRetries: 100
      tcp:
        maxConnections: 100
        connectTimeout: 30ms
        tcpKeepalive:
          time: 7200s
          interval: 75s
"#,
        false,
    ),
    (
        "registry-only-and-egress-proxy",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: egress-proxy
spec:
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy:
      host: egress-proxy.istio-system.svc.cluster.local
      subset: v1
      port:
        number: 3128
"#,
        false,
    ),
];

const SIDECAR_BAD: &[Bad] = &[
    (
        "empty",
        E,
        "spec",
        "empty Sidecar",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec: #!
  workloadSelector:
    labels: {app: ratings}
"#,
    ),
    (
        "two-catch-all-egress",
        E,
        "spec.egress[1]",
        "egress[0] already has no port",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  egress:
  - hosts: ["./*"]
  - hosts: ["istio-system/*"] #!
"#,
    ),
    (
        "catch-all-not-last",
        E,
        "spec.egress[0]",
        "the egress listener without `port` must be the last one",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  egress:
  - hosts: ["./*"] #!
  - port: {number: 9080, protocol: HTTP, name: http}
    hosts: ["prod/*"]
"#,
    ),
    (
        "egress-host-without-namespace",
        E,
        "spec.egress[0].hosts[0]",
        "must be of the form namespace/dnsName",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  egress:
  - hosts:
    - reviews.prod.svc.cluster.local #!
"#,
    ),
    (
        "egress-host-bad-namespace",
        E,
        "spec.egress[0].hosts[0]",
        "invalid namespace `Prod`",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  egress:
  - hosts:
    - Prod/* #!
"#,
    ),
    (
        "egress-without-hosts",
        E,
        "spec.egress[0].hosts",
        "`hosts` is required",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  egress:
  - port: {number: 9080, protocol: HTTP, name: http} #!
"#,
    ),
    (
        "egress-port-zero-without-uds",
        E,
        "spec.egress[0].port.number",
        "a port may only be 0 (or unset) when `bind` is a unix:// socket",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  egress:
  - port: #!
      protocol: HTTP
      name: http
    hosts: ["./*"]
"#,
    ),
    (
        "ingress-without-port",
        E,
        "spec.ingress[0].port",
        "`port` is required for ingress listeners",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  ingress:
  - defaultEndpoint: 127.0.0.1:8080 #!
"#,
    ),
    (
        "ingress-bad-default-endpoint-host",
        E,
        "spec.ingress[0].defaultEndpoint",
        "must forward to 127.0.0.1, 0.0.0.0, [::1], [::] or a unix:// socket, not `10.0.0.1`",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 10.0.0.1:8080 #!
"#,
    ),
    (
        "ingress-bad-default-endpoint-port",
        E,
        "spec.ingress[0].defaultEndpoint",
        "has a port `http` that is not a number",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:http #!
"#,
    ),
    (
        "ingress-duplicate-port",
        E,
        "spec.ingress[1].port.number",
        "port 9080 is already used by ingress[0]",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
  - port:
      number: 9080 #!
      protocol: TCP
      name: tcp
    defaultEndpoint: 127.0.0.1:8081
"#,
    ),
    (
        "ingress-tls-istio-mutual",
        E,
        "spec.ingress[0].tls.mode",
        "mode ISTIO_MUTUAL cannot be used in sidecar ingress TLS",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  ingress:
  - port: {number: 9443, protocol: HTTPS, name: https}
    defaultEndpoint: 127.0.0.1:8080
    tls:
      mode: ISTIO_MUTUAL #!
"#,
    ),
    (
        "egress-proxy-with-registry-only",
        E,
        "spec.outboundTrafficPolicy.egressProxy",
        "`egressProxy` can only be set with mode ALLOW_ANY",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
    egressProxy: #!
      host: egress-proxy.istio-system.svc.cluster.local
      port: {number: 3128}
"#,
    ),
    (
        "egress-proxy-without-port",
        E,
        "spec.outboundTrafficPolicy.egressProxy.port",
        "`port` is required for the egress proxy",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy: #!
      host: egress-proxy.istio-system.svc.cluster.local
"#,
    ),
    (
        "negative-max-connections",
        E,
        "spec.inboundConnectionPool.tcp.maxConnections",
        "maxConnections -1 is negative",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  inboundConnectionPool:
    tcp:
      maxConnections: -1 #!
"#,
    ),
    (
        "sub-millisecond-timeout",
        E,
        "spec.ingress[0].connectionPool.tcp.connectTimeout",
        "has sub-millisecond precision",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    connectionPool:
      tcp:
        connectTimeout: 500us #!
"#,
    ),
    (
        "http-pool-on-tcp-port",
        W,
        "spec.ingress[0].connectionPool.http",
        "HTTP settings have no effect: port 3306 is not HTTP",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  ingress:
  - port: {number: 3306, protocol: TCP, name: mysql}
    connectionPool:
      http: #!
        maxRetries: 3
"#,
    ),
    (
        "selector-wildcard",
        E,
        "spec.workloadSelector.labels.app",
        "wildcard in selector `app=rat*`",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  workloadSelector:
    labels:
      app: rat* #!
  egress:
  - hosts: ["./*"]
"#,
    ),
    (
        "typo-egress",
        E,
        "spec.egres",
        "did you mean `egress`?",
        r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: sc}
spec:
  egres: #!
  - hosts: ["./*"]
"#,
    ),
];

#[test]
fn sidecars_valid() {
    check_valid(SIDECAR_VALID);
}

#[test]
fn sidecars_invalid() {
    check_bad(SIDECAR_BAD);
}

// ---------------------------------------------------------------------------------------
// PeerAuthentication
// ---------------------------------------------------------------------------------------

const PEER_AUTH_VALID: &[Valid] = &[
    (
        "strict-mesh-wide",
        r#"apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
"#,
        false,
    ),
    (
        "port-level",
        r#"apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: finance
  namespace: foo
spec:
  selector:
    matchLabels:
      app: finance
  mtls:
    mode: STRICT
  portLevelMtls:
    8080:
      mode: DISABLE
"#,
        false,
    ),
];

const PEER_AUTH_BAD: &[Bad] = &[
    (
        "port-level-without-selector",
        E,
        "spec.portLevelMtls",
        "`portLevelMtls` needs a `selector` with labels",
        r#"apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec:
  mtls: {mode: STRICT}
  portLevelMtls: #!
    8080: {mode: DISABLE}
"#,
    ),
    (
        "port-level-bad-port",
        E,
        "spec.portLevelMtls.http",
        "port `http` is not a port number",
        r#"apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: pa, namespace: foo}
spec:
  selector:
    matchLabels: {app: finance}
  portLevelMtls:
    http: {mode: DISABLE} #!
"#,
    ),
    (
        "bad-mode",
        E,
        "spec.mtls.mode",
        "did you mean `STRICT`?",
        r#"apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec:
  mtls:
    mode: STRICTT #!
"#,
    ),
    (
        "empty-selector",
        W,
        "spec.selector.matchLabels",
        "selector has no labels",
        r#"apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec:
  selector: {} #!
  mtls: {mode: PERMISSIVE}
"#,
    ),
    (
        "typo",
        E,
        "spec.mtl",
        "did you mean `mtls`?",
        r#"apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec:
  mtl: #!
    mode: STRICT
"#,
    ),
];

#[test]
fn peer_authentications_valid() {
    check_valid(PEER_AUTH_VALID);
    let out = load_str("pa.yaml", PEER_AUTH_VALID[1].1);
    let Spec::PeerAuthentication(pa) = &out.resources[0].spec else {
        panic!()
    };
    assert_eq!(pa.port_level_mtls["8080"].mode, Some(MtlsMode::Disable));
}

#[test]
fn peer_authentications_invalid() {
    check_bad(PEER_AUTH_BAD);
}

// ---------------------------------------------------------------------------------------
// AuthorizationPolicy
// ---------------------------------------------------------------------------------------

const AUTHZ_VALID: &[Valid] = &[
    (
        "allow-nothing",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: foo
spec:
  {}
"#,
        false,
    ),
    (
        "deny-method-get",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-method-get
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: DENY
  rules:
  - to:
    - operation:
        methods: ["GET"]
        paths: ["/get"]
"#,
        true,
    ),
    (
        "require-jwt",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: require-jwt
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
       requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]
    when:
    - key: request.auth.claims[groups]
      values: ["group1"]
"#,
        false,
    ),
    (
        "reference-httpbin",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin
  namespace: foo
spec:
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/curl"]
    - source:
        namespaces: ["test"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*"]
    - operation:
        methods: ["POST"]
        paths: ["/data"]
    when:
    - key: request.auth.claims[iss]
      values: ["https://accounts.google.com"]
"#,
        false,
    ),
    (
        "deny-ip-and-port",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-by-ip
  namespace: istio-system
spec:
  selector:
    matchLabels:
      app: istio-ingressgateway
  action: DENY
  rules:
  - from:
    - source:
        remoteIpBlocks: ["1.2.3.4", "10.0.0.0/8", "2001:db8::/32"]
    to:
    - operation:
        ports: ["8080", "8443"]
        paths: ["/admin/{**}", "/users/{*}/profile"]
    when:
    - key: destination.port
      notValues: ["15021"]
"#,
        false,
    ),
    (
        "ext-authz-custom",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ext-authz
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: CUSTOM
  provider:
    name: sample-ext-authz-grpc
  rules:
  - to:
    - operation:
        paths: ["/headers"]
"#,
        false,
    ),
    (
        "waypoint-target-refs",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: productpage-viewer
  namespace: default
spec:
  targetRefs:
  - kind: Service
    group: ""
    name: productpage
  action: ALLOW
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/default/sa/curl
    to:
    - operation:
        methods: ["GET"]
"#,
        false,
    ),
];

const AUTHZ_BAD: &[Bad] = &[
    (
        "custom-without-provider",
        E,
        "spec.provider",
        "action CUSTOM needs a `provider`",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec: #!
  action: CUSTOM
  rules:
  - to:
    - operation: {paths: ["/headers"]}
"#,
    ),
    (
        "custom-without-rules",
        E,
        "spec.rules",
        "action CUSTOM without `rules` never triggers",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec: #!
  action: CUSTOM
  provider: {name: ext-authz}
"#,
    ),
    (
        "provider-with-allow",
        E,
        "spec.provider",
        "`provider` is only used with action CUSTOM, not ALLOW",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  provider: #!
    name: ext-authz
  rules:
  - {}
"#,
    ),
    (
        "deny-without-rules",
        E,
        "spec.rules",
        "action DENY without `rules` never triggers",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec: #!
  action: DENY
"#,
    ),
    (
        "custom-with-principals",
        E,
        "spec.rules[0].from[0].source.principals",
        "`principals` is not supported with action CUSTOM",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  action: CUSTOM
  provider: {name: ext-authz}
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/curl"] #!
"#,
    ),
    (
        "unknown-when-key",
        E,
        "spec.rules[0].when[0].key",
        "unknown attribute `request.auth.claim[iss]`",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - when:
    - key: request.auth.claim[iss] #!
      values: ["https://accounts.google.com"]
"#,
    ),
    (
        "header-key-without-brackets",
        E,
        "spec.rules[0].when[0].key",
        "key `request.headers` must name an entry in brackets",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - when:
    - key: request.headers #!
      values: ["curl"]
"#,
    ),
    (
        "when-without-values",
        E,
        "spec.rules[0].when[0]",
        "condition on `source.namespace` needs `values` or `notValues`",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - when:
    - key: source.namespace #!
"#,
    ),
    (
        "when-bad-port",
        E,
        "spec.rules[0].when[0].values[0]",
        "port `http` is not a port number",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - when:
    - key: destination.port
      values:
      - http #!
"#,
    ),
    (
        "when-destination-labels",
        E,
        "spec.rules[0].when[0].key",
        "use the policy's `selector`",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - when:
    - key: destination.labels[app] #!
      values: ["httpbin"]
"#,
    ),
    (
        "bad-ip-block",
        E,
        "spec.rules[0].from[0].source.ipBlocks[1]",
        "`10.0.0.0/33` is not a valid CIDR block",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - from:
    - source:
        ipBlocks:
        - 10.1.2.3
        - 10.0.0.0/33 #!
"#,
    ),
    (
        "bad-operation-port",
        E,
        "spec.rules[0].to[0].operation.ports[0]",
        "port `70000` is not a port number between 1 and 65535",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - to:
    - operation:
        ports: ["70000"] #!
"#,
    ),
    (
        "bad-path-template",
        E,
        "spec.rules[0].to[0].operation.paths[0]",
        "path template `/{name}/{*}` is not supported",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - to:
    - operation:
        paths:
        - /{name}/{*} #!
"#,
    ),
    (
        "empty-source",
        E,
        "spec.rules[0].from[0].source",
        "`source` is empty",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - from:
    - source: {} #!
"#,
    ),
    (
        "empty-value",
        E,
        "spec.rules[0].from[0].source.namespaces[0]",
        "empty value in `namespaces`",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - from:
    - source:
        namespaces:
        - "" #!
"#,
    ),
    (
        "service-accounts-with-namespaces",
        E,
        "spec.rules[0].from[0].source.serviceAccounts",
        "`serviceAccounts` cannot be combined with `principals` or `namespaces`",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - from:
    - source:
        serviceAccounts: ["default/curl"] #!
        namespaces: ["default"]
"#,
    ),
    (
        "selector-and-target-refs",
        E,
        "spec.targetRefs",
        "only one of `selector` and `targetRefs` may be set",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  selector:
    matchLabels: {app: httpbin}
  targetRefs: #!
  - kind: Gateway
    group: gateway.networking.k8s.io
    name: waypoint
"#,
    ),
    (
        "unsupported-target-kind",
        E,
        "spec.targetRefs[0].kind",
        "target `apps/Deployment` is not supported",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  targetRefs:
  - kind: Deployment #!
    group: apps
    name: httpbin
"#,
    ),
    (
        "cross-namespace-target",
        E,
        "spec.targetRefs[0].namespace",
        "`namespace` must not be set",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  targetRefs:
  - kind: Service
    name: httpbin
    namespace: other #!
"#,
    ),
    (
        "bad-action",
        E,
        "spec.action",
        "did you mean `ALLOW`?",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  action: ALOW #!
"#,
    ),
    (
        "deny-http-only",
        W,
        "spec.rules[0]",
        "this DENY rule uses only HTTP attributes",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  action: DENY
  rules:
  - to: #!
    - operation:
        methods: ["DELETE"]
"#,
    ),
    (
        "lower-case-method",
        W,
        "spec.rules[0].to[0].operation.methods[0]",
        "method `get` is not upper case",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - to:
    - operation:
        methods:
        - get #!
"#,
    ),
    (
        "selector-wildcard",
        E,
        "spec.selector.matchLabels.app",
        "wildcard in selector",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  selector:
    matchLabels:
      app: "*" #!
"#,
    ),
    (
        "typo",
        E,
        "spec.rules[0].from[0].source.notPrincipal",
        "did you mean `notPrincipals`?",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
  rules:
  - from:
    - source:
        notPrincipal: ["cluster.local/ns/default/sa/curl"] #!
"#,
    ),
];

#[test]
fn authorization_policies_valid() {
    check_valid(AUTHZ_VALID);
    let out = load_str("ap.yaml", AUTHZ_VALID[5].1);
    let Spec::AuthorizationPolicy(ap) = &out.resources[0].spec else {
        panic!()
    };
    assert_eq!(ap.action, Some(AuthorizationAction::Custom));
    assert_eq!(
        ap.provider.as_ref().and_then(|p| p.name.as_deref()),
        Some("sample-ext-authz-grpc")
    );
}

#[test]
fn authorization_policies_invalid() {
    check_bad(AUTHZ_BAD);
}

// ---------------------------------------------------------------------------------------
// RequestAuthentication
// ---------------------------------------------------------------------------------------

const REQUEST_AUTH_VALID: &[Valid] = &[
    (
        "jwt-example",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: "jwt-example"
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  jwtRules:
  - issuer: "testing@secure.istio.io"
    jwksUri: "https://raw.githubusercontent.com/istio/istio/release-1.24/security/tools/jwt/samples/jwks.json"
"#,
        false,
    ),
    (
        "ingress-headers-and-claims",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt-on-ingress
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  jwtRules:
  - issuer: "example.com"
    audiences: ["bookstore_android.apps.example.com", "bookstore_web.apps.example.com"]
    jwks_uri: "https://example.com/.well-known/jwks.json"
    fromHeaders:
    - name: x-jwt-assertion
      prefix: "Bearer "
    fromParams: ["my_token"]
    fromCookies: ["session"]
    outputPayloadToHeader: x-jwt-payload
    forwardOriginalToken: true
    outputClaimToHeaders:
    - header: "x-jwt-claim-foo"
      claim: "foo"
    spaceDelimitedClaims: ["scope", "permissions"]
    timeout: 5s
"#,
        false,
    ),
    (
        "inline-jwks-target-ref",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt-inline
  namespace: default
spec:
  targetRefs:
  - kind: Gateway
    group: gateway.networking.k8s.io
    name: bookinfo-gateway
  jwtRules:
  - issuer: "testing@secure.istio.io"
    jwks: '{ "keys":[ {"e":"AQAB","kid":"DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ","kty":"RSA","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ"}]}'
"#,
        false,
    ),
];

const REQUEST_AUTH_BAD: &[Bad] = &[
    (
        "no-issuer",
        E,
        "spec.jwtRules[0].issuer",
        "`issuer` is required",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
  jwtRules:
  - jwksUri: https://example.com/jwks.json #!
"#,
    ),
    (
        "bad-jwks-uri-scheme",
        E,
        "spec.jwtRules[0].jwksUri",
        "has scheme `ftp`: only http and https are supported",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
  jwtRules:
  - issuer: example.com
    jwksUri: ftp://example.com/jwks.json #!
"#,
    ),
    (
        "jwks-uri-not-url",
        E,
        "spec.jwtRules[0].jwksUri",
        "is not a URL",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
  jwtRules:
  - issuer: example.com
    jwksUri: example.com/jwks.json #!
"#,
    ),
    (
        "jwks-and-jwks-uri",
        E,
        "spec.jwtRules[0].jwks",
        "only one of `jwks` and `jwksUri` may be set",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
  jwtRules:
  - issuer: example.com
    jwksUri: https://example.com/jwks.json
    jwks: '{"keys":[{"kty":"RSA","e":"AQAB","n":"abc"}]}' #!
"#,
    ),
    (
        "bad-jwks",
        E,
        "spec.jwtRules[0].jwks",
        "`jwks` is not valid JSON",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
  jwtRules:
  - issuer: example.com
    jwks: '{"keys": [' #!
"#,
    ),
    (
        "from-header-without-name",
        E,
        "spec.jwtRules[0].fromHeaders[0].name",
        "`name` is required",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
  jwtRules:
  - issuer: example.com
    fromHeaders:
    - prefix: "Bearer " #!
"#,
    ),
    (
        "bad-claim-header",
        E,
        "spec.jwtRules[0].outputClaimToHeaders[0].header",
        "header name `x jwt` is invalid",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
  jwtRules:
  - issuer: example.com
    outputClaimToHeaders:
    - header: x jwt #!
      claim: sub
"#,
    ),
    (
        "zero-timeout",
        E,
        "spec.jwtRules[0].timeout",
        "is too short: it must be at least 1ms",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
  jwtRules:
  - issuer: example.com
    timeout: 0s #!
"#,
    ),
    (
        "target-ref-without-name",
        E,
        "spec.targetRef.name",
        "`name` is required",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
  targetRef: #!
    kind: Gateway
    group: gateway.networking.k8s.io
  jwtRules:
  - issuer: example.com
"#,
    ),
    (
        "no-keys-and-non-url-issuer",
        W,
        "spec.jwtRules[0].issuer",
        "no `jwksUri` or `jwks`",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
  jwtRules:
  - issuer: testing@secure.istio.io #!
"#,
    ),
    (
        "typo",
        E,
        "spec.jwtRules[0].jwksUrl",
        "did you mean `jwksUri`?",
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
  jwtRules:
  - issuer: example.com
    jwksUrl: https://example.com/jwks.json #!
"#,
    ),
];

#[test]
fn request_authentications_valid() {
    check_valid(REQUEST_AUTH_VALID);
    let out = load_str("ra.yaml", REQUEST_AUTH_VALID[1].1);
    let Spec::RequestAuthentication(ra) = &out.resources[0].spec else {
        panic!()
    };
    let rule = &ra.jwt_rules[0];
    assert_eq!(
        rule.jwks_uri.as_deref(),
        Some("https://example.com/.well-known/jwks.json")
    );
    assert_eq!(rule.timeout.map(|t| t.0.as_secs()), Some(5));
}

#[test]
fn request_authentications_invalid() {
    check_bad(REQUEST_AUTH_BAD);
}

// ---------------------------------------------------------------------------------------
// Telemetry
// ---------------------------------------------------------------------------------------

const TELEMETRY_VALID: &[Valid] = &[
    (
        "mesh-default-tracing",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: mesh-default
  namespace: istio-system
spec:
  tracing:
  - providers:
    - name: localtrace
    customTags:
      foo:
        literal:
          value: bar
      cluster:
        environment:
          name: CLUSTER_ID
          defaultValue: unknown
      user-agent:
        header:
          name: user-agent
    randomSamplingPercentage: 100
"#,
        false,
    ),
    (
        "metrics-overrides",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: namespace-metrics
  namespace: myapp
spec:
  metrics:
  - providers:
    - name: prometheus
    overrides:
    - match:
        metric: REQUEST_COUNT
        mode: CLIENT
      tagOverrides:
        request_host:
          value: "request.host"
        response_flags:
          operation: REMOVE
    - match:
        metric: ALL_METRICS
      disabled: true
    reportingInterval: 15s
"#,
        false,
    ),
    (
        "access-logging-filter",
        r#"apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata:
  name: default-exception-logging
  namespace: istio-system
spec:
  accessLogging:
  - providers:
    - name: otel
    filter:
      expression: "response.code >= 400 || xds.cluster_name == 'BlackHoleCluster' ||  xds.cluster_name == 'PassthroughCluster' "
  - match:
      mode: SERVER
    disabled: true
"#,
        false,
    ),
    (
        "waypoint-telemetry",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: waypoint-tracing
  namespace: default
spec:
  targetRefs:
  - kind: Gateway
    group: gateway.networking.k8s.io
    name: waypoint
  tracing:
  - providers:
    - name: zipkin
    randomSamplingPercentage: 12.5
    useRequestIdForTraceSampling: true
    enableIstioTags: false
"#,
        false,
    ),
];

const TELEMETRY_BAD: &[Bad] = &[
    (
        "sampling-over-100",
        E,
        "spec.tracing[0].randomSamplingPercentage",
        "percentage 150 is out of range",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  tracing:
  - randomSamplingPercentage: 150 #!
"#,
    ),
    (
        "empty-provider-name",
        E,
        "spec.tracing[0].providers[0].name",
        "provider `name` is required",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  tracing:
  - providers:
    - name: "" #!
"#,
    ),
    (
        "upsert-without-value",
        E,
        "spec.metrics[0].overrides[0].tagOverrides.request_host.value",
        "tag `request_host`: `value` is required when operation is UPSERT",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  metrics:
  - overrides:
    - tagOverrides:
        request_host: #!
          operation: UPSERT
"#,
    ),
    (
        "remove-with-value",
        E,
        "spec.metrics[0].overrides[0].tagOverrides.request_host.value",
        "`value` must not be set when operation is REMOVE",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  metrics:
  - overrides:
    - tagOverrides:
        request_host:
          operation: REMOVE
          value: request.host #!
"#,
    ),
    (
        "bad-tag-name",
        W,
        "spec.metrics[0].overrides[0].tagOverrides.request-host",
        "tag name `request-host` is not a valid metric label name",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  metrics:
  - overrides:
    - tagOverrides:
        request-host: #!
          value: request.host
"#,
    ),
    (
        "metric-and-custom-metric",
        E,
        "spec.metrics[0].overrides[0].match",
        "only one of `metric`, `customMetric` may be set",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  metrics:
  - overrides:
    - match: #!
        metric: REQUEST_COUNT
        customMetric: my_requests_total
      disabled: true
"#,
    ),
    (
        "bad-metric",
        E,
        "spec.metrics[0].overrides[0].match.metric",
        "did you mean `REQUEST_COUNT`?",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  metrics:
  - overrides:
    - match:
        metric: REQUESTS_COUNT #!
      disabled: true
"#,
    ),
    (
        "bad-filter",
        E,
        "spec.accessLogging[0].filter.expression",
        "use `==` to compare",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  accessLogging:
  - providers: [{name: envoy}]
    filter:
      expression: response.code = 500 #!
"#,
    ),
    (
        "custom-tag-without-source",
        E,
        "spec.tracing[0].customTags.foo",
        "tag `foo` has no value source",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  tracing:
  - customTags:
      foo: {} #!
"#,
    ),
    (
        "selector-and-target-ref",
        E,
        "spec.targetRef",
        "only one of `selector` and `targetRef` may be set",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  selector:
    matchLabels: {app: httpbin}
  targetRef: #!
    kind: Gateway
    group: gateway.networking.k8s.io
    name: waypoint
"#,
    ),
    (
        "reporting-interval-without-unit",
        E,
        "spec.metrics[0].reportingInterval",
        "missing a unit",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  metrics:
  - reportingInterval: 10 #!
"#,
    ),
    (
        "several-tracing",
        W,
        "spec.tracing",
        "only the first `tracing` entry is used",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  tracing: #!
  - providers: [{name: zipkin}]
  - providers: [{name: otel}]
"#,
    ),
    (
        "typo",
        E,
        "spec.tracing[0].randomSamplingPercent",
        "did you mean `randomSamplingPercentage`?",
        r#"apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t}
spec:
  tracing:
  - randomSamplingPercent: 10 #!
"#,
    ),
];

#[test]
fn telemetries_valid() {
    check_valid(TELEMETRY_VALID);
    let out = load_str("t.yaml", TELEMETRY_VALID[0].1);
    let Spec::Telemetry(t) = &out.resources[0].spec else {
        panic!()
    };
    assert_eq!(t.tracing[0].random_sampling_percentage, Some(100.0));
    assert_eq!(t.tracing[0].custom_tags.len(), 3);
}

#[test]
fn telemetries_invalid() {
    check_bad(TELEMETRY_BAD);
}
