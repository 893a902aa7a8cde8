//! The details service: facts about the book (`GET /details/{id}`).

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;

use crate::http::{Body, json, json_error, method_not_allowed, not_found, product_id, serve_with};
use crate::model::BookDetails;

/// Settings of the details service (it has none yet; the type keeps the
/// `serve(listener, config)` shape that every service shares).
#[derive(Clone, Debug, Default)]
pub struct DetailsConfig {}

/// Serve the details service on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, _config: DetailsConfig) {
    serve_with(listener, |req| async move { handle(&req) }).await
}

fn handle(req: &Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET {
        return method_not_allowed();
    }
    let path = req.uri().path();
    if path == "/health" {
        return json(StatusCode::OK, &json!({ "status": "Details is healthy" }));
    }
    match product_id(path, "/details/") {
        Some(Ok(id)) => json(StatusCode::OK, &book_details(id)),
        Some(Err(())) => json_error(StatusCode::BAD_REQUEST, "please provide numeric product id"),
        None => not_found(),
    }
}

/// The details of product `id`; every id is The Comedy of Errors, as in Bookinfo.
pub fn book_details(id: i64) -> BookDetails {
    BookDetails {
        id,
        author: "William Shakespeare".to_owned(),
        year: 1595,
        kind: "paperback".to_owned(),
        pages: 200,
        publisher: "PublisherA".to_owned(),
        language: "English".to_owned(),
        isbn_10: "1234567890".to_owned(),
        isbn_13: "123-1234567890".to_owned(),
    }
}
