//! Which request headers each service copies onto its outbound calls.
//!
//! The proxies in a mesh start and report spans, but only the application can
//! tie an inbound request to the outbound calls it causes: it must copy the
//! trace context across. The lists follow Istio's Bookinfo.

use http::{HeaderMap, HeaderName};

/// Trace context and request identity, copied by every service that calls another.
const TRACE_HEADERS: &[&str] = &[
    // Envoy's request id: access logs and consistent trace sampling use it.
    "x-request-id",
    // W3C Trace Context.
    "traceparent",
    "tracestate",
    // Zipkin B3, multi-header and single-header forms.
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    // Lightstep.
    "x-ot-span-context",
    // Google Cloud Trace and OpenCensus binary context.
    "x-cloud-trace-context",
    "grpc-trace-bin",
    // SkyWalking.
    "sw8",
    "user-agent",
];

/// Datadog uses a family of headers (`x-datadog-trace-id`, `-parent-id`, `-sampling-priority`, ...).
const TRACE_HEADER_PREFIX: &str = "x-datadog-";

/// What productpage adds: the session and credentials, so routing rules that
/// match on the cookie (older Istio samples) or on a token still see them.
pub(crate) const PRODUCTPAGE_EXTRA: &[&str] = &["cookie", "authorization", "jwt"];

/// What reviews adds: the signed-in user that productpage named.
pub(crate) const REVIEWS_EXTRA: &[&str] = &["end-user"];

/// The headers of `incoming` that an outbound call made on its behalf carries:
/// the trace headers plus `extra`, every value of each, nothing else.
pub(crate) fn propagated(incoming: &HeaderMap, extra: &[&str]) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        if is_propagated(name, extra) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

fn is_propagated(name: &HeaderName, extra: &[&str]) -> bool {
    let name = name.as_str();
    TRACE_HEADERS.contains(&name) || extra.contains(&name) || name.starts_with(TRACE_HEADER_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn keeps_trace_headers_and_extras_only() {
        let mut incoming = HeaderMap::new();
        for name in [
            "x-request-id",
            "b3",
            "x-datadog-trace-id",
            "end-user",
            "cookie",
            "host",
            "accept",
        ] {
            incoming.insert(HeaderName::from_static(name), HeaderValue::from_static("v"));
        }
        incoming.append("tracestate", HeaderValue::from_static("a=1"));
        incoming.append("tracestate", HeaderValue::from_static("b=2"));

        let out = propagated(&incoming, REVIEWS_EXTRA);
        let mut names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "b3",
                "end-user",
                "tracestate",
                "x-datadog-trace-id",
                "x-request-id"
            ]
        );
        assert_eq!(out.get_all("tracestate").iter().count(), 2);
    }
}
