//! Small conversions shared by the config modules.

use crate::error::ConfigError;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::{Address, DataSource, address, data_source};
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration};
use prost::Message;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A protobuf duration as a std one; negative durations are invalid everywhere in Envoy.
pub(crate) fn duration(d: Option<&PbDuration>) -> Result<Option<Duration>, ConfigError> {
    let Some(d) = d else { return Ok(None) };
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(ConfigError::new("duration must be non-negative"));
    }
    Ok(Some(Duration::new(d.seconds as u64, d.nanos as u32)))
}

/// Decodes an `Any` that must hold `type_url`.
pub(crate) fn decode_any<M: Message + Default>(
    any: &Any,
    type_url: &str,
) -> Result<M, ConfigError> {
    if any.type_url != type_url {
        return Err(ConfigError::new(format!(
            "expected {type_url}, got {}",
            any.type_url
        )));
    }
    M::decode(any.value.as_slice())
        .map_err(|e| ConfigError::new(format!("decoding {type_url}: {e}")))
}

/// A socket address whose host may still need DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPort {
    Ip(SocketAddr),
    Dns { host: String, port: u16 },
}

/// `address.socket_address` as host and port (pipes and internal addresses are unsupported).
pub(crate) fn host_port(a: Option<&Address>) -> Result<HostPort, ConfigError> {
    let Some(Address {
        address: Some(address::Address::SocketAddress(sa)),
    }) = a
    else {
        return Err(ConfigError::new("a socket_address is required"));
    };
    let port = match sa.port_specifier {
        Some(PortSpecifier::PortValue(p)) => {
            u16::try_from(p).map_err(|_| ConfigError::new("port out of range").at("port_value"))?
        }
        Some(PortSpecifier::NamedPort(_)) => {
            return Err(ConfigError::new("named ports are not supported").at("named_port"));
        }
        None => 0,
    };
    if sa.address.is_empty() {
        return Err(ConfigError::new("address is required").at("address"));
    }
    Ok(match sa.address.parse::<IpAddr>() {
        Ok(ip) => HostPort::Ip(SocketAddr::new(ip, port)),
        Err(_) => HostPort::Dns {
            host: sa.address.clone(),
            port,
        },
    })
}

/// `address.socket_address` that must be an IP literal (listeners, static endpoints).
pub(crate) fn ip_socket_addr(a: Option<&Address>) -> Result<SocketAddr, ConfigError> {
    match host_port(a).map_err(|e| e.at("socket_address"))? {
        HostPort::Ip(addr) => Ok(addr),
        HostPort::Dns { host, .. } => {
            Err(ConfigError::new(format!("{host:?} is not an IP address"))
                .at("address")
                .at("socket_address"))
        }
    }
}

/// Inline data (`inline_string`, `inline_bytes`) or a file read once at load.
pub(crate) fn data_source(d: &DataSource) -> Result<bytes::Bytes, ConfigError> {
    match &d.specifier {
        Some(data_source::Specifier::InlineString(s)) => Ok(bytes::Bytes::from(s.clone())),
        Some(data_source::Specifier::InlineBytes(b)) => Ok(bytes::Bytes::from(b.clone())),
        Some(data_source::Specifier::Filename(f)) => std::fs::read(f)
            .map(bytes::Bytes::from)
            .map_err(|e| ConfigError::new(format!("reading {f}: {e}")).at("filename")),
        Some(data_source::Specifier::EnvironmentVariable(v)) => std::env::var(v)
            .map(bytes::Bytes::from)
            .map_err(|_| ConfigError::new(format!("${v} is not set")).at("environment_variable")),
        None => Ok(bytes::Bytes::new()),
    }
}

/// Envoy's `FractionalPercent`: `numerator` out of 100, 10 000 or 1 000 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction {
    pub numerator: u32,
    pub denominator: u32,
}

impl Fraction {
    /// Always.
    pub const ALL: Fraction = Fraction {
        numerator: 100,
        denominator: 100,
    };

    /// Converts a `FractionalPercent`; unset is 0% as in Envoy (a message left out reads as
    /// its zero value).
    pub(crate) fn from_pb(
        p: Option<&envoy_types::pb::envoy::r#type::v3::FractionalPercent>,
    ) -> Result<Fraction, ConfigError> {
        use envoy_types::pb::envoy::r#type::v3::fractional_percent::DenominatorType as D;
        let Some(p) = p else {
            return Ok(Fraction {
                numerator: 0,
                denominator: 100,
            });
        };
        let denominator = match D::try_from(p.denominator) {
            Ok(D::Hundred) => 100,
            Ok(D::TenThousand) => 10_000,
            Ok(D::Million) => 1_000_000,
            Err(_) => {
                return Err(
                    ConfigError::new(format!("unknown denominator {}", p.denominator))
                        .at("denominator"),
                );
            }
        };
        Ok(Fraction {
            numerator: p.numerator,
            denominator,
        })
    }

    /// The same denominator with another numerator.
    pub fn with_numerator(self, numerator: u32) -> Fraction {
        Fraction { numerator, ..self }
    }

    /// A random draw: true with probability numerator/denominator (capped at 1).
    pub fn roll(self) -> bool {
        self.numerator >= self.denominator || fastrand::u32(..self.denominator) < self.numerator
    }
}
