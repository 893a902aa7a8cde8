//! The JSON documents the services exchange, field for field as Istio's
//! Bookinfo writes them, so weft's services and Istio's images interoperate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A book as productpage lists it (`GET /api/v1/products`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Product {
    /// The product id that the other services take in their paths.
    pub id: i64,
    /// The book's title.
    pub title: String,
    /// A short HTML summary, trusted: it is this crate's own text.
    #[serde(rename = "descriptionHtml")]
    pub description_html: String,
}

/// The details service's answer for one book (`GET /details/0`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BookDetails {
    /// The product id asked for.
    pub id: i64,
    /// Who wrote it.
    pub author: String,
    /// Year written.
    pub year: i64,
    /// Binding (`paperback`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Page count.
    pub pages: i64,
    /// Publisher.
    pub publisher: String,
    /// Language.
    pub language: String,
    /// ISBN-10.
    #[serde(rename = "ISBN-10")]
    pub isbn_10: String,
    /// ISBN-13.
    #[serde(rename = "ISBN-13")]
    pub isbn_13: String,
}

/// The reviews service's answer (`GET /reviews/0`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReviewsResponse {
    /// The product id asked for; a string, as the Java service writes it.
    pub id: String,
    /// The instance that answered (`reviews-v2`); productpage shows it.
    #[serde(default)]
    pub podname: String,
    /// The cluster of that instance; the string `"null"` when unknown, as in Bookinfo.
    #[serde(default)]
    pub clustername: String,
    /// The reviews, in order.
    pub reviews: Vec<Review>,
}

/// One review.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Review {
    /// Who wrote it (`Reviewer1`); also the key into the ratings.
    pub reviewer: String,
    /// The review's text.
    pub text: String,
    /// Absent from reviews v1, which never asks for ratings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
}

/// The stars of one review, or why there are none.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rating {
    /// Stars out of five.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stars: Option<i64>,
    /// The colour to draw them in (`black` for v2, `red` for v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Set instead of stars when ratings could not be fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The ratings service's answer (`GET /ratings/0`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RatingsResponse {
    /// The product id asked for.
    pub id: i64,
    /// Stars per reviewer.
    pub ratings: BTreeMap<String, i64>,
}

/// What reviews v2/v3 show for a review when ratings failed; productpage shows it verbatim.
pub const RATINGS_UNAVAILABLE: &str = "Ratings service is currently unavailable";

/// The Comedy of Errors, the one book Bookinfo sells.
pub fn the_book() -> Product {
    Product {
        id: 0,
        title: "The Comedy of Errors".to_owned(),
        description_html: concat!(
            r#"<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: "#,
            "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays, and his shortest: a farce whose humour ",
            "comes mostly from slapstick and mistaken identity, with puns and word play besides."
        )
        .to_owned(),
    }
}
