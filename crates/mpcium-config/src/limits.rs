//! `limits.*`: input sizes and rates (mpcium-rs). Every rate is a token bucket: `per_second`
//! tokens come back each second, up to `burst` (what may arrive at once after a quiet spell).
//!
//! ```yaml
//! limits:
//!   max_request_bytes: 1048576     # 1 MiB
//!   requests_per_second:           # client requests (keygen, signing, reshare); unset = unlimited
//!     per_wallet: 5                # each wallet's requests
//!     per_wallet_burst: 10         # default: the rate rounded up (at least 1)
//!     cluster: 200                 # all requests this node handles
//!     cluster_burst: 400
//!   peer_messages_per_second: 5000 # node-to-node messages from each peer (default 5000)
//!   peer_messages_burst: 10000     # default: twice the rate
//! ```

use crate::error::ConfigError;
use crate::raw::Values;

/// `limits.max_request_bytes` when unset (1 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Largest accepted `limits.max_request_bytes` (NATS' own payload ceiling, 64 MiB).
pub const MAX_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;
/// `limits.peer_messages_per_second` when unset. Normal signing at full load brings a node 3
/// messages per signature from its co-signer, ~720 a second at the reference machine's 240
/// EdDSA signatures a second (BENCHMARKS.md, "Rate limits"); this leaves ~7× that.
pub const DEFAULT_PEER_MESSAGES_PER_SECOND: f64 = 5000.0;
/// Largest accepted rate (any `limits.*` rate) and burst.
pub const MAX_RATE: f64 = 1_000_000.0;

/// A token bucket's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens that come back per second (> 0; may be fractional, e.g. 0.5 = one every 2 s).
    pub per_second: f64,
    /// How many tokens the bucket holds at most (≥ 1): what may pass at once.
    pub burst: u32,
}

impl Rate {
    /// `per_second` with the default burst: the rate rounded up, at least 1.
    pub fn new(per_second: f64) -> Self {
        Self { per_second, burst: (per_second.ceil() as u32).max(1) }
    }
}

/// `limits.requests_per_second.*`: client requests this node takes (as coordinator, or as a
/// participant of a session for one). `None` = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RequestRates {
    /// `limits.requests_per_second.per_wallet` (+ `per_wallet_burst`): one bucket per wallet id.
    pub per_wallet: Option<Rate>,
    /// `limits.requests_per_second.cluster` (+ `cluster_burst`): one bucket for every request.
    /// Each node counts what it sees itself (no shared counter): docs in ARCHITECTURE.md.
    pub cluster: Option<Rate>,
}

/// Input limits (`limits.*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitsConfig {
    /// `limits.max_request_bytes`: requests larger than this are rejected (default 1 MiB).
    pub max_request_bytes: usize,
    /// `limits.requests_per_second.*`.
    pub requests_per_second: RequestRates,
    /// `limits.peer_messages_per_second` and `limits.peer_messages_burst`: node-to-node
    /// messages accepted from each peer (default 5000 per second, burst twice that).
    pub peer_messages: Rate,
}

impl LimitsConfig {
    pub(crate) fn from_values(values: &Values) -> Result<Self, ConfigError> {
        let max_request_bytes = match values.int("limits.max_request_bytes")? {
            None => DEFAULT_MAX_REQUEST_BYTES,
            Some(n) if (1..=MAX_MAX_REQUEST_BYTES as i64).contains(&n) => n.unsigned_abs() as usize,
            Some(_) => {
                return Err(values.invalid(
                    "limits.max_request_bytes",
                    format!("must be between 1 and {MAX_MAX_REQUEST_BYTES}"),
                ));
            }
        };
        let requests_per_second = RequestRates {
            per_wallet: rate(
                values,
                "limits.requests_per_second.per_wallet",
                "limits.requests_per_second.per_wallet_burst",
            )?,
            cluster: rate(
                values,
                "limits.requests_per_second.cluster",
                "limits.requests_per_second.cluster_burst",
            )?,
        };
        let peer_rate = positive_number(values, "limits.peer_messages_per_second")?
            .unwrap_or(DEFAULT_PEER_MESSAGES_PER_SECOND);
        let peer_messages = Rate {
            per_second: peer_rate,
            burst: match burst(values, "limits.peer_messages_burst")? {
                Some(b) => b,
                None => ((2.0 * peer_rate).ceil().min(MAX_RATE) as u32).max(1),
            },
        };
        Ok(Self { max_request_bytes, requests_per_second, peer_messages })
    }
}

/// An optional rate and its burst; a burst without its rate is an error (naming the burst).
fn rate(values: &Values, key: &str, burst_key: &str) -> Result<Option<Rate>, ConfigError> {
    let per_second = positive_number(values, key)?;
    let burst = burst(values, burst_key)?;
    match (per_second, burst) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(values.invalid(burst_key, format!("is set but {key} is not (set both)"))),
        (Some(r), None) => Ok(Some(Rate::new(r))),
        (Some(r), Some(b)) => Ok(Some(Rate { per_second: r, burst: b })),
    }
}

/// A decimal number above 0 and at most [`MAX_RATE`]; `None` when unset.
fn positive_number(values: &Values, key: &str) -> Result<Option<f64>, ConfigError> {
    let Some(text) = values.text(key) else { return Ok(None) };
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n <= MAX_RATE => Ok(Some(n)),
        _ => Err(values.invalid(key, format!("`{text}` is not a number above 0 and at most {MAX_RATE}"))),
    }
}

/// A whole number from 1 to [`MAX_RATE`]; `None` when unset.
fn burst(values: &Values, key: &str) -> Result<Option<u32>, ConfigError> {
    match values.int(key)? {
        None => Ok(None),
        Some(n) if (1..=MAX_RATE as i64).contains(&n) => Ok(Some(n as u32)),
        Some(_) => Err(values.invalid(key, format!("must be between 1 and {MAX_RATE}"))),
    }
}
