//! Wallets imported from the original mpcium. `mpcium-cli migrate import` stages each node's
//! tss-lib share in its store (checked against the key's public data); a reshare request the
//! client signs then converts the wallet onto this cluster, like any reshare: the committee and
//! threshold are the signed ones, every participant checks the announcement itself. What differs
//! is the old key: its holders are the imported ones, dealing from their tss-lib x-coordinates
//! ([`mpcium_tss::legacy`]), and every member reads its public data from **its own staged
//! share**, never from the registry (which has no key info for the wallet until the conversion
//! writes one, signed by every new holder, at the imported version + 1). A member without a staged
//! share of the wallet therefore cannot take part: a conversion moves the key among the imported
//! holders; a later reshare can add others.
//!
//! A staged share never signs. It is deleted once this node sees key info of a newer version
//! that every holder signed: when the conversion's key info is written, or at the next start
//! (the key-info watch: [`Service::retire_import_on`]).

use std::collections::BTreeMap;

use mpcium_api::ErrorCode;
use mpcium_store::LegacyShareRecord;
use mpcium_tss::KeyType;
use mpcium_tss::curve::{Curve, Ed25519, Secp256k1};
use mpcium_tss::legacy::{CheckedLegacyShare, LegacyShare};
use mpcium_tss::reshare::OldKey;

use super::check::old_key_digest;
use super::{Failure, Service, curve_name, hex, hex_vec, old_key_from_info, old_key_hex, share_kind};
use crate::registry::KeyInfo;

/// Where a reshare's old key comes from.
pub(super) enum OldKeySource {
    /// Key info in the registry, signed by every holder: a key of this cluster.
    Registry,
    /// This node's staged import: the holders' x-coordinates by old id (curve scalar, hex).
    Imported { points: BTreeMap<u16, String> },
}

/// The old key of a reshare: its key info (from the registry, or made from the staged import)
/// and where it came from.
pub(super) struct ReshareBase {
    pub info: KeyInfo,
    pub source: OldKeySource,
}

impl ReshareBase {
    /// The digest every member of the run must name for the old key: the key info's public data,
    /// and for an imported key its holders' x-coordinates too.
    pub fn old_key_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = old_key_digest(self.info.threshold, &self.info.public_key, &self.info.public_shares);
        match &self.source {
            OldKeySource::Registry => digest,
            OldKeySource::Imported { points } => {
                let mut h = Sha256::new();
                h.update(b"mpcium-rs/imported-old-key/v1");
                h.update(digest.as_bytes());
                for (id, x) in points {
                    h.update(id.to_be_bytes());
                    h.update(x.to_ascii_lowercase().as_bytes());
                }
                hex::encode(h.finalize())
            }
        }
    }

    /// The old key in the form resharing takes.
    pub fn old_key<C: Curve>(&self) -> Result<OldKey<C>, Failure> {
        let mut old = old_key_from_info::<C>(&self.info)?;
        if let OldKeySource::Imported { points } = &self.source {
            for (id, x) in points {
                let x = hex_vec(x).and_then(|b| C::scalar_from_bytes(&b)).ok_or_else(|| {
                    Failure::new(ErrorCode::DataCorruption, "staged import holds an invalid x-coordinate")
                })?;
                old.evaluation_points.insert(*id, x);
            }
        }
        Ok(old)
    }

    /// Whether the old key is a staged import.
    pub fn imported(&self) -> bool {
        matches!(self.source, OldKeySource::Imported { .. })
    }
}

fn corrupt(e: impl std::fmt::Display) -> Failure {
    Failure::new(ErrorCode::DataCorruption, format!("staged import: {e}"))
}

/// The checked share and key info of a staged import of one curve.
fn imported_base<C: Curve>(version: u32, record: &LegacyShareRecord) -> Result<ReshareBase, Failure> {
    let share = checked_share::<C>(record)?;
    let old = share.old_key();
    let (public_key, public_shares) = old_key_hex(&old);
    let points = old.evaluation_points.iter().map(|(id, x)| (*id, hex(&C::scalar_to_bytes(x)))).collect();
    Ok(ReshareBase {
        info: KeyInfo {
            participant_peer_ids: record.holders.clone(),
            threshold: u32::from(share.threshold()),
            version,
            public_key,
            public_shares,
            signatures: BTreeMap::new(),
            request: String::new(),
        },
        source: OldKeySource::Imported { points },
    })
}

/// Decode and check a staged share; its holders must be listed sorted and unique (the old ids of
/// the run are positions in the sorted list of holders, as for our own keys).
fn checked_share<C: Curve>(record: &LegacyShareRecord) -> Result<CheckedLegacyShare<C>, Failure> {
    if !record.holders.windows(2).all(|w| w[0] < w[1]) {
        return Err(corrupt("holders are not listed sorted and unique"));
    }
    let share = LegacyShare::<C>::from_bytes(&record.share).map_err(corrupt)?.check().map_err(corrupt)?;
    if share.old_key().public_shares.len() != record.holders.len() {
        return Err(corrupt("holder list and share disagree on the number of holders"));
    }
    Ok(share)
}

impl Service {
    /// The old key of a reshare of `wallet`'s `kind` key: the registry's key info when there is
    /// one (checked), otherwise this node's staged import of it.
    pub(super) async fn load_reshare_base(
        &self,
        kind: KeyType,
        wallet: &str,
    ) -> Result<ReshareBase, Failure> {
        match self.load_keyinfo(kind, wallet).await {
            Ok(info) => Ok(ReshareBase { info, source: OldKeySource::Registry }),
            Err(f) if f.code == ErrorCode::KeyNotFound => self.imported_base(kind, wallet)?.ok_or(f),
            Err(f) => Err(f),
        }
    }

    fn imported_base(&self, kind: KeyType, wallet: &str) -> Result<Option<ReshareBase>, Failure> {
        let Some((version, record)) = self
            .store
            .legacy_share(share_kind(kind), wallet)
            .map_err(Failure::because(ErrorCode::StorageRead))?
        else {
            return Ok(None);
        };
        match kind {
            KeyType::Secp256k1 => imported_base::<Secp256k1>(version, &record),
            KeyType::Ed25519 => imported_base::<Ed25519>(version, &record),
            // The original has no Taproot keys, so `migrate import` never stages one.
            KeyType::Taproot => {
                Err(Failure::new(ErrorCode::KeyDecoding, "a staged taproot import cannot exist"))
            }
        }
        .map(Some)
    }

    /// This node's staged share of `wallet`'s `kind` key, checked, to deal from.
    pub(super) fn imported_share<C: Curve>(&self, wallet: &str) -> Result<CheckedLegacyShare<C>, Failure> {
        let kind = share_kind(C::KEY_TYPE);
        let (_, record) =
            self.store.legacy_share(kind, wallet).map_err(Failure::because(ErrorCode::KeyLoad))?.ok_or_else(
                || Failure::new(ErrorCode::KeyNotFound, "no staged import of this wallet on this node"),
            )?;
        checked_share::<C>(&record)
    }

    /// Whether this node holds a staged import of either of `wallet`'s keys.
    pub(super) fn has_import(&self, wallet: &str) -> Result<bool, Failure> {
        for kind in [KeyType::Secp256k1, KeyType::Ed25519] {
            if self
                .store
                .legacy_share(share_kind(kind), wallet)
                .map_err(Failure::because(ErrorCode::StorageRead))?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// For every key info this node sees written (`retire_when_left_out`'s watch, which replays
    /// the bucket at start): a conversion's key info carries the client's signed reshare request;
    /// if this node staged that wallet's key, check the key info (every holder signed it, not
    /// older than a held share) and retire the staged share. Only here: the signing path's key
    /// info checks do not read the store for staged imports.
    pub(super) fn retire_import_on(&self, key: &str, info: &KeyInfo) {
        use base64::Engine as _;
        if info.request.is_empty() {
            return;
        }
        let Ok(body) = base64::engine::general_purpose::STANDARD.decode(&info.request) else { return };
        let Ok(req) = self.verify_reshare(&body) else { return };
        let Ok(kind) = super::key_type_of(&req.key_type) else { return };
        let wallet = req.wallet_id.as_str();
        if crate::registry::keyinfo_key(curve_name(kind), wallet) != key
            || !matches!(self.store.legacy_share(share_kind(kind), wallet), Ok(Some(_)))
        {
            return;
        }
        match self.check_keyinfo(kind, wallet, info.clone()) {
            Ok(info) => self.retire_converted_import(kind, wallet, info.version),
            Err(f) => {
                tracing::debug!(wallet, reason = %f.reason, "key info of an imported wallet not believed yet")
            }
        }
    }

    /// Drop the staged import of `wallet`'s `kind` key once checked key info of a newer version
    /// exists (the conversion is complete: every new holder signed it).
    pub(super) fn retire_converted_import(&self, kind: KeyType, wallet: &str, version: u32) {
        let store_kind = share_kind(kind);
        if let Ok(Some((staged, _))) = self.store.legacy_share(store_kind, wallet)
            && staged < version
        {
            match self.store.delete_legacy_share(store_kind, wallet, staged) {
                Ok(_) => tracing::info!(
                    wallet,
                    curve = curve_name(kind),
                    staged,
                    version,
                    "imported share retired: the wallet is converted"
                ),
                Err(e) => tracing::warn!(wallet, error = %e, "could not delete a converted imported share"),
            }
        }
    }
}
