//! Field paths such as `spec.http[0].route[1].weight`, rendered one way everywhere so that
//! validation errors, serde errors and source positions agree.

use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Field(String),
    Index(usize),
}

/// A path from a document's root to a field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<Seg>);

fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '@' || c == ':')
}

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    pub fn push_field(&mut self, name: impl Into<String>) {
        self.0.push(Seg::Field(name.into()));
    }

    pub fn push_index(&mut self, i: usize) {
        self.0.push(Seg::Index(i));
    }

    pub fn pop(&mut self) {
        self.0.pop();
    }

    pub fn child(&self, name: &str) -> FieldPath {
        let mut p = self.clone();
        p.push_field(name);
        p
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the rendered form back (used for paths written by hand in code and tests).
    pub fn parse(s: &str) -> FieldPath {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                rest = r;
                continue;
            }
            if let Some(r) = rest.strip_prefix("[\"") {
                let end = r.find("\"]").unwrap_or(r.len());
                out.push(Seg::Field(r[..end].to_string()));
                rest = r.get(end + 2..).unwrap_or("");
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').unwrap_or(r.len());
                match r[..end].parse() {
                    Ok(i) => out.push(Seg::Index(i)),
                    Err(_) => out.push(Seg::Field(r[..end].to_string())),
                }
                rest = r.get(end + 1..).unwrap_or("");
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                out.push(Seg::Field(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        FieldPath(out)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Field(k) if is_plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Field(k) => write!(f, "[\"{k}\"]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_round_trip() {
        for s in [
            "spec.http[0].route[1].weight",
            "metadata.labels[\"app.kubernetes.io/name\"]",
            "spec.http[0].match[0].headers.end-user.exact",
            "spec",
        ] {
            assert_eq!(FieldPath::parse(s).to_string(), s);
        }
    }
}
