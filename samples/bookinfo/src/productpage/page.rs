//! The product page's HTML.
//!
//! Besides what a reader sees, the page carries stable hooks for tests and
//! browsers: `#details` and `#reviews` with `data-*-status`, `data-reviews-version`
//! naming the reviews instance that answered, and each star as an
//! `svg.star.star-full` / `svg.star.star-empty` drawn in the review's colour.

use std::fmt::Write;

use serde_json::Value;

use crate::model::{Product, Review, ReviewsResponse};

/// What productpage got back from an upstream: its JSON, or the failure text to show.
pub(crate) type Fetched = Result<Value, &'static str>;

/// Everything the page shows.
pub(crate) struct PageView<'a> {
    pub product: &'a Product,
    pub user: Option<&'a str>,
    pub details: &'a Fetched,
    pub reviews: &'a Fetched,
}

const STYLE: &str = "
body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #222; }
nav { background: #222; color: #eee; display: flex; justify-content: space-between; align-items: center; padding: 8px 24px; }
nav .brand { font-size: 18px; }
nav a { color: #9cf; }
nav input { margin-right: 6px; }
main { padding: 0 24px 24px; }
h3 { text-align: center; color: #337ab7; }
h4 { text-align: center; color: #337ab7; }
.row { display: flex; gap: 32px; }
.row > section { flex: 1; }
dt { font-weight: bold; }
dd { margin: 0 0 8px 0; }
blockquote { border-left: 5px solid #eee; margin: 0 0 16px; padding: 8px 16px; }
blockquote small { display: block; color: #777; }
.stars { display: inline-flex; gap: 2px; margin-top: 4px; }
.star { width: 22px; height: 22px; }
";

/// A five-pointed star in a 24x24 box.
const STAR_POINTS: &str =
    "12.0,1.5 14.7,8.8 22.5,9.1 16.4,13.9 18.5,21.4 12.0,17.1 5.5,21.4 7.6,13.9 1.5,9.1 9.3,8.8";

/// Render the whole page.
pub(crate) fn render(view: &PageView<'_>) -> String {
    let mut html = String::with_capacity(8 * 1024);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">\n");
    html.push_str("<title>Simple Bookstore App</title>\n<style>");
    html.push_str(STYLE);
    html.push_str("</style>\n</head>\n<body>\n");
    nav(&mut html, view.user);
    html.push_str("<main>\n");
    let _ = write!(
        html,
        "<h3 id=\"title\">{}</h3>\n<p>Summary: {}</p>\n",
        escape(&view.product.title),
        view.product.description_html
    );
    html.push_str("<div class=\"row\">\n");
    details(&mut html, view.details);
    reviews(&mut html, view.reviews);
    html.push_str("</div>\n</main>\n</body>\n</html>\n");
    html
}

fn nav(html: &mut String, user: Option<&str>) {
    html.push_str("<nav>\n<span class=\"brand\">BookInfo Sample</span>\n");
    match user {
        Some(user) => {
            let user = escape(user);
            let _ = writeln!(
                html,
                "<span id=\"user\" data-user=\"{user}\">{user} ( <a href=\"logout\" id=\"sign-out\">sign out</a> )</span>"
            );
        }
        None => html.push_str(concat!(
            "<form method=\"post\" action=\"login\" name=\"login_form\" id=\"login-form\">",
            "<input type=\"text\" name=\"username\" id=\"username\" placeholder=\"User Name\">",
            "<input type=\"password\" name=\"passwd\" id=\"passwd\" placeholder=\"Password\">",
            "<button type=\"submit\" id=\"sign-in\">Sign in</button>",
            "</form>\n"
        )),
    }
    html.push_str("</nav>\n");
}

fn details(html: &mut String, details: &Fetched) {
    let details = match details {
        Ok(details) => details,
        Err(message) => {
            error_section(html, "details", "Error fetching product details!", message);
            return;
        }
    };
    html.push_str(
        "<section id=\"details\" data-details-status=\"ok\">\n<h4>Book Details</h4>\n<dl>\n",
    );
    for (label, key) in [
        ("Type", "type"),
        ("Pages", "pages"),
        ("Publisher", "publisher"),
        ("Language", "language"),
        ("ISBN-10", "ISBN-10"),
        ("ISBN-13", "ISBN-13"),
    ] {
        let _ = writeln!(
            html,
            "<dt>{label}:</dt><dd>{}</dd>",
            escape(&field_text(&details[key]))
        );
    }
    html.push_str("</dl>\n</section>\n");
}

fn reviews(html: &mut String, reviews: &Fetched) {
    let parsed = reviews.clone().and_then(|value| {
        serde_json::from_value::<ReviewsResponse>(value).map_err(|_| REVIEWS_UNREADABLE)
    });
    let reviews = match parsed {
        Ok(reviews) => reviews,
        Err(message) => {
            error_section(html, "reviews", "Error fetching product reviews!", message);
            return;
        }
    };
    let version = reviews_version(&reviews.podname).unwrap_or("unknown");
    let _ = writeln!(
        html,
        "<section id=\"reviews\" data-reviews-status=\"ok\" data-reviews-version=\"{}\" data-reviews-podname=\"{}\">",
        escape(version),
        escape(&reviews.podname)
    );
    html.push_str("<h4>Book Reviews</h4>\n");
    for review in &reviews.reviews {
        one_review(html, review);
    }
    let _ = write!(
        html,
        "<dl>\n<dd>Reviews served by: <u>{}</u>",
        escape(&reviews.podname)
    );
    if !matches!(reviews.clustername.as_str(), "" | "null") {
        let _ = write!(html, " on cluster <u>{}</u>", escape(&reviews.clustername));
    }
    html.push_str("</dd>\n</dl>\n</section>\n");
}

const REVIEWS_UNREADABLE: &str = "Sorry, product reviews are currently unavailable for this book.";

fn one_review(html: &mut String, review: &Review) {
    let _ = writeln!(
        html,
        "<blockquote class=\"review\" data-reviewer=\"{0}\">\n<p>{1}</p>\n<small>{0}</small>",
        escape(&review.reviewer),
        escape(&review.text)
    );
    let rating = review.rating.as_ref();
    match (
        rating.and_then(|r| r.stars),
        rating.and_then(|r| r.error.as_deref()),
    ) {
        (Some(stars), _) if stars > 0 => {
            let stars = stars.min(5);
            let color = escape(rating.and_then(|r| r.color.as_deref()).unwrap_or("black"));
            let _ = write!(
                html,
                "<span class=\"stars\" data-stars=\"{stars}\" data-color=\"{color}\" style=\"color: {color}\">"
            );
            for n in 0..5 {
                let kind = if n < stars { "full" } else { "empty" };
                star(html, kind);
            }
            html.push_str("</span>\n");
        }
        (_, Some(error)) => {
            let _ = writeln!(
                html,
                "<p class=\"rating-error\"><i>{}</i></p>",
                escape(error)
            );
        }
        _ => {}
    }
    html.push_str("</blockquote>\n");
}

/// One star; full stars are filled with the text colour, empty ones outlined in it.
fn star(html: &mut String, kind: &str) {
    let paint = if kind == "full" {
        "fill=\"currentColor\""
    } else {
        "fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\""
    };
    let _ = write!(
        html,
        "<svg class=\"star star-{kind}\" viewBox=\"0 0 24 24\" aria-hidden=\"true\"><polygon points=\"{STAR_POINTS}\" {paint}/></svg>"
    );
}

fn error_section(html: &mut String, id: &str, heading: &str, message: &str) {
    let _ = writeln!(
        html,
        "<section id=\"{id}\" data-{id}-status=\"error\">\n<h4>{heading}</h4>\n<p>{}</p>\n</section>",
        escape(message)
    );
}

/// A details field as text: strings bare, numbers as written, anything else as JSON.
fn field_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The version label in an instance name: `v2` in `reviews-v2` or `reviews-v2-5b6f-x7k`.
pub(crate) fn reviews_version(podname: &str) -> Option<&str> {
    podname.split('-').find(|part| {
        part.strip_prefix('v')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Escape text for HTML content and double-quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_version_in_instance_names() {
        let cases = [
            ("reviews-v1", Some("v1")),
            ("reviews-v2-5b667bcbf8-xyz", Some("v2")),
            ("reviews-v10", Some("v10")),
            ("reviews", None),
            ("reviews-vx", None),
            ("", None),
        ];
        for (podname, want) in cases {
            assert_eq!(reviews_version(podname), want, "{podname}");
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
