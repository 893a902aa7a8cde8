//! productpage as a user and the mesh see it: the page, sign-in, header
//! propagation, and Bookinfo's behaviour when an upstream fails or hangs.

mod common;

use std::time::{Duration, Instant};

use common::*;
use http::{Method, StatusCode};
use weft_bookinfo::productpage::{self, ProductPageConfig};
use weft_bookinfo::reviews::ReviewsVersion;

const FULL_STAR: &str = r#"class="star star-full""#;
const EMPTY_STAR: &str = r#"class="star star-empty""#;

async fn page_with(version: ReviewsVersion) -> Page {
    let page = start_bookinfo(version).await;
    let page = get(&format!("http://{page}/productpage"), &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("The Comedy of Errors"), "{}", page.body);
    for detail in [
        "paperback",
        "200",
        "PublisherA",
        "English",
        "1234567890",
        "123-1234567890",
    ] {
        assert!(
            page.body.contains(&format!("<dd>{detail}</dd>")),
            "missing {detail}: {}",
            page.body
        );
    }
    assert!(page.body.contains(r#"data-details-status="ok""#));
    assert!(
        page.body
            .contains("An extremely entertaining play by Shakespeare.")
    );
    assert!(page.body.contains("Absolutely fun and entertaining."));
    let instance = format!("reviews-{version}");
    assert!(
        page.body
            .contains(&format!("<dd>Reviews served by: <u>{instance}</u></dd>")),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!(r#"data-reviews-version="{version}""#))
    );
    page
}

#[tokio::test]
async fn page_shows_reviews_v1_without_stars() {
    let page = page_with(ReviewsVersion::V1).await;
    assert_eq!(page.count(FULL_STAR) + page.count(EMPTY_STAR), 0);
    assert!(
        !page
            .body
            .contains("Ratings service is currently unavailable")
    );
}

#[tokio::test]
async fn page_shows_black_stars_from_reviews_v2() {
    let page = page_with(ReviewsVersion::V2).await;
    // Reviewer1 gave 5 stars, Reviewer2 gave 4: nine full stars and one empty one.
    assert_eq!(page.count(FULL_STAR), 9);
    assert_eq!(page.count(EMPTY_STAR), 1);
    assert_eq!(page.count(r#"data-color="black" style="color: black""#), 2);
    assert_eq!(page.count("data-color=\"red\""), 0);
}

#[tokio::test]
async fn page_shows_red_stars_from_reviews_v3() {
    let page = page_with(ReviewsVersion::V3).await;
    assert_eq!(page.count(FULL_STAR), 9);
    assert_eq!(page.count(EMPTY_STAR), 1);
    assert_eq!(page.count(r#"data-color="red" style="color: red""#), 2);
    assert_eq!(page.count("data-color=\"black\""), 0);
}

#[tokio::test]
async fn sign_in_as_jason_sends_end_user_to_reviews() {
    let details = start_details().await;
    let reviews = Recorder::start(Reply::Json(StatusCode::OK, reviews_v1_json())).await;
    let page = start_productpage(base(details), reviews.url()).await;

    let anonymous = get(&format!("http://{page}/productpage"), &[]).await;
    assert!(
        anonymous
            .body
            .contains(r#"<form method="post" action="login""#)
    );
    assert!(
        anonymous.body.contains(r#"name="username""#)
            && anonymous.body.contains(r#"name="passwd""#)
    );

    let login = request(
        Method::POST,
        &format!("http://{page}/login"),
        &[("content-type", "application/x-www-form-urlencoded")],
        "username=jason&passwd=secret",
    )
    .await;
    assert_eq!(login.status, StatusCode::FOUND);
    assert_eq!(login.headers["location"], "/productpage");
    let set_cookie = login.headers["set-cookie"].to_str().unwrap();
    assert!(set_cookie.starts_with("user=jason;"), "{set_cookie}");

    let signed_in = get(
        &format!("http://{page}/productpage"),
        &[("cookie", "user=jason")],
    )
    .await;
    assert!(
        signed_in.body.contains(r#"data-user="jason""#),
        "{}",
        signed_in.body
    );
    assert!(signed_in.body.contains("sign out"));

    let seen = reviews.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].uri.path(), "/reviews/0");
    assert!(
        seen[0].headers.get("end-user").is_none(),
        "anonymous call named a user"
    );
    assert_eq!(seen[1].headers["end-user"], "jason");

    let logout = get(
        &format!("http://{page}/logout"),
        &[("cookie", "user=jason")],
    )
    .await;
    assert_eq!(logout.status, StatusCode::FOUND);
    let cleared = logout.headers["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("user=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test]
async fn tracing_headers_are_forwarded_to_details_and_reviews() {
    let details = Recorder::start(Reply::Json(
        StatusCode::OK,
        r#"{"id":0,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1","ISBN-13":"2"}"#.into(),
    ))
    .await;
    let reviews = Recorder::start(Reply::Json(StatusCode::OK, reviews_v1_json())).await;
    let page = start_productpage(details.url(), reviews.url()).await;

    let trace = [
        ("x-request-id", "5e8a6f0c-7d51-4c8e-9a4f-1f2d3c4b5a69"),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
        ("x-b3-sampled", "1"),
        ("x-b3-flags", "1"),
        (
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        ),
        ("x-ot-span-context", "e457b5a2e4d86bd1;05e3ac9a4f6e3b90;1"),
        ("x-datadog-trace-id", "1234"),
        ("x-datadog-parent-id", "5678"),
        ("x-datadog-sampling-priority", "1"),
        ("user-agent", "bookinfo-test/1"),
    ];
    let mut sent = trace.to_vec();
    sent.push(("cookie", "user=jason"));
    sent.push(("x-not-propagated", "1"));
    let page = get(&format!("http://{page}/productpage"), &sent).await;
    assert_eq!(page.status, StatusCode::OK);

    for (service, recorder) in [("details", &details), ("reviews", &reviews)] {
        let seen = recorder.requests();
        assert_eq!(seen.len(), 1, "{service}: {seen:?}");
        let headers = &seen[0].headers;
        for (name, value) in trace {
            assert_eq!(
                headers.get(name).map(|v| v.to_str().unwrap()),
                Some(value),
                "{service}: {name}"
            );
        }
        assert_eq!(headers["end-user"], "jason", "{service}");
        assert!(headers.get("x-not-propagated").is_none(), "{service}");
    }
}

#[tokio::test]
async fn details_down_shows_bookinfo_error() {
    let ratings = start_ratings().await;
    let reviews = start_reviews(ReviewsVersion::V2, base(ratings)).await;
    let failing = Recorder::start(Reply::Json(StatusCode::SERVICE_UNAVAILABLE, "{}".into())).await;

    for details in [base(closed_port().await), failing.url()] {
        let page = start_productpage(details, base(reviews)).await;
        let page = get(&format!("http://{page}/productpage"), &[]).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains("Error fetching product details!"),
            "{}",
            page.body
        );
        assert!(
            page.body
                .contains("Sorry, product details are currently unavailable for this book.")
        );
        assert!(page.body.contains(r#"data-details-status="error""#));
        // The rest of the page is unaffected.
        assert_eq!(page.count(FULL_STAR), 9);
    }
}

#[tokio::test]
async fn slow_reviews_time_out_after_productpage_timeout_and_one_retry() {
    let details = start_details().await;
    let reviews = Recorder::start(Reply::Hold).await;
    let page = start_productpage(base(details), reviews.url()).await;

    let started = Instant::now();
    let page = get(&format!("http://{page}/productpage"), &[]).await;
    let elapsed = started.elapsed();

    assert!(
        page.body.contains("Error fetching product reviews!"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Sorry, product reviews are currently unavailable for this book.")
    );
    assert!(page.body.contains(r#"data-reviews-status="error""#));
    assert!(page.body.contains(r#"data-details-status="ok""#));
    // Bookinfo: 3 s per attempt, two attempts; the backend would hold forever.
    assert_eq!(reviews.requests().len(), 2);
    assert!(
        elapsed >= Duration::from_millis(5900),
        "gave up too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(9),
        "waited too long: {elapsed:?}"
    );
}

#[tokio::test]
async fn reviews_error_status_is_retried_once_then_shown() {
    let details = start_details().await;
    let reviews =
        Recorder::start(Reply::Json(StatusCode::INTERNAL_SERVER_ERROR, "{}".into())).await;
    let page = start_productpage(base(details), reviews.url()).await;

    let page = get(&format!("http://{page}/productpage"), &[]).await;
    assert!(page.body.contains("Error fetching product reviews!"));
    assert_eq!(reviews.requests().len(), 2);
}

#[tokio::test]
async fn failing_ratings_shows_ratings_unavailable() {
    let ratings =
        Recorder::start(Reply::Json(StatusCode::INTERNAL_SERVER_ERROR, "{}".into())).await;
    let reviews = start_reviews(ReviewsVersion::V2, ratings.url()).await;
    let details = start_details().await;
    let page = start_productpage(base(details), base(reviews)).await;

    let page = get(&format!("http://{page}/productpage"), &[]).await;
    assert_eq!(
        page.count("Ratings service is currently unavailable"),
        2,
        "{}",
        page.body
    );
    assert_eq!(page.count(FULL_STAR) + page.count(EMPTY_STAR), 0);
    assert!(page.body.contains(r#"data-reviews-version="v2""#));
    assert_eq!(ratings.requests().len(), 1);
}

#[tokio::test]
async fn api_serves_products_details_reviews_and_ratings() {
    let ratings = start_ratings().await;
    let reviews = start_reviews(ReviewsVersion::V3, base(ratings)).await;
    let details = start_details().await;
    let config = ProductPageConfig {
        details_url: base(details),
        reviews_url: base(reviews),
        ratings_url: base(ratings),
        ..ProductPageConfig::default()
    };
    let page = spawn(|l| productpage::serve(l, config)).await;
    let url = |path: &str| format!("http://{page}{path}");

    let products = get(&url("/api/v1/products"), &[]).await.json();
    assert_eq!(products[0]["id"], 0);
    assert_eq!(products[0]["title"], "The Comedy of Errors");

    let book = get(&url("/api/v1/products/0"), &[]).await.json();
    assert_eq!(book["ISBN-13"], "123-1234567890");

    let reviews = get(&url("/api/v1/products/0/reviews"), &[]).await.json();
    assert_eq!(reviews["podname"], "reviews-v3");
    assert_eq!(reviews["reviews"][0]["rating"]["color"], "red");

    let ratings = get(&url("/api/v1/products/0/ratings"), &[]).await.json();
    assert_eq!(ratings["ratings"]["Reviewer2"], 4);

    let bad = get(&url("/api/v1/products/x"), &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let health = get(&url("/health"), &[]).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "Product page is healthy")
    );
    assert_eq!(get(&url("/nope"), &[]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_reports_unavailable_details_with_the_upstream_status() {
    let details = Recorder::start(Reply::Json(StatusCode::SERVICE_UNAVAILABLE, "{}".into())).await;
    let page = start_productpage(details.url(), base(closed_port().await)).await;

    let answer = get(&format!("http://{page}/api/v1/products/0"), &[]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        answer.json()["error"],
        "Sorry, product details are currently unavailable for this book."
    );

    let answer = get(&format!("http://{page}/api/v1/products/0/reviews"), &[]).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
}
