//! The exporter's JSON (`interop/legacy/README.md`), the original's key info (Consul
//! `threshold_keyinfo/…` as `consul kv export` prints it), and the checks that turn each
//! exported share into a staged share of ours, or a clear error.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use mpcium_store::{LegacyShareRecord, ShareKind};
use mpcium_tss::curve::{Curve, Ed25519, Secp256k1};
use mpcium_tss::legacy::{LegacyHolder, LegacyShare};
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

/// The exporter's document.
#[derive(Deserialize)]
pub struct Export {
    format: String,
    /// Every share found.
    pub shares: Vec<ExportedShare>,
}

/// One exported share (`xi` is secret: zeroized on drop).
#[derive(Deserialize)]
pub struct ExportedShare {
    /// The original's Badger key (`ecdsa:<wallet>_v<N>`).
    pub badger_key: String,
    /// The wallet id.
    pub wallet_id: String,
    /// `secp256k1` or `ed25519`.
    pub curve: String,
    /// The key version (0: the legacy unversioned key).
    pub version: u32,
    self_x: String,
    xi: String,
    holders: Vec<ExportedHolder>,
    /// The public key (hex, the curve's compressed encoding).
    pub public_key: String,
}

impl Drop for ExportedShare {
    fn drop(&mut self) {
        self.xi.zeroize();
    }
}

#[derive(Deserialize)]
struct ExportedHolder {
    node_id: String,
    x: String,
    public_share: String,
}

/// Parse the exporter's JSON.
pub fn parse_export(plain: &[u8]) -> anyhow::Result<Export> {
    let export: Export = serde_json::from_slice(plain)
        .map_err(|e| anyhow::anyhow!("the exporter's JSON is malformed: {e}"))?;
    if export.format != "mpcium-legacy-export/1" {
        anyhow::bail!(
            "the exporter speaks format {:?}; this mpcium-cli reads mpcium-legacy-export/1",
            export.format
        );
    }
    Ok(export)
}

/// The original's key info of one key.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct LegacyKeyInfo {
    /// The holders' node ids.
    pub participant_peer_ids: Vec<String>,
    /// t.
    pub threshold: u16,
    /// The current version.
    pub version: u32,
}

#[derive(Deserialize)]
struct ConsulEntry {
    key: String,
    value: Option<String>,
}

/// Read `consul kv export threshold_keyinfo/` output: key info by (curve, wallet). The
/// original's oldest records (`threshold_keyinfo/<wallet>`, no curve) are ECDSA keys.
pub fn parse_keyinfo(text: &[u8]) -> anyhow::Result<BTreeMap<(ShareKind, String), LegacyKeyInfo>> {
    let entries: Vec<ConsulEntry> = serde_json::from_slice(text)
        .map_err(|e| anyhow::anyhow!("key info file: not `consul kv export` JSON: {e}"))?;
    let mut out = BTreeMap::new();
    for e in entries {
        let Some(rest) = e.key.strip_prefix("threshold_keyinfo/") else { continue };
        let (kind, wallet) = match rest.split_once(':') {
            Some(("ecdsa", w)) => (ShareKind::Ecdsa, w),
            Some(("eddsa", w)) => (ShareKind::Eddsa, w),
            _ => (ShareKind::Ecdsa, rest),
        };
        let value = base64::engine::general_purpose::STANDARD
            .decode(e.value.unwrap_or_default())
            .map_err(|_| anyhow::anyhow!("key info {}: value is not base64", e.key))?;
        let info: LegacyKeyInfo =
            serde_json::from_slice(&value).map_err(|err| anyhow::anyhow!("key info {}: {err}", e.key))?;
        out.insert((kind, wallet.to_owned()), info);
    }
    Ok(out)
}

/// A checked share, ready to stage.
pub struct Staged {
    pub kind: ShareKind,
    pub wallet: String,
    pub version: u32,
    pub record: LegacyShareRecord,
    /// The original node id this share belongs to.
    pub node_id: String,
    pub public_key: String,
    pub threshold: u16,
}

pub fn kind_of(curve: &str) -> anyhow::Result<ShareKind> {
    match curve {
        "secp256k1" => Ok(ShareKind::Ecdsa),
        "ed25519" => Ok(ShareKind::Eddsa),
        other => anyhow::bail!("unknown curve {other:?}"),
    }
}

/// Check one exported share against its key info (threshold, holders) and its own public data,
/// and make the staged record. Holders are listed sorted by node id in the record.
pub fn stage(
    share: &ExportedShare,
    threshold: u16,
    holders_expected: Option<&[String]>,
) -> anyhow::Result<Staged> {
    let kind = kind_of(&share.curve)?;
    let fail = |why: String| anyhow::anyhow!("{} ({}): {why}", share.badger_key, share.curve);
    let mut holders: Vec<&ExportedHolder> = share.holders.iter().collect();
    holders.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    if holders.windows(2).any(|w| w[0].node_id == w[1].node_id) {
        return Err(fail("two holders have one node id".into()));
    }
    let ids: Vec<String> = holders.iter().map(|h| h.node_id.clone()).collect();
    if let Some(expected) = holders_expected {
        let expected: BTreeSet<&String> = expected.iter().collect();
        if expected != ids.iter().collect() {
            return Err(fail(format!(
                "the share's holders {ids:?} are not the key info's participants {:?}",
                expected
            )));
        }
    }
    let (share_bytes, me) = match kind {
        ShareKind::Ecdsa => legacy_share::<Secp256k1>(share, &holders, threshold, false),
        ShareKind::Eddsa => legacy_share::<Ed25519>(share, &holders, threshold, true),
        // `kind_of` never names it: the original has no Taproot shares.
        ShareKind::Taproot => return Err(fail("the original has no taproot shares to import".into())),
    }
    .map_err(|e| fail(e.to_string()))?;
    Ok(Staged {
        kind,
        wallet: share.wallet_id.clone(),
        version: share.version,
        node_id: ids[me].clone(),
        record: LegacyShareRecord { holders: ids, share: share_bytes },
        public_key: share.public_key.clone(),
        threshold,
    })
}

/// A 32-byte big-endian hex scalar (the exporter's form) as the curve's scalar.
fn scalar<C: Curve>(text: &str, little_endian: bool, what: &str) -> anyhow::Result<C::Scalar> {
    let mut bytes = Zeroizing::new(hex::decode(text).map_err(|_| anyhow::anyhow!("{what} is not hex"))?);
    if bytes.len() != 32 {
        anyhow::bail!("{what} is not 32 bytes");
    }
    if little_endian {
        bytes.reverse();
    }
    C::scalar_from_bytes(&bytes).ok_or_else(|| anyhow::anyhow!("{what} is not a reduced scalar"))
}

fn point<C: Curve>(text: &str, what: &str) -> anyhow::Result<C::Point> {
    let bytes = hex::decode(text).map_err(|_| anyhow::anyhow!("{what} is not hex"))?;
    C::point_from_bytes(&bytes).ok_or_else(|| anyhow::anyhow!("{what} is not a valid point"))
}

fn legacy_share<C: Curve>(
    share: &ExportedShare,
    holders: &[&ExportedHolder],
    threshold: u16,
    little_endian: bool,
) -> anyhow::Result<(Zeroizing<Vec<u8>>, usize)> {
    let mut list = Vec::with_capacity(holders.len());
    for h in holders {
        list.push(LegacyHolder::<C> {
            x: scalar::<C>(&h.x, little_endian, &format!("holder {}'s x", h.node_id))?,
            public_share: point::<C>(&h.public_share, &format!("holder {}'s public share", h.node_id))?,
        });
    }
    let self_x = scalar::<C>(&share.self_x, little_endian, "self_x")?;
    let me = list
        .iter()
        .position(|h| h.x == self_x)
        .ok_or_else(|| anyhow::anyhow!("this share's x-coordinate is not any holder's"))?;
    let legacy = LegacyShare {
        threshold,
        public_key: point::<C>(&share.public_key, "public key")?,
        holders: list,
        me,
        secret: Zeroizing::new(scalar::<C>(&share.xi, little_endian, "the secret share")?),
    };
    let bytes = legacy.to_bytes();
    legacy.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((bytes, me))
}
