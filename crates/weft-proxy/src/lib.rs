//! weft's data-plane proxy.
//!
//! Configuration arrives as Envoy v3 resources (today a static bootstrap, later xDS), is
//! converted once into plain Rust types ([`config`]), and is read by the hot path through
//! `ArcSwap` snapshots (route tables per HTTP connection manager, endpoints per cluster).
//! See `docs/ARCHITECTURE.md` for how a request flows.
//!
//! Start a proxy with [`start`], which returns a [`ProxyHandle`] to find bound addresses,
//! wait for `/quitquitquit`, and drain.

pub mod access_log;
pub mod admin;
pub mod config;
mod error;
pub mod flags;
pub mod http;
mod http1;
pub mod listener;
pub mod listener_manager;
pub mod memory;
mod proxy;
pub mod runtime;
pub mod sniff;
pub mod stats;
pub mod tcp;
pub mod upstream;
pub mod xds;

pub use config::ProxyConfig;
pub use error::{ConfigError, ProxyError};
pub use proxy::{Drain, LogControl, ProxyHandle, StartOptions, start, start_with};
