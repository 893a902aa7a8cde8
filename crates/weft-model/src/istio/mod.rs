//! Istio APIs: `networking.istio.io`, `security.istio.io`, `telemetry.istio.io`.

pub mod networking;
pub mod security;
pub mod telemetry;
