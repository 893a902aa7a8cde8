//! Header handling the HTTP connection manager applies to every request and response.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1), plus the
/// non-standard ones proxies still see.
/// `Connection` comes first: `strip_hop_by_hop` reads the headers it names.
static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];

/// Removes hop-by-hop headers, including any named in `Connection`. `TE: trailers` is kept
/// (gRPC needs it end to end); other `TE` values are dropped.
///
/// Runs twice per proxied request, so it first looks at the names present in one pass: a
/// `remove` is a hash lookup per name, and most messages carry no hop-by-hop header or only
/// `Connection: keep-alive`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut present = [false; HOP_BY_HOP.len()];
    let mut te = false;
    for name in headers.keys() {
        // One string match per name (a length switch, then at most one compare) instead
        // of comparing each name with every entry of `HOP_BY_HOP`.
        let i = match name.as_str() {
            "connection" => 0,
            "keep-alive" => 1,
            "proxy-connection" => 2,
            "transfer-encoding" => 3,
            "upgrade" => 4,
            "proxy-authenticate" => 5,
            "te" => {
                te = true;
                continue;
            }
            _ => continue,
        };
        present[i] = true;
    }
    if present[0] {
        // Removed first: `remove` hands back the value (a lookup saved).
        if let Some(conn) = headers.remove(header::CONNECTION) {
            remove_connection_named(headers, &conn);
        }
        present[0] = false;
    }
    for (name, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, p)| *p) {
        headers.remove(name);
    }
    if !te {
        return;
    }
    let te_trailers = headers.get_all(header::TE).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        })
    });
    headers.remove(header::TE);
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Removes the headers `conn` (the `Connection` value) names (`TE` excepted: handled by
/// the caller).
fn remove_connection_named(headers: &mut HeaderMap, conn: &HeaderValue) {
    // What nearly every message says, decided without tokenizing.
    let whole = conn.as_bytes();
    if whole.eq_ignore_ascii_case(b"keep-alive") || whole.eq_ignore_ascii_case(b"close") {
        return;
    }
    // `keep-alive`, `close` and `upgrade` are what `Connection` nearly always says; the first
    // and last are removed anyway and `close` names no header, so they allocate nothing.
    let named: Vec<HeaderName> = conn
        .to_str()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| {
            !t.is_empty()
                && !["keep-alive", "close", "upgrade", "te"]
                    .iter()
                    .any(|common| t.eq_ignore_ascii_case(common))
        })
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
}

/// Envoy's `normalize_path` (RFC 3986 §5.2.4 dot-segment removal, `%2E` counting as a
/// dot, backslashes as slashes) and `merge_slashes`. Returns `None` when nothing changes.
pub fn normalize_path(path: &str, dots: bool, merge_slashes: bool) -> Option<String> {
    let mut p = if dots {
        path.replace('\\', "/")
    } else {
        path.to_owned()
    };
    if merge_slashes {
        while p.contains("//") {
            p = p.replace("//", "/");
        }
    }
    if dots {
        let is_dot = |s: &str| s == "." || s.eq_ignore_ascii_case("%2e");
        let is_dotdot = |s: &str| {
            let s = s.to_ascii_lowercase();
            matches!(s.as_str(), ".." | "%2e." | ".%2e" | "%2e%2e")
        };
        let mut out: Vec<&str> = Vec::new();
        let segments: Vec<&str> = p.split('/').skip(1).collect();
        let last = segments.len().saturating_sub(1);
        for (i, seg) in segments.iter().enumerate() {
            if is_dot(seg) {
                if i == last {
                    out.push("");
                }
            } else if is_dotdot(seg) {
                out.pop();
                if i == last {
                    out.push("");
                }
            } else {
                out.push(seg);
            }
        }
        p = format!("/{}", out.join("/"));
    }
    (p != path).then_some(p)
}

/// `n` as a header value; the small numbers most responses carry (upstream service time
/// in milliseconds, attempt counts) come from static strings, without an allocation.
pub fn decimal(n: u64) -> HeaderValue {
    const SMALL: [&str; 16] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
    ];
    match usize::try_from(n).ok().and_then(|i| SMALL.get(i)) {
        Some(s) => HeaderValue::from_static(s),
        None => HeaderValue::from(n),
    }
}

/// A random version-4 UUID, as Envoy's default request-id extension generates.
pub fn uuid_v4() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Where each byte's two hex digits go, around the dashes (fixed positions: no
    // per-byte branch).
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut b = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = *b"00000000-0000-0000-0000-000000000000";
    for (byte, at) in b.iter().zip(AT) {
        s[at] = HEX[usize::from(byte >> 4)];
        s[at + 1] = HEX[usize::from(byte & 0xf)];
    }
    HeaderValue::from_bytes(&s).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_te_trailers_stays() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("gzip, trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-kept", "te"]);
        assert_eq!(h[header::TE], "trailers");
    }

    #[test]
    fn connection_tokens_are_case_insensitive_and_plain_messages_untouched() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Close, X-Secret , Upgrade"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::HOST, HeaderValue::from_static("a"));
        strip_hop_by_hop(&mut h);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["host"]);

        let mut plain = HeaderMap::new();
        plain.insert(header::HOST, HeaderValue::from_static("a"));
        plain.append("x-b", HeaderValue::from_static("1"));
        plain.append("x-b", HeaderValue::from_static("2"));
        let before = plain.clone();
        strip_hop_by_hop(&mut plain);
        assert_eq!(plain, before);
    }

    #[test]
    fn paths_normalize_like_rfc3986() {
        let cases = [
            ("/a/b/../c", true, false, "/a/c"),
            ("/a/./b/.", true, false, "/a/b/"),
            ("/../a", true, false, "/a"),
            ("/a/%2e%2E/b", true, false, "/b"),
            ("/a\\b", true, false, "/a/b"),
            ("/a//b///c", false, true, "/a/b/c"),
            ("/a//../b", true, true, "/b"),
            ("/a/b/..", true, false, "/a/"),
        ];
        for (input, dots, merge, want) in cases {
            let got = normalize_path(input, dots, merge).unwrap_or_else(|| input.to_owned());
            assert_eq!(got, want, "{input}");
        }
        assert_eq!(normalize_path("/a/b", true, true), None);
    }

    #[test]
    fn decimals_match_formatting() {
        for n in [0, 1, 9, 10, 15, 16, 99, 100, 12345, u64::MAX] {
            assert_eq!(decimal(n), HeaderValue::from(n), "{n}");
        }
    }

    #[test]
    fn uuids_look_like_v4() {
        let u = uuid_v4();
        let s = u.to_str().expect("ascii");
        assert_eq!(s.len(), 36);
        for (i, c) in s.char_indices() {
            if matches!(i, 8 | 13 | 18 | 23) {
                assert_eq!(c, '-', "{s}");
            } else {
                assert!(matches!(c, '0'..='9' | 'a'..='f'), "{s}");
            }
        }
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        assert_ne!(uuid_v4(), u);
    }
}
