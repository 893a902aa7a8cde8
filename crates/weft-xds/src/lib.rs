//! Envoy v3 xDS for weft.
//!
//! - [`pb`]: the Envoy v3 protobuf messages and gRPC services (re-exported from `envoy-types`).
//! - [`bootstrap`]: loads Envoy's bootstrap from YAML or JSON using the protobuf JSON mapping,
//!   typed `Any` (`"@type"`) included, and names the offending field when it is invalid.
//! - [`descriptors`]: the protobuf descriptors behind that mapping, decoded per document.
//! - [`naming`]: Istio's cluster names (`outbound|9080|v1|reviews.default.svc.cluster.local`).
//! - [`type_url`]: the xDS resource type URLs.
//!
//! Protobuf stops here: consumers convert these messages into their own types with `TryFrom`.

pub mod bootstrap;
pub mod descriptors;
mod error;
pub mod json;
pub mod naming;
pub mod support;
pub mod type_url;

pub use bootstrap::{Bootstrap, Format, LoadedBootstrap};
/// Envoy's v3 API messages (`pb::envoy::config::...`) and well-known types.
pub use envoy_types::pb;
pub use error::XdsError;
pub use support::{Support, Unsupported};
