//! `weft proxy` without the rest of the CLI, for profiling the hot path with a quicker
//! build: `proxy BOOTSTRAP [CONCURRENCY]` serves until killed. It builds the same runtime
//! as the binary (`weft_proxy::runtime::build`) but decodes the bootstrap in process, so
//! its RSS is not the binary's (see `docs/proxy.md`); instruction counts per request are.

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: proxy BOOTSTRAP [CONCURRENCY]"))?;
    let workers = args.next().map_or(Ok(1), |n| n.parse())?;
    let config = weft_proxy::ProxyConfig::load_file(std::path::Path::new(&path))?;
    let runtime = weft_proxy::runtime::build(workers)?;
    runtime.block_on(async {
        let proxy = weft_proxy::start(config).await?;
        proxy.quit_requested().await;
        proxy.drain(std::time::Duration::from_secs(1)).await;
        anyhow::Ok(())
    })
}
