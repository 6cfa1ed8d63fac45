//! `mpcium-cli migrate import`: stage an original mpcium node's wallet shares in this node's
//! store, so the cluster can convert them (MIGRATING.md). Every share is checked before anything
//! is written (its key info's holders and threshold, its own public data); one bad share and
//! nothing is imported.

mod exporter;
mod handoff;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use mpcium_store::{ShareKind, Store, StoreOptions};

use super::Context;
use crate::password::{PasswordArgs, current_password, read_password_file};
use handoff::{ExportedShare, LegacyKeyInfo, Staged};

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub command: MigrateCommand,
}

/// `migrate` subcommands.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Stage the wallet shares of a stopped original node (its Badger directory or its backup
    /// files) in this node's store, checked against the original's key info.
    Import(ImportArgs),
}

/// Arguments of `migrate import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The original node's Badger directory (`<db_path>/<node name>`); the node must be stopped.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "from_backups",
        required_unless_present = "from_backups"
    )]
    pub from_db: Option<PathBuf>,
    /// A directory of the original node's `backup-*.enc` files (one node's only).
    #[arg(long, value_name = "DIR")]
    pub from_backups: Option<PathBuf>,
    /// File holding the original's `badger_password` (otherwise prompted).
    #[arg(long, value_name = "FILE")]
    pub legacy_password_file: Option<PathBuf>,
    /// The original's key info, as `consul kv export threshold_keyinfo/` prints it.
    #[arg(long, value_name = "FILE", required_unless_present = "threshold")]
    pub keyinfo: Option<PathBuf>,
    /// The threshold of keys the key info file does not list (default: such keys are refused).
    #[arg(long, value_name = "T")]
    pub threshold: Option<u16>,
    /// The original node id this data must belong to (a check; default: whichever it is).
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// Import only this wallet (repeatable; default: every wallet found).
    #[arg(long = "wallet", value_name = "ID")]
    pub wallets: Vec<String>,
    /// The exporter binary (default: `mpcium-legacy-export` beside this binary, else on PATH).
    #[arg(long, value_name = "PATH")]
    pub exporter: Option<PathBuf>,
    /// This node's store file (`<db_path>/<node name>.db`); created if missing.
    #[arg(long, value_name = "PATH")]
    pub db_path: PathBuf,
    /// Check everything and print what would be staged, writing nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// Runs `migrate`.
pub fn run(ctx: &Context, args: MigrateArgs) -> anyhow::Result<()> {
    match args.command {
        MigrateCommand::Import(a) => import(ctx, a),
    }
}

fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    let keyinfo = match &args.keyinfo {
        Some(path) => handoff::parse_keyinfo(
            &std::fs::read(path).with_context(|| format!("cannot read key info file {}", path.display()))?,
        )?,
        None => BTreeMap::new(),
    };
    let legacy_password = match &args.legacy_password_file {
        Some(path) => read_password_file(path)?,
        None => zeroize::Zeroizing::new(
            rpassword::prompt_password("the original's badger_password: ")
                .context("cannot read the original's password from the terminal")?,
        ),
    };
    let source = match (&args.from_db, &args.from_backups) {
        (Some(db), _) => exporter::Source::Badger(db),
        (None, Some(dir)) => exporter::Source::Backups(dir),
        (None, None) => anyhow::bail!("give --from-db or --from-backups"),
    };
    let exporter = exporter::locate(args.exporter.as_deref());
    let plain = exporter::export(&exporter, source, &args.wallets, &legacy_password)?;
    let export = handoff::parse_export(&plain)?;
    drop(plain);

    let (staged, skipped, mut errors) = check_all(&export.shares, &keyinfo, args.threshold);
    errors.extend(one_key_per_wallet(&staged));
    let nodes: std::collections::BTreeSet<&str> = staged.iter().map(|s| s.node_id.as_str()).collect();
    if nodes.len() > 1 {
        errors.push(format!(
            "the data holds shares of several nodes {nodes:?}: import one node's data at a time"
        ));
    }
    if let (Some(want), Some(got)) = (&args.node_id, nodes.iter().next())
        && want != got
    {
        errors.push(format!("the data belongs to node {got}, not {want}"));
    }
    for s in &skipped {
        println!("skipped {s}");
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        anyhow::bail!("{} share(s) refused; nothing was imported", errors.len());
    }
    if staged.is_empty() {
        anyhow::bail!("no wallet to import");
    }
    for s in &staged {
        println!(
            "{} {} version {} threshold {} holders {} public key {}",
            s.wallet,
            curve_name(s.kind),
            s.version,
            s.threshold,
            s.record.holders.len(),
            s.public_key
        );
    }
    if args.dry_run {
        println!(
            "dry run: {} share(s) of node {} checked; nothing written",
            staged.len(),
            nodes.iter().next().unwrap_or(&"?")
        );
        return Ok(());
    }
    let config = ctx.store_config()?;
    let password = current_password(&args.password, &config, "store password")?;
    if let Some(parent) = args.db_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let store = Store::open_or_create(&args.db_path, password.as_bytes(), &StoreOptions::production())
        .with_context(|| format!("store {}", args.db_path.display()))?;
    let entries: Vec<(ShareKind, &str, u32, &mpcium_store::LegacyShareRecord)> =
        staged.iter().map(|s| (s.kind, s.wallet.as_str(), s.version, &s.record)).collect();
    store.put_legacy_shares(&entries).context("nothing was imported")?;
    println!(
        "staged {} share(s) of node {} in {}; once every node is imported and the cluster is up, convert each wallet and key type with a reshare request (MIGRATING.md)",
        staged.len(),
        nodes.iter().next().unwrap_or(&"?"),
        args.db_path.display()
    );
    Ok(())
}

/// A node holds one share per key, so two wallets with one public key mean a share was stored
/// under the wrong wallet (its own data is consistent, so only this comparison shows it).
fn one_key_per_wallet(staged: &[Staged]) -> Vec<String> {
    let mut seen: BTreeMap<(ShareKind, &str), &str> = BTreeMap::new();
    let mut errors = Vec::new();
    for s in staged {
        if let Some(other) = seen.insert((s.kind, s.public_key.as_str()), s.wallet.as_str()) {
            errors.push(format!(
                "wallets {other} and {} hold shares of one {} key ({}): a share is stored under the wrong wallet",
                s.wallet,
                curve_name(s.kind),
                s.public_key
            ));
        }
    }
    errors
}

fn curve_name(kind: ShareKind) -> &'static str {
    match kind {
        ShareKind::Ecdsa => "secp256k1",
        ShareKind::Eddsa => "ed25519",
        // The original has no Taproot shares: an export never holds one.
        ShareKind::Taproot => "taproot",
    }
}

/// Pick, for each wallet and key type, the share of the version its key info names (others are
/// stale: skipped), and check it. Returns the staged shares, the skipped ones, and every error.
fn check_all(
    shares: &[ExportedShare],
    keyinfo: &BTreeMap<(ShareKind, String), LegacyKeyInfo>,
    threshold: Option<u16>,
) -> (Vec<Staged>, Vec<String>, Vec<String>) {
    let mut by_key: BTreeMap<(ShareKind, String), Vec<&ExportedShare>> = BTreeMap::new();
    let mut errors = Vec::new();
    for s in shares {
        match handoff::kind_of(&s.curve) {
            Ok(kind) => by_key.entry((kind, s.wallet_id.clone())).or_default().push(s),
            Err(e) => errors.push(format!("{}: {e}", s.badger_key)),
        }
    }
    let (mut staged, mut skipped) = (Vec::new(), Vec::new());
    for ((kind, wallet), versions) in by_key {
        let name = format!("{wallet} ({})", curve_name(kind));
        let (chosen, t, holders) = match keyinfo.get(&(kind, wallet.clone())) {
            Some(info) => match versions.iter().find(|s| s.version == info.version) {
                Some(s) => (*s, info.threshold, Some(info.participant_peer_ids.as_slice())),
                None => {
                    errors.push(format!(
                        "{name}: the key info names version {}, the data holds {:?}",
                        info.version,
                        versions.iter().map(|s| s.version).collect::<Vec<_>>()
                    ));
                    continue;
                }
            },
            None => match threshold {
                Some(t) => (*versions.iter().max_by_key(|s| s.version).expect("non-empty"), t, None),
                None => {
                    errors.push(format!("{name}: no key info for it; give its key info or --threshold"));
                    continue;
                }
            },
        };
        for s in versions.iter().filter(|s| s.version != chosen.version) {
            skipped.push(format!("{} (stale: version {} is current)", s.badger_key, chosen.version));
        }
        match handoff::stage(chosen, t, holders) {
            Ok(s) => staged.push(s),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (staged, skipped, errors)
}
