//! Test helpers shared by weft's integration tests (dev-dependency only).
//!
//! - [`EchoServer`]: an HTTP/1.1 + h2c backend on `127.0.0.1:0` that answers with a JSON
//!   description of the request it saw (its name, method, path, headers, body size), plus a
//!   few special paths for status codes, delays, streaming and body echo.
//! - [`FaultyServer`]: an HTTP/1.1 backend that resets, closes mid-body, stalls or never
//!   answers; [`refused_addr`]: an address that refuses connections.
//! - [`TcpEcho`] and [`TcpBanner`]: raw TCP backends (client-first echo, server-first banner).
//! - [`HttpClient`]: one HTTP/1.1 or h2c connection for tests.
//! - [`assert_eventually!`]: poll a condition with bounded patience instead of sleeping.

mod client;
mod control;
mod echo;
mod envoy;
mod faulty;
mod tcp;

pub use client::{HttpClient, Reply, request};
pub use control::control_addresses;
pub use echo::{ChannelBody, EchoServer, channel_body};
pub use envoy::{ads_bootstrap_tail, envoy_binary};
pub use faulty::{FaultyServer, Misbehaviour, refused_addr};
pub use tcp::{TcpBanner, TcpEcho};

/// Polls `cond` (an expression, re-evaluated each time) every 10 ms until it is true or
/// `timeout` (default 5 s) passes, then panics with the message. Use instead of fixed sleeps.
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr, $($msg:tt)+) => {
        $crate::assert_eventually!(@timeout std::time::Duration::from_secs(5), $cond, $($msg)+)
    };
    (@timeout $timeout:expr, $cond:expr, $($msg:tt)+) => {{
        let deadline = std::time::Instant::now() + $timeout;
        loop {
            if $cond {
                break;
            }
            if std::time::Instant::now() >= deadline {
                panic!("not true within {:?}: {}", $timeout, format!($($msg)+));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }};
}
