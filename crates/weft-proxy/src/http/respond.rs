//! Local replies: every response the proxy generates itself, in one place, with Envoy's
//! bodies and response flags, and gRPC's trailers-only form for gRPC requests.

use crate::flags::ResponseFlags;
use crate::http::body::ResponseBody;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

/// A response the proxy answers with itself.
#[derive(Debug, Clone)]
pub struct LocalReply {
    pub status: StatusCode,
    pub flags: ResponseFlags,
    /// Envoy's `%RESPONSE_CODE_DETAILS%`.
    pub details: &'static str,
    body: Option<Bytes>,
    location: Option<String>,
    /// The gRPC status a gRPC request gets (else mapped from `status`).
    grpc_status: Option<u32>,
}

/// Whether a request is gRPC (so errors are reported as `grpc-status`).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// Envoy's HTTP-to-gRPC status mapping for local replies.
fn grpc_status(status: StatusCode) -> u16 {
    match status.as_u16() {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

impl LocalReply {
    /// A reply with Envoy's `text/plain` body (empty allowed).
    pub fn new(
        status: StatusCode,
        flags: ResponseFlags,
        details: &'static str,
        body: &str,
    ) -> LocalReply {
        LocalReply {
            status,
            flags,
            details,
            body: (!body.is_empty()).then(|| Bytes::copy_from_slice(body.as_bytes())),
            location: None,
            grpc_status: None,
        }
    }

    /// Replaces the body (direct responses).
    pub fn with_body(mut self, body: Option<Bytes>) -> LocalReply {
        self.body = body;
        self
    }

    /// Adds a `Location` (redirects).
    pub fn with_location(mut self, location: String) -> LocalReply {
        self.location = Some(location);
        self
    }

    /// Sets the `grpc-status` a gRPC request gets.
    pub fn with_grpc_status(mut self, code: u32) -> LocalReply {
        self.grpc_status = Some(code);
        self
    }

    /// The response; for gRPC requests errors become `200` with `grpc-status` (trailers-only).
    pub fn into_response(self, grpc: bool) -> Response<ResponseBody> {
        if grpc && (!self.status.is_success() || self.grpc_status.is_some()) {
            let mut resp = Response::new(ResponseBody::empty());
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            let code = self
                .grpc_status
                .unwrap_or_else(|| u32::from(grpc_status(self.status)));
            h.insert("grpc-status", HeaderValue::from(code));
            // As Envoy: the local reply body becomes grpc-message; no body, no message.
            if let Some(v) = self
                .body
                .as_ref()
                .and_then(|b| HeaderValue::from_bytes(b).ok())
            {
                h.insert("grpc-message", v);
            }
            return resp;
        }
        let mut resp = Response::new(match self.body.clone() {
            Some(b) => ResponseBody::full(b),
            None => ResponseBody::empty(),
        });
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        if let Some(b) = &self.body {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
        }
        if let Some(loc) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            h.insert(header::LOCATION, loc);
        }
        resp
    }
}
