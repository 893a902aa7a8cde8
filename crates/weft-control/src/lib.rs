//! weft's control plane.
//!
//! ```text
//! config dir / REST API ──► store ──► Snapshot (resources + registry) ──► translate ──► ADS
//!                                        ▲                                 (pure fn)    │
//!                       connected proxies (node metadata) ◄────────────────────────────┘
//! ```
//!
//! - [`registry`]: services and workloads from several sources behind one trait.
//! - [`snapshot`]: the immutable input of translation.
//! - [`translate`]: `generate(&Snapshot, &ProxyIdentity)` → Envoy clusters, endpoints,
//!   listeners and routes with Istio's names.
//! - [`json`]: protobuf JSON of generated resources (golden files, debug views).

mod error;
pub mod json;
pub mod proxy;
pub mod registry;
pub mod snapshot;
pub mod translate;

pub use error::ControlError;
pub use proxy::{ProxyIdentity, ProxyRole};
pub use snapshot::Snapshot;
pub mod ads;
pub mod api;
pub mod encoded;
pub mod hub;
pub mod inspect;
pub mod server;
pub mod store;
