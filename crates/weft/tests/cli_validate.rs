//! `weft validate` and `weft analyze` as a user runs them: exit codes, messages, JSON.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn weft(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn weft");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    drop(pipe);
    child.wait_with_output().expect("run weft")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write_temp(name: &str, text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(name);
    std::fs::write(&file, text).expect("write");
    let path = file.to_str().expect("utf8 path").to_string();
    (dir, path)
}

#[test]
fn bundled_samples_are_valid() {
    let o = weft(&["validate", "-f", "samples/bookinfo"], None);
    assert!(
        o.status.success(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_typo_gets_one_clear_message_and_exit_1() {
    let (_dir, file) = write_temp(
        "vs.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n    retries:\n      attempts: 3\n      retryOnn: 5xx\n",
    );
    let o = weft(&["validate", "-f", &file], None);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let l = lines[0];
    assert!(l.starts_with("Error "), "{l}");
    assert!(l.contains("vs.yaml:13:7"), "{l}");
    assert!(l.contains("(VirtualService default/reviews)"), "{l}");
    assert!(l.contains("spec.http[0].retries.retryOnn"), "{l}");
    assert!(l.contains("did you mean `retryOn`?"), "{l}");
}

#[test]
fn json_output_lists_every_problem() {
    let input = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec:\n  host: reviews\n  trafficPolicy:\n    outlierDetection:\n      interval: 10x\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec:\n  prots: []\n";
    let o = weft(&["validate", "-f", "-", "-o", "json"], Some(input));
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json output");
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 2);
    let diags = v["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(
        diags[0]["field"],
        "spec.trafficPolicy.outlierDetection.interval"
    );
    assert_eq!(diags[0]["line"], 8);
    assert_eq!(diags[0]["file"], "<stdin>");
    assert!(
        diags[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown unit `x`")
    );
    assert_eq!(diags[1]["field"], "spec.prots");
    assert_eq!(diags[1]["line"], 14);
}

#[test]
fn unknown_kinds_are_skipped_not_errors() {
    let input = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n";
    let o = weft(&["validate", "-f", "-", "-v"], Some(input));
    assert!(o.status.success());
    assert!(stdout(&o).contains("skipped: weft does not read ConfigMap"));
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let o = weft(&["validate", "-f", "no/such/file.yaml"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("no/such/file.yaml"), "{}", stdout(&o));
}

#[test]
fn analyze_finds_a_route_to_an_undefined_subset() {
    let (_dir, file) = write_temp(
        "bad.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination:\n        host: reviews\n        subset: v9\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n",
    );
    let o = weft(&["analyze", "-f", &file], None);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("[IST0101]"), "{out}");
    assert!(out.contains("bad.yaml:10:9"), "{out}");
    assert!(out.contains("reviews+v9"), "{out}");
}

#[test]
fn analyze_passes_on_the_bookinfo_tutorial() {
    let o = weft(
        &[
            "analyze",
            "-f",
            "samples/bookinfo/networking",
            "-f",
            "samples/bookinfo/platform/kube",
        ],
        None,
    );
    assert!(
        o.status.success(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn help_explains_each_subcommand() {
    let out = stdout(&weft(&["--help"], None));
    assert!(out.contains("validate") && out.contains("analyze"), "{out}");
    let out = stdout(&weft(&["validate", "--help"], None));
    assert!(out.contains("--filename"), "{out}");
}
