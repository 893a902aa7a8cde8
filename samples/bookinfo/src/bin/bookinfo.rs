//! `bookinfo`: run one Bookinfo service.
//!
//! ```text
//! bookinfo productpage [--listen ADDR] [--details-url URL] [--reviews-url URL] [--ratings-url URL]
//! bookinfo details     [--listen ADDR]
//! bookinfo reviews     --version v1|v2|v3 [--listen ADDR] [--ratings-url URL]
//! bookinfo ratings     [--listen ADDR]
//! ```
//!
//! Outbound calls honour `HTTP_PROXY` / `http_proxy` and `NO_PROXY`. Once the
//! listener is bound the process prints `listening on ADDR` on stdout, so a
//! supervisor that passed port 0 learns the port.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::pin::Pin;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use weft_bookinfo::proxy::ProxyConfig;
use weft_bookinfo::reviews::{ReviewsConfig, ReviewsVersion};
use weft_bookinfo::{BaseUrl, details, productpage, ratings, reviews};

#[derive(Parser)]
#[command(
    name = "bookinfo",
    about = "Istio's Bookinfo sample services, for weft"
)]
struct Cli {
    #[command(subcommand)]
    service: Service,
}

#[derive(Subcommand)]
enum Service {
    /// The HTML product page; calls details and reviews.
    Productpage {
        #[command(flatten)]
        listen: Listen,
        /// Base URL of the details service.
        #[arg(long, env = "DETAILS_URL", default_value = "http://details:9080")]
        details_url: BaseUrl,
        /// Base URL of the reviews service.
        #[arg(long, env = "REVIEWS_URL", default_value = "http://reviews:9080")]
        reviews_url: BaseUrl,
        /// Base URL of the ratings service.
        #[arg(long, env = "RATINGS_URL", default_value = "http://ratings:9080")]
        ratings_url: BaseUrl,
    },
    /// The book's details.
    Details {
        #[command(flatten)]
        listen: Listen,
    },
    /// Reviews: v1 without stars, v2 with black stars, v3 with red stars.
    Reviews {
        #[command(flatten)]
        listen: Listen,
        /// Which version to run: v1, v2 or v3.
        #[arg(long, env = "SERVICE_VERSION")]
        version: ReviewsVersion,
        /// Base URL of the ratings service (v2 and v3 call it).
        #[arg(long, env = "RATINGS_URL", default_value = "http://ratings:9080")]
        ratings_url: BaseUrl,
        /// Instance name shown on the page [default: reviews-<version>].
        #[arg(long, env = "POD_NAME")]
        podname: Option<String>,
        /// Cluster name shown on the page.
        #[arg(long, env = "CLUSTER_NAME")]
        cluster_name: Option<String>,
    },
    /// The ratings each reviewer gave.
    Ratings {
        #[command(flatten)]
        listen: Listen,
    },
}

#[derive(Args)]
struct Listen {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:9080")]
    listen: SocketAddr,
}

type Server = Pin<Box<dyn Future<Output = ()> + Send>>;

// One thread is plenty for a demo service and keeps each process small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let proxy = ProxyConfig::from_env().context("reading HTTP_PROXY")?;

    let (name, addr) = match &cli.service {
        Service::Productpage { listen, .. } => ("productpage", listen.listen),
        Service::Details { listen } => ("details", listen.listen),
        Service::Reviews { listen, .. } => ("reviews", listen.listen),
        Service::Ratings { listen } => ("ratings", listen.listen),
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;

    let server: Server = match cli.service {
        Service::Productpage {
            details_url,
            reviews_url,
            ratings_url,
            ..
        } => Box::pin(productpage::serve(
            listener,
            productpage::ProductPageConfig {
                details_url,
                reviews_url,
                ratings_url,
                proxy: proxy.clone(),
                ..Default::default()
            },
        )),
        Service::Details { .. } => Box::pin(details::serve(listener, Default::default())),
        Service::Reviews {
            version,
            ratings_url,
            podname,
            cluster_name,
            ..
        } => {
            let mut config = ReviewsConfig::new(version);
            config.ratings_url = ratings_url;
            config.proxy = proxy.clone();
            config.podname = podname.unwrap_or(config.podname);
            config.clustername = cluster_name;
            Box::pin(reviews::serve(listener, config))
        }
        Service::Ratings { .. } => Box::pin(ratings::serve(listener, Default::default())),
    };

    let via = proxy.as_ref().map(|p| p.authority().to_string());
    tracing::info!(service = name, %local, proxy = via.as_deref().unwrap_or("none"), "serving");
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {local}")?;
    stdout.flush()?;
    drop(stdout);

    tokio::select! {
        () = server => {}
        () = shutdown_signal() => tracing::info!(service = name, "shutting down"),
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
