//! Request timeouts, computed once per request with Envoy's rules (router `finalTimeout`
//! and the connection manager's stream timers), and the replies they end in.

use crate::config::listener::HttpConnectionManagerConfig;
use crate::config::route::{ForwardAction, RetryPolicy};
use crate::flags::ResponseFlags;
use crate::http::respond::LocalReply;
use http::{HeaderMap, StatusCode};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Which limit ended an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fired {
    /// The route timeout (or `max_grpc_timeout`): `504 UT`, never retried.
    Global,
    /// `per_try_timeout`: `504 UT`, retriable.
    PerTry,
    /// `per_try_idle_timeout`: `504 UT`, retriable.
    PerTryIdle,
    /// `stream_idle_timeout` / route `idle_timeout`: `SI`.
    StreamIdle,
    /// `max_stream_duration` / `grpc-timeout`: `DT`.
    Duration,
    /// `request_timeout`: the request did not arrive in full.
    Request,
}

impl Fired {
    /// Whether a retry policy may retry this (per-try limits only).
    pub(super) fn per_try(self) -> bool {
        matches!(self, Fired::PerTry | Fired::PerTryIdle)
    }

    /// The local reply (`request_complete`: the downstream request had fully arrived;
    /// Envoy answers 504 then and 408 otherwise for stream timers).
    pub(super) fn reply(self, request_complete: bool) -> LocalReply {
        let stream_code = if request_complete {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::REQUEST_TIMEOUT
        };
        match self {
            Fired::Global => LocalReply::new(
                StatusCode::GATEWAY_TIMEOUT,
                ResponseFlags::UPSTREAM_REQUEST_TIMEOUT,
                "upstream_response_timeout",
                "upstream request timeout",
            ),
            Fired::PerTry => LocalReply::new(
                StatusCode::GATEWAY_TIMEOUT,
                ResponseFlags::UPSTREAM_REQUEST_TIMEOUT,
                "upstream_per_try_timeout",
                "upstream request timeout",
            ),
            Fired::PerTryIdle => LocalReply::new(
                StatusCode::GATEWAY_TIMEOUT,
                ResponseFlags::UPSTREAM_REQUEST_TIMEOUT,
                "upstream_per_try_idle_timeout",
                "upstream request timeout",
            ),
            Fired::StreamIdle => LocalReply::new(
                stream_code,
                ResponseFlags::STREAM_IDLE_TIMEOUT,
                "stream_idle_timeout",
                "stream timeout",
            ),
            Fired::Duration => LocalReply::new(
                stream_code,
                ResponseFlags::DURATION_TIMEOUT,
                "max_duration_timeout",
                "downstream duration timeout",
            )
            .with_grpc_status(4),
            Fired::Request => LocalReply::new(
                StatusCode::REQUEST_TIMEOUT,
                ResponseFlags::default(),
                "request_overall_timeout",
                "request timeout",
            ),
        }
    }

    /// The flag a response body cut by this limit gets.
    pub(super) fn flag(self) -> ResponseFlags {
        match self {
            Fired::Global | Fired::PerTry | Fired::PerTryIdle => {
                ResponseFlags::UPSTREAM_REQUEST_TIMEOUT
            }
            Fired::StreamIdle => ResponseFlags::STREAM_IDLE_TIMEOUT,
            Fired::Duration => ResponseFlags::DURATION_TIMEOUT,
            Fired::Request => ResponseFlags::default(),
        }
    }
}

/// The limits that apply to one request.
#[derive(Debug, Clone, Default)]
pub(super) struct Timeouts {
    /// Route timeout, from when the request has fully arrived (after any fault delay).
    pub(super) global: Option<Duration>,
    pub(super) per_try: Option<Duration>,
    pub(super) per_try_idle: Option<Duration>,
    pub(super) stream_idle: Option<Duration>,
    /// From the start of the stream.
    pub(super) duration: Option<Instant>,
    /// From the start of the stream, while the request body is incomplete.
    pub(super) request: Option<Instant>,
    /// What `x-envoy-expected-rq-timeout-ms` says (per try, else global).
    pub(super) expected: Option<Duration>,
    /// Rewrite `grpc-timeout` to the expected timeout (`max_grpc_timeout` routes).
    pub(super) rewrite_grpc_timeout: bool,
}

/// Later than any limit in practice (a century): see [`RequestTimer::new`]. (A later
/// limit still works: the timer fires first and `send_within` re-plans.)
const UNARMED: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pin_project! {
    /// The timer a request's limits are timed on (`send_within`). An HTTP/1.1 connection
    /// keeps one for all its requests, which come one at a time: the timer stays registered
    /// with the runtime from one request to the next instead of being registered and taken
    /// out again for each.
    pub(super) struct RequestTimer {
        #[pin]
        sleep: Sleep,
        // The waker the timer was last polled with while it is armed: a timer that has not
        // fired wakes that one, so polling it again for the same task changes nothing
        // (and costs ~120 instructions: the runtime's budget check and a waker swap).
        armed_for: Option<Waker>,
    }
}

impl RequestTimer {
    /// A timer that is not armed: not registered until polled, and set to fall after any
    /// limit, so the first limit moves it. `now` is any recent instant.
    pub(super) fn new(now: Instant) -> RequestTimer {
        RequestTimer {
            sleep: tokio::time::sleep_until(now + UNARMED),
            armed_for: None,
        }
    }

    /// Makes the timer fire no later than `at`. A timer still armed for no later than
    /// `at` is left alone (a reset costs ~100 instructions even when the runtime only
    /// extends the registered deadline): if it fires first, the caller re-plans and aims
    /// again.
    pub(super) fn aim(self: Pin<&mut Self>, at: Instant) {
        let this = self.project();
        if this.sleep.deadline() > at || this.sleep.is_elapsed() {
            this.sleep.reset(at);
            *this.armed_for = None;
        }
    }
}

impl Future for RequestTimer {
    type Output = ();

    /// Ready once the deadline it was last aimed at has passed.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if !this.sleep.is_elapsed()
            && this
                .armed_for
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => {
                *this.armed_for = None;
                Poll::Ready(())
            }
            Poll::Pending => {
                *this.armed_for = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

static GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");

/// Parses a `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n).
pub(super) fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(&GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn nonzero(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

impl Timeouts {
    /// Envoy's rules: a route with `max_stream_duration` has no route timeout; a gRPC
    /// request on a route with `max_grpc_timeout` takes `grpc-timeout` (capped); stream
    /// limits count from `stream_start`.
    pub(super) fn compute(
        f: &ForwardAction,
        retry: Option<&RetryPolicy>,
        hcm: &HttpConnectionManagerConfig,
        headers: &HeaderMap,
        grpc: bool,
        stream_start: Instant,
    ) -> Timeouts {
        // Built in one go from borrowed config (no copy of the route's stream settings, no
        // default-then-overwrite): computed per request.
        let sd = f.stream_duration.as_deref();
        let grpc_header_max = sd.and_then(|s| s.grpc_header_max);
        // Only routes with a gRPC timeout setting read the header (a lookup per request).
        let header_timeout = if (grpc && f.max_grpc_timeout.is_some()) || grpc_header_max.is_some()
        {
            grpc_timeout(headers)
        } else {
            None
        };
        let mut rewrite_grpc_timeout = false;
        let global = match (sd, f.max_grpc_timeout) {
            (Some(_), _) => None,
            (None, Some(max)) if grpc => {
                rewrite_grpc_timeout = true;
                let mut g = header_timeout.unwrap_or_default();
                if let Some(off) = f.grpc_timeout_offset
                    && off < g
                {
                    g -= off;
                }
                if !max.is_zero() && (g.is_zero() || g > max) {
                    g = max;
                }
                nonzero(Some(g))
            }
            (None, _) => f.timeout,
        };
        let mut per_try = retry.and_then(|r| r.per_try_timeout);
        if let (Some(g), Some(p)) = (global, per_try)
            && g < p
        {
            per_try = None;
        }
        let expected = per_try.or(global);
        // The connection manager's max stream duration, replaced by the route's.
        let limit = match (header_timeout, grpc_header_max) {
            (Some(h), Some(max)) => {
                let mut d = if !max.is_zero() && h > max { max } else { h };
                if !d.is_zero()
                    && let Some(off) = sd.and_then(|s| s.grpc_header_offset)
                {
                    d = d.saturating_sub(off);
                }
                nonzero(Some(d))
            }
            _ => match sd.and_then(|s| s.max) {
                Some(d) => nonzero(Some(d)),
                None => hcm.max_stream_duration,
            },
        };
        Timeouts {
            global,
            per_try,
            per_try_idle: retry.and_then(|r| r.per_try_idle_timeout),
            stream_idle: match f.idle_timeout {
                Some(d) => nonzero(Some(d)),
                None => hcm.stream_idle_timeout,
            },
            duration: limit.map(|d| stream_start + d),
            request: hcm.request_timeout.map(|d| stream_start + d),
            expected,
            rewrite_grpc_timeout: rewrite_grpc_timeout && expected.is_some(),
        }
    }

    /// When the route timeout fires: its duration after the request fully arrived (Envoy
    /// starts it there), `None` while the body is still arriving or without a timeout.
    pub(super) fn global_deadline(&self, done: &crate::http::body::BodyDone) -> Option<Instant> {
        Some(done.ended_at()? + self.global?)
    }

    /// The first limit an attempt that starts now runs into.
    pub(super) fn attempt_limit(
        &self,
        global_deadline: Option<Instant>,
        attempt_start: Instant,
        request_done: bool,
        last_activity: Instant,
    ) -> Option<(Instant, Fired)> {
        // The earliest; on a tie the first in this order (per request: kept branch-light).
        let mut first: Option<(Instant, Fired)> = None;
        let mut consider = |at: Option<Instant>, kind: Fired| {
            if let Some(at) = at
                && first.is_none_or(|(f, _)| at < f)
            {
                first = Some((at, kind));
            }
        };
        consider(global_deadline, Fired::Global);
        consider(self.per_try.map(|d| attempt_start + d), Fired::PerTry);
        consider(
            self.per_try_idle.map(|d| attempt_start + d),
            Fired::PerTryIdle,
        );
        consider(
            self.stream_idle
                .map(|d| attempt_start.max(last_activity) + d),
            Fired::StreamIdle,
        );
        consider(self.duration, Fired::Duration);
        consider(self.request.filter(|_| !request_done), Fired::Request);
        first
    }

    /// Timers for a response body: the route timeout and stream duration as deadlines,
    /// the tighter of the idle limits as an idle timer.
    pub(super) fn body_timers(
        &self,
        global_deadline: Option<Instant>,
        now: Instant,
    ) -> Option<crate::http::body::BodyTimers> {
        // The earlier of each pair; on a tie the first named (per request: plain matches).
        let deadline = match (global_deadline, self.duration) {
            (Some(g), Some(d)) if d < g => Some((d, Fired::Duration.flag())),
            (Some(g), _) => Some((g, Fired::Global.flag())),
            (None, Some(d)) => Some((d, Fired::Duration.flag())),
            (None, None) => None,
        };
        let idle = match (self.per_try_idle, self.stream_idle) {
            (Some(p), Some(s)) if s < p => Some((s, Fired::StreamIdle.flag())),
            (Some(p), _) => Some((p, Fired::PerTryIdle.flag())),
            (None, Some(s)) => Some((s, Fired::StreamIdle.flag())),
            (None, None) => None,
        };
        crate::http::body::BodyTimers::new(deadline, idle, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert("grpc-timeout", v.parse().expect("value"));
            grpc_timeout(&m)
        };
        assert_eq!(h("100m"), Some(Duration::from_millis(100)));
        assert_eq!(h("2S"), Some(Duration::from_secs(2)));
        assert_eq!(h("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(h("5u"), Some(Duration::from_micros(5)));
        assert_eq!(h("123456789m"), None, "more than 8 digits");
        assert_eq!(h("10x"), None);
        assert_eq!(h("m"), None);
    }
}
