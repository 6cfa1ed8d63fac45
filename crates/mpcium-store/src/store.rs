//! The encrypted store: header, records, change log, typed namespaces.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto;
use crate::error::{Result, StoreError};
use crate::fsutil;
use crate::kdf::{KdfRecord, SecretKey, StoreOptions};
use crate::keys::{MAX_VALUE_LEN, RecordKey, presignature_prefix};

/// `header` → JSON [`Header`].
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// key name → `0x01 || nonce24 || XChaCha20-Poly1305(DEK, value, aad)`.
pub(crate) const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");

/// Insert a sealed record unless `key` holds one already (create-only writes: shares,
/// presignatures, replay records); whether it was inserted. The caller aborts on `false`.
pub(crate) fn insert_new(txn: &WriteTransaction, key: &RecordKey, sealed: &[u8]) -> Result<bool> {
    let mut records = txn.open_table(RECORDS)?;
    if records.get(key.as_str())?.is_some() {
        return Ok(false);
    }
    records.insert(key.as_str(), sealed)?;
    Ok(true)
}
/// sequence → key name, appended in the same transaction as the write it describes.
pub(crate) const CHANGES: TableDefinition<u64, &str> = TableDefinition::new("changes");

const HEADER_KEY: &str = "header";
const FORMAT_VERSION: u32 = 1;
const RECORD_VERSION: u8 = 1;
const DEK_AAD: &[u8] = b"mpcium-store-dek-v1";
const BACKUP_KEY_AAD: &[u8] = b"mpcium-store-backup-key-v1";
const RECORD_AAD_PREFIX: &[u8] = b"mpcium-record-v1\0";

/// Shortest password accepted when a store is created or its password changed: any non-empty
/// password, as the original accepts and as config validation checks (`badger_password`).
/// Argon2id (64 MiB, 3 passes) makes guessing expensive whatever the length; a long random
/// password is still what an operator should use.
pub const MIN_PASSWORD_LEN: usize = 1;

/// The store header (table `meta`, key `header`), serialised as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Header {
    pub format: u32,
    /// Argon2id salt and costs of the key-encryption key.
    pub kdf: KdfRecord,
    /// Hex of `nonce || XChaCha20-Poly1305(KEK, DEK, aad = DEK_AAD)`; its tag is the key check.
    pub wrapped_dek: String,
    /// Argon2id salt and costs of the backup key (derived from the same password).
    pub backup_kdf: KdfRecord,
    /// Hex of `nonce || XChaCha20-Poly1305(KEK, backup key, aad = BACKUP_KEY_AAD)`, so opening
    /// the store costs one Argon2 derivation, not two.
    pub wrapped_backup_key: String,
}

/// The key that encrypts backup files, with what a recovery needs to re-derive it.
pub(crate) struct BackupKey {
    pub key: SecretKey,
    pub kdf: KdfRecord,
}

impl BackupKey {
    pub(crate) fn id(&self) -> String {
        key_id(&self.key)
    }
}

/// Public identifier of a backup key: first 8 bytes of SHA-256("mpcium-backup-key-id" || key).
pub(crate) fn key_id(key: &[u8; 32]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"mpcium-backup-key-id");
    h.update(key);
    hex::encode(&h.finalize()[..8])
}

/// The node's encrypted key-value store. Thread-safe: share it with `Arc`.
pub struct Store {
    db: Database,
    path: PathBuf,
    dek: SecretKey,
    backup_key: BackupKey,
    /// Serialises backups of this store (two concurrent runs would claim the same version).
    backup_lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("keys", &"<redacted>").finish()
    }
}

fn check_new_password(password: &[u8]) -> Result<()> {
    if password.len() < MIN_PASSWORD_LEN {
        return Err(StoreError::PasswordTooShort { len: password.len(), min: MIN_PASSWORD_LEN });
    }
    Ok(())
}

pub(crate) fn record_aad(key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(RECORD_AAD_PREFIX.len() + key.len());
    aad.extend_from_slice(RECORD_AAD_PREFIX);
    aad.extend_from_slice(key.as_bytes());
    aad
}

fn unwrap_key(kek: &[u8; 32], aad: &[u8], wrapped_hex: &str) -> Result<SecretKey> {
    let wrapped = hex::decode(wrapped_hex).map_err(|_| StoreError::WrongPassword)?;
    let plain = crypto::open(kek, aad, &wrapped).ok_or(StoreError::WrongPassword)?;
    let arr: [u8; 32] = plain.as_slice().try_into().map_err(|_| StoreError::WrongPassword)?;
    Ok(Zeroizing::new(arr))
}

/// Builds a header wrapping `dek` under `password` (fresh salts, fresh backup key).
fn new_header(password: &[u8], dek: &[u8; 32], options: &StoreOptions) -> Result<(Header, BackupKey)> {
    options.kdf.check(options.policy)?;
    let kdf = KdfRecord::fresh(options.kdf)?;
    let kek = kdf.derive(password, options.policy)?;
    let backup_kdf = KdfRecord::fresh(options.kdf)?;
    let backup_key = backup_kdf.derive(password, options.policy)?;
    let header = Header {
        format: FORMAT_VERSION,
        kdf,
        wrapped_dek: hex::encode(crypto::seal(&kek, DEK_AAD, dek)?),
        backup_kdf: backup_kdf.clone(),
        wrapped_backup_key: hex::encode(crypto::seal(&kek, BACKUP_KEY_AAD, &backup_key[..])?),
    };
    Ok((header, BackupKey { key: backup_key, kdf: backup_kdf }))
}

fn map_open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path: path.to_owned() },
        other => StoreError::Database(other.into()),
    }
}

impl Store {
    /// Creates a new store at `path` (a file, mode 0600; a missing directory is created with
    /// mode 0700, an existing one is left as it is). Fails if the file exists.
    pub fn create(path: impl AsRef<Path>, password: &[u8], options: &StoreOptions) -> Result<Self> {
        let dek = crypto::random_key()?;
        Self::create_with_dek(path.as_ref(), password, dek, options)
    }

    pub(crate) fn create_with_dek(
        path: &Path,
        password: &[u8],
        dek: SecretKey,
        options: &StoreOptions,
    ) -> Result<Self> {
        check_new_password(password)?;
        let (header, backup_key) = new_header(password, &dek, options)?;
        mpcium_fs::create_private_dir_if_missing(&mpcium_fs::parent_dir(path))?;
        // Create the file ourselves so that it is 0600 from the first byte.
        drop(mpcium_fs::create_private_file(path)?);
        let db = Database::builder().create(path).map_err(|e| map_open_error(path, e))?;
        let store = Store { db, path: path.to_owned(), dek, backup_key, backup_lock: Default::default() };
        let txn = store.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let json = serde_json::to_vec(&header).map_err(|_| StoreError::Crypto("header encoding"))?;
            meta.insert(HEADER_KEY, json.as_slice())?;
            txn.open_table(RECORDS)?;
            txn.open_table(CHANGES)?;
        }
        txn.commit()?;
        mpcium_fs::sync_parent(path)?;
        tracing::info!(path = %path.display(), "created encrypted store");
        Ok(store)
    }

    /// Opens an existing store. A wrong password gives [`StoreError::WrongPassword`] before any
    /// record is read.
    pub fn open(path: impl AsRef<Path>, password: &[u8], options: &StoreOptions) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(StoreError::NotFound { path: path.to_owned() });
        }
        let db = Database::builder().open(path).map_err(|e| map_open_error(path, e))?;
        let header = read_header(&db, path)?;
        let kek = header.kdf.derive(password, options.policy)?;
        let dek = unwrap_key(&kek, DEK_AAD, &header.wrapped_dek)?;
        let backup = unwrap_key(&kek, BACKUP_KEY_AAD, &header.wrapped_backup_key)?;
        Ok(Store {
            db,
            path: path.to_owned(),
            dek,
            backup_key: BackupKey { key: backup, kdf: header.backup_kdf },
            backup_lock: Default::default(),
        })
    }

    /// Opens the store at `path`, creating it if the file does not exist.
    pub fn open_or_create(path: impl AsRef<Path>, password: &[u8], options: &StoreOptions) -> Result<Self> {
        let path = path.as_ref();
        if path.exists() {
            Self::open(path, password, options)
        } else {
            Self::create(path, password, options)
        }
    }

    /// Path of the store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn backup_key(&self) -> &BackupKey {
        &self.backup_key
    }

    pub(crate) fn lock_backups(&self) -> std::sync::MutexGuard<'_, ()> {
        self.backup_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn dek(&self) -> &SecretKey {
        &self.dek
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// A write transaction that is durable when `commit` returns (fsync, two-phase commit).
    pub(crate) fn begin_write(&self) -> Result<WriteTransaction> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.set_two_phase_commit(true);
        Ok(txn)
    }

    pub(crate) fn seal_value(&self, key: &RecordKey, value: &[u8]) -> Result<Vec<u8>> {
        seal_record(&self.dek, key.as_str(), value)
    }

    pub(crate) fn open_value(&self, key: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        open_record(&self.dek, key, sealed)
    }

    /// Stores `value` under `key` atomically (one durable transaction with its change-log entry).
    pub fn put(&self, key: &RecordKey, value: &[u8]) -> Result<()> {
        check_value(key, value)?;
        let sealed = self.seal_value(key, value)?;
        let txn = self.begin_write()?;
        {
            let mut records = txn.open_table(RECORDS)?;
            records.insert(key.as_str(), sealed.as_slice())?;
        }
        if !key.is_ephemeral() {
            append_change(&txn, key)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Stores several values in one durable transaction: all of them or none (e.g. a wallet's
    /// ECDSA and EdDSA shares together).
    pub fn put_many(&self, entries: &[(RecordKey, &[u8])]) -> Result<()> {
        let mut sealed = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            check_value(key, value)?;
            sealed.push(self.seal_value(key, value)?);
        }
        let txn = self.begin_write()?;
        {
            let mut records = txn.open_table(RECORDS)?;
            for ((key, _), sealed) in entries.iter().zip(&sealed) {
                records.insert(key.as_str(), sealed.as_slice())?;
            }
        }
        for (key, _) in entries {
            if !key.is_ephemeral() {
                append_change(&txn, key)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Reads and decrypts the value under `key`.
    pub fn get(&self, key: &RecordKey) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        match records.get(key.as_str())? {
            Some(v) => Ok(Some(self.open_value(key.as_str(), v.value())?)),
            None => Ok(None),
        }
    }

    /// Deletes `key`; returns whether it existed.
    pub fn delete(&self, key: &RecordKey) -> Result<bool> {
        let txn = self.begin_write()?;
        let existed = {
            let mut records = txn.open_table(RECORDS)?;
            records.remove(key.as_str())?.is_some()
        };
        if existed && !key.is_ephemeral() {
            append_change(&txn, key)?;
        }
        txn.commit()?;
        Ok(existed)
    }

    /// Key names starting with `prefix`, in order.
    pub fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let txn = self.db.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        let mut out = Vec::new();
        for entry in records.range(prefix..)? {
            let (k, _) = entry?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push(k.value().to_owned());
        }
        Ok(out)
    }

    /// Stores engine setup data (`setup:<name>`), e.g. ECDSA pre-parameters.
    pub fn put_setup(&self, name: &str, data: &[u8]) -> Result<()> {
        self.put(&RecordKey::setup(name)?, data)
    }

    /// Reads engine setup data.
    pub fn get_setup(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        self.get(&RecordKey::setup(name)?)
    }

    /// Stores a new presignature, create-only: an id that exists gives
    /// [`StoreError::PresignatureExists`] and the stored one is left as it is. Presignatures are
    /// never backed up (see [`RecordKey::is_ephemeral`]).
    pub fn put_presignature(&self, wallet_id: &str, presig_id: &str, data: &[u8]) -> Result<()> {
        let key = RecordKey::presignature(wallet_id, presig_id)?;
        check_value(&key, data)?;
        let sealed = self.seal_value(&key, data)?;
        let txn = self.begin_write()?;
        if !insert_new(&txn, &key, &sealed)? {
            txn.abort()?;
            return Err(StoreError::PresignatureExists {
                wallet_id: wallet_id.to_owned(),
                presig_id: presig_id.to_owned(),
            });
        }
        txn.commit()?;
        Ok(())
    }

    /// Takes a presignature: reads and deletes it in one durable transaction, so it can be
    /// handed out at most once, even across crashes. `None` if absent (or already taken).
    pub fn take_presignature(&self, wallet_id: &str, presig_id: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let key = RecordKey::presignature(wallet_id, presig_id)?;
        let txn = self.begin_write()?;
        let sealed = {
            let mut records = txn.open_table(RECORDS)?;
            records.remove(key.as_str())?.map(|v| Zeroizing::new(v.value().to_vec()))
        };
        let Some(sealed) = sealed else {
            txn.abort()?;
            return Ok(None);
        };
        // Decrypt before committing: a corrupt record is reported and left in place.
        let value = self.open_value(key.as_str(), &sealed)?;
        txn.commit()?;
        Ok(Some(value))
    }

    /// Takes any one presignature of `wallet_id` (the lowest id), atomically as
    /// [`Self::take_presignature`]; returns its id and value.
    pub fn take_any_presignature(&self, wallet_id: &str) -> Result<Option<(String, Zeroizing<Vec<u8>>)>> {
        let prefix = presignature_prefix(wallet_id)?;
        let txn = self.begin_write()?;
        let found = {
            let mut records = txn.open_table(RECORDS)?;
            let first = match records.range(prefix.as_str()..)?.next() {
                Some(entry) => {
                    let (k, _) = entry?;
                    let k = k.value().to_owned();
                    k.starts_with(&prefix).then_some(k)
                }
                None => None,
            };
            match first {
                Some(k) => {
                    let sealed = records.remove(k.as_str())?.map(|v| Zeroizing::new(v.value().to_vec()));
                    sealed.map(|s| (k, s))
                }
                None => None,
            }
        };
        let Some((key, sealed)) = found else {
            txn.abort()?;
            return Ok(None);
        };
        let value = self.open_value(&key, &sealed)?;
        txn.commit()?;
        let id = key[prefix.len()..].to_owned();
        Ok(Some((id, value)))
    }

    /// Number of presignatures stored for `wallet_id`.
    pub fn count_presignatures(&self, wallet_id: &str) -> Result<usize> {
        Ok(self.keys_with_prefix(&presignature_prefix(wallet_id)?)?.len())
    }

    /// The ids of `wallet_id`'s presignatures that start with `id_prefix`, in ascending order.
    pub fn presignature_ids(&self, wallet_id: &str, id_prefix: &str) -> Result<Vec<String>> {
        let prefix = presignature_prefix(wallet_id)?;
        let keys = self.keys_with_prefix(&format!("{prefix}{id_prefix}"))?;
        Ok(keys.into_iter().map(|k| k[prefix.len()..].to_owned()).collect())
    }

    /// Deletes a presignature without reading it (durably); returns whether it was there.
    pub fn delete_presignature(&self, wallet_id: &str, presig_id: &str) -> Result<bool> {
        let key = RecordKey::presignature(wallet_id, presig_id)?;
        let txn = self.begin_write()?;
        let existed = {
            let mut records = txn.open_table(RECORDS)?;
            records.remove(key.as_str())?.is_some()
        };
        txn.commit()?;
        Ok(existed)
    }

    /// Records request `(wallet_id, tx_id)` in the durable replay-protection journal.
    /// Insert-if-absent in one transaction: a request already recorded (also before a restart)
    /// gives [`StoreError::DuplicateRequest`].
    pub fn record_request(&self, wallet_id: &str, tx_id: &str) -> Result<()> {
        let key = RecordKey::replay(wallet_id, tx_id)?;
        let stamp = fsutil::UtcTime::now().rfc3339();
        let sealed = self.seal_value(&key, stamp.as_bytes())?;
        let txn = self.begin_write()?;
        if !insert_new(&txn, &key, &sealed)? {
            txn.abort()?;
            return Err(StoreError::DuplicateRequest {
                wallet_id: wallet_id.to_owned(),
                tx_id: tx_id.to_owned(),
            });
        }
        append_change(&txn, &key)?;
        txn.commit()?;
        Ok(())
    }

    /// Whether `(wallet_id, tx_id)` is in the replay-protection journal.
    pub fn contains_request(&self, wallet_id: &str, tx_id: &str) -> Result<bool> {
        Ok(self.get(&RecordKey::replay(wallet_id, tx_id)?)?.is_some())
    }

    /// Sequence number of the newest change-log entry (0 when nothing was ever written).
    pub fn change_head(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        let changes = txn.open_table(CHANGES)?;
        Ok(changes.last()?.map(|(k, _)| k.value()).unwrap_or(0))
    }

    /// Changes the password by re-wrapping the data-encryption key (and a fresh backup key) in
    /// one durable transaction: either the old or the new password opens the store afterwards,
    /// never neither. Records are not touched. The next backup is a full one (new backup key).
    pub fn change_password(&mut self, new_password: &[u8], options: &StoreOptions) -> Result<()> {
        check_new_password(new_password)?;
        let (header, backup_key) = new_header(new_password, &self.dek, options)?;
        let json = serde_json::to_vec(&header).map_err(|_| StoreError::Crypto("header encoding"))?;
        let txn = self.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(HEADER_KEY, json.as_slice())?;
        }
        txn.commit()?;
        self.backup_key = backup_key;
        tracing::info!(path = %self.path.display(), "store password changed");
        Ok(())
    }
}

/// Appends `key` to the change log inside `txn`.
pub(crate) fn append_change(txn: &WriteTransaction, key: &RecordKey) -> Result<()> {
    let mut changes = txn.open_table(CHANGES)?;
    let next = changes.last()?.map(|(k, _)| k.value()).unwrap_or(0) + 1;
    changes.insert(next, key.as_str())?;
    Ok(())
}

pub(crate) fn check_value(key: &RecordKey, value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(StoreError::ValueTooLarge { key: key.to_string(), len: value.len(), max: MAX_VALUE_LEN });
    }
    Ok(())
}

pub(crate) fn seal_record(dek: &[u8; 32], key: &str, value: &[u8]) -> Result<Vec<u8>> {
    let body = crypto::seal(dek, &record_aad(key), value)?;
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&body);
    Ok(out)
}

pub(crate) fn open_record(dek: &[u8; 32], key: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let corrupt = || StoreError::Corrupt { key: key.to_owned() };
    match sealed.split_first() {
        Some((&RECORD_VERSION, body)) => crypto::open(dek, &record_aad(key), body).ok_or_else(corrupt),
        _ => Err(corrupt()),
    }
}

pub(crate) fn read_header(db: &Database, path: &Path) -> Result<Header> {
    let bad = |reason: String| StoreError::BadHeader { path: path.to_owned(), reason };
    let txn = db.begin_read()?;
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Err(bad("no header table".to_owned())),
        Err(e) => return Err(e.into()),
    };
    let raw = meta.get(HEADER_KEY)?.ok_or_else(|| bad("no header record".to_owned()))?;
    let header: Header =
        serde_json::from_slice(raw.value()).map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
    if header.format != FORMAT_VERSION {
        return Err(bad(format!("unsupported format version {}", header.format)));
    }
    Ok(header)
}
