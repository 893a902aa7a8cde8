//! `weft init-iptables`: install the traffic-capture rules of Istio's init container.

use crate::capture::{self, CaptureConfig};
use clap::Args;
use std::process::ExitCode;

/// `istio-iptables`' flags, so an injector template written for Istio works unchanged.
#[derive(Debug, Args)]
pub struct InitIptablesArgs {
    /// Port all outbound TCP traffic is redirected to (the proxy's outbound listener).
    #[arg(short = 'p', long = "envoy-port", default_value_t = 15001)]
    pub proxy_port: u16,
    /// Port all inbound TCP traffic is redirected to (the proxy's inbound listener).
    #[arg(short = 'z', long = "inbound-capture-port", default_value_t = 15006)]
    pub inbound_port: u16,
    /// The proxy's uid(s), comma-separated: their traffic is never captured.
    #[arg(short = 'u', long = "proxy-uid", default_value = "1337")]
    pub proxy_uid: String,
    /// The proxy's gid(s), comma-separated (default: same as the uid).
    #[arg(short = 'g', long = "proxy-gid")]
    pub proxy_gid: Option<String>,
    /// Inbound interception mode; only REDIRECT is supported.
    #[arg(
        short = 'm',
        long = "inbound-interception-mode",
        default_value = "REDIRECT"
    )]
    pub mode: String,
    /// Outbound IPv4 CIDRs to capture, comma-separated, or `*` for all.
    #[arg(short = 'i', long = "outbound-ip-ranges-include", default_value = "*")]
    pub include_ranges: String,
    /// Outbound IPv4 CIDRs never captured, comma-separated.
    #[arg(short = 'x', long = "outbound-ip-ranges-exclude", default_value = "")]
    pub exclude_ranges: String,
    /// Inbound ports to capture, comma-separated, or `*` for all.
    #[arg(short = 'b', long = "inbound-ports", default_value = "*")]
    pub inbound_ports: String,
    /// Inbound ports never captured (with `-b '*'`), comma-separated.
    #[arg(short = 'd', long = "local-exclude-ports", default_value = "")]
    pub exclude_inbound_ports: String,
    /// Outbound ports never captured, comma-separated.
    #[arg(short = 'o', long = "local-outbound-ports-exclude", default_value = "")]
    pub exclude_outbound_ports: String,
    /// Print the `iptables-restore` input instead of installing it.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

impl InitIptablesArgs {
    fn config(&self) -> anyhow::Result<CaptureConfig> {
        if !self.mode.eq_ignore_ascii_case("REDIRECT") {
            anyhow::bail!(
                "-m: inbound interception mode `{}` is not supported (only REDIRECT)",
                self.mode
            );
        }
        let ids = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let uids = ids(&self.proxy_uid);
        let gids = self.proxy_gid.as_deref().map_or_else(|| uids.clone(), ids);
        for (flag, list) in [("-u", &uids), ("-g", &gids)] {
            if let Some(bad) = list.iter().find(|v| v.parse::<u32>().is_err()) {
                anyhow::bail!("{flag}: `{bad}` is not a numeric id");
            }
        }
        Ok(CaptureConfig {
            proxy_port: self.proxy_port,
            inbound_port: self.inbound_port,
            proxy_uids: uids,
            proxy_gids: gids,
            outbound_ranges: capture::parse_selection(&self.include_ranges, |v| {
                capture::parse_ranges("-i", v)
            })?,
            excluded_ranges: capture::parse_ranges("-x", &self.exclude_ranges)?,
            inbound_ports: capture::parse_selection(&self.inbound_ports, |v| {
                capture::parse_ports("-b", v)
            })?,
            excluded_inbound_ports: capture::parse_ports("-d", &self.exclude_inbound_ports)?,
            excluded_outbound_ports: capture::parse_ports("-o", &self.exclude_outbound_ports)?,
        })
    }
}

pub fn init_iptables(args: InitIptablesArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    if args.dry_run {
        print!("{}", capture::restore_text(&config));
    } else {
        capture::apply(&config)?;
    }
    Ok(ExitCode::SUCCESS)
}
