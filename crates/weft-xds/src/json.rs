//! Protobuf JSON of xDS resources (canonical field names, typed `Any` expanded), for
//! `/config_dump`, and the walk for fields a consumer does not implement. The descriptor pool is built per [`Renderer`] and dropped with it, so a
//! proxy pays for descriptors only while it renders.

use crate::pb::google::protobuf::Any;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

/// The resource types and every message they pack in an `Any` that weft knows of.
const MESSAGES: &[&str] = &[
    "envoy.config.cluster.v3.Cluster",
    "envoy.config.endpoint.v3.ClusterLoadAssignment",
    "envoy.config.listener.v3.Listener",
    "envoy.config.route.v3.RouteConfiguration",
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
    "envoy.extensions.filters.http.router.v3.Router",
    "envoy.extensions.filters.http.fault.v3.HTTPFault",
    "envoy.extensions.filters.http.cors.v3.Cors",
    "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
    "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
    "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
    "envoy.extensions.access_loggers.file.v3.FileAccessLog",
    "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
    "envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
];

/// Renders packed resources as protobuf JSON.
#[derive(Debug)]
pub struct Renderer {
    pool: Option<DescriptorPool>,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    /// Builds the descriptor pool (tens of milliseconds; a few MB while it lives).
    pub fn new() -> Renderer {
        Renderer {
            pool: crate::descriptors::pool_for(MESSAGES.iter().copied()).ok(),
        }
    }

    /// The set fields of `any` outside `support`, with their paths from the resource root.
    pub fn unsupported(&self, any: &Any, support: &crate::Support) -> Vec<crate::Unsupported> {
        let name = crate::type_url::message_name(&any.type_url);
        let Some(pool) = &self.pool else {
            return Vec::new();
        };
        let Some(desc) = pool.get_message_by_name(name) else {
            return Vec::new();
        };
        match DynamicMessage::decode(desc, any.value.as_slice()) {
            Ok(m) => crate::support::find_unsupported(pool, support, &m),
            Err(_) => Vec::new(),
        }
    }

    /// The protobuf JSON of `any`, or a JSON string saying why it could not be rendered.
    pub fn any_to_json(&self, any: &Any) -> serde_json::Value {
        let name = crate::type_url::message_name(&any.type_url);
        let Some(desc) = self.pool.as_ref().and_then(|p| p.get_message_by_name(name)) else {
            return serde_json::Value::String(format!("<no descriptor for {name}>"));
        };
        match DynamicMessage::decode(desc, any.value.as_slice()) {
            Ok(m) => m
                .serialize_with_options(
                    serde_json::value::Serializer,
                    &SerializeOptions::new()
                        .use_proto_field_name(true)
                        .stringify_64_bit_integers(false),
                )
                .unwrap_or_else(|e| serde_json::Value::String(format!("<{e}>"))),
            Err(e) => serde_json::Value::String(format!("<decoding {name}: {e}>")),
        }
    }
}
