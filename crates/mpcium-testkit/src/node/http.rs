//! `/health` and `/metrics` read over plain HTTP/1.1 on 127.0.0.1.

use std::time::Duration;

/// A plain HTTP/1.1 GET on 127.0.0.1; `None` when nothing answers within `limit`.
pub async fn try_http_get(port: u16, path: &str, limit: Duration) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let get = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    tokio::time::timeout(limit, get).await.ok().flatten()
}

/// A plain HTTP/1.1 GET on 127.0.0.1, returning the whole response; panics when nothing answers
/// within 60 s.
pub async fn http_get(port: u16, path: &str) -> String {
    try_http_get(port, path, Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("GET {path} on port {port}: no answer"))
}

/// The value of an unlabelled metric in a `/metrics` text.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
}

/// The sum of an unlabelled metric over the nodes serving `/metrics` on `ports`.
pub async fn total(ports: &[u16], name: &str) -> u64 {
    let mut sum = 0;
    for &port in ports {
        sum += metric(&http_get(port, "/metrics").await, name);
    }
    sum
}

/// Wait until each node `i` of `nodes` (serving `/metrics` on `ports[i]`) owns `pool`
/// presignatures.
pub async fn wait_pools_full(ports: &[u16], nodes: &[usize], pool: usize) {
    for &i in nodes {
        let mut last = 0;
        for _ in 0..600 {
            last = metric(&http_get(ports[i], "/metrics").await, "mpcium_presign_pool_size");
            if last as usize >= pool {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(last as usize >= pool, "node{i} owns {last} presignatures, want {pool}");
    }
}
