//! Backends that misbehave on purpose, speaking raw HTTP/1.1 so each failure is exact.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a [`FaultyServer`] misbehaves on each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Reads the request head, then resets the connection without answering.
    ResetBeforeHeaders,
    /// Answers headers with `content-length: 100`, sends 10 bytes and closes.
    CloseMidBody,
    /// Answers headers and 10 bytes of a 100-byte body, then stalls (keeps the socket open).
    StallMidBody,
    /// Reads the request head and never answers (keeps the socket open).
    NeverAnswer,
}

/// A raw HTTP/1.1 backend on `127.0.0.1:0` that fails every request the same way and
/// counts them.
#[derive(Debug, Clone)]
pub struct FaultyServer {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl FaultyServer {
    /// Starts a backend that misbehaves as `how`.
    pub async fn start(how: Misbehaviour) -> FaultyServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let server = FaultyServer {
            addr: listener.local_addr().expect("local addr"),
            requests: Arc::new(AtomicUsize::new(0)),
        };
        let requests = server.requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                let requests = requests.clone();
                tokio::spawn(async move { serve(s, how, requests).await });
            }
        });
        server
    }

    /// Request heads read so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

/// An address on 127.0.0.1 where nothing listens (a listener bound then closed), so
/// connecting is refused.
pub async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

async fn serve(mut s: TcpStream, how: Misbehaviour, requests: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    requests.fetch_add(1, Ordering::Relaxed);
    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nx-backend: faulty\r\n\r\n0123456789";
    match how {
        Misbehaviour::ResetBeforeHeaders => {
            let _ = s.set_zero_linger();
            drop(s);
        }
        Misbehaviour::CloseMidBody => {
            let _ = s.write_all(head).await;
            let _ = s.shutdown().await;
        }
        Misbehaviour::StallMidBody => {
            let _ = s.write_all(head).await;
            // Hold the socket until the peer goes away.
            let _ = s.read(&mut chunk).await;
        }
        Misbehaviour::NeverAnswer => {
            let _ = s.read(&mut chunk).await;
        }
    }
}
