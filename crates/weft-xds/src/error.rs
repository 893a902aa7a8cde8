use thiserror::Error;

/// Everything weft-xds can fail with. Messages name the file or field at fault.
#[derive(Debug, Error)]
pub enum XdsError {
    /// The bootstrap file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The document is not well-formed YAML or JSON.
    #[error("{format} syntax: {message}")]
    Syntax {
        format: &'static str,
        message: String,
    },
    /// The document is well-formed but does not fit the Envoy message; `field` is the path
    /// from the root (`static_resources.listeners[0].address`), empty for the root itself.
    #[error("{}: {message}", if field.is_empty() { "<root>" } else { field.as_str() })]
    Invalid { field: String, message: String },
    /// The embedded descriptors are unusable (a build problem, not a user error).
    #[error("protobuf descriptors: {0}")]
    Descriptors(String),
    /// A protobuf message was not decodable as the type it claimed to be.
    #[error("decoding {type_name}: {source}")]
    Decode {
        type_name: String,
        #[source]
        source: prost::DecodeError,
    },
    /// A name that should follow Istio's cluster naming does not.
    #[error("not an Istio cluster name: {0:?}")]
    ClusterName(String),
}
