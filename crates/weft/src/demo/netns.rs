//! Network namespaces for `weft demo --netns`: one per workload, joined by veth pairs to a
//! bridge in the host namespace, with a hosts file (`/etc/netns/NS/hosts`, bind-mounted
//! by `ip netns exec`) that resolves the Bookinfo services to virtual IPs, and the capture
//! rules of `weft init-iptables` inside.
//!
//! Everything created is written to `STATE/netns.txt` *before* it is created, so a
//! cleanup (on stop, by the reaper when the demo is killed, or on the next start with the
//! same state dir) finds it all.

use anyhow::{Context as _, bail};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The record of what was created.
pub fn record_path(state: &Path) -> PathBuf {
    state.join("netns.txt")
}

/// A short id derived from the state dir, so two demos (or tests) with different state
/// dirs never share names.
pub fn short_id(state: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in state.to_string_lossy().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:06x}", h & 0xff_ffff)
}

/// One workload's namespace.
#[derive(Debug, Clone)]
pub struct Pod {
    pub netns: String,
}

/// The bridge and its address (the pods' default gateway and the host's address there).
#[derive(Debug, Clone)]
pub struct Network {
    pub id: String,
    pub bridge: String,
    pub host_ip: Ipv4Addr,
    pub prefix: u8,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running `ip` (is iproute2 installed?)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn record(state: &Path, line: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(record_path(state))?;
    writeln!(f, "{line}")?;
    Ok(())
}

/// Whether this process may create namespaces (root).
pub fn check_root() -> anyhow::Result<()> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    if uid != "0" {
        bail!("--netns creates network namespaces and iptables rules: run it as root");
    }
    for tool in ["ip", "iptables-restore", "setpriv"] {
        if Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            bail!("--netns needs `{tool}` (Debian: iproute2, iptables, util-linux)");
        }
    }
    Ok(())
}

/// Creates the bridge `wb<ID>` with `host_ip/prefix`.
pub fn create_network(state: &Path, host_ip: Ipv4Addr, prefix: u8) -> anyhow::Result<Network> {
    let id = short_id(state);
    let bridge = format!("wb{id}");
    record(state, &format!("link {bridge}"))?;
    ip(&["link", "add", &bridge, "type", "bridge"])?;
    ip(&[
        "addr",
        "add",
        &format!("{host_ip}/{prefix}"),
        "dev",
        &bridge,
    ])?;
    ip(&["link", "set", &bridge, "up"])?;
    Ok(Network {
        id,
        bridge,
        host_ip,
        prefix,
    })
}

/// Creates namespace `weft-<ID>-<name>` with `eth0` at `pod_ip` on the bridge, a default
/// route through the host, loopback up, and `hosts` as its `/etc/hosts`.
pub fn create_pod(
    state: &Path,
    net: &Network,
    index: usize,
    name: &str,
    pod_ip: Ipv4Addr,
    hosts: &str,
) -> anyhow::Result<Pod> {
    let ns = format!("weft-{}-{name}", net.id);
    let host_if = format!("wh{}{index}", net.id);
    let pod_if = format!("wp{}{index}", net.id);
    let etc = Path::new("/etc/netns").join(&ns);
    record(state, &format!("netns {ns}"))?;
    record(state, &format!("dir {}", etc.display()))?;
    std::fs::create_dir_all(&etc).with_context(|| format!("creating {}", etc.display()))?;
    std::fs::write(etc.join("hosts"), hosts)?;
    ip(&["netns", "add", &ns])?;
    ip(&[
        "link", "add", &host_if, "type", "veth", "peer", "name", &pod_if,
    ])?;
    ip(&["link", "set", &host_if, "master", &net.bridge, "up"])?;
    ip(&["link", "set", &pod_if, "netns", &ns])?;
    ip(&["-n", &ns, "link", "set", &pod_if, "name", "eth0"])?;
    ip(&[
        "-n",
        &ns,
        "addr",
        "add",
        &format!("{pod_ip}/{}", net.prefix),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
    ip(&["-n", &ns, "link", "set", "lo", "up"])?;
    ip(&[
        "-n",
        &ns,
        "route",
        "add",
        "default",
        "via",
        &net.host_ip.to_string(),
    ])?;
    Ok(Pod { netns: ns })
}

/// Runs `weft init-iptables` (the same command an init container runs) inside `ns`.
pub fn install_capture(weft: &Path, ns: &str, proxy_gid: u32) -> anyhow::Result<()> {
    let gid = proxy_gid.to_string();
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(weft)
        .args([
            "init-iptables",
            "-p",
            "15001",
            "-z",
            "15006",
            "-u",
            &gid,
            "-g",
            &gid,
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
        ])
        .output()
        .context("running weft init-iptables")?;
    if !out.status.success() {
        bail!(
            "weft init-iptables in {ns} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Removes everything recorded in `STATE/netns.txt` (processes still in a namespace are
/// killed first), then the record. Safe to run twice and when nothing was created.
pub fn cleanup(state: &Path) {
    let path = record_path(state);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let quiet = |args: &[&str]| {
        let _ = Command::new("ip")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    for line in text.lines() {
        if let Some(ns) = line.strip_prefix("netns ") {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill")
                        .args(["-KILL", pid])
                        .stderr(Stdio::null())
                        .status();
                }
            }
            quiet(&["netns", "del", ns]);
        }
    }
    for line in text.lines() {
        if let Some(link) = line.strip_prefix("link ") {
            quiet(&["link", "del", link]);
        } else if let Some(dir) = line.strip_prefix("dir ") {
            // Only our own per-namespace directories.
            if dir.starts_with("/etc/netns/weft-") {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_interface_limits() {
        let id = short_id(Path::new("/tmp/some/long/state/dir/for/weft-demo"));
        assert_eq!(id.len(), 6);
        assert!(format!("wh{id}{}", 15).len() <= 15);
        assert_ne!(id, short_id(Path::new("/tmp/other")));
    }
}
