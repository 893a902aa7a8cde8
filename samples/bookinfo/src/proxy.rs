//! The outbound HTTP proxy setting (`HTTP_PROXY`, `NO_PROXY`).
//!
//! In weft's local mode an application reaches its sidecar by using the
//! sidecar's outbound listener as a plain HTTP proxy: the application sends
//! absolute-form requests (`GET http://reviews:9080/reviews/0`) to it and the
//! sidecar routes by the host in the URL.

use http::Uri;
use http::uri::{Authority, Scheme};

/// Where outbound requests go instead of straight to the upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    authority: Authority,
    no_proxy: Vec<String>,
}

/// Why a proxy setting cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid proxy URL {url:?}: {reason}")]
pub struct InvalidProxy {
    url: String,
    reason: String,
}

impl ProxyConfig {
    /// A proxy at `url`: `http://host:port` (a bare `host:port` also works;
    /// the port defaults to 80).
    pub fn new(url: &str) -> Result<Self, InvalidProxy> {
        let invalid = |reason: &str| InvalidProxy {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let with_scheme = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let uri: Uri = with_scheme
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(invalid("only http:// proxies are supported"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("missing host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("proxy credentials are not supported"));
        }
        let authority = match authority.port_u16() {
            Some(_) => authority.clone(),
            None => format!("{}:80", authority.host())
                .parse()
                .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?,
        };
        Ok(ProxyConfig {
            authority,
            no_proxy: Vec::new(),
        })
    }

    /// Hosts reached directly, not through the proxy: a comma-separated list in
    /// `NO_PROXY` form (`localhost,.svc.cluster.local,*`). A port on an entry
    /// is ignored.
    pub fn with_no_proxy(mut self, list: &str) -> Self {
        self.no_proxy = list
            .split(',')
            .map(|entry| entry.trim().trim_start_matches('.'))
            .map(|entry| strip_port(entry).to_ascii_lowercase())
            .filter(|entry| !entry.is_empty())
            .collect();
        self
    }

    /// The proxy from the process environment: `HTTP_PROXY`, else `http_proxy`
    /// (unset or empty means none), with `NO_PROXY` / `no_proxy` exceptions.
    pub fn from_env() -> Result<Option<Self>, InvalidProxy> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`ProxyConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, InvalidProxy> {
        let first_set = |names: [&str; 2]| {
            names
                .into_iter()
                .filter_map(&lookup)
                .find(|value| !value.trim().is_empty())
        };
        let Some(url) = first_set(["HTTP_PROXY", "http_proxy"]) else {
            return Ok(None);
        };
        let proxy = Self::new(url.trim())?;
        Ok(Some(match first_set(["NO_PROXY", "no_proxy"]) {
            Some(list) => proxy.with_no_proxy(&list),
            None => proxy,
        }))
    }

    /// The proxy's `host:port`.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Whether a request to `host` goes through the proxy.
    pub fn applies_to(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        !self.no_proxy.iter().any(|entry| {
            entry == "*"
                || *entry == host
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|head| head.ends_with('.'))
        })
    }
}

/// `host:port` to `host`; IPv6 literals keep their colons.
fn strip_port(entry: &str) -> &str {
    if let Some(inner) = entry.strip_prefix('[') {
        return inner.split(']').next().unwrap_or(inner);
    }
    match entry.split_once(':') {
        Some((host, port)) if !port.contains(':') => host,
        _ => entry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn reads_upper_then_lower_case_and_ignores_empty() {
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Vars<'_>, Option<&str>)] = &[
            (&[], None),
            (&[("HTTP_PROXY", "")], None),
            (
                &[("http_proxy", "http://127.0.0.1:15001")],
                Some("127.0.0.1:15001"),
            ),
            (
                &[
                    ("HTTP_PROXY", "http://127.0.0.2:15001/"),
                    ("http_proxy", "http://127.0.0.3:1"),
                ],
                Some("127.0.0.2:15001"),
            ),
            (
                &[("HTTP_PROXY", " "), ("http_proxy", "127.0.0.3:15001")],
                Some("127.0.0.3:15001"),
            ),
            (&[("HTTP_PROXY", "http://sidecar")], Some("sidecar:80")),
        ];
        for (vars, want) in cases {
            let got = ProxyConfig::from_lookup(env(vars)).unwrap();
            assert_eq!(
                got.as_ref().map(|p| p.authority().as_str()),
                *want,
                "{vars:?}"
            );
        }
    }

    #[test]
    fn rejects_https_and_credentials() {
        assert!(ProxyConfig::new("https://127.0.0.1:15001").is_err());
        assert!(ProxyConfig::new("http://user:pw@127.0.0.1:15001").is_err());
    }

    #[test]
    fn no_proxy_matches_hosts_and_domains() {
        let proxy = ProxyConfig::new("127.0.0.1:15001")
            .unwrap()
            .with_no_proxy("localhost, .example.com,10.0.0.1:8080,[::1]");
        let cases = [
            ("reviews", true),
            ("localhost", false),
            ("LOCALHOST", false),
            ("example.com", false),
            ("api.example.com", false),
            ("notexample.com", true),
            ("10.0.0.1", false),
            ("[::1]", false),
        ];
        for (host, via_proxy) in cases {
            assert_eq!(proxy.applies_to(host), via_proxy, "{host}");
        }
        let all = ProxyConfig::new("127.0.0.1:15001")
            .unwrap()
            .with_no_proxy("*");
        assert!(!all.applies_to("reviews"));
    }
}
