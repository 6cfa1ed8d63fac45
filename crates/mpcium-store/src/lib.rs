//! # mpcium-store: the node's encrypted key-share store
//!
//! A single [redb](https://docs.rs/redb) file per node holding key shares, engine setup data,
//! presignatures and the replay-protection journal, every value sealed with application-level
//! envelope encryption; plus encrypted incremental backups, all-or-nothing recovery and
//! password rotation.
//!
//! ## Why redb
//! Pure Rust (a ~25 CPU-second build, no C++ toolchain), ACID with an fsync before `commit`
//! returns (`Durability::Immediate`, two-phase commit enabled here), one file, MVCC read
//! transactions that give backups a consistent snapshot, and a stable file format. Key shares
//! are small and written rarely, which suits a copy-on-write B-tree. No embedded store offers
//! usable encryption at rest or Badger-style incremental backup, so both live in this crate.
//!
//! ## On-disk format of the store
//! Three redb tables:
//! - `meta`: key `header` → JSON
//!   `{"format":1,"kdf":{"alg":"argon2id","salt":hex,"m_kib","t","p"},"wrapped_dek":hex,
//!   "backup_kdf":{…},"wrapped_backup_key":hex}`.
//!   The key-encryption key (KEK) is Argon2id(password, salt) with the stored costs (production
//!   m = 64 MiB, t = 3, p = 4). `wrapped_dek` = `nonce24 || XChaCha20-Poly1305(KEK, DEK,
//!   aad = "mpcium-store-dek-v1")`: its tag is the key check, so a wrong password is refused
//!   ([`StoreError::WrongPassword`]) before any record is read and no faster-than-Argon2 check
//!   value exists. The backup key (Argon2id of the same password with its own salt) is wrapped
//!   the same way so that opening costs one derivation.
//! - `records`: key name → `0x01 || nonce24 || XChaCha20-Poly1305(DEK, value,
//!   aad = "mpcium-record-v1\0" || key name)`. The key name in the associated data binds each
//!   value to its key: a value copied under another key fails with [`StoreError::Corrupt`].
//!   Key layout: see [`keys`] (`ecdsa:<walletID>_v<N>`, `eddsa:<walletID>_v<N>`, `taproot:…`, `setup:…`,
//!   `presig:…`, `keypool:…`, `replay:…`).
//! - `changes`: u64 sequence → key name, appended in the same write transaction as each put or
//!   delete (presignatures and pooled keys excepted: a restored one that was already used could
//!   be used again, and a reused presignature leaks the key). It drives incremental backups.
//!
//! Every write is one durable transaction: a share is either fully present or absent
//! (demonstrated by the SIGKILL crash test).
//!
//! ## Backup files
//! `backup-<node>-<YYYY-MM-DD_HH-MM-SS UTC>-<version>.enc`, mode 0600 in a 0700 directory,
//! written to a temporary file, fsynced and renamed; `latest.version` beside them holds
//! `{"version","since","updated_at","key_id"}`. Layout (details in [`backup`]):
//! magic `MPCIUM-RS-BACKUP` || u32 BE metadata length || metadata JSON (algorithm, Argon2id
//! salt and costs, nonce prefix, created_at, node, version, since / next_since, full, key id)
//! || sealed chunks of PUT / DEL frames, each authenticated with the whole header as
//! associated data plus its index and a last-chunk flag. The first backup (and the first after a
//! password change) is full; later ones hold the current state of every key changed in
//! `(since, next_since]`; nothing changed ⇒ no file. Recovery ([`recover`]) needs only the
//! password and the files; it checks the chain (`since` = previous `next_since`), builds the
//! new store under a temporary name and renames it into place only on success.

pub mod backup;
mod crypto;
pub mod error;
pub mod fsutil;
pub mod kdf;
pub mod keys;
mod legacy;
mod pooled;
pub mod rekey;
pub mod restore;
mod shares;
mod store;

pub use backup::{BackupConfig, BackupOutcome, BackupScheduler, run_backup_once};
pub use error::{Result, StoreError};
pub use kdf::{KdfParams, KdfPolicy, StoreOptions};
pub use keys::{MAX_KEY_LEN, MAX_VALUE_LEN, RecordKey, ShareKind};
pub use legacy::LegacyShareRecord;
pub use restore::{RecoveryReport, recover};
pub use shares::Ban;
pub use store::{MIN_PASSWORD_LEN, Store};
