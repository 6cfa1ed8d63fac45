//! Checks of signing results against the wallet's public keys.

use mpcium_api::SigningResultEvent;

/// Check an ECDSA result against the 64-byte uncompressed public key (x‖y): low-S, valid, and
/// its recovery id recovers the key.
pub fn ecdsa_verify(pub_xy: &[u8], digest: &[u8; 32], ev: &SigningResultEvent) {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(pub_xy);
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let r: [u8; 32] = ev.r.clone().unwrap().try_into().unwrap();
    let s: [u8; 32] = ev.s.clone().unwrap().try_into().unwrap();
    let sig = k256::ecdsa::Signature::from_scalars(r, s).unwrap();
    assert!(sig.normalize_s() == sig, "low-S");
    vk.verify_prehash(digest, &sig).unwrap();
    let recid = k256::ecdsa::RecoveryId::from_byte(ev.signature_recovery.clone().unwrap()[0]).unwrap();
    assert_eq!(k256::ecdsa::VerifyingKey::recover_from_prehash(digest, &sig, recid).unwrap(), vk);
}

/// Check an EdDSA result against the 32-byte public key with `verify_strict`.
pub fn eddsa_verify(pub_key: &[u8], message: &[u8], ev: &SigningResultEvent) {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pub_key.try_into().unwrap()).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&ev.signature.clone().unwrap().try_into().unwrap());
    vk.verify_strict(message, &sig).unwrap();
}

/// Check a Taproot result: a BIP340 signature (k256's verifier, not the engine's) under the
/// BIP341 output key of the x-only internal key `internal` and `merkle_root` (BIP86 when `None`),
/// which is also the event's `verifying_key`; `r` and `s` are null.
pub fn taproot_verify(
    internal: &[u8],
    merkle_root: Option<&[u8; 32]>,
    message: &[u8; 32],
    ev: &SigningResultEvent,
) {
    let internal: [u8; 32] = internal.try_into().expect("a 32-byte x-only key");
    let q = mpcium_tss::taproot::output_key(&internal, merkle_root).unwrap();
    assert_eq!((&ev.r, &ev.s), (&None, &None), "{ev:?}");
    assert_eq!(ev.verifying_key.as_deref(), Some(q.as_slice()));
    let key = k256::schnorr::VerifyingKey::from_bytes(&q.into()).unwrap();
    let sig = k256::schnorr::Signature::try_from(ev.signature.as_deref().expect("a signature")).unwrap();
    key.verify_raw(message, &sig).unwrap();
}

/// The BIP32 child of a 64-byte secp256k1 public key, as x‖y.
pub fn ecdsa_child(pub_xy: &[u8], chain_code: &[u8; 32], path: &[u32]) -> Vec<u8> {
    use k256::elliptic_curve::sec1::ToSec1Point;
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(pub_xy);
    let master = k256::PublicKey::from_sec1_bytes(&sec1).unwrap();
    let (child, _) = mpcium_tss::ecdsa::derive_child(&master, chain_code, path).unwrap();
    child.to_sec1_point(false).as_bytes()[1..].to_vec()
}
