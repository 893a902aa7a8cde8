//! details, ratings and reviews answer as Istio's Bookinfo services do.

mod common;

use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;
use serde_json::json;
use weft_bookinfo::reviews::ReviewsVersion;

#[tokio::test]
async fn details_serves_the_book() {
    let details = start_details().await;
    let book = get(&format!("http://{details}/details/0"), &[]).await;
    assert_eq!(book.status, StatusCode::OK);
    assert_eq!(book.headers["content-type"], "application/json");
    assert_eq!(
        book.json(),
        json!({
            "id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback",
            "pages": 200, "publisher": "PublisherA", "language": "English",
            "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"
        })
    );
    assert_eq!(
        get(&format!("http://{details}/details/7"), &[])
            .await
            .json()["id"],
        7
    );
    assert_eq!(
        get(&format!("http://{details}/details/x"), &[])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let health = get(&format!("http://{details}/health"), &[]).await;
    assert_eq!(health.json(), json!({ "status": "Details is healthy" }));
}

#[tokio::test]
async fn ratings_serves_reviewer_stars() {
    let ratings = start_ratings().await;
    let answer = get(&format!("http://{ratings}/ratings/0"), &[]).await;
    assert_eq!(
        answer.body,
        r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#
    );
    assert_eq!(
        get(&format!("http://{ratings}/ratings/x"), &[])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let health = get(&format!("http://{ratings}/health"), &[]).await;
    assert_eq!(health.json(), json!({ "status": "Ratings is healthy" }));
}

#[tokio::test]
async fn reviews_versions_answer_as_bookinfo() {
    let ratings = start_ratings().await;
    for (version, color) in [
        (ReviewsVersion::V1, None),
        (ReviewsVersion::V2, Some("black")),
        (ReviewsVersion::V3, Some("red")),
    ] {
        let reviews = start_reviews(version, base(ratings)).await;
        let answer = get(&format!("http://{reviews}/reviews/0"), &[])
            .await
            .json();
        assert_eq!(answer["id"], "0");
        assert_eq!(answer["podname"], format!("reviews-{version}"));
        assert_eq!(answer["clustername"], "null");
        let list = answer["reviews"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["reviewer"], "Reviewer1");
        assert_eq!(list[1]["reviewer"], "Reviewer2");
        match color {
            None => assert!(
                list.iter().all(|r| r.get("rating").is_none()),
                "{version}: {answer}"
            ),
            Some(color) => {
                assert_eq!(list[0]["rating"], json!({ "stars": 5, "color": color }));
                assert_eq!(list[1]["rating"], json!({ "stars": 4, "color": color }));
            }
        }
        let health = get(&format!("http://{reviews}/health"), &[]).await;
        assert_eq!(health.json(), json!({ "status": "Reviews is healthy" }));
    }
}

#[tokio::test]
async fn reviews_forwards_end_user_and_trace_headers_to_ratings() {
    let ratings = Recorder::start(Reply::Json(
        StatusCode::OK,
        r#"{"id":0,"ratings":{"Reviewer1":1,"Reviewer2":2}}"#.into(),
    ))
    .await;
    let reviews = start_reviews(ReviewsVersion::V2, ratings.url()).await;
    let sent = [
        ("end-user", "jason"),
        ("x-request-id", "abc"),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("x-b3-traceid", "80f198ee56343ba8"),
        ("x-b3-sampled", "1"),
        ("b3", "80f198ee56343ba8-e457b5a2e4d86bd1-1"),
        ("x-datadog-trace-id", "1"),
        ("user-agent", "test"),
    ];
    let answer = get(&format!("http://{reviews}/reviews/0"), &sent)
        .await
        .json();
    assert_eq!(answer["reviews"][1]["rating"]["stars"], 2);

    let seen = ratings.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri.path(), "/ratings/0");
    for (name, value) in sent {
        assert_eq!(
            seen[0].headers.get(name).map(|v| v.to_str().unwrap()),
            Some(value),
            "{name}"
        );
    }
    assert!(seen[0].headers.get("cookie").is_none());
}

#[tokio::test]
async fn reviews_reports_ratings_unavailable_when_ratings_is_down() {
    let reviews = start_reviews(ReviewsVersion::V2, base(closed_port().await)).await;
    let answer = get(&format!("http://{reviews}/reviews/0"), &[])
        .await
        .json();
    for review in answer["reviews"].as_array().unwrap() {
        assert_eq!(
            review["rating"],
            json!({ "error": "Ratings service is currently unavailable" })
        );
    }
}

#[tokio::test]
async fn reviews_v3_gives_up_on_ratings_after_2_5_seconds() {
    let ratings = Recorder::start(Reply::Hold).await;
    let reviews = start_reviews(ReviewsVersion::V3, ratings.url()).await;

    let started = Instant::now();
    let answer = get(&format!("http://{reviews}/reviews/0"), &[])
        .await
        .json();
    let elapsed = started.elapsed();

    assert_eq!(
        answer["reviews"][0]["rating"]["error"],
        "Ratings service is currently unavailable"
    );
    assert!(
        elapsed >= Duration::from_millis(2400),
        "gave up too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "waited too long: {elapsed:?}"
    );
}
