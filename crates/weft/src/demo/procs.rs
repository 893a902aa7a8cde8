//! Child processes of `weft demo`: started with a parent-death signal (`setpriv
//! --pdeathsig KILL`) so a killed demo leaves none behind, output to a log file each,
//! readiness read from the log or probed over HTTP.

use anyhow::{Context as _, bail};
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One started process.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

/// Every process the demo started, stopped in reverse order.
#[derive(Default)]
pub struct Procs {
    pub list: Vec<Proc>,
}

/// What to run: the program and its arguments, environment, and an optional network
/// namespace and group to run it in.
pub struct Spec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `ip netns exec NS ...`
    pub netns: Option<String>,
    /// Real and effective gid (the proxy's group, excluded from traffic capture).
    pub gid: Option<u32>,
}

impl Spec {
    pub fn new(name: &str, program: &Path) -> Spec {
        Spec {
            name: name.to_owned(),
            program: program.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            netns: None,
            gid: None,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Spec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
}

impl Procs {
    /// Starts `spec` with its output in `logs/NAME.log`. The child runs in its own process
    /// group (a terminal's Ctrl-C reaches only the demo, which stops the children in
    /// order) and dies with the demo (`PR_SET_PDEATHSIG`, set by `setpriv` after any
    /// credential change, as the kernel clears it on one).
    pub fn start(&mut self, logs: &Path, spec: Spec) -> anyhow::Result<u32> {
        use std::os::unix::process::CommandExt as _;
        let log = logs.join(format!("{}.log", spec.name));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut argv: Vec<String> = Vec::new();
        if let Some(ns) = &spec.netns {
            argv.extend(["ip", "netns", "exec", ns].map(str::to_owned));
        }
        argv.push("setpriv".to_owned());
        argv.push("--pdeathsig".to_owned());
        argv.push("KILL".to_owned());
        if let Some(gid) = spec.gid {
            argv.push(format!("--regid={gid}"));
            argv.push("--clear-groups".to_owned());
        }
        argv.push("--".to_owned());
        argv.push(spec.program.to_string_lossy().into_owned());
        argv.extend(spec.args.iter().cloned());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} ({})", spec.name, argv.join(" ")))?;
        let pid = child.id();
        self.list.push(Proc {
            name: spec.name,
            child,
            log,
        });
        Ok(pid)
    }

    /// The first process that has exited, with its status.
    pub fn exited(&mut self) -> Option<(String, String, PathBuf)> {
        for p in &mut self.list {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Some((p.name.clone(), status.to_string(), p.log.clone()));
            }
        }
        None
    }

    /// SIGTERM to every process (newest first), up to `grace` for them to exit, then
    /// SIGKILL for the rest.
    pub fn stop(&mut self, grace: Duration) {
        for p in self.list.iter().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &p.child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + grace;
        for p in self.list.iter_mut().rev() {
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.list.clear();
    }

    /// Process ids, for the memory report.
    pub fn pids(&self) -> Vec<u32> {
        self.list.iter().map(|p| p.child.id()).collect()
    }

    /// Fails if `name` has exited (with the tail of its log).
    pub fn check_alive(&mut self, name: &str) -> anyhow::Result<()> {
        if let Some(p) = self.list.iter_mut().find(|p| p.name == name)
            && let Ok(Some(status)) = p.child.try_wait()
        {
            bail!(
                "{name} exited ({status}); its log ({}):\n{}",
                p.log.display(),
                tail(&p.log, 20)
            );
        }
        Ok(())
    }
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits until a line of `log` contains `needle`; returns that line.
pub fn wait_for_line(
    procs: &mut Procs,
    name: &str,
    log: &Path,
    needle: &str,
    patience: Duration,
) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        if let Some(line) = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains(needle))
        {
            return Ok(line.to_owned());
        }
        procs.check_alive(name)?;
        if start.elapsed() > patience {
            bail!(
                "{name} did not print `{needle}` within {patience:?}; its log ({}):\n{}",
                log.display(),
                tail(log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A minimal HTTP/1.1 GET (no proxy, `Connection: close`): status and body.
pub fn http_get(addr: &str, path: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let sa: std::net::SocketAddr = addr.parse().with_context(|| format!("address {addr}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&sa, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: weft-demo\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Waits until `GET http://addr/path` answers 200.
pub fn wait_http_ok(
    procs: &mut Procs,
    name: &str,
    addr: &str,
    path: &str,
    patience: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let last = match http_get(addr, path, Duration::from_secs(2)) {
            Ok((200, _)) => return Ok(()),
            Ok((status, body)) => format!("status {status}: {}", body.trim()),
            Err(e) => format!("{e:#}"),
        };
        procs.check_alive(name)?;
        if start.elapsed() > patience {
            let log = procs
                .list
                .iter()
                .find(|p| p.name == name)
                .map(|p| (p.log.display().to_string(), tail(&p.log, 20)))
                .unwrap_or_default();
            bail!(
                "{name} not ready at http://{addr}{path} within {patience:?} ({last}); its log ({}):\n{}",
                log.0,
                log.1
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Proportional memory of a process in KiB (`Pss` of `smaps_rollup`: shared pages, such as
/// the one `weft` binary every proxy maps, divided among the processes sharing them), so
/// the sum over processes is the memory they use together; 0 if it is gone.
pub fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of a process in KiB (`VmRSS`), 0 if it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
