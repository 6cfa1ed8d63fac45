//! What the FROST suites' tests (`eddsa.rs`, `taproot.rs`) share.

use mpcium_tss::frost::{KeyShare, ReshareResult, Suite};
use mpcium_tss::{PartyId, ProtocolError};

/// The new committee's shares of a reshare run (members that retired hold none); panics naming
/// the first party that failed.
pub fn new_shares<S: Suite>(
    results: Vec<(PartyId, Result<ReshareResult<S>, ProtocolError>)>,
) -> Vec<KeyShare<S>> {
    results
        .into_iter()
        .filter_map(|(p, r)| match r.unwrap_or_else(|e| panic!("{p}: {e}")) {
            ReshareResult::Share(s) => Some(*s),
            ReshareResult::Retired => None,
        })
        .collect()
}

/// Every party but `culprit` aborted, naming `culprit` alone.
pub fn assert_all_blame(
    results: &[(PartyId, Result<impl std::fmt::Debug, ProtocolError>)],
    culprit: PartyId,
) {
    for (p, r) in results {
        if *p == culprit {
            continue;
        }
        let e = r.as_ref().expect_err("honest party must abort");
        assert_eq!(e.culprits(), &[culprit], "party {p}: {e}");
    }
}
