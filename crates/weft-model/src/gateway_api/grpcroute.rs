//! GRPCRoute (`gateway.networking.k8s.io/v1`), following `apis/v1/grpcroute_types.go`.

use super::gateway::GatewayDefaultScope;
use super::httproute::check_route_spec;
use super::httproute::{
    HttpHeaderFilter, HttpRequestMirrorFilter, SessionPersistence, check_filter_union,
};
use super::shared::*;
use crate::validate::{Ctx, Validate, check_max_items, check_regex};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Routes gRPC requests by host, service, method and headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteSpec {
    /// Gateways (or Services) the route attaches to (at most 32).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentReference>,
    /// Asks to be attached to default Gateways of this scope (experimental, GEP-3793).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_default_gateway: Option<GatewayDefaultScope>,
    /// Host (authority) values to match (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Matching rules, filters and backends (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<GrpcRouteRule>,
}

/// One gRPC rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteRule {
    /// Rule name, unique within the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Conditions, any of which selects the rule (at most 8; every request when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<GrpcRouteMatch>,
    /// Processing applied to matching requests (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<GrpcRouteFilter>,
    /// Where matching requests are sent (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<GrpcBackendRef>,
    /// Session persistence (experimental).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_persistence: Option<SessionPersistence>,
}

/// A gRPC request predicate; all given conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteMatch {
    /// Service and/or method condition; all when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<GrpcMethodMatch>,
    /// Header (metadata) conditions (at most 16, names unique ignoring case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<GrpcHeaderMatch>,
}

/// A service/method condition; at least one of them must be given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcMethodMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<GrpcMethodMatchType>,
    /// Fully qualified service, e.g. `helloworld.Greeter`; any when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Method, e.g. `SayHello`; any when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// How a gRPC service or method is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrpcMethodMatchType {
    #[default]
    Exact,
    RegularExpression,
}

/// A gRPC header condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcHeaderMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<GrpcHeaderMatchType>,
    /// Header name, matched case-insensitively (required).
    #[serde(default)]
    pub name: String,
    /// Value to match (required, 1 to 4096 characters).
    #[serde(default)]
    pub value: String,
}

/// How a gRPC header value is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrpcHeaderMatchType {
    #[default]
    Exact,
    RegularExpression,
}

/// A gRPC processing step; `type` says which of the other fields is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteFilter {
    /// The filter type (required).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<GrpcRouteFilterType>,
    /// Adds, sets or removes request headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_modifier: Option<HttpHeaderFilter>,
    /// Adds, sets or removes response headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header_modifier: Option<HttpHeaderFilter>,
    /// Sends a copy of requests to another backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_mirror: Option<HttpRequestMirrorFilter>,
    /// An implementation-specific filter object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_ref: Option<LocalObjectReference>,
}

/// The GRPCRoute filter types.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum GrpcRouteFilterType {
    /// Edits request headers (`requestHeaderModifier`).
    #[default]
    RequestHeaderModifier,
    /// Edits response headers (`responseHeaderModifier`).
    ResponseHeaderModifier,
    /// Mirrors requests (`requestMirror`); may be repeated.
    RequestMirror,
    /// An implementation-specific filter (`extensionRef`); may be repeated.
    ExtensionRef,
}

impl GrpcRouteFilterType {
    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestHeaderModifier => "RequestHeaderModifier",
            Self::ResponseHeaderModifier => "ResponseHeaderModifier",
            Self::RequestMirror => "RequestMirror",
            Self::ExtensionRef => "ExtensionRef",
        }
    }
}

/// A backend for a gRPC rule, with its own filters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcBackendRef {
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
    /// Share of requests: weight / sum of weights (default 1; 0 sends none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Filters applied only to requests sent to this backend (at most 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<GrpcRouteFilter>,
}

backend_object_ref!(GrpcBackendRef);

impl Validate for GrpcRouteSpec {
    fn validate(&self, cx: &mut Ctx) {
        check_route_spec(
            cx,
            &self.parent_refs,
            &self.hostnames,
            self.rules
                .iter()
                .map(|r| (r.name.as_deref(), r.matches.len())),
        );
        cx.list("rules", &self.rules);
    }
}

impl Validate for GrpcRouteRule {
    fn validate(&self, cx: &mut Ctx) {
        opt_check(cx, "name", &self.name, check_section_name);
        check_max_items(cx, "matches", self.matches.len(), 8);
        cx.list("matches", &self.matches);
        validate_grpc_filters(cx, &self.filters);
        check_max_items(cx, "backendRefs", self.backend_refs.len(), 16);
        cx.each("backendRefs", &self.backend_refs, |cx, _, b| {
            b.object_ref().validate(cx);
            check_weight(cx, b.weight);
            validate_grpc_filters(cx, &b.filters);
        });
        cx.opt("sessionPersistence", &self.session_persistence);
    }
}

/// A fully qualified gRPC service name (`^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$`).
fn is_grpc_service(s: &str) -> bool {
    let s = s.strip_prefix('.').unwrap_or(s);
    !s.is_empty() && s.split('.').all(is_grpc_ident)
}

/// A gRPC identifier (`^[A-Za-z_][A-Za-z_0-9]*$`).
fn is_grpc_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl Validate for GrpcRouteMatch {
    fn validate(&self, cx: &mut Ctx) {
        if let Some(m) = &self.method {
            cx.field("method", |cx| {
                let service = m.service.as_deref();
                let method = m.method.as_deref();
                if service.is_none() && method.is_none() {
                    cx.error("one or both of `service` and `method` must be set");
                }
                for (name, v) in [("service", service), ("method", method)] {
                    if let Some(v) = v
                        && v.len() > 1024
                    {
                        cx.error_at(name, format!("`{name}` is {} characters long; at most 1024 are allowed", v.len()));
                    }
                }
                match m.type_.unwrap_or_default() {
                    GrpcMethodMatchType::Exact => {
                        if let Some(s) = service
                            && !is_grpc_service(s)
                        {
                            let hint = if s.contains('/') { ": give the service and the method separately" } else { "" };
                            cx.error_at(
                                "service",
                                format!(
                                    "service `{s}` is not a gRPC service name: write dot-separated identifiers such as `helloworld.Greeter`{hint}"
                                ),
                            );
                        }
                        if let Some(mm) = method
                            && !is_grpc_ident(mm)
                        {
                            cx.error_at(
                                "method",
                                format!("method `{mm}` is not a gRPC method name: write an identifier such as `SayHello`"),
                            );
                        }
                    }
                    GrpcMethodMatchType::RegularExpression => {
                        if let Some(s) = service {
                            cx.field("service", |cx| check_regex(cx, s));
                        }
                        if let Some(mm) = method {
                            cx.field("method", |cx| check_regex(cx, mm));
                        }
                    }
                }
            });
        }
        check_max_items(cx, "headers", self.headers.len(), 16);
        check_unique(
            cx,
            "headers",
            "name",
            self.headers.iter().map(|h| h.name.as_str()),
            true,
            "header",
        );
        cx.each("headers", &self.headers, |cx, _, h| {
            check_header_name(cx, "name", &h.name, "header");
            check_len(cx, "value", &h.value, 1, 4096);
            if h.type_ == Some(GrpcHeaderMatchType::RegularExpression) {
                cx.field("value", |cx| check_regex(cx, &h.value));
            }
        });
    }
}

fn validate_grpc_filters(cx: &mut Ctx, filters: &[GrpcRouteFilter]) {
    use GrpcRouteFilterType as T;
    check_max_items(cx, "filters", filters.len(), 16);
    let mut first: BTreeMap<T, usize> = BTreeMap::new();
    cx.field("filters", |cx| {
        for (i, f) in filters.iter().enumerate() {
            let Some(t) = f.type_ else { continue };
            let repeatable = matches!(t, T::RequestMirror | T::ExtensionRef);
            match first.get(&t) {
                Some(j) if !repeatable => cx.index(i, |cx| {
                    cx.error_at(
                        "type",
                        format!(
                            "a {} filter is already used at filters[{j}]: it cannot be repeated",
                            t.as_str()
                        ),
                    )
                }),
                Some(_) => {}
                None => {
                    first.insert(t, i);
                }
            }
        }
    });
    cx.each("filters", filters, |cx, _, f| {
        let fields = [
            (
                "requestHeaderModifier",
                T::RequestHeaderModifier,
                f.request_header_modifier.is_some(),
            ),
            (
                "responseHeaderModifier",
                T::ResponseHeaderModifier,
                f.response_header_modifier.is_some(),
            ),
            (
                "requestMirror",
                T::RequestMirror,
                f.request_mirror.is_some(),
            ),
            ("extensionRef", T::ExtensionRef, f.extension_ref.is_some()),
        ];
        check_filter_union(
            cx,
            f.type_.map(T::as_str),
            &fields.map(|(field, t, set)| (field, t.as_str(), set)),
        );
        cx.opt("requestHeaderModifier", &f.request_header_modifier);
        cx.opt("responseHeaderModifier", &f.response_header_modifier);
        cx.opt("requestMirror", &f.request_mirror);
        cx.opt("extensionRef", &f.extension_ref);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_grpc_service("helloworld.Greeter"));
        assert!(is_grpc_service(".grpc.health.v1.Health"));
        assert!(!is_grpc_service("helloworld.Greeter/SayHello"));
        assert!(!is_grpc_service("1abc"));
        assert!(is_grpc_ident("SayHello"));
        assert!(!is_grpc_ident("Say-Hello"));
    }
}
