use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A client-first TCP backend: echoes what it reads; when the client half-closes, it writes
/// `bye from <name>\n` and closes (so tests can check half-close passes through a proxy).
#[derive(Debug, Clone)]
pub struct TcpEcho {
    pub name: String,
    pub addr: SocketAddr,
}

impl TcpEcho {
    /// Starts a TCP echo backend on `127.0.0.1:0`.
    pub async fn start(name: &str) -> TcpEcho {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let bye = format!("bye from {name}\n");
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                let bye = bye.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) => {
                                let _ = s.write_all(bye.as_bytes()).await;
                                let _ = s.shutdown().await;
                                return;
                            }
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                            Err(_) => return,
                        }
                    }
                });
            }
        });
        TcpEcho {
            name: name.to_owned(),
            addr,
        }
    }
}

/// A server-first TCP backend: writes `<banner>\n` as soon as a client connects, then echoes.
#[derive(Debug, Clone)]
pub struct TcpBanner {
    pub addr: SocketAddr,
}

impl TcpBanner {
    /// Starts a banner backend on `127.0.0.1:0`.
    pub async fn start(banner: &str) -> TcpBanner {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let banner = format!("{banner}\n");
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                let banner = banner.clone();
                tokio::spawn(async move {
                    if s.write_all(banner.as_bytes()).await.is_err() {
                        return;
                    }
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        TcpBanner { addr }
    }
}
