//! The page in a real browser: Debian's `chromium`, headless, signs in through
//! the form and renders the stars. Skipped (with a note) when no chromium is
//! installed; set `CHROMIUM` to point at one.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::*;
use weft_bookinfo::reviews::ReviewsVersion;

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| {
            ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name))
        })
        .find(|candidate| candidate.is_file())
}

/// A `data:` page that posts the sign-in form to productpage at once, so the
/// browser goes through `/login`, its cookie and its redirect as a user does.
fn sign_in_url(page: std::net::SocketAddr, user: &str) -> String {
    let html = format!(
        "<form method=post action='http://{page}/login'><input name=username value='{user}'>\
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

/// Run headless chromium on `url` with `args`, with its own profile, bounded in time.
async fn run_chromium(chromium: &PathBuf, args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let run = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(["--force-device-scale-factor=1", "--window-size=1000,700"])
        // Virtual time runs until the page is idle, so the form's post, the
        // redirect and the product page all finish before the dump or screenshot.
        .arg("--virtual-time-budget=5000")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PATIENCE * 3, run)
        .await
        .expect("chromium finished in time")
        .expect("run chromium");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Pixels of the screenshot at `path` for which `is` holds.
fn count_pixels(path: &std::path::Path, is: impl Fn(u8, u8, u8) -> bool) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|px| channels >= 3 && is(px[0], px[1], px[2]))
        .count()
}

/// Pure black: only the v2 stars (text and the navigation bar are `#222`).
fn black(r: u8, g: u8, b: u8) -> bool {
    r < 16 && g < 16 && b < 16
}

/// Strong red: only the v3 stars.
fn red(r: u8, g: u8, b: u8) -> bool {
    r > 200 && g < 60 && b < 60
}

async fn screenshot(chromium: &PathBuf, url: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("page.png");
    run_chromium(
        chromium,
        &[&format!("--screenshot={}", path.display())],
        url,
    )
    .await;
    assert!(path.is_file(), "chromium wrote no screenshot");
    (dir, path)
}

#[tokio::test]
async fn chromium_signs_in_as_jason_and_shows_black_stars() {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: no chromium on PATH (set CHROMIUM)");
        return;
    };
    let page = start_bookinfo(ReviewsVersion::V2).await;
    let url = sign_in_url(page, "jason");

    let dom = run_chromium(&chromium, &["--dump-dom"], &url).await;
    assert!(dom.contains(r#"data-user="jason""#), "not signed in: {dom}");
    assert!(dom.contains(r#"data-reviews-version="v2""#), "{dom}");
    assert_eq!(dom.matches(r#"class="star star-full""#).count(), 9);
    assert_eq!(dom.matches(r#"class="star star-empty""#).count(), 1);
    assert_eq!(dom.matches(r#"data-color="black""#).count(), 2);

    let (_dir, shot) = screenshot(&chromium, &url).await;
    let black_pixels = count_pixels(&shot, black);
    assert!(
        black_pixels > 500,
        "black stars not visible: {black_pixels} black pixels"
    );
    assert_eq!(count_pixels(&shot, red), 0);
}

#[tokio::test]
async fn chromium_shows_red_stars_from_reviews_v3() {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: no chromium on PATH (set CHROMIUM)");
        return;
    };
    let page = start_bookinfo(ReviewsVersion::V3).await;

    let (_dir, shot) = screenshot(&chromium, &format!("http://{page}/productpage")).await;
    let red_pixels = count_pixels(&shot, red);
    assert!(
        red_pixels > 500,
        "red stars not visible: {red_pixels} red pixels"
    );
    assert!(count_pixels(&shot, black) < 50, "unexpected black stars");
}
