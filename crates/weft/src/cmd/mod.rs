//! Subcommands. Each lives in its own module with its own `Args`.

mod capture;
mod config;
mod control;
mod inspect;
mod proxy;
mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// weft: a service mesh that speaks Istio's APIs, with a small, fast Rust proxy.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check Istio, Gateway API and Kubernetes YAML/JSON for errors, one resource at a time.
    ///
    /// Every problem is listed with its file, line and column, the resource and the field.
    /// Exits 0 when everything is valid, 1 when any error was found.
    Validate(validate::ValidateArgs),
    /// Check resources against each other, like `istioctl analyze`.
    ///
    /// Finds routes to undefined subsets, VirtualServices bound to missing gateways,
    /// destinations absent from the registry, conflicting DestinationRules, selectors that
    /// match nothing. Exits 1 when any Error-level message is found.
    Analyze(validate::AnalyzeArgs),
    /// Run the data-plane proxy: from a control plane (`weft proxy --xds HOST:PORT`) or an
    /// Envoy v3 bootstrap (`weft proxy -c bootstrap.yaml`).
    ///
    /// Reads the same file `envoy -c` takes, for the subset weft implements (an
    /// `ads_config` there connects to that control plane); fields it does not implement
    /// are listed. Prints `weft proxy ready admin ADDR status ADDR` once configured.
    /// Drains gracefully on SIGTERM or /quitquitquit.
    Proxy(Box<proxy::ProxyArgs>),
    /// Run the control plane: serve a config directory to proxies over xDS (ADS).
    ///
    /// Watches DIR; serves ADS on --xds-addr and the REST API used by `weft apply`,
    /// `weft delete` and `weft get` (plus /debug/syncz and /metrics) on --api-addr.
    Control(control::ControlArgs),
    /// Validate, then apply resources to the control plane ($WEFT_SERVER).
    ///
    /// Invalid input is refused with the same messages as `weft validate`, and nothing
    /// changes. Applied resources are written to the control plane's config dir.
    Apply(config::ApplyArgs),
    /// Delete the resources named in files from the control plane ($WEFT_SERVER).
    Delete(config::ApplyArgs),
    /// List resources in force on the control plane ($WEFT_SERVER).
    Get(config::GetArgs),
    /// Each connected proxy and whether it is in sync per xDS type ($WEFT_SERVER).
    ///
    /// SYNCED: the last push was ACKed; NOT SENT: nothing of that type was sent; STALE:
    /// sent, not answered yet; NACKED: rejected (the proxy's error is printed below).
    ProxyStatus(inspect::StatusArgs),
    /// A proxy's listeners, routes, clusters or endpoints, as tables like istioctl's.
    ///
    /// From the control plane's view of what it sends the proxy ($WEFT_SERVER), or with
    /// --admin from the proxy's own admin endpoint (weft or Envoy). `-o json` prints the
    /// raw config.
    ProxyConfig(inspect::ConfigArgs),
    /// Install the traffic-capture rules of Istio's init container in this network namespace.
    ///
    /// Takes `istio-iptables`' flags (`-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x ''
    /// -b '*' -d 15090,15021,15020`); `--dry-run` prints the `iptables-restore` input.
    InitIptables(capture::InitIptablesArgs),
    /// Run the Bookinfo tutorial on this machine: control plane, ingress gateway and every
    /// Bookinfo workload with its own sidecar.
    ///
    /// Open the printed address, then change routing from a second terminal with
    /// `weft apply -f samples/bookinfo/networking/...`. Ctrl-C stops everything.
    Demo(crate::demo::DemoArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(a) => validate::validate(a),
        Command::Analyze(a) => validate::analyze(a),
        Command::Proxy(a) => proxy::run(*a),
        Command::Control(a) => control::control(a),
        Command::Apply(a) => config::apply(a),
        Command::Delete(a) => config::delete(a),
        Command::Get(a) => config::get(a),
        Command::ProxyStatus(a) => inspect::status(a),
        Command::ProxyConfig(a) => inspect::config(a),
        Command::InitIptables(a) => capture::init_iptables(a),
        Command::Demo(a) => crate::demo::run(a),
    }
}
