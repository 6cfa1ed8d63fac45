//! The shipped NATS configuration (`deploy/`) pointed at test ports, directories and
//! certificates: every edit checks that the shipped text still holds what it replaces.

use std::path::Path;

use crate::pki::TestPki;

/// Node names and IDs exactly as in `deploy/nats-server.conf`.
pub const DEPLOY_NODES: [(&str, &str); 3] = [
    ("node0", "86e6560e-3c7b-4224-b170-7562e991d6be"),
    ("node1", "b67f1bb9-3f53-4081-acf5-0505d712b5a7"),
    ("node2", "a86eb610-c9dd-48ef-8d43-9d1973a4f25c"),
];

/// The client application's user, ClientID and inbox prefix in `deploy/nats-server.conf`.
pub const DEPLOY_CLIENT: &str = "backend";

/// `deploy/nats-server.conf` as shipped.
pub const NATS_SERVER_CONF: &str = include_str!("../../../../deploy/nats-server.conf");

/// `text` with `from` replaced by `to`; panics naming `file` when `from` is not in it (the
/// shipped file changed under the test).
pub fn replace_checked(text: &str, from: &str, to: &str, file: &str) -> String {
    assert!(text.contains(from), "{file} no longer contains {from:?}");
    text.replace(from, to)
}

/// A path as configuration text.
pub fn path_text(p: &Path) -> String {
    p.display().to_string()
}

/// `deploy/nats-server.conf` (or `text`, an edited copy of it) with its server certificate, key
/// and CA pointed at `pki`.
pub fn with_test_certificates(text: &str, pki: &TestPki) -> String {
    let f = "deploy/nats-server.conf";
    let text = replace_checked(text, "/etc/nats/certs/server-cert.pem", &path_text(&pki.server.cert), f);
    let text = replace_checked(&text, "/etc/nats/certs/server-key.pem", &path_text(&pki.server.key), f);
    replace_checked(&text, "/etc/nats/certs/rootCA.pem", &path_text(&pki.ca_cert), f)
}
