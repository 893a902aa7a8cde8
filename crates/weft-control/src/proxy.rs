//! Who a connected proxy is: parsed from the xDS `Node` it sends first, with Istio's node id
//! format and metadata keys so an Envoy bootstrap written for Istio works unchanged.

use crate::ControlError;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{Struct, value::Kind};
use std::collections::BTreeMap;

/// Whether the proxy is a workload's sidecar or a standalone gateway (`router` in Istio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyRole {
    Sidecar,
    Gateway,
}

/// A proxy's identity and workload, everything translation may depend on.
///
/// Built from node id `sidecar~10.0.0.1~reviews-v2-abc.default~default.svc.cluster.local`
/// (`router~...` for gateways) and metadata keys `LABELS`, `NAMESPACE`, `NAME`,
/// `WORKLOAD_NAME`, `SERVICE_ACCOUNT`, `INSTANCE_IPS`, `CLUSTER_ID`. Metadata wins over
/// the id where both say something.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ProxyIdentity {
    /// The node id as sent.
    pub id: String,
    pub role: ProxyRole,
    /// The pod (or process) name.
    pub name: String,
    pub namespace: String,
    /// The workload (Deployment, WorkloadEntry...) this proxy is an instance of.
    pub workload_name: String,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    /// The workload's addresses, first is primary (from `INSTANCE_IPS`, else the id's IP).
    pub ips: Vec<String>,
    pub cluster_id: String,
    /// Local-mode override of the outbound capture listener (`WEFT_OUTBOUND_ADDR`,
    /// `IP:PORT`); default `0.0.0.0:15001`. Lets many sidecars share one machine.
    pub outbound_addr: Option<(String, u16)>,
    /// Local-mode override of the inbound capture listener (`WEFT_INBOUND_ADDR`); default
    /// `0.0.0.0:15006`.
    pub inbound_addr: Option<(String, u16)>,
    /// Local-mode override of where a gateway binds the listener of a Gateway server port
    /// (`WEFT_GATEWAY_BIND`, `PORT=IP:PORT,...`): the bind address a Kubernetes Service
    /// would map to the container port. Ports not listed bind `0.0.0.0:PORT`.
    pub gateway_bind: BTreeMap<u16, (String, u16)>,
    /// Local-mode override of the address inbound clusters reach the application at
    /// (`WEFT_APP_IP`); default the workload's own IP. Transparent capture in a network
    /// namespace sets `127.0.0.1` (Istio's pre-1.10 behaviour) so the proxy's call to its
    /// application is not captured again.
    pub app_ip: Option<String>,
    /// The proxy's HTTP listeners accept HTTP/1.0 requests (Envoy's
    /// `http_protocol_options.accept_http_10`) instead of answering 426: Istio's `HTTP10`
    /// metadata (`ISTIO_META_HTTP10=1` in the proxy's environment or pod
    /// `proxyMetadata`), or the control plane's `PILOT_HTTP10` for every proxy.
    pub http10: bool,
}

/// Metadata key: the workload's labels (a struct of strings).
pub const META_LABELS: &str = "LABELS";
/// Metadata key: the namespace.
pub const META_NAMESPACE: &str = "NAMESPACE";
/// Metadata key: the pod name.
pub const META_NAME: &str = "NAME";
/// Metadata key: the workload name.
pub const META_WORKLOAD_NAME: &str = "WORKLOAD_NAME";
/// Metadata key: the service account.
pub const META_SERVICE_ACCOUNT: &str = "SERVICE_ACCOUNT";
/// Metadata key: comma-separated instance IPs.
pub const META_INSTANCE_IPS: &str = "INSTANCE_IPS";
/// Metadata key: the cluster id.
pub const META_CLUSTER_ID: &str = "CLUSTER_ID";
/// Metadata key: `"1"` lets the proxy's HTTP listeners accept HTTP/1.0 (Istio's key).
pub const META_HTTP10: &str = "HTTP10";
/// weft local-mode key: outbound listener address `IP:PORT`.
pub const META_OUTBOUND_ADDR: &str = "WEFT_OUTBOUND_ADDR";
/// weft local-mode key: inbound listener address `IP:PORT`.
pub const META_INBOUND_ADDR: &str = "WEFT_INBOUND_ADDR";
/// weft local-mode key: gateway listener addresses `PORT=IP:PORT,...`.
pub const META_GATEWAY_BIND: &str = "WEFT_GATEWAY_BIND";
/// weft local-mode key: the IP inbound clusters send to.
pub const META_APP_IP: &str = "WEFT_APP_IP";

impl ProxyIdentity {
    /// Parses the node a proxy sends on its first xDS request.
    pub fn from_node(node: &Node) -> Result<ProxyIdentity, ControlError> {
        let bad = |why: &str| ControlError::NodeId {
            id: node.id.clone(),
            why: why.to_owned(),
        };
        let parts: Vec<&str> = node.id.split('~').collect();
        let [kind, ip, pod, _domain] = parts.as_slice() else {
            return Err(bad("expected four `~`-separated parts"));
        };
        let role = match *kind {
            "sidecar" => ProxyRole::Sidecar,
            "router" => ProxyRole::Gateway,
            other => return Err(bad(&format!("unknown proxy type `{other}`"))),
        };
        let (id_name, id_ns) = pod.split_once('.').unwrap_or((pod, ""));
        let empty = Struct::default();
        let meta = node.metadata.as_ref().unwrap_or(&empty);
        let string = |key: &str| match meta.fields.get(key).and_then(|v| v.kind.as_ref()) {
            Some(Kind::StringValue(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let labels = match meta.fields.get(META_LABELS).and_then(|v| v.kind.as_ref()) {
            Some(Kind::StructValue(s)) => s
                .fields
                .iter()
                .filter_map(|(k, v)| match &v.kind {
                    Some(Kind::StringValue(s)) => Some((k.clone(), s.clone())),
                    _ => None,
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let name = string(META_NAME).unwrap_or_else(|| id_name.to_owned());
        let namespace = string(META_NAMESPACE)
            .or_else(|| (!id_ns.is_empty()).then(|| id_ns.to_owned()))
            .unwrap_or_else(|| "default".to_owned());
        let mut ips: Vec<String> = string(META_INSTANCE_IPS)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if ips.is_empty() && !ip.is_empty() {
            ips.push((*ip).to_owned());
        }
        let parse_addr = |key: &str, v: &str| -> Result<(String, u16), ControlError> {
            let (host, port) = v
                .rsplit_once(':')
                .ok_or_else(|| bad(&format!("{key} must be IP:PORT, got {v:?}")))?;
            let port = port
                .parse()
                .map_err(|_| bad(&format!("{key} has a bad port: {v:?}")))?;
            Ok((host.to_owned(), port))
        };
        let addr = |key: &str| -> Result<Option<(String, u16)>, ControlError> {
            string(key).map(|v| parse_addr(key, &v)).transpose()
        };
        let mut gateway_bind = BTreeMap::new();
        if let Some(v) = string(META_GATEWAY_BIND) {
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (port, to) = item.split_once('=').ok_or_else(|| {
                    bad(&format!(
                        "{META_GATEWAY_BIND} must be PORT=IP:PORT,..., got {item:?}"
                    ))
                })?;
                let port: u16 = port
                    .trim()
                    .parse()
                    .map_err(|_| bad(&format!("{META_GATEWAY_BIND} has a bad port: {item:?}")))?;
                gateway_bind.insert(port, parse_addr(META_GATEWAY_BIND, to.trim())?);
            }
        }
        Ok(ProxyIdentity {
            id: node.id.clone(),
            role,
            workload_name: string(META_WORKLOAD_NAME).unwrap_or_else(|| name.clone()),
            name,
            namespace,
            labels,
            service_account: string(META_SERVICE_ACCOUNT).unwrap_or_else(|| "default".into()),
            ips,
            cluster_id: string(META_CLUSTER_ID).unwrap_or_else(|| "Kubernetes".into()),
            outbound_addr: addr(META_OUTBOUND_ADDR)?,
            inbound_addr: addr(META_INBOUND_ADDR)?,
            gateway_bind,
            app_ip: string(META_APP_IP),
            // Istio compares with "1" exactly.
            http10: string(META_HTTP10).as_deref() == Some("1"),
        })
    }

    /// A sidecar identity for tests and tools: `sidecar~IP~NAME.NS~NS.svc.cluster.local`.
    pub fn sidecar(name: &str, namespace: &str, ip: &str, labels: &[(&str, &str)]) -> Self {
        ProxyIdentity {
            id: format!("sidecar~{ip}~{name}.{namespace}~{namespace}.svc.cluster.local"),
            role: ProxyRole::Sidecar,
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            workload_name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            service_account: "default".to_owned(),
            ips: vec![ip.to_owned()],
            cluster_id: "Kubernetes".to_owned(),
            outbound_addr: None,
            inbound_addr: None,
            gateway_bind: BTreeMap::new(),
            app_ip: None,
            http10: false,
        }
    }

    /// A gateway identity (`router~...`), otherwise as [`ProxyIdentity::sidecar`].
    pub fn gateway(name: &str, namespace: &str, ip: &str, labels: &[(&str, &str)]) -> Self {
        let mut p = ProxyIdentity::sidecar(name, namespace, ip, labels);
        p.id = p.id.replacen("sidecar~", "router~", 1);
        p.role = ProxyRole::Gateway;
        p
    }

    /// The primary address of the workload, if it announced one.
    pub fn ip(&self) -> Option<&str> {
        self.ips.first().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::google::protobuf::Value;

    fn s(v: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(v.to_owned())),
        }
    }

    #[test]
    fn parses_istio_node_id_and_metadata() {
        let labels = Struct {
            fields: [
                ("app".to_owned(), s("reviews")),
                ("version".into(), s("v2")),
            ]
            .into_iter()
            .collect(),
        };
        let node = Node {
            id: "sidecar~10.1.0.7~reviews-v2-5d8.default~default.svc.cluster.local".into(),
            metadata: Some(Struct {
                fields: [
                    (
                        META_LABELS.to_owned(),
                        Value {
                            kind: Some(Kind::StructValue(labels)),
                        },
                    ),
                    (META_WORKLOAD_NAME.into(), s("reviews-v2")),
                    (META_SERVICE_ACCOUNT.into(), s("bookinfo-reviews")),
                    (META_INSTANCE_IPS.into(), s("127.0.0.7, 10.1.0.7")),
                    (META_OUTBOUND_ADDR.into(), s("127.0.0.1:25001")),
                    (META_HTTP10.into(), s("1")),
                ]
                .into_iter()
                .collect(),
            }),
            ..Default::default()
        };
        let p = ProxyIdentity::from_node(&node).expect("parses");
        assert_eq!(p.role, ProxyRole::Sidecar);
        assert_eq!(p.name, "reviews-v2-5d8");
        assert_eq!(p.namespace, "default");
        assert_eq!(p.workload_name, "reviews-v2");
        assert_eq!(p.labels["version"], "v2");
        assert_eq!(p.ips, ["127.0.0.7", "10.1.0.7"]);
        assert_eq!(p.service_account, "bookinfo-reviews");
        assert_eq!(p.outbound_addr, Some(("127.0.0.1".into(), 25001)));
        assert!(p.gateway_bind.is_empty());
        assert_eq!(p.app_ip, None);
        assert!(p.http10);
    }

    #[test]
    fn local_mode_gateway_bind_and_app_ip() {
        let node = Node {
            id: "router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local".into(),
            metadata: Some(Struct {
                fields: [
                    (
                        META_GATEWAY_BIND.to_owned(),
                        s("8080=127.0.0.1:18080, 443=127.0.0.2:8443"),
                    ),
                    (META_APP_IP.into(), s("127.0.0.1")),
                ]
                .into_iter()
                .collect(),
            }),
            ..Default::default()
        };
        let p = ProxyIdentity::from_node(&node).expect("parses");
        assert_eq!(p.gateway_bind[&8080], ("127.0.0.1".to_owned(), 18080));
        assert_eq!(p.gateway_bind[&443], ("127.0.0.2".to_owned(), 8443));
        assert_eq!(p.app_ip.as_deref(), Some("127.0.0.1"));
        assert!(!p.http10, "no HTTP10 metadata");
        let mut bad = node.clone();
        bad.metadata
            .as_mut()
            .unwrap()
            .fields
            .insert(META_GATEWAY_BIND.to_owned(), s("8080:127.0.0.1:18080"));
        let err = ProxyIdentity::from_node(&bad).expect_err("rejected");
        assert!(err.to_string().contains("WEFT_GATEWAY_BIND"), "{err}");
    }

    #[test]
    fn router_is_a_gateway_and_bad_ids_are_explained() {
        let node = Node {
            id: "router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local".into(),
            ..Default::default()
        };
        let p = ProxyIdentity::from_node(&node).expect("parses");
        assert_eq!(p.role, ProxyRole::Gateway);
        assert_eq!(p.namespace, "istio-system");
        assert_eq!(p.ip(), Some("127.0.0.1"));
        let bad = Node {
            id: "envoy-1".into(),
            ..Default::default()
        };
        let err = ProxyIdentity::from_node(&bad).expect_err("rejected");
        assert!(err.to_string().contains("four"), "{err}");
    }
}
