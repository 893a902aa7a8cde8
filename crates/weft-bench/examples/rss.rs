//! Where start-up memory goes: prints RSS (anonymous and file-backed) after each phase of
//! starting a proxy from a bootstrap. `cargo run --release -p weft-bench --example rss -- FILE`

use std::time::Duration;

fn rss(phase: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_owned()
    };
    println!(
        "{phase:>20}: rss {} kB (anon {}, file {})",
        kb("VmRSS"),
        kb("RssAnon"),
        kb("RssFile")
    );
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: rss BOOTSTRAP"))?;
    rss("start");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rss("runtime built");
    let config = weft_proxy::ProxyConfig::load_file(std::path::Path::new(&path))?;
    rss("bootstrap loaded");
    let proxy = runtime.block_on(weft_proxy::start(config))?;
    rss("proxy started");
    std::thread::sleep(Duration::from_millis(300));
    rss("idle");
    drop(proxy);
    Ok(())
}
