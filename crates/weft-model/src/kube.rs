//! PLACEHOLDER: Kubernetes core objects the mesh reads: validation and old-version upgrades.

use crate::validate::Ctx;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Endpoints, Pod, Service},
    discovery::v1::EndpointSlice,
};
use serde_json::Value;

/// Rewrites a Deployment of `extensions/v1beta1` or `apps/v1beta*` into `apps/v1`.
pub fn upgrade_deployment(value: &Value) -> Value {
    value.clone()
}

pub fn validate_service(_s: &Service, _cx: &mut Ctx) {}
pub fn validate_endpoints(_s: &Endpoints, _cx: &mut Ctx) {}
pub fn validate_pod(_s: &Pod, _cx: &mut Ctx) {}
pub fn validate_endpoint_slice(_s: &EndpointSlice, _cx: &mut Ctx) {}
pub fn validate_deployment(_s: &Deployment, _cx: &mut Ctx) {}
