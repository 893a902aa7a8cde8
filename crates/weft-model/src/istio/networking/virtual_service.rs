//! PLACEHOLDER: replaced by the full types and validation.

use crate::validate::{Ctx, Validate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualService {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for VirtualService {
    fn validate(&self, _cx: &mut Ctx) {}
}
