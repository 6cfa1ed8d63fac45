//! Threshold EdDSA on Ed25519 with FROST (owner: EdDSA engine work).
