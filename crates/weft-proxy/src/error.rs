use thiserror::Error;

/// A configuration problem, with the path of the field at fault from the document root
/// (`static_resources.clusters[2].load_assignment.endpoints[0]`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}: {message}", if field.is_empty() { "<root>" } else { field.as_str() })]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    /// An error about the value being converted; callers add the path with [`ConfigError::at`].
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError {
            field: String::new(),
            message: message.into(),
        }
    }

    /// Prefixes the path with a field name (`name`) or an index (`[3]`).
    pub fn at(mut self, segment: impl std::fmt::Display) -> ConfigError {
        let segment = segment.to_string();
        self.field = match (self.field.is_empty(), self.field.starts_with('[')) {
            (true, _) => segment,
            (false, true) => format!("{segment}{}", self.field),
            (false, false) => format!("{segment}.{}", self.field),
        };
        self
    }
}

/// Adds path segments to errors as they bubble up through nested conversions.
pub(crate) trait At<T> {
    fn at(self, segment: impl std::fmt::Display) -> Result<T, ConfigError>;
}

impl<T> At<T> for Result<T, ConfigError> {
    fn at(self, segment: impl std::fmt::Display) -> Result<T, ConfigError> {
        self.map_err(|e| e.at(segment))
    }
}

/// Everything weft-proxy can fail with outside the request path (request-path failures are
/// turned into responses in `http::respond`).
#[derive(Debug, Error)]
pub enum ProxyError {
    /// The bootstrap could not be read or parsed.
    #[error(transparent)]
    Xds(#[from] weft_xds::XdsError),
    /// The bootstrap parsed but is not a valid weft configuration.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// A listener or the admin server could not bind its address.
    #[error("binding {what} on {addr}: {source}")]
    Bind {
        what: String,
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Another I/O failure at start-up.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compose() {
        let e = ConfigError::new("bad")
            .at("address")
            .at("[2]")
            .at("clusters")
            .at("static_resources");
        assert_eq!(e.field, "static_resources.clusters[2].address");
        assert_eq!(e.to_string(), "static_resources.clusters[2].address: bad");
    }
}
