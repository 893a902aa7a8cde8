//! weft's data-plane proxy.
//!
//! Configuration arrives as Envoy v3 resources (today a static bootstrap, later xDS), is
//! converted once into plain Rust types ([`config`]), and is read by the hot path through an
//! `ArcSwap` snapshot. See `docs/ARCHITECTURE.md` for how a request flows.

pub mod access_log;
pub mod config;
mod error;
pub mod flags;

pub use error::{ConfigError, ProxyError};
