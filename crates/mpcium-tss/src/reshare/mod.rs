//! Curve-generic verifiable redistribution of Shamir shares (Feldman VSS): resharing to a new
//! committee and/or threshold, and refresh (owner: EdDSA/resharing work).
