//! `weft proxy -c` as a process: starts from a bootstrap file, proxies, reports its admin
//! address like Envoy's `--admin-address-path`, and drains on SIGTERM.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A one-shot HTTP/1.1 upstream on 127.0.0.1:0 answering `hello from upstream`.
fn upstream() -> SocketAddr {
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
                    let body = "hello from upstream";
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
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

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn request(addr: SocketAddr, method: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A bootstrap with one HTTP listener on `listen` (0: any port) routing everything to the
/// upstream on `upstream_port`, an admin server on any port when `admin`, and `hcm_extra`
/// (YAML lines at the connection manager's indentation) added to the connection manager.
fn bootstrap_yaml(admin: bool, listen: u16, upstream_port: u16, hcm_extra: &str) -> String {
    let admin = if admin {
        "admin:\n  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n"
    } else {
        ""
    };
    format!(
        r#"{admin}static_resources:
  listeners:
  - name: in
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {listen} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: in{hcm_extra}
          route_config:
            virtual_hosts:
            - {{ name: all, domains: ["*"], routes: [{{ match: {{ prefix: "/" }}, route: {{ cluster: upstream }} }}] }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - name: upstream
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {upstream_port} }} }} }} }}] }}]
"#
    )
}

#[test]
fn weft_proxy_serves_a_bootstrap_and_drains_on_sigterm() {
    let up = upstream();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bootstrap.yaml");
    let admin_path = dir.path().join("admin.txt");
    std::fs::write(&config, bootstrap_yaml(true, 0, up.port(), "")).expect("write bootstrap");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["proxy", "-c"])
        .arg(&config)
        .args(["--concurrency", "1", "--admin-address-path"])
        .arg(&admin_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weft");
    let admin: SocketAddr = wait_for("admin address", || {
        std::fs::read_to_string(&admin_path)
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    let listeners = get(admin, "/listeners?format=json");
    let body = listeners.split("\r\n\r\n").nth(1).unwrap_or("");
    let json: serde_json::Value = serde_json::from_str(body).expect("listeners json");
    let sa = &json["listener_statuses"][0]["local_address"]["socket_address"];
    let listener: SocketAddr = format!(
        "{}:{}",
        sa["address"].as_str().unwrap_or(""),
        sa["port_value"]
    )
    .parse()
    .expect("addr");
    let logging = request(admin, "POST", "/logging?level=debug");
    assert!(logging.contains("active filter: debug"), "{logging}");
    let reply = get(listener, "/");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.contains("hello from upstream") && reply.contains("server: weft"),
        "{reply}"
    );

    terminate(&mut child);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert!(stderr.contains("SIGTERM: draining"), "{stderr}");
}

#[test]
fn invalid_bootstraps_are_rejected_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.yaml");
    std::fs::write(
        &config,
        "static_resources:\n  clusters:\n  - name: c\n    conect_timeout: 1s\n",
    )
    .expect("write");
    // Serving decodes in a helper process; its error must reach the user the same way.
    for args in [&["--mode", "validate"][..], &[]] {
        let out = weft_proxy(args, &config);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr
                .contains("static_resources.clusters[0]: unrecognized field name 'conect_timeout'"),
            "{args:?}: {stderr}"
        );
    }
}

/// `weft proxy ARGS -c CONFIG`, run to its end.
fn weft_proxy(args: &[&str], config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("proxy")
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .expect("run weft")
}

/// The bootstraps `scripts/pgo-build.sh` trains the distribution build on are valid and use
/// only what weft implements: a profile taken on ignored settings would optimise for code
/// users never run.
#[test]
fn pgo_training_bootstraps_are_valid_and_fully_implemented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pgo");
    for name in ["front.yaml", "upstream.yaml"] {
        let text = std::fs::read_to_string(scripts.join(name)).expect("training bootstrap");
        let config = dir.path().join(name);
        std::fs::write(
            &config,
            text.replace("PORT_FRONT", "19480")
                .replace("PORT_UP", "19481"),
        )
        .expect("write");
        let out = weft_proxy(&["--mode", "validate"], &config);
        let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {said}");
        assert!(
            said.contains("OK") && !said.contains("warning"),
            "{name}: {said}"
        );
    }
}

/// An upstream on 127.0.0.1:0 that answers the head and one chunk of a body, then stalls.
fn stalling_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n");
            held.push(s);
        }
    });
    addr
}

/// A response the drain could not wait for is cut when `weft proxy` exits; its access-log
/// line (written as the runtime shuts down) must still reach the file, as every line did
/// when they were written from the request path.
#[test]
fn weft_proxy_writes_the_access_log_lines_of_responses_cut_at_exit() {
    let up = stalling_upstream();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bootstrap.yaml");
    let log = dir.path().join("access.log");
    let ready = dir.path().join("stdout.txt");
    let listen = free_port();
    let access_log = format!(
        r#"
          access_log:
          - name: file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {}
              log_format: {{ text_format_source: {{ inline_string: "%RESPONSE_CODE% %RESPONSE_FLAGS% %REQ(:PATH)%\n" }} }}"#,
        log.display()
    );
    std::fs::write(
        &config,
        bootstrap_yaml(false, listen, up.port(), &access_log),
    )
    .expect("write bootstrap");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["proxy", "-c"])
        .arg(&config)
        .args(["--concurrency", "1", "--drain-time-s", "0"])
        .stdout(std::fs::File::create(&ready).expect("stdout file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weft");
    wait_for("ready line", || {
        std::fs::read_to_string(&ready)
            .ok()
            .filter(|s| s.contains("weft proxy ready"))
    });
    let mut c = TcpStream::connect(("127.0.0.1", listen)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(b"GET /cut HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    // The head and the first chunk have arrived: the response is in flight.
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("hello") {
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).expect("read the response");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    terminate(&mut child);
    // The process is gone: whatever it wrote is all there will be.
    assert_eq!(
        std::fs::read_to_string(&log).unwrap_or_default(),
        "200 DC /cut\n"
    );
}

/// Sends SIGTERM and waits for a clean exit (the drain path).
fn terminate(child: &mut std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = wait_for("exit after SIGTERM", || child.try_wait().ok().flatten());
    assert!(exit.success(), "{exit:?}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
