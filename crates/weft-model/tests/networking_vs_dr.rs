//! VirtualService and DestinationRule: realistic documents that must load cleanly, and one
//! invalid document per validation rule, each asserting the field path, line and message.

use weft_model::istio::networking::{DestinationRule, VirtualService};
use weft_model::{Diagnostic, LoadOutcome, Severity, Spec, load_str};

fn load(text: &str) -> LoadOutcome {
    load_str("test.yaml", text)
}

fn show(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("  {d}\n")).collect()
}

/// A VirtualService whose spec body (indented by two spaces) starts on line 5.
fn vs(body: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r, namespace: default}}\nspec:\n{}",
        body.trim_start_matches('\n')
    )
}

/// A DestinationRule whose spec body (indented by two spaces) starts on line 5.
fn dr(body: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: r, namespace: default}}\nspec:\n{}",
        body.trim_start_matches('\n')
    )
}

fn assert_clean(name: &str, text: &str, expected_resources: usize) {
    let out = load(text);
    let errors: Vec<Diagnostic> = out
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    assert!(
        errors.is_empty(),
        "{name}: expected no errors, got:\n{}",
        show(&errors)
    );
    let warnings: Vec<Diagnostic> = out
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .cloned()
        .collect();
    assert!(
        warnings.is_empty(),
        "{name}: expected no warnings, got:\n{}",
        show(&warnings)
    );
    assert_eq!(out.resources.len(), expected_resources, "{name}: resources");
}

/// One expected finding: severity, field path, line and a message fragment.
struct Case {
    name: &'static str,
    doc: String,
    severity: Severity,
    field: &'static str,
    line: usize,
    msg: &'static str,
}

fn err(
    name: &'static str,
    doc: String,
    field: &'static str,
    line: usize,
    msg: &'static str,
) -> Case {
    Case {
        name,
        doc,
        severity: Severity::Error,
        field,
        line,
        msg,
    }
}

fn warn(
    name: &'static str,
    doc: String,
    field: &'static str,
    line: usize,
    msg: &'static str,
) -> Case {
    Case {
        name,
        doc,
        severity: Severity::Warning,
        field,
        line,
        msg,
    }
}

fn run(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in &cases {
        let out = load(&c.doc);
        let found = out.diagnostics.iter().any(|d| {
            d.severity == c.severity
                && d.field.as_deref() == Some(c.field)
                && d.line == Some(c.line)
                && d.message.contains(c.msg)
        });
        if !found {
            failures.push(format!(
                "{}: expected {:?} at {} line {} containing {:?}; got:\n{}",
                c.name,
                c.severity,
                c.field,
                c.line,
                c.msg,
                show(&out.diagnostics)
            ));
        }
        if c.severity == Severity::Error {
            assert!(
                out.resources.is_empty(),
                "{}: a document with errors must be rejected",
                c.name
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// =======================================================================================
// Valid documents (Istio's Bookinfo samples and reference examples)
// =======================================================================================

const DESTINATION_RULE_ALL: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: productpage
spec:
  host: productpage
  subsets:
  - name: v1
    labels:
      version: v1
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings
spec:
  host: ratings
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v2-mysql
    labels:
      version: v2-mysql
  - name: v2-mysql-vm
    labels:
      version: v2-mysql-vm
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: details
spec:
  host: details
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
"#;

const DESTINATION_RULE_ALL_MTLS: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
"#;

const VIRTUAL_SERVICE_ALL_V1: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: productpage
spec:
  hosts:
  - productpage
  http:
  - route:
    - destination:
        host: productpage
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - route:
    - destination:
        host: ratings
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: details
spec:
  hosts:
  - details
  http:
  - route:
    - destination:
        host: details
        subset: v1
"#;

const REVIEWS_TEST_V2: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
"#;

const REVIEWS_50_V3: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 50
    - destination:
        host: reviews
        subset: v3
      weight: 50
"#;

const RATINGS_TEST_DELAY: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      delay:
        percentage:
          value: 100.0
        fixedDelay: 7s
    route:
    - destination:
        host: ratings
        subset: v1
  - route:
    - destination:
        host: ratings
        subset: v1
"#;

const RATINGS_TEST_ABORT: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      abort:
        percentage:
          value: 100.0
        httpStatus: 500
    route:
    - destination:
        host: ratings
        subset: v1
  - route:
    - destination:
        host: ratings
        subset: v1
"#;

const BOOKINFO_GATEWAY_VS: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo
spec:
  hosts:
  - "*"
  gateways:
  - bookinfo-gateway
  http:
  - match:
    - uri:
        exact: /productpage
    - uri:
        prefix: /static
    - uri:
        exact: /login
    - uri:
        exact: /logout
    - uri:
        prefix: /api/v1/products
    route:
    - destination:
        host: productpage
        port:
          number: 9080
"#;

/// Istio's circuit-breaking task.
const HTTPBIN_CIRCUIT_BREAKER: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
"#;

/// Every VirtualService feature at once, each used correctly.
const VS_KITCHEN_SINK: &str = r#"
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: everything
  namespace: shop
spec:
  hosts:
  - shop.example.com
  - "*.api.example.com"
  gateways:
  - mesh
  - istio-system/public-gateway
  http:
  - name: checkout
    match:
    - name: v2-api
      uri:
        regex: "^/checkout/v2/[a-z0-9]+$"
      method:
        exact: POST
      scheme:
        exact: https
      authority:
        prefix: shop.
      headers:
        x-canary:
          exact: "true"
        x-present: {}
      withoutHeaders:
        x-debug:
          regex: "*"
      queryParams:
        tenant:
          prefix: acme
      port: 8080
      sourceLabels:
        app: frontend
      gateways:
      - mesh
      sourceNamespace: web
      ignoreUriCase: true
      statPrefix: checkout-v2
    route:
    - destination:
        host: checkout.shop.svc.cluster.local
        subset: v2
        port:
          number: 8080
      weight: 90
      headers:
        request:
          set:
            x-route: v2
        response:
          remove:
          - x-internal
    - destination:
        host: checkout.shop.svc.cluster.local
        subset: v1
      weight: 10
    headers:
      request:
        add:
          x-request-start: "t=%START_TIME(%s.%3f)%"
        set:
          x-forwarded-host: "%REQ(:authority)%"
      response:
        set:
          cache-control: no-store
    rewrite:
      uriRegexRewrite:
        match: "^/checkout/v2/(.*)$"
        rewrite: /v2/\1
    timeout: 10s
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: 5xx,reset,connect-failure,retriable-status-codes,503
      retryRemoteLocalities: true
      retryIgnorePreviousHosts: true
      backoff: 25ms
    mirrors:
    - destination:
        host: checkout-shadow.shop.svc.cluster.local
      percentage:
        value: 5.5
    corsPolicy:
      allowOrigins:
      - exact: https://shop.example.com
      - regex: "https://.*\\.example\\.com"
      allowMethods: [GET, POST, OPTIONS]
      allowHeaders: [authorization, content-type]
      exposeHeaders: [x-request-id]
      maxAge: 24h
      allowCredentials: true
      unmatchedPreflights: IGNORE
  - name: legacy
    match:
    - uri:
        prefix: /old
    redirect:
      uri: /new
      authority: shop.example.com
      scheme: https
      derivePort: FROM_REQUEST_PORT
      redirectCode: 308
  - name: maintenance
    match:
    - uri:
        exact: /maintenance
    directResponse:
      status: 503
      body:
        string: "down for maintenance"
  - name: teapot
    match:
    - uri:
        exact: /teapot
    directResponse:
      status: 418
      body:
        bytes: aGVsbG8gd29ybGQ=
  - name: catalog
    match:
    - uri:
        prefix: /catalog
    rewrite:
      uri: /
      authority: catalog.shop.svc.cluster.local
    mirror:
      host: catalog-shadow
      subset: v1
    mirrorPercentage:
      value: 0.5
    fault:
      delay:
        fixedDelay: 100ms
        percentage:
          value: 0.1
      abort:
        grpcStatus: UNAVAILABLE
        percentage:
          value: 0.01
    route:
    - destination:
        host: catalog
  - route:
    - destination:
        host: shop.shop.svc.cluster.local
  tls:
  - match:
    - sniHosts:
      - login.api.example.com
      port: 443
      destinationSubnets: [10.0.0.0/8, 192.168.1.1]
      sourceLabels:
        app: frontend
      gateways: [mesh]
      sourceNamespace: web
    route:
    - destination:
        host: login.shop.svc.cluster.local
        port:
          number: 443
  tcp:
  - match:
    - port: 27017
      destinationSubnets: [10.1.0.0/16]
      sourceLabels:
        app: reporting
      sourceNamespace: batch
    route:
    - destination:
        host: mongo.backup.svc.cluster.local
        port:
          number: 5555
      weight: 100
  exportTo:
  - .
  - istio-system
"#;

const DELEGATION: &str = r#"
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: bookinfo
spec:
  hosts:
  - "bookinfo.com"
  gateways:
  - mygateway
  http:
  - match:
    - uri:
        prefix: "/productpage"
    delegate:
       name: productpage
       namespace: nsa
  - match:
    - uri:
        prefix: "/reviews"
    delegate:
        name: reviews
        namespace: nsb
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: productpage
  namespace: nsa
spec:
  http:
  - match:
     - uri:
        prefix: "/productpage/v1/"
    route:
    - destination:
        host: productpage-v1.nsa.svc.cluster.local
  - route:
    - destination:
        host: productpage.nsa.svc.cluster.local
"#;

const TLS_SNI_ROUTING: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo-sni
spec:
  hosts:
  - "*.bookinfo.com"
  gateways:
  - mygateway
  tls:
  - match:
    - port: 443
      sniHosts:
      - login.bookinfo.com
    route:
    - destination:
        host: login.prod.svc.cluster.local
  - match:
    - port: 443
      sniHosts:
      - reviews.bookinfo.com
    route:
    - destination:
        host: reviews.prod.svc.cluster.local
"#;

/// Every DestinationRule feature at once, each used correctly.
const DR_KITCHEN_SINK: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: everything
  namespace: shop
spec:
  host: "*.shop.svc.cluster.local"
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
      localityLbSetting:
        enabled: true
        failover:
        - from: us-east
          to: us-west
        failoverPriority:
        - topology.istio.io/network
      warmup:
        duration: 60s
        minimumPercent: 10
        aggression: 1.5
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 30ms
        tcpKeepalive:
          probes: 5
          time: 7200s
          interval: 75s
        maxConnectionDuration: 1h
        idleTimeout: 0s
      http:
        http1MaxPendingRequests: 1024
        http2MaxRequests: 1024
        maxRequestsPerConnection: 10
        maxRetries: 3
        idleTimeout: 5m
        h2UpgradePolicy: UPGRADE
        maxConcurrentStreams: 100
    outlierDetection:
      splitExternalLocalOriginErrors: true
      consecutiveLocalOriginFailures: 5
      consecutiveGatewayErrors: 5
      consecutive5xxErrors: 7
      interval: 5m
      baseEjectionTime: 15m
      maxEjectionPercent: 50
      minHealthPercent: 30
    tls:
      mode: SIMPLE
      credentialName: shop-ca
      subjectAltNames: [shop.example.com]
      sni: shop.example.com
    retryBudget:
      percent: 25
      minRetryConcurrency: 5
    portLevelSettings:
    - port:
        number: 80
      loadBalancer:
        simple: ROUND_ROBIN
    - port:
        number: 9443
      tls:
        mode: MUTUAL
        clientCertificate: /etc/certs/client.pem
        privateKey: /etc/certs/key.pem
        caCertificates: /etc/certs/ca.pem
        caCrl: /etc/certs/crl.pem
    - port:
        number: 8080
      loadBalancer:
        consistentHash:
          httpCookie:
            name: user
            path: /
            ttl: 0s
            attributes:
            - name: SameSite
              value: Strict
            - name: Secure
          ringHash:
            minimumRingSize: 1024
      connectionPool:
        http:
          maxRetries: 5
      outlierDetection:
        consecutive5xxErrors: 3
  subsets:
  - name: v1
    labels:
      version: v1
    trafficPolicy:
      loadBalancer:
        consistentHash:
          httpHeaderName: x-user
          maglev:
            tableSize: 65537
  - name: v2
    labels:
      version: v2
    trafficPolicy:
      loadBalancer:
        consistentHash:
          useSourceIp: true
      connectionPool:
        tcp:
          maxConnections: 10
  - name: v3
    labels:
      version: v3
    trafficPolicy:
      loadBalancer:
        consistentHash:
          httpQueryParameterName: session
        localityLbSetting:
          distribute:
          - from: us-west/zone1/*
            to:
              "us-west/zone1/*": 80
              "us-west/zone2/*": 20
  exportTo:
  - "."
"#;

const DR_TUNNEL_AND_SELECTOR: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egress-tunnel
  namespace: egress
spec:
  host: external.example.com
  workloadSelector:
    matchLabels:
      app: egress
  exportTo: ["."]
  trafficPolicy:
    tunnel:
      protocol: CONNECT
      targetHost: 192.168.1.2
      targetPort: 443
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: proxy-protocol
spec:
  host: legacy.example.com
  trafficPolicy:
    proxyProtocol:
      version: V2
"#;

#[test]
fn bookinfo_and_reference_documents_load_cleanly() {
    assert_clean("destination-rule-all", DESTINATION_RULE_ALL, 4);
    assert_clean("destination-rule-all-mtls", DESTINATION_RULE_ALL_MTLS, 1);
    assert_clean("virtual-service-all-v1", VIRTUAL_SERVICE_ALL_V1, 4);
    assert_clean("virtual-service-reviews-test-v2", REVIEWS_TEST_V2, 1);
    assert_clean("virtual-service-reviews-50-v3", REVIEWS_50_V3, 1);
    assert_clean("virtual-service-ratings-test-delay", RATINGS_TEST_DELAY, 1);
    assert_clean("virtual-service-ratings-test-abort", RATINGS_TEST_ABORT, 1);
    assert_clean("bookinfo-gateway", BOOKINFO_GATEWAY_VS, 1);
    assert_clean("httpbin circuit breaker", HTTPBIN_CIRCUIT_BREAKER, 1);
    assert_clean("vs kitchen sink", VS_KITCHEN_SINK, 1);
    assert_clean("delegation", DELEGATION, 2);
    assert_clean("tls sni routing", TLS_SNI_ROUTING, 1);
    assert_clean("dr kitchen sink", DR_KITCHEN_SINK, 1);
    assert_clean("dr tunnel and selector", DR_TUNNEL_AND_SELECTOR, 2);
}

#[test]
fn typed_fields_are_read() {
    let out = load(REVIEWS_50_V3);
    let Spec::VirtualService(v) = &out.resources[0].spec else {
        panic!("not a VirtualService")
    };
    assert_eq!(v.hosts, vec!["reviews"]);
    let route = &v.http[0].route;
    assert_eq!(
        route[1].destination.as_ref().unwrap().subset.as_deref(),
        Some("v3")
    );
    assert_eq!(route[1].weight, Some(50));

    let out = load(RATINGS_TEST_DELAY);
    let Spec::VirtualService(v) = &out.resources[0].spec else {
        panic!("not a VirtualService")
    };
    let delay = v.http[0].fault.as_ref().unwrap().delay.as_ref().unwrap();
    assert_eq!(
        delay.fixed_delay.unwrap().as_std(),
        std::time::Duration::from_secs(7)
    );
    assert_eq!(delay.percentage.unwrap().value, 100.0);
    assert_eq!(
        v.http[0].r#match[0].headers["end-user"].exact.as_deref(),
        Some("jason")
    );

    let out = load(DESTINATION_RULE_ALL);
    let Spec::DestinationRule(d) = &out.resources[1].spec else {
        panic!("not a DestinationRule")
    };
    assert_eq!(d.host, "reviews");
    assert_eq!(d.subset("v3").unwrap().labels["version"], "v3");
    assert!(d.subset("v4").is_none());
}

#[test]
fn kitchen_sinks_round_trip_through_serde() {
    for text in [VS_KITCHEN_SINK, DR_KITCHEN_SINK] {
        let out = load(text);
        match &out.resources[0].spec {
            Spec::VirtualService(v) => {
                let json = serde_json::to_value(v).unwrap();
                let back: VirtualService = serde_json::from_value(json.clone()).unwrap();
                assert_eq!(&back, v);
                assert_eq!(
                    json, out.resources[0].raw["spec"],
                    "serialized form differs from the document"
                );
            }
            Spec::DestinationRule(d) => {
                let json = serde_json::to_value(d).unwrap();
                let back: DestinationRule = serde_json::from_value(json).unwrap();
                assert_eq!(&back, d);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

// =======================================================================================
// Invalid VirtualServices: one mistake each
// =======================================================================================

const ROUTE: &str = "  http:\n  - route:\n    - destination: {host: reviews}\n";

fn vs_with_route(top: &str) -> String {
    vs(&format!("{}{ROUTE}", top.trim_start_matches('\n')))
}

#[test]
fn virtual_service_spec_rules() {
    run(vec![
        err(
            "no routes",
            vs("  hosts: [reviews]\n"),
            "spec",
            4,
            "at least one `http`, `tcp` or `tls` route",
        ),
        err(
            "invalid host",
            vs_with_route("  hosts: [reviews, bad_host.example.com]\n"),
            "spec.hosts[1]",
            5,
            "host `bad_host.example.com` is not a valid host name",
        ),
        err(
            "numeric top-level domain",
            vs_with_route("  hosts: [reviews.123]\n"),
            "spec.hosts[0]",
            5,
            "last label `123` is all digits",
        ),
        err(
            "wildcard host for sidecars",
            vs_with_route("  hosts: [\"*\"]\n"),
            "spec.hosts[0]",
            5,
            "host `*` is not allowed when the VirtualService applies to sidecars",
        ),
        err(
            "wildcard host with mesh listed",
            vs_with_route("  hosts: [\"*\"]\n  gateways: [mesh, public-gw]\n"),
            "spec.hosts[0]",
            5,
            "host `*` is not allowed",
        ),
        err(
            "duplicate hosts",
            vs_with_route("  hosts:\n  - reviews\n  - details\n  - reviews\n"),
            "spec.hosts[2]",
            8,
            "host `reviews` overlaps `reviews` (hosts[0])",
        ),
        err(
            "wildcard overlap",
            vs_with_route("  hosts:\n  - \"*.example.com\"\n  - api.example.com\n"),
            "spec.hosts[1]",
            7,
            "overlaps `*.example.com`",
        ),
        err(
            "invalid gateway name",
            vs_with_route("  hosts: [reviews]\n  gateways:\n  - istio-system/my_gateway\n"),
            "spec.gateways[0]",
            7,
            "invalid name `my_gateway`",
        ),
        err(
            "gateway with empty namespace",
            vs_with_route("  hosts: [reviews]\n  gateways: [/gw]\n"),
            "spec.gateways[0]",
            6,
            "both parts set",
        ),
        warn(
            "legacy gateway form",
            vs_with_route("  hosts: [reviews]\n  gateways:\n  - my-gateway.istio-system\n"),
            "spec.gateways[0]",
            7,
            "write it as `istio-system/my-gateway`",
        ),
        err(
            "exportTo bad value",
            vs_with_route("  hosts: [reviews]\n  exportTo: [\"Bad_NS\"]\n"),
            "spec.exportTo[0]",
            6,
            "`Bad_NS` is not a valid exportTo value",
        ),
        err(
            "exportTo duplicate of this namespace",
            vs_with_route("  hosts: [reviews]\n  exportTo:\n  - .\n  - default\n"),
            "spec.exportTo[1]",
            8,
            "`.` and `default` both mean this namespace",
        ),
        err(
            "exportTo repeated",
            vs_with_route("  hosts: [reviews]\n  exportTo: [foo, foo]\n"),
            "spec.exportTo[1]",
            6,
            "`foo` is listed more than once",
        ),
        err(
            "exportTo star mixed",
            vs_with_route("  hosts: [reviews]\n  exportTo: [\"*\", foo]\n"),
            "spec.exportTo",
            6,
            "`*` already exports to every namespace",
        ),
        err(
            "typo in spec field",
            vs_with_route("  host: [reviews]\n"),
            "spec.host",
            5,
            "unknown field `host`: did you mean `hosts`?",
        ),
    ]);
}

#[test]
fn virtual_service_http_action_rules() {
    run(vec![
        err(
            "route and redirect",
            vs(
                "  hosts: [reviews]\n  http:\n  - redirect: {uri: /v2}\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0]",
            7,
            "found `route` and `redirect`",
        ),
        err(
            "route and directResponse",
            vs(
                "  hosts: [reviews]\n  http:\n  - directResponse: {status: 503}\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0]",
            7,
            "found `route` and `directResponse`",
        ),
        err(
            "redirect and directResponse",
            vs(
                "  hosts: [reviews]\n  http:\n  - directResponse: {status: 503}\n    redirect: {uri: /x}\n",
            ),
            "spec.http[0]",
            7,
            "found `redirect` and `directResponse`",
        ),
        err(
            "no action",
            vs("  hosts: [reviews]\n  http:\n  - name: nothing\n"),
            "spec.http[0]",
            7,
            "exactly one of `route`, `redirect`, `directResponse`, `delegate` must be set; none is",
        ),
        err(
            "redirect with rewrite",
            vs("  hosts: [reviews]\n  http:\n  - redirect: {uri: /v2}\n    rewrite: {uri: /v3}\n"),
            "spec.http[0].rewrite",
            8,
            "`rewrite` cannot be combined with `redirect`",
        ),
        err(
            "redirect with fault",
            vs(
                "  hosts: [reviews]\n  http:\n  - redirect: {uri: /v2}\n    fault:\n      abort: {httpStatus: 500}\n",
            ),
            "spec.http[0].fault",
            8,
            "`fault` cannot be combined with `redirect`",
        ),
        err(
            "directResponse with rewrite",
            vs(
                "  hosts: [reviews]\n  http:\n  - directResponse: {status: 200}\n    rewrite: {uri: /v3}\n",
            ),
            "spec.http[0].rewrite",
            8,
            "`rewrite` cannot be combined with `directResponse`",
        ),
        err(
            "empty redirect",
            vs("  hosts: [reviews]\n  http:\n  - redirect: {redirectCode: 302}\n"),
            "spec.http[0].redirect",
            7,
            "must set at least one of `uri`, `authority`, `scheme`, `port` or `derivePort`",
        ),
        err(
            "redirect code not 3xx",
            vs(
                "  hosts: [reviews]\n  http:\n  - redirect:\n      uri: /v2\n      redirectCode: 200\n",
            ),
            "spec.http[0].redirect.redirectCode",
            9,
            "redirect code 200 is not a redirect status",
        ),
        err(
            "redirect scheme",
            vs("  hosts: [reviews]\n  http:\n  - redirect:\n      scheme: ftp\n"),
            "spec.http[0].redirect.scheme",
            8,
            "redirect scheme `ftp` is invalid",
        ),
        err(
            "redirect port and derivePort",
            vs(
                "  hosts: [reviews]\n  http:\n  - redirect: {port: 8080, derivePort: FROM_REQUEST_PORT}\n",
            ),
            "spec.http[0].redirect",
            7,
            "only one of `port`, `derivePort` may be set",
        ),
        err(
            "redirect port range",
            vs("  hosts: [reviews]\n  http:\n  - redirect:\n      port: 70000\n"),
            "spec.http[0].redirect.port",
            8,
            "port 70000 is out of range",
        ),
        err(
            "directResponse without status",
            vs("  hosts: [reviews]\n  http:\n  - directResponse:\n      body: {string: hi}\n"),
            "spec.http[0].directResponse.status",
            7,
            "`status` is required",
        ),
        err(
            "directResponse status range",
            vs("  hosts: [reviews]\n  http:\n  - directResponse:\n      status: 99\n"),
            "spec.http[0].directResponse.status",
            8,
            "HTTP status 99 is out of range",
        ),
        err(
            "directResponse bytes",
            vs(
                "  hosts: [reviews]\n  http:\n  - directResponse:\n      status: 200\n      body:\n        bytes: \"not base64!\"\n",
            ),
            "spec.http[0].directResponse.body.bytes",
            10,
            "`bytes` is not valid base64",
        ),
        err(
            "directResponse string and bytes",
            vs(
                "  hosts: [reviews]\n  http:\n  - directResponse:\n      status: 200\n      body: {string: a, bytes: YQ==}\n",
            ),
            "spec.http[0].directResponse.body",
            9,
            "only one of `string`, `bytes` may be set",
        ),
        err(
            "rewrite uri and regex",
            vs(
                "  hosts: [reviews]\n  http:\n  - rewrite:\n      uri: /a\n      uriRegexRewrite: {match: ^/b, rewrite: /c}\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].rewrite",
            7,
            "`uri` and `uriRegexRewrite` cannot both be set",
        ),
        err(
            "empty rewrite",
            vs(
                "  hosts: [reviews]\n  http:\n  - rewrite: {}\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].rewrite",
            7,
            "`rewrite` must set `uri`, `uriRegexRewrite` or `authority`",
        ),
        err(
            "rewrite regex does not compile",
            vs(
                "  hosts: [reviews]\n  http:\n  - rewrite:\n      uriRegexRewrite:\n        match: \"^/(a\"\n        rewrite: /b\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].rewrite.uriRegexRewrite.match",
            9,
            "`^/(a` is not a valid RE2 regular expression",
        ),
        err(
            "rewrite regex without replacement",
            vs(
                "  hosts: [reviews]\n  http:\n  - rewrite:\n      uriRegexRewrite:\n        match: ^/a\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].rewrite.uriRegexRewrite.rewrite",
            8,
            "`rewrite` is required",
        ),
        err(
            "authority rewritten twice",
            vs(
                "  hosts: [reviews]\n  http:\n  - rewrite: {authority: a.example.com}\n    headers:\n      request:\n        set:\n          host: b.example.com\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].headers.request.set.host",
            11,
            "the authority is set twice",
        ),
        err(
            "mirror and mirrors",
            vs(
                "  hosts: [reviews]\n  http:\n  - mirror: {host: shadow}\n    mirrors:\n    - destination: {host: shadow2}\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].mirrors",
            8,
            "`mirror` and `mirrors` cannot both be set",
        ),
        err(
            "mirror percentage range",
            vs(
                "  hosts: [reviews]\n  http:\n  - mirror: {host: shadow}\n    mirrorPercentage:\n      value: 150\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].mirrorPercentage.value",
            9,
            "percentage 150 is out of range",
        ),
        err(
            "mirrors entry without destination",
            vs(
                "  hosts: [reviews]\n  http:\n  - mirrors:\n    - percentage: {value: 10}\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].mirrors[0].destination",
            8,
            "`destination` is required",
        ),
        err(
            "mirrors percentage range",
            vs(
                "  hosts: [reviews]\n  http:\n  - mirrors:\n    - destination: {host: shadow}\n      percentage: {value: -1}\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].mirrors[0].percentage.value",
            9,
            "percentage -1 is out of range",
        ),
        err(
            "mirrorPercent over 100",
            vs(
                "  hosts: [reviews]\n  http:\n  - mirror: {host: shadow}\n    mirrorPercent: 101\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].mirrorPercent",
            8,
            "mirrorPercent 101 is out of range",
        ),
        warn(
            "mirrorPercent deprecated",
            vs(
                "  hosts: [reviews]\n  http:\n  - mirror: {host: shadow}\n    mirror_percent: 50\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].mirror_percent",
            8,
            "`mirror_percent` is deprecated: use `mirrorPercentage: {value: 50}`",
        ),
        warn(
            "mirrorPercentage without mirror",
            vs(
                "  hosts: [reviews]\n  http:\n  - mirrorPercentage: {value: 50}\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].mirrorPercentage",
            7,
            "has no effect without `mirror`",
        ),
        err(
            "timeout zero",
            vs(
                "  hosts: [reviews]\n  http:\n  - timeout: 0s\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].timeout",
            7,
            "duration 0s is too short: it must be at least 1ms",
        ),
        err(
            "timeout sub-millisecond",
            vs(
                "  hosts: [reviews]\n  http:\n  - timeout: 1500us\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].timeout",
            7,
            "sub-millisecond precision",
        ),
        err(
            "bad duration",
            vs(
                "  hosts: [reviews]\n  http:\n  - timeout: 10\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].timeout",
            7,
            "missing a unit",
        ),
        err(
            "header op on pseudo header",
            vs(
                "  hosts: [reviews]\n  http:\n  - headers:\n      request:\n        set:\n          \":path\": /x\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].headers.request.set.:path",
            10,
            "header `:path` cannot be changed",
        ),
        err(
            "response host header",
            vs(
                "  hosts: [reviews]\n  http:\n  - headers:\n      response:\n        set:\n          Host: x\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].headers.response.set.Host",
            10,
            "header `Host` cannot be changed here",
        ),
        err(
            "header value with stray percent",
            vs(
                "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n      headers:\n        request:\n          add:\n            x-discount: \"50%\"\n",
            ),
            "spec.http[0].route[0].headers.request.add.x-discount",
            12,
            "a lone `%` must be written `%%`",
        ),
        err(
            "remove empty header name",
            vs(
                "  hosts: [reviews]\n  http:\n  - headers:\n      request:\n        remove: [\"\"]\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].headers.request.remove[0]",
            9,
            "header name must not be empty",
        ),
    ]);
}

#[test]
fn virtual_service_destination_rules() {
    run(vec![
        err(
            "negative weight",
            vs(
                "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 105\n    - destination: {host: reviews, subset: v2}\n      weight: -5\n",
            ),
            "spec.http[0].route[1].weight",
            11,
            "weight -5 is negative: weights must be 0 or more",
        ),
        err(
            "weights all zero",
            vs(
                "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n    - destination: {host: reviews, subset: v2}\n",
            ),
            "spec.http[0].route",
            7,
            "all destination weights are 0",
        ),
        err(
            "destination without host",
            vs("  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        subset: v1\n"),
            "spec.http[0].route[0].destination.host",
            8,
            "`host` is required",
        ),
        err(
            "destination host wildcard",
            vs(
                "  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: \"*\"\n",
            ),
            "spec.http[0].route[0].destination.host",
            9,
            "`*` is not a valid destination host",
        ),
        err(
            "destination host invalid",
            vs(
                "  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews..default\n",
            ),
            "spec.http[0].route[0].destination.host",
            9,
            "destination host `reviews..default` is not a valid DNS name",
        ),
        err(
            "destination host is an IP",
            vs(
                "  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: 10.0.0.1\n",
            ),
            "spec.http[0].route[0].destination.host",
            9,
            "last label `1` is all digits",
        ),
        err(
            "subset name",
            vs(
                "  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n        subset: v1_beta\n",
            ),
            "spec.http[0].route[0].destination.subset",
            10,
            "subset name `v1_beta` is invalid",
        ),
        err(
            "destination port",
            vs(
                "  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n        port:\n          number: 70000\n",
            ),
            "spec.http[0].route[0].destination.port.number",
            11,
            "port 70000 is out of range",
        ),
        err(
            "route entry without destination",
            vs("  hosts: [reviews]\n  http:\n  - route:\n    - weight: 100\n"),
            "spec.http[0].route[0].destination",
            8,
            "`destination` is required",
        ),
        err(
            "mirror destination",
            vs(
                "  hosts: [reviews]\n  http:\n  - mirror:\n      host: \"*\"\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0].mirror.host",
            8,
            "`*` is not a valid destination host",
        ),
        err(
            "typo in destination",
            vs(
                "  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n        subsets: v1\n",
            ),
            "spec.http[0].route[0].destination.subsets",
            10,
            "did you mean `subset`?",
        ),
    ]);
}

#[test]
fn virtual_service_match_rules() {
    let m = |lines: &str| {
        vs(&format!(
            "  hosts: [reviews]\n  http:\n  - match:\n{lines}    route:\n    - destination: {{host: reviews}}\n"
        ))
    };
    run(vec![
        err(
            "uri regex",
            m("    - uri:\n        regex: \"[a-\"\n"),
            "spec.http[0].match[0].uri.regex",
            9,
            "`[a-` is not a valid RE2 regular expression",
        ),
        err(
            "uri two match types",
            m("    - uri: {exact: /a, prefix: /b}\n"),
            "spec.http[0].match[0].uri",
            8,
            "only one of `exact`, `prefix` may be set",
        ),
        err(
            "uri empty",
            m("    - uri: {}\n"),
            "spec.http[0].match[0].uri",
            8,
            "exactly one of `exact`, `prefix` or `regex` must be set; none is",
        ),
        err(
            "method empty prefix",
            m("    - method:\n        prefix: \"\"\n"),
            "spec.http[0].match[0].method.prefix",
            9,
            "prefix must not be empty",
        ),
        err(
            "header empty regex",
            m("    - headers:\n        x-version:\n          regex: \"\"\n"),
            "spec.http[0].match[0].headers.x-version.regex",
            10,
            "the regular expression must not be empty",
        ),
        err(
            "header name",
            m("    - headers:\n        \"bad header\":\n          exact: a\n"),
            "spec.http[0].match[0].headers[\"bad header\"]",
            9,
            "`bad header` is not a valid header name",
        ),
        err(
            "header regex star is not a regex",
            m("    - headers:\n        x-debug:\n          regex: \"*\"\n"),
            "spec.http[0].match[0].headers.x-debug.regex",
            10,
            "not a valid RE2 regular expression",
        ),
        err(
            "query param empty prefix",
            m("    - queryParams:\n        tenant: {prefix: \"\"}\n"),
            "spec.http[0].match[0].queryParams.tenant.prefix",
            9,
            "prefix must not be empty",
        ),
        err(
            "without headers regex",
            m("    - withoutHeaders:\n        x-a: {regex: \"(\"}\n"),
            "spec.http[0].match[0].withoutHeaders.x-a.regex",
            9,
            "not a valid RE2 regular expression",
        ),
        err(
            "match port",
            m("    - port: 70000\n"),
            "spec.http[0].match[0].port",
            8,
            "port 70000 is out of range",
        ),
        err(
            "source labels",
            m("    - sourceLabels:\n        app: \"-frontend\"\n"),
            "spec.http[0].match[0].sourceLabels.app",
            9,
            "label value `-frontend` is invalid",
        ),
        err(
            "source namespace",
            m("    - sourceNamespace: web_ns\n"),
            "spec.http[0].match[0].sourceNamespace",
            8,
            "`web_ns` is not a valid namespace name",
        ),
        err(
            "match gateways",
            m("    - gateways: [\"ns/bad.gw\"]\n"),
            "spec.http[0].match[0].gateways[0]",
            8,
            "invalid name `bad.gw`",
        ),
        err(
            "jwt claim routing on sidecars",
            m("    - headers:\n        \"@request.auth.claims.group\":\n          exact: admin\n"),
            "spec.http[0].match[0].headers[\"@request.auth.claims.group\"]",
            9,
            "routing on JWT claim `@request.auth.claims.group` works only on gateways",
        ),
        err(
            "typo in match",
            m("    - uri:\n        exat: /a\n"),
            "spec.http[0].match[0].uri.exat",
            9,
            "did you mean `exact`?",
        ),
        warn(
            "rule after a catch-all",
            vs(
                "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n  - name: never\n    match:\n    - uri: {prefix: /x}\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[1]",
            9,
            "rule \"never\" is never used: rule #0 before it has no `match`",
        ),
        warn(
            "duplicate match",
            vs(
                "  hosts: [reviews]\n  http:\n  - match:\n    - uri: {prefix: /a}\n    route:\n    - destination: {host: reviews}\n  - match:\n    - uri: {prefix: /b}\n    - name: again\n      uri: {prefix: /a}\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[1].match[1]",
            13,
            "this match is never used: rule #0 has the same match",
        ),
    ]);
}

#[test]
fn virtual_service_retry_fault_cors_rules() {
    let r = |lines: &str| {
        vs(&format!(
            "  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews}}\n{lines}"
        ))
    };
    run(vec![
        err(
            "negative attempts",
            r("    retries:\n      attempts: -1\n"),
            "spec.http[0].retries.attempts",
            10,
            "attempts -1 is negative",
        ),
        err(
            "retry settings with zero attempts",
            r("    retries:\n      attempts: 0\n      perTryTimeout: 2s\n"),
            "spec.http[0].retries.attempts",
            10,
            "retries are disabled because `attempts` is 0",
        ),
        err(
            "retry settings without attempts",
            r("    retries:\n      retryOn: 5xx\n"),
            "spec.http[0].retries",
            9,
            "retries are disabled because `attempts` is 0 (or left out)",
        ),
        err(
            "perTryTimeout too short",
            r("    retries:\n      attempts: 3\n      perTryTimeout: 0s\n"),
            "spec.http[0].retries.perTryTimeout",
            11,
            "duration 0s is too short",
        ),
        err(
            "retryOn typo",
            r("    retries:\n      attempts: 3\n      retryOn: 5xx,connect-failur\n"),
            "spec.http[0].retries.retryOn",
            11,
            "`connect-failur` is not a valid retryOn condition: did you mean `connect-failure`?",
        ),
        err(
            "retryOn unknown status",
            r("    retries:\n      attempts: 3\n      retryOn: \"599\"\n"),
            "spec.http[0].retries.retryOn",
            11,
            "`599` is not a known HTTP status code",
        ),
        err(
            "retryOn with spaces",
            r("    retries:\n      attempts: 3\n      retryOn: \"5xx, reset\"\n"),
            "spec.http[0].retries.retryOn",
            11,
            "has spaces around it",
        ),
        err(
            "backoff too short",
            r("    retries:\n      attempts: 3\n      backoff: 0s\n"),
            "spec.http[0].retries.backoff",
            11,
            "too short",
        ),
        err(
            "typo in retries",
            r("    retries:\n      attempts: 3\n      retryOnn: 5xx\n"),
            "spec.http[0].retries.retryOnn",
            11,
            "unknown field `retryOnn`: did you mean `retryOn`?",
        ),
        err(
            "empty fault",
            r("    fault: {}\n"),
            "spec.http[0].fault",
            9,
            "`fault` needs a `delay`, an `abort`, or both",
        ),
        err(
            "delay without a delay",
            r("    fault:\n      delay:\n        percentage: {value: 10}\n"),
            "spec.http[0].fault.delay",
            10,
            "exactly one of `fixedDelay`, `exponentialDelay` must be set; none is",
        ),
        err(
            "delay percentage range",
            r(
                "    fault:\n      delay:\n        fixedDelay: 5s\n        percentage:\n          value: 150\n",
            ),
            "spec.http[0].fault.delay.percentage.value",
            13,
            "percentage 150 is out of range",
        ),
        err(
            "delay percentage too small",
            r(
                "    fault:\n      delay:\n        fixedDelay: 5s\n        percentage:\n          value: 0.00001\n",
            ),
            "spec.http[0].fault.delay.percentage.value",
            13,
            "it must be 0, or between 0.0001 and 100",
        ),
        err(
            "fixed delay zero",
            r("    fault:\n      delay:\n        fixedDelay: 0s\n"),
            "spec.http[0].fault.delay.fixedDelay",
            11,
            "too short",
        ),
        err(
            "exponential delay",
            r("    fault:\n      delay:\n        exponentialDelay: 1s\n"),
            "spec.http[0].fault.delay.exponentialDelay",
            11,
            "`exponentialDelay` is not supported yet",
        ),
        warn(
            "deprecated delay percent",
            r("    fault:\n      delay:\n        fixedDelay: 1s\n        percent: 10\n"),
            "spec.http[0].fault.delay.percent",
            12,
            "`percent` is deprecated",
        ),
        err(
            "abort status range",
            r("    fault:\n      abort:\n        httpStatus: 700\n"),
            "spec.http[0].fault.abort.httpStatus",
            11,
            "HTTP status 700 is out of range: it must be between 200 and 599",
        ),
        err(
            "abort grpc status",
            r("    fault:\n      abort:\n        grpcStatus: UNAVAILABLEE\n"),
            "spec.http[0].fault.abort.grpcStatus",
            11,
            "`UNAVAILABLEE` is not a gRPC status name: did you mean `UNAVAILABLE`?",
        ),
        err(
            "abort http2 error",
            r("    fault:\n      abort:\n        http2Error: REFUSED_STREAM\n"),
            "spec.http[0].fault.abort.http2Error",
            11,
            "HTTP/2 error aborts are not supported yet",
        ),
        err(
            "abort two error types",
            r("    fault:\n      abort:\n        httpStatus: 500\n        grpcStatus: INTERNAL\n"),
            "spec.http[0].fault.abort",
            10,
            "only one of `httpStatus`, `grpcStatus` may be set",
        ),
        warn(
            "abort without error type",
            r("    fault:\n      abort:\n        percentage: {value: 10}\n"),
            "spec.http[0].fault.abort",
            10,
            "`abort` has no error to return",
        ),
        err(
            "cors max age fraction",
            r("    corsPolicy:\n      maxAge: 1500ms\n"),
            "spec.http[0].corsPolicy.maxAge",
            10,
            "maxAge 1500ms must be a whole number of seconds",
        ),
        err(
            "cors method case",
            r("    corsPolicy:\n      allowMethods: [GET, post]\n"),
            "spec.http[0].corsPolicy.allowMethods[1]",
            10,
            "`post` is not a supported CORS method: methods are upper-case, write `POST`",
        ),
        err(
            "cors empty origin",
            r("    corsPolicy:\n      allowOrigins:\n      - exact: \"\"\n"),
            "spec.http[0].corsPolicy.allowOrigins[0]",
            11,
            "an allowed origin needs one of `exact`, `prefix` or `regex`",
        ),
        err(
            "cors origin regex",
            r("    corsPolicy:\n      allowOrigins:\n      - regex: \"https://(\"\n"),
            "spec.http[0].corsPolicy.allowOrigins[0].regex",
            11,
            "not a valid RE2 regular expression",
        ),
        err(
            "cors header name",
            r("    corsPolicy:\n      allowHeaders: [\"x bad\"]\n"),
            "spec.http[0].corsPolicy.allowHeaders[0]",
            10,
            "`x bad` is not a valid header name",
        ),
        warn(
            "cors deprecated allowOrigin",
            r("    corsPolicy:\n      allowOrigin: [\"https://a.example.com\"]\n"),
            "spec.http[0].corsPolicy.allowOrigin",
            10,
            "`allowOrigin` is deprecated",
        ),
        err(
            "cors unmatchedPreflights value",
            r("    corsPolicy:\n      unmatchedPreflights: IGNORED\n"),
            "spec.http[0].corsPolicy.unmatchedPreflights",
            10,
            "`IGNORED` is not a valid value: did you mean `IGNORE`?",
        ),
    ]);
}

#[test]
fn virtual_service_delegate_rules() {
    run(vec![
        err(
            "delegate with gateways",
            vs("  gateways: [gw]\n  http:\n  - route:\n    - destination: {host: reviews}\n"),
            "spec.gateways",
            5,
            "a delegate VirtualService (one without `hosts`) must not set `gateways`",
        ),
        err(
            "delegate with tcp",
            vs("  tcp:\n  - route:\n    - destination: {host: mongo}\n"),
            "spec.tcp",
            5,
            "cannot have `tcp` routes",
        ),
        err(
            "delegate with tls",
            vs(
                "  tls:\n  - match:\n    - sniHosts: [a.example.com]\n    route:\n    - destination: {host: a}\n",
            ),
            "spec.tls",
            5,
            "cannot have `tls` routes",
        ),
        err(
            "delegate delegating again",
            vs("  http:\n  - delegate: {name: other}\n"),
            "spec.http[0].delegate",
            6,
            "a delegate VirtualService cannot delegate again",
        ),
        err(
            "delegate with route",
            vs(
                "  hosts: [bookinfo.com]\n  http:\n  - delegate: {name: reviews}\n    route:\n    - destination: {host: reviews}\n",
            ),
            "spec.http[0]",
            7,
            "found `route` and `delegate`",
        ),
        err(
            "delegate without name",
            vs("  hosts: [bookinfo.com]\n  http:\n  - delegate: {namespace: nsa}\n"),
            "spec.http[0].delegate.name",
            7,
            "`name` is required",
        ),
        err(
            "delegate namespace",
            vs(
                "  hosts: [bookinfo.com]\n  http:\n  - delegate: {name: reviews, namespace: NS_A}\n",
            ),
            "spec.http[0].delegate.namespace",
            7,
            "`NS_A` is not a valid namespace name",
        ),
    ]);
}

#[test]
fn virtual_service_tls_and_tcp_rules() {
    let tls = |lines: &str| {
        vs(&format!(
            "  hosts: [\"*.bookinfo.com\"]\n  gateways: [mygateway]\n  tls:\n{lines}"
        ))
    };
    run(vec![
        err(
            "tls match without sni",
            tls("  - match:\n    - port: 443\n    route:\n    - destination: {host: login}\n"),
            "spec.tls[0].match[0].sniHosts",
            9,
            "a TLS match needs at least one SNI host",
        ),
        err(
            "tls route without match",
            tls("  - route:\n    - destination: {host: login}\n"),
            "spec.tls[0].match",
            8,
            "a TLS route needs at least one `match`",
        ),
        err(
            "tls route without route",
            tls("  - match:\n    - sniHosts: [login.bookinfo.com]\n"),
            "spec.tls[0].route",
            8,
            "`route` is required",
        ),
        err(
            "sni host outside hosts",
            tls(
                "  - match:\n    - sniHosts:\n      - login.example.com\n    route:\n    - destination: {host: login}\n",
            ),
            "spec.tls[0].match[0].sniHosts[0]",
            10,
            "SNI host `login.example.com` is not covered by any of the VirtualService's hosts [*.bookinfo.com]",
        ),
        err(
            "sni host invalid",
            tls(
                "  - match:\n    - sniHosts: [\"log_in.bookinfo.com\"]\n    route:\n    - destination: {host: login}\n",
            ),
            "spec.tls[0].match[0].sniHosts[0]",
            9,
            "SNI host `log_in.bookinfo.com` is not a valid host name",
        ),
        warn(
            "sni host ip",
            tls(
                "  - match:\n    - sniHosts: [10.0.0.1]\n    route:\n    - destination: {host: login}\n",
            ),
            "spec.tls[0].match[0].sniHosts[0]",
            9,
            "is an IP address",
        ),
        err(
            "tls destination subnet",
            tls(
                "  - match:\n    - sniHosts: [a.bookinfo.com]\n      destinationSubnets: [10.0.0.0/33]\n    route:\n    - destination: {host: login}\n",
            ),
            "spec.tls[0].match[0].destinationSubnets[0]",
            10,
            "`10.0.0.0/33` is not a valid CIDR block",
        ),
        err(
            "tcp subnet",
            vs(
                "  hosts: [mongo]\n  tcp:\n  - match:\n    - destinationSubnets: [not-an-ip]\n    route:\n    - destination: {host: mongo}\n",
            ),
            "spec.tcp[0].match[0].destinationSubnets[0]",
            8,
            "`not-an-ip` is not a valid IP address or CIDR block",
        ),
        err(
            "tcp without route",
            vs("  hosts: [mongo]\n  tcp:\n  - match:\n    - port: 27017\n"),
            "spec.tcp[0].route",
            7,
            "`route` is required: a TCP route needs at least one destination",
        ),
        err(
            "tcp match port",
            vs(
                "  hosts: [mongo]\n  tcp:\n  - match:\n    - port: 0\n      sourceNamespace: \"-x\"\n    route:\n    - destination: {host: mongo}\n",
            ),
            "spec.tcp[0].match[0].sourceNamespace",
            9,
            "`-x` is not a valid namespace name",
        ),
        err(
            "tcp weights zero",
            vs(
                "  hosts: [mongo]\n  tcp:\n  - route:\n    - destination: {host: mongo-a}\n    - destination: {host: mongo-b}\n",
            ),
            "spec.tcp[0].route",
            7,
            "all destination weights are 0",
        ),
        err(
            "tcp negative weight",
            vs(
                "  hosts: [mongo]\n  tcp:\n  - route:\n    - destination: {host: mongo-a}\n      weight: -1\n",
            ),
            "spec.tcp[0].route[0].weight",
            9,
            "weight -1 is negative",
        ),
        warn(
            "tcp rule after catch-all",
            vs(
                "  hosts: [mongo]\n  tcp:\n  - route:\n    - destination: {host: mongo-a}\n  - match:\n    - port: 27017\n    route:\n    - destination: {host: mongo-b}\n",
            ),
            "spec.tcp[1]",
            9,
            "rule #1 is never used: rule #0 before it has no `match`",
        ),
    ]);
}

// =======================================================================================
// Invalid DestinationRules: one mistake each
// =======================================================================================

#[test]
fn destination_rule_host_subset_export_rules() {
    run(vec![
        err(
            "missing host",
            dr("  subsets:\n  - name: v1\n"),
            "spec.host",
            4,
            "`host` is required",
        ),
        err(
            "invalid host",
            dr("  host: reviews_svc\n"),
            "spec.host",
            5,
            "host `reviews_svc` is not a valid host name",
        ),
        err(
            "subset without name",
            dr("  host: reviews\n  subsets:\n  - labels: {version: v1}\n"),
            "spec.subsets[0].name",
            7,
            "`name` is required",
        ),
        err(
            "duplicate subsets",
            dr(
                "  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n  - name: v1\n    labels: {version: v2}\n",
            ),
            "spec.subsets[1].name",
            9,
            "subset `v1` is defined twice (first at subsets[0])",
        ),
        err(
            "subset name invalid",
            dr("  host: reviews\n  subsets:\n  - name: v1.0\n"),
            "spec.subsets[0].name",
            7,
            "subset name `v1.0` is invalid",
        ),
        err(
            "subset labels",
            dr("  host: reviews\n  subsets:\n  - name: v1\n    labels:\n      version: \"v1!\"\n"),
            "spec.subsets[0].labels.version",
            9,
            "label value `v1!` is invalid",
        ),
        err(
            "subset traffic policy",
            dr(
                "  host: reviews\n  subsets:\n  - name: v1\n    trafficPolicy:\n      connectionPool:\n        tcp:\n          maxConnections: -1\n",
            ),
            "spec.subsets[0].trafficPolicy.connectionPool.tcp.maxConnections",
            11,
            "maxConnections -1 is negative",
        ),
        err(
            "exportTo with selector",
            dr(
                "  host: reviews\n  workloadSelector:\n    matchLabels: {app: reviews}\n  exportTo: [\"*\"]\n",
            ),
            "spec.exportTo",
            8,
            "a DestinationRule with a `workloadSelector` can only be exported to its own namespace",
        ),
        err(
            "exportTo duplicates",
            dr("  host: reviews\n  exportTo: [\".\", \".\"]\n"),
            "spec.exportTo[1]",
            6,
            "`.` is listed more than once",
        ),
        warn(
            "selector without labels",
            dr("  host: reviews\n  workloadSelector: {}\n"),
            "spec.workloadSelector",
            6,
            "`workloadSelector` has no labels",
        ),
        err(
            "selector labels",
            dr("  host: reviews\n  workloadSelector:\n    matchLabels:\n      app: \"*\"\n"),
            "spec.workloadSelector.matchLabels.app",
            8,
            "label value `*` is invalid",
        ),
        err(
            "typo in spec",
            dr("  host: reviews\n  subset:\n  - name: v1\n"),
            "spec.subset",
            6,
            "unknown field `subset`: did you mean `subsets`?",
        ),
    ]);
}

#[test]
fn destination_rule_traffic_policy_rules() {
    let tp = |lines: &str| dr(&format!("  host: reviews\n  trafficPolicy:\n{lines}"));
    run(vec![
        err(
            "empty traffic policy",
            dr("  host: reviews\n  trafficPolicy: {}\n"),
            "spec.trafficPolicy",
            6,
            "`trafficPolicy` is empty",
        ),
        err(
            "tunnel and proxy protocol",
            tp(
                "    tunnel: {targetHost: a.example.com, targetPort: 443}\n    proxyProtocol: {version: V1}\n",
            ),
            "spec.trafficPolicy",
            6,
            "`tunnel` and `proxyProtocol` cannot both be set",
        ),
        err(
            "simple and consistent hash",
            tp(
                "    loadBalancer:\n      simple: ROUND_ROBIN\n      consistentHash: {useSourceIp: true}\n",
            ),
            "spec.trafficPolicy.loadBalancer",
            7,
            "only one of `simple`, `consistentHash` may be set",
        ),
        err(
            "simple typo",
            tp("    loadBalancer:\n      simple: ROUND_ROBBIN\n"),
            "spec.trafficPolicy.loadBalancer.simple",
            8,
            "`ROUND_ROBBIN` is not a valid value: did you mean `ROUND_ROBIN`?",
        ),
        err(
            "field typo",
            tp("    loadBalancer:\n      simpel: ROUND_ROBIN\n"),
            "spec.trafficPolicy.loadBalancer.simpel",
            8,
            "unknown field `simpel`: did you mean `simple`?",
        ),
        warn(
            "least conn deprecated",
            tp("    loadBalancer:\n      simple: LEAST_CONN\n"),
            "spec.trafficPolicy.loadBalancer.simple",
            8,
            "`LEAST_CONN` is deprecated: use `LEAST_REQUEST`",
        ),
        err(
            "two hash keys",
            tp(
                "    loadBalancer:\n      consistentHash:\n        httpHeaderName: x-user\n        useSourceIp: true\n",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash",
            8,
            "found `httpHeaderName` and `useSourceIp`",
        ),
        err(
            "no hash key",
            tp(
                "    loadBalancer:\n      consistentHash:\n        ringHash: {minimumRingSize: 1024}\n",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash",
            8,
            "exactly one of `httpHeaderName`, `httpCookie`, `useSourceIp`, `httpQueryParameterName` must be set; none is",
        ),
        err(
            "ring hash and maglev",
            tp(
                "    loadBalancer:\n      consistentHash:\n        useSourceIp: true\n        ringHash: {}\n        maglev: {tableSize: 65537}\n",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash",
            8,
            "only one of `ringHash`, `maglev` may be set",
        ),
        err(
            "maglev table not prime",
            tp(
                "    loadBalancer:\n      consistentHash:\n        useSourceIp: true\n        maglev:\n          tableSize: 65536\n",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
            11,
            "tableSize 65536 is not a prime number",
        ),
        err(
            "maglev table missing",
            tp(
                "    loadBalancer:\n      consistentHash:\n        useSourceIp: true\n        maglev: {}\n",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
            10,
            "`tableSize` is required for maglev",
        ),
        err(
            "minimumRingSize with ringHash",
            tp(
                "    loadBalancer:\n      consistentHash:\n        useSourceIp: true\n        minimumRingSize: 1024\n        ringHash: {minimumRingSize: 1024}\n",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
            10,
            "`minimumRingSize` cannot be combined with `ringHash` or `maglev`",
        ),
        warn(
            "minimumRingSize deprecated",
            tp(
                "    loadBalancer:\n      consistentHash:\n        useSourceIp: true\n        minimumRingSize: 1024\n",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize",
            10,
            "`minimumRingSize` is deprecated",
        ),
        err(
            "cookie without name",
            tp(
                "    loadBalancer:\n      consistentHash:\n        httpCookie:\n          ttl: 10s\n",
            ),
            "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name",
            9,
            "`name` is required: the cookie to hash on",
        ),
        err(
            "hash header name",
            tp("    loadBalancer:\n      consistentHash:\n        httpHeaderName: \"x user\"\n"),
            "spec.trafficPolicy.loadBalancer.consistentHash.httpHeaderName",
            9,
            "`x user` is not a valid header name",
        ),
        err(
            "warmup without duration",
            tp("    loadBalancer:\n      warmup:\n        aggression: 2\n"),
            "spec.trafficPolicy.loadBalancer.warmup.duration",
            8,
            "`duration` is required",
        ),
        err(
            "warmup aggression",
            tp(
                "    loadBalancer:\n      warmup:\n        duration: 30s\n        aggression: 0.5\n",
            ),
            "spec.trafficPolicy.loadBalancer.warmup.aggression",
            10,
            "aggression 0.5 is too small",
        ),
        err(
            "warmup minimum percent",
            tp(
                "    loadBalancer:\n      warmup:\n        duration: 30s\n        minimumPercent: 150\n",
            ),
            "spec.trafficPolicy.loadBalancer.warmup.minimumPercent",
            10,
            "percentage 150 is out of range",
        ),
        warn(
            "warmupDurationSecs deprecated",
            tp("    loadBalancer:\n      warmupDurationSecs: 30s\n"),
            "spec.trafficPolicy.loadBalancer.warmupDurationSecs",
            8,
            "`warmupDurationSecs` is deprecated",
        ),
        err(
            "distribute and failover",
            tp(
                "    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - from: us-east/*\n          to: {\"us-east/*\": 100}\n        failover:\n        - {from: us-east, to: us-west}\n    outlierDetection: {consecutive5xxErrors: 5}\n",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting",
            8,
            "`distribute` and `failover` cannot both be set",
        ),
        err(
            "distribute weights",
            tp(
                "    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - from: us-east/*\n          to:\n            \"us-east/*\": 60\n            \"us-west/*\": 30\n",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to",
            11,
            "locality weights add up to 90: they must add up to 100",
        ),
        err(
            "distribute weight range",
            tp(
                "    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - from: us-east/*\n          to:\n            \"us-east/*\": 0\n            \"us-west/*\": 100\n",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to[\"us-east/*\"]",
            12,
            "locality weight 0 is out of range",
        ),
        err(
            "distribute locality wildcard",
            tp(
                "    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - from: us-*/zone\n          to: {\"us-east/*\": 100}\n",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].from",
            10,
            "locality `us-*/zone` may have only one `*`, at the end",
        ),
        err(
            "failover same region",
            tp(
                "    loadBalancer:\n      localityLbSetting:\n        failover:\n        - from: us-east\n          to: us-east\n    outlierDetection: {consecutive5xxErrors: 5}\n",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]",
            10,
            "the two regions must differ",
        ),
        err(
            "failover with topology priority",
            tp(
                "    loadBalancer:\n      localityLbSetting:\n        failover:\n        - {from: us-east, to: us-west}\n        failoverPriority:\n        - topology.kubernetes.io/region\n    outlierDetection: {consecutive5xxErrors: 5}\n",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[0]",
            12,
            "cannot be in `failoverPriority` when `failover` is set",
        ),
        warn(
            "failover without outlier detection",
            tp(
                "    loadBalancer:\n      localityLbSetting:\n        failover:\n        - {from: us-east, to: us-west}\n",
            ),
            "spec.trafficPolicy.loadBalancer.localityLbSetting",
            8,
            "locality failover needs `outlierDetection`",
        ),
        err(
            "empty connection pool",
            tp("    connectionPool: {}\n"),
            "spec.trafficPolicy.connectionPool",
            7,
            "`connectionPool` is empty",
        ),
        err(
            "negative pending requests",
            tp("    connectionPool:\n      http:\n        http1MaxPendingRequests: -1\n"),
            "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests",
            9,
            "http1MaxPendingRequests -1 is negative",
        ),
        err(
            "negative concurrent streams",
            tp("    connectionPool:\n      http:\n        maxConcurrentStreams: -10\n"),
            "spec.trafficPolicy.connectionPool.http.maxConcurrentStreams",
            9,
            "maxConcurrentStreams -10 is negative",
        ),
        err(
            "connect timeout zero",
            tp("    connectionPool:\n      tcp:\n        connectTimeout: 0s\n"),
            "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
            9,
            "too short",
        ),
        err(
            "keepalive interval",
            tp(
                "    connectionPool:\n      tcp:\n        tcpKeepalive:\n          interval: 500us\n",
            ),
            "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.interval",
            10,
            "sub-millisecond precision",
        ),
        err(
            "upgrade and client protocol",
            tp(
                "    connectionPool:\n      http:\n        h2UpgradePolicy: UPGRADE\n        useClientProtocol: true\n",
            ),
            "spec.trafficPolicy.connectionPool.http.useClientProtocol",
            10,
            "conflicts with `h2UpgradePolicy: UPGRADE`",
        ),
        err(
            "outlier max ejection",
            tp("    outlierDetection:\n      maxEjectionPercent: 150\n"),
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
            8,
            "percentage 150 is out of range",
        ),
        err(
            "outlier interval",
            tp("    outlierDetection:\n      interval: 0s\n"),
            "spec.trafficPolicy.outlierDetection.interval",
            8,
            "too short",
        ),
        err(
            "local origin failures without split",
            tp("    outlierDetection:\n      consecutiveLocalOriginFailures: 5\n"),
            "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures",
            8,
            "only counts when `splitExternalLocalOriginErrors` is true",
        ),
        warn(
            "consecutive errors deprecated",
            tp("    outlierDetection:\n      consecutiveErrors: 5\n"),
            "spec.trafficPolicy.outlierDetection.consecutiveErrors",
            8,
            "`consecutiveErrors` is deprecated",
        ),
        err(
            "negative 5xx errors",
            tp("    outlierDetection:\n      consecutive5xxErrors: -1\n"),
            "spec.trafficPolicy.outlierDetection.consecutive5xxErrors",
            8,
            "-1 is out of range: expected a whole number, 0 or more",
        ),
        err(
            "retry budget percent",
            tp("    retryBudget:\n      percent: 120\n"),
            "spec.trafficPolicy.retryBudget.percent",
            8,
            "percentage 120 is out of range",
        ),
    ]);
}

#[test]
fn destination_rule_tls_port_tunnel_rules() {
    let tp = |lines: &str| dr(&format!("  host: reviews\n  trafficPolicy:\n{lines}"));
    run(vec![
        err(
            "mutual without certificate",
            tp("    tls:\n      mode: MUTUAL\n      privateKey: /etc/key.pem\n"),
            "spec.trafficPolicy.tls.clientCertificate",
            7,
            "MUTUAL TLS needs a client certificate",
        ),
        err(
            "mutual without key",
            tp("    tls:\n      mode: MUTUAL\n      clientCertificate: /etc/cert.pem\n"),
            "spec.trafficPolicy.tls.privateKey",
            7,
            "MUTUAL TLS needs a private key",
        ),
        err(
            "credential name with files",
            tp(
                "    tls:\n      mode: SIMPLE\n      credentialName: reviews-ca\n      caCertificates: /etc/ca.pem\n",
            ),
            "spec.trafficPolicy.tls.caCertificates",
            10,
            "`caCertificates` cannot be set together with `credentialName`",
        ),
        err(
            "insecure skip verify with ca",
            tp(
                "    tls:\n      mode: SIMPLE\n      insecureSkipVerify: true\n      caCertificates: /etc/ca.pem\n",
            ),
            "spec.trafficPolicy.tls.insecureSkipVerify",
            9,
            "`insecureSkipVerify: true` skips server verification",
        ),
        err(
            "configmap credential in other namespace",
            tp("    tls:\n      mode: SIMPLE\n      credentialName: configmap://other/ca\n"),
            "spec.trafficPolicy.tls.credentialName",
            9,
            "must be in this rule's namespace `default`, not `other`",
        ),
        err(
            "tls mode typo",
            tp("    tls:\n      mode: MUTAL\n"),
            "spec.trafficPolicy.tls.mode",
            8,
            "`MUTAL` is not a valid value: did you mean `MUTUAL`?",
        ),
        warn(
            "istio mutual with files",
            tp("    tls:\n      mode: ISTIO_MUTUAL\n      clientCertificate: /etc/cert.pem\n"),
            "spec.trafficPolicy.tls.clientCertificate",
            9,
            "`clientCertificate` is ignored with ISTIO_MUTUAL",
        ),
        err(
            "port settings without port",
            tp("    portLevelSettings:\n    - loadBalancer: {simple: RANDOM}\n"),
            "spec.trafficPolicy.portLevelSettings[0].port",
            8,
            "`port` is required",
        ),
        err(
            "port settings without settings",
            tp("    portLevelSettings:\n    - port: {number: 80}\n"),
            "spec.trafficPolicy.portLevelSettings[0]",
            8,
            "port-level settings need at least one of",
        ),
        err(
            "port settings port range",
            tp(
                "    portLevelSettings:\n    - port: {number: 0}\n      loadBalancer: {simple: RANDOM}\n",
            ),
            "spec.trafficPolicy.portLevelSettings[0].port.number",
            8,
            "port 0 is out of range",
        ),
        err(
            "duplicate port settings",
            tp(
                "    portLevelSettings:\n    - port: {number: 80}\n      loadBalancer: {simple: RANDOM}\n    - port:\n        number: 80\n      tls: {mode: ISTIO_MUTUAL}\n",
            ),
            "spec.trafficPolicy.portLevelSettings[1].port.number",
            11,
            "port 80 already has settings at portLevelSettings[0]",
        ),
        err(
            "port settings tls",
            tp(
                "    portLevelSettings:\n    - port: {number: 443}\n      tls:\n        mode: MUTUAL\n        credentialName: cred\n        privateKey: /k.pem\n",
            ),
            "spec.trafficPolicy.portLevelSettings[0].tls.privateKey",
            12,
            "`privateKey` cannot be set together with `credentialName`",
        ),
        err(
            "tunnel protocol",
            tp(
                "    tunnel:\n      protocol: GET\n      targetHost: a.example.com\n      targetPort: 443\n",
            ),
            "spec.trafficPolicy.tunnel.protocol",
            8,
            "tunnel protocol `GET` is invalid",
        ),
        err(
            "tunnel without target host",
            tp("    tunnel:\n      targetPort: 443\n"),
            "spec.trafficPolicy.tunnel.targetHost",
            7,
            "`targetHost` is required",
        ),
        err(
            "tunnel target host invalid",
            tp("    tunnel:\n      targetHost: \"*.example.com\"\n      targetPort: 443\n"),
            "spec.trafficPolicy.tunnel.targetHost",
            8,
            "tunnel target host `*.example.com` is not a valid host name or IP address",
        ),
        err(
            "tunnel target port",
            tp("    tunnel:\n      targetHost: a.example.com\n"),
            "spec.trafficPolicy.tunnel.targetPort",
            7,
            "port 0 is out of range",
        ),
        err(
            "proxy protocol version",
            tp("    proxyProtocol:\n      version: V3\n"),
            "spec.trafficPolicy.proxyProtocol.version",
            8,
            "`V3` is not a valid value",
        ),
    ]);
}

#[test]
fn old_api_versions_are_read() {
    for version in ["v1alpha3", "v1beta1", "v1"] {
        let text = REVIEWS_50_V3.replace(
            "networking.istio.io/v1\n",
            &format!("networking.istio.io/{version}\n"),
        );
        assert_clean(version, &text, 1);
        let text = DESTINATION_RULE_ALL_MTLS.replace(
            "networking.istio.io/v1\n",
            &format!("networking.istio.io/{version}\n"),
        );
        assert_clean(version, &text, 1);
    }
}

#[test]
fn istio_accepts_these_edge_cases() {
    // IP hosts, JWT-claim routing and Istio's auto-generated SNI names on gateways.
    assert_clean(
        "gateway-bound edge cases",
        &vs(r#"
  hosts:
  - 192.168.10.4
  - "outbound_.443_._.ratings.default.svc.cluster.local"
  gateways: [istio-system/ingress]
  http:
  - match:
    - headers:
        "@request.auth.claims.groups":
          exact: admin
    route:
    - destination: {host: ratings}
  tls:
  - match:
    - sniHosts: ["outbound_.443_._.ratings.default.svc.cluster.local"]
    route:
    - destination: {host: ratings.default.svc.cluster.local, port: {number: 443}}
"#),
        1,
    );
    // Presence matches, an empty uri prefix, a single unweighted destination, `~` export,
    // a short host, and `0` ports read as "not set".
    assert_clean(
        "mesh edge cases",
        &vs(r#"
  hosts: [reviews, reviews.default.svc.cluster.local.]
  http:
  - match:
    - uri: {prefix: ""}
      headers: {x-present: {}}
      queryParams: {debug: {}}
      withoutHeaders: {x-absent: {}}
      port: 0
    route:
    - destination: {host: reviews}
      weight: 0
  exportTo: ["~"]
"#),
        1,
    );
    // Redirects without a route, only a port; retries off with no other retry setting.
    assert_clean(
        "redirect edge cases",
        &vs(r#"
  hosts: [web.example.com]
  http:
  - match:
    - scheme: {exact: http}
    redirect: {scheme: https, port: 443}
  - retries: {attempts: 0}
    route:
    - destination: {host: web}
"#),
        1,
    );
    // A DestinationRule with only subsets, subset names Istio allows, and an IP tunnel target.
    assert_clean(
        "destination rule edge cases",
        &dr(r#"
  host: reviews.default.svc.cluster.local
  subsets:
  - name: V1
  - name: canary-2
    labels: {app.kubernetes.io/version: "2.0"}
"#),
        1,
    );
}
