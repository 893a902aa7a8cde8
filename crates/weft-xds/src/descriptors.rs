//! Protobuf descriptors for every Envoy message, decoded only as far as a document needs.
//!
//! The build script indexes envoy-types' `FileDescriptorSet` (the same descriptors its Rust
//! types were generated from). Building a full `DescriptorPool` costs ~50 MB of heap; a pool
//! for the Bootstrap closure plus the handful of `@type`s a bootstrap names costs a fraction
//! and is dropped once the document is converted.

use crate::XdsError;
use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::FileDescriptorProto;
use std::collections::BTreeSet;

include!(concat!(env!("OUT_DIR"), "/envoy_index.rs"));
static BLOB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/envoy_files.bin"));

/// Whether envoy-types knows a message of this full name (`envoy.config.cluster.v3.Cluster`).
pub fn knows(message: &str) -> bool {
    file_of(message).is_some()
}

fn file_of(message: &str) -> Option<usize> {
    MESSAGES
        .binary_search_by(|(name, _)| (*name).cmp(message))
        .ok()
        .map(|i| usize::from(MESSAGES[i].1))
}

/// A pool holding every named message that envoy-types knows, with all its dependencies.
/// Unknown names are skipped: the caller meets them later as "unknown type" at a field path.
pub fn pool_for<'a>(
    messages: impl IntoIterator<Item = &'a str>,
) -> Result<DescriptorPool, XdsError> {
    let mut needed = BTreeSet::new();
    let mut stack: Vec<usize> = messages.into_iter().filter_map(file_of).collect();
    while let Some(file) = stack.pop() {
        if needed.insert(file) {
            stack.extend(FILES[file].2.iter().map(|&d| usize::from(d)));
        }
    }
    // Ascending index is protoc's topological order, so dependencies come first.
    let files = needed
        .into_iter()
        .map(|i| {
            let (offset, len, _) = FILES[i];
            let bytes = &BLOB[offset as usize..(offset + len) as usize];
            FileDescriptorProto::decode(bytes).map_err(|e| XdsError::Descriptors(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(files)
        .map_err(|e| XdsError::Descriptors(e.to_string()))?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_sorted_and_knows_envoy_types() {
        assert!(MESSAGES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(knows("envoy.config.bootstrap.v3.Bootstrap"));
        assert!(knows("google.protobuf.Any"));
        assert!(knows("envoy.config.route.v3.RouteAction.HashPolicy.Header"));
        assert!(!knows("envoy.config.nope.v3.Nope"));
    }

    #[test]
    fn pool_holds_requested_messages_and_their_dependencies() {
        let pool = pool_for(["envoy.config.bootstrap.v3.Bootstrap"]).expect("pool");
        assert!(
            pool.get_message_by_name("envoy.config.listener.v3.Listener")
                .is_some()
        );
        assert!(
            pool.get_message_by_name("google.protobuf.Duration")
                .is_some()
        );
        // Not reachable from Bootstrap without an Any naming it.
        assert!(
            pool.get_message_by_name("envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy")
                .is_none()
        );
    }
}
