//! A first-path-segment index over a virtual host's routes that keeps Envoy's
//! first-match-in-order semantics.
//!
//! Each route is filed under the first path segment it can match (`/api/` and `/api/v1`
//! under `api`; exact paths and `path_separated_prefix` too), or under "any" when it could
//! match several (`/`, `/ap`, regexes, case-insensitive matches). A lookup walks the
//! segment's list and the "any" list merged in route order, so the first route that
//! matches is the same one a linear scan finds.

use super::{PathMatch, Route};
use std::collections::HashMap;

/// Tables this small are scanned linearly; the index only pays off beyond.
const MIN_ROUTES: usize = 16;

#[derive(Debug, Default)]
pub(super) struct RouteIndex {
    by_segment: HashMap<String, Vec<u32>>,
    any: Vec<u32>,
    enabled: bool,
}

/// The single first segment every path matched by `m` must have, if there is one.
fn first_segment(m: &super::RouteMatch) -> Option<&str> {
    if !m.case_sensitive {
        return None;
    }
    let (p, segment_must_end) = match &m.path {
        PathMatch::Prefix(p) => (p.as_str(), true),
        PathMatch::Exact(p) | PathMatch::SeparatedPrefix(p) => (p.as_str(), false),
        PathMatch::Regex(_) => return None,
    };
    let rest = p.strip_prefix('/')?;
    match rest.find('/') {
        // The prefix spells out the whole first segment (`/api/...`).
        Some(end) if end > 0 => Some(&rest[..end]),
        Some(_) => None,
        // `/api` as a prefix also matches `/apis`: no single segment.
        None if segment_must_end => None,
        None => Some(rest),
    }
}

/// A request path's first segment (`/api/v1?x` → `api`).
fn request_segment(path: &str) -> &str {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

impl RouteIndex {
    pub(super) fn build(routes: &[Route]) -> RouteIndex {
        if routes.len() < MIN_ROUTES {
            return RouteIndex::default();
        }
        let mut index = RouteIndex {
            enabled: true,
            ..RouteIndex::default()
        };
        for (i, r) in routes.iter().enumerate() {
            match first_segment(&r.matcher) {
                Some(seg) => index
                    .by_segment
                    .entry(seg.to_owned())
                    .or_default()
                    .push(i as u32),
                None => index.any.push(i as u32),
            }
        }
        index
    }

    /// The first route (in configuration order) for which `matches` holds.
    pub(super) fn find<'a>(
        &self,
        routes: &'a [Route],
        path: &str,
        mut matches: impl FnMut(&Route) -> bool,
    ) -> Option<&'a Route> {
        if !self.enabled {
            return routes.iter().find(|r| matches(r));
        }
        let filed: &[u32] = self
            .by_segment
            .get(request_segment(path))
            .map_or(&[], Vec::as_slice);
        let (mut a, mut b) = (filed.iter().peekable(), self.any.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => return None,
            };
            let route = &routes[*next? as usize];
            if matches(route) {
                return Some(route);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{RouteAction, RouteMatch};
    use super::*;
    use crate::config::route::{DirectResponse, HeaderMutation};

    fn route(path: PathMatch, case_sensitive: bool) -> Route {
        Route {
            filters: Default::default(),
            name: String::new(),
            matcher: RouteMatch {
                path,
                case_sensitive,
                headers: Vec::new(),
                query: Vec::new(),
                grpc: false,
            },
            action: RouteAction::Direct(DirectResponse {
                status: http::StatusCode::OK,
                body: None,
            }),
            request_headers: HeaderMutation::default(),
            response_headers: HeaderMutation::default(),
        }
    }

    /// Random tables from a small vocabulary: the index must pick what a linear scan picks.
    #[test]
    fn index_agrees_with_a_linear_scan() {
        let segs = ["a", "b", "ab", "A"];
        fastrand::seed(7);
        let pick = || segs[fastrand::usize(..segs.len())];
        for _ in 0..300 {
            let n = fastrand::usize(MIN_ROUTES..60);
            let routes: Vec<Route> = (0..n)
                .map(|_| {
                    let (s1, s2) = (pick(), pick());
                    let path = match fastrand::u8(..6) {
                        0 => PathMatch::Prefix(format!("/{s1}/")),
                        1 => PathMatch::Prefix(format!("/{s1}")),
                        2 => PathMatch::Exact(format!("/{s1}/{s2}")),
                        3 => PathMatch::SeparatedPrefix(format!("/{s1}")),
                        4 => PathMatch::Prefix(format!("/{s1}/{s2}")),
                        _ => {
                            PathMatch::Regex(regex::Regex::new(&format!("^/{s1}.*$")).expect("re"))
                        }
                    };
                    route(path, fastrand::u8(..5) != 0)
                })
                .collect();
            let index = RouteIndex::build(&routes);
            for _ in 0..40 {
                let path = match fastrand::u8(..4) {
                    0 => format!("/{}", pick()),
                    1 => format!("/{}/{}", pick(), pick()),
                    2 => format!("/{}{}/x?q", pick(), pick()),
                    _ => "/".to_owned(),
                };
                let hits = |r: &Route| {
                    let headers = http::HeaderMap::new();
                    r.matcher.matches(&super::super::RequestView {
                        method: &http::Method::GET,
                        authority: "h",
                        path_and_query: &path,
                        scheme: "http",
                        headers: &headers,
                    })
                };
                let linear = routes.iter().position(&hits);
                let indexed = index.find(&routes, &path, hits).map(|r| {
                    routes
                        .iter()
                        .position(|x| std::ptr::eq(x, r))
                        .expect("in table")
                });
                assert_eq!(indexed, linear, "{path}");
            }
        }
    }

    #[test]
    fn segments() {
        assert_eq!(request_segment("/api/v1?x=1"), "api");
        assert_eq!(request_segment("/api?x"), "api");
        assert_eq!(request_segment("/"), "");
    }
}
