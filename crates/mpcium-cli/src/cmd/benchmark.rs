//! `mpcium-cli benchmark keygen|sign-ecdsa|sign-eddsa|sign-taproot|reshare`: load a running cluster with
//! requests through the Rust client and report throughput, latency percentiles and errors.
//!
//! As the original's command: an Ed25519 initiator key (`--key-path`, `.age` with
//! `--prompt-password`), unique request IDs, `network_internal_code` = `benchmark`, a timeout
//! per operation and `--batch-size` operations in flight. Unlike the original, the batch is a
//! sliding window (a new request leaves as soon as one finishes) rather than lock-step batches,
//! so one slow operation does not idle the rest of its batch; latency is measured per operation
//! from sending to its result, not including time spent waiting for a free slot.
//!
//! Ours: signing requests can declare a value (`--asset`, `--amount`, covered by the initiator's
//! signature) and carry authorizer signatures (`--authorizer ID=PATH`, repeatable), so a cluster
//! with `policy.rules` can be loaded with approved requests. `sign-taproot` (ours) signs random
//! 32-byte sighashes with the wallet's Taproot key, for the BIP86 output key or, with
//! `--merkle-root`, for a script tree's.

mod compare;
mod report;

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mpcium_client::{
    Algorithm, Authorizer, ClientError, ClientId, ClientOptions, KeyType, LocalSigner, MpcClient,
    ReshareRequest, SignRequest,
};
use tokio::task::JoinSet;
use zeroize::Zeroizing;

use crate::cmd::Context;
use crate::nats_client;
use report::{Outcome, Report};

/// Flags of the `benchmark` group (the root's `-c/--config` names the config.yaml whose
/// `nats.*` section says where to connect).
#[derive(Debug, Args)]
pub struct BenchmarkArgs {
    /// The event initiator's Ed25519 private key (hex; `.age` = passphrase-encrypted).
    #[arg(long, global = true, default_value = "./event_initiator.key", value_name = "PATH")]
    pub key_path: PathBuf,
    /// Prompt for the passphrase of an `.age` key file.
    #[arg(short = 'p', long, global = true)]
    pub prompt_password: bool,
    /// Client ID: results are delivered to this client's own durable consumers.
    #[arg(long, global = true)]
    pub client_id: Option<String>,
    /// Print every operation's outcome and latency.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Where to write the text report.
    #[arg(short = 'o', long, global = true, default_value = "benchmark/output.txt", value_name = "PATH")]
    pub output: PathBuf,
    /// Also write the report as JSON here.
    #[arg(long, global = true, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Connect to this NATS URL instead of the config's `nats.url` (no TLS, no credentials).
    #[arg(long, global = true, value_name = "URL")]
    pub nats_url: Option<String>,
    /// An authorizer whose signature every request carries: its id (as in the nodes'
    /// `authorization.authorizer_public_keys`) and its Ed25519 key file (hex seed, as
    /// `generate-authorizer` writes; not `.age`). Repeatable.
    #[arg(long, global = true, value_name = "ID=PATH")]
    pub authorizer: Vec<String>,
    /// First measure the operation's cryptography alone in this process (every party simulated,
    /// about 3 s) and report the end-to-end throughput as a ratio of that limit on this machine.
    #[arg(long, global = true)]
    pub compare: bool,
    /// The cluster's node count, for --compare.
    #[arg(long, global = true, default_value_t = 3, value_name = "N")]
    pub compare_nodes: u16,
    /// The cluster's threshold t (t+1 nodes sign), for --compare.
    #[arg(long, global = true, default_value_t = 1, value_name = "T")]
    pub compare_threshold: u16,

    #[command(subcommand)]
    pub operation: Operation,
}

/// What to benchmark.
#[derive(Debug, Clone, Subcommand)]
pub enum Operation {
    /// Create COUNT wallets (each with its ECDSA, EdDSA and Taproot keys).
    Keygen {
        /// Number of wallets.
        count: usize,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Sign COUNT random 32-byte digests with the wallet's secp256k1 key.
    SignEcdsa {
        /// Number of signatures.
        count: usize,
        /// The wallet.
        wallet_id: String,
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        value: ValueArgs,
    },
    /// Sign COUNT random messages with the wallet's Ed25519 key.
    SignEddsa {
        /// Number of signatures.
        count: usize,
        /// The wallet.
        wallet_id: String,
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        value: ValueArgs,
    },
    /// Sign COUNT random 32-byte sighashes with the wallet's Taproot key (BIP340 Schnorr).
    SignTaproot {
        /// Number of signatures.
        count: usize,
        /// The wallet.
        wallet_id: String,
        /// Sign for the output key of this script tree's merkle root (32 bytes, hex) instead of
        /// the BIP86 key.
        #[arg(long, value_name = "HEX", value_parser = parse_merkle_root)]
        merkle_root: Option<[u8; 32]>,
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        value: ValueArgs,
    },
    /// Reshare the wallet's secp256k1 key COUNT times to the given committee.
    Reshare {
        /// Number of reshares.
        count: usize,
        /// The wallet.
        wallet_id: String,
        /// The new threshold t (t+1 nodes sign).
        #[arg(long = "new-threshold", visible_alias = "nt", default_value_t = 2)]
        new_threshold: i64,
        /// The new committee's node IDs (comma-separated or repeated).
        #[arg(short = 'n', long, required = true, value_delimiter = ',')]
        node_ids: Vec<String>,
        #[command(flatten)]
        load: LoadArgs,
    },
}

/// The value every signing request declares (ours: covered by the initiator's signature, checked
/// against the nodes' `policy.rules`).
#[derive(Debug, Clone, Default, Args)]
pub struct ValueArgs {
    /// The asset the transactions move (e.g. BTC); needs --amount.
    #[arg(long, requires = "amount")]
    pub asset: Option<String>,
    /// The amount, in the asset's smallest unit, as a decimal integer; needs --asset.
    #[arg(long, requires = "asset")]
    pub amount: Option<String>,
}

/// Flags every operation takes.
#[derive(Debug, Clone, Copy, Args)]
pub struct LoadArgs {
    /// Seconds each operation may take.
    #[arg(short = 't', long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Operations in flight at once.
    #[arg(short = 'b', long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
}

impl Operation {
    fn name(&self) -> &'static str {
        match self {
            Operation::Keygen { .. } => "keygen",
            Operation::SignEcdsa { .. } => "sign-ecdsa",
            Operation::SignEddsa { .. } => "sign-eddsa",
            Operation::SignTaproot { .. } => "sign-taproot",
            Operation::Reshare { .. } => "reshare",
        }
    }

    fn count(&self) -> usize {
        match self {
            Operation::Keygen { count, .. }
            | Operation::SignEcdsa { count, .. }
            | Operation::SignEddsa { count, .. }
            | Operation::SignTaproot { count, .. }
            | Operation::Reshare { count, .. } => *count,
        }
    }

    /// The cryptography of one operation, for `--compare` (`None`: no crypto-only figure).
    fn crypto(&self) -> Option<compare::Crypto> {
        match self {
            Operation::Keygen { .. } => Some(compare::Crypto::Keygen),
            Operation::SignEcdsa { .. } => Some(compare::Crypto::Sign(mpcium_tss::KeyType::Secp256k1)),
            Operation::SignEddsa { .. } => Some(compare::Crypto::Sign(mpcium_tss::KeyType::Ed25519)),
            Operation::SignTaproot { .. } => Some(compare::Crypto::Sign(mpcium_tss::KeyType::Taproot)),
            Operation::Reshare { .. } => None,
        }
    }

    fn load(&self) -> LoadArgs {
        match self {
            Operation::Keygen { load, .. }
            | Operation::SignEcdsa { load, .. }
            | Operation::SignEddsa { load, .. }
            | Operation::SignTaproot { load, .. }
            | Operation::Reshare { load, .. } => *load,
        }
    }
}

/// `--merkle-root`: 32 bytes of hex.
fn parse_merkle_root(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text).map_err(|e| format!("not hex: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("a merkle root is 32 bytes, got {}", b.len()))
}

/// Runs the benchmark and writes its reports.
pub fn run(ctx: &Context, args: BenchmarkArgs) -> anyhow::Result<()> {
    if args.operation.count() == 0 {
        bail!("the number of operations must be at least 1");
    }
    let authorizers =
        args.authorizer.iter().map(|a| load_authorizer(a)).collect::<anyhow::Result<Vec<_>>>()?;
    let signer = load_signer(&args.key_path, args.prompt_password)?;
    let client_id = match &args.client_id {
        Some(id) => ClientId::parse(id).with_context(|| format!("invalid --client-id {id:?}"))?,
        None => None,
    };
    let load = args.operation.load();
    let timeout = Duration::from_secs(load.timeout);
    // Before the load, so the two never share the CPU.
    let limit = match (args.compare, args.operation.crypto()) {
        (false, _) => None,
        (true, None) => bail!("--compare has no crypto-only figure for {}", args.operation.name()),
        (true, Some(crypto)) => {
            eprintln!("measuring the cryptography alone (about 3 s)...");
            let limit = compare::measure(crypto, args.compare_nodes, args.compare_threshold, Duration::from_secs(3))
                .with_context(|| {
                    format!(
                        "cannot measure the crypto-only limit for {} nodes, threshold {} (needs 1 <= t < n and Linux /proc)",
                        args.compare_nodes, args.compare_threshold
                    )
                })?;
            Some(limit)
        }
    };
    let runtime = nats_client::runtime()?;
    let mut report = runtime.block_on(async {
        let nats = connect(ctx, args.nats_url.as_deref()).await?;
        let options = ClientOptions::new(Arc::new(signer))
            .client_id(client_id)
            .timeout(timeout)
            .with_authorizers(authorizers);
        let client = MpcClient::with_options(nats, options).await.context("cannot set the client up")?;
        anyhow::Ok(execute(&client, &args.operation, args.debug).await)
    })?;
    report.set_crypto_limit(limit);

    let text = report.to_text();
    print!("{text}");
    write_file(&args.output, text.as_bytes())?;
    println!("Report written to {}", args.output.display());
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).context("cannot encode the JSON report")?;
        write_file(path, &json)?;
        println!("JSON report written to {}", path.display());
    }
    Ok(())
}

fn load_signer(path: &Path, prompt: bool) -> anyhow::Result<LocalSigner> {
    let encrypted = path.extension().is_some_and(|e| e == "age");
    let passphrase = if encrypted {
        if !prompt {
            bail!("{} is age-encrypted: add --prompt-password (-p) to enter its passphrase", path.display());
        }
        let pw = Zeroizing::new(
            rpassword::prompt_password(format!("Passphrase of {}: ", path.display()))
                .context("cannot read the passphrase from the terminal")?,
        );
        Some(pw)
    } else {
        None
    };
    LocalSigner::from_file(Algorithm::Ed25519, path, passphrase.as_deref().map(String::as_str))
        .with_context(|| format!("cannot load the initiator key {}", path.display()))
}

/// `ID=PATH` of `--authorizer`: an Ed25519 authorizer key file.
fn load_authorizer(arg: &str) -> anyhow::Result<Authorizer> {
    let Some((id, path)) = arg.split_once('=').filter(|(id, path)| !id.is_empty() && !path.is_empty()) else {
        bail!("--authorizer {arg:?}: expected ID=PATH");
    };
    let path = Path::new(path);
    if path.extension().is_some_and(|e| e == "age") {
        bail!("--authorizer {id}: {} is age-encrypted; give a decrypted key file", path.display());
    }
    let signer = LocalSigner::from_file(Algorithm::Ed25519, path, None)
        .with_context(|| format!("cannot load authorizer {id}'s key {}", path.display()))?;
    Ok(Authorizer { id: id.to_owned(), signer: Arc::new(signer) })
}

async fn connect(ctx: &Context, nats_url: Option<&str>) -> anyhow::Result<async_nats::Client> {
    if let Some(url) = nats_url {
        let connecting =
            async_nats::ConnectOptions::new().connection_timeout(nats_client::CONNECT_TIMEOUT).connect(url);
        return tokio::time::timeout(nats_client::CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {} s", nats_client::CONNECT_TIMEOUT.as_secs()))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| format!("cannot connect to NATS at {url}"));
    }
    let config =
        ctx.client_config(None).context("cannot load the config (give -c config.yaml or --nats-url)")?;
    nats_client::connect(&config).await
}

/// A unique request ID: `benchmark-<kind>-<i>-<unixnano>-<pid>-<16hex>` (the original's shape).
fn unique_id(kind: &str, index: usize) -> anyhow::Result<String> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
    Ok(format!("benchmark-{kind}-{index}-{nanos}-{}-{}", std::process::id(), hex::encode(random)))
}

fn random_bytes(len: usize) -> anyhow::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
    Ok(bytes)
}

/// The code an error is counted under: the cluster's `error_code`, or a `CLIENT_*` code for
/// failures on this side.
fn error_code(e: &ClientError) -> String {
    if let Some(code) = e.error_code() {
        return code.as_str().to_owned();
    }
    match e {
        ClientError::Timeout { .. } => "CLIENT_TIMEOUT",
        ClientError::Invalid(_) => "CLIENT_INVALID_REQUEST",
        ClientError::AlreadyInFlight { .. } => "CLIENT_DUPLICATE_ID",
        ClientError::Signer(_) => "CLIENT_SIGNER",
        ClientError::Publish { .. } => "CLIENT_PUBLISH",
        ClientError::Closed(_) => "CLIENT_CLOSED",
        _ => "CLIENT_ERROR",
    }
    .to_owned()
}

/// Builds and sends operation `index`; the returned wallet ID is set for keygen.
async fn one(
    client: &MpcClient,
    op: &Operation,
    index: usize,
    timeout: Duration,
) -> Result<Option<String>, String> {
    let prepared = |e: anyhow::Error| {
        tracing::warn!("cannot prepare request {index}: {e:#}");
        "CLIENT_PREPARE".to_owned()
    };
    let result = match op {
        Operation::Keygen { .. } => {
            let wallet_id = unique_id("keygen", index).map_err(prepared)?;
            client.create_wallet_within(&wallet_id, timeout).await.map(|_| Some(wallet_id))
        }
        Operation::SignEcdsa { wallet_id, value, .. }
        | Operation::SignEddsa { wallet_id, value, .. }
        | Operation::SignTaproot { wallet_id, value, .. } => {
            let (key_type, len, merkle_root) = match op {
                Operation::SignEcdsa { .. } => (KeyType::Secp256k1, 32, None),
                Operation::SignTaproot { merkle_root, .. } => (KeyType::Taproot, 32, *merkle_root),
                _ => (KeyType::Ed25519, 64, None),
            };
            let tx_id = unique_id("sign", index).map_err(prepared)?;
            let tx = random_bytes(len).map_err(prepared)?;
            let mut request = SignRequest::new(key_type, wallet_id.as_str(), tx_id, tx)
                .network_internal_code("benchmark")
                .timeout(timeout);
            if let (Some(asset), Some(amount)) = (&value.asset, &value.amount) {
                request = request.value(asset.as_str(), amount.as_str());
            }
            if let Some(root) = merkle_root {
                request = request.taproot_merkle_root(root);
            }
            client.sign(&request).await.map(|_| None)
        }
        Operation::Reshare { wallet_id, new_threshold, node_ids, .. } => {
            match ReshareRequest::new(
                wallet_id.as_str(),
                KeyType::Secp256k1,
                *new_threshold,
                node_ids.clone(),
            ) {
                Ok(request) => client.reshare(&request.timeout(timeout)).await.map(|_| None),
                Err(e) => Err(e),
            }
        }
    };
    result.map_err(|e| {
        tracing::debug!("operation {index} failed: {e}");
        error_code(&e)
    })
}

fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stdout());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Runs every operation, at most `batch_size` in flight, and summarises them.
async fn execute(client: &MpcClient, op: &Operation, debug: bool) -> Report {
    let count = op.count();
    let load = op.load();
    let timeout = Duration::from_secs(load.timeout);
    let in_flight = usize::try_from(load.batch_size).unwrap_or(usize::MAX);
    let op = Arc::new(op.clone());
    let bar = progress_bar(count as u64);
    let mut outcomes = Vec::with_capacity(count);
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut tasks = JoinSet::new();
    let mut next = 0;
    let started = Instant::now();
    while outcomes.len() < count {
        while next < count && tasks.len() < in_flight {
            let (client, task_op) = (client.clone(), op.clone());
            let index = next;
            tasks.spawn(async move {
                let sent = Instant::now();
                let result = one(&client, &task_op, index, timeout).await;
                (index, sent.elapsed(), result)
            });
            next += 1;
            // The original spaces keygen requests 10 ms apart.
            if matches!(*op, Operation::Keygen { .. }) && next < count {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let Some(joined) = tasks.join_next().await else { break };
        let outcome = match joined {
            Ok((index, latency, result)) => {
                if debug {
                    let line = match &result {
                        Ok(_) => format!("#{index}: ok in {:.1} ms", latency.as_secs_f64() * 1000.0),
                        Err(code) => {
                            format!("#{index}: {code} after {:.1} ms", latency.as_secs_f64() * 1000.0)
                        }
                    };
                    bar.suspend(|| eprintln!("{line}"));
                }
                match result {
                    Ok(wallet_id) => Outcome { latency, error: None, wallet_id },
                    Err(code) => Outcome { latency, error: Some(code), wallet_id: None },
                }
            }
            Err(e) => {
                tracing::error!("benchmark task failed: {e}");
                Outcome {
                    latency: started.elapsed(),
                    error: Some("CLIENT_TASK_FAILED".to_owned()),
                    wallet_id: None,
                }
            }
        };
        if let Some(code) = &outcome.error {
            *failures.entry(code.clone()).or_insert(0) += 1;
            let summary: Vec<String> = failures.iter().map(|(c, n)| format!("{c}={n}")).collect();
            bar.set_message(summary.join(" "));
        }
        outcomes.push(outcome);
        bar.inc(1);
    }
    let wall = started.elapsed();
    bar.finish_and_clear();
    Report::new(op.name(), &outcomes, wall, in_flight, timeout)
}

/// Writes a report file, creating its directory.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
