//! `Telemetry` (telemetry.istio.io v1, v1alpha1): tracing, metrics and access logging for
//! workloads.
//!
//! Field list from istio/api `telemetry/v1alpha1/telemetry.proto` and the generated CRD schema;
//! validation follows Istio's `ValidateTelemetry` plus the CRD's rules.

use crate::common::{Duration, WorkloadSelector};
use crate::istio::security::{
    PolicyTargetReference, SERVICE_GATEWAY_SE_TARGETS, check_policy_attachment,
};
use crate::validate::{Ctx, Validate, check_duration_min, check_percent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Telemetry settings for selected workloads (or the namespace, or the mesh).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Telemetry {
    /// Workloads this applies to; without it, the namespace (or the mesh, in the root namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Deprecated single form of `targetRefs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Gateways, services or service entries this applies to (instead of `selector`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Tracing settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracing: Vec<Tracing>,
    /// Metrics settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metrics>,
    /// Access logging settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_logging: Vec<AccessLogging>,
}

/// A reference to a provider defined in `meshConfig.extensionProviders`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderRef {
    /// The provider's name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Which side of the traffic a setting applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkloadMode {
    /// Both outbound (client) and inbound (server) traffic.
    #[default]
    ClientAndServer,
    /// Outbound traffic only.
    Client,
    /// Inbound traffic only.
    Server,
}

/// Tracing settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tracing {
    /// Which traffic direction this applies to.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<TracingSelector>,
    /// The tracing provider (only one is supported).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderRef>,
    /// Percentage of requests (0-100) traced when no sampling decision was made upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_sampling_percentage: Option<f64>,
    /// Do not report spans (context is still propagated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_span_reporting: Option<bool>,
    /// Extra tags added to spans, by tag name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_tags: BTreeMap<String, CustomTag>,
    /// Use the request id (`x-request-id`) to make sampling decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_request_id_for_trace_sampling: Option<bool>,
    /// Add Istio-specific tags to spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_istio_tags: Option<bool>,
}

/// Traffic selection for tracing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
}

/// Where a custom span tag's value comes from (exactly one source).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomTag {
    /// A fixed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<LiteralTag>,
    /// An environment variable of the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentTag>,
    /// A request header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<RequestHeaderTag>,
    /// An access-log formatter expression (e.g. `%REQ(:PATH)%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatter: Option<FormatterTag>,
}

/// A fixed tag value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LiteralTag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A tag from an environment variable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentTag {
    /// Variable name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Value when the variable is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

/// A tag from a request header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestHeaderTag {
    /// Header name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Value when the header is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

/// A tag from an access-log formatter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FormatterTag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Metrics settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metrics {
    /// Metrics providers (e.g. `prometheus`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderRef>,
    /// Changes to the standard metrics: disable some, add/remove tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<MetricsOverrides>,
    /// How often metrics are reported (for providers that push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_interval: Option<Duration>,
}

/// One metrics override.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricsOverrides {
    /// Which metric(s) and direction this override applies to (default: all).
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<MetricSelector>,
    /// Stop generating the selected metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Tags to add, change or remove, by tag name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tag_overrides: BTreeMap<String, TagOverride>,
}

/// Selects metrics by standard name or custom name, and by direction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSelector {
    /// One of Istio's standard metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<IstioMetric>,
    /// A metric by name (exclusive with `metric`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metric: Option<String>,
    /// Client, server or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
}

/// Istio's standard metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IstioMetric {
    #[default]
    AllMetrics,
    RequestCount,
    RequestDuration,
    RequestSize,
    ResponseSize,
    TcpOpenedConnections,
    TcpClosedConnections,
    TcpSentBytes,
    TcpReceivedBytes,
    GrpcRequestMessages,
    GrpcResponseMessages,
}

/// A change to one metric tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagOverride {
    /// UPSERT (default) or REMOVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<TagOperation>,
    /// CEL expression giving the tag value (UPSERT only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What a tag override does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagOperation {
    /// Add or replace the tag.
    #[default]
    Upsert,
    /// Remove the tag.
    Remove,
}

/// Access logging settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogging {
    /// Which traffic direction this applies to.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<LogSelector>,
    /// Access log providers (e.g. `envoy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderRef>,
    /// Turn access logging off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Only log requests/connections matching a CEL expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<AccessLogFilter>,
}

/// Traffic selection for access logging.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
}

/// A CEL filter for access logs, e.g. `response.code >= 400`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

fn check_providers(cx: &mut Ctx, providers: &[ProviderRef]) {
    cx.each("providers", providers, |cx, _, p| {
        if p.name.as_deref().unwrap_or("").is_empty() {
            cx.error_at("name", "provider `name` is required: the name of a provider in meshConfig.extensionProviders");
        }
    });
}

impl Validate for Telemetry {
    fn validate(&self, cx: &mut Ctx) {
        check_policy_attachment(
            cx,
            &self.selector,
            &self.target_ref,
            &self.target_refs,
            SERVICE_GATEWAY_SE_TARGETS,
        );
        if self.tracing.len() > 1 {
            cx.warn_at(
                "tracing",
                "only the first `tracing` entry is used: several are not supported",
            );
        }
        cx.list("tracing", &self.tracing);
        cx.list("metrics", &self.metrics);
        cx.list("accessLogging", &self.access_logging);
    }
}

impl Validate for Tracing {
    fn validate(&self, cx: &mut Ctx) {
        if self.providers.len() > 1 {
            cx.warn_at(
                "providers",
                "only one tracing provider is supported: the others are ignored",
            );
        }
        check_providers(cx, &self.providers);
        if let Some(p) = self.random_sampling_percentage {
            cx.field("randomSamplingPercentage", |cx| check_percent(cx, p));
        }
        cx.field("customTags", |cx| {
            for (name, tag) in &self.custom_tags {
                cx.field(name, |cx| {
                    if name.is_empty() {
                        cx.error("tag name must not be empty");
                    }
                    let set = [
                        ("literal", tag.literal.is_some()),
                        ("environment", tag.environment.is_some()),
                        ("header", tag.header.is_some()),
                        ("formatter", tag.formatter.is_some()),
                    ];
                    if set.iter().all(|s| !s.1) {
                        cx.error(format!(
                            "tag `{name}` has no value source: set one of `literal`, `environment`, `header` or `formatter`"
                        ));
                    }
                    cx.at_most_one(&set);
                    if let Some(l) = &tag.literal
                        && l.value.as_deref().unwrap_or("").is_empty()
                    {
                        cx.field("literal", |cx| cx.error_at("value", "literal tag `value` must not be empty"));
                    }
                    if let Some(e) = &tag.environment
                        && e.name.as_deref().unwrap_or("").is_empty()
                    {
                        cx.field("environment", |cx| cx.error_at("name", "environment tag `name` is required"));
                    }
                    if let Some(h) = &tag.header
                        && h.name.as_deref().unwrap_or("").is_empty()
                    {
                        cx.field("header", |cx| cx.error_at("name", "header tag `name` is required"));
                    }
                    if let Some(f) = &tag.formatter
                        && f.value.as_deref().unwrap_or("").is_empty()
                    {
                        cx.field("formatter", |cx| cx.error_at("value", "formatter tag `value` is required"));
                    }
                });
            }
        });
    }
}

/// A metric tag name as Prometheus accepts it.
fn is_tag_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl Validate for Metrics {
    fn validate(&self, cx: &mut Ctx) {
        check_providers(cx, &self.providers);
        if let Some(d) = &self.reporting_interval {
            cx.field("reportingInterval", |cx| check_duration_min(cx, d, 1));
        }
        cx.each("overrides", &self.overrides, |cx, _, o| {
            if let Some(m) = &o.match_ {
                cx.field("match", |cx| {
                    cx.at_most_one(&[("metric", m.metric.is_some()), ("customMetric", m.custom_metric.is_some())]);
                    if m.custom_metric.as_deref() == Some("") {
                        cx.error_at("customMetric", "`customMetric` must not be empty");
                    }
                });
            }
            cx.field("tagOverrides", |cx| {
                for (tag, t) in &o.tag_overrides {
                    cx.field(tag, |cx| {
                        if tag.is_empty() {
                            cx.warn("tag name is empty");
                        } else if !is_tag_name(tag) {
                            cx.warn(format!(
                                "tag name `{tag}` is not a valid metric label name: use letters, digits and '_', not starting with a digit"
                            ));
                        }
                        let value = t.value.as_deref().unwrap_or("");
                        match t.operation.unwrap_or_default() {
                            TagOperation::Upsert if value.is_empty() => {
                                cx.error_at("value", format!("tag `{tag}`: `value` is required when operation is UPSERT"))
                            }
                            TagOperation::Remove if t.value.is_some() => cx.error_at(
                                "value",
                                format!("tag `{tag}`: `value` must not be set when operation is REMOVE"),
                            ),
                            _ => {}
                        }
                    });
                }
            });
        });
    }
}

impl Validate for AccessLogging {
    fn validate(&self, cx: &mut Ctx) {
        check_providers(cx, &self.providers);
        if let Some(f) = &self.filter {
            cx.field("filter", |cx| {
                let expr = f.expression.as_deref().unwrap_or("");
                if let Some(p) = cel_syntax_problem(expr) {
                    cx.error_at(
                        "expression",
                        format!("filter expression must be a valid CEL expression: {p}"),
                    );
                }
            });
        }
    }
}

/// A light syntax check of a CEL expression: not empty, brackets balanced, strings
/// closed, no `=` assignment, no dangling operator. (Istio parses it with cel-go.)
fn cel_syntax_problem(expr: &str) -> Option<String> {
    let e = expr.trim();
    if e.is_empty() {
        return Some("the expression is empty".into());
    }
    let bytes = e.as_bytes();
    let mut stack = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' | b'\'' => {
                let q = c;
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= bytes.len() {
                    return Some(format!("unterminated string in `{e}`"));
                }
            }
            b'(' | b'[' | b'{' => stack.push(c),
            b')' | b']' | b'}' => {
                let open = match c {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                if stack.pop() != Some(open) {
                    return Some(format!("unbalanced `{}` in `{e}`", c as char));
                }
            }
            b'=' => {
                let prev = if i > 0 { bytes[i - 1] } else { b' ' };
                let next = bytes.get(i + 1).copied().unwrap_or(b' ');
                if next == b'=' {
                    i += 1;
                } else if !matches!(prev, b'!' | b'<' | b'>' | b'=') {
                    return Some(format!(
                        "`=` is not an operator in `{e}`: use `==` to compare"
                    ));
                }
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(open) = stack.pop() {
        return Some(format!("unclosed `{}` in `{e}`", open as char));
    }
    let dangling = [
        "&&", "||", "=", "<", ">", "+", "-", "*", "/", "%", "!", ".", "?", ":", ",",
    ];
    if let Some(op) = dangling.iter().find(|op| e.ends_with(**op)) {
        return Some(format!("`{e}` ends with `{op}`: an operand is missing"));
    }
    if let Some(op) = ["&&", "||", "==", "!=", "*", "/", "%", ".", "?", ":", ","]
        .iter()
        .find(|op| e.starts_with(**op))
    {
        return Some(format!("`{e}` starts with `{op}`: an operand is missing"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::cel_syntax_problem;

    #[test]
    fn cel() {
        for ok in [
            "response.code >= 400",
            "response.code >= 400 || xds.cluster_name == 'BlackHoleCluster'",
            "request.headers['x-debug'] == \"1\"",
            "!(response.code < 500)",
        ] {
            assert_eq!(cel_syntax_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "response.code = 400",
            "(response.code >= 400",
            "response.code >=",
            "'abc",
        ] {
            assert!(cel_syntax_problem(bad).is_some(), "{bad}");
        }
    }
}
