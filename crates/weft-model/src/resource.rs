//! The kinds weft reads, and turning a parsed document into a typed, validated resource.

use crate::common::ObjectMeta;
use crate::diag::{Diagnostic, Pos, Severity};
use crate::path::{FieldPath, Seg};
use crate::source::{Document, PositionIndex};
use crate::validate::{Ctx, Validate, suggest};
use crate::{gateway_api, istio, kube};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// A kind weft understands: its API group, the versions served, and how it is scoped.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KindInfo {
    /// API group; empty for the Kubernetes core group.
    pub group: &'static str,
    pub kind: &'static str,
    /// Lower-case plural, as `kubectl get` and the REST API name it.
    pub plural: &'static str,
    /// Versions served, newest first.
    pub versions: &'static [&'static str],
    /// Versions still read, with a deprecation warning (`group/version` when the group differs).
    pub deprecated: &'static [&'static str],
    pub namespaced: bool,
}

macro_rules! kinds {
    ($($id:ident: $group:literal $kind:literal $plural:literal [$($v:literal),*] [$($d:literal),*] $ns:literal;)*) => {
        /// Every kind weft reads.
        pub mod kinds {
            use super::KindInfo;
            $(pub static $id: KindInfo = KindInfo {
                group: $group, kind: $kind, plural: $plural,
                versions: &[$($v),*], deprecated: &[$($d),*], namespaced: $ns,
            };)*
            pub static ALL: &[&KindInfo] = &[$(&$id),*];
        }
    };
}

kinds! {
    VIRTUAL_SERVICE: "networking.istio.io" "VirtualService" "virtualservices" ["v1", "v1beta1", "v1alpha3"] [] true;
    DESTINATION_RULE: "networking.istio.io" "DestinationRule" "destinationrules" ["v1", "v1beta1", "v1alpha3"] [] true;
    GATEWAY: "networking.istio.io" "Gateway" "gateways" ["v1", "v1beta1", "v1alpha3"] [] true;
    SERVICE_ENTRY: "networking.istio.io" "ServiceEntry" "serviceentries" ["v1", "v1beta1", "v1alpha3"] [] true;
    WORKLOAD_ENTRY: "networking.istio.io" "WorkloadEntry" "workloadentries" ["v1", "v1beta1", "v1alpha3"] [] true;
    WORKLOAD_GROUP: "networking.istio.io" "WorkloadGroup" "workloadgroups" ["v1", "v1beta1", "v1alpha3"] [] true;
    SIDECAR: "networking.istio.io" "Sidecar" "sidecars" ["v1", "v1beta1", "v1alpha3"] [] true;
    PEER_AUTHENTICATION: "security.istio.io" "PeerAuthentication" "peerauthentications" ["v1", "v1beta1"] [] true;
    AUTHORIZATION_POLICY: "security.istio.io" "AuthorizationPolicy" "authorizationpolicies" ["v1", "v1beta1"] [] true;
    REQUEST_AUTHENTICATION: "security.istio.io" "RequestAuthentication" "requestauthentications" ["v1", "v1beta1"] [] true;
    TELEMETRY: "telemetry.istio.io" "Telemetry" "telemetries" ["v1", "v1alpha1"] [] true;
    GATEWAY_CLASS: "gateway.networking.k8s.io" "GatewayClass" "gatewayclasses" ["v1", "v1beta1"] [] false;
    K8S_GATEWAY: "gateway.networking.k8s.io" "Gateway" "gateways" ["v1", "v1beta1"] [] true;
    HTTP_ROUTE: "gateway.networking.k8s.io" "HTTPRoute" "httproutes" ["v1", "v1beta1"] [] true;
    GRPC_ROUTE: "gateway.networking.k8s.io" "GRPCRoute" "grpcroutes" ["v1", "v1alpha2"] [] true;
    REFERENCE_GRANT: "gateway.networking.k8s.io" "ReferenceGrant" "referencegrants" ["v1", "v1beta1", "v1alpha2"] [] true;
    TCP_ROUTE: "gateway.networking.k8s.io" "TCPRoute" "tcproutes" ["v1alpha2"] [] true;
    TLS_ROUTE: "gateway.networking.k8s.io" "TLSRoute" "tlsroutes" ["v1", "v1alpha2"] [] true;
    NAMESPACE: "" "Namespace" "namespaces" ["v1"] [] false;
    SERVICE: "" "Service" "services" ["v1"] [] true;
    ENDPOINTS: "" "Endpoints" "endpoints" ["v1"] [] true;
    POD: "" "Pod" "pods" ["v1"] [] true;
    ENDPOINT_SLICE: "discovery.k8s.io" "EndpointSlice" "endpointslices" ["v1"] ["v1beta1"] true;
    DEPLOYMENT: "apps" "Deployment" "deployments" ["v1"] ["v1beta1", "v1beta2", "extensions/v1beta1"] true;
}

impl KindInfo {
    /// `networking.istio.io/v1` for the newest version.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.versions[0].to_string()
        } else {
            format!("{}/{}", self.group, self.versions[0])
        }
    }

    /// Finds a kind by API group and kind name.
    pub fn find(group: &str, kind: &str) -> Option<&'static KindInfo> {
        kinds::ALL
            .iter()
            .copied()
            .find(|k| k.group == group && k.kind == kind)
    }

    /// Finds a kind by the names a user types: `vs`, `virtualservice`, `VirtualService`,
    /// `virtualservices`, `virtualservices.networking.istio.io`.
    pub fn lookup(name: &str) -> Vec<&'static KindInfo> {
        let lname = name.to_ascii_lowercase();
        let (base, group) = match lname.split_once('.') {
            Some((b, g)) => (b.to_string(), Some(g.to_string())),
            None => (lname.clone(), None),
        };
        let short = |k: &KindInfo| -> &'static [&'static str] {
            match k.kind {
                "VirtualService" => &["vs"],
                "DestinationRule" => &["dr"],
                "Gateway" if k.group == "networking.istio.io" => &["gw"],
                "ServiceEntry" => &["se"],
                "WorkloadEntry" => &["we"],
                "WorkloadGroup" => &["wg"],
                "PeerAuthentication" => &["pa"],
                "AuthorizationPolicy" => &["ap"],
                "RequestAuthentication" => &["ra"],
                "Service" => &["svc"],
                "Namespace" => &["ns"],
                "Deployment" => &["deploy"],
                "Endpoints" => &["ep"],
                "GatewayClass" => &["gc"],
                _ => &[],
            }
        };
        kinds::ALL
            .iter()
            .copied()
            .filter(|k| {
                (k.kind.to_ascii_lowercase() == base
                    || k.plural == base
                    || short(k).contains(&base.as_str()))
                    && group.as_deref().is_none_or(|g| g == k.group)
            })
            .collect()
    }
}

/// The typed body of a resource.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Spec {
    VirtualService(istio::networking::VirtualService),
    DestinationRule(istio::networking::DestinationRule),
    Gateway(istio::networking::Gateway),
    ServiceEntry(istio::networking::ServiceEntry),
    WorkloadEntry(istio::networking::WorkloadEntry),
    WorkloadGroup(istio::networking::WorkloadGroup),
    Sidecar(istio::networking::Sidecar),
    PeerAuthentication(istio::security::PeerAuthentication),
    AuthorizationPolicy(istio::security::AuthorizationPolicy),
    RequestAuthentication(istio::security::RequestAuthentication),
    Telemetry(istio::telemetry::Telemetry),
    GatewayClass(gateway_api::GatewayClassSpec),
    KubeGateway(gateway_api::GatewaySpec),
    HttpRoute(gateway_api::HttpRouteSpec),
    GrpcRoute(gateway_api::GrpcRouteSpec),
    ReferenceGrant(gateway_api::ReferenceGrantSpec),
    TcpRoute(gateway_api::TcpRouteSpec),
    TlsRoute(gateway_api::TlsRouteSpec),
    Namespace(Box<k8s_openapi::api::core::v1::Namespace>),
    Service(Box<k8s_openapi::api::core::v1::Service>),
    Endpoints(Box<k8s_openapi::api::core::v1::Endpoints>),
    Pod(Box<k8s_openapi::api::core::v1::Pod>),
    EndpointSlice(Box<k8s_openapi::api::discovery::v1::EndpointSlice>),
    Deployment(Box<k8s_openapi::api::apps::v1::Deployment>),
}

/// Where a resource came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: Arc<str>,
    /// 0-based document index in the file.
    pub index: usize,
    pub pos: Pos,
    pub positions: Arc<PositionIndex>,
}

impl PartialEq for Origin {
    fn eq(&self, other: &Self) -> bool {
        self.file == other.file && self.index == other.index
    }
}

/// A typed, validated resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: &'static KindInfo,
    /// The apiVersion as written.
    pub api_version: String,
    pub meta: ObjectMeta,
    pub spec: Spec,
    /// The document as written (kept for `weft get -o yaml` and persistence).
    pub raw: Value,
    pub origin: Origin,
}

impl Resource {
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// The namespace, defaulted to `default` for namespaced kinds; empty for cluster-scoped.
    pub fn namespace(&self) -> &str {
        if !self.kind.namespaced {
            return "";
        }
        self.meta
            .namespace
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
    }

    /// `VirtualService default/reviews` (cluster-scoped: `GatewayClass istio`).
    pub fn display_name(&self) -> String {
        display_name(self.kind.kind, self.namespace(), self.name())
    }

    /// Position of a field of this resource (or its nearest ancestor, or the document).
    pub fn pos_of(&self, path: &str) -> Pos {
        self.origin
            .positions
            .lookup(&FieldPath::parse(path))
            .unwrap_or(self.origin.pos)
    }

    /// A finding about a field of this resource, placed in its file.
    pub fn diagnostic(
        &self,
        severity: Severity,
        path: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(severity, message)
            .with_file(self.origin.file.to_string())
            .with_pos(Some(self.pos_of(path)))
            .with_resource(self.display_name())
            .with_field(path)
    }
}

pub fn display_name(kind: &str, ns: &str, name: &str) -> String {
    if ns.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {ns}/{name}")
    }
}

/// The envelope of every Istio and Gateway API resource, strict about unknown fields.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Object<S> {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default = "Option::default")]
    spec: Option<S>,
    #[serde(default)]
    status: Option<Value>,
}

/// What reading one document produced.
#[derive(Debug)]
pub enum Decoded {
    /// A resource with no errors (it may have warnings in the diagnostics).
    Resource(Box<Resource>),
    /// A kind weft does not read: skipped with a note.
    Skipped,
    /// The document has errors; nothing of it is used.
    Rejected,
}

/// Real kinds of the groups weft reads that weft does not use: skipped, not errors.
const OTHER_KNOWN_KINDS: &[(&str, &str)] = &[
    ("networking.istio.io", "EnvoyFilter"),
    ("networking.istio.io", "ProxyConfig"),
    ("gateway.networking.k8s.io", "BackendTLSPolicy"),
    ("gateway.networking.k8s.io", "UDPRoute"),
    ("gateway.networking.k8s.io", "BackendLBPolicy"),
    ("gateway.networking.k8s.io", "ListenerSet"),
    ("gateway.networking.k8s.io", "XListenerSet"),
];

/// Core and apps kinds weft does not read but that are real (so not typos of ours).
const OTHER_CORE_KINDS: &[&str] = &[
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "ReplicationController",
    "LimitRange",
    "ResourceQuota",
    "Event",
    "Node",
    "ControllerRevision",
    "PodTemplate",
    "Binding",
];

fn kinds_of(g: &str) -> impl Iterator<Item = &'static str> + Clone + '_ {
    kinds::ALL
        .iter()
        .filter(move |k| k.group == g)
        .map(|k| k.kind)
}

/// A kind that is not ours may still be a typo of one of ours: a misspelt kind in one of
/// our groups, or a misspelt group. Returns the field at fault and the message.
fn unknown_kind_problem(group: &str, kind: &str) -> Option<(&'static str, String)> {
    let crd_group =
        !group.is_empty() && !matches!(group, "apps" | "discovery.k8s.io" | "extensions");
    if crd_group && kinds_of(group).next().is_some() {
        if OTHER_KNOWN_KINDS.contains(&(group, kind)) {
            return None;
        }
        let mut msg = format!("unknown kind `{kind}` in API group {group}");
        match suggest(kind, kinds_of(group)) {
            Some(s) => msg.push_str(&format!(": did you mean `{s}`?")),
            None => msg.push_str(&format!(
                " (weft reads: {})",
                kinds_of(group).collect::<Vec<_>>().join(", ")
            )),
        }
        return Some(("kind", msg));
    }
    if crd_group {
        let mut groups: Vec<&str> = kinds::ALL
            .iter()
            .map(|k| k.group)
            .filter(|g| g.contains('.'))
            .collect();
        groups.dedup();
        if let Some(s) = suggest(group, groups) {
            return Some((
                "apiVersion",
                format!("unknown API group `{group}`: did you mean `{s}`?"),
            ));
        }
        return None;
    }
    if OTHER_CORE_KINDS.contains(&kind) {
        return None;
    }
    let core_group = if group == "extensions" { "apps" } else { group };
    suggest(kind, kinds_of(core_group))
        .filter(|s| *s != kind)
        .map(|s| {
            (
                "kind",
                format!("unknown kind `{kind}`: did you mean `{s}`?"),
            )
        })
}

/// Turns a serde error at `path` into a clear message and the path of the offending field.
fn explain_serde_error(path: &FieldPath, err: &str) -> (FieldPath, String) {
    let mut p = path.clone();
    // serde_json appends " at line X column Y" only for text input; we deserialize values.
    if let Some(rest) = err.strip_prefix("unknown field `") {
        let (field, tail) = rest.split_once('`').unwrap_or((rest, ""));
        // serde_path_to_error's path sometimes already ends at the unknown key.
        if p.0.last() != Some(&Seg::Field(field.to_string())) {
            p.push_field(field);
        }
        let expected: Vec<&str> = tail
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s)
            .collect();
        let mut msg = format!("unknown field `{field}`");
        if let Some(s) = suggest(field, expected.iter().copied()) {
            msg.push_str(&format!(": did you mean `{s}`?"));
        }
        if expected.is_empty() {
            msg.push_str(": this object takes no fields");
        } else {
            msg.push_str(&format!(" (valid fields here: {})", expected.join(", ")));
        }
        return (p, msg);
    }
    if let Some(rest) = err.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        p.push_field(field);
        return (p, format!("`{field}` is required"));
    }
    if let Some(rest) = err.strip_prefix("unknown variant `") {
        let (value, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> = tail
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s)
            .collect();
        let mut msg = format!("`{value}` is not a valid value");
        if let Some(s) = suggest(value, expected.iter().copied()) {
            msg.push_str(&format!(": did you mean `{s}`?"));
        }
        msg.push_str(&format!(" (valid values: {})", expected.join(", ")));
        return (p, msg);
    }
    if let Some(rest) = err.strip_prefix("invalid type: ") {
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return (
            p,
            format!(
                "wrong type: got {got}, expected {}",
                plain_expected(expected)
            ),
        );
    }
    if let Some(rest) = err.strip_prefix("invalid value: integer `") {
        let (value, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = tail.trim_start_matches(", expected ");
        return (
            p,
            format!(
                "{value} is out of range: expected {}",
                plain_expected(expected)
            ),
        );
    }
    (p, err.to_string())
}

/// serde's names for primitive types, in the words a YAML author uses.
fn plain_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a string" | "a borrowed string" => "a string".to_string(),
        "a boolean" => "true or false".to_string(),
        "a sequence" => "a list".to_string(),
        "a map" => "a mapping".to_string(),
        other => other.to_string(),
    }
}

fn serde_path(path: &serde_path_to_error::Path) -> FieldPath {
    let mut out = FieldPath::root();
    for seg in path.iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => out.push_index(*index),
            serde_path_to_error::Segment::Map { key } => out.push_field(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => out.push_field(variant.clone()),
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

fn strict<T: DeserializeOwned>(value: &Value) -> Result<T, (FieldPath, String)> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = serde_path(e.path());
        explain_serde_error(&path, &e.inner().to_string())
    })
}

/// Finds fields present in `written` but absent after a round trip through a type that
/// ignores unknown fields (the k8s-openapi types), so typos in Kubernetes objects are
/// caught as `kubectl apply` catches them.
fn unknown_fields(
    written: &Value,
    roundtrip: &Value,
    path: &mut FieldPath,
    out: &mut Vec<FieldPath>,
) {
    match (written, roundtrip) {
        (Value::Object(w), Value::Object(r)) => {
            for (k, wv) in w {
                path.push_field(k.clone());
                match r.get(k) {
                    Some(rv) => unknown_fields(wv, rv, path, out),
                    // Empty and null values are dropped by serializers; that is not a typo.
                    None if is_emptyish(wv) => {}
                    None => out.push(path.clone()),
                }
                path.pop();
            }
        }
        (Value::Array(w), Value::Array(r)) => {
            for (i, (wv, rv)) in w.iter().zip(r).enumerate() {
                path.push_index(i);
                unknown_fields(wv, rv, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn is_emptyish(v: &Value) -> bool {
    // `null` means "not set" and is dropped on the way back; anything else written survives
    // a round trip through a field the type knows.
    v.is_null()
}

struct DocCx<'a> {
    doc: &'a Document,
    resource: String,
    diags: &'a mut Vec<Diagnostic>,
    errors: bool,
}

impl DocCx<'_> {
    fn report(&mut self, severity: Severity, path: &FieldPath, message: impl Into<String>) {
        self.errors |= severity == Severity::Error;
        self.diags.push(
            Diagnostic::new(severity, message)
                .with_file(self.doc.file.to_string())
                .with_pos(Some(self.doc.pos_of(path)))
                .with_resource(self.resource.clone())
                .with_field(path.to_string()),
        );
    }
}

/// Reads one document: kind lookup, strict decoding, validation.
///
/// Every problem goes to `diags`; the resource is returned only if it has no error.
pub fn decode(doc: &Document, diags: &mut Vec<Diagnostic>) -> Decoded {
    let root = FieldPath::root();
    let at = |d: Diagnostic, path: &FieldPath| {
        d.with_file(doc.file.to_string())
            .with_pos(Some(doc.pos_of(path)))
    };
    let Value::Object(obj) = &doc.value else {
        diags.push(at(
            Diagnostic::error("a resource must be a mapping with apiVersion, kind and metadata"),
            &root,
        ));
        return Decoded::Rejected;
    };
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() || kind.is_empty() {
        let missing = if api_version.is_empty() {
            "apiVersion"
        } else {
            "kind"
        };
        diags.push(
            at(
                Diagnostic::error(format!(
                    "`{missing}` is required: every resource names its apiVersion and kind"
                )),
                &root,
            )
            .with_field(missing),
        );
        return Decoded::Rejected;
    }
    // `List` (as `kubectl get -o yaml` writes) is expanded by the loader, not here.
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    // Old Deployments lived in `extensions`.
    let lookup_group = if group == "extensions" && kind == "Deployment" {
        "apps"
    } else {
        group
    };
    let Some(info) = KindInfo::find(lookup_group, kind) else {
        if let Some((field, msg)) = unknown_kind_problem(group, kind) {
            diags.push(at(Diagnostic::error(msg), &FieldPath::parse(field)).with_field(field));
            return Decoded::Rejected;
        }
        diags.push(at(
            Diagnostic::info(format!(
                "skipped: weft does not read {kind} ({api_version})"
            )),
            &root,
        ));
        return Decoded::Skipped;
    };
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let ns = if info.namespaced {
        obj.get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
    } else {
        ""
    };
    let mut cx = DocCx {
        doc,
        resource: display_name(kind, ns, name),
        diags,
        errors: false,
    };
    let api_path = FieldPath::parse("apiVersion");
    if info
        .deprecated
        .iter()
        .any(|d| *d == version || *d == api_version)
    {
        cx.report(
            Severity::Warning,
            &api_path,
            format!(
                "apiVersion {api_version} is deprecated for {kind}; read as {} (update the file to {})",
                info.api_version(),
                info.api_version()
            ),
        );
    } else if !info.versions.contains(&version) || group != info.group {
        let served: Vec<String> = info
            .versions
            .iter()
            .map(|v| {
                if info.group.is_empty() {
                    v.to_string()
                } else {
                    format!("{}/{v}", info.group)
                }
            })
            .collect();
        cx.report(
            Severity::Error,
            &api_path,
            format!(
                "apiVersion {api_version} is not served for {kind}; use {}",
                served.join(" or ")
            ),
        );
        return Decoded::Rejected;
    }

    let decoded = if info.group.is_empty() || matches!(info.group, "apps" | "discovery.k8s.io") {
        decode_kube(info, &doc.value, &mut cx)
    } else {
        decode_crd(info, &doc.value, &mut cx)
    };
    let Some((meta, spec)) = decoded else {
        return Decoded::Rejected;
    };
    // Metadata rules every Kubernetes object follows.
    if meta.name.is_empty() && meta.generate_name.is_none() {
        cx.report(
            Severity::Error,
            &FieldPath::parse("metadata.name"),
            "`metadata.name` is required",
        );
    } else if !meta.name.is_empty() && !crate::validate::is_dns1123_subdomain(&meta.name) {
        cx.report(
            Severity::Error,
            &FieldPath::parse("metadata.name"),
            format!(
                "name `{}` is invalid: it must be lower-case letters, digits, '-' or '.', starting and ending with a letter or digit",
                meta.name
            ),
        );
    }
    if let Some(ns) = &meta.namespace
        && !crate::validate::is_dns1123_label(ns)
    {
        cx.report(
            Severity::Error,
            &FieldPath::parse("metadata.namespace"),
            format!("namespace `{ns}` is invalid: it must be a DNS-1123 label (lower-case letters, digits and '-')"),
        );
    }
    let mut vcx = Ctx::new("metadata", ns);
    vcx.field("labels", |vcx| {
        crate::validate::check_labels(vcx, &meta.labels)
    });
    let mut findings = vcx.into_findings();
    let mut vcx = Ctx::new("spec", ns);
    spec_validate(&spec, &mut vcx);
    findings.extend(vcx.into_findings());
    for f in findings {
        cx.report(f.severity, &f.path, f.message);
    }
    if cx.errors {
        return Decoded::Rejected;
    }
    Decoded::Resource(Box::new(Resource {
        kind: info,
        api_version: api_version.to_string(),
        meta,
        spec,
        raw: doc.value.clone(),
        origin: Origin {
            file: doc.file.clone(),
            index: doc.index,
            pos: doc.pos,
            positions: doc.positions.clone(),
        },
    }))
}

fn decode_crd(info: &KindInfo, value: &Value, cx: &mut DocCx<'_>) -> Option<(ObjectMeta, Spec)> {
    use kinds::*;
    fn go<S: DeserializeOwned>(
        value: &Value,
        cx: &mut DocCx<'_>,
        wrap: fn(S) -> Spec,
    ) -> Option<(ObjectMeta, Spec)> {
        match strict::<Object<S>>(value) {
            Ok(o) => match o.spec {
                Some(s) => Some((o.metadata, wrap(s))),
                None => {
                    cx.report(
                        Severity::Error,
                        &FieldPath::parse("spec"),
                        "`spec` is required",
                    );
                    None
                }
            },
            Err((path, msg)) => {
                cx.report(Severity::Error, &path, msg);
                None
            }
        }
    }
    let k = info as *const KindInfo;
    let is = |other: &KindInfo| std::ptr::eq(k, other);
    if is(&VIRTUAL_SERVICE) {
        go(value, cx, Spec::VirtualService)
    } else if is(&DESTINATION_RULE) {
        go(value, cx, Spec::DestinationRule)
    } else if is(&GATEWAY) {
        go(value, cx, Spec::Gateway)
    } else if is(&SERVICE_ENTRY) {
        go(value, cx, Spec::ServiceEntry)
    } else if is(&WORKLOAD_ENTRY) {
        go(value, cx, Spec::WorkloadEntry)
    } else if is(&WORKLOAD_GROUP) {
        go(value, cx, Spec::WorkloadGroup)
    } else if is(&SIDECAR) {
        go(value, cx, Spec::Sidecar)
    } else if is(&PEER_AUTHENTICATION) {
        go(value, cx, Spec::PeerAuthentication)
    } else if is(&AUTHORIZATION_POLICY) {
        go(value, cx, Spec::AuthorizationPolicy)
    } else if is(&REQUEST_AUTHENTICATION) {
        go(value, cx, Spec::RequestAuthentication)
    } else if is(&TELEMETRY) {
        go(value, cx, Spec::Telemetry)
    } else if is(&GATEWAY_CLASS) {
        go(value, cx, Spec::GatewayClass)
    } else if is(&K8S_GATEWAY) {
        go(value, cx, Spec::KubeGateway)
    } else if is(&HTTP_ROUTE) {
        go(value, cx, Spec::HttpRoute)
    } else if is(&GRPC_ROUTE) {
        go(value, cx, Spec::GrpcRoute)
    } else if is(&REFERENCE_GRANT) {
        go(value, cx, Spec::ReferenceGrant)
    } else if is(&TCP_ROUTE) {
        go(value, cx, Spec::TcpRoute)
    } else if is(&TLS_ROUTE) {
        go(value, cx, Spec::TlsRoute)
    } else {
        None
    }
}

fn decode_kube(info: &KindInfo, value: &Value, cx: &mut DocCx<'_>) -> Option<(ObjectMeta, Spec)> {
    use kinds::*;
    fn go<T: DeserializeOwned + Serialize>(
        value: &Value,
        cx: &mut DocCx<'_>,
        wrap: fn(Box<T>) -> Spec,
    ) -> Option<Spec> {
        let obj: T = match strict(value) {
            Ok(o) => o,
            Err((path, msg)) => {
                cx.report(Severity::Error, &path, msg);
                return None;
            }
        };
        let back = serde_json::to_value(&obj).unwrap_or(Value::Null);
        let mut unknown = Vec::new();
        unknown_fields(value, &back, &mut FieldPath::root(), &mut unknown);
        let mut ok = true;
        for path in unknown {
            if let Some(Seg::Field(f)) = path.0.last() {
                let f = f.clone();
                cx.report(Severity::Error, &path, format!("unknown field `{f}`"));
                ok = false;
            }
        }
        ok.then(|| wrap(Box::new(obj)))
    }
    // Strictly decode the metadata with our own type for the same typo checks as CRDs.
    let meta: ObjectMeta = match value.get("metadata") {
        None => ObjectMeta::default(),
        Some(m) => match strict::<ObjectMeta>(m) {
            Ok(m) => m,
            Err((mut path, msg)) => {
                path.0.insert(0, Seg::Field("metadata".into()));
                cx.report(Severity::Error, &path, msg);
                return None;
            }
        },
    };
    let k = info as *const KindInfo;
    let is = |other: &KindInfo| std::ptr::eq(k, other);
    let spec = if is(&NAMESPACE) {
        go(value, cx, Spec::Namespace)
    } else if is(&SERVICE) {
        go(value, cx, Spec::Service)
    } else if is(&ENDPOINTS) {
        go(value, cx, Spec::Endpoints)
    } else if is(&POD) {
        go(value, cx, Spec::Pod)
    } else if is(&ENDPOINT_SLICE) {
        let upgraded = kube::upgrade_endpoint_slice(value);
        go(&upgraded, cx, Spec::EndpointSlice)
    } else if is(&DEPLOYMENT) {
        let upgraded = kube::upgrade_deployment(value);
        go(&upgraded, cx, Spec::Deployment)
    } else {
        None
    }?;
    Some((meta, spec))
}

fn spec_validate(spec: &Spec, cx: &mut Ctx) {
    match spec {
        Spec::VirtualService(s) => s.validate(cx),
        Spec::DestinationRule(s) => s.validate(cx),
        Spec::Gateway(s) => s.validate(cx),
        Spec::ServiceEntry(s) => s.validate(cx),
        Spec::WorkloadEntry(s) => s.validate(cx),
        Spec::WorkloadGroup(s) => s.validate(cx),
        Spec::Sidecar(s) => s.validate(cx),
        Spec::PeerAuthentication(s) => s.validate(cx),
        Spec::AuthorizationPolicy(s) => s.validate(cx),
        Spec::RequestAuthentication(s) => s.validate(cx),
        Spec::Telemetry(s) => s.validate(cx),
        Spec::GatewayClass(s) => s.validate(cx),
        Spec::KubeGateway(s) => s.validate(cx),
        Spec::HttpRoute(s) => s.validate(cx),
        Spec::GrpcRoute(s) => s.validate(cx),
        Spec::ReferenceGrant(s) => s.validate(cx),
        Spec::TcpRoute(s) => s.validate(cx),
        Spec::TlsRoute(s) => s.validate(cx),
        Spec::Namespace(_) => {}
        Spec::Service(s) => kube::validate_service(s, cx),
        Spec::Endpoints(s) => kube::validate_endpoints(s, cx),
        Spec::Pod(s) => kube::validate_pod(s, cx),
        Spec::EndpointSlice(s) => kube::validate_endpoint_slice(s, cx),
        Spec::Deployment(s) => kube::validate_deployment(s, cx),
    }
}
