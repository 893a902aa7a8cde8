//! Protobuf JSON of Envoy resources (canonical field names, typed `Any` expanded), for
//! golden files and debug views. Uses weft-xds's embedded descriptors.

use envoy_types::pb::google::protobuf::Any;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use std::sync::OnceLock;

/// Every message translation packs, directly or inside an `Any`.
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
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
];

fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| weft_xds::descriptors::pool_for(MESSAGES.iter().copied()).ok())
        .as_ref()
}

/// The protobuf JSON of a packed resource, or a JSON string saying why it could not be
/// rendered (an unknown type is a bug in this list, not in the resource).
pub fn any_to_json(any: &Any) -> serde_json::Value {
    let name = weft_xds::type_url::message_name(&any.type_url);
    let Some(desc) = pool().and_then(|p| p.get_message_by_name(name)) else {
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

/// The protobuf JSON of a message.
pub fn to_json<M: prost::Message + prost::Name>(m: &M) -> serde_json::Value {
    any_to_json(&crate::translate::any(m))
}
