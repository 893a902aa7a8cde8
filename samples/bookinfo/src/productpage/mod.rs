//! The product page: the HTML page a user opens, and a small JSON API.
//!
//! Routes, as in Istio's Bookinfo: `GET /productpage`, `GET /` (index),
//! `GET /health`, `POST /login` (form fields `username`, `passwd`), `GET /logout`,
//! `GET /api/v1/products`, `/api/v1/products/{id}`, `.../{id}/reviews`,
//! `.../{id}/ratings`.
//!
//! Calls, also as in Bookinfo: details and ratings with a 3 s timeout; reviews
//! with a 3 s timeout and one retry on any failure (so a hanging reviews shows
//! its error after about 6 s, the bug the fault-injection tutorial finds).
//! Each call carries the trace headers of the inbound request, and `end-user`
//! when someone is signed in.

mod page;
mod session;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, LOCATION, SET_COOKIE};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::BaseUrl;
use crate::client::HttpClient;
use crate::headers::{PRODUCTPAGE_EXTRA, propagated};
use crate::http::{Body, json, json_error, method_not_allowed, not_found, serve_with, with_type};
use crate::model::the_book;
use crate::proxy::ProxyConfig;
use page::PageView;

const DETAILS_UNAVAILABLE: &str = "Sorry, product details are currently unavailable for this book.";
const REVIEWS_UNAVAILABLE: &str = "Sorry, product reviews are currently unavailable for this book.";
const RATINGS_UNAVAILABLE: &str = "Sorry, product ratings are currently unavailable for this book.";

/// The largest sign-in form accepted.
const MAX_FORM: usize = 16 * 1024;

/// Settings of the product page.
#[derive(Clone, Debug)]
pub struct ProductPageConfig {
    /// Where details is (`http://details:9080`).
    pub details_url: BaseUrl,
    /// Where reviews is (`http://reviews:9080`).
    pub reviews_url: BaseUrl,
    /// Where ratings is (`http://ratings:9080`), for `/api/v1/products/{id}/ratings`.
    pub ratings_url: BaseUrl,
    /// The proxy for outbound calls, if any.
    pub proxy: Option<ProxyConfig>,
    /// Timeout of the call to details (Bookinfo: 3 s).
    pub details_timeout: Duration,
    /// Timeout of each attempt to call reviews (Bookinfo: 3 s).
    pub reviews_timeout: Duration,
    /// Attempts at calling reviews (Bookinfo: 2, one retry on any failure).
    pub reviews_attempts: u32,
    /// Timeout of the call to ratings (Bookinfo: 3 s).
    pub ratings_timeout: Duration,
}

impl Default for ProductPageConfig {
    /// Bookinfo's: the mesh names on port 9080, its timeouts, no proxy.
    fn default() -> Self {
        let url = |s: &str| s.parse().expect("a valid default URL");
        ProductPageConfig {
            details_url: url("http://details:9080"),
            reviews_url: url("http://reviews:9080"),
            ratings_url: url("http://ratings:9080"),
            proxy: None,
            details_timeout: Duration::from_secs(3),
            reviews_timeout: Duration::from_secs(3),
            reviews_attempts: 2,
            ratings_timeout: Duration::from_secs(3),
        }
    }
}

struct ProductPage {
    config: ProductPageConfig,
    client: HttpClient,
}

/// A failed upstream call: the status to answer with and the text to show.
type Failure = (StatusCode, &'static str);

/// Serve the product page on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, config: ProductPageConfig) {
    let client = HttpClient::new(config.proxy.clone());
    let app = Arc::new(ProductPage { config, client });
    serve_with(listener, move |req| {
        let app = app.clone();
        async move { app.handle(req).await }
    })
    .await
}

impl ProductPage {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        match (method, path.as_str()) {
            (Method::GET, "/productpage") => self.product_page(req.headers()).await,
            (Method::POST, "/login") => login(req).await,
            (Method::GET, "/logout") => redirect_to_page(session::sign_out_cookie()),
            (Method::GET, "/health") => with_type(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "Product page is healthy",
            ),
            (Method::GET, "/" | "/index.html") => {
                with_type(StatusCode::OK, "text/html; charset=utf-8", INDEX)
            }
            (Method::GET, "/api/v1/products") => json(StatusCode::OK, &[the_book()]),
            (Method::GET, api) if api.starts_with("/api/v1/products/") => {
                self.api(api, req.headers()).await
            }
            (_, "/productpage" | "/login" | "/logout" | "/health" | "/" | "/index.html") => {
                method_not_allowed()
            }
            _ => not_found(),
        }
    }

    async fn product_page(&self, incoming: &HeaderMap) -> Response<Body> {
        let user = session::user(incoming);
        let headers = self.outbound_headers(incoming, user.as_deref());
        let product = the_book();
        let (details, reviews) = tokio::join!(
            self.details(product.id, headers.clone()),
            self.reviews(product.id, headers)
        );
        let view = PageView {
            product: &product,
            user: user.as_deref(),
            details: &details.map_err(|(_, message)| message),
            reviews: &reviews.map_err(|(_, message)| message),
        };
        with_type(
            StatusCode::OK,
            "text/html; charset=utf-8",
            page::render(&view),
        )
    }

    /// `/api/v1/products/{id}[/reviews|/ratings]`.
    async fn api(&self, path: &str, incoming: &HeaderMap) -> Response<Body> {
        let rest = &path["/api/v1/products/".len()..];
        let (id, what) = rest.split_once('/').unwrap_or((rest, ""));
        let Ok(id) = id.parse::<i64>() else {
            return json_error(StatusCode::BAD_REQUEST, "please provide numeric product id");
        };
        let headers = self.outbound_headers(incoming, session::user(incoming).as_deref());
        let result = match what {
            "" => self.details(id, headers).await,
            "reviews" => self.reviews(id, headers).await,
            "ratings" => self.ratings(id, headers).await,
            _ => return not_found(),
        };
        match result {
            Ok(value) => json(StatusCode::OK, &value),
            Err((status, message)) => json_error(status, message),
        }
    }

    async fn details(&self, id: i64, headers: HeaderMap) -> Result<Value, Failure> {
        let url = self.config.details_url.join(&format!("/details/{id}"));
        self.fetch(&url, headers, self.config.details_timeout)
            .await
            .map_err(|status| (status, DETAILS_UNAVAILABLE))
    }

    async fn reviews(&self, id: i64, headers: HeaderMap) -> Result<Value, Failure> {
        let url = self.config.reviews_url.join(&format!("/reviews/{id}"));
        let mut status = StatusCode::INTERNAL_SERVER_ERROR;
        for _ in 0..self.config.reviews_attempts.max(1) {
            match self
                .fetch(&url, headers.clone(), self.config.reviews_timeout)
                .await
            {
                Ok(value) => return Ok(value),
                Err(failed) => status = failed,
            }
        }
        Err((status, REVIEWS_UNAVAILABLE))
    }

    async fn ratings(&self, id: i64, headers: HeaderMap) -> Result<Value, Failure> {
        let url = self.config.ratings_url.join(&format!("/ratings/{id}"));
        self.fetch(&url, headers, self.config.ratings_timeout)
            .await
            .map_err(|status| (status, RATINGS_UNAVAILABLE))
    }

    /// `GET url` expecting `200` and JSON; on failure, the status to report
    /// (the upstream's, or 500 when there was no usable response).
    async fn fetch(
        &self,
        url: &Uri,
        headers: HeaderMap,
        timeout: Duration,
    ) -> Result<Value, StatusCode> {
        let response = match self.client.get(url, headers, timeout).await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(%url, %error, "upstream call failed");
                return Err(StatusCode::INTERNAL_SERVER_ERROR);
            }
        };
        if response.status != StatusCode::OK {
            tracing::warn!(%url, status = %response.status, "upstream answered with an error");
            return Err(response.status);
        }
        serde_json::from_slice(&response.body).map_err(|error| {
            tracing::warn!(%url, %error, "upstream answered with unreadable JSON");
            StatusCode::INTERNAL_SERVER_ERROR
        })
    }

    /// The headers of every outbound call: the inbound trace context and
    /// session, and `end-user` naming the signed-in user.
    fn outbound_headers(&self, incoming: &HeaderMap, user: Option<&str>) -> HeaderMap {
        let mut headers = propagated(incoming, PRODUCTPAGE_EXTRA);
        if let Some(user) = user {
            match HeaderValue::from_str(user) {
                Ok(value) => {
                    headers.insert("end-user", value);
                }
                Err(_) => tracing::warn!(user, "user name cannot be sent as a header"),
            }
        }
        headers
    }
}

/// `POST /login`: remember `username` in the `user` cookie (the password is
/// not checked, as in Bookinfo) and go back to the page.
async fn login(req: Request<Incoming>) -> Response<Body> {
    let body = match Limited::new(req.into_body(), MAX_FORM).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return with_type(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain; charset=utf-8",
                "sign-in form too large\n",
            );
        }
    };
    let cookie = match session::form_field(&body, "username") {
        Some(user) if !user.trim().is_empty() => session::sign_in_cookie(user.trim()),
        _ => session::sign_out_cookie(),
    };
    redirect_to_page(cookie)
}

fn redirect_to_page(cookie: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    headers.insert(LOCATION, HeaderValue::from_static("/productpage"));
    headers.insert(
        SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("cookies are built from escaped text"),
    );
    response
}

const INDEX: &str = "<!DOCTYPE html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>Simple Bookstore App</title></head>
<body>
<h3>Hello! This is a simple bookstore application consisting of four services.</h3>
<p>productpage calls details and reviews; reviews v2 and v3 call ratings.</p>
<p><a href=\"productpage\" id=\"open-productpage\">Open the product page</a></p>
</body>
</html>
";
