//! Reading YAML and JSON into documents that remember where each field was written.
//!
//! We parse with an event parser rather than deserializing straight into types so that
//! every field path (`spec.http[0].route[1].weight`) maps back to a file position, for
//! serde's errors and for our own validation and analysis findings alike.

use crate::diag::{Diagnostic, Pos};
use crate::path::FieldPath;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Positions of every field and list item of one document, keyed by rendered field path.
#[derive(Debug, Default, Clone)]
pub struct PositionIndex {
    map: HashMap<String, Pos>,
}

impl PositionIndex {
    /// Position of `path`, or of its nearest ancestor that was written in the source
    /// (a missing required field points at the object that lacks it).
    pub fn lookup(&self, path: &FieldPath) -> Option<Pos> {
        let mut p = path.clone();
        loop {
            if let Some(pos) = self.map.get(&p.to_string()) {
                return Some(*pos);
            }
            if p.is_empty() {
                return None;
            }
            p.pop();
        }
    }

    /// Position of exactly `path`, if it was written.
    pub fn exact(&self, path: &str) -> Option<Pos> {
        self.map.get(path).copied()
    }

    fn insert(&mut self, path: &FieldPath, pos: Pos) {
        self.map.entry(path.to_string()).or_insert(pos);
    }
}

/// One YAML/JSON document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file as the user named it (or `<stdin>`).
    pub file: Arc<str>,
    /// 0-based index of the document within its file.
    pub index: usize,
    /// Where the document starts.
    pub pos: Pos,
    pub value: Value,
    pub positions: Arc<PositionIndex>,
    /// The parser already reported an error in this document (e.g. a duplicate key): it
    /// may be checked further but must never be used.
    pub has_errors: bool,
}

impl Document {
    /// Position of a field, falling back to its nearest written ancestor, then the document.
    pub fn pos_of(&self, path: &FieldPath) -> Pos {
        self.positions.lookup(path).unwrap_or(self.pos)
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema (what `kubectl` users expect for
/// `true`, `null`, numbers), everything else is a string.
fn plain_scalar(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = s.parse::<u64>() {
            return Value::Number(u.into());
        }
    }
    if let Some(hex) = s.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Number(i.into());
    }
    if let Some(oct) = s.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Value::Number(i.into());
    }
    let looks_float = digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if looks_float
        && let Ok(f) = s.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(s.to_string())
}

const MAX_DEPTH: usize = 256;

struct ParseError(Box<Diagnostic>);

impl ParseError {
    fn new(d: Diagnostic) -> Self {
        ParseError(Box::new(d))
    }
}

struct Builder<'i, 'f> {
    parser: Parser<'i, saphyr_parser::StrInput<'i>>,
    file: &'f str,
    positions: PositionIndex,
    anchors: HashMap<usize, Value>,
    path: FieldPath,
    diags: Vec<Diagnostic>,
}

impl<'i> Builder<'i, '_> {
    fn next(&mut self) -> Result<Option<(Event<'i>, Span)>, ParseError> {
        match self.parser.next_event() {
            None => Ok(None),
            Some(Ok(e)) => Ok(Some(e)),
            Some(Err(e)) => {
                let m = e.marker();
                Err(ParseError::new(
                    Diagnostic::error(format!("YAML syntax error: {}", e.info()))
                        .with_file(self.file)
                        .with_pos(Some(Pos {
                            line: m.line(),
                            column: m.col() + 1,
                        })),
                ))
            }
        }
    }

    fn expect_next(&mut self) -> Result<(Event<'i>, Span), ParseError> {
        self.next()?.ok_or_else(|| {
            ParseError::new(
                Diagnostic::error("YAML ends in the middle of a value").with_file(self.file),
            )
        })
    }

    /// Builds the node that starts with `ev`, recording the position of every child.
    fn node(&mut self, ev: Event<'i>, span: Span, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(ParseError::new(
                Diagnostic::error(format!("document is nested deeper than {MAX_DEPTH} levels"))
                    .with_file(self.file)
                    .with_pos(Some(pos_of(&span))),
            ));
        }
        let (value, anchor) = match ev {
            Event::Alias(id) => (self.anchors.get(&id).cloned().unwrap_or(Value::Null), 0),
            Event::Scalar(s, style, anchor, tag) => {
                let v = match (style, tag.as_deref()) {
                    (_, Some(t)) if t.suffix == "str" => Value::String(s.to_string()),
                    (ScalarStyle::Plain, _) => plain_scalar(&s),
                    (_, Some(t)) if t.is_yaml_core_schema() => plain_scalar(&s),
                    _ => Value::String(s.to_string()),
                };
                (v, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.expect_next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    self.path.push_index(items.len());
                    self.positions.insert(&self.path, pos_of(&span));
                    let v = self.node(ev, span, depth + 1)?;
                    self.path.pop();
                    items.push(v);
                }
                (Value::Array(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                let mut map = Map::new();
                loop {
                    let (ev, kspan) = self.expect_next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let kpos = pos_of(&kspan);
                    let key = match self.node(ev, kspan, depth + 1)? {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => "null".to_string(),
                        _ => {
                            return Err(ParseError::new(
                                Diagnostic::error(
                                    "a mapping key must be a plain value, not a list or mapping",
                                )
                                .with_file(self.file)
                                .with_pos(Some(kpos)),
                            ));
                        }
                    };
                    self.path.push_field(key.clone());
                    if map.contains_key(&key) {
                        self.diags.push(
                            Diagnostic::error(format!(
                                "duplicate key `{key}`: each field may be written only once"
                            ))
                            .with_file(self.file)
                            .with_pos(Some(kpos))
                            .with_field(self.path.to_string()),
                        );
                    }
                    self.positions.insert(&self.path, kpos);
                    let (ev, vspan) = self.expect_next()?;
                    let v = self.node(ev, vspan, depth + 1)?;
                    self.path.pop();
                    map.insert(key, v);
                }
                (Value::Object(map), anchor)
            }
            other => {
                return Err(ParseError::new(
                    Diagnostic::error(format!("unexpected YAML event {other:?}"))
                        .with_file(self.file)
                        .with_pos(Some(pos_of(&span))),
                ));
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }
}

/// Parses every document of `text`. `file` is only used in messages.
///
/// A syntax error ends the file (YAML cannot be resynchronised reliably): the documents
/// before it are returned along with the error.
pub fn parse_documents(file: &str, text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    let file_arc: Arc<str> = Arc::from(file);
    let mut docs = Vec::new();
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        file,
        positions: PositionIndex::default(),
        anchors: HashMap::new(),
        path: FieldPath::root(),
        diags: Vec::new(),
    };
    let mut index = 0usize;
    let result: Result<(), ParseError> = (|| {
        while let Some((ev, span)) = b.next()? {
            match ev {
                Event::DocumentStart(_) => {
                    let doc_pos = pos_of(&span);
                    b.positions = PositionIndex::default();
                    b.anchors.clear();
                    let errors_before = b.diags.len();
                    let mut value = Value::Null;
                    loop {
                        let (ev, span) = b.expect_next()?;
                        if matches!(ev, Event::DocumentEnd) {
                            break;
                        }
                        let start = pos_of(&span);
                        value = b.node(ev, span, 0)?;
                        b.positions.insert(&FieldPath::root(), start);
                    }
                    if !value.is_null() {
                        let pos = b.positions.exact("").unwrap_or(doc_pos);
                        docs.push(Document {
                            file: file_arc.clone(),
                            index,
                            pos,
                            value,
                            positions: Arc::new(std::mem::take(&mut b.positions)),
                            has_errors: b.diags.len() > errors_before,
                        });
                    }
                    index += 1;
                }
                Event::StreamEnd => break,
                _ => {}
            }
        }
        Ok(())
    })();
    let mut diags = b.diags;
    if let Err(ParseError(d)) = result {
        diags.push(*d);
    }
    (docs, diags)
}

impl PositionIndex {
    /// The positions below `prefix`, re-rooted at it (for the items of a `List`).
    pub fn rebase(&self, prefix: &FieldPath) -> PositionIndex {
        let p = prefix.to_string();
        let mut map = HashMap::new();
        for (k, v) in &self.map {
            if k == &p {
                map.insert(String::new(), *v);
            } else if let Some(rest) = k.strip_prefix(&p)
                && (rest.starts_with('.') || rest.starts_with('['))
            {
                map.insert(rest.trim_start_matches('.').to_string(), *v);
            }
        }
        PositionIndex { map }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_point_at_keys_and_items() {
        let text = "apiVersion: v1\nkind: X\nspec:\n  http:\n  - route:\n    - weight: 5\n    - weight: 7\n---\nkind: Y\n";
        let (docs, diags) = parse_documents("f.yaml", text);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(docs.len(), 2);
        let p = &docs[0].positions;
        assert_eq!(
            p.exact("spec.http[0].route[1].weight"),
            Some(Pos { line: 7, column: 7 })
        );
        assert_eq!(p.exact("spec.http[0]"), Some(Pos { line: 5, column: 5 }));
        assert_eq!(docs[0].value["spec"]["http"][0]["route"][1]["weight"], 7);
        // A missing field falls back to its nearest ancestor.
        let missing = FieldPath::parse("spec.http[0].route[1].destination.host");
        assert_eq!(p.lookup(&missing), Some(Pos { line: 7, column: 7 }));
        assert_eq!(docs[1].index, 1);
        assert_eq!(docs[1].pos.line, 9);
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let (docs, _) = parse_documents(
            "f",
            "a: 1\nb: \"1\"\nc: true\nd: ~\ne: 1.5\nf: 1.5s\ng: '*'\nh: 0x10\ni: -3\n",
        );
        let v = &docs[0].value;
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"], "1");
        assert_eq!(v["c"], true);
        assert!(v["d"].is_null());
        assert_eq!(v["e"], 1.5);
        assert_eq!(v["f"], "1.5s");
        assert_eq!(v["g"], "*");
        assert_eq!(v["h"], 16);
        assert_eq!(v["i"], -3);
    }

    #[test]
    fn json_and_anchors_and_duplicates() {
        let (docs, diags) = parse_documents("f.json", "{\"a\": [1, {\"b\": \"x\"}]}");
        assert!(diags.is_empty());
        assert_eq!(docs[0].value["a"][1]["b"], "x");
        let (docs, _) = parse_documents("f", "a: &x {k: v}\nb: *x\n");
        assert_eq!(docs[0].value["b"]["k"], "v");
        let (_, diags) = parse_documents("f", "a: 1\nb: 2\na: 3\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].line, Some(3));
        assert!(diags[0].message.contains("duplicate key `a`"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let (_, diags) = parse_documents("bad.yaml", "a: b\n  c: d\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].file.as_deref(), Some("bad.yaml"));
        assert!(diags[0].line.is_some());
    }
}
