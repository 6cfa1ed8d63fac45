//! **(ours)** Approval policies by value (config `policy.rules`, issue #15 part 1): a signing
//! request of a large amount needs more authorizers. A key's threshold is fixed when it is made,
//! so "requirements by value" are approvals: authorizer signatures over the same
//! [`crate::canonical::authorizer_payload`] as `authorization.*` uses, checked with the keys of
//! `authorization.authorizer_public_keys`, whether or not `authorization.enabled` is set.
//!
//! A rule **applies** to a signing request when each of its filters matches:
//! `network_internal_code` and `asset` (ASCII case ignored, so `btc` matches `BTC`), `wallet_ids`
//! (empty = every wallet), and the amount is above `amount_above`. A request without a value (the
//! original's clients send none) has an unknown asset and amount: it matches every asset filter
//! and is above every threshold, so leaving the value out never avoids a rule. Every rule that
//! applies must be met: at least `min_authorizers` distinct authorizers of its
//! `require_authorizers` signed validly, else `ERROR_MISSING_AUTHORIZER_SIGNATURE` naming the
//! rule; a signature by one of them that does not verify is `ERROR_INVALID_AUTHORIZER_SIGNATURE`.
//!
//! What the policy binds is what the initiator declared and signed: nodes do not parse `tx`, so
//! an initiator that lies about the value is not stopped by it (authorizers see the value and
//! the `tx` they approve). It stops anyone else, a coordinator included, from changing or
//! dropping the value or skipping the approvals: every participant evaluates it itself.

use std::collections::BTreeSet;

use crate::authorization::AuthorizationPolicy;
use crate::canonical::{InitiatorMessage, SigningMode, authorizer_payload};
use crate::error_code::ErrorCode;
use crate::request::SignTxMessage;
use crate::validate::ValidationError;
use crate::value::{Amount, SignTxRequest, TxValue};
use crate::verify::SignatureError;

/// One rule of `policy.rules` (validated by the config: a name of its own, authorizers that are
/// configured, `1 ≤ min_authorizers ≤ require_authorizers.len()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// `name`: named in error reasons and in the audit trail.
    pub name: String,
    /// `network_internal_code`: `None` matches every network.
    pub network_internal_code: Option<String>,
    /// `asset`: `None` matches every asset.
    pub asset: Option<String>,
    /// `wallet_ids`: empty matches every wallet.
    pub wallet_ids: Vec<String>,
    /// `amount_above`: the rule applies to amounts strictly above it.
    pub amount_above: Amount,
    /// `require_authorizers`: authorizer IDs whose approval counts.
    pub require_authorizers: Vec<String>,
    /// `min_authorizers`: how many of them must approve.
    pub min_authorizers: usize,
}

impl ApprovalRule {
    /// Whether the rule applies to `msg` with `value` (see the module docs).
    pub fn applies_to(&self, msg: &SignTxMessage, value: Option<&TxValue>) -> bool {
        let network = self
            .network_internal_code
            .as_deref()
            .is_none_or(|n| n.eq_ignore_ascii_case(&msg.network_internal_code));
        let wallet = self.wallet_ids.is_empty() || self.wallet_ids.contains(&msg.wallet_id);
        let (asset, above) = match value {
            None => (true, true),
            Some(v) => (
                self.asset.as_deref().is_none_or(|a| a.eq_ignore_ascii_case(&v.asset)),
                v.amount > self.amount_above,
            ),
        };
        network && wallet && asset && above
    }
}

/// The rules a request met: only [`AuthorizationPolicy::approve`] makes one with rules in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyApplied {
    rules: Vec<String>,
}

impl PolicyApplied {
    /// For a request no rule is about (keygen, reshare).
    pub fn not_applicable() -> Self {
        Self::default()
    }

    /// The names of the rules that applied (and were met), in config order.
    pub fn rules(&self) -> &[String] {
        &self.rules
    }
}

/// Why a request does not meet the policy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApprovalError {
    /// Fewer valid approvals than a rule needs.
    #[error(
        "missing required authorizer signature: policy rule `{rule}` needs {need} of [{}], {valid} valid present",
        .of.join(", ")
    )]
    Missing {
        /// The rule's name.
        rule: String,
        /// Its `min_authorizers`.
        need: usize,
        /// Its `require_authorizers`.
        of: Vec<String>,
        /// How many of them signed validly.
        valid: usize,
    },
    /// An authorizer a rule counts signed, and the signature does not verify.
    #[error("authorizer {id} verification failed (policy rule `{rule}`): {source}")]
    Invalid {
        /// The rule that lists the authorizer.
        rule: String,
        /// The authorizer ID.
        id: String,
        /// What was wrong with the signature.
        #[source]
        source: SignatureError,
    },
    /// The request's value is malformed (checked before, so only for callers that did not).
    #[error(transparent)]
    Value(#[from] ValidationError),
}

impl ApprovalError {
    /// `ERROR_MISSING_AUTHORIZER_SIGNATURE`, `ERROR_INVALID_AUTHORIZER_SIGNATURE`, or the value's
    /// validation code.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApprovalError::Missing { .. } => ErrorCode::MissingAuthorizerSignature,
            ApprovalError::Invalid { .. } => ErrorCode::InvalidAuthorizerSignature,
            ApprovalError::Value(e) => e.error_code(),
        }
    }
}

impl AuthorizationPolicy {
    /// Evaluates `policy.rules` for a signing request with signed bytes in `mode`: the rules that
    /// applied, all met, or the first failure (an invalid signature before a missing one).
    pub fn approve(&self, req: &SignTxRequest, mode: SigningMode) -> Result<PolicyApplied, ApprovalError> {
        let value = req.value()?;
        let applying: Vec<&ApprovalRule> =
            self.rules.iter().filter(|r| r.applies_to(&req.message, value.as_ref())).collect();
        if applying.is_empty() {
            return Ok(PolicyApplied::default());
        }
        let payload = authorizer_payload(req, mode);
        let mut valid = BTreeSet::new();
        for sig in req.authorizer_signatures() {
            let id = &sig.authorizer_id;
            let Some(rule) = applying.iter().find(|r| r.require_authorizers.contains(id)) else {
                continue; // not an approval any applying rule counts
            };
            // A rule's authorizer without a key cannot approve (the config refuses such rules).
            let Some(key) = self.keys.get(id) else { continue };
            key.verify(&payload, sig.signature.as_deref()).map_err(|source| ApprovalError::Invalid {
                rule: rule.name.clone(),
                id: id.clone(),
                source,
            })?;
            valid.insert(id.as_str());
        }
        for rule in &applying {
            let count = rule.require_authorizers.iter().filter(|id| valid.contains(id.as_str())).count();
            if count < rule.min_authorizers {
                return Err(ApprovalError::Missing {
                    rule: rule.name.clone(),
                    need: rule.min_authorizers,
                    of: rule.require_authorizers.clone(),
                    valid: count,
                });
            }
        }
        Ok(PolicyApplied { rules: applying.iter().map(|r| r.name.clone()).collect() })
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer as _, SigningKey};

    use super::*;
    use crate::request::AuthorizerSignature;
    use crate::verify::{Algorithm, PublicKey};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn rule(name: &str, above: &str, of: &[&str], min: usize) -> ApprovalRule {
        ApprovalRule {
            name: name.into(),
            network_internal_code: Some("btc".into()),
            asset: Some("BTC".into()),
            wallet_ids: vec![],
            amount_above: Amount::parse(above).unwrap(),
            require_authorizers: of.iter().map(|s| s.to_string()).collect(),
            min_authorizers: min,
        }
    }

    fn policy(rules: Vec<ApprovalRule>) -> AuthorizationPolicy {
        let mut keys = std::collections::BTreeMap::new();
        for (id, seed) in [("a1", 1), ("a2", 2), ("a3", 3)] {
            let hex = hex::encode(key(seed).verifying_key().to_bytes());
            keys.insert(id.to_string(), PublicKey::parse(Algorithm::Ed25519, &hex).unwrap());
        }
        AuthorizationPolicy { keys, rules, ..Default::default() }
    }

    fn request(value: Option<(&str, &str)>, approvers: &[(&str, u8)]) -> SignTxRequest {
        let message = SignTxMessage {
            wallet_id: "w1".into(),
            network_internal_code: "BTC".into(),
            tx_id: "t1".into(),
            tx: Some(vec![7; 32]),
            signature: Some(vec![1; 64]),
            ..Default::default()
        };
        let mut req = match value {
            Some((asset, amount)) => SignTxRequest::with_value(message, asset, amount),
            None => SignTxRequest::new(message),
        };
        let payload = authorizer_payload(&req, SigningMode::Compatible);
        req.message.authorizer_signatures = approvers
            .iter()
            .map(|(id, seed)| AuthorizerSignature {
                authorizer_id: id.to_string(),
                signature: Some(key(*seed).sign(&payload).to_bytes().to_vec()),
            })
            .collect();
        req
    }

    #[test]
    fn small_amounts_need_nothing_large_ones_need_the_rule_met() {
        let p = policy(vec![rule("large-btc", "1000000", &["a1", "a2"], 1)]);
        let applied = p.approve(&request(Some(("BTC", "1000000")), &[]), SigningMode::Compatible).unwrap();
        assert!(applied.rules().is_empty());
        let err = p.approve(&request(Some(("BTC", "1000001")), &[]), SigningMode::Compatible).unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::MissingAuthorizerSignature);
        assert!(err.to_string().contains("large-btc"), "{err}");
        // An approval from an authorizer the rule does not list does not count.
        let err =
            p.approve(&request(Some(("BTC", "1000001")), &[("a3", 3)]), SigningMode::Compatible).unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::MissingAuthorizerSignature);
        let applied =
            p.approve(&request(Some(("btc", "1000001")), &[("a2", 2)]), SigningMode::Compatible).unwrap();
        assert_eq!(applied.rules(), ["large-btc"]);
    }

    #[test]
    fn filters_select_rules_and_every_applying_rule_must_be_met() {
        let mut eth = rule("eth", "0", &["a3"], 1);
        eth.network_internal_code = Some("eth".into());
        eth.asset = None;
        let mut two = rule("two-of-three", "5000000", &["a1", "a2", "a3"], 2);
        two.wallet_ids = vec!["w1".into()];
        let p = policy(vec![rule("large-btc", "1000000", &["a1"], 1), eth, two]);
        let req = request(Some(("BTC", "6000000")), &[("a1", 1)]);
        let err = p.approve(&req, SigningMode::Compatible).unwrap_err();
        assert!(err.to_string().contains("two-of-three"), "{err}");
        let req = request(Some(("BTC", "6000000")), &[("a1", 1), ("a1", 1)]);
        assert!(p.approve(&req, SigningMode::Compatible).is_err(), "one authorizer twice counts once");
        let req = request(Some(("BTC", "6000000")), &[("a1", 1), ("a3", 3)]);
        assert_eq!(p.approve(&req, SigningMode::Compatible).unwrap().rules(), ["large-btc", "two-of-three"]);
        let req = request(Some(("ETH", "6000000")), &[]);
        assert!(p.approve(&req, SigningMode::Compatible).unwrap().rules().is_empty(), "asset filter");
    }

    #[test]
    fn a_request_without_a_value_is_above_every_threshold() {
        let p = policy(vec![rule("large-btc", "1000000", &["a1"], 1)]);
        let err = p.approve(&request(None, &[]), SigningMode::Compatible).unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::MissingAuthorizerSignature);
        assert_eq!(
            p.approve(&request(None, &[("a1", 1)]), SigningMode::Compatible).unwrap().rules(),
            ["large-btc"]
        );
    }

    #[test]
    fn a_bad_approval_or_a_changed_value_is_invalid() {
        let p = policy(vec![rule("large-btc", "1000000", &["a1", "a2"], 1)]);
        // a2's signature made with a1's key.
        let err = p
            .approve(&request(Some(("BTC", "2000000")), &[("a1", 1), ("a2", 1)]), SigningMode::Compatible)
            .unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::InvalidAuthorizerSignature);
        assert!(err.to_string().contains("large-btc") && err.to_string().contains("a2"), "{err}");
        // The amount changed after the approval was given.
        let mut req = request(Some(("BTC", "2000000")), &[("a1", 1)]);
        req.amount = Some("2000001".into());
        let err = p.approve(&req, SigningMode::Compatible).unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::InvalidAuthorizerSignature);
        // Dropped: the approvals were over the seven-field bytes.
        let mut req = request(Some(("BTC", "2000000")), &[("a1", 1)]);
        (req.asset, req.amount) = (None, None);
        let err = p.approve(&req, SigningMode::Compatible).unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::InvalidAuthorizerSignature);
    }
}
