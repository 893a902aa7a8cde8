//! Transparent traffic capture: the nat-table rules Istio's `istio-init` container installs
//! in a pod's network namespace, rendered as `iptables-restore` input.
//!
//! ```text
//! PREROUTING ─► ISTIO_INBOUND ─► (excluded ports: RETURN) ─► ISTIO_IN_REDIRECT ─► :15006
//! OUTPUT ─► ISTIO_OUTPUT
//!             ├─ from 127.0.0.6 on lo (the proxy reaching its app as Istio does): RETURN
//!             ├─ proxy (uid/gid) to a non-127.0.0.1 address on lo: ISTIO_IN_REDIRECT
//!             │    (a pod calling its own IP through its own service goes inbound once)
//!             ├─ anyone else on lo: RETURN;  the proxy anywhere: RETURN
//!             ├─ to 127.0.0.1, to excluded ranges/ports: RETURN
//!             └─ ISTIO_REDIRECT ─► :15001
//! ```
//!
//! The proxy's own uid/gid are excluded so its upstream connections are not captured
//! again; 15090/15021/15020 (metrics, readiness) are excluded by the caller's `-d`, as
//! Istio's injector passes them.

use std::fmt::Write as _;

/// Istio's tunnel port (HBONE), never captured inbound.
const TUNNEL_PORT: u16 = 15008;

/// The address Istio's inbound clusters bind as source so the proxy reaching its own
/// application on the pod IP is not captured again.
pub const INBOUND_SOURCE_IP: &str = "127.0.0.6";

/// Which inbound or outbound traffic is captured, as `istio-iptables`' flags say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection<T> {
    /// `*`: everything.
    All,
    /// A list (possibly empty: nothing).
    Only(Vec<T>),
}

/// Everything the rules depend on (the `istio-iptables` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// `-p`: outbound capture port of the proxy.
    pub proxy_port: u16,
    /// `-z`: inbound capture port.
    pub inbound_port: u16,
    /// `-u`: the proxy's uid(s), excluded from capture.
    pub proxy_uids: Vec<String>,
    /// `-g`: the proxy's gid(s), excluded from capture.
    pub proxy_gids: Vec<String>,
    /// `-i`: outbound destinations (CIDRs) to capture.
    pub outbound_ranges: Selection<String>,
    /// `-x`: outbound destinations (CIDRs) never captured.
    pub excluded_ranges: Vec<String>,
    /// `-b`: inbound ports to capture.
    pub inbound_ports: Selection<u16>,
    /// `-d`: inbound ports never captured (with `-b '*'`).
    pub excluded_inbound_ports: Vec<u16>,
    /// `-o`: outbound ports never captured.
    pub excluded_outbound_ports: Vec<u16>,
}

impl Default for CaptureConfig {
    /// What Istio's injector passes: `-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x ''
    /// -b '*' -d 15090,15021,15020`.
    fn default() -> Self {
        CaptureConfig {
            proxy_port: 15001,
            inbound_port: 15006,
            proxy_uids: vec!["1337".to_owned()],
            proxy_gids: vec!["1337".to_owned()],
            outbound_ranges: Selection::All,
            excluded_ranges: Vec::new(),
            inbound_ports: Selection::All,
            excluded_inbound_ports: vec![15090, 15021, 15020],
            excluded_outbound_ports: Vec::new(),
        }
    }
}

/// Why a flag value was refused.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {why}")]
pub struct CaptureError {
    pub flag: &'static str,
    pub why: String,
}

/// Parses a comma-separated port list (`15090,15021`); empty means none.
pub fn parse_ports(flag: &'static str, v: &str) -> Result<Vec<u16>, CaptureError> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|n| *n != 0)
                .ok_or_else(|| CaptureError {
                    flag,
                    why: format!("`{p}` is not a port number (1-65535)"),
                })
        })
        .collect()
}

/// Parses a comma-separated IPv4 CIDR list (`10.0.0.0/8,192.168.1.1`); empty means none.
pub fn parse_ranges(flag: &'static str, v: &str) -> Result<Vec<String>, CaptureError> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|r| {
            let (ip, len) = r.split_once('/').unwrap_or((r, "32"));
            let ok = ip.parse::<std::net::Ipv4Addr>().is_ok()
                && len.parse::<u8>().is_ok_and(|l| l <= 32);
            if ok {
                Ok(format!("{ip}/{len}"))
            } else {
                Err(CaptureError {
                    flag,
                    why: format!(
                        "`{r}` is not an IPv4 address or CIDR (IPv6 is not supported yet)"
                    ),
                })
            }
        })
        .collect()
}

/// `*` or a list.
pub fn parse_selection<T>(
    v: &str,
    list: impl FnOnce(&str) -> Result<Vec<T>, CaptureError>,
) -> Result<Selection<T>, CaptureError> {
    if v.trim() == "*" {
        Ok(Selection::All)
    } else {
        list(v).map(Selection::Only)
    }
}

/// The `iptables-restore` input for the nat table (apply with `--noflush`).
pub fn restore_text(c: &CaptureConfig) -> String {
    let mut s = String::from("* nat\n");
    let mut rule = |r: String| {
        s.push_str(&r);
        s.push('\n');
    };
    for chain in [
        "ISTIO_INBOUND",
        "ISTIO_REDIRECT",
        "ISTIO_IN_REDIRECT",
        "ISTIO_OUTPUT",
    ] {
        rule(format!("-N {chain}"));
    }
    rule(format!(
        "-A ISTIO_INBOUND -p tcp --dport {TUNNEL_PORT} -j RETURN"
    ));
    rule(format!(
        "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports {}",
        c.proxy_port
    ));
    rule(format!(
        "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports {}",
        c.inbound_port
    ));

    // Inbound.
    match &c.inbound_ports {
        Selection::Only(ports) if ports.is_empty() => {}
        Selection::All => {
            rule("-A PREROUTING -p tcp -j ISTIO_INBOUND".to_owned());
            for p in &c.excluded_inbound_ports {
                rule(format!("-A ISTIO_INBOUND -p tcp --dport {p} -j RETURN"));
            }
            rule("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT".to_owned());
        }
        Selection::Only(ports) => {
            rule("-A PREROUTING -p tcp -j ISTIO_INBOUND".to_owned());
            for p in ports {
                rule(format!(
                    "-A ISTIO_INBOUND -p tcp --dport {p} -j ISTIO_IN_REDIRECT"
                ));
            }
        }
    }

    // Outbound.
    rule("-A OUTPUT -p tcp -j ISTIO_OUTPUT".to_owned());
    for p in &c.excluded_outbound_ports {
        rule(format!("-A ISTIO_OUTPUT -p tcp --dport {p} -j RETURN"));
    }
    rule(format!(
        "-A ISTIO_OUTPUT -o lo -s {INBOUND_SOURCE_IP}/32 -j RETURN"
    ));
    for (flag, ids) in [
        ("--uid-owner", &c.proxy_uids),
        ("--gid-owner", &c.proxy_gids),
    ] {
        for id in ids {
            // The proxy calling a non-loopback address of its own pod (its own service, on
            // the pod IP) goes back in through the inbound listener, as in Istio.
            if c.inbound_ports != Selection::Only(Vec::new()) {
                rule(format!(
                    "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner {flag} {id} -j ISTIO_IN_REDIRECT"
                ));
            }
            rule(format!(
                "-A ISTIO_OUTPUT -o lo -m owner ! {flag} {id} -j RETURN"
            ));
            rule(format!("-A ISTIO_OUTPUT -m owner {flag} {id} -j RETURN"));
        }
    }
    rule("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN".to_owned());
    for r in &c.excluded_ranges {
        rule(format!("-A ISTIO_OUTPUT -d {r} -j RETURN"));
    }
    match &c.outbound_ranges {
        Selection::All => rule("-A ISTIO_OUTPUT -j ISTIO_REDIRECT".to_owned()),
        Selection::Only(ranges) => {
            for r in ranges {
                rule(format!("-A ISTIO_OUTPUT -d {r} -j ISTIO_REDIRECT"));
            }
        }
    }
    let _ = writeln!(s, "COMMIT");
    s
}

/// Installs the rules in the current network namespace with `iptables-restore --noflush`.
pub fn apply(c: &CaptureConfig) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    let text = restore_text(c);
    let mut child = std::process::Command::new("iptables-restore")
        .arg("--noflush")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running iptables-restore (is the iptables package installed?)")?;
    child
        .stdin
        .take()
        .context("iptables-restore stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!(
            "iptables-restore failed ({}): {}\nthe rules were:\n{text}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(c: &CaptureConfig) -> Vec<String> {
        restore_text(c).lines().map(str::to_owned).collect()
    }

    /// The injector's defaults produce Istio's rules, in Istio's order.
    #[test]
    fn defaults_match_istio_init() {
        let c = CaptureConfig {
            proxy_gids: vec![],
            ..CaptureConfig::default()
        };
        let want = "\
* nat
-N ISTIO_INBOUND
-N ISTIO_REDIRECT
-N ISTIO_IN_REDIRECT
-N ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
";
        assert_eq!(restore_text(&c), want);
    }

    /// The proxy's gid is excluded like its uid, and both come before the catch-all.
    #[test]
    fn gid_is_excluded_before_redirect() {
        let r = rules(&CaptureConfig::default());
        let gid = r
            .iter()
            .position(|l| l == "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN")
            .expect("gid rule");
        let redirect = r
            .iter()
            .position(|l| l == "-A ISTIO_OUTPUT -j ISTIO_REDIRECT")
            .expect("catch-all");
        assert!(gid < redirect);
        assert_eq!(r.last().map(String::as_str), Some("COMMIT"));
    }

    #[test]
    fn explicit_ports_and_ranges() {
        let c = CaptureConfig {
            proxy_port: 16001,
            inbound_port: 16006,
            outbound_ranges: Selection::Only(vec!["10.0.0.0/8".into()]),
            excluded_ranges: vec!["10.1.0.0/16".into()],
            inbound_ports: Selection::Only(vec![9080]),
            excluded_outbound_ports: vec![5432],
            ..CaptureConfig::default()
        };
        let r = rules(&c);
        for want in [
            "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 16001",
            "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006",
            "-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT",
            "-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN",
            "-A ISTIO_OUTPUT -d 10.1.0.0/16 -j RETURN",
            "-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT",
        ] {
            assert!(r.iter().any(|l| l == want), "missing {want}:\n{r:#?}");
        }
        assert!(!r.iter().any(|l| l == "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"));
        assert!(
            !r.iter()
                .any(|l| l == "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT")
        );
        // The excluded range is returned before the captured one.
        let ex = r.iter().position(|l| l.contains("10.1.0.0/16")).unwrap();
        let inc = r.iter().position(|l| l.contains("10.0.0.0/8")).unwrap();
        assert!(ex < inc);
    }

    #[test]
    fn no_inbound_capture_with_empty_ports() {
        let c = CaptureConfig {
            inbound_ports: Selection::Only(vec![]),
            ..CaptureConfig::default()
        };
        let text = restore_text(&c);
        assert!(!text.contains("-A PREROUTING"), "{text}");
        assert!(!text.contains("-j ISTIO_IN_REDIRECT\n-A ISTIO_OUTPUT -o lo -m"));
        assert!(text.contains("-A ISTIO_OUTPUT -j ISTIO_REDIRECT"));
    }

    #[test]
    fn bad_flag_values_are_named() {
        let e = parse_ports("-d", "15090,abc").unwrap_err();
        assert_eq!(e.to_string(), "-d: `abc` is not a port number (1-65535)");
        let e = parse_ranges("-x", "10.0.0.0/33").unwrap_err();
        assert!(e.to_string().starts_with("-x: `10.0.0.0/33`"), "{e}");
        assert_eq!(parse_ranges("-x", "").unwrap(), Vec::<String>::new());
        assert_eq!(parse_ranges("-i", "10.1.2.3").unwrap(), ["10.1.2.3/32"]);
        assert_eq!(
            parse_selection("*", |v| parse_ports("-b", v)).unwrap(),
            Selection::All
        );
    }
}
