//! Bans of DKLs23 counterparties. A failed OT-extension consistency check tells the party that
//! caused it one bit of this node's OT secret for that pair (selective failure); enough such
//! runs give it the secret and then this node's key share. So, as the `dkls23` crate requires,
//! the counterparty is excluded for good: a durable ban per (wallet, node) in this node's
//! store, for the key version whose OT state is spent, enforced by this node itself in every
//! DKLs23 session (sign, presign) and lifted only by a reshare (a new version, fresh OT state).
//! Bans are also announced in `mpc_bans`, so coordinators pick signers that do not refuse
//! each other; signing goes on with the other holders.

use std::sync::atomic::Ordering;

use mpcium_api::ErrorCode;
use mpcium_tss::Protocol;

use super::{Failure, Service};
use crate::registry::bans::BanNotice;
use crate::session::{SessionError, SessionSpec, run_protocol};
use crate::transport::SessionInbox;

impl Service {
    /// Count the bans held in the store (for `/metrics`), at start.
    pub(super) fn count_bans(&self) {
        match self.store.all_bans() {
            Ok(bans) => self.metrics.bans.store(bans.len() as u64, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "cannot read the ban list"),
        }
    }

    /// Refuse a DKLs23 session of `wallet` at `version` with any node this node banned.
    pub(super) fn refuse_banned(
        &self,
        wallet: &str,
        version: u32,
        members: &[String],
    ) -> Result<(), Failure> {
        let bans = self.store.bans(wallet).map_err(Failure::because(ErrorCode::StorageRead))?;
        match bans.iter().find(|b| b.key_version == version && members.contains(&b.node_id)) {
            Some(ban) => Err(Failure::new(
                ErrorCode::OperationAborted,
                format!("{} is banned by {} for wallet {wallet}: {}", ban.node_id, self.me(), ban.reason),
            )),
            None => Ok(()),
        }
    }

    /// Run a DKLs23 protocol of `wallet` at `version`; a ban it ends with is recorded (store,
    /// log, metric, announcement) before the failure is returned.
    pub(super) async fn run_dkls<P: Protocol>(
        &self,
        wallet: &str,
        version: u32,
        inbox: &mut SessionInbox,
        spec: &SessionSpec,
        protocol: P,
    ) -> Result<P::Output, Failure> {
        match run_protocol(&self.transport, inbox, spec, protocol).await {
            Ok(out) => Ok(out),
            Err(SessionError::Banned { culprits, reason }) => {
                for node in &culprits {
                    self.record_ban(wallet, version, node, &reason).await;
                }
                Err(SessionError::Banned { culprits, reason }.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn record_ban(&self, wallet: &str, version: u32, node: &str, reason: &str) {
        let ban = mpcium_store::Ban {
            node_id: node.to_owned(),
            key_version: version,
            reason: reason.to_owned(),
            at: mpcium_store::fsutil::UtcTime::now().rfc3339(),
        };
        match self.store.put_ban(wallet, &ban) {
            Ok(()) => {
                tracing::error!(
                    wallet,
                    banned = node,
                    key_version = version,
                    reason,
                    "DKLs23 counterparty banned for this key"
                );
                self.count_bans();
            }
            // The store is the ban list: a ban it could not keep is not enforced. Say so loudly.
            Err(e) => tracing::error!(wallet, banned = node, error = %e, "could not store a ban"),
        }
        let notice = BanNotice {
            wallet_id: wallet.to_owned(),
            by: self.me().to_owned(),
            banned: node.to_owned(),
            key_version: version,
        };
        if let Err(e) = self.registry.announce_ban(wallet, notice).await {
            tracing::warn!(wallet, banned = node, error = %e, "could not announce a ban");
        }
    }

    /// Pairs of nodes that must not run DKLs23 together for `wallet` at `version`: every ban
    /// announced, and this node's own.
    pub(super) async fn ban_conflicts(&self, wallet: &str, version: u32) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = match self.registry.ban_notices(wallet).await {
            Ok(list) => {
                list.into_iter().filter(|n| n.key_version == version).map(|n| (n.by, n.banned)).collect()
            }
            Err(e) => {
                tracing::warn!(wallet, error = %e, "cannot read announced bans");
                Vec::new()
            }
        };
        if let Ok(own) = self.store.bans(wallet) {
            pairs.extend(
                own.into_iter()
                    .filter(|b| b.key_version == version)
                    .map(|b| (self.me().to_owned(), b.node_id)),
            );
        }
        pairs
    }

    /// A reshare made `new_version`: bans of older versions no longer apply.
    pub(super) fn lift_bans(&self, wallet: &str, new_version: u32) {
        match self.store.lift_bans_before(wallet, new_version) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(wallet, lifted = n, key_version = new_version, "bans lifted by a reshare");
                self.count_bans();
            }
            Err(e) => tracing::warn!(wallet, error = %e, "could not lift bans"),
        }
    }
}
