//! PLACEHOLDER: replaced by the full types and validation.

use crate::validate::{Ctx, Validate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthentication {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for PeerAuthentication {
    fn validate(&self, _cx: &mut Ctx) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for AuthorizationPolicy {
    fn validate(&self, _cx: &mut Ctx) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestAuthentication {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for RequestAuthentication {
    fn validate(&self, _cx: &mut Ctx) {}
}
