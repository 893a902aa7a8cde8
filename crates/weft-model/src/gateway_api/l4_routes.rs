//! TCPRoute and TLSRoute (`gateway.networking.k8s.io/v1alpha2`, experimental channel),
//! following `apis/v1alpha2/tcproute_types.go` and `apis/v1alpha2/tlsroute_types.go`.

use super::gateway::GatewayDefaultScope;
use super::shared::*;
use crate::validate::{Ctx, Validate, check_max_items};
use serde::{Deserialize, Serialize};

/// Forwards TCP connections from a listener to backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRouteSpec {
    /// Gateways (or Services) the route attaches to (at most 32).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentReference>,
    /// Asks to be attached to default Gateways of this scope (experimental, GEP-3793).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_default_gateway: Option<GatewayDefaultScope>,
    /// Rules (1 to 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<TcpRouteRule>,
}

/// One TCP rule: where connections go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRouteRule {
    /// Rule name, unique within the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Backends, weighted (1 to 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<BackendRef>,
}

/// Forwards TLS connections by SNI from a listener to backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsRouteSpec {
    /// Gateways (or Services) the route attaches to (at most 32).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentReference>,
    /// Asks to be attached to default Gateways of this scope (experimental, GEP-3793).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_default_gateway: Option<GatewayDefaultScope>,
    /// SNI names to match (at most 16; `*.` wildcard prefix allowed, no IPs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Rules (1 to 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<TlsRouteRule>,
}

/// One TLS rule: where connections go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsRouteRule {
    /// Rule name, unique within the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Backends, weighted (1 to 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<BackendRef>,
}

/// Rules of an L4 route: 1 to 16, names unique, each with 1 to 16 backends.
fn validate_l4_rules<'a>(
    cx: &mut Ctx,
    rules: impl ExactSizeIterator<Item = (&'a Option<String>, &'a [BackendRef])> + Clone,
) {
    if rules.len() == 0 {
        cx.error_at(
            "rules",
            "`rules` is required: a route needs at least one rule with backendRefs",
        );
    }
    check_max_items(cx, "rules", rules.len(), 16);
    check_unique(
        cx,
        "rules",
        "name",
        rules.clone().map(|r| r.0.as_deref().unwrap_or("")),
        false,
        "rule name",
    );
    cx.field("rules", |cx| {
        for (i, (name, backends)) in rules.enumerate() {
            cx.index(i, |cx| {
                opt_check(cx, "name", name, check_section_name);
                if backends.is_empty() {
                    cx.error_at(
                        "backendRefs",
                        "`backendRefs` is required: list at least one backend",
                    );
                }
                check_max_items(cx, "backendRefs", backends.len(), 16);
                cx.list("backendRefs", backends);
            });
        }
    });
}

impl Validate for TcpRouteSpec {
    fn validate(&self, cx: &mut Ctx) {
        validate_parent_refs(cx, &self.parent_refs);
        validate_l4_rules(
            cx,
            self.rules
                .iter()
                .map(|r| (&r.name, r.backend_refs.as_slice())),
        );
    }
}

impl Validate for TlsRouteSpec {
    fn validate(&self, cx: &mut Ctx) {
        validate_parent_refs(cx, &self.parent_refs);
        check_route_hostnames(cx, &self.hostnames, 16);
        validate_l4_rules(
            cx,
            self.rules
                .iter()
                .map(|r| (&r.name, r.backend_refs.as_slice())),
        );
    }
}
