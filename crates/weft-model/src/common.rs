//! Types shared by many kinds: durations, object metadata, label selectors.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// A duration written as Istio and Kubernetes users write it: `1.5s`, `300ms`, `24h`,
/// `1h30m` (Go's `time.ParseDuration` units: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`).
///
/// Parsed when the document is read, so a bad duration is reported with its field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    pub fn as_std(&self) -> std::time::Duration {
        self.0
    }

    /// Parses Go-style durations. Negative durations are rejected: no Istio field takes one.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty duration".into());
        }
        if t == "0" {
            return Ok(Duration::default());
        }
        if t.starts_with('-') {
            return Err(format!("duration `{s}` is negative"));
        }
        let mut rest = t.strip_prefix('+').unwrap_or(t);
        let mut total: f64 = 0.0;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if num_len == 0 {
                return Err(format!(
                    "duration `{s}` must be a number followed by a unit, such as 1.5s, 300ms or 24h"
                ));
            }
            let num: f64 = rest[..num_len].parse().map_err(|_| {
                format!(
                    "duration `{s}` has an invalid number `{}`",
                    &rest[..num_len]
                )
            })?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let nanos_per = match unit {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "" => {
                    return Err(format!(
                        "duration `{s}` is missing a unit: write it as 1.5s, 300ms or 24h"
                    ));
                }
                other => {
                    return Err(format!(
                        "duration `{s}` has an unknown unit `{other}`: use ns, us, ms, s, m or h"
                    ));
                }
            };
            total += num * nanos_per;
        }
        if !total.is_finite() || total > 3.15e20 {
            return Err(format!("duration `{s}` is too large"));
        }
        Ok(Duration(std::time::Duration::from_nanos(
            total.round() as u64
        )))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let ms = d.as_millis();
        if !d.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ns", d.as_nanos())
        } else if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else if ms.is_multiple_of(3_600_000) && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 1.5s, 300ms or 24h")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Duration, E> {
                Duration::parse(s).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
                if n == 0 {
                    Ok(Duration::default())
                } else {
                    Err(E::custom(format!(
                        "duration `{n}` is missing a unit: write it as {n}s or {n}ms"
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Duration, E> {
                Err(E::custom(format!("duration `{n}` is missing a unit")))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "duration `{n}` is missing a unit: write it as {n}s"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Kubernetes object metadata, strict: a misspelt metadata field is reported, not dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_link: Option<String>,
}

/// Istio's `WorkloadSelector` (`selector: {matchLabels: {...}}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

impl crate::validate::Validate for WorkloadSelector {
    fn validate(&self, cx: &mut crate::validate::Ctx) {
        cx.field("matchLabels", |cx| {
            crate::validate::check_labels(cx, &self.match_labels)
        });
    }
}

/// True when every label of `selector` is present with the same value in `labels`.
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |s: &str| Duration::parse(s).map(|d| d.0.as_millis());
        assert_eq!(ms("1.5s"), Ok(1500));
        assert_eq!(ms("300ms"), Ok(300));
        assert_eq!(ms("24h"), Ok(86_400_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("0"), Ok(0));
        assert!(
            Duration::parse("10")
                .unwrap_err()
                .contains("missing a unit")
        );
        assert!(
            Duration::parse("10x")
                .unwrap_err()
                .contains("unknown unit `x`")
        );
        assert!(Duration::parse("-1s").unwrap_err().contains("negative"));
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "90s");
        assert_eq!(Duration::parse("2m").unwrap().to_string(), "2m");
        assert_eq!(Duration::parse("1.5s").unwrap().to_string(), "1500ms");
    }
}
