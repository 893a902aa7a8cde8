//! `weft proxy-status` and `weft proxy-config`: istioctl's inspection commands, from the
//! control plane's view of each proxy (`$WEFT_SERVER`), or straight from a proxy's admin
//! endpoint (`--admin`, Envoy's `/config_dump` shape, so real Envoy works too).

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Empty};
use std::process::ExitCode;
use weft_control::inspect;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the control plane's JSON instead of a table.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<Output>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Section {
    Listeners,
    Listener,
    Routes,
    Route,
    Clusters,
    Cluster,
    Endpoints,
    Endpoint,
    All,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to show.
    #[arg(value_enum)]
    pub section: Section,
    /// The proxy: `NAME.NAMESPACE`, `NAME`, or its node id (may be left out when only one
    /// proxy is connected, or with `--admin`).
    pub proxy: Option<String>,
    /// Read the proxy's own admin endpoint (`HOST:PORT` or a URL) instead of the control
    /// plane: `/config_dump` and, for endpoints, `/clusters?format=json`.
    #[arg(long)]
    pub admin: Option<String>,
    /// Print the raw config (protobuf JSON) instead of a table.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<Output>,
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET `url`; returns the status and the body as JSON (a JSON string when it is not JSON).
async fn fetch(url: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let resp = client
        .get(url.parse().with_context(|| format!("bad URL {url}"))?)
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    Ok((status, json))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// A successful JSON answer, or an error with the server's own words.
async fn get_ok(url: &str) -> anyhow::Result<serde_json::Value> {
    let (status, body) = fetch(url).await?;
    if status != 200 {
        let errors: Vec<String> = body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_else(|| vec![body.to_string()]);
        bail!("{url} answered {status}: {}", errors.join("; "));
    }
    Ok(body)
}

/// `weft proxy-status`.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let server = super::config::server();
    let body = runtime()?.block_on(get_ok(&format!("{server}/debug/proxy_status")))?;
    if args.output == Some(Output::Json) {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (table, errors) = inspect::status_table(&body);
    if table.rows.is_empty() {
        eprintln!("No proxies are connected to {server}.");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", table.render());
    if !errors.is_empty() {
        println!();
        for e in errors {
            println!("{e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn admin_base(admin: &str) -> String {
    let base = if admin.contains("://") {
        admin.to_owned()
    } else {
        format!("http://{admin}")
    };
    base.trim_end_matches('/').to_owned()
}

/// `weft proxy-config SECTION [PROXY]`.
pub fn config(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let (dump, statuses) = match &args.admin {
        Some(admin) => {
            let base = admin_base(admin);
            let dump = rt.block_on(get_ok(&format!("{base}/config_dump")))?;
            // Endpoint health and outlier state live in `/clusters`, as istioctl reads them.
            let wants_endpoints = matches!(
                args.section,
                Section::Endpoints | Section::Endpoint | Section::All
            );
            let statuses = if wants_endpoints && args.output.is_none() {
                Some(rt.block_on(get_ok(&format!("{base}/clusters?format=json")))?)
            } else {
                None
            };
            (dump, statuses)
        }
        None => {
            let server = super::config::server();
            let query = args
                .proxy
                .as_deref()
                .map(|p| format!("?proxyID={}", percent_encode(p)))
                .unwrap_or_default();
            let dump = rt.block_on(get_ok(&format!("{server}/debug/config_dump{query}")))?;
            (dump, None)
        }
    };
    if args.output == Some(Output::Json) {
        let raw = |items: Vec<&serde_json::Value>| {
            serde_json::Value::Array(items.into_iter().cloned().collect())
        };
        let doc = match args.section {
            Section::Listeners | Section::Listener => raw(inspect::listeners(&dump)),
            Section::Routes | Section::Route => raw(inspect::routes(&dump)),
            Section::Clusters | Section::Cluster => raw(inspect::clusters(&dump)),
            Section::Endpoints | Section::Endpoint => raw(inspect::endpoint_configs(&dump)),
            Section::All => dump,
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    let endpoints = || match &statuses {
        Some(s) => inspect::endpoint_table_from_statuses(s),
        None => inspect::endpoint_table_from_dump(&dump),
    };
    match args.section {
        Section::Listeners | Section::Listener => {
            print!("{}", inspect::listener_table(&dump).render())
        }
        Section::Routes | Section::Route => print!("{}", inspect::route_table(&dump).render()),
        Section::Clusters | Section::Cluster => {
            print!("{}", inspect::cluster_table(&dump).render())
        }
        Section::Endpoints | Section::Endpoint => print!("{}", endpoints().render()),
        Section::All => {
            print!("{}", inspect::cluster_table(&dump).render());
            println!();
            print!("{}", inspect::listener_table(&dump).render());
            println!();
            print!("{}", inspect::route_table(&dump).render());
            println!();
            print!("{}", endpoints().render());
        }
    }
    Ok(ExitCode::SUCCESS)
}
