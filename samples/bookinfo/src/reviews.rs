//! The reviews service in its three versions (`GET /reviews/{id}`).
//!
//! v1 never calls ratings and shows no stars; v2 calls ratings with a 10 s
//! timeout and shows black stars; v3 calls ratings with a 2.5 s timeout and
//! shows red stars. The 10 s is Bookinfo's deliberate bug: it is longer than
//! productpage's 3 s timeout, which the fault-injection tutorial uncovers.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;

use crate::BaseUrl;
use crate::client::HttpClient;
use crate::headers::{REVIEWS_EXTRA, propagated};
use crate::http::{Body, json, json_error, method_not_allowed, not_found, product_id, serve_with};
use crate::model::{RATINGS_UNAVAILABLE, Rating, RatingsResponse, Review, ReviewsResponse};
use crate::proxy::ProxyConfig;

/// Which of the three reviews services to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReviewsVersion {
    /// No ratings, no stars.
    V1,
    /// Ratings in black stars; 10 s ratings timeout.
    V2,
    /// Ratings in red stars; 2.5 s ratings timeout.
    V3,
}

impl ReviewsVersion {
    /// `v1`, `v2` or `v3`: the label value a mesh subset selects.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewsVersion::V1 => "v1",
            ReviewsVersion::V2 => "v2",
            ReviewsVersion::V3 => "v3",
        }
    }

    /// The colour of the stars, or `None` when this version shows no ratings.
    pub fn star_color(self) -> Option<&'static str> {
        match self {
            ReviewsVersion::V1 => None,
            ReviewsVersion::V2 => Some("black"),
            ReviewsVersion::V3 => Some("red"),
        }
    }

    /// How long this version waits for ratings.
    pub fn ratings_timeout(self) -> Duration {
        match self {
            ReviewsVersion::V3 => Duration::from_millis(2500),
            ReviewsVersion::V1 | ReviewsVersion::V2 => Duration::from_secs(10),
        }
    }
}

/// Not one of `v1`, `v2`, `v3`.
#[derive(Debug, thiserror::Error)]
#[error("unknown reviews version {0:?}: expected v1, v2 or v3")]
pub struct UnknownVersion(String);

impl FromStr for ReviewsVersion {
    type Err = UnknownVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v1" => Ok(ReviewsVersion::V1),
            "v2" => Ok(ReviewsVersion::V2),
            "v3" => Ok(ReviewsVersion::V3),
            other => Err(UnknownVersion(other.to_owned())),
        }
    }
}

impl fmt::Display for ReviewsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings of a reviews service.
#[derive(Clone, Debug)]
pub struct ReviewsConfig {
    /// Which version to be.
    pub version: ReviewsVersion,
    /// Where ratings is (`http://ratings:9080`).
    pub ratings_url: BaseUrl,
    /// The proxy for the call to ratings, if any.
    pub proxy: Option<ProxyConfig>,
    /// The instance name in answers (`reviews-v2`); productpage shows it.
    pub podname: String,
    /// The cluster name in answers; `None` writes Bookinfo's `"null"`.
    pub clustername: Option<String>,
}

impl ReviewsConfig {
    /// `version` calling ratings at `http://ratings:9080`, named `reviews-<version>`.
    pub fn new(version: ReviewsVersion) -> Self {
        ReviewsConfig {
            version,
            ratings_url: "http://ratings:9080".parse().expect("a valid default URL"),
            proxy: None,
            podname: format!("reviews-{version}"),
            clustername: None,
        }
    }
}

struct Reviews {
    config: ReviewsConfig,
    client: HttpClient,
}

/// Serve a reviews service on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, config: ReviewsConfig) {
    let client = HttpClient::new(config.proxy.clone());
    let app = Arc::new(Reviews { config, client });
    serve_with(listener, move |req| {
        let app = app.clone();
        async move { app.handle(&req).await }
    })
    .await
}

impl Reviews {
    async fn handle(&self, req: &Request<Incoming>) -> Response<Body> {
        if req.method() != Method::GET {
            return method_not_allowed();
        }
        let path = req.uri().path();
        if path == "/health" {
            return json(StatusCode::OK, &json!({ "status": "Reviews is healthy" }));
        }
        match product_id(path, "/reviews/") {
            Some(Ok(id)) => json(StatusCode::OK, &self.reviews(id, req.headers()).await),
            Some(Err(())) => {
                json_error(StatusCode::BAD_REQUEST, "please provide numeric product id")
            }
            None => not_found(),
        }
    }

    async fn reviews(&self, id: i64, incoming: &HeaderMap) -> ReviewsResponse {
        let mut reviews = vec![
            review(
                "Reviewer1",
                "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
            ),
            review(
                "Reviewer2",
                "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.",
            ),
        ];
        if let Some(color) = self.config.version.star_color() {
            let stars = self.ratings(id, incoming).await;
            for review in &mut reviews {
                let given = stars.as_ref().and_then(|r| r.ratings.get(&review.reviewer));
                review.rating = Some(match given {
                    Some(&stars) => Rating {
                        stars: Some(stars),
                        color: Some(color.to_owned()),
                        error: None,
                    },
                    None => Rating {
                        error: Some(RATINGS_UNAVAILABLE.to_owned()),
                        ..Rating::default()
                    },
                });
            }
        }
        ReviewsResponse {
            id: id.to_string(),
            podname: self.config.podname.clone(),
            clustername: self
                .config
                .clustername
                .clone()
                .unwrap_or_else(|| "null".to_owned()),
            reviews,
        }
    }

    /// The ratings of product `id`, or `None` on any failure (which each
    /// review then reports as [`RATINGS_UNAVAILABLE`]).
    async fn ratings(&self, id: i64, incoming: &HeaderMap) -> Option<RatingsResponse> {
        let url = self.config.ratings_url.join(&format!("/ratings/{id}"));
        let headers = propagated(incoming, REVIEWS_EXTRA);
        let timeout = self.config.version.ratings_timeout();
        let response = match self.client.get(&url, headers, timeout).await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(%url, %error, "ratings call failed");
                return None;
            }
        };
        if response.status != StatusCode::OK {
            tracing::warn!(%url, status = %response.status, "ratings answered with an error");
            return None;
        }
        match serde_json::from_slice(&response.body) {
            Ok(ratings) => Some(ratings),
            Err(error) => {
                tracing::warn!(%url, %error, "ratings answered with unreadable JSON");
                None
            }
        }
    }
}

fn review(reviewer: &str, text: &str) -> Review {
    Review {
        reviewer: reviewer.to_owned(),
        text: text.to_owned(),
        rating: None,
    }
}
