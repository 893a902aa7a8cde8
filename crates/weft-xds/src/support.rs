//! Finding the fields of a document that its consumer does not implement.
//!
//! The proxy implements a subset of Envoy's API. Rather than silently ignoring the rest, it
//! declares what it implements as a [`Support`] table, and the loader walks the decoded message
//! (through `Any`s too) reporting every set field outside that table with its path.

use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MapKey, ReflectMessage, Value};
use std::collections::HashMap;

/// Which fields of which messages a consumer implements, by full message name.
///
/// - A listed message with `&["*"]` is implemented whole.
/// - A listed message with field names: set fields outside the list are reported.
/// - An unlisted message met through a supported field is reported whole (so a forgotten
///   entry errs on the side of telling the user).
/// - `google.protobuf.*` value types are leaves and always fine; `Any` is looked through.
#[derive(Debug, Clone, Copy)]
pub struct Support(pub &'static [(&'static str, &'static [&'static str])]);

/// One field weft ignores, with where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// Path from the document root, `static_resources.clusters[0].circuit_breakers`.
    pub path: String,
    /// The field's message type (or the `Any`'s type), to help read the report.
    pub type_name: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.path, self.type_name)
    }
}

const ANY: &str = "google.protobuf.Any";

pub(crate) fn find_unsupported(
    pool: &DescriptorPool,
    support: &Support,
    root: &DynamicMessage,
) -> Vec<Unsupported> {
    let table: HashMap<&str, &[&str]> = support.0.iter().copied().collect();
    let mut walker = Walker {
        pool,
        table,
        out: Vec::new(),
    };
    walker.message(root, String::new());
    walker.out
}

struct Walker<'a> {
    pool: &'a DescriptorPool,
    table: HashMap<&'a str, &'a [&'a str]>,
    out: Vec<Unsupported>,
}

impl Walker<'_> {
    fn report(&mut self, path: String, type_name: &str) {
        self.out.push(Unsupported {
            path,
            type_name: type_name.to_owned(),
        });
    }

    fn message(&mut self, msg: &DynamicMessage, path: String) {
        let desc = msg.descriptor();
        let name = desc.full_name();
        if name == ANY {
            return self.any(msg, path);
        }
        if name.starts_with("google.protobuf.") {
            return;
        }
        let Some(fields) = self.table.get(name).copied() else {
            return self.report(path, name);
        };
        if fields == ["*"] {
            return;
        }
        for (field, value) in msg.fields() {
            let field_path = join(&path, field.name());
            if !fields.contains(&field.name()) {
                let type_name = match field.kind() {
                    Kind::Message(m) => m.full_name().to_owned(),
                    other => format!("{other:?}").to_lowercase(),
                };
                self.report(field_path, &type_name);
                continue;
            }
            self.value(value, field_path);
        }
    }

    fn value(&mut self, value: &Value, path: String) {
        match value {
            Value::Message(m) => self.message(m, path),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(item, format!("{path}[{i}]"));
                }
            }
            Value::Map(entries) => {
                for (key, item) in entries {
                    let key = match key {
                        MapKey::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    self.value(item, format!("{path}[{key:?}]"));
                }
            }
            _ => {}
        }
    }

    fn any(&mut self, msg: &DynamicMessage, path: String) {
        let type_url = msg
            .get_field_by_name("type_url")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let type_name = crate::type_url::message_name(&type_url).to_owned();
        if !self.table.contains_key(type_name.as_str()) {
            return self.report(path, &type_name);
        }
        let bytes = msg
            .get_field_by_name("value")
            .and_then(|v| v.as_bytes().cloned())
            .unwrap_or_default();
        let inner = self
            .pool
            .get_message_by_name(&type_name)
            .and_then(|desc| DynamicMessage::decode(desc, bytes).ok());
        match inner {
            Some(inner) => self.message(&inner, path),
            None => self.report(path, &type_name),
        }
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}
