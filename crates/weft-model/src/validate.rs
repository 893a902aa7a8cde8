//! The validation context and the checks that many kinds share.
//!
//! Each kind implements [`Validate`]; it walks its fields with [`Ctx::field`] and
//! [`Ctx::index`] so that every finding carries the exact field path, which the loader
//! turns into a file position.

use crate::diag::Severity;
use crate::path::FieldPath;
use std::collections::BTreeMap;

/// A finding before it is placed in a file: a path relative to the document root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub path: FieldPath,
    pub message: String,
}

/// Walks a resource, collecting findings with their field paths.
#[derive(Debug)]
pub struct Ctx {
    path: FieldPath,
    /// Namespace of the resource being validated (after defaulting).
    pub namespace: String,
    findings: Vec<Finding>,
}

impl Ctx {
    /// A context rooted at `root` (usually `spec`).
    pub fn new(root: &str, namespace: &str) -> Self {
        let mut path = FieldPath::root();
        if !root.is_empty() {
            path = FieldPath::parse(root);
        }
        Ctx {
            path,
            namespace: namespace.to_string(),
            findings: Vec::new(),
        }
    }

    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The current path, rendered (`spec.http[0]`).
    pub fn path(&self) -> String {
        self.path.to_string()
    }

    /// Runs `f` one field deeper.
    pub fn field<R>(&mut self, name: &str, f: impl FnOnce(&mut Ctx) -> R) -> R {
        self.path.push_field(name);
        let r = f(self);
        self.path.pop();
        r
    }

    /// Runs `f` one list item deeper.
    pub fn index<R>(&mut self, i: usize, f: impl FnOnce(&mut Ctx) -> R) -> R {
        self.path.push_index(i);
        let r = f(self);
        self.path.pop();
        r
    }

    /// Runs `f` for each item of a list, with the item's index in the path.
    pub fn each<T>(&mut self, name: &str, items: &[T], mut f: impl FnMut(&mut Ctx, usize, &T)) {
        self.field(name, |cx| {
            for (i, item) in items.iter().enumerate() {
                cx.index(i, |cx| f(cx, i, item));
            }
        });
    }

    /// Validates an optional field with its own [`Validate`] impl.
    pub fn opt<T: Validate>(&mut self, name: &str, v: &Option<T>) {
        if let Some(v) = v {
            self.field(name, |cx| v.validate(cx));
        }
    }

    /// Validates each item of a list with its own [`Validate`] impl.
    pub fn list<T: Validate>(&mut self, name: &str, items: &[T]) {
        self.each(name, items, |cx, _, item| item.validate(cx));
    }

    pub fn error(&mut self, msg: impl Into<String>) {
        self.push(Severity::Error, msg.into());
    }

    pub fn warn(&mut self, msg: impl Into<String>) {
        self.push(Severity::Warning, msg.into());
    }

    pub fn info(&mut self, msg: impl Into<String>) {
        self.push(Severity::Info, msg.into());
    }

    /// An error on a child field (that may be absent, e.g. a missing required field).
    pub fn error_at(&mut self, name: &str, msg: impl Into<String>) {
        let msg = msg.into();
        self.field(name, |cx| cx.error(msg));
    }

    pub fn warn_at(&mut self, name: &str, msg: impl Into<String>) {
        let msg = msg.into();
        self.field(name, |cx| cx.warn(msg));
    }

    fn push(&mut self, severity: Severity, message: String) {
        self.findings.push(Finding {
            severity,
            path: self.path.clone(),
            message,
        });
    }

    /// A required field: reports `NAME is required` when `present` is false.
    pub fn require(&mut self, name: &str, present: bool) {
        if !present {
            self.error_at(name, format!("`{name}` is required"));
        }
    }

    /// Exactly one of the named fields must be set (a protobuf `oneof` that is required).
    pub fn exactly_one(&mut self, choices: &[(&str, bool)]) {
        let set: Vec<&str> = choices.iter().filter(|c| c.1).map(|c| c.0).collect();
        let names = choices
            .iter()
            .map(|c| format!("`{}`", c.0))
            .collect::<Vec<_>>()
            .join(", ");
        match set.len() {
            1 => {}
            0 => self.error(format!("exactly one of {names} must be set; none is")),
            _ => self.error(format!(
                "exactly one of {names} must be set; found {}",
                set.iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
        }
    }

    /// At most one of the named fields may be set.
    pub fn at_most_one(&mut self, choices: &[(&str, bool)]) {
        let set: Vec<&str> = choices.iter().filter(|c| c.1).map(|c| c.0).collect();
        if set.len() > 1 {
            self.error(format!(
                "only one of {} may be set",
                set.iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
}

/// Validation of one type, with Istio's (or the Gateway API's) rules.
pub trait Validate {
    fn validate(&self, cx: &mut Ctx);
}

impl<T: Validate> Validate for Box<T> {
    fn validate(&self, cx: &mut Ctx) {
        (**self).validate(cx)
    }
}

// ---------------------------------------------------------------------------------------
// Shared checks. Each reports at the current path of `cx`.
// ---------------------------------------------------------------------------------------

/// A port number: 1..=65535.
pub fn check_port(cx: &mut Ctx, port: u32) {
    if port == 0 || port > 65535 {
        cx.error(format!(
            "port {port} is out of range: a port must be between 1 and 65535"
        ));
    }
}

/// A percentage: 0..=100.
pub fn check_percent(cx: &mut Ctx, value: f64) {
    if !(0.0..=100.0).contains(&value) || value.is_nan() {
        cx.error(format!(
            "percentage {value} is out of range: it must be between 0 and 100"
        ));
    }
}

/// A regular expression in RE2 syntax, as Envoy compiles it.
pub fn check_regex(cx: &mut Ctx, re: &str) {
    if let Err(e) = regex::Regex::new(re) {
        let msg = e.to_string();
        let last = msg.lines().last().unwrap_or(&msg).trim().to_string();
        cx.error(format!(
            "`{re}` is not a valid RE2 regular expression: {last}"
        ));
    }
}

/// A duration of at least `min_ms` milliseconds (Istio rejects sub-millisecond durations).
pub fn check_duration_min(cx: &mut Ctx, d: &crate::common::Duration, min_ms: u64) {
    let ms = d.0.as_millis();
    if !d.0.subsec_nanos().is_multiple_of(1_000_000) {
        cx.error(format!(
            "duration {d} has sub-millisecond precision; only whole milliseconds are supported"
        ));
    } else if ms < u128::from(min_ms) {
        cx.error(format!(
            "duration {d} is too short: it must be at least {min_ms}ms"
        ));
    }
}

/// A DNS-1123 label: lower-case alphanumerics and `-`, 1..=63 characters, alphanumeric at both ends.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Istio's DNS-1123 label: 1-63 letters (either case), digits and `-`, alphanumeric at both ends.
pub fn is_istio_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A first label that may carry a wildcard: `*`, `*foo`, `*-foo`, or a plain label.
fn is_wildcard_label(s: &str) -> bool {
    if s.len() > 63 {
        return false;
    }
    if s == "*" {
        return true;
    }
    let rest = s
        .strip_prefix("*-")
        .or_else(|| s.strip_prefix('*'))
        .unwrap_or(s);
    is_istio_dns_label(rest)
}

const LABEL_RULE: &str =
    "each label must be 1-63 letters, digits or '-', starting and ending with a letter or digit";

pub(crate) fn length_reason(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("it is empty".into())
    } else if name.len() > 255 {
        Some(format!(
            "it is {} characters long; the limit is 255",
            name.len()
        ))
    } else {
        None
    }
}

/// Why the dot-separated `labels` (all of `whole`, or all but its first label) are not
/// valid DNS labels: each a DNS-1123 label, the last not all digits, a trailing dot allowed.
fn dns_labels_reason(labels: &str) -> Option<String> {
    let parts: Vec<&str> = labels.split('.').collect();
    let last = parts[parts.len() - 1];
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("its last label `{last}` is all digits"));
    }
    for (i, label) in parts.iter().enumerate() {
        if i == parts.len() - 1 && label.is_empty() && parts.len() > 1 {
            break; // `istio.io.` is an unambiguous fully qualified name
        }
        if !is_istio_dns_label(label) {
            return Some(format!("label `{label}` is invalid: {LABEL_RULE}"));
        }
    }
    None
}

/// Why `domain` is not a valid DNS name with an optional wildcard in its first label
/// (Istio's `ValidateWildcardDomain`), if it is not. Short names (`reviews`) and `*` are valid.
pub fn wildcard_host_reason(domain: &str) -> Option<String> {
    if let Some(r) = length_reason(domain) {
        return Some(r);
    }
    let (first, rest) = match domain.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (domain, None),
    };
    if !is_wildcard_label(first) {
        return Some(format!(
            "label `{first}` is invalid: {LABEL_RULE} (only the first label may start with `*` or `*-`)"
        ));
    }
    rest.and_then(dns_labels_reason)
}

/// Why `name` is not a valid DNS name without wildcards (Istio's `ValidateFQDN`), if it is not.
pub fn fqdn_reason(name: &str) -> Option<String> {
    if let Some(r) = length_reason(name) {
        return Some(r);
    }
    dns_labels_reason(name)
}

/// A host (DNS name, optionally with a leading wildcard).
pub fn check_host(cx: &mut Ctx, host: &str) {
    if let Some(p) = wildcard_host_reason(host) {
        cx.error(format!("host `{host}` is not a valid DNS name: {p}"));
    }
}

/// Why `s` is not a valid Kubernetes label key, if it is not.
pub fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns1123_subdomain(p)
    {
        return Some(format!(
            "label key `{key}` has an invalid prefix `{p}`: it must be a DNS subdomain"
        ));
    }
    if !is_label_value(name) || name.is_empty() {
        return Some(format!(
            "label key `{key}` is invalid: the name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    None
}

/// A Kubernetes label value: empty, or up to 63 alphanumerics, `-`, `_`, `.` with
/// alphanumerics at both ends.
pub fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && v.as_bytes()[0].is_ascii_alphanumeric()
            && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric())
}

/// A map of labels (selector or workload labels). Reports under each key.
pub fn check_labels(cx: &mut Ctx, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        cx.field(k, |cx| {
            if let Some(p) = label_key_problem(k) {
                cx.error(p);
            } else if !is_label_value(v) {
                cx.error(format!(
                    "label value `{v}` is invalid: it must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
                ));
            }
        });
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(!a[i - 1].eq_ignore_ascii_case(&b[j - 1]));
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.len() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

// ---------------------------------------------------------------------------------------
// Shared helpers added with the Gateway API and Kubernetes models (branch model-gwapi).
// ---------------------------------------------------------------------------------------

impl Ctx {
    /// Runs `f` with the path reset to the document root, then restores it.
    ///
    /// Kubernetes objects (Service, Pod, ...) are validated whole, and their fields live at
    /// the top of the document (`spec.ports`, `subsets`), not under the `spec` root that
    /// [`Ctx::new`] is given for custom resources.
    pub fn at_root<R>(&mut self, f: impl FnOnce(&mut Ctx) -> R) -> R {
        let saved = std::mem::replace(&mut self.path, FieldPath::root());
        let r = f(self);
        self.path = saved;
        r
    }
}

/// At most `max` items in the list `name` (a CRD `maxItems`), reported on the list.
pub fn check_max_items(cx: &mut Ctx, name: &str, len: usize, max: usize) {
    if len > max {
        cx.error_at(
            name,
            format!("`{name}` has {len} entries; at most {max} are allowed"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "*",
            "*.example.com",
            "reviews",
            "reviews.default.svc.cluster.local",
            "Foo.com",
        ] {
            assert_eq!(wildcard_host_reason(ok), None, "{ok}");
        }
        for bad in ["", "foo.*.com", "foo..com", "-a.com", "a_b.com", "a.123"] {
            assert!(wildcard_host_reason(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn ctx_paths() {
        let mut cx = Ctx::new("spec", "default");
        cx.field("http", |cx| cx.index(2, |cx| cx.error_at("route", "boom")));
        let f = cx.into_findings();
        assert_eq!(f[0].path.to_string(), "spec.http[2].route");
    }

    #[test]
    fn one_of() {
        let mut cx = Ctx::new("spec", "default");
        cx.exactly_one(&[
            ("route", true),
            ("redirect", true),
            ("directResponse", false),
        ]);
        cx.exactly_one(&[("a", false), ("b", false)]);
        let f = cx.into_findings();
        assert!(
            f[0].message.contains("found `route` and `redirect`"),
            "{}",
            f[0].message
        );
        assert!(f[1].message.contains("none is"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("retryOnn", ["attempts", "perTryTimeout", "retryOn"]),
            Some("retryOn")
        );
        assert_eq!(suggest("zzz", ["attempts"]), None);
    }

    #[test]
    fn labels() {
        assert!(label_key_problem("app").is_none());
        assert!(label_key_problem("app.kubernetes.io/name").is_none());
        assert!(label_key_problem("-bad").is_some());
        assert!(is_label_value("v1"));
        assert!(!is_label_value("v1-"));
    }
}
