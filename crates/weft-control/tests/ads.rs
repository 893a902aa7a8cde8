//! The ADS server over a real gRPC stream: ACK/NACK tracking, changed-only pushes, delta
//! removals. The client plays Envoy's part by hand.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::rpc::Status;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use weft_control::hub::Hub;
use weft_control::server::{ControlOptions, run};
use weft_control::store::ConfigStore;
use weft_xds::type_url;

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.0.21, labels: {app: reviews, version: v1}}
"#;

const V1: &str = "outbound|9080|v1|reviews.default.svc.cluster.local";
const V2: &str = "outbound|9080|v2|reviews.default.svc.cluster.local";

struct Plane {
    hub: Arc<Hub>,
    store: Arc<ConfigStore>,
    addr: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Plane {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("config.yaml"), CONFIG).expect("write");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = ControlOptions {
        config_dir: dir.path().to_path_buf(),
        xds_addr: "127.0.0.1:0".parse().expect("addr"),
        api_addr: "127.0.0.1:0".parse().expect("addr"),
        http10: false,
    };
    tokio::spawn(async move {
        run(
            opts,
            |r| {
                let _ = ready_tx.send((r.hub.clone(), r.store.clone(), r.xds_addr));
            },
            async {
                let _ = stop_rx.await;
            },
        )
        .await
        .expect("control plane runs");
    });
    let (hub, store, addr) = ready_rx.await.expect("ready");
    Plane {
        hub,
        store,
        addr: format!("http://{addr}"),
        _dir: dir,
        _stop: stop_tx,
    }
}

fn node() -> Option<Node> {
    Some(Node {
        id: "sidecar~127.0.0.10~productpage-v1.default~default.svc.cluster.local".into(),
        ..Default::default()
    })
}

async fn next<T>(stream: &mut tonic::Streaming<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("a response within 5s")
        .expect("stream ok")
        .expect("stream open")
}

fn names(r: &DiscoveryResponse) -> Vec<String> {
    use prost::Message;
    r.resources
        .iter()
        .map(|a| match a.type_url.as_str() {
            type_url::CLUSTER => {
                envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(a.value.as_slice())
                    .expect("cluster")
                    .name
            }
            type_url::CLUSTER_LOAD_ASSIGNMENT => {
                envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment::decode(
                    a.value.as_slice(),
                )
                .expect("cla")
                .cluster_name
            }
            type_url::LISTENER => {
                envoy_types::pb::envoy::config::listener::v3::Listener::decode(a.value.as_slice())
                    .expect("listener")
                    .name
            }
            other => other.to_owned(),
        })
        .collect()
}

fn req(t: &str, names: &[&str], prev: Option<&DiscoveryResponse>) -> DiscoveryRequest {
    DiscoveryRequest {
        node: node(),
        type_url: t.to_owned(),
        resource_names: names.iter().map(|s| (*s).to_owned()).collect(),
        version_info: prev.map(|p| p.version_info.clone()).unwrap_or_default(),
        response_nonce: prev.map(|p| p.nonce.clone()).unwrap_or_default(),
        ..Default::default()
    }
}

#[tokio::test]
async fn sotw_acks_nacks_and_pushes_only_what_changed() {
    let plane = start().await;
    let mut client = AggregatedDiscoveryServiceClient::connect(plane.addr.clone())
        .await
        .expect("connect");
    let (tx, rx) = mpsc::channel(8);
    let mut stream = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();

    tx.send(req(type_url::CLUSTER, &[], None))
        .await
        .expect("send");
    let cds = next(&mut stream).await;
    assert!(names(&cds).iter().any(|n| n == V1), "{:?}", names(&cds));
    tx.send(req(type_url::CLUSTER, &[], Some(&cds)))
        .await
        .expect("ack");

    tx.send(req(type_url::CLUSTER_LOAD_ASSIGNMENT, &[V1, V2], None))
        .await
        .expect("send");
    let eds = next(&mut stream).await;
    assert_eq!(names(&eds), [V1, V2]);
    tx.send(req(
        type_url::CLUSTER_LOAD_ASSIGNMENT,
        &[V1, V2],
        Some(&eds),
    ))
    .await
    .expect("ack");

    // The proxy rejects the listeners: recorded, logged, not resent.
    tx.send(req(type_url::LISTENER, &[], None))
        .await
        .expect("send");
    let lds = next(&mut stream).await;
    assert!(names(&lds).iter().any(|n| n == "virtualOutbound"));
    let mut nack = req(type_url::LISTENER, &[], Some(&lds));
    nack.version_info = String::new();
    nack.error_detail = Some(Status {
        code: 3,
        message: "listener virtualOutbound: bad filter".into(),
        ..Default::default()
    });
    tx.send(nack).await.expect("nack");

    // A new v2 workload changes only the v2 endpoints: one EDS response with just them,
    // and no listener resend (the listeners did not change).
    plane
        .store
        .apply(
            "we.yaml",
            "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: reviews-v2}\nspec: {address: 127.0.0.22, labels: {app: reviews, version: v2}}\n",
        )
        .expect("apply");
    let update = next(&mut stream).await;
    if update.type_url == type_url::CLUSTER {
        // A cluster push may come first only if clusters changed; they must not have.
        panic!("unexpected CDS push: {:?}", names(&update));
    }
    assert_eq!(update.type_url, type_url::CLUSTER_LOAD_ASSIGNMENT);
    assert_eq!(names(&update), [V2], "only the changed assignment");
    tx.send(req(
        type_url::CLUSTER_LOAD_ASSIGNMENT,
        &[V1, V2],
        Some(&update),
    ))
    .await
    .expect("ack");

    let conns = plane.hub.connections();
    assert_eq!(conns.len(), 1);
    let lds_status = &conns[0].types[type_url::LISTENER];
    assert_eq!(
        lds_status.last_nack.as_deref(),
        Some("listener virtualOutbound: bad filter")
    );
    assert!(lds_status.acked_version.is_empty(), "never accepted");
    assert_eq!(lds_status.pushes, 1, "a NACKed version is not resent");
    assert_eq!(
        plane
            .hub
            .stats
            .nacks
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn delta_sends_changes_and_removals() {
    let plane = start().await;
    let mut client = AggregatedDiscoveryServiceClient::connect(plane.addr.clone())
        .await
        .expect("connect");
    let (tx, rx) = mpsc::channel(8);
    let mut stream = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    tx.send(DeltaDiscoveryRequest {
        node: node(),
        type_url: type_url::CLUSTER.to_owned(),
        ..Default::default()
    })
    .await
    .expect("send");
    let first: DeltaDiscoveryResponse = next(&mut stream).await;
    let got: Vec<&str> = first.resources.iter().map(|r| r.name.as_str()).collect();
    assert!(got.contains(&V1) && got.contains(&V2), "{got:?}");
    tx.send(DeltaDiscoveryRequest {
        type_url: type_url::CLUSTER.to_owned(),
        response_nonce: first.nonce.clone(),
        ..Default::default()
    })
    .await
    .expect("ack");

    // Deleting the DestinationRule removes the subset clusters; the default cluster is
    // resent only because its `istio.config` metadata no longer names the rule.
    let (deleted, _) = plane
        .store
        .delete(
            "dr.yaml",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec: {host: reviews}\n",
        )
        .expect("delete");
    assert_eq!(deleted.len(), 1);
    let update: DeltaDiscoveryResponse = next(&mut stream).await;
    let resent: Vec<&str> = update.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        resent,
        ["outbound|9080||reviews.default.svc.cluster.local"],
        "only the default cluster changed"
    );
    assert_eq!(update.removed_resources, [V1, V2]);
}
