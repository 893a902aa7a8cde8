//! Kubernetes Gateway API (`gateway.networking.k8s.io`): the spec types of GatewayClass,
//! Gateway, HTTPRoute, GRPCRoute, ReferenceGrant (v1) and TCPRoute, TLSRoute (v1alpha2),
//! with the checks of the CRDs' OpenAPI schemas and CEL rules and of the project's
//! validating webhook.
//!
//! Field lists follow the current release's Go types (`sigs.k8s.io/gateway-api/apis/v1`,
//! standard and experimental channel). Required fields are modelled as defaulted fields
//! and checked during validation, so one document reports every missing field at once.

mod gateway;
mod grpcroute;
mod httproute;
mod l4_routes;
mod reference_grant;
mod shared;

pub use gateway::*;
pub use grpcroute::*;
pub use httproute::*;
pub use l4_routes::*;
pub use reference_grant::*;
pub use shared::{
    BackendObjectReference, BackendRef, GATEWAY_GROUP, LabelSelector, LabelSelectorRequirement,
    LocalObjectReference, ObjectReference, ParentReference, SecretObjectReference,
    SelectorOperator, gep2257_problem, hostname_problem,
};
