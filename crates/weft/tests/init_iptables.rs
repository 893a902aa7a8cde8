//! `weft init-iptables`: the rules Istio's init container installs, printed with
//! `--dry-run`, refused with the flag named when a value is wrong, and (as root, inside a
//! network namespace the test creates) really installed in the nat table.

use std::process::Command;

const WEFT: &str = env!("CARGO_BIN_EXE_weft");
const ISTIO_FLAGS: &[&str] = &[
    "-p",
    "15001",
    "-z",
    "15006",
    "-u",
    "1337",
    "-g",
    "1337",
    "-m",
    "REDIRECT",
    "-i",
    "*",
    "-x",
    "",
    "-b",
    "*",
    "-d",
    "15090,15021,15020",
];

fn weft(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(WEFT)
        .arg("init-iptables")
        .args(args)
        .output()
        .expect("run weft");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dry_run_prints_istio_rules() {
    let mut args = ISTIO_FLAGS.to_vec();
    args.push("--dry-run");
    let (ok, out, err) = weft(&args);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"* nat"));
    assert_eq!(lines.last(), Some(&"COMMIT"));
    for want in [
        "-A PREROUTING -p tcp -j ISTIO_INBOUND",
        "-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN",
        "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
        "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
        "-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN",
        "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn bad_values_name_the_flag() {
    let (ok, _, err) = weft(&["-d", "15090,abc", "--dry-run"]);
    assert!(!ok);
    assert!(err.contains("-d: `abc` is not a port number"), "{err}");
    let (ok, _, err) = weft(&["-m", "TPROXY", "--dry-run"]);
    assert!(!ok);
    assert!(err.contains("only REDIRECT"), "{err}");
    let (ok, _, err) = weft(&["-x", "10.0.0.0/40", "--dry-run"]);
    assert!(!ok);
    assert!(err.contains("-x: `10.0.0.0/40`"), "{err}");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        .unwrap_or(false)
}

/// Deletes the namespace however the test ends.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn installs_rules_in_a_network_namespace() {
    if !is_root() {
        eprintln!("SKIPPED installs_rules_in_a_network_namespace: needs root");
        return;
    }
    let ns = Netns(format!("weft-it-{}", std::process::id()));
    let st = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .expect("ip netns add");
    assert!(st.success());
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, WEFT, "init-iptables"])
        .args(ISTIO_FLAGS)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = Command::new("ip")
        .args(["netns", "exec", &ns.0, "iptables", "-t", "nat", "-S"])
        .output()
        .expect("iptables -S");
    let rules = String::from_utf8_lossy(&rules.stdout);
    for want in [
        "-N ISTIO_INBOUND",
        "-N ISTIO_IN_REDIRECT",
        "-A PREROUTING -p tcp -j ISTIO_INBOUND",
        "-A OUTPUT -p tcp -j ISTIO_OUTPUT",
        "-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN",
        "-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
    ] {
        assert!(rules.contains(want), "missing {want:?} in:\n{rules}");
    }
    // A second run is refused (the chains exist), with iptables' reason.
    let again = Command::new("ip")
        .args(["netns", "exec", &ns.0, WEFT, "init-iptables"])
        .args(ISTIO_FLAGS)
        .output()
        .expect("run");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("iptables-restore failed"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
