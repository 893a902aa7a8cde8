//! PLACEHOLDER: replaced by the full types and validation.

use crate::validate::{Ctx, Validate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for Gateway {
    fn validate(&self, _cx: &mut Ctx) {}
}
