//! The xDS client: dynamic configuration over ADS (Envoy's `AggregatedDiscoveryService`),
//! state-of-the-world or delta.
//!
//! ```text
//! connect (tonic) ─► subscribe CDS + LDS (wildcard), node on the first request
//!   response ─► XdsState::apply (convert each resource alone; warm; swap into the proxy)
//!            ─► ACK (version + nonce) or NACK (error_detail naming resource and field)
//!            ─► EDS subscription = EDS clusters' service names; RDS = HCMs' route names
//!   stream ends ─► keep serving; reconnect after jittered back-off (100 ms → 3 s) and
//!                  re-subscribe with the versions we hold
//! ```

mod client;
pub mod node;
mod state;

pub use client::run;
pub use node::{NodeSpec, Role};
pub use state::XdsState;

use envoy_types::pb::envoy::config::core::v3::Node;
use std::time::Duration;
use weft_xds::type_url;

/// How to reach the control plane and who to say we are.
#[derive(Debug, Clone)]
pub struct XdsOptions {
    /// The ADS server, `http://HOST:PORT` (plaintext gRPC, Istio's 15010).
    pub server: String,
    pub node: Node,
    /// Incremental (delta) xDS instead of state of the world.
    pub delta: bool,
    /// How long a warming cluster or listener waits for its endpoints or routes before it
    /// is activated anyway (Envoy's `initial_fetch_timeout`, 15 s by default).
    pub initial_fetch_timeout: Duration,
}

impl XdsOptions {
    /// Options for `server` (`HOST:PORT` or a URL) and `node`, state of the world.
    pub fn new(server: &str, node: Node) -> XdsOptions {
        let server = if server.contains("://") {
            server.to_owned()
        } else {
            format!("http://{server}")
        };
        XdsOptions {
            server,
            node,
            delta: false,
            initial_fetch_timeout: Duration::from_secs(15),
        }
    }
}

/// The four resource types, in the order ADS pushes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeKind {
    Cluster = 0,
    Endpoint = 1,
    Listener = 2,
    Route = 3,
}

impl TypeKind {
    pub(crate) const ALL: [TypeKind; 4] = [
        TypeKind::Cluster,
        TypeKind::Endpoint,
        TypeKind::Listener,
        TypeKind::Route,
    ];

    /// The xDS type URL.
    pub fn type_url(self) -> &'static str {
        match self {
            TypeKind::Cluster => type_url::CLUSTER,
            TypeKind::Endpoint => type_url::CLUSTER_LOAD_ASSIGNMENT,
            TypeKind::Listener => type_url::LISTENER,
            TypeKind::Route => type_url::ROUTE_CONFIGURATION,
        }
    }

    /// From a type URL.
    pub fn from_url(url: &str) -> Option<TypeKind> {
        TypeKind::ALL.into_iter().find(|k| k.type_url() == url)
    }

    /// `cds`, `eds`, `lds`, `rds` (the metric label).
    pub fn short(self) -> &'static str {
        match self {
            TypeKind::Cluster => "cds",
            TypeKind::Endpoint => "eds",
            TypeKind::Listener => "lds",
            TypeKind::Route => "rds",
        }
    }

    /// What a resource of the type is called in messages.
    pub fn resource_name(self) -> &'static str {
        match self {
            TypeKind::Cluster => "Cluster",
            TypeKind::Endpoint => "ClusterLoadAssignment",
            TypeKind::Listener => "Listener",
            TypeKind::Route => "RouteConfiguration",
        }
    }

    /// Named types are subscribed by name; the others are wildcard.
    pub fn named(self) -> bool {
        matches!(self, TypeKind::Endpoint | TypeKind::Route)
    }
}
