//! Control-plane scale harness (issue 5): 1000 services × 10 endpoints, 100 connected ADS
//! clients on real gRPC streams that ACK every push. Measures the time from one endpoint
//! change (`store.apply` of a changed WorkloadEntry, the path `weft apply` takes, debounce
//! included) to every proxy having ACKed it, the bytes pushed per change, and the control
//! plane's memory (RSS loaded, connected, peak).
//!
//! ```text
//! cargo bench -p weft-control --bench scale
//! WEFT_SCALE_SERVICES=1000 WEFT_SCALE_ENDPOINTS=10 WEFT_SCALE_PROXIES=100 \
//!   WEFT_SCALE_CHANGES=30 WEFT_SCALE_DELTA=1 cargo bench -p weft-control --bench scale
//! ```
//!
//! The clients run in a child process (this binary again, `WEFT_SCALE_ROLE=clients`) so
//! their memory and CPU are not counted as the control plane's RSS. Everything binds
//! 127.0.0.1:0. Not a test: it asserts nothing and prints figures (see
//! docs/control-plane-scale.md).

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use prost::Message;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use weft_control::hub::Hub;
use weft_control::server::{ControlOptions, run};
use weft_control::store::ConfigStore;
use weft_xds::type_url;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `(VmRSS, VmHWM)` of this process in MiB.
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    if std::env::var("WEFT_SCALE_ROLE").as_deref() == Ok("clients") {
        clients();
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(bench());
}

fn service_entry(i: usize) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: svc-{i}}}\nspec:\n  hosts: [svc-{i}.default.svc.cluster.local]\n  location: MESH_INTERNAL\n  ports: [{{number: 8080, name: http, protocol: HTTP}}]\n  resolution: STATIC\n  workloadSelector: {{labels: {{app: svc-{i}}}}}\n"
    )
}

fn workload_entry(i: usize, j: usize, address: &str) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: svc-{i}-{j}}}\nspec: {{address: {address}, labels: {{app: svc-{i}}}}}\n"
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// True when `want` proxies are connected, each with every type ACKed and an EDS response
/// generated from snapshot `at_least` (or later). A snapshot that changes nothing for a
/// proxy sends it nothing, so waits for "settled" pass 0.
fn all_acked(hub: &Hub, want: usize, at_least: u64) -> bool {
    let conns = hub.connections();
    conns.len() == want
        && conns.iter().all(|c| {
            c.types.len() == 4
                && c.types
                    .get(type_url::CLUSTER_LOAD_ASSIGNMENT)
                    .is_some_and(|s| s.snapshot >= at_least && s.acked_version == s.sent_version)
                && c.synced()
        })
}

async fn wait_for(what: &str, patience: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > patience {
            panic!("{what}: not reached after {patience:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

async fn bench() {
    let services = env_usize("WEFT_SCALE_SERVICES", 1000);
    let endpoints = env_usize("WEFT_SCALE_ENDPOINTS", 10);
    let proxies = env_usize("WEFT_SCALE_PROXIES", 100);
    let changes = env_usize("WEFT_SCALE_CHANGES", 20);
    let delta = std::env::var("WEFT_SCALE_DELTA").is_ok_and(|v| v == "1");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut svc_yaml = String::new();
    let mut we_yaml = String::new();
    for i in 0..services {
        svc_yaml.push_str(&service_entry(i));
        for j in 0..endpoints {
            // svc-0-0 lives in its own file: it is the one the benchmark changes.
            if i == 0 && j == 0 {
                continue;
            }
            let n = i * endpoints + j;
            let addr = format!("10.{}.{}.{}", n / 65536, (n / 256) % 256, n % 256);
            we_yaml.push_str(&workload_entry(i, j, &addr));
        }
    }
    std::fs::write(dir.path().join("services.yaml"), svc_yaml).expect("write");
    std::fs::write(dir.path().join("workloads.yaml"), we_yaml).expect("write");
    std::fs::write(
        dir.path().join("change.yaml"),
        workload_entry(0, 0, "10.250.0.0"),
    )
    .expect("write");

    let start = Instant::now();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (_stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
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
    let (hub, store, xds): (Arc<Hub>, Arc<ConfigStore>, _) = ready_rx.await.expect("ready");
    let load_time = start.elapsed();
    let (rss_loaded, _) = rss();
    let snap = hub.snapshot();
    eprintln!(
        "loaded {} resources, {} services in {load_time:?}; RSS {rss_loaded:.1} MiB",
        snap.resources.len(),
        snap.registry.services.len()
    );

    // The clients, in their own process.
    let exe = std::env::current_exe().expect("exe");
    let mut child = std::process::Command::new(exe)
        .env("WEFT_SCALE_ROLE", "clients")
        .env("WEFT_SCALE_XDS", xds.to_string())
        .env("WEFT_SCALE_PROXIES", proxies.to_string())
        .env("WEFT_SCALE_DELTA", if delta { "1" } else { "0" })
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("start clients");
    let connect_start = Instant::now();
    let bytes_before = hub.stats.bytes_pushed.load(Ordering::Relaxed);
    let initial = wait_for(
        "all proxies connected and synced",
        Duration::from_secs(600),
        || all_acked(&hub, proxies, 0),
    )
    .await;
    // Let the snapshots caused by the connections themselves settle, then sync again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_for(
        "synced after connection snapshots",
        Duration::from_secs(600),
        || all_acked(&hub, proxies, 0),
    )
    .await;
    let connect_total = connect_start.elapsed();
    let initial_bytes = hub.stats.bytes_pushed.load(Ordering::Relaxed) - bytes_before;
    let (rss_connected, hwm_connected) = rss();
    eprintln!(
        "{proxies} proxies synced in {initial:?} (settled {connect_total:?}); {:.1} MiB pushed; RSS {rss_connected:.1} MiB, peak {hwm_connected:.1} MiB",
        initial_bytes as f64 / (1 << 20) as f64
    );

    let mut times = Vec::new();
    let mut build_times = Vec::new();
    let mut bytes = Vec::new();
    for k in 0..changes {
        let addr = format!("10.250.{}.{}", (k + 1) / 256, (k + 1) % 256);
        let yaml = workload_entry(0, 0, &addr);
        let before = hub.snapshot().version;
        let b0 = hub.stats.bytes_pushed.load(Ordering::Relaxed);
        let t0 = Instant::now();
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.apply("change.yaml", &yaml))
            .await
            .expect("join")
            .expect("apply");
        wait_for("snapshot built", Duration::from_secs(60), || {
            hub.snapshot().version > before
        })
        .await;
        let built = t0.elapsed();
        let v = hub.snapshot().version;
        wait_for(
            "all proxies ACKed the change",
            Duration::from_secs(120),
            || all_acked(&hub, proxies, v),
        )
        .await;
        times.push(t0.elapsed());
        build_times.push(built);
        bytes.push(hub.stats.bytes_pushed.load(Ordering::Relaxed) - b0);
        // The file watcher sees the same write and may rebuild once more: let it pass.
        tokio::time::sleep(Duration::from_millis(150)).await;
        wait_for("settled", Duration::from_secs(120), || {
            all_acked(&hub, proxies, 0)
        })
        .await;
    }
    let (rss_end, hwm_end) = rss();
    times.sort();
    build_times.sort();
    bytes.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!();
    println!(
        "## {services} services × {endpoints} endpoints, {proxies} proxies ({}), {changes} changes",
        if delta { "delta" } else { "SotW" }
    );
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| endpoint change → all proxies ACKed, median | {:.1} ms |",
        ms(percentile(&times, 0.5))
    );
    println!(
        "| endpoint change → all proxies ACKed, p90 | {:.1} ms |",
        ms(percentile(&times, 0.9))
    );
    println!("| ... max | {:.1} ms |", ms(percentile(&times, 1.0)));
    println!(
        "| of which apply + debounce + snapshot build, median | {:.1} ms |",
        ms(percentile(&build_times, 0.5))
    );
    println!(
        "| bytes pushed per change (all proxies), median | {:.1} KiB ({:.0} B per proxy) |",
        percentile_u64(&bytes, 0.5) as f64 / 1024.0,
        percentile_u64(&bytes, 0.5) as f64 / proxies as f64
    );
    println!(
        "| first sync of all proxies | {:.0} ms, {:.1} MiB pushed |",
        ms(initial),
        initial_bytes as f64 / (1 << 20) as f64
    );
    println!("| RSS loaded (no proxy) | {rss_loaded:.1} MiB |");
    println!("| RSS with {proxies} proxies synced | {rss_connected:.1} MiB |");
    println!("| RSS after the changes | {rss_end:.1} MiB |");
    println!(
        "| peak RSS (VmHWM) | {:.1} MiB |",
        hwm_end.max(hwm_connected)
    );
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
}

fn percentile_u64(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

// ---- the client process ----

fn clients() {
    let xds = std::env::var("WEFT_SCALE_XDS").expect("WEFT_SCALE_XDS");
    let n = env_usize("WEFT_SCALE_PROXIES", 100);
    let delta = std::env::var("WEFT_SCALE_DELTA").is_ok_and(|v| v == "1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        for i in 0..n {
            let url = format!("http://{xds}");
            tokio::spawn(async move {
                let r = if delta {
                    delta_client(url, i).await
                } else {
                    sotw_client(url, i).await
                };
                if let Err(e) = r {
                    eprintln!("client {i}: {e}");
                }
            });
        }
        // Run until the parent closes our stdin (or kills us).
        let _ = tokio::task::spawn_blocking(|| {
            let mut buf = String::new();
            let _ = std::io::stdin().read_line(&mut buf);
        })
        .await;
    });
}

fn node(i: usize) -> Node {
    let labels = Struct {
        fields: [(
            "app".to_owned(),
            Value {
                kind: Some(Kind::StringValue(format!("client-{i}"))),
            },
        )]
        .into_iter()
        .collect(),
    };
    Node {
        id: format!(
            "sidecar~10.200.{}.{}~client-{i}.default~default.svc.cluster.local",
            i / 256,
            i % 256
        ),
        metadata: Some(Struct {
            fields: [(
                "LABELS".to_owned(),
                Value {
                    kind: Some(Kind::StructValue(labels)),
                },
            )]
            .into_iter()
            .collect(),
        }),
        user_agent_name: "scale-bench".to_owned(),
        ..Default::default()
    }
}

fn eds_names(resources: &[envoy_types::pb::google::protobuf::Any]) -> BTreeSet<String> {
    resources
        .iter()
        .filter_map(|a| Cluster::decode(a.value.as_slice()).ok())
        .filter(|c| {
            matches!(
                c.cluster_discovery_type,
                Some(envoy_types::pb::envoy::config::cluster::v3::cluster::ClusterDiscoveryType::Type(t))
                    if t == envoy_types::pb::envoy::config::cluster::v3::cluster::DiscoveryType::Eds as i32
            )
        })
        .map(|c| c.name)
        .collect()
}

const ROUTES: [&str; 2] = ["8080", "http_proxy"];

/// State of the world, as Envoy does it: CDS and LDS wildcard, EDS for the EDS clusters,
/// RDS for the route configs; every response ACKed with the current subscription.
async fn sotw_client(url: String, i: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = AggregatedDiscoveryServiceClient::connect(url)
        .await?
        .max_decoding_message_size(256 << 20);
    let (tx, rx) = mpsc::channel(16);
    let mut stream = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let req = |t: &str, names: Vec<String>, version: String, nonce: String| DiscoveryRequest {
        node: Some(node(i)),
        type_url: t.to_owned(),
        resource_names: names,
        version_info: version,
        response_nonce: nonce,
        ..Default::default()
    };
    tx.send(req(type_url::CLUSTER, vec![], String::new(), String::new()))
        .await?;
    tx.send(req(
        type_url::LISTENER,
        vec![],
        String::new(),
        String::new(),
    ))
    .await?;
    let mut eds: BTreeSet<String> = BTreeSet::new();
    let mut rds_subscribed = false;
    while let Some(resp) = stream.message().await? {
        let t = resp.type_url.as_str();
        let names: Vec<String> = if t == type_url::CLUSTER_LOAD_ASSIGNMENT {
            eds.iter().cloned().collect()
        } else if t == type_url::ROUTE_CONFIGURATION {
            ROUTES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            Vec::new()
        };
        tx.send(req(t, names, resp.version_info.clone(), resp.nonce.clone()))
            .await?;
        if t == type_url::CLUSTER {
            let now = eds_names(&resp.resources);
            if now != eds {
                eds = now;
                tx.send(req(
                    type_url::CLUSTER_LOAD_ASSIGNMENT,
                    eds.iter().cloned().collect(),
                    String::new(),
                    String::new(),
                ))
                .await?;
            }
        }
        if t == type_url::LISTENER && !rds_subscribed {
            rds_subscribed = true;
            tx.send(req(
                type_url::ROUTE_CONFIGURATION,
                ROUTES.iter().map(|s| (*s).to_owned()).collect(),
                String::new(),
                String::new(),
            ))
            .await?;
        }
    }
    Ok(())
}

/// Delta: CDS and LDS wildcard, EDS and RDS by name; every response ACKed.
async fn delta_client(url: String, i: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = AggregatedDiscoveryServiceClient::connect(url)
        .await?
        .max_decoding_message_size(256 << 20);
    let (tx, rx) = mpsc::channel(16);
    let mut stream = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let sub = |t: &str, names: Vec<String>| DeltaDiscoveryRequest {
        node: Some(node(i)),
        type_url: t.to_owned(),
        resource_names_subscribe: names,
        ..Default::default()
    };
    tx.send(sub(type_url::CLUSTER, vec![])).await?;
    tx.send(sub(type_url::LISTENER, vec![])).await?;
    let mut eds: BTreeSet<String> = BTreeSet::new();
    let mut rds_subscribed = false;
    while let Some(resp) = stream.message().await? {
        let t = resp.type_url.clone();
        tx.send(DeltaDiscoveryRequest {
            type_url: t.clone(),
            response_nonce: resp.nonce.clone(),
            ..Default::default()
        })
        .await?;
        if t == type_url::CLUSTER {
            let added: Vec<_> = resp
                .resources
                .iter()
                .filter_map(|r| r.resource.clone())
                .collect();
            let new: Vec<String> = eds_names(&added)
                .into_iter()
                .filter(|n| !eds.contains(n))
                .collect();
            if !new.is_empty() {
                eds.extend(new.iter().cloned());
                tx.send(sub(type_url::CLUSTER_LOAD_ASSIGNMENT, new)).await?;
            }
        }
        if t == type_url::LISTENER && !rds_subscribed {
            rds_subscribed = true;
            tx.send(sub(
                type_url::ROUTE_CONFIGURATION,
                ROUTES.iter().map(|s| (*s).to_owned()).collect(),
            ))
            .await?;
        }
    }
    Ok(())
}
