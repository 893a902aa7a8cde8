//! Istio's Bookinfo sample application, written in Rust for weft.
//!
//! Four services behave as Istio's sample does, so the tutorials that use it
//! (request routing, fault injection, traffic shifting) show the same things:
//!
//! - [`productpage`]: the HTML page; calls `details` and `reviews`.
//! - [`details`]: the book's details as JSON.
//! - [`reviews`]: two reviews; `v1` shows no stars, `v2` asks `ratings` and
//!   shows black stars, `v3` asks `ratings` and shows red stars.
//! - [`ratings`]: the stars each reviewer gave.
//!
//! Every service is a library function, `serve(listener, config)`, so tests can
//! run the whole application in one process on `127.0.0.1:0`. Outbound calls go
//! straight to the upstream's host, or through an HTTP proxy (the sidecar's
//! outbound listener in weft's local mode) when one is configured; see
//! [`proxy::ProxyConfig`].

pub mod client;
pub mod details;
mod headers;
mod http;
pub mod model;
pub mod productpage;
pub mod proxy;
pub mod ratings;
pub mod reviews;
mod url;

pub use url::{BaseUrl, InvalidUrl};
