//! weft's configuration model: the Istio and Gateway API resources users write, read from
//! YAML or JSON with the position of every field, validated with Istio's rules, and
//! analysed across resources like `istioctl analyze`.
//!
//! ```
//! let out = weft_model::load_str("vs.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: [reviews], http: [{route: [{destination: {host: reviews}}]}]}\n");
//! assert_eq!(out.resources.len(), 1);
//! ```

pub mod analyze;
pub mod common;
pub mod diag;
pub mod gateway_api;
pub mod istio;
pub mod kube;
pub mod path;
pub mod resource;
pub mod source;
pub mod validate;

pub use diag::{Diagnostic, Pos, Severity};
pub use resource::{Decoded, KindInfo, Resource, Spec, kinds};

use std::path::{Path, PathBuf};

/// Everything read from a set of files: the valid resources and every finding.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Resources without errors, in file order.
    pub resources: Vec<Resource>,
    pub diagnostics: Vec<Diagnostic>,
    /// Number of documents read (including rejected and skipped ones).
    pub documents: usize,
}

impl LoadOutcome {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    fn extend(&mut self, other: LoadOutcome) {
        self.resources.extend(other.resources);
        self.diagnostics.extend(other.diagnostics);
        self.documents += other.documents;
    }
}

/// Reads every document of one file's text.
pub fn load_str(file: &str, text: &str) -> LoadOutcome {
    let (docs, mut diagnostics) = source::parse_documents(file, text);
    let mut out = LoadOutcome::default();
    for doc in expand_lists(docs) {
        out.documents += 1;
        if let Decoded::Resource(r) = resource::decode(&doc, &mut diagnostics)
            && !doc.has_errors
        {
            out.resources.push(*r);
        }
    }
    out.diagnostics = diagnostics;
    out
}

/// `kind: List` documents (as `kubectl get -o yaml` writes them) become their items.
fn expand_lists(docs: Vec<source::Document>) -> Vec<source::Document> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let is_list = doc
            .value
            .get("kind")
            .and_then(|k| k.as_str())
            .is_some_and(|k| k == "List" || k.ends_with("List"))
            && doc.value.get("items").is_some_and(|i| i.is_array());
        if !is_list {
            out.push(doc);
            continue;
        }
        let items = doc.value["items"].as_array().cloned().unwrap_or_default();
        for (i, item) in items.into_iter().enumerate() {
            let prefix = path::FieldPath::parse(&format!("items[{i}]"));
            out.push(source::Document {
                file: doc.file.clone(),
                index: doc.index,
                pos: doc.pos_of(&prefix),
                value: item,
                positions: std::sync::Arc::new(doc.positions.rebase(&prefix)),
                has_errors: doc.has_errors,
            });
        }
    }
    out
}

/// Files to read under `path`: the file itself, or every `.yaml`, `.yml` and `.json`
/// below a directory, sorted so results are stable.
pub fn collect_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            out.extend(collect_files(&p)?);
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Reads files and directories. A path that cannot be read is an error diagnostic.
pub fn load_paths(paths: &[PathBuf]) -> LoadOutcome {
    let mut out = LoadOutcome::default();
    for p in paths {
        let files = match collect_files(p) {
            Ok(f) => f,
            Err(e) => {
                out.diagnostics.push(
                    Diagnostic::error(format!("cannot read {}: {e}", p.display()))
                        .with_file(p.display().to_string()),
                );
                continue;
            }
        };
        for f in files {
            let name = f.display().to_string();
            match std::fs::read_to_string(&f) {
                Ok(text) => out.extend(load_str(&name, &text)),
                Err(e) => out
                    .diagnostics
                    .push(Diagnostic::error(format!("cannot read file: {e}")).with_file(name)),
            }
        }
    }
    out
}
