//! Gateway API kinds and the Kubernetes objects the mesh reads: realistic documents that
//! must load without errors, and one invalid document per rule, each checked for the
//! field path, the line and the message.
//!
//! In the invalid documents the line the finding must point at is marked `# <-`.

use weft_model::{Diagnostic, LoadOutcome, Severity, load_str};

fn load(yaml: &str) -> LoadOutcome {
    load_str("test.yaml", yaml)
}

fn errors(out: &LoadOutcome) -> Vec<&Diagnostic> {
    out.diagnostics.iter().filter(|d| d.is_error()).collect()
}

/// Loads `yaml` and requires no errors and `resources` resources.
#[track_caller]
fn assert_valid(yaml: &str, resources: usize) -> LoadOutcome {
    let out = load(yaml);
    let errs = errors(&out);
    assert!(errs.is_empty(), "unexpected errors:\n{}", show(&out));
    assert_eq!(
        out.resources.len(),
        resources,
        "resources loaded:\n{}",
        show(&out)
    );
    out
}

fn show(out: &LoadOutcome) -> String {
    out.diagnostics.iter().map(|d| format!("  {d}\n")).collect()
}

/// The 1-based line marked `# <-` in `yaml`.
fn marked_line(yaml: &str) -> usize {
    let lines: Vec<usize> = yaml
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("# <-"))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "mark exactly one line with `# <-`:\n{yaml}");
    lines[0]
}

/// Requires a finding of `severity` at `field`, on the marked line, whose message
/// contains `fragment`.
#[track_caller]
fn assert_finding(yaml: &str, severity: Severity, field: &str, fragment: &str) {
    let out = load(yaml);
    let line = marked_line(yaml);
    let found = out.diagnostics.iter().any(|d| {
        d.severity == severity
            && d.field.as_deref() == Some(field)
            && d.line == Some(line)
            && d.message.contains(fragment)
    });
    assert!(
        found,
        "expected {severity} at {field} (line {line}) containing {fragment:?}; got:\n{}",
        show(&out)
    );
    if severity == Severity::Error {
        assert!(
            out.resources.is_empty(),
            "a document with errors must be rejected"
        );
    }
}

#[track_caller]
fn assert_error(yaml: &str, field: &str, fragment: &str) {
    assert_finding(yaml, Severity::Error, field, fragment);
}

// ---------------------------------------------------------------------------------------
// Valid Gateway API documents
// ---------------------------------------------------------------------------------------

/// Istio's `samples/bookinfo/gateway-api/bookinfo-gateway.yaml`.
const BOOKINFO_GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
spec:
  gatewayClassName: istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Same
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bookinfo
spec:
  parentRefs:
  - name: bookinfo-gateway
  rules:
  - matches:
    - path:
        type: Exact
        value: /productpage
    - path:
        type: PathPrefix
        value: /static
    - path:
        type: Exact
        value: /login
    - path:
        type: Exact
        value: /logout
    - path:
        type: PathPrefix
        value: /api/v1/products
    backendRefs:
    - name: productpage
      port: 9080
"#;

#[test]
fn bookinfo_gateway_and_route() {
    let out = assert_valid(BOOKINFO_GATEWAY, 2);
    assert!(out.diagnostics.is_empty(), "{}", show(&out));
    let weft_model::Spec::HttpRoute(route) = &out.resources[1].spec else {
        panic!("not an HTTPRoute")
    };
    assert_eq!(route.rules[0].matches.len(), 5);
    assert_eq!(route.rules[0].backend_refs[0].port, Some(9080));
}

#[test]
fn reviews_weighted_mesh_route() {
    // Istio's `route-reviews-90-10.yaml` for the Gateway API (a mesh route on the Service).
    assert_valid(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: reviews
    port: 9080
  rules:
  - backendRefs:
    - name: reviews-v1
      port: 9080
      weight: 90
    - name: reviews-v2
      port: 9080
      weight: 10
"#,
        1,
    );
}

#[test]
fn gateway_class_https_gateway_and_reference_grant() {
    let out = assert_valid(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: istio
spec:
  controllerName: istio.io/gateway-controller
  description: The default Istio GatewayClass
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gateway
  namespace: istio-ingress
spec:
  gatewayClassName: istio
  addresses:
  - type: IPAddress
    value: 192.0.2.10
  infrastructure:
    labels:
      team: platform
    annotations:
      networking.example.com/lb-type: internal
  listeners:
  - name: http
    hostname: "*.example.com"
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: All
  - name: https
    hostname: bookinfo.example.com
    port: 443
    protocol: HTTPS
    tls:
      mode: Terminate
      certificateRefs:
      - name: bookinfo-credential
        namespace: default
    allowedRoutes:
      namespaces:
        from: Selector
        selector:
          matchLabels:
            shared-gateway-access: "true"
      kinds:
      - kind: HTTPRoute
  - name: tls-passthrough
    hostname: nginx.example.com
    port: 443
    protocol: TLS
    tls:
      mode: Passthrough
  - name: tcp
    port: 31400
    protocol: TCP
  tls:
    frontend:
      default:
        validation:
          caCertificateRefs:
          - group: ""
            kind: ConfigMap
            name: client-ca
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata:
  name: allow-istio-ingress-secrets
  namespace: default
spec:
  from:
  - group: gateway.networking.k8s.io
    kind: Gateway
    namespace: istio-ingress
  to:
  - group: ""
    kind: Secret
    name: bookinfo-credential
"#,
        3,
    );
    assert!(out.diagnostics.is_empty(), "{}", show(&out));
}

#[test]
fn http_route_with_filters_timeouts_and_retries() {
    assert_valid(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bookinfo-edge
spec:
  parentRefs:
  - name: gateway
    namespace: istio-ingress
    sectionName: https
  - name: gateway
    namespace: istio-ingress
    sectionName: http
  hostnames: ["bookinfo.example.com"]
  rules:
  - name: redirect-old
    matches:
    - path:
        type: PathPrefix
        value: /old
    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        hostname: bookinfo.example.com
        statusCode: 301
        path:
          type: ReplacePrefixMatch
          replacePrefixMatch: /new
  - name: api
    matches:
    - path:
        type: PathPrefix
        value: /api
      headers:
      - name: x-version
        value: v2
      - type: RegularExpression
        name: user-agent
        value: ".*Chrome.*"
      queryParams:
      - name: debug
        value: "1"
      method: GET
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set:
        - name: x-forwarded-prefix
          value: /api
        add:
        - name: x-request-source
          value: gateway
        remove: ["x-internal"]
    - type: URLRewrite
      urlRewrite:
        hostname: productpage.default.svc.cluster.local
        path:
          type: ReplacePrefixMatch
          replacePrefixMatch: /
    - type: RequestMirror
      requestMirror:
        backendRef:
          name: productpage-shadow
          port: 9080
        fraction:
          numerator: 5
          denominator: 100
    - type: CORS
      cors:
        allowOrigins: ["https://www.example.com", "https://*.example.org"]
        allowMethods: [GET, POST]
        allowHeaders: [content-type]
        exposeHeaders: [x-request-id]
        allowCredentials: true
        maxAge: 600
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set:
        - name: cache-control
          value: no-store
    backendRefs:
    - name: productpage
      port: 9080
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier:
          add:
          - name: x-backend
            value: productpage
    timeouts:
      request: 10s
      backendRequest: 2s
    retry:
      codes: [500, 502, 503]
      attempts: 3
      backoff: 100ms
  - matches:
    - path:
        type: RegularExpression
        value: "^/reviews/[0-9]+$"
    backendRefs:
    - name: reviews
      port: 9080
"#,
        1,
    );
}

#[test]
fn grpc_route() {
    // The Gateway API documentation's GRPCRoute example.
    assert_valid(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: foo-route
spec:
  parentRefs:
  - name: example-gateway
  hostnames:
  - "foo.example.com"
  rules:
  - matches:
    - method:
        service: com.example.User
        method: Login
    backendRefs:
    - name: foo-svc
      port: 50051
  - matches:
    - headers:
      - type: Exact
        name: magic
        value: foo
      method:
        service: com.Example.Login
        method: Login
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        add:
        - name: my-header
          value: foo
    backendRefs:
    - name: foo-svc-v2
      port: 50051
      weight: 20
  - matches:
    - method:
        type: RegularExpression
        service: "grpc\\.health\\..*"
    backendRefs:
    - name: health
      port: 50051
"#,
        1,
    );
}

#[test]
fn tcp_and_tls_routes() {
    assert_valid(
        r#"
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata:
  name: tcp-echo
spec:
  parentRefs:
  - name: tcp-echo-gateway
    sectionName: tcp-31400
  rules:
  - backendRefs:
    - name: tcp-echo
      port: 9000
      weight: 80
    - name: tcp-echo-v2
      port: 9000
      weight: 20
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata:
  name: nginx
  namespace: default
spec:
  parentRefs:
  - name: gateway
    namespace: istio-ingress
    sectionName: tls-passthrough
  hostnames: ["nginx.example.com"]
  rules:
  - backendRefs:
    - name: my-nginx
      port: 443
"#,
        2,
    );
}

#[test]
fn durations_are_gep_2257() {
    let route = |t: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec:\n  rules:\n  - timeouts:\n      request: {t}\n    backendRefs:\n    - {{name: a, port: 80}}\n"
        )
    };
    let out = assert_valid(&route("1h30m"), 1);
    let weft_model::Spec::HttpRoute(r) = &out.resources[0].spec else {
        panic!()
    };
    let req = r.rules[0].timeouts.as_ref().unwrap().request.unwrap();
    assert_eq!(req.as_std().as_secs(), 5400);
    assert_valid(&route("0s"), 1);
    assert_valid(&route("500ms"), 1);
}

// ---------------------------------------------------------------------------------------
// Invalid Gateway API documents: one rule each
// ---------------------------------------------------------------------------------------

const GW_HEAD: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n  gatewayClassName: istio\n  listeners:\n";

fn gw(listeners: &str) -> String {
    format!("{GW_HEAD}{listeners}")
}

#[test]
fn gateway_listener_names_unique() {
    let y = gw(
        "  - name: http\n    port: 80\n    protocol: HTTP\n  - name: http # <-\n    port: 8080\n    protocol: HTTP\n",
    );
    assert_error(
        &y,
        "spec.listeners[1].name",
        "listener name `http` is repeated (first at listeners[0])",
    );
}

#[test]
fn gateway_listener_port_range() {
    let y = gw("  - name: http\n    port: 70000 # <-\n    protocol: HTTP\n");
    assert_error(&y, "spec.listeners[0].port", "port 70000 is out of range");
    let y = gw("  - name: http # <-\n    protocol: HTTP\n");
    assert_error(&y, "spec.listeners[0].port", "`port` is required");
}

#[test]
fn gateway_listener_protocol_values() {
    let y = gw("  - name: h2\n    port: 80\n    protocol: HTTP2 # <-\n");
    assert_error(
        &y,
        "spec.listeners[0].protocol",
        "protocol `HTTP2` is not a Gateway API protocol",
    );
    let y = gw("  - name: h\n    port: 80\n    protocol: HTPP # <-\n");
    assert_error(&y, "spec.listeners[0].protocol", "did you mean `HTTP`?");
    let y = gw("  - name: h\n    port: 80\n    protocol: example.com # <-\n");
    assert_error(
        &y,
        "spec.listeners[0].protocol",
        "not a Gateway API protocol",
    );
    // Core protocols are case-insensitive; domain-prefixed ones are accepted with a warning.
    assert_valid(&gw("  - name: h\n    port: 80\n    protocol: http\n"), 1);
    let y = gw("  - name: h\n    port: 80\n    protocol: example.com/quic # <-\n");
    assert_finding(
        &y,
        Severity::Warning,
        "spec.listeners[0].protocol",
        "implementation-specific",
    );
}

#[test]
fn gateway_listener_hostname_format() {
    let y = gw(
        "  - name: http\n    hostname: foo.*.example.com # <-\n    port: 80\n    protocol: HTTP\n",
    );
    assert_error(
        &y,
        "spec.listeners[0].hostname",
        "wildcard in the wrong place",
    );
    let y = gw("  - name: http\n    hostname: 10.0.0.1 # <-\n    port: 80\n    protocol: HTTP\n");
    assert_error(&y, "spec.listeners[0].hostname", "is an IP address");
    let y = gw(
        "  - name: http\n    hostname: Bookinfo.example.com # <-\n    port: 80\n    protocol: HTTP\n",
    );
    assert_error(&y, "spec.listeners[0].hostname", "must be lower case");
}

#[test]
fn gateway_https_needs_tls_with_certificates() {
    let y = gw("  - name: https # <-\n    port: 443\n    protocol: HTTPS\n");
    assert_error(
        &y,
        "spec.listeners[0].tls",
        "`tls` is required for protocol HTTPS",
    );
    let y = gw(
        "  - name: https\n    port: 443\n    protocol: HTTPS\n    tls: # <-\n      mode: Terminate\n",
    );
    assert_error(
        &y,
        "spec.listeners[0].tls.certificateRefs",
        "must name at least one certificate",
    );
    let y = gw(
        "  - name: https\n    port: 443\n    protocol: HTTPS\n    tls:\n      mode: Passthrough # <-\n      certificateRefs: [{name: cert}]\n",
    );
    assert_error(
        &y,
        "spec.listeners[0].tls.mode",
        "tls mode must be Terminate for protocol HTTPS",
    );
}

#[test]
fn gateway_tls_needs_tls_mode() {
    let y = gw("  - name: tls # <-\n    port: 443\n    protocol: TLS\n");
    assert_error(
        &y,
        "spec.listeners[0].tls",
        "`tls` is required for protocol TLS",
    );
    let y = gw(
        "  - name: tls\n    port: 443\n    protocol: TLS\n    tls: # <-\n      certificateRefs: [{name: cert}]\n",
    );
    assert_error(
        &y,
        "spec.listeners[0].tls.mode",
        "`mode` is required for protocol TLS",
    );
}

#[test]
fn gateway_tls_forbidden_for_http_tcp_udp() {
    let y = gw(
        "  - name: http\n    port: 80\n    protocol: HTTP\n    tls: # <-\n      mode: Terminate\n",
    );
    assert_error(
        &y,
        "spec.listeners[0].tls",
        "`tls` must not be set for protocol HTTP",
    );
}

#[test]
fn gateway_hostname_forbidden_for_tcp() {
    let y =
        gw("  - name: tcp\n    hostname: db.example.com # <-\n    port: 5432\n    protocol: TCP\n");
    assert_error(
        &y,
        "spec.listeners[0].hostname",
        "must not be set for protocol TCP",
    );
}

#[test]
fn gateway_port_protocol_hostname_unique() {
    let y = gw(
        "  - name: a\n    port: 80\n    protocol: HTTP\n  - name: b # <-\n    port: 80\n    protocol: HTTP\n",
    );
    assert_error(
        &y,
        "spec.listeners[1]",
        "the combination of port, protocol and hostname must be unique",
    );
}

#[test]
fn gateway_class_name_and_listeners_required() {
    let y = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec: # <-\n  listeners:\n  - {name: http, port: 80, protocol: HTTP}\n";
    assert_error(y, "spec.gatewayClassName", "`gatewayClassName` is required");
    let y = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec: # <-\n  gatewayClassName: istio\n";
    assert_error(y, "spec.listeners", "a Gateway needs at least one listener");
}

#[test]
fn gateway_addresses() {
    let y = format!(
        "{GW_HEAD}  - {{name: http, port: 80, protocol: HTTP}}\n  addresses:\n  - type: IPAddress\n    value: 300.1.1.1 # <-\n"
    );
    assert_error(
        &y,
        "spec.addresses[0].value",
        "`300.1.1.1` is not a valid IP address",
    );
    let y = format!(
        "{GW_HEAD}  - {{name: http, port: 80, protocol: HTTP}}\n  addresses:\n  - value: 192.0.2.1\n  - value: 192.0.2.1 # <-\n"
    );
    assert_error(&y, "spec.addresses[1].value", "values must be unique");
}

#[test]
fn gateway_allowed_routes_selector_required() {
    let y = gw(
        "  - name: http\n    port: 80\n    protocol: HTTP\n    allowedRoutes:\n      namespaces: # <-\n        from: Selector\n",
    );
    assert_error(
        &y,
        "spec.listeners[0].allowedRoutes.namespaces.selector",
        "`selector` is required when `from` is Selector",
    );
}

#[test]
fn gateway_typo_field() {
    let y = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n  gatewayClassName: istio\n  listners: # <-\n  - {name: http, port: 80, protocol: HTTP}\n";
    assert_error(y, "spec.listners", "did you mean `listeners`?");
    let y = gw("  - name: http\n    port: 80\n    protocol: HTTP\n    allowedRoute: {} # <-\n");
    assert_error(
        &y,
        "spec.listeners[0].allowedRoute",
        "did you mean `allowedRoutes`?",
    );
}

#[test]
fn gateway_legacy_backend_tls_warns() {
    let y = format!(
        "{GW_HEAD}  - {{name: http, port: 80, protocol: HTTP}}\n  backendTLS: # <-\n    clientCertificateRef:\n      name: client-cert\n"
    );
    assert_finding(
        &y,
        Severity::Warning,
        "spec.backendTLS",
        "replaced by `tls.backend`",
    );
    assert_eq!(load(&y).resources.len(), 1);
}

#[test]
fn gateway_class_controller_name() {
    let y = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata:\n  name: istio\nspec:\n  controllerName: istio # <-\n";
    assert_error(y, "spec.controllerName", "must be a domain-prefixed path");
    let y = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata:\n  name: istio\nspec:\n  controlerName: istio.io/gateway-controller # <-\n";
    assert_error(y, "spec.controlerName", "did you mean `controllerName`?");
}

const ROUTE_HEAD: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\nspec:\n  parentRefs:\n  - name: gw\n  rules:\n";

fn route(rules: &str) -> String {
    format!("{ROUTE_HEAD}{rules}")
}

#[test]
fn route_path_values() {
    let y = route(
        "  - matches:\n    - path:\n        type: Exact\n        value: productpage # <-\n    backendRefs: [{name: p, port: 9080}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].matches[0].path.value",
        "path `productpage` must start with '/' (match type Exact)",
    );
    let y = route(
        "  - matches:\n    - path:\n        value: /a//b # <-\n    backendRefs: [{name: p, port: 9080}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].matches[0].path.value",
        "must not contain `//`",
    );
    let y = route(
        "  - matches:\n    - path:\n        type: RegularExpression\n        value: /api/(v1 # <-\n    backendRefs: [{name: p, port: 9080}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].matches[0].path.value",
        "is not a valid RE2 regular expression",
    );
}

#[test]
fn route_path_type_enum() {
    let y = route(
        "  - matches:\n    - path:\n        type: Prefix # <-\n        value: /\n    backendRefs: [{name: p, port: 9080}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].matches[0].path.type",
        "`Prefix` is not a valid value",
    );
}

#[test]
fn route_header_names() {
    let y = route(
        "  - matches:\n    - headers:\n      - name: x version # <-\n        value: v2\n    backendRefs: [{name: p, port: 9080}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].matches[0].headers[0].name",
        "header name `x version` contains ` `",
    );
    let y = route(
        "  - matches:\n    - headers:\n      - name: X-Version\n        value: v2\n      - name: x-version # <-\n        value: v3\n    backendRefs: [{name: p, port: 9080}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].matches[0].headers[1].name",
        "header `x-version` is repeated",
    );
}

#[test]
fn route_method_enum() {
    let y =
        route("  - matches:\n    - method: get # <-\n    backendRefs: [{name: p, port: 9080}]\n");
    assert_error(&y, "spec.rules[0].matches[0].method", "did you mean `GET`?");
}

#[test]
fn route_rules_at_most_16() {
    let mut y = ROUTE_HEAD.to_string();
    y = y.replace("  rules:\n", "  rules: # <-\n");
    for i in 0..17 {
        y.push_str(&format!("  - backendRefs: [{{name: b{i}, port: 80}}]\n"));
    }
    assert_error(
        &y,
        "spec.rules",
        "`rules` has 17 entries; at most 16 are allowed",
    );
}

#[test]
fn route_matches_at_most_64() {
    let mut y = route("  - backendRefs: [{name: p, port: 80}]\n    matches: # <-\n");
    for i in 0..65 {
        y.push_str(&format!("    - path: {{value: /p{i}}}\n"));
    }
    assert_error(
        &y,
        "spec.rules[0].matches",
        "`matches` has 65 entries; at most 64 are allowed",
    );
}

#[test]
fn route_weights() {
    let y = route(
        "  - backendRefs:\n    - name: reviews-v1\n      port: 9080\n      weight: -5 # <-\n",
    );
    assert_error(
        &y,
        "spec.rules[0].backendRefs[0].weight",
        "weight -5 is negative",
    );
    let y = route(
        "  - backendRefs:\n    - name: reviews-v1\n      port: 9080\n      weight: 1000001 # <-\n",
    );
    assert_error(
        &y,
        "spec.rules[0].backendRefs[0].weight",
        "weight 1000001 is too large",
    );
}

#[test]
fn route_service_backend_needs_port() {
    let y = route("  - backendRefs:\n    - name: productpage # <-\n");
    assert_error(
        &y,
        "spec.rules[0].backendRefs[0].port",
        "`port` is required for a Service backend",
    );
    // Not a Service: no port needed.
    assert_valid(
        &route(
            "  - backendRefs:\n    - group: multicluster.x-k8s.io\n      kind: ServiceImport\n      name: productpage\n",
        ),
        1,
    );
}

#[test]
fn route_filter_type_matches_field() {
    let y = route(
        "  - filters:\n    - type: RequestHeaderModifier\n      requestRedirect: # <-\n        scheme: https\n      requestHeaderModifier:\n        remove: [x-a]\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].requestRedirect",
        "`requestRedirect` must not be set when the filter type is RequestHeaderModifier",
    );
    let y = route(
        "  - filters:\n    - type: RequestHeaderModifier # <-\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].requestHeaderModifier",
        "`requestHeaderModifier` is required when the filter type is RequestHeaderModifier",
    );
    let y = route(
        "  - filters:\n    - requestHeaderModifier: # <-\n        remove: [x-a]\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].type",
        "`type` is required: set it to RequestHeaderModifier",
    );
}

#[test]
fn route_redirect_and_rewrite_not_both() {
    let y = route(
        "  - filters:\n    - type: RequestRedirect # <-\n      requestRedirect: {scheme: https}\n    - type: URLRewrite\n      urlRewrite: {hostname: example.com}\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0]",
        "RequestRedirect and URLRewrite filters cannot be used together",
    );
}

#[test]
fn route_filters_not_repeated() {
    let y = route(
        "  - filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier: {remove: [a]}\n    - type: RequestHeaderModifier # <-\n      requestHeaderModifier: {remove: [b]}\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[1].type",
        "already used at filters[0]",
    );
}

#[test]
fn route_redirect_status_code() {
    let y = route(
        "  - filters:\n    - type: RequestRedirect\n      requestRedirect:\n        scheme: https\n        statusCode: 304 # <-\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].requestRedirect.statusCode",
        "status code 304 is not a redirect status",
    );
}

#[test]
fn route_redirect_not_with_backends() {
    let y = route(
        "  - filters:\n    - type: RequestRedirect\n      requestRedirect: # <-\n        scheme: https\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].requestRedirect",
        "cannot be used in a rule with `backendRefs`",
    );
}

#[test]
fn route_replace_prefix_needs_one_prefix_match() {
    let y = route(
        "  - matches:\n    - path: {type: Exact, value: /a}\n    filters:\n    - type: URLRewrite\n      urlRewrite:\n        path:\n          type: ReplacePrefixMatch\n          replacePrefixMatch: /b # <-\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch",
        "exactly one match",
    );
    let y = route(
        "  - filters:\n    - type: URLRewrite\n      urlRewrite:\n        path: # <-\n          type: ReplaceFullPath\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].urlRewrite.path.replaceFullPath",
        "`replaceFullPath` is required",
    );
}

#[test]
fn route_header_modifier_one_action_per_header() {
    let y = route(
        "  - filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n        set:\n        - {name: X-A, value: '1'}\n        remove:\n        - x-a # <-\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].requestHeaderModifier.remove[0]",
        "header `x-a` already has an action at set[0]",
    );
}

#[test]
fn route_mirror_percent_and_fraction() {
    let y = route(
        "  - filters:\n    - type: RequestMirror\n      requestMirror:\n        backendRef: {name: shadow, port: 80}\n        percent: 150 # <-\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].requestMirror.percent",
        "percent 150 is out of range",
    );
    let y = route(
        "  - filters:\n    - type: RequestMirror\n      requestMirror: # <-\n        backendRef: {name: shadow}\n    backendRefs: [{name: p, port: 80}]\n",
    );
    // The mirror's Service backend needs a port too (the path ends at the written backendRef).
    let out = load(&y);
    assert!(
        out.diagnostics.iter().any(|d| d.field.as_deref()
            == Some("spec.rules[0].filters[0].requestMirror.backendRef.port")),
        "{}",
        show(&out)
    );
}

#[test]
fn route_cors() {
    let y = route(
        "  - filters:\n    - type: CORS\n      cors:\n        allowOrigins: ['*', 'https://a.example.com'] # <-\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].cors.allowOrigins",
        "`*` must stand alone",
    );
    let y = route(
        "  - filters:\n    - type: CORS\n      cors:\n        allowOrigins:\n        - www.example.com # <-\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].cors.allowOrigins[0]",
        "origin `www.example.com` is invalid",
    );
}

#[test]
fn route_timeouts() {
    let y = route(
        "  - timeouts:\n      request: 10s\n      backendRequest: 20s # <-\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].timeouts.backendRequest",
        "backendRequest timeout 20s is longer than the request timeout 10s",
    );
    // A zero request timeout disables it, so any backendRequest fits.
    assert_valid(
        &route(
            "  - timeouts: {request: 0s, backendRequest: 20s}\n    backendRefs: [{name: p, port: 80}]\n",
        ),
        1,
    );
    let y =
        route("  - timeouts:\n      request: 1.5s # <-\n    backendRefs: [{name: p, port: 80}]\n");
    assert_error(
        &y,
        "spec.rules[0].timeouts.request",
        "not a Gateway API duration",
    );
}

#[test]
fn route_retry_codes() {
    let y = route(
        "  - retry:\n      codes:\n      - 200 # <-\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].retry.codes[0]",
        "status code 200 cannot be retried",
    );
}

#[test]
fn route_parent_ref_name_required() {
    let y = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\nspec:\n  parentRefs:\n  - sectionName: http # <-\n";
    assert_error(y, "spec.parentRefs[0].name", "`name` is required");
}

#[test]
fn route_parent_refs_to_same_parent_need_section_names() {
    let y = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\nspec:\n  parentRefs:\n  - name: gw\n    sectionName: http\n  - name: gw\n    sectionName: http # <-\n";
    assert_error(
        y,
        "spec.parentRefs[1].sectionName",
        "references to the same parent must be unique",
    );
    let y = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\nspec:\n  parentRefs:\n  - name: gw\n  - name: gw # <-\n    sectionName: http\n";
    assert_error(
        y,
        "spec.parentRefs[1]",
        "each reference must set `sectionName`",
    );
}

#[test]
fn route_hostnames() {
    let y = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\nspec:\n  hostnames:\n  - \"*.*.example.com\" # <-\n";
    assert_error(y, "spec.hostnames[0]", "wildcard in the wrong place");
}

#[test]
fn route_rule_names_unique() {
    let y = route(
        "  - name: a\n    backendRefs: [{name: p, port: 80}]\n  - name: a # <-\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(&y, "spec.rules[1].name", "rule name `a` is repeated");
}

#[test]
fn route_typo_field() {
    let y = route("  - backendRef: # <-\n    - {name: p, port: 80}\n");
    assert_error(
        &y,
        "spec.rules[0].backendRef",
        "did you mean `backendRefs`?",
    );
}

#[test]
fn route_session_persistence_is_deprecated() {
    let y = route(
        "  - sessionPersistence: # <-\n      sessionName: sid\n      type: Cookie\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_finding(
        &y,
        Severity::Warning,
        "spec.rules[0].sessionPersistence",
        "deprecated",
    );
    let y = route(
        "  - sessionPersistence: # <-\n      cookieConfig: {lifetimeType: Permanent}\n    backendRefs: [{name: p, port: 80}]\n",
    );
    assert_error(
        &y,
        "spec.rules[0].sessionPersistence.absoluteTimeout",
        "`absoluteTimeout` is required",
    );
}

const GRPC_HEAD: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata:\n  name: g\nspec:\n  parentRefs:\n  - name: gw\n  rules:\n";

#[test]
fn grpc_method_match() {
    let y = format!(
        "{GRPC_HEAD}  - matches:\n    - method: # <-\n        type: Exact\n    backendRefs: [{{name: s, port: 50051}}]\n"
    );
    assert_error(
        &y,
        "spec.rules[0].matches[0].method",
        "one or both of `service` and `method` must be set",
    );
    let y = format!(
        "{GRPC_HEAD}  - matches:\n    - method:\n        service: helloworld.Greeter/SayHello # <-\n    backendRefs: [{{name: s, port: 50051}}]\n"
    );
    assert_error(
        &y,
        "spec.rules[0].matches[0].method.service",
        "not a gRPC service name",
    );
    let y = format!(
        "{GRPC_HEAD}  - matches:\n    - method:\n        type: RegularExpression\n        method: \"Say(Hello\" # <-\n    backendRefs: [{{name: s, port: 50051}}]\n"
    );
    assert_error(
        &y,
        "spec.rules[0].matches[0].method.method",
        "not a valid RE2 regular expression",
    );
}

#[test]
fn grpc_matches_at_most_8() {
    let mut y =
        format!("{GRPC_HEAD}  - backendRefs: [{{name: s, port: 50051}}]\n    matches: # <-\n");
    for i in 0..9 {
        y.push_str(&format!("    - method: {{service: s{i}}}\n"));
    }
    assert_error(
        &y,
        "spec.rules[0].matches",
        "`matches` has 9 entries; at most 8 are allowed",
    );
}

#[test]
fn grpc_filter_types() {
    let y = format!(
        "{GRPC_HEAD}  - filters:\n    - type: URLRewrite # <-\n    backendRefs: [{{name: s, port: 50051}}]\n"
    );
    assert_error(
        &y,
        "spec.rules[0].filters[0].type",
        "`URLRewrite` is not a valid value",
    );
    let y = format!("{GRPC_HEAD}  - backendRefs:\n    - name: s # <-\n");
    assert_error(
        &y,
        "spec.rules[0].backendRefs[0].port",
        "`port` is required for a Service backend",
    );
}

const GRANT_HEAD: &str = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata:\n  name: g\n  namespace: default\n";

#[test]
fn reference_grant_from_and_to_required() {
    let y = format!("{GRANT_HEAD}spec: # <-\n  to:\n  - group: \"\"\n    kind: Service\n");
    assert_error(&y, "spec.from", "`from` is required");
    let y = format!(
        "{GRANT_HEAD}spec: # <-\n  from:\n  - group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    namespace: web\n"
    );
    assert_error(&y, "spec.to", "`to` is required");
}

#[test]
fn reference_grant_entries() {
    let y = format!(
        "{GRANT_HEAD}spec:\n  from:\n  - group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    namespace: Web # <-\n  to:\n  - group: \"\"\n    kind: Service\n"
    );
    assert_error(&y, "spec.from[0].namespace", "namespace `Web` is invalid");
    let y = format!(
        "{GRANT_HEAD}spec:\n  from:\n  - kind: HTTPRoute # <-\n    namespace: web\n  to:\n  - group: \"\"\n    kind: Service\n"
    );
    assert_error(
        &y,
        "spec.from[0].group",
        "`group` is required (write `\"\"` for the Kubernetes core group)",
    );
    let y = format!(
        "{GRANT_HEAD}spec:\n  from:\n  - group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    namespace: web\n  to:\n  - group: \"\" # <-\n"
    );
    assert_error(&y, "spec.to[0].kind", "`kind` is required");
    let y = format!(
        "{GRANT_HEAD}spec:\n  from:\n  - group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    namespace: web\n  to:\n  - group: \"\"\n    knd: Service # <-\n"
    );
    assert_error(&y, "spec.to[0].knd", "did you mean `kind`?");
}

#[test]
fn tcp_route_rules_and_backends_required() {
    let head = "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata:\n  name: t\nspec: # <-\n  parentRefs:\n  - name: gw\n";
    assert_error(head, "spec.rules", "`rules` is required");
    let y = "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata:\n  name: t\nspec:\n  rules:\n  - name: r # <-\n";
    assert_error(y, "spec.rules[0].backendRefs", "`backendRefs` is required");
    let y = "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata:\n  name: t\nspec:\n  rules:\n  - backendRefs:\n    - name: db\n      port: 5432\n      weight: -1 # <-\n";
    assert_error(
        y,
        "spec.rules[0].backendRefs[0].weight",
        "weight -1 is negative",
    );
}

#[test]
fn tls_route_hostnames_and_ports() {
    let y = "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\nmetadata:\n  name: t\nspec:\n  hostnames:\n  - 192.0.2.1 # <-\n  rules:\n  - backendRefs: [{name: a, port: 443}]\n";
    assert_error(y, "spec.hostnames[0]", "is an IP address");
    let y = "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\nmetadata:\n  name: t\nspec:\n  rules:\n  - backendRefs:\n    - name: a # <-\n";
    assert_error(
        y,
        "spec.rules[0].backendRefs[0].port",
        "`port` is required for a Service backend",
    );
    let y = "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\nmetadata:\n  name: t\nspec:\n  hostname: [a.example.com] # <-\n";
    assert_error(y, "spec.hostname", "did you mean `hostnames`?");
}

// ---------------------------------------------------------------------------------------
// Kubernetes objects
// ---------------------------------------------------------------------------------------

/// Bookinfo's `details` and `reviews-v1` manifests (`samples/bookinfo/platform/kube/bookinfo.yaml`).
const BOOKINFO_KUBE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: details
  labels:
    app: details
    service: details
spec:
  ports:
  - port: 9080
    name: http
  selector:
    app: details
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: bookinfo-details
  labels:
    account: details
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: details-v1
  labels:
    app: details
    version: v1
spec:
  replicas: 1
  selector:
    matchLabels:
      app: details
      version: v1
  template:
    metadata:
      labels:
        app: details
        version: v1
    spec:
      serviceAccountName: bookinfo-details
      containers:
      - name: details
        image: docker.io/istio/examples-bookinfo-details-v1:1.20.3
        imagePullPolicy: IfNotPresent
        ports:
        - containerPort: 9080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-v1
  labels:
    app: reviews
    version: v1
spec:
  replicas: 1
  selector:
    matchLabels:
      app: reviews
      version: v1
  template:
    metadata:
      labels:
        app: reviews
        version: v1
    spec:
      serviceAccountName: bookinfo-reviews
      containers:
      - name: reviews
        image: docker.io/istio/examples-bookinfo-reviews-v1:1.20.3
        imagePullPolicy: IfNotPresent
        env:
        - name: LOG_DIR
          value: "/tmp/logs"
        ports:
        - containerPort: 9080
        volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: wlp-output
          mountPath: /opt/ibm/wlp/output
      volumes:
      - name: wlp-output
        emptyDir: {}
      - name: tmp
        emptyDir: {}
"#;

#[test]
fn bookinfo_kube_manifests() {
    let out = assert_valid(BOOKINFO_KUBE, 3);
    // The ServiceAccount is skipped with a note, nothing else is reported.
    let notes: Vec<_> = out.diagnostics.iter().collect();
    assert_eq!(notes.len(), 1, "{}", show(&out));
    assert_eq!(notes[0].severity, Severity::Info);
    assert!(
        notes[0]
            .message
            .contains("skipped: weft does not read ServiceAccount"),
        "{}",
        notes[0]
    );
    assert_eq!(out.documents, 4);
}

#[test]
fn pod_endpoints_and_endpoint_slice() {
    assert_valid(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: ratings-v1-abc12
  labels: {app: ratings, version: v1}
spec:
  initContainers:
  - name: istio-init
    image: docker.io/istio/proxyv2:1.26.0
  containers:
  - name: ratings
    image: docker.io/istio/examples-bookinfo-ratings-v1:1.20.3
    ports:
    - containerPort: 9080
      name: http
      protocol: TCP
  - name: istio-proxy
    image: docker.io/istio/proxyv2:1.26.0
    ports:
    - containerPort: 15090
      name: http-envoy-prom
  restartPolicy: Always
---
apiVersion: v1
kind: Endpoints
metadata:
  name: ratings
subsets:
- addresses:
  - ip: 10.244.1.7
    targetRef: {kind: Pod, name: ratings-v1-abc12, namespace: default}
  notReadyAddresses:
  - ip: 10.244.2.9
  ports:
  - name: http
    port: 9080
    protocol: TCP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ratings-x7k2p
  labels:
    kubernetes.io/service-name: ratings
addressType: IPv4
ports:
- name: http
  protocol: TCP
  port: 9080
endpoints:
- addresses: ["10.244.1.7"]
  conditions: {ready: true}
  nodeName: node-1
  zone: us-east-1a
  targetRef: {kind: Pod, name: ratings-v1-abc12, namespace: default}
"#,
        3,
    );
}

#[test]
fn old_deployments_are_upgraded_with_a_warning() {
    // An extensions/v1beta1 Deployment without a selector (the selector was defaulted from
    // the template's labels), and an apps/v1beta1 one: both read as apps/v1.
    let out = assert_valid(
        r#"
apiVersion: extensions/v1beta1
kind: Deployment
metadata:
  name: productpage-v1
spec:
  replicas: 1
  template:
    metadata:
      labels:
        app: productpage
        version: v1
    spec:
      containers:
      - name: productpage
        image: docker.io/istio/examples-bookinfo-productpage-v1:1.20.3
        ports:
        - containerPort: 9080
---
apiVersion: apps/v1beta1
kind: Deployment
metadata:
  name: ratings-v1
spec:
  replicas: 1
  template:
    metadata:
      labels:
        app: ratings
        version: v1
    spec:
      containers:
      - name: ratings
        image: docker.io/istio/examples-bookinfo-ratings-v1:1.20.3
"#,
        2,
    );
    let warnings: Vec<_> = out
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .collect();
    assert_eq!(warnings.len(), 2, "{}", show(&out));
    assert!(
        warnings.iter().all(
            |w| w.message.contains("is deprecated") && w.field.as_deref() == Some("apiVersion")
        )
    );
    assert_eq!(warnings[0].line, Some(2));
    let weft_model::Spec::Deployment(d) = &out.resources[0].spec else {
        panic!("not a Deployment")
    };
    let sel = d
        .spec
        .as_ref()
        .unwrap()
        .selector
        .match_labels
        .as_ref()
        .unwrap();
    assert_eq!(sel.get("app").map(String::as_str), Some("productpage"));
}

#[test]
fn old_deployment_rollback_to_is_dropped_with_a_warning() {
    let y = "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  rollbackTo: # <-\n    revision: 2\n  template:\n    metadata:\n      labels: {app: d}\n    spec:\n      containers:\n      - {name: d, image: d}\n";
    let out = load(y);
    assert!(errors(&out).is_empty(), "{}", show(&out));
    assert_finding(
        y,
        Severity::Warning,
        "spec.rollbackTo",
        "`spec.rollbackTo` (revision 2) was removed in apps/v1",
    );
}

#[test]
fn apps_v1beta2_deployment_needs_a_selector() {
    let y = "apiVersion: apps/v1beta2\nkind: Deployment\nmetadata:\n  name: d\nspec: # <-\n  template:\n    metadata:\n      labels: {app: d}\n    spec:\n      containers:\n      - {name: d, image: d}\n";
    assert_error(y, "spec.selector", "`selector` is required");
}

const SVC_HEAD: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\nspec:\n  selector:\n    app: reviews\n";

#[test]
fn service_typo_is_an_error_at_its_line() {
    let y = "apiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\nspec:\n  selector:\n    app: reviews\n  prots: # <-\n  - port: 9080\n    name: http\n";
    assert_error(y, "spec.prots", "unknown field `prots`");
}

#[test]
fn service_ports() {
    let y = format!("{SVC_HEAD}  ports:\n  - port: 0 # <-\n    name: http\n");
    assert_error(&y, "spec.ports[0].port", "port 0 is out of range");
    let y = format!("{SVC_HEAD}  ports:\n  - port: 9080\n    name: http\n  - port: 9443 # <-\n");
    assert_error(
        &y,
        "spec.ports[1].name",
        "`name` is required when a Service has more than one port",
    );
    let y = format!(
        "{SVC_HEAD}  ports:\n  - port: 9080\n    name: http\n  - port: 9443\n    name: http # <-\n"
    );
    assert_error(
        &y,
        "spec.ports[1].name",
        "port name `http` is already used by ports[0]",
    );
    let y =
        format!("{SVC_HEAD}  ports:\n  - port: 9080\n    name: http\n    protocol: HTTP # <-\n");
    assert_error(
        &y,
        "spec.ports[0].protocol",
        "protocol `HTTP` is not supported: use TCP, UDP or SCTP",
    );
    let y =
        format!("{SVC_HEAD}  ports:\n  - port: 9080\n    name: http\n    targetPort: 70000 # <-\n");
    assert_error(
        &y,
        "spec.ports[0].targetPort",
        "targetPort 70000 is out of range",
    );
    let y = format!(
        "{SVC_HEAD}  ports:\n  - port: 9080\n    name: http\n    targetPort: HTTP_port # <-\n"
    );
    assert_error(
        &y,
        "spec.ports[0].targetPort",
        "port name `HTTP_port` is invalid",
    );
    // targetPort 0 means "the same as port".
    assert_valid(
        &format!("{SVC_HEAD}  ports:\n  - {{port: 9080, name: http, targetPort: 0}}\n"),
        1,
    );
    let y = format!("{SVC_HEAD}  ports:\n  - port: 9080\n    name: Http # <-\n");
    assert_error(&y, "spec.ports[0].name", "port name `Http` is invalid");
    let y = format!(
        "{SVC_HEAD}  ports:\n  - port: 9080\n    name: http\n    appProtocol: not a name # <-\n"
    );
    assert_error(
        &y,
        "spec.ports[0].appProtocol",
        "appProtocol `not a name` is invalid",
    );
    let y =
        format!("{SVC_HEAD}  ports:\n  - port: 9080\n    name: http\n    nodePort: 30080 # <-\n");
    assert_error(
        &y,
        "spec.ports[0].nodePort",
        "`nodePort` may only be used when type is NodePort or LoadBalancer",
    );
    let y = format!("{SVC_HEAD}  ports: [] # <-\n");
    assert_error(&y, "spec.ports", "`ports` is required");
}

#[test]
fn service_type_and_selector() {
    let y = format!("{SVC_HEAD}  type: ClusterIp # <-\n  ports:\n  - {{port: 9080, name: http}}\n");
    assert_error(&y, "spec.type", "did you mean `ClusterIP`?");
    let y = "apiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\nspec:\n  selector:\n    version: v1- # <-\n  ports:\n  - {port: 9080, name: http}\n";
    assert_error(y, "spec.selector.version", "label value `v1-` is invalid");
    let y =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\nspec: # <-\n  type: ExternalName\n";
    assert_error(
        y,
        "spec.externalName",
        "`externalName` is required for type ExternalName",
    );
}

#[test]
fn service_istio_port_naming_convention() {
    let y = format!("{SVC_HEAD}  ports:\n  - port: 9080\n    name: web # <-\n");
    let out = load(&y);
    assert!(errors(&out).is_empty(), "{}", show(&out));
    assert_finding(
        &y,
        Severity::Info,
        "spec.ports[0].name",
        "port name `web` (port 9080, targetPort 9080) does not follow Istio's port naming convention",
    );
    assert_finding(&y, Severity::Info, "spec.ports[0].name", "[IST0118]");
    // A recognised prefix, an appProtocol, or a well-known port are all fine.
    for ports in [
        "  - {port: 9080, name: http-web}\n",
        "  - {port: 9080, name: web, appProtocol: http}\n",
        "  - {port: 9080, name: web, appProtocol: kubernetes.io/h2c}\n",
        "  - {port: 3306, name: db}\n",
        "  - {port: 53, name: dns, protocol: UDP}\n",
    ] {
        let out = load(&format!("{SVC_HEAD}  ports:\n{ports}"));
        assert!(out.diagnostics.is_empty(), "{ports}: {}", show(&out));
    }
    // System namespaces are not checked, as `istioctl analyze` does.
    let out = load(
        "apiVersion: v1\nkind: Service\nmetadata: {name: kube-dns, namespace: kube-system}\nspec:\n  ports: [{port: 9153, name: metrics}]\n",
    );
    assert!(out.diagnostics.is_empty(), "{}", show(&out));
    let y = "apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\nspec:\n  type: ExternalName\n  externalName: api.example.com\n  ports:\n  - port: 443\n    name: tcp # <-\n";
    assert_finding(y, Severity::Warning, "spec.ports[0].name", "[IST0150]");
}

const POD_HEAD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n";

#[test]
fn pod_containers() {
    let y = format!("{POD_HEAD}  containers: [] # <-\n");
    assert_error(&y, "spec.containers", "`containers` is required");
    let y = format!(
        "{POD_HEAD}  containers:\n  - {{name: app, image: a}}\n  - name: app # <-\n    image: b\n"
    );
    assert_error(
        &y,
        "spec.containers[1].name",
        "container name `app` is already used by containers[0]",
    );
    let y = format!("{POD_HEAD}  containers:\n  - name: App_1 # <-\n    image: a\n");
    assert_error(
        &y,
        "spec.containers[0].name",
        "container name `App_1` is invalid",
    );
    let y = format!("{POD_HEAD}  containers:\n  - name: app # <-\n");
    assert_error(&y, "spec.containers[0].image", "`image` is required");
    let y = format!(
        "{POD_HEAD}  containers:\n  - name: app\n    image: a\n    ports:\n    - containerPort: 0 # <-\n"
    );
    assert_error(
        &y,
        "spec.containers[0].ports[0].containerPort",
        "port 0 is out of range",
    );
    let y = format!(
        "{POD_HEAD}  containers:\n  - name: app\n    image: a\n    ports:\n    - containerPort: 80\n      name: http-server-port # <-\n"
    );
    assert_error(
        &y,
        "spec.containers[0].ports[0].name",
        "it must be 1 to 15 characters long",
    );
    let y = format!(
        "{POD_HEAD}  restartPolicy: Sometimes # <-\n  containers:\n  - {{name: app, image: a}}\n"
    );
    assert_error(&y, "spec.restartPolicy", "`Sometimes` is not a valid value");
    let y = format!("{POD_HEAD}  containers:\n  - name: app\n    imag: a # <-\n");
    assert_error(&y, "spec.containers[0].imag", "unknown field `imag`");
}

const DEPLOY_HEAD: &str =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: reviews-v2\nspec:\n";

#[test]
fn deployment_selector_must_match_template() {
    let y = format!(
        "{DEPLOY_HEAD}  selector:\n    matchLabels: {{app: reviews, version: v2}}\n  template:\n    metadata:\n      labels: # <-\n        app: reviews\n        version: v1\n    spec:\n      containers:\n      - {{name: reviews, image: r}}\n"
    );
    assert_error(
        &y,
        "spec.template.metadata.labels",
        "`selector` does not match template `labels`",
    );
    let y = format!(
        "{DEPLOY_HEAD}  selector:\n    matchExpressions:\n    - {{key: version, operator: In, values: [v2, v3]}}\n  template:\n    metadata:\n      labels: {{version: v2}}\n    spec:\n      containers:\n      - {{name: reviews, image: r}}\n"
    );
    assert_valid(&y, 1);
}

#[test]
fn deployment_selector_required() {
    let y = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: reviews-v2\nspec: # <-\n  template:\n    metadata:\n      labels: {app: reviews}\n    spec:\n      containers:\n      - {name: reviews, image: r}\n";
    assert_error(y, "spec.selector", "`selector` is required");
}

#[test]
fn deployment_counts_and_strategy() {
    let body = "  selector:\n    matchLabels: {app: r}\n  template:\n    metadata:\n      labels: {app: r}\n    spec:\n      containers:\n      - {name: r, image: r}\n";
    let y = format!("{DEPLOY_HEAD}  replicas: -1 # <-\n{body}");
    assert_error(&y, "spec.replicas", "replicas -1 is negative");
    let y = format!(
        "{DEPLOY_HEAD}{body}  strategy:\n    type: Recreate\n    rollingUpdate: # <-\n      maxSurge: 1\n"
    );
    assert_error(
        &y,
        "spec.strategy.rollingUpdate",
        "may not be set when strategy type is Recreate",
    );
    let y = format!(
        "{DEPLOY_HEAD}{body}  strategy:\n    rollingUpdate:\n      maxUnavailable: 0 # <-\n      maxSurge: 0\n"
    );
    assert_error(
        &y,
        "spec.strategy.rollingUpdate.maxUnavailable",
        "may not be 0 when maxSurge is 0",
    );
    let y = format!(
        "{DEPLOY_HEAD}  selector:\n    matchLabels: {{app: r}}\n  template:\n    metadata:\n      labels: {{app: r}}\n    spec:\n      restartPolicy: Never # <-\n      containers:\n      - {{name: r, image: r}}\n"
    );
    assert_error(
        &y,
        "spec.template.spec.restartPolicy",
        "its pods must use Always",
    );
    let y = format!("{DEPLOY_HEAD}  replica: 2 # <-\n{body}");
    assert_error(&y, "spec.replica", "unknown field `replica`");
}

const EP_HEAD: &str = "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: ratings\nsubsets:\n";

#[test]
fn endpoints() {
    let y = format!("{EP_HEAD}- ports: # <-\n  - {{port: 9080, name: http}}\n");
    assert_error(
        &y,
        "subsets[0]",
        "a subset must have `addresses` or `notReadyAddresses`",
    );
    let y = format!("{EP_HEAD}- addresses:\n  - ip: 10.244.1.300 # <-\n");
    assert_error(
        &y,
        "subsets[0].addresses[0].ip",
        "`10.244.1.300` is not an IP address",
    );
    let y = format!("{EP_HEAD}- addresses:\n  - ip: 0.0.0.0 # <-\n");
    assert_error(
        &y,
        "subsets[0].addresses[0].ip",
        "is the unspecified address",
    );
    let y = format!(
        "{EP_HEAD}- addresses:\n  - ip: 10.0.0.1\n  ports:\n  - {{port: 9080, name: http}}\n  - port: 9443 # <-\n"
    );
    assert_error(
        &y,
        "subsets[0].ports[1].name",
        "`name` is required when there is more than one port",
    );
    // Loopback is refused by the API server but used by weft's local mode: a warning.
    let y = format!("{EP_HEAD}- addresses:\n  - ip: 127.0.1.2 # <-\n");
    assert_finding(
        &y,
        Severity::Warning,
        "subsets[0].addresses[0].ip",
        "loopback",
    );
}

const SLICE_HEAD: &str = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: ratings-abc\n  labels: {kubernetes.io/service-name: ratings}\n";

#[test]
fn endpoint_slices() {
    let y = format!("{SLICE_HEAD}addressType: IPv5 # <-\nendpoints: []\n");
    assert_error(&y, "addressType", "did you mean `IPv4`?");
    let y = format!("{SLICE_HEAD}addressType: IPv4\nendpoints:\n- addresses:\n  - fd00::1 # <-\n");
    assert_error(
        &y,
        "endpoints[0].addresses[0]",
        "`fd00::1` is not an IPv4 address",
    );
    let y = format!("{SLICE_HEAD}addressType: IPv4\nendpoints:\n- addresses: [] # <-\n");
    assert_error(
        &y,
        "endpoints[0].addresses",
        "must contain at least one address",
    );
    let y =
        format!("{SLICE_HEAD}addressType: FQDN\nendpoints:\n- addresses:\n  - not_a_name # <-\n");
    assert_error(
        &y,
        "endpoints[0].addresses[0]",
        "is not a fully qualified domain name",
    );
    let y = format!(
        "{SLICE_HEAD}addressType: IPv4\nendpoints: []\nports:\n- {{name: http, port: 80}}\n- name: http # <-\n  port: 81\n"
    );
    assert_error(&y, "ports[1].name", "port name `http` is repeated");
    let y = format!(
        "{SLICE_HEAD}addressType: IPv4\nendpoints: []\nports:\n- name: http\n  protocol: HTTP # <-\n"
    );
    assert_error(&y, "ports[0].protocol", "protocol `HTTP` is not supported");
    let y = format!("{SLICE_HEAD}addresType: IPv4 # <-\nendpoints: []\n");
    assert_error(&y, "addresType", "unknown field `addresType`");
}

#[test]
fn typos_in_other_kinds() {
    let y = format!(
        "{GRPC_HEAD}  - matches:\n    - method:\n        servce: helloworld.Greeter # <-\n    backendRefs: [{{name: s, port: 50051}}]\n"
    );
    assert_error(
        &y,
        "spec.rules[0].matches[0].method.servce",
        "did you mean `service`?",
    );
    let y = "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata:\n  name: t\nspec:\n  rules:\n  - backendRefs:\n    - name: db\n      prot: 5432 # <-\n";
    assert_error(
        y,
        "spec.rules[0].backendRefs[0].prot",
        "did you mean `port`?",
    );
    let y = format!(
        "{EP_HEAD}- addresses:\n  - ip: 10.0.0.1\n  prots: # <-\n  - {{port: 9080, name: http}}\n"
    );
    assert_error(&y, "subsets[0].prots", "unknown field `prots`");
}
