//! `weft proxy --xds` (and `-c` with an ADS bootstrap, the file Envoy takes) against a
//! running `weft control`: the proxy becomes ready, says so on stdout, answers
//! `/healthz/ready`, and routes a request to the workload the control plane knows.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Kills the child when the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An HTTP/1.1 server on 127.0.0.1:0 answering every request with `name`.
fn backend(name: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}",
                        name.len()
                    );
                    if s.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Sends `request` to `addr` and reads the raw response until the server closes (nothing if
/// nothing listens).
fn exchange(addr: SocketAddr, request: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = s.write_all(request.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// GET through `proxy` with `Host: host`; the raw response.
fn get(proxy: SocketAddr, host: &str, path: &str) -> String {
    exchange(
        proxy,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
}

/// The first stdout line of a child, within `patience`.
fn first_line(stdout: ChildStdout, patience: Duration) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(patience).unwrap_or_default()
}

/// `weft control` on a config dir holding Bookinfo's services and a `details` workload at
/// `details`, with `env` added to its environment; returns the process and its xDS address.
fn control(dir: &Path, details: SocketAddr, env: &[(&str, &str)]) -> (Proc, SocketAddr) {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(
        root.join("samples/bookinfo/platform/local/bookinfo-services.yaml"),
        config.join("services.yaml"),
    )
    .expect("copy services");
    std::fs::write(
        config.join("details.yaml"),
        format!(
            "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: details-v1}}\nspec: {{address: 127.0.0.1, labels: {{app: details, version: v1}}, ports: {{http: {}}}}}\n",
            details.port()
        ),
    )
    .expect("workload");
    let mut child = Proc(
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .arg("control")
            .arg("--config-dir")
            .arg(&config)
            .args(["--xds-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("weft control"),
    );
    let line = first_line(
        child.0.stdout.take().expect("stdout"),
        Duration::from_secs(20),
    );
    let words: Vec<&str> = line.split_whitespace().collect();
    let xds = match words.as_slice() {
        ["weft", "control:", "xds", x, "api", _] => x.parse().expect("xds addr"),
        _ => panic!("unexpected first line from weft control: {line:?}"),
    };
    (child, xds)
}

/// Waits for `weft proxy ready admin A status S`; checks readiness and a routed request.
fn assert_ready_and_routing(proxy: &mut Proc, outbound: u16, log: &Path) {
    let line = first_line(
        proxy.0.stdout.take().expect("stdout"),
        Duration::from_secs(20),
    );
    let words: Vec<&str> = line.split_whitespace().collect();
    let (admin, status): (SocketAddr, SocketAddr) = match words.as_slice() {
        ["weft", "proxy", "ready", "admin", a, "status", s] => {
            (a.parse().expect("admin"), s.parse().expect("status"))
        }
        _ => panic!(
            "no ready line: {line:?}\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        ),
    };
    assert!(
        get(status, "status", "/healthz/ready").starts_with("HTTP/1.1 200"),
        "ready after the line"
    );
    let dump = get(admin, "admin", "/config_dump");
    assert!(dump.contains("virtualOutbound"), "{dump}");
    let outbound: SocketAddr = ([127, 0, 0, 1], outbound).into();
    let reply = get(outbound, "details:9080", "/details/0");
    assert!(
        reply.starts_with("HTTP/1.1 200") && reply.ends_with("details-v1"),
        "{reply}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// `weft proxy --xds` as the sidecar of workload `name` (`app` label: `name` up to its
/// `-v1`), with `env` added to its environment; returns it, its outbound port and its log.
fn sidecar(dir: &Path, xds: SocketAddr, name: &str, env: &[(&str, &str)]) -> (Proc, u16, PathBuf) {
    let outbound = free_port();
    let log = dir.join(format!("{name}.log"));
    let app = name.trim_end_matches("-v1");
    let proxy = Proc(
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["proxy", "--xds", &xds.to_string()])
            .args(["--name", name, "--namespace", "default"])
            .arg("--labels")
            .arg(format!("app={app},version=v1"))
            .args(["--ip", "127.0.0.1"])
            .args([
                "--admin-addr",
                "127.0.0.1:0",
                "--status-addr",
                "127.0.0.1:0",
            ])
            .arg("--meta")
            .arg(format!("WEFT_OUTBOUND_ADDR=127.0.0.1:{outbound}"))
            .arg("--meta")
            .arg(format!("WEFT_INBOUND_ADDR=127.0.0.1:{}", free_port()))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("weft proxy"),
    );
    (proxy, outbound, log)
}

#[test]
fn proxy_xds_becomes_ready_against_weft_control() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_control, xds) = control(tmp.path(), backend("details-v1"), &[]);
    let (mut proxy, outbound, log) = sidecar(tmp.path(), xds, "productpage-v1", &[]);
    assert_ready_and_routing(&mut proxy, outbound, &log);
}

/// `GET /details/0 HTTP/1.0` through a sidecar's outbound listener: the raw answer.
fn http10_get(outbound: u16) -> String {
    exchange(
        ([127, 0, 0, 1], outbound).into(),
        "GET /details/0 HTTP/1.0\r\nHost: details:9080\r\n\r\n",
    )
}

/// The status code of a raw HTTP/1.x response.
fn code(reply: &str) -> &str {
    reply.split_whitespace().nth(1).unwrap_or_default()
}

/// Istio refuses HTTP/1.0 with 426 unless the proxy's metadata says `HTTP10=1`
/// (`ISTIO_META_HTTP10=1` in its environment) or istiod runs with `PILOT_HTTP10=1`: the
/// switch users of `ab` and old clients reach for. Both go from weft's control plane
/// through xDS (`accept_http_10`) to the proxy.
#[test]
fn http10_is_accepted_where_the_proxy_or_the_control_plane_asks_for_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let details = backend("details-v1");
    let (_control, xds) = control(tmp.path(), details, &[]);
    let (mut plain, plain_out, plain_log) = sidecar(tmp.path(), xds, "productpage-v1", &[]);
    let (mut legacy, legacy_out, legacy_log) =
        sidecar(tmp.path(), xds, "ratings-v1", &[("ISTIO_META_HTTP10", "1")]);
    assert_ready_and_routing(&mut plain, plain_out, &plain_log);
    assert_ready_and_routing(&mut legacy, legacy_out, &legacy_log);
    let refused = http10_get(plain_out);
    assert!(
        code(&refused) == "426" && refused.ends_with("Upgrade Required"),
        "{refused}"
    );
    let served = http10_get(legacy_out);
    assert!(
        code(&served) == "200" && served.ends_with("details-v1"),
        "{served}"
    );

    let all = tmp.path().join("pilot-http10");
    let (_control, xds) = control(&all, details, &[("PILOT_HTTP10", "1")]);
    let (mut proxy, outbound, log) = sidecar(&all, xds, "productpage-v1", &[]);
    assert_ready_and_routing(&mut proxy, outbound, &log);
    let served = http10_get(outbound);
    assert!(
        code(&served) == "200" && served.ends_with("details-v1"),
        "{served}"
    );
}

#[test]
fn proxy_with_an_envoy_ads_bootstrap_uses_delta_xds() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_control, xds) = control(tmp.path(), backend("details-v1"), &[]);
    let outbound = free_port();
    let inbound = free_port();
    let bootstrap = tmp.path().join("bootstrap.yaml");
    std::fs::write(
        &bootstrap,
        format!(
            r#"node:
  id: sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local
  cluster: reviews.default
  metadata:
    NAMESPACE: default
    NAME: reviews-v1
    LABELS: {{app: reviews, version: v1}}
    WEFT_OUTBOUND_ADDR: 127.0.0.1:{outbound}
    WEFT_INBOUND_ADDR: 127.0.0.1:{inbound}
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
dynamic_resources:
  ads_config:
    api_type: DELTA_GRPC
    transport_api_version: V3
    grpc_services: [{{envoy_grpc: {{cluster_name: xds-grpc}}}}]
  cds_config: {{ads: {{}}, resource_api_version: V3}}
  lds_config: {{ads: {{}}, resource_api_version: V3}}
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: xds-grpc
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}
"#,
            port = xds.port()
        ),
    )
    .expect("bootstrap");
    let log = tmp.path().join("proxy.log");
    let mut proxy = Proc(
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["proxy", "-c"])
            .arg(&bootstrap)
            .args(["--status-addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("weft proxy"),
    );
    assert_ready_and_routing(&mut proxy, outbound, &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("xDS stream open (delta)"), "{text}");
}
