use thiserror::Error;

/// Everything weft-control can fail with. Messages say what was wrong and where.
#[derive(Debug, Error)]
pub enum ControlError {
    /// A connecting proxy's node id is not Istio's `TYPE~IP~NAME.NAMESPACE~DOMAIN`.
    #[error("node id {id:?} is not `sidecar|router~IP~NAME.NAMESPACE~DOMAIN`: {why}")]
    NodeId { id: String, why: String },
    /// The first request of an xDS stream carried no node.
    #[error("the first request of the stream has no node")]
    NoNode,
    /// Reading or writing the config directory failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The config directory could not be watched.
    #[error("watching {path}: {source}")]
    Watch {
        path: String,
        #[source]
        source: notify::Error,
    },
    /// Input given to the store had validation errors (each rendered like `weft validate`).
    #[error("invalid configuration:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// A resource could not be rendered back to YAML or JSON.
    #[error("rendering {what}: {message}")]
    Render { what: String, message: String },
    /// A server could not bind or serve.
    #[error("{what} on {addr}: {source}")]
    Serve {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The gRPC transport failed.
    #[error("xDS server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl ControlError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> ControlError {
        ControlError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
