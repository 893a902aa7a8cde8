//! String, header and query-parameter matchers with Envoy's semantics.

use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::config::route::v3::{
    HeaderMatcher as PbHeaderMatcher, QueryParameterMatcher as PbQueryMatcher,
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatcher, StringMatcher as PbStringMatcher, string_matcher::MatchPattern,
};
use regex::Regex;

/// Compiles an Envoy `safe_regex` (RE2 syntax) that must match the whole input.
pub fn full_regex(m: &RegexMatcher) -> Result<Regex, ConfigError> {
    Regex::new(&format!("^(?:{})$", m.regex))
        .map_err(|e| ConfigError::new(format!("invalid regex {:?}: {e}", m.regex)).at("regex"))
}

/// Compiles a regex that may match anywhere (for rewrites and substitutions).
pub fn search_regex(m: &RegexMatcher) -> Result<Regex, ConfigError> {
    Regex::new(&m.regex)
        .map_err(|e| ConfigError::new(format!("invalid regex {:?}: {e}", m.regex)).at("regex"))
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
}

/// Envoy's `StringMatcher`. With `ignore_case` the pattern is lowered once at load and the
/// input is compared ASCII-case-insensitively (regexes ignore `ignore_case`, as in Envoy).
#[derive(Debug, Clone)]
pub struct StringMatcher {
    pattern: Pattern,
    ignore_case: bool,
}

impl StringMatcher {
    /// A case-sensitive exact matcher.
    pub fn exact(s: impl Into<String>) -> StringMatcher {
        StringMatcher {
            pattern: Pattern::Exact(s.into()),
            ignore_case: false,
        }
    }

    /// Whether `input` matches.
    pub fn matches(&self, input: &str) -> bool {
        let eq = |a: &str, b: &str| {
            if self.ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match &self.pattern {
            Pattern::Exact(p) => eq(input, p),
            Pattern::Prefix(p) => {
                input.len() >= p.len()
                    && input.is_char_boundary(p.len())
                    && eq(&input[..p.len()], p)
            }
            Pattern::Suffix(p) => {
                let at = input.len().wrapping_sub(p.len());
                input.len() >= p.len() && input.is_char_boundary(at) && eq(&input[at..], p)
            }
            Pattern::Contains(p) if self.ignore_case => {
                input.to_ascii_lowercase().contains(p.as_str())
            }
            Pattern::Contains(p) => input.contains(p.as_str()),
            Pattern::Regex(r) => r.is_match(input),
        }
    }
}

impl TryFrom<&PbStringMatcher> for StringMatcher {
    type Error = ConfigError;

    fn try_from(m: &PbStringMatcher) -> Result<Self, ConfigError> {
        let lower = |s: &String| {
            if m.ignore_case {
                s.to_ascii_lowercase()
            } else {
                s.clone()
            }
        };
        let pattern = match &m.match_pattern {
            Some(MatchPattern::Exact(s)) => Pattern::Exact(lower(s)),
            Some(MatchPattern::Prefix(s)) => Pattern::Prefix(lower(s)),
            Some(MatchPattern::Suffix(s)) => Pattern::Suffix(lower(s)),
            Some(MatchPattern::Contains(s)) => Pattern::Contains(lower(s)),
            Some(MatchPattern::SafeRegex(r)) => Pattern::Regex(full_regex(r).at("safe_regex")?),
            Some(MatchPattern::Custom(_)) => {
                return Err(
                    ConfigError::new("custom string matchers are not supported").at("custom")
                );
            }
            None => return Err(ConfigError::new("a match pattern is required")),
        };
        Ok(StringMatcher {
            pattern,
            ignore_case: m.ignore_case,
        })
    }
}

#[derive(Debug, Clone)]
enum HeaderMatch {
    Value(StringMatcher),
    Present(bool),
    Range { start: i64, end: i64 },
}

/// Envoy's route `HeaderMatcher`. Names are lowercase; `:authority`, `:method`, `:path` and
/// `:scheme` address the pseudo-headers. Several values of one header are joined with `,`.
#[derive(Debug, Clone)]
pub struct HeaderMatcher {
    /// Lowercase header name (possibly a `:pseudo` name).
    pub name: String,
    spec: HeaderMatch,
    invert: bool,
    treat_missing_as_empty: bool,
}

impl HeaderMatcher {
    /// Evaluates against the header's value (`None` when absent), already joined.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let hit = match (&self.spec, value) {
            (HeaderMatch::Present(want), v) => v.is_some() == *want,
            // Envoy: an absent header fails every value match, inverted or not.
            (_, None) if !self.treat_missing_as_empty => return false,
            (HeaderMatch::Value(m), v) => m.matches(v.unwrap_or("")),
            (HeaderMatch::Range { start, end }, v) => v
                .unwrap_or("")
                .parse::<i64>()
                .is_ok_and(|v| *start <= v && v < *end),
        };
        hit != self.invert
    }
}

impl TryFrom<&PbHeaderMatcher> for HeaderMatcher {
    type Error = ConfigError;

    fn try_from(m: &PbHeaderMatcher) -> Result<Self, ConfigError> {
        if m.name.is_empty() {
            return Err(ConfigError::new("header name is required").at("name"));
        }
        let exact = |s: &String| HeaderMatch::Value(StringMatcher::exact(s.clone()));
        let spec = match &m.header_match_specifier {
            None => HeaderMatch::Present(true),
            Some(HeaderMatchSpecifier::PresentMatch(p)) => HeaderMatch::Present(*p),
            Some(HeaderMatchSpecifier::ExactMatch(s)) => exact(s),
            Some(HeaderMatchSpecifier::PrefixMatch(s)) => HeaderMatch::Value(StringMatcher {
                pattern: Pattern::Prefix(s.clone()),
                ignore_case: false,
            }),
            Some(HeaderMatchSpecifier::SuffixMatch(s)) => HeaderMatch::Value(StringMatcher {
                pattern: Pattern::Suffix(s.clone()),
                ignore_case: false,
            }),
            Some(HeaderMatchSpecifier::ContainsMatch(s)) => HeaderMatch::Value(StringMatcher {
                pattern: Pattern::Contains(s.clone()),
                ignore_case: false,
            }),
            Some(HeaderMatchSpecifier::SafeRegexMatch(r)) => HeaderMatch::Value(StringMatcher {
                pattern: Pattern::Regex(full_regex(r).at("safe_regex_match")?),
                ignore_case: false,
            }),
            Some(HeaderMatchSpecifier::RangeMatch(r)) => {
                if r.start >= r.end {
                    return Err(ConfigError::new("range start must be below end").at("range_match"));
                }
                HeaderMatch::Range {
                    start: r.start,
                    end: r.end,
                }
            }
            Some(HeaderMatchSpecifier::StringMatch(s)) => {
                HeaderMatch::Value(StringMatcher::try_from(s).at("string_match")?)
            }
        };
        Ok(HeaderMatcher {
            name: m.name.to_ascii_lowercase(),
            spec,
            invert: m.invert_match,
            treat_missing_as_empty: m.treat_missing_header_as_empty,
        })
    }
}

/// Envoy's `QueryParameterMatcher`: a value matcher or presence (the default).
#[derive(Debug, Clone)]
pub struct QueryParamMatcher {
    pub name: String,
    value: Option<StringMatcher>,
    present: bool,
}

impl QueryParamMatcher {
    /// Evaluates against the parameter's first value (percent-decoded), `None` when absent.
    pub fn matches(&self, value: Option<&str>) -> bool {
        match (&self.value, value) {
            (Some(m), Some(v)) => m.matches(v),
            (Some(_), None) => false,
            (None, v) => v.is_some() == self.present,
        }
    }
}

impl TryFrom<&PbQueryMatcher> for QueryParamMatcher {
    type Error = ConfigError;

    fn try_from(m: &PbQueryMatcher) -> Result<Self, ConfigError> {
        if m.name.is_empty() {
            return Err(ConfigError::new("query parameter name is required").at("name"));
        }
        let (value, present) = match &m.query_parameter_match_specifier {
            Some(QueryParameterMatchSpecifier::StringMatch(s)) => {
                (Some(StringMatcher::try_from(s).at("string_match")?), true)
            }
            Some(QueryParameterMatchSpecifier::PresentMatch(p)) => (None, *p),
            None => (None, true),
        };
        Ok(QueryParamMatcher {
            name: m.name.clone(),
            value,
            present,
        })
    }
}

/// The first value of `name` in a raw query string, percent-decoded (`+` stays `+`, as Envoy).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::r#type::v3::Int64Range;

    fn sm(pattern: MatchPattern, ignore_case: bool) -> StringMatcher {
        StringMatcher::try_from(&PbStringMatcher {
            ignore_case,
            match_pattern: Some(pattern),
        })
        .expect("valid")
    }

    fn regex(r: &str) -> RegexMatcher {
        RegexMatcher {
            regex: r.into(),
            engine_type: None,
        }
    }

    #[test]
    fn string_matchers() {
        let cases = [
            (sm(MatchPattern::Exact("abc".into()), false), "abc", true),
            (sm(MatchPattern::Exact("abc".into()), false), "ABC", false),
            (sm(MatchPattern::Exact("abc".into()), true), "ABC", true),
            (sm(MatchPattern::Prefix("ab".into()), false), "abc", true),
            (sm(MatchPattern::Prefix("AB".into()), true), "abc", true),
            (sm(MatchPattern::Prefix("abcd".into()), false), "abc", false),
            (sm(MatchPattern::Suffix("bc".into()), false), "abc", true),
            (sm(MatchPattern::Suffix("BC".into()), true), "abc", true),
            (sm(MatchPattern::Contains("b".into()), false), "abc", true),
            (sm(MatchPattern::Contains("B".into()), true), "abc", true),
            (sm(MatchPattern::Contains("B".into()), false), "abc", false),
            (
                sm(MatchPattern::SafeRegex(regex("a.c")), false),
                "abc",
                true,
            ),
            (
                sm(MatchPattern::SafeRegex(regex("a.c")), false),
                "xabcx",
                false,
            ),
        ];
        for (i, (m, input, want)) in cases.iter().enumerate() {
            assert_eq!(m.matches(input), *want, "case {i}: {m:?} vs {input}");
        }
    }

    fn hm(spec: HeaderMatchSpecifier, invert: bool) -> HeaderMatcher {
        HeaderMatcher::try_from(&PbHeaderMatcher {
            name: "X-Test".into(),
            invert_match: invert,
            header_match_specifier: Some(spec),
            ..Default::default()
        })
        .expect("valid")
    }

    #[test]
    fn header_matchers() {
        use HeaderMatchSpecifier as S;
        let range = S::RangeMatch(Int64Range { start: 10, end: 20 });
        let cases = [
            (hm(S::ExactMatch("v".into()), false), Some("v"), true),
            (hm(S::ExactMatch("v".into()), true), Some("v"), false),
            (hm(S::ExactMatch("v".into()), true), Some("w"), true),
            // Absent headers fail value matches even inverted.
            (hm(S::ExactMatch("v".into()), true), None, false),
            (hm(S::PresentMatch(true), false), Some(""), true),
            (hm(S::PresentMatch(true), false), None, false),
            (hm(S::PresentMatch(false), false), None, true),
            (hm(S::PresentMatch(true), true), None, true),
            (hm(range.clone(), false), Some("10"), true),
            (hm(range.clone(), false), Some("20"), false),
            (hm(range.clone(), false), Some("x"), false),
            (hm(range, true), Some("25"), true),
            (hm(S::PrefixMatch("ab".into()), false), Some("abc"), true),
            (hm(S::SuffixMatch("bc".into()), false), Some("abc"), true),
            (hm(S::ContainsMatch("b".into()), false), Some("abc"), true),
            (
                hm(S::SafeRegexMatch(regex("[0-9]+")), false),
                Some("123"),
                true,
            ),
            (
                hm(S::SafeRegexMatch(regex("[0-9]+")), false),
                Some("12a"),
                false,
            ),
        ];
        for (i, (m, input, want)) in cases.iter().enumerate() {
            assert_eq!(m.matches(*input), *want, "case {i}: {m:?} vs {input:?}");
        }
        assert_eq!(cases[0].0.name, "x-test");
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param("a=1&b=2", "b").as_deref(), Some("2"));
        assert_eq!(query_param("a=1&b", "b").as_deref(), Some(""));
        assert_eq!(query_param("a=%41%2f", "a").as_deref(), Some("A/"));
        assert_eq!(query_param("a=1", "c"), None);
        assert_eq!(query_param("a=%4", "a").as_deref(), Some("%4"));
    }
}
