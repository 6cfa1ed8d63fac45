//! Throw-away X.509 material for TLS tests, made with the `openssl` command-line tool (present on
//! Debian and most CI images) in a temporary directory: a CA, a server certificate for
//! `localhost`/`127.0.0.1`, one client certificate per name, and a client certificate signed by a
//! second, unrelated CA (what a stranger would present).
//!
//! Keys are P-256 (fast to make; accepted by nats-server and rustls). Certificates are valid for
//! one day.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

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
        let ca = make_ca(d, "ca", "mpcium test CA")?;
        let server = issue(
            d,
            &ca,
            "server",
            "localhost",
            // clientAuth too: in a NATS cluster a server also dials its peers' routes with it.
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        )?;
        for name in clients {
            issue(d, &ca, &format!("client-{name}"), name, CLIENT_EXT)?;
        }
        let foreign_ca = make_ca(d, "foreign-ca", "unrelated CA")?;
        let foreign_client = issue(d, &foreign_ca, "foreign-client", "stranger", CLIENT_EXT)?;
        Ok(Self { ca_cert: ca.cert, server, foreign_client, dir })
    }

    /// The certificate issued to `name` by the test CA (it must be one of the names given to
    /// [`TestPki::generate`]).
    pub fn client(&self, name: &str) -> CertFiles {
        CertFiles {
            cert: self.dir.path().join(format!("client-{name}-cert.pem")),
            key: self.dir.path().join(format!("client-{name}-key.pem")),
        }
    }

    /// The directory holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

const CLIENT_EXT: &str = "extendedKeyUsage=clientAuth\n";

fn make_ca(dir: &Path, stem: &str, cn: &str) -> Result<CertFiles, HarnessError> {
    let files = files(dir, stem);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        &format!("/CN={cn}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        path_str(&files.key)?,
        "-out",
        path_str(&files.cert)?,
    ])?;
    Ok(files)
}

fn issue(
    dir: &Path,
    ca: &CertFiles,
    stem: &str,
    cn: &str,
    extensions: &str,
) -> Result<CertFiles, HarnessError> {
    let files = files(dir, stem);
    let csr = dir.join(format!("{stem}.csr"));
    let ext = dir.join(format!("{stem}.ext"));
    std::fs::write(
        &ext,
        format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{extensions}"),
    )?;
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &format!("/CN={cn}"),
        "-keyout",
        path_str(&files.key)?,
        "-out",
        path_str(&csr)?,
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        path_str(&csr)?,
        "-CA",
        path_str(&ca.cert)?,
        "-CAkey",
        path_str(&ca.key)?,
        "-set_serial",
        &format!("{}", serial()),
        "-extfile",
        path_str(&ext)?,
        "-out",
        path_str(&files.cert)?,
    ])?;
    Ok(files)
}

fn files(dir: &Path, stem: &str) -> CertFiles {
    CertFiles { cert: dir.join(format!("{stem}-cert.pem")), key: dir.join(format!("{stem}-key.pem")) }
}

/// A serial number distinct between the certificates of one PKI.
fn serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn path_str(p: &Path) -> Result<&str, HarnessError> {
    p.to_str().ok_or_else(|| HarnessError::Io(io::Error::other(format!("non-UTF-8 path {}", p.display()))))
}

fn openssl(args: &[&str]) -> Result<(), HarnessError> {
    let out = Command::new("openssl").args(args).output().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => HarnessError::OpensslMissing,
        _ => HarnessError::Io(e),
    })?;
    if !out.status.success() {
        return Err(HarnessError::Io(io::Error::other(format!(
            "openssl {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        ))));
    }
    Ok(())
}
