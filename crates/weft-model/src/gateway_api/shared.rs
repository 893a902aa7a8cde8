//! Types and checks that every Gateway API kind shares: object references, parent and
//! backend references, hostnames, header names, label selectors and GEP-2257 durations.
//!
//! Field lists follow `sigs.k8s.io/gateway-api/apis/v1` (`shared_types.go`,
//! `object_reference_types.go`); the checks are the CRD's OpenAPI patterns and CEL rules.

use crate::common::Duration;
use crate::validate::{
    Ctx, Validate, check_max_items, is_dns1123_label, is_dns1123_subdomain, label_key_problem,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------

/// A reference from a route to the object it attaches to (usually a Gateway, or a
/// Service for mesh routes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentReference {
    /// API group of the parent; `gateway.networking.k8s.io` when unset, `""` for a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the parent; `Gateway` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace of the parent; the route's own namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the parent (required).
    #[serde(default)]
    pub name: String,
    /// A listener name (Gateway) or port name (Service) within the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// The listener port (Gateway) or service port (Service) the route targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

impl ParentReference {
    /// The parent's group with the default applied.
    pub fn group_or_default(&self) -> &str {
        self.group.as_deref().unwrap_or(GATEWAY_GROUP)
    }

    /// The parent's kind with the default applied.
    pub fn kind_or_default(&self) -> &str {
        self.kind.as_deref().unwrap_or("Gateway")
    }
}

/// The Gateway API group name.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

impl Validate for ParentReference {
    fn validate(&self, cx: &mut Ctx) {
        opt_check(cx, "group", &self.group, check_group);
        opt_check(cx, "kind", &self.kind, check_kind);
        opt_check(cx, "namespace", &self.namespace, check_namespace);
        check_required_name(cx, "name", &self.name);
        opt_check(cx, "sectionName", &self.section_name, check_section_name);
        opt_port(cx, "port", self.port);
    }
}

/// The fields every route kind shares (`CommonRouteSpec`): its parents.
pub(crate) fn validate_parent_refs(cx: &mut Ctx, refs: &[ParentReference]) {
    check_max_items(cx, "parentRefs", refs.len(), 32);
    cx.list("parentRefs", refs);
    // Two references to the same parent must be told apart by sectionName (or port), and
    // each must be different: the CRD's CEL rules and the webhook's ValidateParentRefs.
    let key = |p: &ParentReference| {
        (
            p.group_or_default().to_string(),
            p.kind_or_default().to_string(),
            p.namespace.clone().unwrap_or_default(),
            p.name.clone(),
        )
    };
    // (group, kind, namespace, name) -> earlier references: (index, sectionName, port).
    type ParentKey = (String, String, String, String);
    type Earlier<'a> = Vec<(usize, Option<&'a str>, Option<u32>)>;
    let mut seen: BTreeMap<ParentKey, Earlier> = BTreeMap::new();
    for (i, p) in refs.iter().enumerate() {
        let section = p.section_name.as_deref().filter(|s| !s.is_empty());
        let port = p.port.filter(|p| *p != 0);
        let k = key(p);
        let others = seen.entry(k).or_default();
        for (j, s2, p2) in others.iter() {
            let this_bare = section.is_none() && port.is_none();
            let other_bare = s2.is_none() && p2.is_none();
            if this_bare || other_bare {
                cx.field("parentRefs", |cx| {
                    cx.index(i, |cx| {
                        cx.error(format!(
                            "parentRefs[{j}] and parentRefs[{i}] both refer to {} `{}`: when a route names the same parent more than once, each reference must set `sectionName` (or `port`)",
                            p.kind_or_default(),
                            p.name
                        ))
                    })
                });
            } else if *s2 == section && *p2 == port {
                cx.field("parentRefs", |cx| {
                    cx.index(i, |cx| {
                        let what = match (section, port) {
                            (Some(s), _) => format!("sectionName `{s}`"),
                            (None, Some(p)) => format!("port {p}"),
                            _ => String::new(),
                        };
                        let field = if section.is_some() { "sectionName" } else { "port" };
                        cx.error_at(
                            field,
                            format!(
                                "parentRefs[{j}] already refers to {} `{}` with {what}: references to the same parent must be unique",
                                p.kind_or_default(),
                                p.name
                            ),
                        )
                    })
                });
            }
        }
        others.push((i, section, port));
    }
}

/// A reference to a backend: by default a Service in the route's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendObjectReference {
    /// API group of the backend; `""` (the core group) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the backend; `Service` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the backend (required).
    #[serde(default)]
    pub name: String,
    /// Namespace of the backend; the route's namespace when unset (a ReferenceGrant is
    /// needed for another namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Destination port; the Service port (not the target port) for a Service backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

impl BackendObjectReference {
    /// True when this refers to a core `Service` (the defaults), which needs a port.
    pub fn is_service(&self) -> bool {
        self.group.as_deref().unwrap_or("").is_empty()
            && self.kind.as_deref().unwrap_or("Service") == "Service"
    }
}

impl Validate for BackendObjectReference {
    fn validate(&self, cx: &mut Ctx) {
        opt_check(cx, "group", &self.group, check_group);
        opt_check(cx, "kind", &self.kind, check_kind);
        check_required_name(cx, "name", &self.name);
        opt_check(cx, "namespace", &self.namespace, check_namespace);
        opt_port(cx, "port", self.port);
        if self.is_service() && self.port.is_none() {
            cx.error_at(
                "port",
                format!(
                    "`port` is required for a Service backend: name the Service port to send to (Service `{}`)",
                    self.name
                ),
            );
        }
    }
}

/// A backend with a traffic weight (TCPRoute and TLSRoute backends).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRef {
    /// API group of the backend; `""` (the core group) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the backend; `Service` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the backend (required).
    #[serde(default)]
    pub name: String,
    /// Namespace of the backend; the route's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Destination port; the Service port for a Service backend (required then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Share of connections for this backend: weight / sum of weights (default 1; 0 sends none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// Backend references of every route kind carry the same object fields; this gives them
/// one view.
macro_rules! backend_object_ref {
    ($t:ty) => {
        impl $t {
            /// The referenced object (group, kind, name, namespace, port).
            pub fn object_ref(&self) -> $crate::gateway_api::BackendObjectReference {
                $crate::gateway_api::BackendObjectReference {
                    group: self.group.clone(),
                    kind: self.kind.clone(),
                    name: self.name.clone(),
                    namespace: self.namespace.clone(),
                    port: self.port,
                }
            }
        }
    };
}
pub(crate) use backend_object_ref;

backend_object_ref!(BackendRef);

impl Validate for BackendRef {
    fn validate(&self, cx: &mut Ctx) {
        self.object_ref().validate(cx);
        check_weight(cx, self.weight);
    }
}

/// Weights are 0..=1,000,000.
pub(crate) fn check_weight(cx: &mut Ctx, weight: Option<i32>) {
    if let Some(w) = weight {
        if w < 0 {
            cx.error_at(
                "weight",
                format!("weight {w} is negative: weights must be between 0 and 1000000"),
            );
        } else if w > 1_000_000 {
            cx.error_at(
                "weight",
                format!("weight {w} is too large: weights must be between 0 and 1000000"),
            );
        }
    }
}

/// A reference to an object in the referrer's namespace (filter extensions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectReference {
    /// API group of the referent; the core group when unset or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the referent (required).
    #[serde(default)]
    pub kind: String,
    /// Name of the referent (required).
    #[serde(default)]
    pub name: String,
}

impl Validate for LocalObjectReference {
    fn validate(&self, cx: &mut Ctx) {
        opt_check(cx, "group", &self.group, check_group);
        check_required_kind(cx, "kind", &self.kind);
        check_required_name(cx, "name", &self.name);
    }
}

/// A reference to a Secret (or another object holding a certificate), possibly in another
/// namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretObjectReference {
    /// API group of the referent; the core group when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the referent; `Secret` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the referent (required).
    #[serde(default)]
    pub name: String,
    /// Namespace of the referent; the local namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl Validate for SecretObjectReference {
    fn validate(&self, cx: &mut Ctx) {
        opt_check(cx, "group", &self.group, check_group);
        opt_check(cx, "kind", &self.kind, check_kind);
        check_required_name(cx, "name", &self.name);
        opt_check(cx, "namespace", &self.namespace, check_namespace);
    }
}

/// A reference to any object (CA certificate ConfigMaps, ...), with its namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectReference {
    /// API group of the referent (required; `""` for the core group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the referent (required), e.g. `ConfigMap`.
    #[serde(default)]
    pub kind: String,
    /// Name of the referent (required).
    #[serde(default)]
    pub name: String,
    /// Namespace of the referent; the local namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl Validate for ObjectReference {
    fn validate(&self, cx: &mut Ctx) {
        check_required_group(cx, "group", &self.group);
        check_required_kind(cx, "kind", &self.kind);
        check_required_name(cx, "name", &self.name);
        opt_check(cx, "namespace", &self.namespace, check_namespace);
    }
}

// ---------------------------------------------------------------------------------------
// Label selectors (metav1.LabelSelector), as used by allowedRoutes and allowedListeners
// ---------------------------------------------------------------------------------------

/// A Kubernetes label selector: all `matchLabels` and all `matchExpressions` must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must be present with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One set-based requirement: `key` `operator` `values`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// The label key the requirement applies to.
    #[serde(default)]
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<SelectorOperator>,
    /// Values for `In` and `NotIn` (must be empty for `Exists` and `DoesNotExist`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A label selector operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectorOperator {
    /// The label's value is one of `values`.
    #[default]
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl LabelSelector {
    /// True when `labels` satisfy the selector. An empty selector matches everything.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        crate::common::selector_matches(&self.match_labels, labels)
            && self.match_expressions.iter().all(|e| {
                let v = labels.get(&e.key);
                match e.operator.unwrap_or_default() {
                    SelectorOperator::In => v.is_some_and(|v| e.values.contains(v)),
                    SelectorOperator::NotIn => v.is_none_or(|v| !e.values.contains(v)),
                    SelectorOperator::Exists => v.is_some(),
                    SelectorOperator::DoesNotExist => v.is_none(),
                }
            })
    }
}

impl Validate for LabelSelector {
    fn validate(&self, cx: &mut Ctx) {
        cx.field("matchLabels", |cx| {
            crate::validate::check_labels(cx, &self.match_labels)
        });
        cx.each("matchExpressions", &self.match_expressions, |cx, _, e| {
            if e.key.is_empty() {
                cx.require("key", false);
            } else if let Some(p) = label_key_problem(&e.key) {
                cx.error_at("key", p);
            }
            match e.operator {
                None => cx.require("operator", false),
                Some(op @ (SelectorOperator::In | SelectorOperator::NotIn)) => {
                    if e.values.is_empty() {
                        cx.error_at(
                            "values",
                            format!("operator {op:?} needs at least one value"),
                        );
                    }
                }
                Some(op) => {
                    if !e.values.is_empty() {
                        cx.error_at("values", format!("operator {op:?} takes no values"));
                    }
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------------------
// Durations (GEP-2257)
// ---------------------------------------------------------------------------------------

/// Why `s` is not a Gateway API duration (GEP-2257: `^([0-9]{1,5}(h|m|s|ms)){1,4}$`).
pub fn gep2257_problem(s: &str) -> Option<String> {
    let bad = || {
        Some(format!(
            "duration `{s}` is not a Gateway API duration: write 1 to 4 groups of up to 5 digits, each followed by h, m, s or ms, such as 10s, 500ms or 1h30m (GEP-2257)"
        ))
    };
    let b = s.as_bytes();
    let mut i = 0;
    let mut groups = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || digits > 5 {
            return bad();
        }
        if b[i..].starts_with(b"ms") {
            i += 2;
        } else if i < b.len() && matches!(b[i], b'h' | b'm' | b's') {
            i += 1;
        } else {
            return bad();
        }
        groups += 1;
    }
    if groups == 0 || groups > 4 {
        return bad();
    }
    None
}

/// Deserializes an optional GEP-2257 duration (`10s`, `500ms`, `1h30m`).
pub(crate) fn de_gep2257<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<Duration>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a Gateway API duration such as 10s, 500ms or 1h30m")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            if let Some(p) = gep2257_problem(s) {
                return Err(E::custom(p));
            }
            Duration::parse(s).map(Some).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Err(E::custom(format!(
                "duration `{n}` is missing a unit: write it as {n}s or {n}ms"
            )))
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
            Err(E::custom(format!("duration `{n}` is missing a unit")))
        }
        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
            Err(E::custom(format!(
                "duration `{n}` is not a Gateway API duration: write whole numbers with a unit, such as 1500ms"
            )))
        }
    }
    d.deserialize_any(V)
}

// ---------------------------------------------------------------------------------------
// String formats
// ---------------------------------------------------------------------------------------

/// Runs `check` on an optional field, under its name.
pub(crate) fn opt_check(cx: &mut Ctx, name: &str, v: &Option<String>, check: fn(&mut Ctx, &str)) {
    if let Some(v) = v {
        cx.field(name, |cx| check(cx, v));
    }
}

/// An optional port: 1..=65535.
pub(crate) fn opt_port(cx: &mut Ctx, name: &str, port: Option<u32>) {
    if let Some(p) = port {
        cx.field(name, |cx| crate::validate::check_port(cx, p));
    }
}

/// A required object name (`ObjectName`: 1..=253 characters).
pub(crate) fn check_required_name(cx: &mut Ctx, name: &str, v: &str) {
    if v.is_empty() {
        cx.require(name, false);
    } else if v.len() > 253 {
        cx.error_at(name, format!("name `{v}` is longer than 253 characters"));
    }
}

/// A required kind.
pub(crate) fn check_required_kind(cx: &mut Ctx, name: &str, v: &str) {
    if v.is_empty() {
        cx.require(name, false);
    } else {
        cx.field(name, |cx| check_kind(cx, v));
    }
}

/// A required group (which may be `""`, the core group, but must be written).
pub(crate) fn check_required_group(cx: &mut Ctx, name: &str, v: &Option<String>) {
    match v {
        None => cx.error_at(
            name,
            format!("`{name}` is required (write `\"\"` for the Kubernetes core group)"),
        ),
        Some(g) => cx.field(name, |cx| check_group(cx, g)),
    }
}

/// A `Group`: empty (core) or a DNS subdomain.
pub(crate) fn check_group(cx: &mut Ctx, g: &str) {
    if !g.is_empty() && !is_dns1123_subdomain(g) {
        cx.error(format!(
            "group `{g}` is invalid: it must be empty (the core group) or a lower-case DNS subdomain such as gateway.networking.k8s.io"
        ));
    }
}

/// A `Kind`: a letter, then letters, digits or `-`, at most 63 characters.
pub(crate) fn check_kind(cx: &mut Ctx, k: &str) {
    let b = k.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[b.len() - 1].is_ascii_alphanumeric();
    if !ok {
        cx.error(format!(
            "kind `{k}` is invalid: it must start with a letter and contain only letters, digits and '-' (at most 63 characters)"
        ));
    }
}

/// A `Namespace`: a DNS-1123 label.
pub(crate) fn check_namespace(cx: &mut Ctx, ns: &str) {
    if !is_dns1123_label(ns) {
        cx.error(format!(
            "namespace `{ns}` is invalid: it must be a DNS label (lower-case letters, digits and '-', at most 63 characters)"
        ));
    }
}

/// A `SectionName` (listener, rule or port name): a DNS-1123 subdomain.
pub(crate) fn check_section_name(cx: &mut Ctx, s: &str) {
    if !is_dns1123_subdomain(s) {
        cx.error(format!(
            "name `{s}` is invalid: it must be lower-case letters, digits, '-' or '.', starting and ending with a letter or digit"
        ));
    }
}

/// Why `h` is not a Gateway API `Hostname` (or `PreciseHostname` when `wildcard` is false).
///
/// Lower-case RFC 1123 names, at most 253 characters, no IP addresses; a wildcard only as
/// the whole first label (`*.example.com`).
pub fn hostname_problem(h: &str, wildcard: bool) -> Option<String> {
    if h.is_empty() {
        return Some("hostname must not be empty".into());
    }
    if h.len() > 253 {
        return Some(format!("hostname `{h}` is longer than 253 characters"));
    }
    if h.parse::<std::net::IpAddr>().is_ok() {
        return Some(format!(
            "hostname `{h}` is an IP address: Gateway API hostnames must be DNS names"
        ));
    }
    let rest = match h.strip_prefix("*.") {
        Some(r) if wildcard => r,
        Some(_) => {
            return Some(format!(
                "hostname `{h}` must not contain a wildcard here: give a precise name"
            ));
        }
        None => h,
    };
    if rest.contains('*') {
        return Some(if wildcard {
            format!(
                "hostname `{h}` has a wildcard in the wrong place: `*` may only be the whole first label, as in `*.example.com`"
            )
        } else {
            format!("hostname `{h}` must not contain a wildcard here: give a precise name")
        });
    }
    if rest.ends_with('.') {
        return Some(format!("hostname `{h}` must not end with a dot"));
    }
    if rest.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(format!(
            "hostname `{h}` must be lower case (`{}`)",
            h.to_ascii_lowercase()
        ));
    }
    for label in rest.split('.') {
        if !is_dns1123_label(label) {
            return Some(format!(
                "hostname `{h}` is not a valid DNS name: label `{label}` must be 1-63 lower-case letters, digits or '-', not starting or ending with '-'"
            ));
        }
    }
    None
}

/// A `Hostname`, wildcard allowed.
pub(crate) fn check_hostname(cx: &mut Ctx, h: &str) {
    if let Some(p) = hostname_problem(h, true) {
        cx.error(p);
    }
}

/// A `PreciseHostname`: no wildcard.
pub(crate) fn check_precise_hostname(cx: &mut Ctx, h: &str) {
    if let Some(p) = hostname_problem(h, false) {
        cx.error(p);
    }
}

/// Route `hostnames`: at most `max`, each a valid `Hostname`.
pub(crate) fn check_route_hostnames(cx: &mut Ctx, hostnames: &[String], max: usize) {
    check_max_items(cx, "hostnames", hostnames.len(), max);
    cx.each("hostnames", hostnames, |cx, _, h| check_hostname(cx, h));
}

/// An HTTP header (or query parameter) name: 1..=256 RFC 7230 token characters.
pub(crate) fn header_name_problem(name: &str, what: &str) -> Option<String> {
    if name.is_empty() {
        return Some(format!("{what} name must not be empty"));
    }
    if name.len() > 256 {
        return Some(format!(
            "{what} name `{name}` is longer than 256 characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(*c)))
    {
        let hint = if c == ':' {
            " (HTTP/2 pseudo-headers such as `:authority` cannot be used here)"
        } else {
            ""
        };
        return Some(format!(
            "{what} name `{name}` contains `{c}`: only letters, digits and !#$%&'*+-.^_`|~ are allowed{hint}"
        ));
    }
    None
}

/// A required header name at `name`.
pub(crate) fn check_header_name(cx: &mut Ctx, name: &str, v: &str, what: &str) {
    if v.is_empty() {
        cx.require(name, false);
    } else if let Some(p) = header_name_problem(v, what) {
        cx.error_at(name, p);
    }
}

/// A string value with a length range, required when `min` > 0.
pub(crate) fn check_len(cx: &mut Ctx, name: &str, v: &str, min: usize, max: usize) {
    if v.len() < min {
        if v.is_empty() {
            cx.require(name, false);
        } else {
            cx.error_at(name, format!("`{name}` must be at least {min} characters"));
        }
    } else if v.len() > max {
        cx.error_at(
            name,
            format!(
                "`{name}` is {} characters long; at most {max} are allowed",
                v.len()
            ),
        );
    }
}

/// Map keys that must be Kubernetes qualified names (`example.com/option`), with a limit.
pub(crate) fn check_qualified_keys(
    cx: &mut Ctx,
    name: &str,
    map: &BTreeMap<String, String>,
    max: usize,
    value_max: usize,
) {
    if map.len() > max {
        cx.error_at(
            name,
            format!(
                "`{name}` has {} entries; at most {max} are allowed",
                map.len()
            ),
        );
    }
    cx.field(name, |cx| {
        for (k, v) in map {
            cx.field(k, |cx| {
                if let Some(p) = label_key_problem(k) {
                    cx.error(p.replacen("label key", "key", 1));
                } else if v.len() > value_max {
                    cx.error(format!(
                        "value is {} characters long; at most {value_max} are allowed",
                        v.len()
                    ));
                }
            });
        }
    });
}

/// Reports list entries whose `key` repeats an earlier one (a CRD `listMapKey`).
pub(crate) fn check_unique<'a>(
    cx: &mut Ctx,
    list: &str,
    field: &str,
    keys: impl IntoIterator<Item = &'a str>,
    fold_case: bool,
    what: &str,
) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let keys: Vec<&str> = keys.into_iter().collect();
    cx.field(list, |cx| {
        for (i, k) in keys.iter().enumerate() {
            if k.is_empty() {
                continue;
            }
            let norm = if fold_case { k.to_ascii_lowercase() } else { k.to_string() };
            if let Some(first) = seen.get(&norm) {
                cx.index(i, |cx| {
                    cx.error_at(field, format!("{what} `{k}` is repeated (first at {list}[{first}]): each must be unique"))
                });
            } else {
                seen.insert(norm, i);
            }
        }
    });
}

/// A list used as a set where `*` must stand alone (CORS lists).
pub(crate) fn check_wildcard_alone(cx: &mut Ctx, name: &str, items: &[String]) {
    if items.len() > 1 && items.iter().any(|s| s == "*") {
        cx.error_at(
            name,
            format!("`{name}` contains `*` alongside other entries: `*` must stand alone"),
        );
    }
    let mut seen = BTreeSet::new();
    cx.field(name, |cx| {
        for (i, s) in items.iter().enumerate() {
            if !seen.insert(s.as_str()) {
                cx.index(i, |cx| cx.error(format!("`{s}` is listed twice")));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for ok in ["10s", "500ms", "1h", "1h30m", "0s", "99999ms", "1h2m3s4ms"] {
            assert_eq!(gep2257_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "1.5s",
            "10",
            "100000s",
            "1d",
            "1h2m3s4ms5s",
            "-1s",
            "1us",
        ] {
            assert!(gep2257_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn hostnames() {
        for ok in [
            "example.com",
            "*.example.com",
            "foo-bar.example.com",
            "localhost",
        ] {
            assert_eq!(hostname_problem(ok, true), None, "{ok}");
        }
        for bad in [
            "",
            "Example.com",
            "1.2.3.4",
            "::1",
            "foo.*.com",
            "*foo.com",
            "foo.com.",
            "-a.com",
            "a_b.com",
        ] {
            assert!(hostname_problem(bad, true).is_some(), "{bad}");
        }
        assert!(hostname_problem("*.example.com", false).is_some());
    }

    #[test]
    fn header_names() {
        assert_eq!(header_name_problem("X-Forwarded-For", "header"), None);
        assert!(
            header_name_problem(":authority", "header")
                .unwrap()
                .contains("pseudo-headers")
        );
        assert!(header_name_problem("a b", "header").is_some());
    }

    #[test]
    fn selectors() {
        let sel = LabelSelector {
            match_labels: [("app".to_string(), "reviews".to_string())].into(),
            match_expressions: vec![LabelSelectorRequirement {
                key: "version".into(),
                operator: Some(SelectorOperator::In),
                values: vec!["v1".into(), "v2".into()],
            }],
        };
        let labels = |v: &str| -> BTreeMap<String, String> {
            [
                ("app".to_string(), "reviews".to_string()),
                ("version".to_string(), v.to_string()),
            ]
            .into()
        };
        assert!(sel.matches(&labels("v1")));
        assert!(!sel.matches(&labels("v3")));
    }
}
