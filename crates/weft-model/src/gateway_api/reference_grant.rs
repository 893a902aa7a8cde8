//! ReferenceGrant (`gateway.networking.k8s.io/v1`, also served as v1beta1 and v1alpha2),
//! following `apis/v1/referencegrant_types.go`.

use super::shared::*;
use crate::validate::{Ctx, Validate, check_max_items};
use serde::{Deserialize, Serialize};

/// Allows objects of the `from` kinds and namespaces to refer to objects of the `to`
/// kinds in this grant's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceGrantSpec {
    /// Trusted referrers: group, kind and namespace (1 to 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<ReferenceGrantFrom>,
    /// What they may refer to here: group, kind and optionally name (1 to 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<ReferenceGrantTo>,
}

/// A trusted referrer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceGrantFrom {
    /// Group of the referrer (required; `""` for the core group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the referrer (required), e.g. `HTTPRoute` or `Gateway`.
    #[serde(default)]
    pub kind: String,
    /// Namespace of the referrer (required).
    #[serde(default)]
    pub namespace: String,
}

/// A kind of object that may be referred to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceGrantTo {
    /// Group of the referent (required; `""` for the core group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the referent (required), e.g. `Service` or `Secret`.
    #[serde(default)]
    pub kind: String,
    /// Name of the referent; every object of the kind when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Validate for ReferenceGrantSpec {
    fn validate(&self, cx: &mut Ctx) {
        for (name, len, what) in [
            ("from", self.from.len(), "trusted referrer"),
            ("to", self.to.len(), "kind that may be referred to"),
        ] {
            if len == 0 {
                cx.error_at(
                    name,
                    format!("`{name}` is required: list at least one {what}"),
                );
            }
            check_max_items(cx, name, len, 16);
        }
        cx.each("from", &self.from, |cx, _, f| {
            check_required_group(cx, "group", &f.group);
            check_required_kind(cx, "kind", &f.kind);
            if f.namespace.is_empty() {
                cx.require("namespace", false);
            } else {
                cx.field("namespace", |cx| check_namespace(cx, &f.namespace));
            }
        });
        cx.each("to", &self.to, |cx, _, t| {
            check_required_group(cx, "group", &t.group);
            check_required_kind(cx, "kind", &t.kind);
            if let Some(n) = &t.name {
                check_required_name(cx, "name", n);
            }
        });
    }
}
