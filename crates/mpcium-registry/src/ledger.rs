//! What must happen once cluster-wide: request claims and settled results (`mpc_requests`),
//! and presignature-use records (`mpc_presig_used`).

use std::time::{Duration, Instant};

use async_nats::jetstream::kv;

use super::{PRESIG_USED_BUCKET, REQUESTS_BUCKET, Registry, RegistryError, keyinfo_key, kv_err, retry};

/// The `mpc_requests` key of the claim of `(wallet, tx)`.
fn claim_key(wallet_id: &str, tx_id: &str) -> String {
    format!("{}.{}", keyinfo_key("tx", wallet_id), keyinfo_key("id", tx_id).replacen("id.", "", 1))
}

/// The outcome of claiming a request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time this request id is seen.
    New,
    /// Claimed before by the same delivery (a redelivery of the same JetStream message).
    Same,
    /// Claimed before by another request: a replay.
    Duplicate,
}

impl Registry {
    /// Claim `(wallet, tx)` for the request delivery `claim` (e.g. its stream sequence), atomically
    /// across the cluster: the first claim wins and stays (durably, in JetStream).
    pub async fn claim_request(
        &self,
        wallet_id: &str,
        tx_id: &str,
        claim: &str,
    ) -> Result<Claim, RegistryError> {
        self.claim_key(&claim_key(wallet_id, tx_id), claim).await
    }

    /// [`claim_request`](Self::claim_request) for a participant, which expects the claim to be
    /// there (the coordinator made it before it announced the session): read first, one round
    /// trip, and claim only when nothing is there. (A create on a key that exists costs three:
    /// the failed write, the client's check for a deleted entry, and the read of the claim.)
    pub async fn confirm_claim(
        &self,
        wallet_id: &str,
        tx_id: &str,
        claim: &str,
    ) -> Result<Claim, RegistryError> {
        let key = claim_key(wallet_id, tx_id);
        match retry::get(&self.requests, &key).await.map_err(|e| kv_err(REQUESTS_BUCKET)(e.into()))? {
            Some(existing) if existing.as_ref() == claim.as_bytes() => Ok(Claim::Same),
            Some(_) => Ok(Claim::Duplicate),
            None => self.claim_key(&key, claim).await,
        }
    }

    async fn claim_key(&self, key: &str, claim: &str) -> Result<Claim, RegistryError> {
        let key = key.to_owned();
        match retry::create(&self.requests, &key, claim.to_owned().into()).await {
            Ok(_) => Ok(Claim::New),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let existing = get_existing(&self.requests, REQUESTS_BUCKET, &key).await?;
                Ok(if existing.as_deref() == Some(claim.as_bytes()) { Claim::Same } else { Claim::Duplicate })
            }
            Err(e) => Err(kv_err(REQUESTS_BUCKET)(e.into())),
        }
    }

    /// Settle the result event published under `msg_id` (a result's `Nats-Msg-Id`, naming one
    /// request message): the first event recorded stays, durably, and is returned to every later
    /// caller. A request that runs again (redelivered after a crash of its coordinator or of
    /// nats-server, whose consumer state may lag and whose duplicate window forgets results
    /// already consumed) is then answered with the very same event, not a second signature.
    pub async fn settle_result(
        &self,
        msg_id: &str,
        event: bytes::Bytes,
    ) -> Result<bytes::Bytes, RegistryError> {
        let key = settled_key(msg_id);
        match retry::create(&self.requests, &key, event.clone()).await {
            Ok(_) => Ok(event),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                get_existing(&self.requests, REQUESTS_BUCKET, &key).await?.ok_or_else(|| {
                    RegistryError::Corrupt {
                        bucket: REQUESTS_BUCKET,
                        key,
                        reason: "settled result vanished".into(),
                    }
                })
            }
            Err(e) => Err(kv_err(REQUESTS_BUCKET)(e.into())),
        }
    }

    /// The result event settled for `msg_id`, if the request message was answered already.
    pub async fn settled_result(&self, msg_id: &str) -> Result<Option<bytes::Bytes>, RegistryError> {
        retry::get(&self.requests, &settled_key(msg_id)).await.map_err(|e| kv_err(REQUESTS_BUCKET)(e.into()))
    }
}

impl Registry {
    /// Record, durably and cluster-wide, that `signer` releases its online share of presignature
    /// `presig_id` of `wallet_id`, in the session `session` (hex, kept for operators). Create-only:
    /// `Ok(true)` the first time, `Ok(false)` when the record exists (the presignature was used
    /// before: this copy came back from a restored or copied disk), and then the share must not
    /// be released. The signer's id is the key's first token, so NATS permissions can let each
    /// node write only its own records (`$KV.mpc_presig_used.<node id>.>`).
    pub async fn mark_presignature_used(
        &self,
        signer: &str,
        wallet_id: &str,
        presig_id: &str,
        session: &str,
    ) -> Result<bool, RegistryError> {
        let key = presig_used_key(signer, wallet_id, presig_id);
        match self.presig_used.create(&key, session.to_owned().into()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(kv_err(PRESIG_USED_BUCKET)(e.into())),
        }
    }
}

impl Registry {
    /// Record, durably and cluster-wide, that `holder` hands its share of the pooled key
    /// `pool_id` to `wallet_id`. Create-only: `Ok(true)` the first time and when the record
    /// already names the same wallet (a retry), `Ok(false)` when it names another wallet (this
    /// copy of the pooled key came back from a copied disk): then it must not be handed over.
    /// Kept in `mpc_presig_used` under `<holder>.keypool.<pool id>`, so the NATS permissions
    /// that let a node write only its own presignature records cover these too.
    pub async fn mark_pooled_key_used(
        &self,
        holder: &str,
        pool_id: &str,
        wallet_id: &str,
    ) -> Result<bool, RegistryError> {
        let key = pooled_key_used_key(holder, pool_id);
        match retry::create(&self.presig_used, &key, wallet_id.to_owned().into()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let existing = get_existing(&self.presig_used, PRESIG_USED_BUCKET, &key).await?;
                Ok(existing.as_deref() == Some(wallet_id.as_bytes()))
            }
            Err(e) => Err(kv_err(PRESIG_USED_BUCKET)(e.into())),
        }
    }
}

/// The used-record key of one holder's share of a pooled key: `<holder>.keypool.<pool id>` (a
/// pool id's characters, `[0-9a-z-]` and the owner's node id, are legal KV key characters; the
/// `keypool` token is never a curve name, so it cannot meet a presignature's record).
pub fn pooled_key_used_key(holder: &str, pool_id: &str) -> String {
    format!("{holder}.keypool.{pool_id}")
}

/// The used-record key of one signer's share of a presignature: `<signer>.<ecdsa.wallet>.<id>`,
/// where a presignature id's characters (`[0-9a-z.-]` and the owner's node id) are legal KV key
/// characters, and the wallet is written as in [`keyinfo_key`].
pub fn presig_used_key(signer: &str, wallet_id: &str, presig_id: &str) -> String {
    format!("{signer}.{}.{presig_id}", keyinfo_key("ecdsa", wallet_id))
}

fn settled_key(msg_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(msg_id.as_bytes());
    format!("result.{}", hex::encode(digest))
}

/// Read a key of `mpc_requests` that a create just found present. With more than one replica a
/// read is a direct get that any replica may answer, and a follower may not have applied the
/// write yet (JetStream's direct gets are not read-after-write): "absent" right after "exists"
/// means "not visible here yet", so it is read again for up to 2 s before it counts.
async fn get_existing(
    store: &kv::Store,
    bucket: &'static str,
    key: &str,
) -> Result<Option<bytes::Bytes>, RegistryError> {
    let start = Instant::now();
    loop {
        let value = retry::get(store, key).await.map_err(|e| kv_err(bucket)(e.into()))?;
        if value.is_some() || start.elapsed() > Duration::from_secs(2) {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_key_is_lowercase_hex_sha256() {
        assert_eq!(
            settled_key("any message id"),
            "result.6bf3eaf539d003ead29417249dd6ea5a0b0572677ed22fe71899f55453e46f56"
        );
    }
}
