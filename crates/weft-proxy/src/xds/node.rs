//! The xDS `Node` a proxy introduces itself with: Istio's node id and metadata keys, so the
//! control plane (weft's, or Istio's) knows which workload this proxy serves.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use std::collections::BTreeMap;

/// Whether the proxy is a workload's sidecar or a standalone gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Sidecar,
    /// Istio's `router` node type (ingress/egress gateways).
    Gateway,
}

/// Who the proxy is. Every field has Istio's meaning; [`NodeSpec::node`] renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub role: Role,
    /// The pod (or process) name.
    pub name: String,
    pub namespace: String,
    /// The workload's address (the node id's IP and `INSTANCE_IPS`).
    pub ip: String,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    /// The workload this proxy is an instance of (default: `name`).
    pub workload: Option<String>,
    pub cluster_id: String,
    /// Extra metadata strings (`WEFT_OUTBOUND_ADDR`, ...).
    pub meta: BTreeMap<String, String>,
}

impl Default for NodeSpec {
    fn default() -> Self {
        NodeSpec {
            role: Role::Sidecar,
            name: "weft-proxy".into(),
            namespace: "default".into(),
            ip: "127.0.0.1".into(),
            labels: BTreeMap::new(),
            service_account: "default".into(),
            workload: None,
            cluster_id: "Kubernetes".into(),
            meta: BTreeMap::new(),
        }
    }
}

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

impl NodeSpec {
    /// Istio's node id: `sidecar~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local`.
    pub fn id(&self) -> String {
        let kind = match self.role {
            Role::Sidecar => "sidecar",
            Role::Gateway => "router",
        };
        let (ip, name, ns) = (&self.ip, &self.name, &self.namespace);
        format!("{kind}~{ip}~{name}.{ns}~{ns}.svc.cluster.local")
    }

    /// The `Node` sent on the first request of every stream.
    pub fn node(&self) -> Node {
        let mut fields: BTreeMap<String, Value> = self
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), string(v)))
            .collect();
        let labels = Struct {
            fields: self
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), string(v)))
                .collect(),
        };
        fields.insert(
            "LABELS".into(),
            Value {
                kind: Some(Kind::StructValue(labels)),
            },
        );
        let workload = self.workload.as_deref().unwrap_or(&self.name);
        for (k, v) in [
            ("NAMESPACE", self.namespace.as_str()),
            ("NAME", self.name.as_str()),
            ("WORKLOAD_NAME", workload),
            ("SERVICE_ACCOUNT", self.service_account.as_str()),
            ("INSTANCE_IPS", self.ip.as_str()),
            ("CLUSTER_ID", self.cluster_id.as_str()),
        ] {
            fields.insert(k.into(), string(v));
        }
        let app = self.labels.get("app").map_or(workload, String::as_str);
        Node {
            id: self.id(),
            cluster: format!("{app}.{}", self.namespace),
            metadata: Some(Struct {
                fields: fields.into_iter().collect(),
            }),
            user_agent_name: "weft".into(),
            ..Default::default()
        }
    }
}

/// Parses `k=v,k2=v2` (the `--labels` syntax); empty input is no labels.
pub fn parse_pairs(s: &str) -> Result<BTreeMap<String, String>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(format!("expected KEY=VALUE, got {p:?}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_node_id_and_metadata() {
        let spec = NodeSpec {
            role: Role::Gateway,
            name: "ingress".into(),
            namespace: "istio-system".into(),
            ip: "127.0.0.5".into(),
            labels: parse_pairs("istio=ingressgateway, app=gw").expect("labels"),
            meta: [(
                "WEFT_OUTBOUND_ADDR".to_owned(),
                "127.0.0.5:15001".to_owned(),
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let node = spec.node();
        assert_eq!(
            node.id,
            "router~127.0.0.5~ingress.istio-system~istio-system.svc.cluster.local"
        );
        let meta = node.metadata.expect("metadata").fields;
        let s = |k: &str| match meta.get(k).and_then(|v| v.kind.as_ref()) {
            Some(Kind::StringValue(s)) => s.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(s("NAMESPACE"), "istio-system");
        assert_eq!(s("WORKLOAD_NAME"), "ingress");
        assert_eq!(s("INSTANCE_IPS"), "127.0.0.5");
        assert_eq!(s("WEFT_OUTBOUND_ADDR"), "127.0.0.5:15001");
        let Some(Kind::StructValue(labels)) = meta.get("LABELS").and_then(|v| v.kind.clone())
        else {
            panic!("LABELS is a struct")
        };
        assert_eq!(labels.fields.len(), 2);
        assert!(parse_pairs("novalue").is_err());
    }
}
