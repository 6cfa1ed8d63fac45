//! `policy.rules` (mpcium-rs): approval policies by value for signing requests
//! (`mpcium_api::policy` evaluates them; docs/wire.md §5.5).
//!
//! ```yaml
//! policy:
//!   rules:
//!     - name: large-btc
//!       network_internal_code: btc      # optional match (ASCII case ignored)
//!       asset: BTC                       # optional match (ASCII case ignored)
//!       wallet_ids: []                   # optional match, empty = every wallet
//!       amount_above: "1000000"          # required: a non-negative decimal integer
//!       require_authorizers: [approver1] # ids from authorization.authorizer_public_keys
//!       min_authorizers: 1               # k of that list (default: all of them)
//! ```
//!
//! Every problem stops the node with an error naming the key (`policy.rules[0].min_authorizers`):
//! a missing or repeated name, a bad amount, an empty or repeated authorizer list entry, an
//! authorizer without a key, `min_authorizers` 0 or above the list's length. A field this
//! version does not know inside a rule is an error too, not a warning: a misspelt filter must
//! not silently widen or narrow a security rule. The rules cannot be set from the environment
//! (a list of maps has no environment form).

use serde::Deserialize;

use crate::error::ConfigError;
use crate::node::AuthorizationConfig;

/// The config key of the rule list.
pub(crate) const RULES_KEY: &str = "policy.rules";

/// `policy:` as written.
#[derive(Deserialize, Default)]
pub(crate) struct RawPolicy {
    pub(crate) rules: Option<Vec<RawRule>>,
}

/// One rule as written: leaves as text (numbers are parsed here, naming the key).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    name: Option<String>,
    network_internal_code: Option<String>,
    asset: Option<String>,
    wallet_ids: Option<Vec<String>>,
    amount_above: Option<String>,
    require_authorizers: Option<Vec<String>>,
    min_authorizers: Option<String>,
}

/// Approval policies by value (`policy.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// `policy.rules`, in file order; every rule that applies to a request must be met.
    pub rules: Vec<PolicyRule>,
}

/// One validated rule of `policy.rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    /// `name`: unique among the rules.
    pub name: String,
    /// `network_internal_code`: `None` matches every network.
    pub network_internal_code: Option<String>,
    /// `asset`: `None` matches every asset.
    pub asset: Option<String>,
    /// `wallet_ids`: empty matches every wallet.
    pub wallet_ids: Vec<String>,
    /// `amount_above`: a canonical non-negative decimal integer (digits, no leading zero).
    pub amount_above: String,
    /// `require_authorizers`: distinct ids of `authorization.authorizer_public_keys`.
    pub require_authorizers: Vec<String>,
    /// `min_authorizers`: 1 ≤ k ≤ `require_authorizers.len()` (default: the length).
    pub min_authorizers: usize,
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Why `text` is not a canonical non-negative decimal integer (the rule of
/// `mpcium_api::Amount`), or `None` when it is.
pub(crate) fn amount_problem(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        Some("is empty")
    } else if !text.bytes().all(|b| b.is_ascii_digit()) {
        Some("must be a non-negative integer in decimal digits (no sign, spaces or decimal point)")
    } else if text.len() > 1 && text.starts_with('0') {
        Some("must not have leading zeros")
    } else if text.len() > 128 {
        Some("has more than 128 digits")
    } else {
        None
    }
}

/// Validates `policy.rules` against the configured authorizers.
pub(crate) fn parse(
    raw: Vec<RawRule>,
    authorization: &AuthorizationConfig,
) -> Result<PolicyConfig, ConfigError> {
    let mut rules: Vec<PolicyRule> = Vec::with_capacity(raw.len());
    for (i, rule) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("{RULES_KEY}[{i}].{field}");
        let name = non_empty(rule.name).ok_or_else(|| ConfigError::missing(key("name")))?;
        if let Some(j) = rules.iter().position(|r| r.name == name) {
            return Err(ConfigError::invalid(
                key("name"),
                format!("rule name `{name}` is already used by {RULES_KEY}[{j}]"),
            ));
        }
        // Not trimmed: the canonical form has no whitespace, and the config must not accept
        // what a request could not carry.
        let amount_above = rule
            .amount_above
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ConfigError::missing(key("amount_above")))?;
        if let Some(problem) = amount_problem(&amount_above) {
            return Err(ConfigError::invalid(key("amount_above"), format!("`{amount_above}` {problem}")));
        }
        let wallet_ids: Vec<String> = rule.wallet_ids.unwrap_or_default();
        if wallet_ids.iter().any(|w| w.trim().is_empty()) {
            return Err(ConfigError::invalid(key("wallet_ids"), "contains an empty wallet id"));
        }
        let require = rule.require_authorizers.unwrap_or_default();
        if require.is_empty() {
            return Err(ConfigError::missing(key("require_authorizers")));
        }
        for (n, id) in require.iter().enumerate() {
            if !authorization.authorizer_public_keys.contains_key(id) {
                return Err(ConfigError::invalid(
                    key("require_authorizers"),
                    format!("authorizer `{id}` has no entry in authorization.authorizer_public_keys"),
                ));
            }
            if require[..n].contains(id) {
                return Err(ConfigError::invalid(key("require_authorizers"), format!("lists `{id}` twice")));
            }
        }
        let min_authorizers = match non_empty(rule.min_authorizers) {
            None => require.len(),
            Some(text) => match text.parse::<usize>() {
                Ok(k) if (1..=require.len()).contains(&k) => k,
                Ok(k) => {
                    return Err(ConfigError::invalid(
                        key("min_authorizers"),
                        format!(
                            "{k} must be between 1 and the {} authorizers of require_authorizers",
                            require.len()
                        ),
                    ));
                }
                Err(_) => {
                    return Err(ConfigError::invalid(
                        key("min_authorizers"),
                        format!("`{text}` is not a positive integer"),
                    ));
                }
            },
        };
        rules.push(PolicyRule {
            name,
            network_internal_code: non_empty(rule.network_internal_code),
            asset: non_empty(rule.asset),
            wallet_ids,
            amount_above,
            require_authorizers: require,
            min_authorizers,
        });
    }
    Ok(PolicyConfig { rules })
}

#[cfg(test)]
mod tests {
    use super::amount_problem;

    #[test]
    fn amounts_are_canonical_decimals() {
        for ok in ["0", "7", "1000000", &"9".repeat(128)] {
            assert_eq!(amount_problem(ok), None, "{ok}");
        }
        for bad in ["", "-1", "+1", " 1", "1.0", "1e6", "01", "00", &"9".repeat(129)] {
            assert!(amount_problem(bad).is_some(), "{bad:?}");
        }
    }
}
