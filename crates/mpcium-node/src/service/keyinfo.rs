//! Signed key info. Every node may write `mpc_keyinfo` (the original's permissions), so a key
//! info is only believed when **every holder it lists signed it** with its identity key: a key
//! info naming an honest node was made by that node. Holders sign the key info they computed
//! (keygen, reshare) and send the signature in their done report; the coordinator checks that
//! all report the same content, checks each signature and writes the record with all of them.
//! A reader also refuses a key info older than a share it holds (a rollback to a committee
//! that was signed once, but replaced).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signature;
use mpcium_api::ErrorCode;
use mpcium_tss::KeyType;
use serde::{Deserialize, Serialize};

use super::{Failure, Service, curve_name, share_kind};
use crate::registry::KeyInfo;

/// The first bytes of a key info statement: no other signature a node makes starts with them.
const DOMAIN: &[u8] = b"mpcium-keyinfo-v1";

/// A key info a holder computed, with its signature, as sent in a done report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedKeyInfo {
    /// `ecdsa` or `eddsa`.
    pub curve: String,
    /// The key info without signatures.
    #[serde(deserialize_with = "via_json_value")]
    pub info: KeyInfo,
    /// The holder's Ed25519 signature (base64) over [`statement`].
    pub signature: String,
}

/// Control messages are an internally tagged enum, whose buffered content cannot turn the
/// string keys of `public_shares` back into integers; serde_json's own value can.
fn via_json_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<KeyInfo, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    serde_json::from_value(value).map_err(serde::de::Error::custom)
}

/// Key infos this node made in sessions whose done report is not sent yet.
#[derive(Default)]
pub(super) struct MadeKeyInfos(Mutex<HashMap<[u8; 32], Vec<SignedKeyInfo>>>);

impl MadeKeyInfos {
    fn add(&self, session: [u8; 32], made: SignedKeyInfo) {
        if let Ok(mut map) = self.0.lock() {
            map.entry(session).or_default().push(made);
        }
    }

    /// What session `session` made (and forget it).
    pub(super) fn take(&self, session: &[u8; 32]) -> Vec<SignedKeyInfo> {
        self.0.lock().ok().and_then(|mut map| map.remove(session)).unwrap_or_default()
    }
}

/// The bytes a holder signs: domain, curve, wallet, then the content (signatures left out), each
/// length-prefixed; participants sorted (the list is a set).
pub fn statement(curve: &str, wallet: &str, info: &KeyInfo) -> Vec<u8> {
    let mut out = DOMAIN.to_vec();
    let mut field = |bytes: &[u8]| mpcium_api::attestation::push_field(&mut out, bytes);
    field(curve.as_bytes());
    field(wallet.as_bytes());
    field(&info.version.to_be_bytes());
    field(&info.threshold.to_be_bytes());
    let mut holders: Vec<&str> = info.participant_peer_ids.iter().map(String::as_str).collect();
    holders.sort_unstable();
    field(&(holders.len() as u32).to_be_bytes());
    for h in holders {
        field(h.as_bytes());
    }
    field(info.public_key.as_bytes());
    field(&(info.public_shares.len() as u32).to_be_bytes());
    for (party, share) in &info.public_shares {
        field(&party.to_be_bytes());
        field(share.as_bytes());
    }
    field(info.request.as_bytes());
    out
}

fn unsigned(info: &KeyInfo) -> KeyInfo {
    KeyInfo { signatures: BTreeMap::new(), ..info.clone() }
}

impl Service {
    /// Sign a key info this node computed in `session`; it goes out with the done report.
    pub(super) fn made_keyinfo(&self, session: [u8; 32], kind: KeyType, wallet: &str, info: &KeyInfo) {
        let info = unsigned(info);
        let curve = curve_name(kind).to_owned();
        let signature = STANDARD.encode(self.transport.sign_statement(&statement(&curve, wallet, &info)));
        self.made_keyinfos.add(session, SignedKeyInfo { curve, info, signature });
    }

    /// Whether `node` signed `statement` (a key info's [`statement`]) with `signature`.
    fn holder_signed(&self, statement: &[u8], node: &str, signature: &str) -> bool {
        let Some(key) = self.transport.directory().identity(node) else { return false };
        let Ok(bytes) = STANDARD.decode(signature) else { return false };
        let Ok(sig) = Signature::from_slice(&bytes) else { return false };
        // Every signer checks the same key info on every request: verified once, remembered.
        self.verified.verify(key, statement, &sig)
    }

    /// A key info read from `mpc_keyinfo`, believed only if every holder it lists signed it and
    /// it is not older than a share this node holds.
    pub(super) fn check_keyinfo(
        &self,
        kind: KeyType,
        wallet: &str,
        info: KeyInfo,
    ) -> Result<KeyInfo, Failure> {
        self.signed_by_every_holder(kind, wallet, &info)?;
        let curve = curve_name(kind);
        let held = self
            .store
            .share_versions(share_kind(kind), wallet)
            .map_err(Failure::because(ErrorCode::StorageRead))?;
        if let Some(newest) = held.iter().max().filter(|v| **v > info.version) {
            tracing::warn!(
                wallet,
                curve,
                version = info.version,
                held = newest,
                "key info older than a held share; refused"
            );
            return Err(Failure::new(
                ErrorCode::KeyInfoLoad,
                format!(
                    "key info of wallet {wallet} ({curve}) is version {}, this node holds version {newest}",
                    info.version
                ),
            ));
        }
        Ok(info)
    }

    fn signed_by_every_holder(&self, kind: KeyType, wallet: &str, info: &KeyInfo) -> Result<(), Failure> {
        let curve = curve_name(kind);
        let signed = statement(curve, wallet, info);
        let unsigned_by: Vec<&String> = info
            .participant_peer_ids
            .iter()
            .filter(|n| info.signatures.get(*n).is_none_or(|s| !self.holder_signed(&signed, n, s)))
            .collect();
        if info.participant_peer_ids.is_empty() || !unsigned_by.is_empty() {
            tracing::warn!(
                wallet,
                curve,
                ?unsigned_by,
                "key info not signed by every holder it lists; refused"
            );
            return Err(Failure::new(
                ErrorCode::KeyInfoLoad,
                format!("key info of wallet {wallet} ({curve}) is not signed by {unsigned_by:?}"),
            ));
        }
        Ok(())
    }

    /// Follow `mpc_keyinfo`: when a client-signed reshare left this node out of a wallet's
    /// committee (it neither dealt nor stays, so the session never told it), retire its old
    /// shares. Only on full proof: the client's signed request names exactly the listed
    /// committee and threshold, and every member of it signed the new key info; a key info
    /// alone could be signed by t colluders, and deleting on their word would destroy a wallet.
    pub(super) async fn retire_when_left_out(self: std::sync::Arc<Self>) -> Result<(), async_nats::Error> {
        use futures_util::StreamExt as _;
        loop {
            match self.registry.watch_keyinfo().await {
                Ok(mut watch) => {
                    while let Some(entry) = watch.next().await {
                        match entry {
                            Ok(entry) if entry.operation == async_nats::jetstream::kv::Operation::Put => {
                                if let Ok(info) = serde_json::from_slice::<KeyInfo>(&entry.value) {
                                    self.retire_if_left_out(&entry.key, &info);
                                    self.retire_import_on(&entry.key, &info);
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "key info watch error");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot watch the key info bucket"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    fn retire_if_left_out(&self, key: &str, info: &KeyInfo) {
        if info.request.is_empty() || info.participant_peer_ids.iter().any(|p| p == self.me()) {
            return;
        }
        let Ok(body) = STANDARD.decode(&info.request) else { return };
        let Ok(req) = self.verify_reshare(&body) else { return };
        let Ok(kind) = super::key_type_of(&req.key_type) else { return };
        let wallet = req.wallet_id.as_str();
        if crate::registry::keyinfo_key(curve_name(kind), wallet) != key {
            return;
        }
        let held = self.store.share_versions(share_kind(kind), wallet).unwrap_or_default();
        if !held.iter().any(|v| *v < info.version) {
            return;
        }
        let mut asked = req.node_ids.clone().unwrap_or_default();
        asked.sort();
        let mut listed = info.participant_peer_ids.clone();
        listed.sort();
        if asked != listed || req.new_threshold != i64::from(info.threshold) {
            tracing::warn!(wallet, "key info does not match the reshare request it carries; ignored");
            return;
        }
        if self.signed_by_every_holder(kind, wallet, info).is_err() {
            return;
        }
        tracing::info!(
            wallet,
            curve = curve_name(kind),
            version = info.version,
            "left out of the committee by a client-signed reshare"
        );
        self.retire_old_shares(kind, wallet, info.version);
    }

    /// The coordinator's part: every holder that reported a key info must report the same one,
    /// every holder it lists must have signed it; then it is written with all signatures.
    pub(super) async fn store_signed_keyinfos(
        &self,
        wallet: &str,
        reports: BTreeMap<String, Vec<SignedKeyInfo>>,
    ) -> Result<(), Failure> {
        let mut by_curve: BTreeMap<String, KeyInfo> = BTreeMap::new();
        for (node, made) in reports {
            for SignedKeyInfo { curve, info, signature } in made {
                let kind = match curve.as_str() {
                    "ecdsa" => KeyType::Secp256k1,
                    "eddsa" => KeyType::Ed25519,
                    "taproot" => KeyType::Taproot,
                    _ => continue,
                };
                let curve = curve_name(kind);
                if !info.participant_peer_ids.contains(&node)
                    || !self.holder_signed(&statement(curve, wallet, &info), &node, &signature)
                {
                    tracing::warn!(%node, wallet, curve, "key info signature does not verify; left out");
                    continue;
                }
                let entry = by_curve.entry(curve.to_owned()).or_insert_with(|| unsigned(&info));
                if unsigned(entry) != unsigned(&info) {
                    return Err(Failure::new(
                        ErrorCode::DataCorruption,
                        format!("{node} reports another key info for {curve}"),
                    ));
                }
                entry.signatures.insert(node.clone(), signature);
            }
        }
        for (curve, info) in by_curve {
            let missing: Vec<&String> =
                info.participant_peer_ids.iter().filter(|n| !info.signatures.contains_key(*n)).collect();
            if !missing.is_empty() {
                return Err(Failure::new(
                    ErrorCode::KeyInfoSave,
                    format!("key info for {curve} lacks the signatures of {missing:?}"),
                ));
            }
            self.registry
                .put_keyinfo(&curve, wallet, &info)
                .await
                .map_err(Failure::because(ErrorCode::KeyInfoSave))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_covers_every_field_and_ignores_holder_order() {
        let info = KeyInfo {
            participant_peer_ids: vec!["b".into(), "a".into()],
            threshold: 1,
            version: 2,
            public_key: "pk".into(),
            public_shares: [(1, "s1".to_owned()), (2, "s2".to_owned())].into(),
            signatures: BTreeMap::new(),
            request: String::new(),
        };
        let base = statement("ecdsa", "w", &info);
        let mut reordered = info.clone();
        reordered.participant_peer_ids.reverse();
        assert_eq!(statement("ecdsa", "w", &reordered), base);
        type Change = Box<dyn Fn(&mut KeyInfo)>;
        let changes: Vec<Change> = vec![
            Box::new(|i| i.threshold = 0),
            Box::new(|i| i.version = 1),
            Box::new(|i| i.participant_peer_ids.push("c".into())),
            Box::new(|i| i.public_key = "pk2".into()),
            Box::new(|i| i.request = "cmVx".into()),
            Box::new(|i| {
                i.public_shares.insert(1, "evil".into());
            }),
        ];
        for change in changes {
            let mut other = info.clone();
            change(&mut other);
            assert_ne!(statement("ecdsa", "w", &other), base);
        }
        assert_ne!(statement("eddsa", "w", &info), base);
        assert_ne!(statement("ecdsa", "w2", &info), base);
    }
}
