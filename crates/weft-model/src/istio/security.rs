//! `security.istio.io` (v1, v1beta1): `PeerAuthentication`, `AuthorizationPolicy` and
//! `RequestAuthentication`.
//!
//! Field lists from istio/api `security/v1beta1/{peer_authentication,authorization_policy,request_authentication}.proto`
//! and the generated CRD schemas; validation follows Istio's `ValidatePeerAuthentication`,
//! `ValidateAuthorizationPolicy`, `ValidateRequestAuthentication` and `pkg/config/security`.

use crate::common::{Duration, WorkloadSelector};
use crate::istio::networking::mesh_checks::{check_selector_labels, ip_or_cidr_problem};
use crate::validate::{Ctx, Validate, check_duration_min, suggest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::LazyLock;

// ---------------------------------------------------------------------------------------
// Shared: selectors and target references.
// ---------------------------------------------------------------------------------------

/// A reference to the resource a policy attaches to (Gateway API style).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetReference {
    /// API group of the target: `""` (core) for Service, `gateway.networking.k8s.io` for Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the target: Service, ServiceEntry or Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Must be empty: cross-namespace references are not supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Kinds a policy may target, as (group, kind).
pub(crate) const SERVICE_GATEWAY_SE_TARGETS: &[(&str, &str)] = &[
    ("", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
];

const AUTHZ_TARGETS: &[(&str, &str)] = &[
    ("", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
];

/// `selector`, `targetRef` and `targetRefs`: at most one, each well-formed.
pub(crate) fn check_policy_attachment(
    cx: &mut Ctx,
    selector: &Option<WorkloadSelector>,
    target_ref: &Option<PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
    allowed: &[(&str, &str)],
) {
    if selector.is_some() && (target_ref.is_some() || !target_refs.is_empty()) {
        let f = if target_ref.is_some() {
            "targetRef"
        } else {
            "targetRefs"
        };
        cx.error_at(f, format!("only one of `selector` and `{f}` may be set"));
    }
    if target_ref.is_some() && !target_refs.is_empty() {
        cx.error_at(
            "targetRefs",
            "only one of `targetRef` and `targetRefs` may be set (prefer `targetRefs`)",
        );
    }
    if let Some(sel) = selector {
        cx.field("selector", |cx| {
            if sel.match_labels.is_empty() {
                cx.warn_at(
                    "matchLabels",
                    "selector has no labels: the policy applies to every workload in the namespace",
                );
            }
            cx.field("matchLabels", |cx| {
                check_selector_labels(cx, &sel.match_labels)
            });
        });
    }
    if let Some(r) = target_ref {
        cx.field("targetRef", |cx| check_target_ref(cx, r, allowed));
    }
    if target_refs.len() > 16 {
        cx.error_at(
            "targetRefs",
            format!(
                "{} targetRefs given: at most 16 are allowed",
                target_refs.len()
            ),
        );
    }
    cx.each("targetRefs", target_refs, |cx, _, r| {
        check_target_ref(cx, r, allowed)
    });
}

fn check_target_ref(cx: &mut Ctx, r: &PolicyTargetReference, allowed: &[(&str, &str)]) {
    let kind = r.kind.as_deref().unwrap_or("");
    if r.name.as_deref().unwrap_or("").is_empty() {
        cx.error_at("name", "`name` is required");
    }
    if r.namespace.as_deref().is_some_and(|n| !n.is_empty()) {
        cx.error_at(
            "namespace",
            "`namespace` must not be set: cross-namespace targets are not supported; put the policy in the target's namespace",
        );
    }
    if kind.is_empty() {
        cx.error_at("kind", "`kind` is required");
        return;
    }
    let group = r.group.as_deref().unwrap_or("");
    let group = if group == "core" { "" } else { group };
    if !allowed.iter().any(|(g, k)| *g == group && *k == kind) {
        let list = allowed
            .iter()
            .map(|(g, k)| {
                if g.is_empty() {
                    k.to_string()
                } else {
                    format!("{g}/{k}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let shown = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{group}/{kind}")
        };
        let field = if allowed.iter().any(|(_, k)| *k == kind) {
            "group"
        } else {
            "kind"
        };
        cx.error_at(
            field,
            format!("target `{shown}` is not supported: a policy can target {list}"),
        );
    }
}

// ---------------------------------------------------------------------------------------
// PeerAuthentication
// ---------------------------------------------------------------------------------------

/// Whether workloads accept plain text, mutual TLS, or both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerAuthentication {
    /// Workloads this applies to; without it, the namespace (or the mesh, in the root namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// The mutual TLS mode for all ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<PeerMtls>,
    /// Per-port mutual TLS modes, keyed by the workload's port number (needs a selector).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub port_level_mtls: BTreeMap<String, PeerMtls>,
}

/// Mutual TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerMtls {
    /// UNSET (inherit), DISABLE, PERMISSIVE or STRICT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MtlsMode>,
}

/// A peer authentication mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MtlsMode {
    /// Inherit from the parent policy (namespace, then mesh; PERMISSIVE by default).
    #[default]
    Unset,
    /// Plain text only.
    Disable,
    /// Accept both plain text and mutual TLS.
    Permissive,
    /// Mutual TLS only.
    Strict,
}

impl Validate for PeerAuthentication {
    fn validate(&self, cx: &mut Ctx) {
        check_policy_attachment(cx, &self.selector, &None, &[], &[]);
        let has_selector = self
            .selector
            .as_ref()
            .is_some_and(|s| !s.match_labels.is_empty());
        if !self.port_level_mtls.is_empty() && !has_selector {
            cx.error_at(
                "portLevelMtls",
                "`portLevelMtls` needs a `selector` with labels: a namespace- or mesh-wide policy cannot set per-port modes",
            );
        }
        cx.field("portLevelMtls", |cx| {
            for port in self.port_level_mtls.keys() {
                cx.field(port, |cx| match port.parse::<u32>() {
                    Ok(n) if (1..=65535).contains(&n) => {}
                    _ => cx.error(format!(
                        "port `{port}` is not a port number between 1 and 65535"
                    )),
                });
            }
        });
    }
}

// ---------------------------------------------------------------------------------------
// AuthorizationPolicy
// ---------------------------------------------------------------------------------------

/// Allows, denies, audits or delegates requests to workloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationPolicy {
    /// Workloads this applies to; without it, the namespace (or the mesh, in the root namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Deprecated single form of `targetRefs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Gateways, services or service entries this applies to (instead of `selector`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Rules matched against requests; a request matching any rule triggers the action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<AuthorizationRule>,
    /// ALLOW (default), DENY, AUDIT or CUSTOM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<AuthorizationAction>,
    /// The external authorizer for action CUSTOM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ExtensionProvider>,
}

/// What an authorization policy does with matching requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthorizationAction {
    /// Allow matching requests (and deny others, once any ALLOW policy applies).
    #[default]
    Allow,
    /// Deny matching requests.
    Deny,
    /// Audit matching requests.
    Audit,
    /// Ask an external authorizer (`provider`).
    Custom,
}

impl AuthorizationAction {
    fn as_str(self) -> &'static str {
        match self {
            AuthorizationAction::Allow => "ALLOW",
            AuthorizationAction::Deny => "DENY",
            AuthorizationAction::Audit => "AUDIT",
            AuthorizationAction::Custom => "CUSTOM",
        }
    }
}

/// An extension provider defined in the mesh config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionProvider {
    /// Name of the provider in `meshConfig.extensionProviders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One rule: sources AND operations AND conditions (each list is OR-ed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationRule {
    /// Where the request comes from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<RuleFrom>,
    /// What the request does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<RuleTo>,
    /// Extra conditions on request attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<AuthorizationCondition>,
}

/// A `from` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleFrom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// A `to` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleTo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
}

/// The source of a request; all set fields must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    /// Peer identities (`cluster.local/ns/default/sa/sleep`), from mutual TLS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_principals: Vec<String>,
    /// Request identities (`issuer/subject`), from a validated JWT.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_principals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_request_principals: Vec<String>,
    /// Namespaces of the peer, from mutual TLS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_namespaces: Vec<String>,
    /// Peer IPs or CIDR blocks (the direct connection).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_blocks: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ip_blocks: Vec<String>,
    /// Original client IPs or CIDR blocks (X-Forwarded-For or PROXY protocol).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_ip_blocks: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_remote_ip_blocks: Vec<String>,
    /// Peer service accounts (`namespace/name`), exclusive with principals and namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_accounts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_service_accounts: Vec<String>,
}

/// The operation of a request; all set fields must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    /// Host header values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_hosts: Vec<String>,
    /// Destination ports, as strings (`"8080"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<String>,
    /// HTTP methods (`GET`); always `POST` for gRPC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_methods: Vec<String>,
    /// Paths: exact, prefix (`/api/*`), suffix (`*.js`), presence (`*`) or template (`/{*}/x/{**}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_paths: Vec<String>,
}

/// A condition on a request attribute (`request.auth.claims[iss]`, `source.ip`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationCondition {
    /// The attribute name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Values that match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Values that do not match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_values: Vec<String>,
}

impl Source {
    fn is_empty(&self) -> bool {
        self.principals.is_empty()
            && self.not_principals.is_empty()
            && self.request_principals.is_empty()
            && self.not_request_principals.is_empty()
            && self.namespaces.is_empty()
            && self.not_namespaces.is_empty()
            && self.ip_blocks.is_empty()
            && self.not_ip_blocks.is_empty()
            && self.remote_ip_blocks.is_empty()
            && self.not_remote_ip_blocks.is_empty()
            && self.service_accounts.is_empty()
            && self.not_service_accounts.is_empty()
    }

    /// Uses attributes available on plain TCP connections (not only HTTP).
    fn has_tcp_attributes(&self) -> bool {
        !(self.principals.is_empty()
            && self.not_principals.is_empty()
            && self.namespaces.is_empty()
            && self.not_namespaces.is_empty()
            && self.ip_blocks.is_empty()
            && self.not_ip_blocks.is_empty()
            && self.remote_ip_blocks.is_empty()
            && self.not_remote_ip_blocks.is_empty()
            && self.service_accounts.is_empty()
            && self.not_service_accounts.is_empty())
    }
}

impl Operation {
    fn is_empty(&self) -> bool {
        self.hosts.is_empty()
            && self.not_hosts.is_empty()
            && self.ports.is_empty()
            && self.not_ports.is_empty()
            && self.methods.is_empty()
            && self.not_methods.is_empty()
            && self.paths.is_empty()
            && self.not_paths.is_empty()
    }
}

/// Every value of a list must be non-empty.
fn check_non_empty_values(cx: &mut Ctx, name: &str, values: &[String]) {
    cx.each(name, values, |cx, _, v| {
        if v.is_empty() {
            cx.error(format!(
                "empty value in `{name}`: remove it or give a value"
            ));
        }
    });
}

fn check_ip_list(cx: &mut Ctx, name: &str, values: &[String]) {
    cx.each(name, values, |cx, _, v| {
        if !v.is_empty()
            && let Some(p) = ip_or_cidr_problem(v)
        {
            cx.error(p);
        }
    });
}

/// Why a port string is not a valid port, if it is not.
fn port_string_problem(p: &str) -> Option<String> {
    match p.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) && !p.starts_with('+') => None,
        _ => Some(format!(
            "port `{p}` is not a port number between 1 and 65535"
        )),
    }
}

fn check_port_list(cx: &mut Ctx, name: &str, values: &[String]) {
    cx.each(name, values, |cx, _, v| {
        if !v.is_empty()
            && let Some(p) = port_string_problem(v)
        {
            cx.error(p);
        }
    });
}

static UNSUPPORTED_PATH_TEMPLATE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"/\{[0-9A-Za-z_]+=\*\*?\}|\{[0-9A-Za-z_]*\}|/\*\*?|\*\*?/")
        .expect("static regex")
});

fn check_path_list(cx: &mut Ctx, name: &str, values: &[String]) {
    cx.each(name, values, |cx, _, p| {
        if p.is_empty() {
            return;
        }
        let template = p.contains("{*}") || p.contains("{**}");
        if template && UNSUPPORTED_PATH_TEMPLATE.is_match(p) {
            cx.error(format!(
                "path template `{p}` is not supported: only `{{*}}` (one segment) and `{{**}}` (any segments) may be used, without names and without bare `*`"
            ));
        } else if !template && !p.starts_with('/') && !p.starts_with('*') {
            cx.warn(format!("path `{p}` does not start with '/': it will never match a request path"));
        }
    });
}

fn check_method_list(cx: &mut Ctx, name: &str, values: &[String]) {
    cx.each(name, values, |cx, _, m| {
        if !m.is_empty() && m.chars().any(|c| c.is_ascii_lowercase()) {
            cx.warn(format!(
                "method `{m}` is not upper case: methods are matched exactly, so it will not match `{}`",
                m.to_ascii_uppercase()
            ));
        }
    });
}

/// Attribute names accepted in `when.key` (exact names and `name[...]` prefixes).
const EXACT_KEYS: &[&str] = &[
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "destination.ip",
    "destination.port",
    "connection.sni",
];
const MAP_KEYS: &[&str] = &["request.headers", "request.auth.claims"];

/// What the values of a condition key must look like.
enum AttrValues {
    Any,
    Ip,
    Port,
}

/// Istio's `ValidateAttribute` for the key: whether it is known (reports at `key`).
fn check_condition_key(cx: &mut Ctx, key: &str) -> AttrValues {
    let map_key_ok = |key: &str| {
        let open = key.find('[');
        key.ends_with(']') && open.is_some_and(|o| o > 0 && o < key.len() - 2)
    };
    if MAP_KEYS.iter().any(|p| key.starts_with(p)) || key.starts_with("experimental.envoy.filters.")
    {
        if !map_key_ok(key) {
            cx.error_at(
                "key",
                format!("key `{key}` must name an entry in brackets, e.g. `request.headers[User-Agent]` or `request.auth.claims[iss]`"),
            );
        }
        return AttrValues::Any;
    }
    match key {
        "source.ip" | "remote.ip" | "destination.ip" => return AttrValues::Ip,
        "destination.port" => return AttrValues::Port,
        "destination.namespace" => {
            cx.error_at("key", "key `destination.namespace` is not supported: the policy's namespace already scopes it");
        }
        k if k.starts_with("destination.labels") => {
            cx.error_at(
                "key",
                format!(
                    "key `{k}` is not supported: use the policy's `selector` to pick workloads"
                ),
            );
        }
        "destination.name" | "destination.user" => {
            cx.error_at(
                "key",
                format!("key `{key}` was removed (it only existed in the v1alpha1 API)"),
            );
        }
        k if EXACT_KEYS.contains(&k) => {}
        _ => {
            let mut msg = format!("unknown attribute `{key}`");
            let candidates = EXACT_KEYS
                .iter()
                .copied()
                .chain(["request.headers[]", "request.auth.claims[]"]);
            if let Some(s) = suggest(key, candidates) {
                msg.push_str(&format!(": did you mean `{s}`?"));
            } else {
                msg.push_str(
                    " (valid keys: source.ip, remote.ip, source.namespace, source.principal, request.headers[...], request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[...], destination.ip, destination.port, connection.sni)",
                );
            }
            cx.error_at("key", msg);
        }
    }
    AttrValues::Any
}

impl Validate for AuthorizationPolicy {
    fn validate(&self, cx: &mut Ctx) {
        check_policy_attachment(
            cx,
            &self.selector,
            &self.target_ref,
            &self.target_refs,
            AUTHZ_TARGETS,
        );
        let action = self.action.unwrap_or_default();
        match action {
            AuthorizationAction::Custom => {
                if self.rules.is_empty() {
                    cx.error_at(
                        "rules",
                        "action CUSTOM without `rules` never triggers: add an empty rule `{}` to apply it to every request",
                    );
                } else if self
                    .provider
                    .as_ref()
                    .and_then(|p| p.name.as_deref())
                    .unwrap_or("")
                    .is_empty()
                {
                    if self.provider.is_some() {
                        cx.field("provider", |cx| {
                            cx.error_at("name", "`provider.name` is required for action CUSTOM")
                        });
                    } else {
                        cx.error_at(
                            "provider",
                            "action CUSTOM needs a `provider` naming the external authorizer",
                        );
                    }
                }
            }
            AuthorizationAction::Deny if self.rules.is_empty() => {
                cx.error_at(
                    "rules",
                    "action DENY without `rules` never triggers: add an empty rule `{}` to deny every request",
                );
            }
            _ => {}
        }
        if self.provider.is_some() && action != AuthorizationAction::Custom {
            cx.error_at(
                "provider",
                format!(
                    "`provider` is only used with action CUSTOM, not {}",
                    action.as_str()
                ),
            );
        }

        cx.each("rules", &self.rules, |cx, _, rule| {
            let mut tcp_from = false;
            let mut tcp_to = false;
            cx.each("from", &rule.from, |cx, _, from| {
                let Some(src) = &from.source else {
                    cx.error_at("source", "`source` is required in a `from` entry");
                    return;
                };
                cx.field("source", |cx| {
                    if src.is_empty() {
                        cx.error("`source` is empty: set at least one field, or remove the `from` entry");
                    }
                    tcp_from |= src.has_tcp_attributes();
                    let sa = !src.service_accounts.is_empty() || !src.not_service_accounts.is_empty();
                    if sa
                        && (!src.principals.is_empty()
                            || !src.not_principals.is_empty()
                            || !src.namespaces.is_empty()
                            || !src.not_namespaces.is_empty())
                    {
                        let f = if src.service_accounts.is_empty() { "notServiceAccounts" } else { "serviceAccounts" };
                        cx.error_at(
                            f,
                            "`serviceAccounts` cannot be combined with `principals` or `namespaces` (or their `not` forms)",
                        );
                    }
                    for (name, list) in [
                        ("serviceAccounts", &src.service_accounts),
                        ("notServiceAccounts", &src.not_service_accounts),
                    ] {
                        if list.len() > 16 {
                            cx.error_at(name, format!("{} service accounts given: at most 16 are allowed", list.len()));
                        }
                    }
                    for (name, list) in [
                        ("principals", &src.principals),
                        ("notPrincipals", &src.not_principals),
                        ("requestPrincipals", &src.request_principals),
                        ("notRequestPrincipals", &src.not_request_principals),
                        ("namespaces", &src.namespaces),
                        ("notNamespaces", &src.not_namespaces),
                        ("ipBlocks", &src.ip_blocks),
                        ("notIpBlocks", &src.not_ip_blocks),
                        ("remoteIpBlocks", &src.remote_ip_blocks),
                        ("notRemoteIpBlocks", &src.not_remote_ip_blocks),
                        ("serviceAccounts", &src.service_accounts),
                        ("notServiceAccounts", &src.not_service_accounts),
                    ] {
                        check_non_empty_values(cx, name, list);
                    }
                    check_ip_list(cx, "ipBlocks", &src.ip_blocks);
                    check_ip_list(cx, "notIpBlocks", &src.not_ip_blocks);
                    check_ip_list(cx, "remoteIpBlocks", &src.remote_ip_blocks);
                    check_ip_list(cx, "notRemoteIpBlocks", &src.not_remote_ip_blocks);
                    if action == AuthorizationAction::Custom {
                        for (name, set) in [
                            ("namespaces", !src.namespaces.is_empty()),
                            ("notNamespaces", !src.not_namespaces.is_empty()),
                            ("principals", !src.principals.is_empty()),
                            ("notPrincipals", !src.not_principals.is_empty()),
                            ("requestPrincipals", !src.request_principals.is_empty()),
                            ("notRequestPrincipals", !src.not_request_principals.is_empty()),
                        ] {
                            if set {
                                cx.error_at(name, format!("`{name}` is not supported with action CUSTOM"));
                            }
                        }
                    }
                });
            });
            cx.each("to", &rule.to, |cx, _, to| {
                let Some(op) = &to.operation else {
                    cx.error_at("operation", "`operation` is required in a `to` entry");
                    return;
                };
                cx.field("operation", |cx| {
                    if op.is_empty() {
                        cx.error("`operation` is empty: set at least one field, or remove the `to` entry");
                    }
                    tcp_to |= !op.ports.is_empty() || !op.not_ports.is_empty();
                    for (name, list) in [
                        ("hosts", &op.hosts),
                        ("notHosts", &op.not_hosts),
                        ("ports", &op.ports),
                        ("notPorts", &op.not_ports),
                        ("methods", &op.methods),
                        ("notMethods", &op.not_methods),
                        ("paths", &op.paths),
                        ("notPaths", &op.not_paths),
                    ] {
                        check_non_empty_values(cx, name, list);
                    }
                    check_port_list(cx, "ports", &op.ports);
                    check_port_list(cx, "notPorts", &op.not_ports);
                    check_path_list(cx, "paths", &op.paths);
                    check_path_list(cx, "notPaths", &op.not_paths);
                    check_method_list(cx, "methods", &op.methods);
                    check_method_list(cx, "notMethods", &op.not_methods);
                });
            });
            cx.each("when", &rule.when, |cx, _, cond| {
                let key = cond.key.as_deref().unwrap_or("");
                if key.is_empty() {
                    cx.error_at("key", "`key` is required: the name of a request attribute such as `request.auth.claims[iss]`");
                    return;
                }
                if cond.values.is_empty() && cond.not_values.is_empty() {
                    cx.error(format!("condition on `{key}` needs `values` or `notValues`"));
                }
                let kind = check_condition_key(cx, key);
                for (name, list) in [("values", &cond.values), ("notValues", &cond.not_values)] {
                    check_non_empty_values(cx, name, list);
                    match kind {
                        AttrValues::Ip => check_ip_list(cx, name, list),
                        AttrValues::Port => check_port_list(cx, name, list),
                        AttrValues::Any => {}
                    }
                }
                if action == AuthorizationAction::Custom
                    && (key == "source.namespace" || key == "source.principal" || key.starts_with("request.auth."))
                {
                    cx.error_at("key", format!("key `{key}` is not supported with action CUSTOM"));
                }
            });
            // Istio's check: HTTP-only sources without operations, or HTTP-only operations.
            let from_exists = rule.from.iter().any(|f| f.source.is_some());
            let to_exists = rule.to.iter().any(|t| t.operation.is_some());
            let from_only_http = from_exists && !to_exists && !tcp_from;
            let to_only_http = to_exists && !tcp_to;
            if action == AuthorizationAction::Deny && (from_only_http || to_only_http) {
                cx.warn(
                    "this DENY rule uses only HTTP attributes, so it denies all traffic to TCP ports in its scope; set `ports` to limit it",
                );
            }
        });
    }
}

// ---------------------------------------------------------------------------------------
// RequestAuthentication
// ---------------------------------------------------------------------------------------

/// Which JWTs workloads accept, and where they find them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestAuthentication {
    /// Workloads this applies to; without it, the namespace (or the mesh, in the root namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Deprecated single form of `targetRefs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Gateways, services or service entries this applies to (instead of `selector`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
    /// The JWT issuers accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwt_rules: Vec<JwtRule>,
}

/// How to validate JWTs of one issuer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtRule {
    /// The `iss` the token must carry (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Accepted `aud` values; empty accepts any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// URL of the issuer's public key set (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "jwks_uri")]
    pub jwks_uri: Option<String>,
    /// The public key set inline, as JSON (exclusive with `jwksUri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    /// Headers to read the token from (default: `Authorization: Bearer`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_headers: Vec<JwtHeader>,
    /// Query parameters to read the token from (default: `access_token`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    /// Cookies to read the token from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_cookies: Vec<String>,
    /// Header that receives the verified payload (base64url JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_payload_to_header: Option<String>,
    /// Keep the token in the request forwarded upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_original_token: Option<bool>,
    /// Claims copied to request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// Claims holding space-separated values (like `scope`) to match element-wise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub space_delimited_claims: Vec<String>,
    /// How long to wait when fetching the JWKS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// A header carrying a JWT.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtHeader {
    /// Header name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Prefix stripped before the token (e.g. `Bearer `).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// Copies a claim into a request header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimToHeader {
    /// The header to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The claim to copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
}

fn is_header_name(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why `uri` is not an http(s) URL with a host, if it is not.
fn jwks_uri_problem(uri: &str) -> Option<String> {
    let rest = match uri.split_once("://") {
        Some((scheme, rest)) if scheme == "http" || scheme == "https" => rest,
        Some((scheme, _)) => {
            return Some(format!(
                "jwksUri `{uri}` has scheme `{scheme}`: only http and https are supported"
            ));
        }
        None => {
            return Some(format!(
                "jwksUri `{uri}` is not a URL: it must start with https:// or http://"
            ));
        }
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        match r.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Some(format!("jwksUri `{uri}` has an unterminated IPv6 address")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Some(format!("jwksUri `{uri}` has no host"));
    }
    if host.contains(|c: char| c.is_whitespace()) || uri.contains(' ') {
        return Some(format!("jwksUri `{uri}` contains spaces"));
    }
    if let Some(p) = port
        && !p.is_empty()
        && !matches!(p.parse::<u32>(), Ok(1..=65535))
    {
        return Some(format!("jwksUri `{uri}` has an invalid port `{p}`"));
    }
    None
}

/// Why `jwks` is not a JSON Web Key Set (or a single key), if it is not.
fn jwks_problem(jwks: &str) -> Option<String> {
    let v: serde_json::Value = match serde_json::from_str(jwks) {
        Ok(v) => v,
        Err(e) => return Some(format!("`jwks` is not valid JSON: {e}")),
    };
    let has_kty = |k: &serde_json::Value| k.get("kty").is_some_and(|t| t.is_string());
    match v.get("keys") {
        Some(serde_json::Value::Array(keys)) => {
            if let Some(i) = keys.iter().position(|k| !has_kty(k)) {
                return Some(format!(
                    "`jwks` key {i} has no `kty`: every JSON Web Key needs a key type"
                ));
            }
            None
        }
        Some(_) => Some("`jwks.keys` must be a list of JSON Web Keys".into()),
        None if has_kty(&v) => None,
        None => {
            Some("`jwks` is not a JSON Web Key Set: expected an object with a `keys` list".into())
        }
    }
}

impl Validate for RequestAuthentication {
    fn validate(&self, cx: &mut Ctx) {
        check_policy_attachment(
            cx,
            &self.selector,
            &self.target_ref,
            &self.target_refs,
            SERVICE_GATEWAY_SE_TARGETS,
        );
        cx.list("jwtRules", &self.jwt_rules);
    }
}

impl Validate for JwtRule {
    fn validate(&self, cx: &mut Ctx) {
        if self.issuer.as_deref().unwrap_or("").is_empty() {
            cx.error_at(
                "issuer",
                "`issuer` is required: the `iss` claim tokens of this rule carry",
            );
        }
        check_non_empty_values(cx, "audiences", &self.audiences);
        let uri = self.jwks_uri.as_deref().filter(|u| !u.is_empty());
        let jwks = self.jwks.as_deref().filter(|j| !j.is_empty());
        if uri.is_some() && jwks.is_some() {
            cx.error_at("jwks", "only one of `jwks` and `jwksUri` may be set");
        }
        if let Some(u) = uri {
            if u.len() > 2048 {
                cx.error_at("jwksUri", "jwksUri is longer than 2048 characters");
            }
            if let Some(p) = jwks_uri_problem(u) {
                cx.error_at("jwksUri", p);
            }
        }
        if let Some(j) = jwks
            && let Some(p) = jwks_problem(j)
        {
            cx.error_at("jwks", p);
        }
        // Without keys, istiod discovers them at `<issuer>/.well-known/openid-configuration`.
        if uri.is_none()
            && jwks.is_none()
            && let Some(iss) = self.issuer.as_deref().filter(|i| !i.is_empty())
            && !iss.starts_with("https://")
            && !iss.starts_with("http://")
        {
            cx.warn_at(
                "issuer",
                format!(
                    "no `jwksUri` or `jwks`: the keys are looked up at `{iss}/.well-known/openid-configuration`, which only works when the issuer is an https URL; set `jwksUri`"
                ),
            );
        }
        cx.each("fromHeaders", &self.from_headers, |cx, _, h| {
            if h.name.as_deref().unwrap_or("").is_empty() {
                cx.error_at(
                    "name",
                    "`name` is required: the header that carries the token",
                );
            }
        });
        check_non_empty_values(cx, "fromParams", &self.from_params);
        check_non_empty_values(cx, "fromCookies", &self.from_cookies);
        check_non_empty_values(cx, "spaceDelimitedClaims", &self.space_delimited_claims);
        if self.space_delimited_claims.len() > 64 {
            cx.error_at(
                "spaceDelimitedClaims",
                format!(
                    "{} claims given: at most 64 are allowed",
                    self.space_delimited_claims.len()
                ),
            );
        }
        if let Some(h) = self
            .output_payload_to_header
            .as_deref()
            .filter(|h| !h.is_empty())
            && !is_header_name(h)
        {
            cx.error_at(
                "outputPayloadToHeader",
                format!("header name `{h}` is invalid: use letters, digits, '-' and '_'"),
            );
        }
        cx.each(
            "outputClaimToHeaders",
            &self.output_claim_to_headers,
            |cx, _, c| {
                let header = c.header.as_deref().unwrap_or("");
                if header.is_empty() {
                    cx.error_at("header", "`header` is required");
                } else if !is_header_name(header) {
                    cx.error_at(
                        "header",
                        format!(
                            "header name `{header}` is invalid: use letters, digits, '-' and '_'"
                        ),
                    );
                }
                if c.claim.as_deref().unwrap_or("").is_empty() {
                    cx.error_at("claim", "`claim` is required");
                }
            },
        );
        if let Some(t) = &self.timeout {
            cx.field("timeout", |cx| check_duration_min(cx, t, 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            jwks_uri_problem("https://example.com/.well-known/jwks.json"),
            None
        );
        assert_eq!(jwks_uri_problem("http://[::1]:8080/jwks"), None);
        assert!(jwks_uri_problem("ftp://example.com/jwks").is_some());
        assert!(jwks_uri_problem("example.com/jwks").is_some());
        assert!(jwks_uri_problem("https:///jwks").is_some());
        assert!(jwks_uri_problem("https://example.com:99999/jwks").is_some());
    }

    #[test]
    fn key_sets() {
        assert_eq!(
            jwks_problem(r#"{"keys":[{"kty":"RSA","e":"AQAB","n":"x"}]}"#),
            None
        );
        assert!(jwks_problem("{").is_some());
        assert!(jwks_problem(r#"{"keys":[{"e":"AQAB"}]}"#).is_some());
    }

    #[test]
    fn path_templates() {
        for bad in ["/{foo}/bar", "/{*}/*", "/{name=*}/{*}", "/{**}/**"] {
            let t = bad.contains("{*}") || bad.contains("{**}");
            assert!(!t || UNSUPPORTED_PATH_TEMPLATE.is_match(bad), "{bad}");
        }
        assert!(!UNSUPPORTED_PATH_TEMPLATE.is_match("/{*}/foo/{**}"));
        assert!(!UNSUPPORTED_PATH_TEMPLATE.is_match("/foo/{**}.txt"));
    }
}
