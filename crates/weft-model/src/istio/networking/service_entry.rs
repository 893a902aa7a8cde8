//! PLACEHOLDER: replaced by the full types and validation.

use crate::validate::{Ctx, Validate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntry {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for ServiceEntry {
    fn validate(&self, _cx: &mut Ctx) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntry {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for WorkloadEntry {
    fn validate(&self, _cx: &mut Ctx) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadGroup {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for WorkloadGroup {
    fn validate(&self, _cx: &mut Ctx) {}
}
