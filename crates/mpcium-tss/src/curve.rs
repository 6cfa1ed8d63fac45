//! The small curve abstraction the generic protocols (resharing, HD) are written against
//! (owner: EdDSA/resharing work).
