//! How every process of the cluster (node and CLI) connects to NATS.

/// Select rustls' `ring` provider for this process, once. With two providers compiled in (a build
/// that also has the AWS SDK's `aws-lc-rs`, e.g. a workspace build with every feature) rustls
/// cannot choose on its own and panics at the first TLS connection.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The servers of a `nats.url` that lists one or several (comma-separated, as the Go client
/// accepts), in the order written.
pub fn nats_servers(url: &str) -> Vec<String> {
    url.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Client options every connection of a node (and of the CLI) to a NATS cluster uses: the
/// servers of `nats.url` are tried in the order written (node i lists its own server i first),
/// and servers the cluster advertises are added to the pool, so the client reconnects to another
/// server when its own dies (forever: the node has no use without NATS).
pub fn cluster_options(options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
    options.retain_servers_order().max_reconnects(None)
}
