//! Outbound calls through an HTTP proxy, as applications reach their sidecar
//! in weft's local mode: absolute-form request lines naming the mesh host.

mod common;

use std::process::Stdio;

use common::*;
use http::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use weft_bookinfo::productpage::{self, ProductPageConfig};
use weft_bookinfo::reviews::{self, ReviewsConfig, ReviewsVersion};

/// details, ratings and reviews v2 on loopback, the reviews one calling
/// `http://ratings:9080` through the returned proxy, which maps the mesh names
/// to them.
async fn mesh_behind_proxy() -> TestProxy {
    let details = start_details().await;
    let ratings = start_ratings().await;
    // Bound before the proxy starts, so the proxy can name it.
    let reviews_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let reviews = reviews_listener.local_addr().expect("addr");
    let proxy = TestProxy::start(vec![
        ("details:9080", details),
        ("ratings:9080", ratings),
        ("reviews:9080", reviews),
    ])
    .await;
    let mut config = ReviewsConfig::new(ReviewsVersion::V2);
    config.proxy = Some(proxy.config());
    tokio::spawn(reviews::serve(reviews_listener, config));
    proxy
}

fn assert_went_through(proxy: &TestProxy) {
    let mut lines = proxy.request_lines();
    lines.sort();
    assert_eq!(
        lines,
        [
            "GET http://details:9080/details/0",
            "GET http://ratings:9080/ratings/0",
            "GET http://reviews:9080/reviews/0",
        ]
    );
}

#[tokio::test]
async fn configured_proxy_receives_absolute_form_requests() {
    let proxy = mesh_behind_proxy().await;
    let config = ProductPageConfig {
        proxy: Some(proxy.config()),
        ..ProductPageConfig::default()
    };
    let page = spawn(|l| productpage::serve(l, config)).await;

    let page = get(&format!("http://{page}/productpage"), &[]).await;
    assert!(
        page.body.contains(r#"data-details-status="ok""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"data-reviews-version="v2""#));
    assert_eq!(page.count(r#"class="star star-full""#), 9);
    assert_went_through(&proxy);
}

#[tokio::test]
async fn no_proxy_hosts_are_called_directly() {
    let proxy = TestProxy::start(vec![]).await;
    let details = start_details().await;
    let reviews = start_reviews(ReviewsVersion::V1, base(closed_port().await)).await;
    let config = ProductPageConfig {
        details_url: base(details),
        reviews_url: base(reviews),
        proxy: Some(proxy.config().with_no_proxy("localhost,127.0.0.1")),
        ..ProductPageConfig::default()
    };
    let page = spawn(|l| productpage::serve(l, config)).await;

    let page = get(&format!("http://{page}/productpage"), &[]).await;
    assert!(
        page.body.contains(r#"data-reviews-version="v1""#),
        "{}",
        page.body
    );
    assert!(proxy.request_lines().is_empty());
}

#[tokio::test]
async fn bookinfo_binary_honours_http_proxy_env() {
    let proxy = mesh_behind_proxy().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bookinfo"))
        .args(["productpage", "--listen", "127.0.0.1:0"])
        .env("HTTP_PROXY", format!("http://{}", proxy.addr))
        .env("RUST_LOG", "warn")
        .env_remove("http_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("DETAILS_URL")
        .env_remove("REVIEWS_URL")
        .env_remove("RATINGS_URL")
        .env_remove("LISTEN_ADDR")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start bookinfo productpage");

    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("bookinfo reports its address in time")
        .expect("read stdout")
        .expect("a line on stdout");
    let addr = first
        .strip_prefix("listening on ")
        .expect("`listening on ADDR`")
        .to_owned();

    let page = get(&format!("http://{addr}/productpage"), &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(r#"data-details-status="ok""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"data-reviews-version="v2""#));
    assert_went_through(&proxy);

    child.kill().await.expect("stop bookinfo");
}
