//! Accepting connections: original destination, protocol detection, filter-chain choice,
//! and hand-off to the chain's filter (HTTP connection manager or TCP proxy).

use crate::config::RouteTable;
use crate::config::listener::{
    FilterChainConfig, FilterChainMatch, ListenerConfig, NetworkFilter, TcpProxyConfig,
};
use crate::http::{Downstream, HttpManager};
use crate::proxy::Drain;
use crate::sniff::{Sniffed, sniff};
use crate::stats::{ListenerStats, Stats};
use crate::upstream::ClusterManager;
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

/// A listener's run-time state.
#[derive(Debug)]
pub struct ListenerRuntime {
    pub config: Arc<ListenerConfig>,
    chains: Vec<Chain>,
    default_chain: Option<Chain>,
    pub stats: ListenerStats,
    clusters: Arc<ClusterManager>,
    /// Whether any chain's match needs the first bytes inspected.
    needs_sniff: bool,
}

#[derive(Debug)]
struct Chain {
    matcher: FilterChainMatch,
    filter: ChainFilter,
    /// `envoy.filters.network.local_ratelimit` before the terminal filter.
    conn_limit: Option<Arc<crate::config::ratelimit::ConnectionRateLimit>>,
}

#[derive(Debug)]
enum ChainFilter {
    Http(Arc<HttpManager>),
    Tcp(Arc<TcpProxyConfig>),
}

impl ListenerRuntime {
    /// Builds the chains' filters (inline route tables only).
    pub fn new(
        config: Arc<ListenerConfig>,
        clusters: Arc<ClusterManager>,
        stats: &Stats,
    ) -> ListenerRuntime {
        ListenerRuntime::build(config, clusters, stats, &|_| None)
    }

    /// Builds the chains' filters; an HTTP connection manager using RDS reads its routes
    /// from the slot `rds` gives for its route config name.
    pub fn build(
        config: Arc<ListenerConfig>,
        clusters: Arc<ClusterManager>,
        stats: &Stats,
        rds: &dyn Fn(&str) -> Option<Arc<ArcSwap<RouteTable>>>,
    ) -> ListenerRuntime {
        let stats = stats.listener(&config.name);
        let chain = |c: &FilterChainConfig| Chain {
            conn_limit: c.conn_limit.clone(),
            matcher: c.matcher.clone(),
            filter: match &c.filter {
                NetworkFilter::Http(h) => {
                    let slot = h.rds.as_deref().and_then(rds);
                    let manager = match slot {
                        Some(routes) => HttpManager::with_routes(
                            h.clone(),
                            routes,
                            clusters.clone(),
                            stats.clone(),
                        ),
                        None => HttpManager::new(h.clone(), clusters.clone(), stats.clone()),
                    };
                    ChainFilter::Http(Arc::new(manager))
                }
                NetworkFilter::Tcp(t) => ChainFilter::Tcp(t.clone()),
            },
        };
        let chains: Vec<Chain> = config.filter_chains.iter().map(chain).collect();
        let default_chain = config.default_chain.as_ref().map(chain);
        let needs_sniff = (config.inspect_tls || config.inspect_http)
            && chains.iter().any(|c| {
                c.matcher.transport_protocol.is_some()
                    || !c.matcher.application_protocols.is_empty()
                    || !c.matcher.server_names.is_empty()
            });
        ListenerRuntime {
            config,
            chains,
            default_chain,
            stats,
            clusters,
            needs_sniff,
        }
    }

    /// The HTTP managers of this listener (admin and tests swap their routes).
    pub fn http_managers(&self) -> impl Iterator<Item = &Arc<HttpManager>> {
        self.chains
            .iter()
            .chain(self.default_chain.as_ref())
            .filter_map(|c| match &c.filter {
                ChainFilter::Http(h) => Some(h),
                ChainFilter::Tcp(_) => None,
            })
    }
}

/// Accepts until drained; each connection runs in its own tracked task. Each connection
/// is served by the listener's runtime current at accept time (`slot`), so an updated
/// listener applies to new connections while open ones finish on the old one.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    slot: Arc<ArcSwap<ListenerRuntime>>,
    all: Arc<ArcSwap<Vec<Arc<ListenerRuntime>>>>,
    mut drain: Drain,
    tracker: TaskTracker,
) {
    loop {
        let rt = slot.load_full();
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = drain.signaled() => return,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                tracing::warn!(listener = %rt.config.name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let target = handoff_target(&rt, &all.load(), &stream);
        let drain = drain.clone();
        // Boxed: the connection's future is ~10 KB (see `boxed_in_place`).
        tracker.spawn(crate::runtime::boxed_in_place(|| {
            handle_connection(stream, remote, target, drain)
        }));
    }
}

/// The original destination: `SO_ORIGINAL_DST` under iptables REDIRECT, else the local address.
fn original_dst(stream: &TcpStream) -> Option<SocketAddr> {
    let sock = socket2::SockRef::from(stream);
    let orig = match stream.local_addr().ok()? {
        SocketAddr::V4(_) => sock.original_dst_v4(),
        SocketAddr::V6(_) => sock.original_dst_v6(),
    };
    orig.ok()
        .and_then(|a| a.as_socket())
        .or_else(|| stream.local_addr().ok())
}

/// With `use_original_dst`, the listener bound to the connection's original destination
/// (exact address first, then a wildcard address on that port) serves it instead.
fn handoff_target(
    rt: &Arc<ListenerRuntime>,
    all: &[Arc<ListenerRuntime>],
    stream: &TcpStream,
) -> Arc<ListenerRuntime> {
    if !rt.config.use_original_dst {
        return rt.clone();
    }
    let Some(dst) = original_dst(stream) else {
        return rt.clone();
    };
    let exact = all
        .iter()
        .find(|l| l.config.name != rt.config.name && l.config.address == dst);
    let wildcard = || {
        all.iter().find(|l| {
            l.config.name != rt.config.name
                && l.config.address.ip().is_unspecified()
                && l.config.address.port() == dst.port()
        })
    };
    exact
        .or_else(wildcard)
        .cloned()
        .unwrap_or_else(|| rt.clone())
}

async fn handle_connection(
    stream: TcpStream,
    remote: SocketAddr,
    rt: Arc<ListenerRuntime>,
    drain: Drain,
) {
    rt.stats.cx_total.inc();
    rt.stats.cx_active.inc();
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(rt.config.address);
    let original = original_dst(&stream).unwrap_or(local);
    let sniffed = if rt.needs_sniff {
        sniff(
            &stream,
            rt.config.inspect_tls,
            rt.config.inspect_http,
            rt.config.sniff_timeout,
        )
        .await
    } else {
        Sniffed::default()
    };
    let ds = Downstream {
        remote,
        local,
        original_dst: original,
        server_name: sniffed.server_name.clone(),
        scheme: "http",
    };
    let chain = select_chain(&rt.chains, original.port(), &sniffed).or(rt.default_chain.as_ref());
    if let Some(limit) = chain.and_then(|c| c.conn_limit.as_ref())
        && !limit.bucket.try_take()
    {
        // Envoy's network local rate limit closes the connection at once.
        rt.stats.cx_rate_limited.inc();
        tracing::debug!(listener = %rt.config.name, %remote, "connection rate limited");
        rt.stats.cx_active.dec();
        return;
    }
    match chain {
        Some(Chain {
            filter: ChainFilter::Http(h),
            ..
        }) => h.clone().serve(stream, ds, drain).await,
        Some(Chain {
            filter: ChainFilter::Tcp(t),
            ..
        }) => crate::tcp::proxy(stream, t.clone(), rt.clusters.clone(), ds).await,
        // Envoy closes connections that match no chain.
        None => tracing::debug!(listener = %rt.config.name, %remote, "no filter chain matched"),
    }
    rt.stats.cx_active.dec();
}

/// Envoy's filter-chain selection: at each criterion, the most specific matching chains
/// survive (destination port, then server name, transport protocol, application protocols);
/// chains that leave a criterion empty match anything but lose to specific ones.
fn select_chain<'a>(chains: &'a [Chain], port: u16, s: &Sniffed) -> Option<&'a Chain> {
    let mut candidates: Vec<&Chain> =
        narrow(chains.iter().collect(), |m| match m.destination_port {
            Some(p) if p == port => Some(1),
            Some(_) => None,
            None => Some(0),
        });
    candidates = narrow(candidates, |m| {
        if m.server_names.is_empty() {
            return Some(0);
        }
        let sni = s.server_name.as_deref()?;
        m.server_names
            .iter()
            .filter_map(|n| {
                if n == sni {
                    Some(usize::MAX)
                } else {
                    n.strip_prefix('*')
                        .filter(|suffix| sni.ends_with(suffix) && sni.len() > suffix.len())
                        .map(str::len)
                }
            })
            .max()
    });
    candidates = narrow(candidates, |m| match &m.transport_protocol {
        None => Some(0),
        Some(t) if t == s.transport => Some(1),
        Some(_) => None,
    });
    candidates = narrow(candidates, |m| {
        if m.application_protocols.is_empty() {
            return Some(0);
        }
        m.application_protocols
            .iter()
            .any(|p| s.application_protocols.contains(p))
            .then_some(1)
    });
    candidates.first().copied()
}

/// Keeps the chains with the best score; `None` means the chain does not match.
fn narrow(chains: Vec<&Chain>, score: impl Fn(&FilterChainMatch) -> Option<usize>) -> Vec<&Chain> {
    let scored: Vec<(usize, &Chain)> = chains
        .into_iter()
        .filter_map(|c| score(&c.matcher).map(|s| (s, c)))
        .collect();
    let best = scored.iter().map(|(s, _)| *s).max();
    scored
        .into_iter()
        .filter(|(s, _)| Some(*s) == best)
        .map(|(_, c)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::listener::{DEFAULT_TCP_IDLE_TIMEOUT, TcpClusters};

    fn chain(name: &str, m: FilterChainMatch) -> Chain {
        Chain {
            conn_limit: None,
            matcher: m,
            filter: ChainFilter::Tcp(Arc::new(TcpProxyConfig {
                stat_prefix: name.to_owned(),
                clusters: TcpClusters::Single(Arc::from(name)),
                idle_timeout: Some(DEFAULT_TCP_IDLE_TIMEOUT),
                access_logs: Default::default(),
            })),
        }
    }

    fn name(c: Option<&Chain>) -> &str {
        match c.map(|c| &c.filter) {
            Some(ChainFilter::Tcp(t)) => t.stat_prefix.as_str(),
            _ => "-",
        }
    }

    #[test]
    fn most_specific_chain_wins() {
        let chains = vec![
            chain("any", FilterChainMatch::default()),
            chain(
                "port",
                FilterChainMatch {
                    destination_port: Some(9080),
                    ..Default::default()
                },
            ),
            chain(
                "port-http",
                FilterChainMatch {
                    destination_port: Some(9080),
                    application_protocols: vec!["http/1.1".into(), "h2c".into()],
                    ..Default::default()
                },
            ),
            chain(
                "tls-sni",
                FilterChainMatch {
                    server_names: vec!["*.example.com".into()],
                    transport_protocol: Some("tls".into()),
                    ..Default::default()
                },
            ),
            chain(
                "tls-exact",
                FilterChainMatch {
                    server_names: vec!["api.example.com".into()],
                    transport_protocol: Some("tls".into()),
                    ..Default::default()
                },
            ),
        ];
        let raw = Sniffed::default();
        let http = Sniffed {
            application_protocols: vec!["http/1.1".into()],
            ..Sniffed::default()
        };
        let tls = |sni: &str| Sniffed {
            transport: "tls",
            server_name: Some(sni.into()),
            application_protocols: vec![],
        };
        let cases = [
            (80, raw.clone(), "any"),
            (9080, raw.clone(), "port"),
            (9080, http.clone(), "port-http"),
            (80, http, "any"),
            (443, tls("www.example.com"), "tls-sni"),
            (443, tls("api.example.com"), "tls-exact"),
            (443, tls("example.com"), "any"),
        ];
        for (port, sniffed, want) in cases {
            assert_eq!(
                name(select_chain(&chains, port, &sniffed)),
                want,
                "port {port} {sniffed:?}"
            );
        }
        let only_port = vec![chain(
            "port",
            FilterChainMatch {
                destination_port: Some(1),
                ..Default::default()
            },
        )];
        assert_eq!(name(select_chain(&only_port, 2, &raw)), "-");
    }
}
