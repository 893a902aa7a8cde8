//! `weft control`: the control plane in local mode.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use weft_control::server::{ControlOptions, run};

#[derive(Debug, Args)]
pub struct ControlArgs {
    /// Directory of Istio/Gateway API YAML to serve (watched; `weft apply` writes here).
    #[arg(long = "config-dir")]
    pub config_dir: PathBuf,
    /// Address of the xDS (ADS) gRPC server.
    #[arg(long = "xds-addr", default_value = "127.0.0.1:15010")]
    pub xds_addr: SocketAddr,
    /// Address of the REST API and debug views (`/debug/syncz`, `/metrics`).
    #[arg(long = "api-addr", default_value = "127.0.0.1:15014")]
    pub api_addr: SocketAddr,
    /// Let every proxy's HTTP listeners accept HTTP/1.0 requests (Envoy's
    /// `accept_http_10`) instead of answering 426; one proxy alone: its metadata
    /// `HTTP10=1` (`ISTIO_META_HTTP10=1`). `PILOT_HTTP10` takes `1`/`true`/`0`/`false`.
    #[arg(long, env = "PILOT_HTTP10", value_parser = clap::builder::BoolishValueParser::new())]
    pub http10: bool,
}

pub fn control(args: ControlArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let opts = ControlOptions {
            config_dir: args.config_dir,
            xds_addr: args.xds_addr,
            api_addr: args.api_addr,
            http10: args.http10,
        };
        run(
            opts,
            |r| {
                // One line on stdout, so scripts and tests can wait for it.
                println!("weft control: xds {} api {}", r.xds_addr, r.api_addr);
            },
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}
