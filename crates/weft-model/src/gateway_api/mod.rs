//! PLACEHOLDER: replaced by the full types and validation.

use crate::validate::{Ctx, Validate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClassSpec {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for GatewayClassSpec {
    fn validate(&self, _cx: &mut Ctx) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for GatewaySpec {
    fn validate(&self, _cx: &mut Ctx) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for HttpRouteSpec {
    fn validate(&self, _cx: &mut Ctx) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteSpec {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for GrpcRouteSpec {
    fn validate(&self, _cx: &mut Ctx) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceGrantSpec {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for ReferenceGrantSpec {
    fn validate(&self, _cx: &mut Ctx) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpRouteSpec {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for TcpRouteSpec {
    fn validate(&self, _cx: &mut Ctx) {}
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRouteSpec {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Validate for TlsRouteSpec {
    fn validate(&self, _cx: &mut Ctx) {}
}
