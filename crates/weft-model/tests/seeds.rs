//! Every Istio or Kubernetes resource in the tutorials our users learn from
//! (`shared/seeds/`, extracted into `tests/fixtures/seeds/`) must validate.

use weft_model::{Severity, load_paths};

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seeds")
}

#[test]
fn every_seed_resource_validates() {
    let out = load_paths(&[fixtures()]);
    let errors: Vec<String> = out
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert!(
        errors.is_empty(),
        "seed resources must validate:\n{}",
        errors.join("\n")
    );
    // Pod, Service, Deployment, Deployment + Service, Gateway + VirtualService + DestinationRule.
    assert_eq!(out.resources.len(), 8, "{:#?}", out.diagnostics);
    let kinds: Vec<&str> = out.resources.iter().map(|r| r.kind.kind).collect();
    for k in [
        "Pod",
        "Service",
        "Deployment",
        "Gateway",
        "VirtualService",
        "DestinationRule",
    ] {
        assert!(kinds.contains(&k), "missing {k} in {kinds:?}");
    }
}

#[test]
fn old_deployment_versions_are_read_with_a_deprecation_warning() {
    let out = load_paths(&[fixtures()]);
    let warnings: Vec<_> = out
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning && d.message.contains("deprecated"))
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    for w in warnings {
        assert_eq!(w.field.as_deref(), Some("apiVersion"));
        assert_eq!(w.line, Some(1));
        assert!(w.message.contains("apps/v1"), "{}", w.message);
    }
    // The apps/v1beta1 Deployment has no selector: it is defaulted from the template labels.
    let canary = out
        .resources
        .iter()
        .find(|r| r.name() == "cloudnative-java-service-canary")
        .expect("canary deployment");
    let weft_model::Spec::Deployment(d) = &canary.spec else {
        panic!("not a deployment")
    };
    let selector = d
        .spec
        .as_ref()
        .unwrap()
        .selector
        .match_labels
        .clone()
        .unwrap();
    assert_eq!(
        selector.get("app").map(String::as_str),
        Some("cloudnative-java-service")
    );
}
