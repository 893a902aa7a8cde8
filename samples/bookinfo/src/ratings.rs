//! The ratings service: the stars each reviewer gave (`GET /ratings/{id}`).

use std::collections::BTreeMap;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;

use crate::http::{Body, json, json_error, method_not_allowed, not_found, product_id, serve_with};
use crate::model::RatingsResponse;

/// Settings of the ratings service (none yet; see [`crate::details::DetailsConfig`]).
#[derive(Clone, Debug, Default)]
pub struct RatingsConfig {}

/// Serve the ratings service on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, _config: RatingsConfig) {
    serve_with(listener, |req| async move { handle(&req) }).await
}

fn handle(req: &Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET {
        return method_not_allowed();
    }
    let path = req.uri().path();
    if path == "/health" {
        return json(StatusCode::OK, &json!({ "status": "Ratings is healthy" }));
    }
    match product_id(path, "/ratings/") {
        Some(Ok(id)) => json(StatusCode::OK, &product_ratings(id)),
        Some(Err(())) => json_error(StatusCode::BAD_REQUEST, "please provide numeric product ID"),
        None => not_found(),
    }
}

/// The ratings of product `id`: five stars from Reviewer1, four from Reviewer2.
pub fn product_ratings(id: i64) -> RatingsResponse {
    RatingsResponse {
        id,
        ratings: BTreeMap::from([("Reviewer1".to_owned(), 5), ("Reviewer2".to_owned(), 4)]),
    }
}
