//! `weft proxy`: run the data-plane proxy from an Envoy v3 bootstrap, like `envoy -c`.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use weft_proxy::ProxyConfig;

/// Arguments of `weft proxy`, named after Envoy's where they mean the same thing.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Envoy v3 bootstrap file (YAML, or JSON by `.json` extension), as `envoy -c` takes.
    /// With `dynamic_resources.ads_config` it also connects to that control plane.
    #[arg(short = 'c', long = "config-path", required_unless_present = "xds")]
    pub config: Option<PathBuf>,
    /// Get all configuration over ADS from this control plane (`HOST:PORT`, Istio's 15010).
    #[arg(long, value_name = "HOST:PORT")]
    pub xds: Option<String>,
    /// Use incremental (delta) xDS instead of state of the world.
    #[arg(long = "xds-delta")]
    pub xds_delta: bool,
    /// `sidecar` (node id `sidecar~...`) or `gateway` (`router~...`).
    #[arg(long, value_enum, default_value_t = RoleArg::Sidecar)]
    pub role: RoleArg,
    /// Pod (or process) name in the node id and `NAME` metadata.
    #[arg(long, default_value = "weft-proxy")]
    pub name: String,
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// The workload's address (node id, `INSTANCE_IPS`).
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Workload labels, `k=v,k2=v2` (`LABELS` metadata; selects services and policies).
    #[arg(long, default_value = "")]
    pub labels: String,
    #[arg(long = "service-account", default_value = "default")]
    pub service_account: String,
    /// Workload name (`WORKLOAD_NAME`; default: --name).
    #[arg(long)]
    pub workload: Option<String>,
    #[arg(long = "cluster-id", default_value = "Kubernetes")]
    pub cluster_id: String,
    /// Extra node metadata `KEY=VALUE` (repeatable), e.g. `WEFT_OUTBOUND_ADDR=127.0.0.1:15001`
    /// or `HTTP10=1`. `ISTIO_META_KEY=VALUE` in the environment adds `KEY` too, as with
    /// Istio's pilot-agent; this flag wins.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Admin server address (default 127.0.0.1:15000 with --xds; overrides the bootstrap's).
    #[arg(long = "admin-addr")]
    pub admin_addr: Option<std::net::SocketAddr>,
    /// Serve `/healthz/ready` here (default 0.0.0.0:15021 with --xds).
    #[arg(long = "status-addr")]
    pub status_addr: Option<std::net::SocketAddr>,
    /// Worker threads, as Envoy's `--concurrency` (default: the machine's cores).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Seconds in-flight requests get to finish after SIGTERM, SIGINT or /quitquitquit.
    #[arg(long = "drain-time-s", default_value_t = 5)]
    pub drain_time_s: u64,
    /// Write the admin server's bound address here once listening (Envoy's flag; useful
    /// with `port_value: 0`).
    #[arg(long = "admin-address-path")]
    pub admin_address_path: Option<PathBuf>,
    /// `serve` runs the proxy; `validate` only checks the bootstrap (Envoy's `--mode`).
    #[arg(long, value_enum, default_value_t = Mode::Serve)]
    pub mode: Mode,
    /// Internal: decode the bootstrap and write it to stdout as frames for the parent
    /// `weft proxy` (see `load_config`).
    #[arg(long = "decode-bootstrap", hide = true)]
    pub decode_bootstrap: bool,
    /// Decode the bootstrap in this process instead of a helper (uses ~5 MB more memory for
    /// the life of the proxy; for debugging).
    #[arg(long = "in-process-decode")]
    pub in_process_decode: bool,
    /// Log filter for weft's own logs on stderr (`RUST_LOG` syntax; `RUST_LOG` wins).
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    pub log_level: String,
}

/// `--role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Sidecar,
    Gateway,
}

/// What `weft proxy` does with the bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Serve,
    Validate,
}

/// Loads the bootstrap, then serves until a signal or `/quitquitquit`, then drains.
pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    if args.decode_bootstrap {
        let path = args.config.as_deref().context("-c is required")?;
        return decode_for_parent(path);
    }
    let serving = args.mode != Mode::Validate;
    // Start-up runs code the request path never runs again (argument parsing, decoding and
    // converting the bootstrap, then the runtime, listener and cluster set-up), and the
    // kernel maps 64 KiB of the binary around every page it faults in. Unmapping the code
    // pages between those phases (and once more at ready, in `serve`) keeps the peak
    // resident set near the largest phase instead of their sum: 11.7 → 7.3 MB for the
    // benchmark bootstrap. The pages a later phase shares come back as minor faults.
    if serving {
        weft_proxy::memory::release_code_pages();
    }
    let log_control = init_logging(&args.log_level);

    let in_process = args.in_process_decode || !serving;
    let mut config = match &args.config {
        Some(path) => {
            load_config(path, in_process).with_context(|| format!("loading {}", path.display()))?
        }
        None => ProxyConfig::empty(Some("127.0.0.1:15000".parse()?)),
    };
    if !serving {
        for note in &config.unsupported {
            println!("warning: {note}");
        }
        let shown = args.config.as_deref().map(|p| p.display().to_string());
        println!("configuration '{}' OK", shown.unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(addr) = args.admin_addr {
        config.admin = Some(addr);
    }
    weft_proxy::memory::release_code_pages();
    let xds = xds_options(&args, &config)?;
    let status_addr = match (args.status_addr, &args.xds) {
        (Some(a), _) => Some(a),
        (None, Some(_)) => Some("0.0.0.0:15021".parse()?),
        (None, None) => None,
    };
    let workers = args
        .concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let runtime = weft_proxy::runtime::build(workers).context("building the runtime")?;
    let drain = Duration::from_secs(args.drain_time_s);
    let options = weft_proxy::StartOptions {
        log_control: Some(log_control),
        xds,
        status_addr,
    };
    let served = runtime.block_on(serve(config, options, drain, args.admin_address_path));
    // Shutting the runtime down drops the connections the drain left open, and their
    // responses' access-log lines are queued then; write them before the process exits.
    drop(runtime);
    weft_proxy::access_log::flush_all();
    served?;
    Ok(ExitCode::SUCCESS)
}

/// The xDS client's options: `--xds` with a node built from the flags, else the
/// bootstrap's `ads_config` and `node`.
fn xds_options(
    args: &ProxyArgs,
    config: &ProxyConfig,
) -> anyhow::Result<Option<weft_proxy::xds::XdsOptions>> {
    use weft_proxy::xds::{NodeSpec, Role, XdsOptions, node::parse_pairs};
    if let Some(server) = &args.xds {
        // As Istio's pilot-agent: every `ISTIO_META_KEY=VALUE` in the environment is node
        // metadata `KEY` (e.g. `ISTIO_META_HTTP10=1`); `--meta` wins over it.
        let mut meta: std::collections::BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let key = k.to_str()?.strip_prefix("ISTIO_META_")?;
                (!key.is_empty()).then(|| Some((key.to_owned(), v.into_string().ok()?)))?
            })
            .collect();
        for m in &args.meta {
            let (k, v) = m
                .split_once('=')
                .with_context(|| format!("--meta: expected KEY=VALUE, got {m:?}"))?;
            meta.insert(k.to_owned(), v.to_owned());
        }
        let spec = NodeSpec {
            role: match args.role {
                RoleArg::Sidecar => Role::Sidecar,
                RoleArg::Gateway => Role::Gateway,
            },
            name: args.name.clone(),
            namespace: args.namespace.clone(),
            ip: args.ip.clone(),
            labels: parse_pairs(&args.labels).map_err(|e| anyhow::anyhow!("--labels: {e}"))?,
            service_account: args.service_account.clone(),
            workload: args.workload.clone(),
            cluster_id: args.cluster_id.clone(),
            meta,
        };
        let mut opts = XdsOptions::new(server, spec.node());
        opts.delta = args.xds_delta;
        return Ok(Some(opts));
    }
    Ok(config.ads.as_ref().map(|ads| {
        let mut opts = XdsOptions::new(&ads.address, config.node.clone().unwrap_or_default());
        opts.delta = ads.delta || args.xds_delta;
        opts
    }))
}

/// Loads the bootstrap. By default a helper process (this binary with `--decode-bootstrap`)
/// does the YAML/JSON → protobuf work, which needs protobuf descriptors and leaves ~5 MB of
/// freed-but-kept heap behind; the proxy only decodes the resulting protobuf. Measured:
/// idle RSS drops by that much, which the 10 MB target needs.
fn load_config(path: &std::path::Path, in_process: bool) -> anyhow::Result<ProxyConfig> {
    if in_process {
        return Ok(ProxyConfig::load_file(path)?);
    }
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["proxy", "--decode-bootstrap", "-c"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running the bootstrap decoder")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!("{}", stderr.trim().trim_start_matches("error: "));
    }
    let loaded = weft_xds::LoadedBootstrap::from_frames(&out.stdout)?;
    Ok(ProxyConfig::from_loaded(loaded).map_err(weft_proxy::ProxyError::from)?)
}

/// The helper side of [`load_config`].
fn decode_for_parent(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let loaded = weft_xds::bootstrap::load_file(path, Some(&weft_proxy::config::SUPPORT))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&loaded.to_frames())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr through a reloadable filter, so the admin server's `/logging` can change
/// it at run time.
fn init_logging(default: &str) -> weft_proxy::LogControl {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, fmt, reload};
    let initial = std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_owned());
    let filter = EnvFilter::try_new(&initial).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .try_init();
    std::sync::Arc::new(move |wanted: Option<&str>| {
        if let Some(wanted) = wanted {
            let parsed = EnvFilter::try_new(wanted).map_err(|e| e.to_string())?;
            handle.modify(|f| *f = parsed).map_err(|e| e.to_string())?;
        }
        handle
            .with_current(|f| f.to_string())
            .map_err(|e| e.to_string())
    })
}

async fn serve(
    config: ProxyConfig,
    options: weft_proxy::StartOptions,
    drain_time: Duration,
    admin_address_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // glibc keeps the heap a burst of connections freed, and xDS updates map code the
    // request path does not run: give both back (docs/performance.md, "Memory").
    weft_proxy::memory::spawn_trimmer();
    let proxy = weft_proxy::start_with(config, options).await?;
    for l in proxy.listeners() {
        if let Some(addr) = proxy.listener_addr(&l.config.name) {
            tracing::info!(listener = %l.config.name, %addr, "listening");
        }
    }
    if let Some(addr) = proxy.admin_addr() {
        tracing::info!(%addr, "admin listening");
        if let Some(path) = &admin_address_path {
            std::fs::write(path, addr.to_string())
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // One line on stdout once configured, so scripts can wait for it.
    let announce = async {
        proxy.ready().await;
        // Start-up's code (bootstrap, listeners, clusters) is not needed again: unmap it
        // before saying ready, so the request path's pages are what stays resident.
        weft_proxy::memory::release_code_pages();
        let show = |a: Option<std::net::SocketAddr>| a.map_or("-".to_owned(), |a| a.to_string());
        println!(
            "weft proxy ready admin {} status {}",
            show(proxy.admin_addr()),
            show(proxy.status_addr())
        );
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        tracing::info!(elapsed = ?started.elapsed(), "ready");
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = announce => {}
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: draining"),
        _ = proxy.quit_requested() => tracing::info!("/quitquitquit: draining"),
    }
    proxy.drain(drain_time).await;
    tracing::info!("drained, exiting");
    Ok(())
}
