//! Running the Go exporter (`mpcium-legacy-export`, `interop/legacy/`) and opening what it hands
//! over. The original's Badger store and backups are Badger's own formats, so the real Badger
//! module reads them; the shares reach us over a pipe, sealed (ChaCha20-Poly1305) under a key
//! this process makes fresh for the run and passes on the exporter's stdin, with the original's
//! password: no secret on a command line or on disk, and only the exporter we started can
//! produce output that opens.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

/// The first line of the exporter's output, also the AEAD's associated data.
const HEADER: &[u8] = b"MPCIUM-LEGACY-EXPORT-1\n";

/// What the exporter reads.
pub enum Source<'a> {
    /// An original node's Badger directory.
    Badger(&'a Path),
    /// A directory of the original's `backup-*.enc` files.
    Backups(&'a Path),
}

/// Where the exporter binary is: `--exporter`, else next to this binary, else on PATH.
pub fn locate(given: Option<&Path>) -> PathBuf {
    const NAME: &str = "mpcium-legacy-export";
    if let Some(p) = given {
        return p.to_path_buf();
    }
    if let Some(beside) = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join(NAME)))
        && beside.is_file()
    {
        return beside;
    }
    PathBuf::from(NAME)
}

/// Run the exporter on `source` and return the plaintext JSON it handed over.
pub fn export(
    exporter: &Path,
    source: Source<'_>,
    wallets: &[String],
    legacy_password: &str,
) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut()).map_err(|e| anyhow::anyhow!("no randomness for the handoff key: {e}"))?;
    let mut cmd = Command::new(exporter);
    match source {
        Source::Badger(dir) => cmd.arg("--db").arg(dir),
        Source::Backups(dir) => cmd.arg("--backup-dir").arg(dir),
    };
    for w in wallets {
        cmd.arg("--wallet").arg(w);
    }
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| {
            anyhow::anyhow!(
                "cannot run the exporter {}: {e} (build it: interop/legacy/README.md)",
                exporter.display()
            )
        })?;
    {
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("exporter stdin"))?;
        let mut secrets = Zeroizing::new(hex::encode(&key[..]));
        secrets.push('\n');
        secrets.push_str(legacy_password);
        secrets.push('\n');
        stdin.write_all(secrets.as_bytes())?;
    }
    let mut sealed = Vec::new();
    child.stdout.take().ok_or_else(|| anyhow::anyhow!("exporter stdout"))?.read_to_end(&mut sealed)?;
    let mut stderr = String::new();
    child.stderr.take().ok_or_else(|| anyhow::anyhow!("exporter stderr"))?.read_to_string(&mut stderr)?;
    let status = child.wait()?;
    let said = stderr.trim();
    match status.code() {
        Some(0) => {}
        Some(3) => {
            anyhow::bail!("the original's store could not be decrypted: wrong password? (exporter: {said})")
        }
        Some(4) => anyhow::bail!("the original's data is tampered with or malformed (exporter: {said})"),
        Some(5) => anyhow::bail!("no wallet shares found in the original's data (exporter: {said})"),
        _ => anyhow::bail!("the exporter failed ({status}): {said}"),
    }
    open(&key, &sealed)
}

/// Open the exporter's sealed output.
fn open(key: &[u8; 32], sealed: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let body = sealed
        .strip_prefix(HEADER)
        .ok_or_else(|| anyhow::anyhow!("the exporter's output does not start with its header"))?;
    if body.len() < 12 + 16 {
        anyhow::bail!("the exporter's output is truncated");
    }
    let (nonce, ciphertext) = body.split_at(12);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let plain = cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: HEADER })
        .map_err(|_| anyhow::anyhow!("the exporter's output does not authenticate under this run's key"))?;
    Ok(Zeroizing::new(plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(key: &[u8; 32], plain: &[u8]) -> Vec<u8> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
        let nonce = [9u8; 12];
        let mut out = HEADER.to_vec();
        out.extend_from_slice(&nonce);
        out.extend(cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: HEADER }).unwrap());
        out
    }

    #[test]
    fn only_output_sealed_under_this_runs_key_opens() {
        let key = [1u8; 32];
        let sealed = seal(&key, b"{\"shares\":[]}");
        assert_eq!(&*open(&key, &sealed).unwrap(), b"{\"shares\":[]}");
        assert!(open(&[2u8; 32], &sealed).is_err(), "another key");
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open(&key, &flipped).is_err(), "a flipped bit");
        assert!(open(&key, &sealed[1..]).is_err(), "no header");
    }
}
