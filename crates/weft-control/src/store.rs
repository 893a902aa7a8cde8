//! The local config store: every YAML/JSON file of a directory, watched, plus `apply` and
//! `delete` from the REST API, which edit the same files so a restart loses nothing.
//!
//! A file with an invalid resource is rejected as a whole, with `weft validate`'s
//! messages, and the last good version of that file keeps serving. When several files
//! define one resource, the later file (in path order) wins, as with `kubectl apply -f DIR`.

use crate::ControlError;
use crate::hub::Hub;
use crate::snapshot::{ResourceKey, key_of};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use weft_model::{Diagnostic, Resource, Severity};

/// What the store knows about one file.
#[derive(Debug, Clone, Default)]
struct FileState {
    text: String,
    /// The resources of the last version of the file that had no errors.
    resources: Vec<Resource>,
    /// Errors of the current text (empty when it is the one serving).
    errors: Vec<String>,
}

/// The outcome of applying one resource.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// `VirtualService default/reviews`.
    pub resource: String,
    /// `created`, `configured` or `unchanged`, as kubectl says.
    pub action: &'static str,
}

/// The state of one file that is not serving its current text (for `/debug/configz`).
#[derive(Debug, Clone, Serialize)]
pub struct RejectedFile {
    pub file: String,
    pub errors: Vec<String>,
}

/// The config directory and what it holds.
pub struct ConfigStore {
    dir: PathBuf,
    files: Mutex<BTreeMap<PathBuf, FileState>>,
    hub: Arc<Hub>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Renders findings as `weft validate` does, errors and warnings only.
fn render(diags: &[Diagnostic]) -> Vec<String> {
    diags
        .iter()
        .filter(|d| d.severity > Severity::Info)
        .map(ToString::to_string)
        .collect()
}

impl ConfigStore {
    /// Opens (creating it if needed) and loads `dir`, publishing its resources to `hub`.
    pub fn open(dir: &Path, hub: Arc<Hub>) -> Result<Arc<ConfigStore>, ControlError> {
        std::fs::create_dir_all(dir).map_err(|e| ControlError::io(dir, e))?;
        let store = Arc::new(ConfigStore {
            dir: dir.to_path_buf(),
            files: Mutex::new(BTreeMap::new()),
            hub,
        });
        store.reload()?;
        Ok(store)
    }

    /// The directory served.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-reads changed files and publishes the result when anything changed.
    pub fn reload(&self) -> Result<(), ControlError> {
        let paths =
            weft_model::collect_files(&self.dir).map_err(|e| ControlError::io(&self.dir, e))?;
        let mut files = lock(&self.files);
        let mut changed = false;
        let before = files.len();
        files.retain(|p, _| paths.contains(p));
        changed |= files.len() != before;
        for path in paths {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue; // removed between listing and reading: the next event settles it
            };
            let state = files.entry(path.clone()).or_default();
            if state.text == text
                && (!state.resources.is_empty()
                    || !state.errors.is_empty()
                    || text.trim().is_empty())
            {
                continue;
            }
            state.text = text;
            let out = weft_model::load_str(&path.display().to_string(), &state.text);
            if out.has_errors() {
                state.errors = render(&out.diagnostics);
                for e in &state.errors {
                    tracing::warn!(file = %path.display(), "rejected, last good version keeps serving: {e}");
                }
            } else {
                state.errors.clear();
                state.resources = out.resources;
                changed = true;
            }
        }
        if changed {
            let resources = files
                .values()
                .flat_map(|f| f.resources.iter().cloned())
                .collect();
            drop(files);
            self.hub.set_config(resources);
        }
        Ok(())
    }

    /// Files whose current text is rejected, with why.
    pub fn rejected(&self) -> Vec<RejectedFile> {
        lock(&self.files)
            .iter()
            .filter(|(_, f)| !f.errors.is_empty())
            .map(|(p, f)| RejectedFile {
                file: p.display().to_string(),
                errors: f.errors.clone(),
            })
            .collect()
    }

    /// Validates `text` (named `file` in messages) and, only when it has no error, writes
    /// each resource where it lives (or a new file), then reloads.
    pub fn apply(&self, file: &str, text: &str) -> Result<Vec<Applied>, ControlError> {
        let out = weft_model::load_str(file, text);
        if out.has_errors() {
            return Err(ControlError::Invalid(render(&out.diagnostics)));
        }
        let mut results = Vec::new();
        for r in &out.resources {
            let key = key_of(r);
            let yaml = to_yaml(&r.raw)?;
            let existing = self.definition(&key);
            let action = match existing {
                Some((path, index, old)) => {
                    if old.raw == r.raw {
                        "unchanged"
                    } else {
                        self.replace_document(&path, index, Some(&yaml))?;
                        "configured"
                    }
                }
                None => {
                    let name = format!(
                        "{}-{}-{}.yaml",
                        r.kind.kind.to_ascii_lowercase(),
                        if r.namespace().is_empty() {
                            "cluster"
                        } else {
                            r.namespace()
                        },
                        r.name()
                    );
                    let path = self.dir.join(name);
                    std::fs::write(&path, &yaml).map_err(|e| ControlError::io(&path, e))?;
                    "created"
                }
            };
            results.push(Applied {
                resource: r.display_name(),
                action,
            });
        }
        self.reload()?;
        Ok(results)
    }

    /// Deletes the resources `text` names (kind, namespace, name); returns
    /// `(deleted, not found)` display names.
    pub fn delete(
        &self,
        file: &str,
        text: &str,
    ) -> Result<(Vec<String>, Vec<String>), ControlError> {
        let out = weft_model::load_str(file, text);
        if out.has_errors() {
            return Err(ControlError::Invalid(render(&out.diagnostics)));
        }
        let (mut deleted, mut missing) = (Vec::new(), Vec::new());
        for r in &out.resources {
            let key = key_of(r);
            let mut found = false;
            // Every file defining it loses it, so an older definition cannot resurface.
            while let Some((path, index, _)) = self.definition(&key) {
                self.replace_document(&path, index, None)?;
                self.reload()?;
                found = true;
            }
            if found {
                deleted.push(r.display_name());
            } else {
                missing.push(r.display_name());
            }
        }
        self.reload()?;
        Ok((deleted, missing))
    }

    /// The serving resources of a kind (`KindInfo::lookup` names), optionally filtered.
    pub fn get(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<Resource>, ControlError> {
        let kinds = weft_model::KindInfo::lookup(kind);
        if kinds.is_empty() {
            return Err(ControlError::Invalid(vec![format!(
                "unknown kind `{kind}` (try virtualservices, destinationrules, gateways, serviceentries, workloadentries, sidecars)"
            )]));
        }
        let mut effective: BTreeMap<ResourceKey, Resource> = BTreeMap::new();
        for r in self.hub.config() {
            effective.insert(key_of(&r), r);
        }
        Ok(effective
            .into_values()
            .filter(|r| kinds.iter().any(|k| std::ptr::eq(*k, r.kind)))
            .filter(|r| namespace.is_none_or(|ns| r.namespace() == ns))
            .filter(|r| name.is_none_or(|n| r.name() == n))
            .collect())
    }

    /// The last file (path order) whose serving version defines `key`, with the
    /// document index and the resource.
    fn definition(&self, key: &ResourceKey) -> Option<(PathBuf, usize, Resource)> {
        lock(&self.files).iter().rev().find_map(|(p, f)| {
            f.resources
                .iter()
                .find(|r| key_of(r) == *key)
                .map(|r| (p.clone(), r.origin.index, r.clone()))
        })
    }

    /// Replaces (or with `None` removes) document `index` of a file, keeping the other
    /// documents and their comments; a file left without documents is removed.
    fn replace_document(
        &self,
        path: &Path,
        index: usize,
        yaml: Option<&str>,
    ) -> Result<(), ControlError> {
        let text = std::fs::read_to_string(path).map_err(|e| ControlError::io(path, e))?;
        let mut docs = split_documents(&text);
        let content: Vec<usize> = docs
            .iter()
            .enumerate()
            .filter(|(_, d)| has_content(d))
            .map(|(i, _)| i)
            .collect();
        match content.get(index) {
            Some(&i) => match yaml {
                Some(y) => docs[i] = y.to_owned(),
                None => {
                    docs.remove(i);
                }
            },
            // The file changed under us: append rather than lose the user's edit.
            None => {
                if let Some(y) = yaml {
                    docs.push(y.to_owned());
                }
            }
        }
        if !docs.iter().any(|d| has_content(d)) {
            return std::fs::remove_file(path).map_err(|e| ControlError::io(path, e));
        }
        let joined = docs
            .iter()
            .map(|d| d.trim_end_matches('\n').to_owned())
            .collect::<Vec<_>>()
            .join("\n---\n")
            + "\n";
        std::fs::write(path, joined).map_err(|e| ControlError::io(path, e))
    }

    /// Watches the directory and reloads on change (debounced) until the task is dropped.
    pub async fn watch(self: Arc<ConfigStore>) -> Result<(), ControlError> {
        use notify::Watcher;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if ev.is_ok() {
                let _ = tx.send(());
            }
        })
        .map_err(|source| ControlError::Watch {
            path: self.dir.display().to_string(),
            source,
        })?;
        watcher
            .watch(&self.dir, notify::RecursiveMode::Recursive)
            .map_err(|source| ControlError::Watch {
                path: self.dir.display().to_string(),
                source,
            })?;
        while rx.recv().await.is_some() {
            // Editors write in several steps: let a burst settle before reading.
            tokio::time::sleep(Duration::from_millis(30)).await;
            while rx.try_recv().is_ok() {}
            if let Err(e) = self.reload() {
                tracing::warn!("reloading {}: {e}", self.dir.display());
            }
        }
        Ok(())
    }
}

/// YAML of a resource as written (its raw document).
pub fn to_yaml(raw: &serde_json::Value) -> Result<String, ControlError> {
    serde_saphyr::to_string(raw).map_err(|e| ControlError::Render {
        what: "YAML".to_owned(),
        message: e.to_string(),
    })
}

/// Splits YAML text at `---` document separators (kept out of the parts).
fn split_documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            docs.push(String::new());
            let rest = line.trim_start_matches("---").trim();
            if !rest.is_empty()
                && !rest.starts_with('#')
                && let Some(d) = docs.last_mut()
            {
                d.push_str(rest);
                d.push('\n');
            }
        } else if let Some(d) = docs.last_mut() {
            d.push_str(line);
            d.push('\n');
        }
    }
    docs
}

/// True when a document has something besides comments and blank lines.
fn has_content(doc: &str) -> bool {
    doc.lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with('#') && l != "...")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v1}}]}]}\n";
    const DR: &str = "# the subsets\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}]}\n";

    fn subset_of_reviews(store: &ConfigStore) -> Vec<String> {
        store
            .get("vs", None, Some("reviews"))
            .expect("get")
            .iter()
            .map(|r| r.raw["spec"]["http"][0]["route"][0]["destination"]["subset"].to_string())
            .collect()
    }

    #[test]
    fn invalid_file_keeps_the_last_good_version() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("bookinfo.yaml");
        std::fs::write(&path, format!("{DR}---\n{VS}")).expect("write");
        let store = ConfigStore::open(dir.path(), Hub::new(Vec::new())).expect("open");
        assert_eq!(subset_of_reviews(&store), ["\"v1\""]);
        std::fs::write(&path, VS.replace("subset: v1", "subset: v1, weight: -1")).expect("write");
        store.reload().expect("reload");
        assert_eq!(
            subset_of_reviews(&store),
            ["\"v1\""],
            "still the last good version"
        );
        let rejected = store.rejected();
        assert_eq!(rejected.len(), 1);
        assert!(
            rejected[0].errors[0].contains("bookinfo.yaml"),
            "{:?}",
            rejected
        );
    }

    #[test]
    fn apply_edits_the_document_where_it_lives_and_delete_removes_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("bookinfo.yaml");
        std::fs::write(&path, format!("{DR}---\n{VS}")).expect("write");
        let store = ConfigStore::open(dir.path(), Hub::new(Vec::new())).expect("open");
        let applied = store
            .apply("vs.yaml", &VS.replace("subset: v1", "subset: v2"))
            .expect("apply");
        assert_eq!(applied[0].action, "configured");
        assert_eq!(subset_of_reviews(&store), ["\"v2\""]);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.starts_with("# the subsets"),
            "comments of other documents survive: {text}"
        );
        assert_eq!(
            store
                .apply("vs.yaml", &VS.replace("subset: v1", "subset: v2"))
                .expect("again")[0]
                .action,
            "unchanged"
        );

        let err = store
            .apply("bad.yaml", &VS.replace("route:", "rout:"))
            .expect_err("invalid");
        assert!(err.to_string().contains("bad.yaml"), "{err}");
        assert_eq!(subset_of_reviews(&store), ["\"v2\""], "nothing changed");

        let (deleted, missing) = store.delete("vs.yaml", VS).expect("delete");
        assert_eq!((deleted.len(), missing.len()), (1, 0));
        assert!(subset_of_reviews(&store).is_empty());
        assert!(store.get("dr", None, None).expect("dr").len() == 1);

        let created = store.apply("vs.yaml", VS).expect("create");
        assert_eq!(created[0].action, "created");
        assert!(
            dir.path()
                .join("virtualservice-default-reviews.yaml")
                .exists()
        );
    }
}
