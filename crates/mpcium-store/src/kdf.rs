//! Password-based key derivation (Argon2id) and its parameter policy.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

/// Length of every salt this crate generates.
pub const SALT_LEN: usize = 16;

/// A 256-bit symmetric key that is wiped when dropped.
pub type SecretKey = Zeroizing<[u8; 32]>;

/// Argon2id cost parameters, stored beside their salt in the store header and in every backup's
/// metadata so that a file can always be opened with the parameters it was written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub m_kib: u32,
    /// Number of passes.
    pub t: u32,
    /// Degree of parallelism (lanes).
    pub p: u32,
}

impl KdfParams {
    /// Production parameters: m = 64 MiB, t = 3, p = 4 (the Go `pkg/encryption/kdf.go` values).
    pub const PRODUCTION: KdfParams = KdfParams { m_kib: 64 * 1024, t: 3, p: 4 };

    /// Cheap parameters for tests only (m = 64 KiB, t = 1, p = 1): a derivation takes well under
    /// a millisecond. Accepted only under [`KdfPolicy::InsecureTestOnly`].
    pub const INSECURE_TEST: KdfParams = KdfParams { m_kib: 64, t: 1, p: 1 };

    /// The weakest parameters accepted on production paths (the OWASP Argon2id minimum,
    /// m = 19 MiB, t = 2, p = 1). Anything below is refused unless the caller opted into
    /// [`KdfPolicy::InsecureTestOnly`].
    pub const PRODUCTION_FLOOR: KdfParams = KdfParams { m_kib: 19 * 1024, t: 2, p: 1 };

    /// Upper bounds protecting against a hostile header asking for absurd work.
    const MAX_M_KIB: u32 = 4 * 1024 * 1024;
    const MAX_T: u32 = 64;
    const MAX_P: u32 = 64;

    /// Checks the parameters are well-formed and, under [`KdfPolicy::Production`], not below
    /// [`Self::PRODUCTION_FLOOR`].
    pub fn check(&self, policy: KdfPolicy) -> Result<()> {
        if self.t == 0 || self.p == 0 || self.m_kib < 8 * self.p {
            return Err(StoreError::InvalidKdf(format!("{self} (t and p must be >= 1 and m >= 8*p KiB)")));
        }
        if self.m_kib > Self::MAX_M_KIB || self.t > Self::MAX_T || self.p > Self::MAX_P {
            return Err(StoreError::InvalidKdf(format!(
                "{self} exceeds the maximum m={} KiB, t={}, p={}",
                Self::MAX_M_KIB,
                Self::MAX_T,
                Self::MAX_P
            )));
        }
        if policy == KdfPolicy::Production {
            let floor = Self::PRODUCTION_FLOOR;
            if self.m_kib < floor.m_kib || self.t < floor.t || self.p < floor.p {
                return Err(StoreError::WeakKdf { found: self.to_string(), floor: floor.to_string() });
            }
        }
        Ok(())
    }

    /// Derives a 32-byte key from `password` and `salt` with Argon2id.
    pub fn derive(&self, password: &[u8], salt: &[u8]) -> Result<SecretKey> {
        let params = argon2::Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|e| StoreError::InvalidKdf(format!("{self}: {e}")))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(password, salt, out.as_mut())
            .map_err(|e| StoreError::InvalidKdf(format!("{self}: {e}")))?;
        Ok(out)
    }
}

impl std::fmt::Display for KdfParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "argon2id(m={} KiB, t={}, p={})", self.m_kib, self.t, self.p)
    }
}

/// Whether parameters below [`KdfParams::PRODUCTION_FLOOR`] are acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KdfPolicy {
    /// Refuse weak parameters (every binary uses this).
    Production,
    /// Accept weak parameters such as [`KdfParams::INSECURE_TEST`]; for tests and benchmarks only.
    InsecureTestOnly,
}

/// The Argon2id record kept in a store header or backup metadata: algorithm, salt, costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfRecord {
    /// Always `"argon2id"`.
    pub alg: String,
    /// Hex-encoded salt.
    pub salt: String,
    /// Cost parameters.
    #[serde(flatten)]
    pub params: KdfParams,
}

impl KdfRecord {
    /// A record with a fresh random salt.
    pub fn fresh(params: KdfParams) -> Result<Self> {
        let salt: [u8; SALT_LEN] = crate::crypto::random_array()?;
        Ok(KdfRecord { alg: "argon2id".to_owned(), salt: hex::encode(salt), params })
    }

    /// Validates the record against `policy` and derives the key for `password`.
    pub fn derive(&self, password: &[u8], policy: KdfPolicy) -> Result<SecretKey> {
        if self.alg != "argon2id" {
            return Err(StoreError::InvalidKdf(format!("unknown algorithm {:?}", self.alg)));
        }
        self.params.check(policy)?;
        let salt =
            hex::decode(&self.salt).map_err(|_| StoreError::InvalidKdf("salt is not hex".to_owned()))?;
        if salt.len() < 8 {
            return Err(StoreError::InvalidKdf("salt shorter than 8 bytes".to_owned()));
        }
        self.params.derive(password, &salt)
    }
}

/// Parameters used when this crate creates something new (a store, a new wrapping key, a backup
/// key), together with the policy applied when opening existing material.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Argon2id parameters for newly derived keys.
    pub kdf: KdfParams,
    /// Whether weak parameters are accepted (new and existing material alike).
    pub policy: KdfPolicy,
}

impl StoreOptions {
    /// Production: [`KdfParams::PRODUCTION`] under [`KdfPolicy::Production`].
    pub const fn production() -> Self {
        StoreOptions { kdf: KdfParams::PRODUCTION, policy: KdfPolicy::Production }
    }

    /// Tests and benchmarks: [`KdfParams::INSECURE_TEST`], weak parameters accepted.
    pub const fn insecure_for_tests() -> Self {
        StoreOptions { kdf: KdfParams::INSECURE_TEST, policy: KdfPolicy::InsecureTestOnly }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self::production()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_floor_is_enforced() {
        assert!(KdfParams::PRODUCTION.check(KdfPolicy::Production).is_ok());
        assert!(matches!(
            KdfParams::INSECURE_TEST.check(KdfPolicy::Production),
            Err(StoreError::WeakKdf { .. })
        ));
        assert!(KdfParams::INSECURE_TEST.check(KdfPolicy::InsecureTestOnly).is_ok());
        let absurd = KdfParams { m_kib: u32::MAX, t: 3, p: 4 };
        assert!(matches!(absurd.check(KdfPolicy::InsecureTestOnly), Err(StoreError::InvalidKdf(_))));
    }

    #[test]
    fn derivation_depends_on_password_and_salt() {
        let p = KdfParams::INSECURE_TEST;
        let a = p.derive(b"password-one", b"salt-salt-salt-1").unwrap();
        let b = p.derive(b"password-two", b"salt-salt-salt-1").unwrap();
        let c = p.derive(b"password-one", b"salt-salt-salt-2").unwrap();
        let a2 = p.derive(b"password-one", b"salt-salt-salt-1").unwrap();
        assert_eq!(*a, *a2);
        assert_ne!(*a, *b);
        assert_ne!(*a, *c);
    }
}
