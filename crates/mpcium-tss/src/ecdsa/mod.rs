//! Threshold ECDSA on secp256k1 with DKLs23 (owner: ECDSA engine work).
