//! Cross-resource analysis, table-driven: a set of documents, and the findings expected
//! (code, severity, the resource file line, the field, a message fragment).

use weft_model::{Severity, analyze::analyze, load_str};

struct Case {
    name: &'static str,
    yaml: &'static str,
    /// Expected findings (code, severity, line, field, fragment); Info notes are ignored.
    expect: &'static [(&'static str, Severity, usize, &'static str, &'static str)],
}

const SVC_REVIEWS: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  selector: {app: reviews}\n  ports: [{port: 9080, name: http}]\n";

/// A workload of the reviews service, so selector checks run.
const POD_REVIEWS_V1: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: reviews-v1, labels: {app: reviews, version: v1}}\nspec:\n  containers: [{name: c, image: i}]\n";

fn with_services(yaml: &str) -> String {
    if yaml.contains("kind: Pod") {
        format!("{SVC_REVIEWS}---\n{yaml}")
    } else {
        format!("{SVC_REVIEWS}---\n{yaml}---\n{POD_REVIEWS_V1}")
    }
}

const CASES: &[Case] = &[
    Case {
        name: "route to an undefined subset",
        yaml: "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n        subset: v9\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n",
        expect: &[(
            "IST0101",
            Severity::Error,
            10,
            "spec.http[0].route[0].destination.subset",
            "Referenced host+subset in destinationrule not found: \"reviews+v9\"",
        )],
    },
    Case {
        name: "subset defined by a DestinationRule with the FQDN host",
        yaml: "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: other}\nspec:\n  host: reviews.default.svc.cluster.local\n  subsets:\n  - name: v1\n    labels: {version: v1}\n",
        expect: &[],
    },
    Case {
        name: "virtual service bound to a gateway that does not exist",
        yaml: "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bookinfo}\nspec:\n  hosts: ['*']\n  gateways: [bookinfo-gateway-bogus]\n  http:\n  - route:\n    - destination: {host: productpage}\n",
        expect: &[(
            "IST0101",
            Severity::Error,
            6,
            "spec.gateways[0]",
            "Referenced gateway not found: \"bookinfo-gateway-bogus\"",
        )],
    },
    Case {
        name: "gateway in another namespace, referenced as ns/name",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bookinfo}\nspec:\n  hosts: ['*']\n  gateways: [istio-system/gw]\n  http:\n  - route:\n    - destination: {host: productpage}\n",
        expect: &[],
    },
    Case {
        name: "two virtual services for one host in the mesh",
        yaml: "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\nspec:\n  hosts: [reviews.default.svc.cluster.local]\n  http:\n  - route:\n    - destination: {host: reviews}\n",
        expect: &[
            (
                "IST0109",
                Severity::Error,
                5,
                "spec.hosts",
                "default/a,default/b",
            ),
            (
                "IST0109",
                Severity::Error,
                14,
                "spec.hosts",
                "define the same host reviews.default.svc.cluster.local",
            ),
        ],
    },
    Case {
        name: "the same resource in two files: the later one replaces the earlier",
        yaml: "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n",
        expect: &[],
    },
];

/// Cases that need the registry (a Service for `reviews`).
const REGISTRY_CASES: &[Case] = &[
    Case {
        name: "destination host absent from the registry",
        yaml: "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reveiws\n",
        expect: &[(
            "IST0101",
            Severity::Error,
            16,
            "spec.http[0].route[0].destination.host",
            "Referenced host not found: \"reveiws\"",
        )],
    },
    Case {
        name: "destination rule host matches no service",
        yaml: "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: reveiws\n",
        expect: &[(
            "IST0174",
            Severity::Warning,
            12,
            "spec.host",
            "The host reveiws defined in the DestinationRule does not match any services",
        )],
    },
    Case {
        name: "two destination rules for one host",
        yaml: "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec:\n  host: reviews\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: b}\nspec:\n  host: reviews.default.svc.cluster.local\n",
        expect: &[(
            "",
            Severity::Warning,
            18,
            "spec.host",
            "DestinationRule default/a also applies to host reviews.default.svc.cluster.local",
        )],
    },
    Case {
        name: "subset that selects no pod",
        yaml: "apiVersion: v1\nkind: Pod\nmetadata: {name: reviews-v1, labels: {app: reviews, version: v1}}\nspec:\n  containers: [{name: c, image: i}]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n  - name: v2\n    labels: {version: v2}\n",
        expect: &[(
            "IST0173",
            Severity::Warning,
            22,
            "spec.subsets[1]",
            "The Subset v2 defined in the DestinationRule does not select any pods",
        )],
    },
    Case {
        name: "gateway whose selector matches no gateway workload",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: egressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n",
        expect: &[(
            "IST0101",
            Severity::Error,
            12,
            "spec.selector",
            "Referenced selector not found: \"istio=egressgateway\"",
        )],
    },
    Case {
        name: "gateway served by weft's own ingress gateway",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n",
        expect: &[],
    },
    Case {
        name: "authorization policy whose selector matches nothing",
        yaml: "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all}\nspec:\n  selector:\n    matchLabels: {app: ratingz}\n",
        expect: &[(
            "IST0127",
            Severity::Warning,
            12,
            "spec.selector",
            "No matching workloads for this resource with the following labels: app=ratingz",
        )],
    },
    Case {
        name: "policy in the root namespace selects workloads anywhere",
        yaml: "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: strict, namespace: istio-system}\nspec:\n  selector:\n    matchLabels: {app: reviews}\n  mtls: {mode: STRICT}\n",
        expect: &[],
    },
    Case {
        name: "two sidecars without selectors in one namespace",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: a}\nspec:\n  egress: [{hosts: ['./*']}]\n---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: b}\nspec:\n  egress: [{hosts: ['./*']}]\n",
        expect: &[
            ("IST0111", Severity::Error, 11, "spec", "[a, b]"),
            ("IST0111", Severity::Error, 17, "spec", "[a, b]"),
        ],
    },
    Case {
        name: "two sidecars selecting the same workload",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: a}\nspec:\n  workloadSelector: {labels: {app: reviews}}\n  egress: [{hosts: ['./*']}]\n---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: b}\nspec:\n  workloadSelector: {labels: {version: v1}}\n  egress: [{hosts: ['./*']}]\n",
        expect: &[
            (
                "IST0110",
                Severity::Error,
                12,
                "spec.workloadSelector",
                "select the same workload",
            ),
            (
                "IST0110",
                Severity::Error,
                19,
                "spec.workloadSelector",
                "select the same workload",
            ),
        ],
    },
    Case {
        name: "virtual service host not exposed by its gateway",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*.example.com']\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec:\n  hosts: [shop.example.org]\n  gateways: [gw]\n  http:\n  - route:\n    - destination: {host: reviews}\n",
        expect: &[(
            "IST0132",
            Severity::Warning,
            22,
            "spec.gateways[0]",
            "one or more host [shop.example.org] defined in VirtualService default/vs not found in Gateway default/gw",
        )],
    },
    Case {
        name: "service entries and workload entries are part of the registry",
        yaml: "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext}\nspec:\n  hosts: [api.example.com]\n  ports: [{number: 443, name: https, protocol: TLS}]\n  resolution: DNS\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ext}\nspec:\n  hosts: [api.example.com]\n  tls:\n  - match: [{sniHosts: [api.example.com]}]\n    route:\n    - destination: {host: api.example.com}\n",
        expect: &[],
    },
    Case {
        name: "HTTPRoute to a gateway that does not exist",
        yaml: "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs:\n  - name: nogw\n  rules:\n  - backendRefs:\n    - {name: reviews, port: 9080}\n",
        expect: &[(
            "IST0101",
            Severity::Error,
            13,
            "spec.parentRefs[0]",
            "Referenced gateway not found: \"default/nogw\"",
        )],
    },
    Case {
        name: "HTTPRoute to a listener the gateway lacks, and to a missing backend",
        yaml: "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: istio\n  listeners:\n  - {name: http, port: 80, protocol: HTTP}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs:\n  - name: gw\n    sectionName: https\n  rules:\n  - backendRefs:\n    - {name: reviewz, port: 9080}\n",
        expect: &[
            (
                "IST0101",
                Severity::Error,
                22,
                "spec.parentRefs[0].sectionName",
                "has no listener named \"https\"",
            ),
            (
                "IST0101",
                Severity::Error,
                25,
                "spec.rules[0].backendRefs[0].name",
                "Referenced backend not found: Service \"default/reviewz\"",
            ),
        ],
    },
    Case {
        name: "cross-namespace backend without a ReferenceGrant",
        yaml: "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: istio\n  listeners:\n  - {name: http, port: 80, protocol: HTTP}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: web}\nspec:\n  parentRefs:\n  - {name: gw, namespace: default}\n  rules:\n  - backendRefs:\n    - {name: reviews, namespace: default, port: 9080}\n",
        expect: &[(
            "",
            Severity::Error,
            24,
            "spec.rules[0].backendRefs[0].namespace",
            "not permitted (RefNotPermitted)",
        )],
    },
    Case {
        name: "cross-namespace backend allowed by a ReferenceGrant",
        yaml: "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: istio\n  listeners:\n  - {name: http, port: 80, protocol: HTTP}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: web}\nspec:\n  parentRefs:\n  - {name: gw, namespace: default}\n  rules:\n  - backendRefs:\n    - {name: reviews, namespace: default, port: 9080}\n---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: allow-web}\nspec:\n  from:\n  - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: web}\n  to:\n  - {group: '', kind: Service}\n",
        expect: &[],
    },
    Case {
        name: "gateway with an unknown class",
        yaml: "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: nginx\n  listeners:\n  - {name: http, port: 80, protocol: HTTP}\n",
        expect: &[(
            "IST0101",
            Severity::Error,
            12,
            "spec.gatewayClassName",
            "Referenced GatewayClass not found: \"nginx\"",
        )],
    },
];

fn run(c: &Case, yaml: &str) {
    let out = load_str("a.yaml", yaml);
    assert!(
        !out.has_errors(),
        "{}: invalid input {:#?}",
        c.name,
        out.diagnostics
    );
    let found: Vec<_> = analyze(&out.resources)
        .into_iter()
        .filter(|d| d.severity > Severity::Info)
        .collect();
    assert_eq!(found.len(), c.expect.len(), "{}: {found:#?}", c.name);
    for (d, (code, sev, line, field, frag)) in found.iter().zip(c.expect) {
        assert_eq!(d.code.unwrap_or(""), *code, "{}: {d}", c.name);
        assert_eq!(d.severity, *sev, "{}: {d}", c.name);
        assert_eq!(d.line, Some(*line), "{}: {d}", c.name);
        assert_eq!(d.field.as_deref(), Some(*field), "{}: {d}", c.name);
        assert!(d.message.contains(frag), "{}: {d}", c.name);
    }
}

#[test]
fn analysis_table() {
    for c in CASES {
        run(c, c.yaml);
    }
}

#[test]
fn analysis_with_registry_table() {
    for c in REGISTRY_CASES {
        run(c, &with_services(c.yaml));
    }
}

#[test]
fn no_registry_means_hosts_are_not_checked_and_a_note_says_so() {
    let out = load_str(
        "a.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: nowhere}\n",
    );
    let found = analyze(&out.resources);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, Severity::Info);
    assert!(
        found[0]
            .message
            .contains("destination hosts were not checked")
    );
}

#[test]
fn bookinfo_samples_analyze_clean() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/bookinfo");
    let out = weft_model::load_paths(&[root.join("networking"), root.join("platform/kube")]);
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    let found: Vec<_> = analyze(&out.resources)
        .into_iter()
        .filter(|d| d.severity > Severity::Info)
        .collect();
    assert!(found.is_empty(), "{found:#?}");
}
