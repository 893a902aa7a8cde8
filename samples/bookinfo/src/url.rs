//! Base URLs of upstream services (`http://reviews:9080`).

use std::fmt;
use std::str::FromStr;

use http::Uri;
use http::uri::{Authority, Scheme};

/// A validated `http://host[:port][/prefix]` base URL of an upstream service.
///
/// Only plain HTTP: in a mesh the sidecar adds TLS, the application never does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    authority: Authority,
    /// Path prefix without a trailing slash; empty for the usual `http://host:port`.
    prefix: String,
}

/// Why a string is not a usable [`BaseUrl`].
#[derive(Debug, thiserror::Error)]
#[error("invalid upstream URL {url:?}: {reason}")]
pub struct InvalidUrl {
    url: String,
    reason: String,
}

impl BaseUrl {
    /// The `host[:port]` that requests to this upstream name in `Host`.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The absolute URL of `path` (which starts with `/`) on this upstream.
    pub fn join(&self, path: &str) -> Uri {
        let url = format!("http://{}{}{}", self.authority, self.prefix, path);
        // Both halves were validated when the BaseUrl was parsed and `path` is
        // built by this crate from digits and fixed segments.
        url.parse().expect("a joined BaseUrl is a valid URI")
    }
}

impl FromStr for BaseUrl {
    type Err = InvalidUrl;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| InvalidUrl {
            url: s.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = s
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(invalid("only http:// URLs are supported"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| invalid("missing host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user information is not supported"));
        }
        if uri.query().is_some() {
            return Err(invalid("a base URL takes no query"));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(BaseUrl { authority, prefix })
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths_onto_host_and_prefix() {
        let cases = [
            ("http://reviews:9080", "http://reviews:9080/reviews/0"),
            ("http://reviews:9080/", "http://reviews:9080/reviews/0"),
            (
                "http://127.0.0.1:1234/api/",
                "http://127.0.0.1:1234/api/reviews/0",
            ),
            ("http://reviews", "http://reviews/reviews/0"),
        ];
        for (base, want) in cases {
            let base: BaseUrl = base.parse().unwrap();
            assert_eq!(base.join("/reviews/0").to_string(), want);
        }
    }

    #[test]
    fn rejects_what_it_cannot_call() {
        for bad in [
            "https://reviews:9080",
            "reviews:9080",
            "/reviews",
            "http://u@reviews",
            "http://r/?q=1",
        ] {
            assert!(bad.parse::<BaseUrl>().is_err(), "{bad} should be rejected");
        }
    }
}
