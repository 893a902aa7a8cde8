//! Loading Envoy's v3 bootstrap (`envoy -c` files) from YAML or JSON.
//!
//! The document goes YAML/JSON → `serde_json::Value` → `DynamicMessage` (protobuf JSON mapping,
//! unknown fields rejected, `"@type"` resolved against Envoy's descriptors) → protobuf bytes →
//! the envoy-types `Bootstrap`. Errors carry the field path via `serde_path_to_error`.

use crate::support::{Support, Unsupported, find_unsupported};
use crate::{XdsError, descriptors, type_url};
use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, SerializeOptions};
use std::path::Path;

/// Envoy's bootstrap message.
pub use envoy_types::pb::envoy::config::bootstrap::v3::Bootstrap;

const BOOTSTRAP: &str = "envoy.config.bootstrap.v3.Bootstrap";

/// The syntax of a bootstrap document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// Guesses from the file extension as Envoy does: `.json` is JSON, anything else YAML
    /// (YAML is a superset of JSON, so a mislabelled JSON file still loads).
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// A bootstrap plus its canonical protobuf-JSON form (what `/config_dump` shows).
#[derive(Debug, Clone)]
pub struct LoadedBootstrap {
    pub bootstrap: Bootstrap,
    /// The bootstrap re-serialized by the protobuf JSON mapping (snake_case field names,
    /// defaults omitted), so it reflects what was understood rather than what was typed.
    pub json: serde_json::Value,
    /// Set fields outside the consumer's [`Support`] table (empty when none was given).
    pub unsupported: Vec<Unsupported>,
}

/// Reads and parses a bootstrap file; the format comes from the extension. With `support`,
/// fields outside it are listed in [`LoadedBootstrap::unsupported`].
pub fn load_file(path: &Path, support: Option<&Support>) -> Result<LoadedBootstrap, XdsError> {
    let text = std::fs::read_to_string(path).map_err(|source| XdsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, Format::from_path(path), support)
}

/// Parses a bootstrap document; see [`load_file`] for `support`.
pub fn parse(
    text: &str,
    format: Format,
    support: Option<&Support>,
) -> Result<LoadedBootstrap, XdsError> {
    let value = to_json_value(text, format)?;
    decode_json::<Bootstrap>(BOOTSTRAP, value, support).map(|d| LoadedBootstrap {
        bootstrap: d.message,
        json: d.json,
        unsupported: d.unsupported,
    })
}

/// The result of [`decode_json`].
#[derive(Debug, Clone)]
pub struct Decoded<M> {
    pub message: M,
    /// Canonical protobuf JSON of `message`.
    pub json: serde_json::Value,
    /// Set fields outside the given [`Support`].
    pub unsupported: Vec<Unsupported>,
}

/// Parses YAML or JSON text into an untyped JSON value.
pub fn to_json_value(text: &str, format: Format) -> Result<serde_json::Value, XdsError> {
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| XdsError::Syntax {
            format: "JSON",
            message: e.to_string(),
        }),
        Format::Yaml => serde_saphyr::from_str(text).map_err(|e| XdsError::Syntax {
            format: "YAML",
            message: e.to_string(),
        }),
    }
}

/// Decodes a protobuf-JSON value as `message` (a full name such as
/// `envoy.config.cluster.v3.Cluster`) into its envoy-types struct `M`. Also returns the
/// canonical JSON and, given `support`, the set fields it does not cover. Unknown fields and
/// unknown `@type`s are errors naming their path.
pub fn decode_json<M: Message + Default>(
    message: &str,
    value: serde_json::Value,
    support: Option<&Support>,
) -> Result<Decoded<M>, XdsError> {
    let mut types = vec![message.to_owned()];
    collect_any_types(&value, &mut types);
    let pool = descriptors::pool_for(types.iter().map(String::as_str))?;
    let desc = pool
        .get_message_by_name(message)
        .ok_or_else(|| XdsError::Descriptors(format!("no descriptor for {message}")))?;
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let dynamic = DynamicMessage::deserialize_with_options(desc, de, &options).map_err(|e| {
        XdsError::Invalid {
            field: track.path().to_string(),
            message: e.to_string(),
        }
    })?;
    let canonical = dynamic
        .serialize_with_options(
            serde_json::value::Serializer,
            &SerializeOptions::new().use_proto_field_name(true),
        )
        .map_err(|e| XdsError::Descriptors(format!("re-serializing {message}: {e}")))?;
    let decoded =
        M::decode(dynamic.encode_to_vec().as_slice()).map_err(|source| XdsError::Decode {
            type_name: message.to_owned(),
            source,
        })?;
    let unsupported = support
        .map(|s| find_unsupported(&pool, s, &dynamic))
        .unwrap_or_default();
    Ok(Decoded {
        message: decoded,
        json: canonical,
        unsupported,
    })
}

/// Every `"@type"` named anywhere in the document, as message names.
fn collect_any_types(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(url)) = map.get("@type") {
                out.push(type_url::message_name(url).to_owned());
            }
            map.values().for_each(|v| collect_any_types(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_any_types(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

    const BENCH: &str = r#"
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: bench
    address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          codec_type: AUTO
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: upstream }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    lb_policy: ROUND_ROBIN
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }
"#;

    #[test]
    fn parses_the_benchmark_bootstrap_with_typed_any() {
        let loaded = parse(BENCH, Format::Yaml, None).expect("bench bootstrap parses");
        let sr = loaded.bootstrap.static_resources.expect("static_resources");
        assert_eq!(sr.listeners.len(), 1);
        assert_eq!(sr.clusters[0].name, "upstream");
        assert_eq!(sr.clusters[0].connect_timeout.expect("timeout").seconds, 1);
        let any = sr.listeners[0].filter_chains[0].filters[0]
            .config_type
            .as_ref()
            .expect("typed_config");
        let envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(any) =
            any
        else {
            panic!("expected typed_config")
        };
        assert_eq!(any.type_url, type_url::HTTP_CONNECTION_MANAGER);
        let hcm = HttpConnectionManager::decode(any.value.as_slice()).expect("hcm");
        assert_eq!(hcm.stat_prefix, "bench");
        assert_eq!(hcm.http_filters.len(), 1);
        assert_eq!(
            loaded.json["static_resources"]["clusters"][0]["name"],
            "upstream"
        );
    }

    #[test]
    fn json_and_camel_case_are_accepted() {
        let doc =
            r#"{"staticResources": {"clusters": [{"name": "c", "connectTimeout": "0.25s"}]}}"#;
        let loaded = parse(doc, Format::Json, None).expect("json parses");
        let c = &loaded.bootstrap.static_resources.expect("sr").clusters[0];
        assert_eq!(c.connect_timeout.expect("t").nanos, 250_000_000);
    }

    #[test]
    fn unknown_field_is_rejected_with_its_path() {
        let doc = "static_resources:\n  clusters:\n  - name: c\n    conect_timeout: 1s\n";
        let err = parse(doc, Format::Yaml, None).expect_err("typo rejected");
        let XdsError::Invalid { field, message } = &err else {
            panic!("expected Invalid, got {err}")
        };
        assert!(field.starts_with("static_resources.clusters[0]"), "{field}");
        assert!(message.contains("conect_timeout"), "{message}");
    }

    #[test]
    fn bad_value_names_the_field() {
        let doc = "static_resources:\n  clusters:\n  - name: c\n    connect_timeout: soon\n";
        let err = parse(doc, Format::Yaml, None).expect_err("bad duration");
        assert!(
            err.to_string()
                .contains("static_resources.clusters[0].connect_timeout"),
            "{err}"
        );
    }

    #[test]
    fn unknown_any_type_is_rejected_with_its_path() {
        let doc = r#"
static_resources:
  listeners:
  - name: l
    filter_chains:
    - filters:
      - name: x
        typed_config: { "@type": type.googleapis.com/acme.Nope, foo: 1 }
"#;
        let err = parse(doc, Format::Yaml, None).expect_err("unknown any");
        assert!(
            err.to_string()
                .contains("static_resources.listeners[0].filter_chains[0].filters[0].typed_config"),
            "{err}"
        );
    }

    #[test]
    fn yaml_syntax_error_is_reported() {
        let err = parse("static_resources: [", Format::Yaml, None).expect_err("syntax");
        assert!(matches!(err, XdsError::Syntax { .. }), "{err}");
    }

    #[test]
    fn unsupported_fields_are_listed_with_paths() {
        static SUPPORT: Support = Support(&[
            ("envoy.config.bootstrap.v3.Bootstrap", &["static_resources"]),
            (
                "envoy.config.bootstrap.v3.Bootstrap.StaticResources",
                &["clusters", "listeners"],
            ),
            (
                "envoy.config.cluster.v3.Cluster",
                &["name", "connect_timeout"],
            ),
            (
                "envoy.config.listener.v3.Listener",
                &["name", "filter_chains"],
            ),
            ("envoy.config.listener.v3.FilterChain", &["filters"]),
            ("envoy.config.listener.v3.Filter", &["name", "typed_config"]),
            (
                "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                &["stat_prefix", "cluster"],
            ),
        ]);
        let doc = r#"
static_resources:
  clusters:
  - name: c
    connect_timeout: 1s
    circuit_breakers: { thresholds: [{ max_connections: 1 }] }
  listeners:
  - name: l
    filter_chains:
    - filters:
      - name: tcp
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: t
          cluster: c
          max_connect_attempts: 3
      - name: x
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.echo.v3.Echo
"#;
        let loaded = parse(doc, Format::Yaml, Some(&SUPPORT)).expect("parses");
        let paths: Vec<String> = loaded.unsupported.iter().map(|u| u.path.clone()).collect();
        assert_eq!(
            paths,
            [
                "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.max_connect_attempts",
                "static_resources.listeners[0].filter_chains[0].filters[1].typed_config",
                "static_resources.clusters[0].circuit_breakers",
            ]
        );
        assert_eq!(
            loaded.unsupported[1].type_name,
            "envoy.extensions.filters.network.echo.v3.Echo"
        );
    }
}
