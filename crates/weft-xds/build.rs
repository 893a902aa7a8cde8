//! Turns envoy-types' pre-built `FileDescriptorSet` (`src/generated/types.bin`, the exact
//! descriptors its Rust types were generated from) into an indexed blob in `OUT_DIR`, so the
//! bootstrap loader can use the protobuf JSON mapping (typed `Any` included) without protoc.
//!
//! Why an index and not the whole set: decoding all ~700 files into a `DescriptorPool` costs
//! ~50 MB of heap, and the proxy must idle under 10 MB. The index lets the loader decode only
//! the files a document needs (the Bootstrap closure plus each `@type` it names).
//!
//! The envoy-types source directory is found, in order, from:
//! 1. `WEFT_ENVOY_TYPES_DIR` (an explicit override);
//! 2. `cargo metadata` for this workspace (the resolved envoy-types package);
//! 3. `$CARGO_HOME/registry/src/*/envoy-types-<version>` (offline fallback).

use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorSet};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The envoy-types release whose descriptors we embed; must match the workspace pin.
const ENVOY_TYPES_VERSION: &str = "0.7.7";
const DESCRIPTORS: &str = "src/generated/types.bin";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=WEFT_ENVOY_TYPES_DIR");
    let dir = find_envoy_types().unwrap_or_else(|why| {
        panic!("weft-xds: cannot locate envoy-types {ENVOY_TYPES_VERSION} sources: {why}")
    });
    let src = dir.join(DESCRIPTORS);
    println!("cargo:rerun-if-changed={}", src.display());
    let raw = std::fs::read(&src).unwrap_or_else(|e| panic!("weft-xds: {}: {e}", src.display()));
    let set = FileDescriptorSet::decode(raw.as_slice()).unwrap_or_else(|e| {
        panic!(
            "weft-xds: {} is not a FileDescriptorSet: {e}",
            src.display()
        )
    });
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR set by cargo"));
    let (blob, index) = build_index(set);
    std::fs::write(out.join("envoy_files.bin"), blob).expect("write envoy_files.bin");
    std::fs::write(out.join("envoy_index.rs"), index).expect("write envoy_index.rs");
}

/// Returns the concatenated encoded files (source info stripped) and Rust source for
/// `FILES: &[(offset, len, &[dep file index])]` and `MESSAGES: &[(full name, file index)]`
/// sorted by name. Files keep protoc's order, which is topological (deps first).
fn build_index(set: FileDescriptorSet) -> (Vec<u8>, String) {
    let by_name: HashMap<String, usize> = set
        .file
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().to_owned(), i))
        .collect();
    let mut blob = Vec::new();
    let mut files = String::from("pub(crate) static FILES: &[(u32, u32, &[u16])] = &[\n");
    let mut messages: Vec<(String, usize)> = Vec::new();
    for (i, mut file) in set.file.into_iter().enumerate() {
        file.source_code_info = None;
        let deps: Vec<String> = file
            .dependency
            .iter()
            .map(|d| {
                by_name
                    .get(d)
                    .unwrap_or_else(|| panic!("missing dep {d}"))
                    .to_string()
            })
            .collect();
        let package = file.package().to_owned();
        for m in &file.message_type {
            collect_messages(&package, m, i, &mut messages);
        }
        let bytes = file.encode_to_vec();
        writeln!(
            files,
            "    ({}, {}, &[{}]),",
            blob.len(),
            bytes.len(),
            deps.join(", ")
        )
        .expect("write to String");
        blob.extend_from_slice(&bytes);
    }
    files.push_str("];\n");
    messages.sort();
    let mut index = files;
    index.push_str("pub(crate) static MESSAGES: &[(&str, u16)] = &[\n");
    for (name, i) in messages {
        writeln!(index, "    ({name:?}, {i}),").expect("write to String");
    }
    index.push_str("];\n");
    (blob, index)
}

fn collect_messages(scope: &str, m: &DescriptorProto, file: usize, out: &mut Vec<(String, usize)>) {
    let name = format!("{scope}.{}", m.name());
    for nested in &m.nested_type {
        collect_messages(&name, nested, file, out);
    }
    out.push((name, file));
}

fn find_envoy_types() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("WEFT_ENVOY_TYPES_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let mut why = Vec::new();
    match from_cargo_metadata() {
        Ok(dir) => return Ok(dir),
        Err(e) => why.push(format!("cargo metadata: {e}")),
    }
    match from_cargo_home() {
        Ok(dir) => return Ok(dir),
        Err(e) => why.push(format!("CARGO_HOME scan: {e}")),
    }
    Err(why.join("; "))
}

fn from_cargo_metadata() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?;
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(&manifest_dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let packages = meta["packages"]
        .as_array()
        .ok_or("no packages in metadata")?;
    packages
        .iter()
        .filter(|p| p["name"] == "envoy-types" && p["version"] == ENVOY_TYPES_VERSION)
        .filter_map(|p| p["manifest_path"].as_str())
        .map(|m| {
            Path::new(m)
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf()
        })
        .find(|dir| dir.join(DESCRIPTORS).is_file())
        .ok_or_else(|| format!("envoy-types {ENVOY_TYPES_VERSION} not in metadata"))
}

fn from_cargo_home() -> Result<PathBuf, String> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME set")?;
    let registry = home.join("registry").join("src");
    let entries =
        std::fs::read_dir(&registry).map_err(|e| format!("{}: {e}", registry.display()))?;
    entries
        .flatten()
        .map(|e| e.path().join(format!("envoy-types-{ENVOY_TYPES_VERSION}")))
        .find(|dir| dir.join(DESCRIPTORS).is_file())
        .ok_or_else(|| {
            format!(
                "no envoy-types-{ENVOY_TYPES_VERSION} under {}",
                registry.display()
            )
        })
}
