//! The loader's own behaviour, independent of any one kind's rules: kinds and versions,
//! metadata, lists, YAML errors, positions. Each row: input, expected (field, line, message).

use weft_model::{Severity, load_str};

struct Case {
    name: &'static str,
    yaml: &'static str,
    /// (field path, line, fragment of the message) of the single Error expected; None = valid.
    error: Option<(&'static str, usize, &'static str)>,
}

const CASES: &[Case] = &[
    Case {
        name: "misspelt kind in an Istio group",
        yaml: "apiVersion: networking.istio.io/v1\nkind: VirtualServce\nmetadata: {name: a}\nspec: {}\n",
        error: Some(("kind", 2, "did you mean `VirtualService`?")),
    },
    Case {
        name: "misspelt API group",
        yaml: "apiVersion: security.isito.io/v1\nkind: PeerAuthentication\nmetadata: {name: a}\nspec: {}\n",
        error: Some(("apiVersion", 1, "did you mean `security.istio.io`?")),
    },
    Case {
        name: "misspelt core kind",
        yaml: "apiVersion: v1\nkind: Servce\nmetadata: {name: a}\n",
        error: Some(("kind", 2, "did you mean `Service`?")),
    },
    Case {
        name: "version not served",
        yaml: "apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: a}\nspec: {}\n",
        error: Some(("apiVersion", 1, "use networking.istio.io/v1 or")),
    },
    Case {
        name: "missing kind",
        yaml: "apiVersion: v1\nmetadata: {name: a}\n",
        error: Some(("kind", 1, "`kind` is required")),
    },
    Case {
        name: "misspelt metadata field",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: a\n  namepsace: b\nspec: {}\n",
        error: Some(("metadata.namepsace", 5, "did you mean `namespace`?")),
    },
    Case {
        name: "misspelt top-level field",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetdata:\n  name: a\nspec: {}\n",
        error: Some(("metdata", 3, "did you mean `metadata`?")),
    },
    Case {
        name: "missing name",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {namespace: x}\nspec: {}\n",
        error: Some(("metadata.name", 3, "`metadata.name` is required")),
    },
    Case {
        name: "invalid name",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: My_Gateway\nspec: {}\n",
        error: Some(("metadata.name", 4, "name `My_Gateway` is invalid")),
    },
    Case {
        name: "invalid label",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: g\n  labels:\n    app: \"-x\"\nspec: {}\n",
        error: Some(("metadata.labels.app", 6, "label value `-x` is invalid")),
    },
    Case {
        name: "missing spec",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\n",
        error: Some(("spec", 1, "`spec` is required")),
    },
    Case {
        name: "duplicate key",
        yaml: "apiVersion: networking.istio.io/v1\nkind: Gateway\nkind: Gateway\nmetadata: {name: g}\nspec: {}\n",
        error: Some(("kind", 3, "duplicate key `kind`")),
    },
    Case {
        name: "not a mapping",
        yaml: "- a\n- b\n",
        error: Some(("", 1, "must be a mapping")),
    },
    Case {
        name: "other kinds of known groups are skipped",
        yaml: "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: e}\nspec: {}\n",
        error: None,
    },
    Case {
        name: "foreign kinds are skipped",
        yaml: "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec: {}\n",
        error: None,
    },
];

#[test]
fn loader_table() {
    for c in CASES {
        let out = load_str("case.yaml", c.yaml);
        let errors: Vec<_> = out.diagnostics.iter().filter(|d| d.is_error()).collect();
        match c.error {
            None => assert!(errors.is_empty(), "{}: unexpected {errors:#?}", c.name),
            Some((field, line, fragment)) => {
                assert_eq!(errors.len(), 1, "{}: {errors:#?}", c.name);
                let e = errors[0];
                assert_eq!(e.field.as_deref().unwrap_or(""), field, "{}: {e}", c.name);
                assert_eq!(e.line, Some(line), "{}: {e}", c.name);
                assert!(e.message.contains(fragment), "{}: {e}", c.name);
                assert_eq!(e.file.as_deref(), Some("case.yaml"), "{}", c.name);
                assert!(
                    out.resources.is_empty(),
                    "{}: a resource with errors is used",
                    c.name
                );
            }
        }
    }
}

#[test]
fn lists_are_expanded_with_positions() {
    let yaml = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1\n  kind: Gateway\n  metadata: {name: a}\n  spec: {}\n- apiVersion: networking.istio.io/v1\n  kind: Gateway\n  metadata:\n    name: b\n    labelz: {}\n  spec: {}\n";
    let out = load_str("list.yaml", yaml);
    assert_eq!(out.resources.len(), 1);
    assert_eq!(out.resources[0].name(), "a");
    let e = out
        .diagnostics
        .iter()
        .find(|d| d.is_error())
        .expect("error");
    assert_eq!(e.field.as_deref(), Some("metadata.labelz"));
    assert_eq!(e.line, Some(12));
}

#[test]
fn yaml_syntax_errors_keep_earlier_documents() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: a}\nspec: {}\n---\nkey: [unclosed\n";
    let out = load_str("s.yaml", yaml);
    assert_eq!(out.resources.len(), 1);
    let e = out
        .diagnostics
        .iter()
        .find(|d| d.is_error())
        .expect("error");
    assert!(e.message.starts_with("YAML syntax error"), "{e}");
    assert!(e.line.is_some_and(|l| l >= 6), "{e}");
}

#[test]
fn namespaces_default_and_display() {
    let out = load_str(
        "n.yaml",
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: a}\nspec: {}\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: b, namespace: istio-system}\nspec: {}\n",
    );
    assert_eq!(out.resources[0].display_name(), "Gateway default/a");
    assert_eq!(out.resources[1].display_name(), "Gateway istio-system/b");
    assert!(
        out.diagnostics
            .iter()
            .all(|d| d.severity < Severity::Warning)
    );
}
