//! Throw-away X.509 material for TLS tests, made in-process with `rcgen` in a temporary
//! directory: a CA, a server certificate for `localhost`/`127.0.0.1`, one client certificate per
//! name, and a client certificate signed by a second, unrelated CA (what a stranger would present).
//!
//! Keys are P-256 (fast to make; accepted by nats-server and rustls). Certificates are valid for
//! one day (from a minute ago, so a server's clock a little behind ours still accepts them).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::HarnessError;

/// A certificate and its private key (PEM files).
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM).
    pub key: PathBuf,
}

/// A test PKI in a temporary directory (deleted on drop).
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
    /// The CA certificate the server trusts and clients verify the server with.
    pub ca_cert: PathBuf,
    /// The server's certificate (SAN `localhost`, `127.0.0.1`; usable for both ends of a route
    /// between servers: server and client authentication).
    pub server: CertFiles,
    /// The client certificate issued by the unrelated CA.
    pub foreign_client: CertFiles,
}

impl TestPki {
    /// Make a CA, a server certificate and one client certificate per name in `clients` (its
    /// common name is the name), plus a client certificate from a different CA.
    pub fn generate(clients: &[&str]) -> Result<Self, HarnessError> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let ca = Ca::new(d, "ca", "mpcium test CA")?;
        let server = ca.issue(
            d,
            "server",
            "localhost",
            vec![
                SanType::DnsName("localhost".try_into()?),
                SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            ],
            // clientAuth too: in a NATS cluster a server also dials its peers' routes with it.
            &[ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        )?;
        for name in clients {
            ca.issue(d, &format!("client-{name}"), name, Vec::new(), CLIENT_EKU)?;
        }
        let foreign_ca = Ca::new(d, "foreign-ca", "unrelated CA")?;
        let foreign_client = foreign_ca.issue(d, "foreign-client", "stranger", Vec::new(), CLIENT_EKU)?;
        Ok(Self { ca_cert: ca.files.cert, server, foreign_client, dir })
    }

    /// The certificate issued to `name` by the test CA (it must be one of the names given to
    /// [`TestPki::generate`]).
    pub fn client(&self, name: &str) -> CertFiles {
        files(self.dir.path(), &format!("client-{name}"))
    }

    /// The directory holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

const CLIENT_EKU: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ClientAuth];

/// A certificate authority: its files and what it signs with.
struct Ca {
    files: CertFiles,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A self-signed CA (`basicConstraints` critical CA:TRUE, key usage keyCertSign + cRLSign).
    fn new(dir: &Path, stem: &str, cn: &str) -> Result<Self, HarnessError> {
        let key = KeyPair::generate()?;
        let mut params = base_params(cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        let files = files(dir, stem);
        write_pem(&files.cert, &cert.pem(), 0o644)?;
        write_pem(&files.key, &key.serialize_pem(), 0o600)?;
        Ok(Self { files, issuer: Issuer::new(params, key) })
    }

    /// An end-entity certificate (CA:FALSE, key usage digitalSignature) for `cn` with the given
    /// subject alternative names and extended key usages, signed by this CA.
    fn issue(
        &self,
        dir: &Path,
        stem: &str,
        cn: &str,
        sans: Vec<SanType>,
        eku: &[ExtendedKeyUsagePurpose],
    ) -> Result<CertFiles, HarnessError> {
        let key = KeyPair::generate()?;
        let mut params = base_params(cn);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = eku.to_vec();
        params.subject_alt_names = sans;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        let files = files(dir, stem);
        write_pem(&files.cert, &cert.pem(), 0o644)?;
        write_pem(&files.key, &key.serialize_pem(), 0o600)?;
        Ok(files)
    }
}

/// Subject `CN=cn`, a serial distinct between the certificates of this process, valid one day.
fn base_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.serial_number = Some(SerialNumber::from(serial()));
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(1);
    params.not_after = now + Duration::days(1);
    params
}

fn files(dir: &Path, stem: &str) -> CertFiles {
    CertFiles { cert: dir.join(format!("{stem}-cert.pem")), key: dir.join(format!("{stem}-key.pem")) }
}

fn write_pem(path: &Path, pem: &str, mode: u32) -> io::Result<()> {
    OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?.write_all(pem.as_bytes())
}

/// A serial number distinct between the certificates of one PKI.
fn serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_every_file_with_private_keys_0600() {
        use std::os::unix::fs::PermissionsExt;
        let pki = TestPki::generate(&["node0"]).unwrap();
        let client = pki.client("node0");
        for path in [&pki.ca_cert, &pki.server.cert, &client.cert, &pki.foreign_client.cert] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{}", path.display());
        }
        for path in [&pki.server.key, &client.key, &pki.foreign_client.key] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{}", path.display());
            assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
