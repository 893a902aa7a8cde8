//! Reading what a started `weft control` announces.

use std::net::SocketAddr;
use std::process::ChildStdout;

use anyhow::bail;

/// Reads `weft control`'s first stdout line, `weft control: xds ADDR api ADDR`, and returns
/// the two bound addresses (xDS, REST API). Tests start it on `127.0.0.1:0` and learn the
/// ports here.
pub async fn control_addresses(stdout: ChildStdout) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
    })
    .await??;
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["weft", "control:", "xds", x, "api", a] => Ok((x.parse()?, a.parse()?)),
        _ => bail!("unexpected first line from weft control: {line:?}"),
    }
}
