//! The bodies of the fuzz targets (one module per target in `fuzz_targets/`), and the fixed keys
//! they and the seed generator (`examples/gen_seeds.rs`) share.
//!
//! Each `run` feeds one input to a decoder of outside data exactly as the node or a tool does, then
//! exercises what is done with a decoded value next (validation, signature checks, re-encoding).
//! A panic anywhere is a finding; where decode → encode → decode must give the same value, an
//! `assert!` says so. The bodies live in a library so that `cargo test` here replays the seeds
//! without the fuzzing toolchain.

use std::sync::LazyLock;

/// Fixed keys: seeds signed with them verify in the targets, so the fuzzer starts from inputs
/// that pass the signature checks and reaches the code behind them.
pub mod fixtures {
    use std::collections::BTreeMap;

    use mpcium_api::{AuthorizationPolicy, PublicKey};
    use mpcium_store::backup::BackupMetadata;
    use mpcium_store::kdf::{KdfParams, KdfRecord};

    use super::LazyLock;

    /// The initiator's Ed25519 key.
    pub static INITIATOR_ED25519: LazyLock<ed25519_dalek::SigningKey> =
        LazyLock::new(|| ed25519_dalek::SigningKey::from_bytes(&[0x11; 32]));
    /// The initiator's P-256 key.
    pub static INITIATOR_P256: LazyLock<p256::ecdsa::SigningKey> = LazyLock::new(|| {
        p256::ecdsa::SigningKey::from_slice(&[0x33; 32]).expect("0x33.. is a valid P-256 scalar")
    });
    /// The authorizer `auth1` (Ed25519).
    pub static AUTHORIZER: LazyLock<ed25519_dalek::SigningKey> =
        LazyLock::new(|| ed25519_dalek::SigningKey::from_bytes(&[0x22; 32]));
    /// Id of [`AUTHORIZER`] in the policy.
    pub const AUTHORIZER_ID: &str = "auth1";
    /// A node's identity key (envelopes, ready records).
    pub static NODE_IDENTITY: LazyLock<ed25519_dalek::SigningKey> =
        LazyLock::new(|| ed25519_dalek::SigningKey::from_bytes(&[0x44; 32]));
    /// The backup key the backup target decrypts with.
    pub const BACKUP_KEY: [u8; 32] = [0x55; 32];

    /// The initiator keys as the node holds them.
    pub fn initiator_keys() -> [PublicKey; 2] {
        [
            PublicKey::Ed25519(INITIATOR_ED25519.verifying_key()),
            PublicKey::P256(*INITIATOR_P256.verifying_key()),
        ]
    }

    /// Authorization on, with `auth1` (Ed25519) and `auth2` (the P-256 key); `auth1` required
    /// when `require` is set.
    pub fn authorization(require: bool) -> AuthorizationPolicy {
        let mut keys = BTreeMap::new();
        keys.insert(AUTHORIZER_ID.to_owned(), PublicKey::Ed25519(AUTHORIZER.verifying_key()));
        keys.insert("auth2".to_owned(), PublicKey::P256(*INITIATOR_P256.verifying_key()));
        let required = if require { vec![AUTHORIZER_ID.to_owned()] } else { Vec::new() };
        AuthorizationPolicy { enabled: true, required, keys, rules: Vec::new() }
    }

    /// Well-formed backup metadata (the structured backup mode seals chunks under it).
    pub fn backup_metadata() -> BackupMetadata {
        BackupMetadata {
            format: 1,
            algo: "XChaCha20-Poly1305".into(),
            kdf: KdfRecord { alg: "argon2id".into(), salt: "00".repeat(16), params: KdfParams::PRODUCTION },
            nonce: "000102030405060708090a0b0c0d0e0f".into(),
            created_at: "2026-11-22T00:00:00Z".into(),
            node_name: "node0".into(),
            version: 1,
            since: 0,
            next_since: 3,
            full: true,
            encryption_key_id: "0011223344556677".into(),
        }
    }
}

/// Client requests: what the node does with a raw request body (`Service::check_request`):
/// decode, validate, re-derive the signed bytes, verify the initiator, apply the authorizers.
/// Input: a selector byte (keygen / sign / reshare / ClientID header) and the body.
pub mod client_request {
    use std::fmt::Debug;

    use mpcium_api::canonical::authorizer_payload;
    use mpcium_api::{
        ClientId, DecodeError, GenerateKeyMessage, InitiatorMessage, MAX_MESSAGE_BYTES, ResharingMessage,
        SignTxRequest, SigningMode, ValidationError, verify_initiator,
    };

    use super::fixtures;

    /// One input.
    pub fn run(data: &[u8]) {
        let Some((&selector, body)) = data.split_first() else { return };
        match selector % 4 {
            0 => check(body, GenerateKeyMessage::from_json, GenerateKeyMessage::to_json, |m| m.validate()),
            // As the node reads it: the original's fields and ours (`asset`, `amount`,
            // `taproot_merkle_root`).
            1 => check(body, SignTxRequest::from_json, SignTxRequest::to_json, |m| m.validate()),
            2 => check(body, ResharingMessage::from_json, ResharingMessage::to_json, |m| m.validate()),
            _ => {
                // The `ClientID` header of a request.
                if let Ok(text) = std::str::from_utf8(body)
                    && let Err(e) = ClientId::parse(text)
                {
                    let _ = (e.error_code(), e.to_string());
                }
            }
        }
    }

    fn check<M: InitiatorMessage + PartialEq + Debug>(
        body: &[u8],
        decode: fn(&[u8]) -> Result<M, DecodeError>,
        encode: fn(&M) -> String,
        validate: fn(&M) -> Result<(), ValidationError>,
    ) {
        let msg = match decode(body) {
            Ok(m) => m,
            Err(e) => {
                let _ = (e.error_code(), e.to_string());
                return;
            }
        };
        if let Err(e) = validate(&msg) {
            let _ = (e.error_code(), e.to_string());
        }
        let keys = fixtures::initiator_keys();
        let policies = [fixtures::authorization(false), fixtures::authorization(true)];
        for mode in [SigningMode::Compatible, SigningMode::Strict] {
            for key in &keys {
                if let Err(e) = verify_initiator(&msg, key, mode) {
                    let _ = (e.error_code(), e.to_string());
                }
            }
            for policy in &policies {
                if let Err(e) = policy.authorize(&msg, mode) {
                    let _ = (e.error_code(), e.to_string());
                }
            }
            let _ = authorizer_payload(&msg, mode);
        }

        // Our encoding of a decoded request decodes again, is a fixed point, and signs the
        // same bytes: a request relayed by the node (session start) verifies as received.
        let encoded = encode(&msg);
        if encoded.len() > MAX_MESSAGE_BYTES {
            return;
        }
        let again = match decode(encoded.as_bytes()) {
            Ok(m) => m,
            Err(e) => panic!("our own encoding {encoded:?} does not decode: {e}"),
        };
        assert_eq!(encode(&again), encoded, "encoding is not a fixed point");
        for mode in [SigningMode::Compatible, SigningMode::Strict] {
            assert_eq!(
                again.signed_bytes(mode),
                msg.signed_bytes(mode),
                "re-encoding changed the signed bytes"
            );
        }
    }
}

/// Node envelopes: `Envelope::decode` of bytes from NATS, then what the transport does next
/// (signature check, opening a private payload, decoding a control payload).
pub mod node_envelope {
    use mpcium_node::envelope::{Envelope, Kind};
    use mpcium_node::pairkey::{ExchangeKey, PairKey};

    use super::{LazyLock, fixtures, node_control};

    static PAIR_KEY: LazyLock<Option<PairKey>> = LazyLock::new(|| {
        let (mine, theirs) = (ExchangeKey::generate(), ExchangeKey::generate());
        mine.pair_key("node0", "node1", &theirs.public())
    });

    /// One input.
    pub fn run(data: &[u8]) {
        let env = match Envelope::decode(data) {
            Ok(env) => env,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        };
        // The format has exactly one encoding per envelope (the signature covers it).
        assert_eq!(env.encode(), data, "decode → encode is not the identity");
        let _ = env.verify(&fixtures::NODE_IDENTITY.verifying_key());
        let _ = env.digest();
        match env.kind {
            Kind::Private => {
                if let Some(key) = PAIR_KEY.as_ref() {
                    let me = env.recipients.first().cloned().unwrap_or_default();
                    let _ = env.open(&me, key);
                    let _ = env.open("someone-else", key);
                }
            }
            Kind::Control => node_control::run(&env.payload),
            Kind::Broadcast => {}
        }
    }
}

/// Node control messages: `Control::decode` of the JSON inside a control envelope.
pub mod node_control {
    use mpcium_node::control::Control;

    /// One input.
    pub fn run(data: &[u8]) {
        let control = match Control::decode(data) {
            Ok(c) => c,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        };
        if let Control::Start(start) = &control {
            let _ = start.request_bytes();
        }
        let encoded = control.encode();
        let again = match Control::decode(&encoded) {
            Ok(c) => c,
            Err(e) => panic!("our own encoding does not decode: {e}"),
        };
        // Every field is typed (the outcome too), so a round trip is exact.
        assert_eq!(control, again, "decode → encode → decode changed the message");
    }
}

/// Registry records read from the NATS KV buckets: the signed ready record (`mpc_ready`) and
/// the key info (`mpc_keyinfo`), plus the KV key derived from a client's wallet id.
/// Input: a selector byte and the record's JSON (or the wallet id).
pub mod registry_record {
    use mpcium_node::registry::{KeyInfo, ReadyRecord, keyinfo_key};

    use super::fixtures;

    /// One input.
    pub fn run(data: &[u8]) {
        let Some((&selector, body)) = data.split_first() else { return };
        match selector % 3 {
            0 => {
                let Ok(record) = serde_json::from_slice::<ReadyRecord>(body) else { return };
                let _ = record.verify(&fixtures::NODE_IDENTITY.verifying_key());
                round_trip(&record);
            }
            1 => {
                let Ok(info) = serde_json::from_slice::<KeyInfo>(body) else { return };
                round_trip(&info);
            }
            _ => {
                if let Ok(wallet) = std::str::from_utf8(body) {
                    let key = keyinfo_key("ecdsa", wallet);
                    // A KV key is made of [A-Za-z0-9_=.-] only.
                    assert!(
                        key.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'.')),
                        "illegal KV key {key:?}"
                    );
                }
            }
        }
    }

    fn round_trip<T>(value: &T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let encoded = match serde_json::to_vec(value) {
            Ok(e) => e,
            Err(e) => panic!("a decoded record does not encode: {e}"),
        };
        match serde_json::from_slice::<T>(&encoded) {
            Ok(again) => assert_eq!(&again, value, "decode → encode → decode changed the record"),
            Err(e) => panic!("our own encoding does not decode: {e}"),
        }
    }
}

/// Node configuration: `NodeConfig::from_yaml` (what `mpcium start` runs on config.yaml) and
/// `ClientConfig::from_yaml` (the CLI), with an environment.
/// Input: YAML text, optionally followed by a NUL byte and `NAME=value` lines as the environment.
pub mod node_config {
    use std::collections::HashMap;

    use mpcium_config::{ClientConfig, NodeConfig, NodeOverrides};

    /// One input.
    pub fn run(data: &[u8]) {
        let (yaml, env) = match data.iter().position(|b| *b == 0) {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &[][..]),
        };
        // The loader reads the file into a String: non-UTF-8 never reaches the parser.
        let Ok(yaml) = std::str::from_utf8(yaml) else { return };
        let env: HashMap<String, String> = String::from_utf8_lossy(env)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let lookup = |name: &str| env.get(name).cloned();
        match NodeConfig::from_yaml(yaml, &lookup, NodeOverrides::default()) {
            Ok((config, warnings)) => {
                let _ = format!("{config:?}");
                for w in warnings {
                    let _ = w.to_string();
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        if let Err(e) = ClientConfig::from_yaml(yaml, &lookup) {
            let _ = e.to_string();
        }
    }
}

/// Backup files: the reader `mpcium-cli recover` runs (header, metadata, sealed chunks, frames).
/// Input: a selector byte, then
/// - 0: a whole backup file, decrypted with [`fixtures::BACKUP_KEY`];
/// - 1: chunk plaintexts (each `u16 BE length ‖ bytes`), sealed under a valid header with the key,
///   so the frame parser behind the authenticated encryption is reached;
/// - 2: the metadata JSON, put behind the magic and its length;
/// - 3: `latest.version` JSON.
pub mod backup_file {
    use mpcium_store::backup::fuzzing::{decode_backup, seal_backup};
    use mpcium_store::backup::{BACKUP_MAGIC, LatestVersion};
    use mpcium_store::kdf::KdfPolicy;

    use super::fixtures;

    /// One input.
    pub fn run(data: &[u8]) {
        let Some((&selector, body)) = data.split_first() else { return };
        match selector % 4 {
            0 => decode(body),
            1 => sealed_chunks(body),
            2 => {
                let mut file = BACKUP_MAGIC.to_vec();
                file.extend_from_slice(&(body.len() as u32).to_be_bytes());
                file.extend_from_slice(body);
                decode(&file);
            }
            _ => {
                if let Ok(latest) = serde_json::from_slice::<LatestVersion>(body) {
                    let _ = serde_json::to_vec(&latest);
                }
            }
        }
    }

    fn decode(file: &[u8]) {
        match decode_backup(file, &fixtures::BACKUP_KEY) {
            // Recovery checks the KDF parameters of every file before deriving its key.
            Ok((meta, _)) => {
                let _ = meta.kdf.params.check(KdfPolicy::Production);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }

    fn sealed_chunks(mut body: &[u8]) {
        let mut chunks = Vec::new();
        while body.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([body[0], body[1]])).min(body.len() - 2);
            chunks.push(&body[2..2 + len]);
            body = &body[2 + len..];
        }
        let meta = fixtures::backup_metadata();
        let file = match seal_backup(&meta, &chunks, &fixtures::BACKUP_KEY) {
            Ok(f) => f,
            Err(e) => panic!("sealing fuzz chunks failed: {e}"),
        };
        match decode_backup(&file, &fixtures::BACKUP_KEY) {
            Ok((read, frames)) => {
                assert_eq!(read, meta);
                assert!(!chunks.is_empty());
                // A frame takes at least 3 bytes (op + key length).
                let total: usize = chunks.iter().map(|c| c.len()).sum();
                assert!(frames as usize <= total / 3, "{frames} frames from {total} bytes");
            }
            Err(e) => {
                // Correctly sealed chunks always authenticate: only their contents can be wrong.
                let reason = e.to_string();
                assert!(
                    !reason.contains("authentication") && !reason.contains("invalid length"),
                    "a correctly sealed file was refused: {reason}"
                );
                assert!(chunks.is_empty() || reason.contains("chunk"), "unexpected error: {reason}");
            }
        }
    }
}

/// Key-share blobs loaded from the store: ECDSA, EdDSA and Taproot `KeyShare::from_bytes` and
/// ECDSA `Presignature::from_bytes`. Input: a selector byte, then either the blob as stored
/// (selectors 0, 2, 4, 6) or its body, to which the harness adds a correct version and checksum
/// (1, 3, 5, 7), so the fuzzer reaches the decoder and the consistency checks behind the checksum.
pub mod key_share {
    use mpcium_tss::{ecdsa, eddsa, taproot};
    use sha2::{Digest, Sha256};

    /// One input.
    pub fn run(data: &[u8]) {
        let Some((&selector, body)) = data.split_first() else { return };
        match selector % 8 {
            0 => ecdsa_share(body, false),
            1 => ecdsa_share(&ecdsa_blob(body), true),
            2 => eddsa_share(body, false),
            3 => eddsa_share(&eddsa_blob(body), true),
            4 => presignature(body, false),
            5 => presignature(&ecdsa_blob(body), true),
            6 => taproot_share(body, false),
            _ => taproot_share(&taproot_blob(body), true),
        }
    }

    /// `[version 1 u16 BE][body][SHA-256 of what precedes]` (ECDSA share and presignature).
    pub fn ecdsa_blob(body: &[u8]) -> Vec<u8> {
        let mut out = 1u16.to_be_bytes().to_vec();
        out.extend_from_slice(body);
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// `[body][SHA-256("mpcium-tss/eddsa/key-share" ‖ body)]` (EdDSA share).
    pub fn eddsa_blob(body: &[u8]) -> Vec<u8> {
        frost_blob("eddsa", body)
    }

    /// `[body][SHA-256("mpcium-tss/taproot/key-share" ‖ body)]` (Taproot share).
    pub fn taproot_blob(body: &[u8]) -> Vec<u8> {
        frost_blob("taproot", body)
    }

    fn frost_blob(suite: &str, body: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(format!("mpcium-tss/{suite}/key-share").as_bytes());
        h.update(body);
        let mut out = body.to_vec();
        out.extend_from_slice(&h.finalize());
        out
    }

    fn ecdsa_share(blob: &[u8], checksum_fixed: bool) {
        match ecdsa::KeyShare::from_bytes(blob) {
            Ok(share) => {
                let _ = (share.id(), share.participants(), share.public_key_xy(), format!("{share:?}"));
                let encoded = share.to_bytes().expect("a loaded share encodes");
                let again = ecdsa::KeyShare::from_bytes(&encoded).expect("our own encoding loads");
                assert_eq!(*again.to_bytes().expect("encodes"), *encoded, "re-encoding changed the share");
            }
            Err(e) => {
                let text = e.to_string();
                // Keeps the harness honest: its checksum must be the one the crate checks.
                assert!(!(checksum_fixed && text.contains("checksum")), "{text}");
            }
        }
    }

    fn eddsa_share(blob: &[u8], checksum_fixed: bool) {
        match eddsa::KeyShare::from_bytes(blob) {
            Ok(share) => {
                let _ = format!("{share:?}");
                let encoded = share.to_bytes().expect("a loaded share encodes");
                let again = eddsa::KeyShare::from_bytes(&encoded).expect("our own encoding loads");
                assert_eq!(*again.to_bytes().expect("encodes"), *encoded, "re-encoding changed the share");
            }
            Err(e) => {
                let text = e.to_string();
                assert!(!(checksum_fixed && text.contains("checksum")), "{text}");
            }
        }
    }

    fn taproot_share(blob: &[u8], checksum_fixed: bool) {
        match taproot::KeyShare::from_bytes(blob) {
            Ok(share) => {
                let _ = (format!("{share:?}"), share.x_only_public_key());
                let encoded = share.to_bytes().expect("a loaded share encodes");
                let again = taproot::KeyShare::from_bytes(&encoded).expect("our own encoding loads");
                assert_eq!(*again.to_bytes().expect("encodes"), *encoded, "re-encoding changed the share");
            }
            Err(e) => {
                let text = e.to_string();
                assert!(!(checksum_fixed && text.contains("checksum")), "{text}");
            }
        }
    }

    fn presignature(blob: &[u8], checksum_fixed: bool) {
        match ecdsa::Presignature::from_bytes(blob) {
            Ok(p) => {
                let _ = (p.id(), p.party_id(), p.signers(), p.public_key(), format!("{p:?}"));
                let encoded = p.to_bytes().expect("a loaded presignature encodes");
                let again = ecdsa::Presignature::from_bytes(&encoded).expect("our own encoding loads");
                assert_eq!(*again.to_bytes().expect("encodes"), *encoded, "re-encoding changed it");
            }
            Err(e) => {
                let text = e.to_string();
                assert!(!(checksum_fixed && text.contains("checksum")), "{text}");
            }
        }
    }
}

/// FROST protocol messages (Ed25519 and Taproot keygen and signing) as a party receives them
/// from a peer. Input: a selector byte (suite and protocol), then the message. Party 1 of a
/// 2-of-2 run gets the message from party 2: the run must never panic, and a message it cannot
/// use must fail the run naming party 2 and no one else (identifiable abort).
pub mod frost_message {
    use mpcium_tss::protocol::{ExecutionContext, Operation};
    use mpcium_tss::{Action, ExecutionId, KeyType, Protocol, ProtocolError, eddsa, taproot};
    use std::sync::OnceLock;

    fn exec(operation: Operation, key_type: KeyType) -> ExecutionId {
        ExecutionId::new(&ExecutionContext {
            operation,
            key_type,
            wallet_id: "fuzz",
            key_version: 0,
            participants: &["a", "b"],
            new_participants: &[],
            request_id: "fuzz",
        })
    }

    /// The execution ids the harness runs under (seeds are made with them).
    pub fn keygen_exec(key_type: KeyType) -> ExecutionId {
        exec(Operation::Keygen, key_type)
    }

    /// See [`keygen_exec`].
    pub fn sign_exec(key_type: KeyType) -> ExecutionId {
        exec(Operation::Sign, key_type)
    }

    fn first<T>(results: Vec<(u16, Result<T, ProtocolError>)>) -> T {
        results.into_iter().next().expect("party 1").1.expect("keygen")
    }

    /// Fixed 2-of-2 shares, made once per process.
    fn shares() -> &'static (eddsa::KeyShare, taproot::KeyShare) {
        static SHARES: OnceLock<(eddsa::KeyShare, taproot::KeyShare)> = OnceLock::new();
        SHARES.get_or_init(|| {
            let ed = mpcium_tss::simulate(
                (1..=2)
                    .map(|p| {
                        (p, eddsa::Keygen::new(keygen_exec(KeyType::Ed25519), p, &[1, 2], 1).expect("keygen"))
                    })
                    .collect(),
            );
            let tr = mpcium_tss::simulate(
                (1..=2)
                    .map(|p| {
                        (
                            p,
                            taproot::Keygen::new(keygen_exec(KeyType::Taproot), p, &[1, 2], 1)
                                .expect("keygen"),
                        )
                    })
                    .collect(),
            );
            (first(ed), first(tr))
        })
    }

    /// One input.
    pub fn run(data: &[u8]) {
        let Some((&selector, message)) = data.split_first() else { return };
        let (ed, tr) = shares();
        match selector % 4 {
            0 => feed(
                eddsa::Keygen::new(keygen_exec(KeyType::Ed25519), 1, &[1, 2], 1).expect("start"),
                message,
            ),
            1 => feed(
                eddsa::Sign::new(sign_exec(KeyType::Ed25519), ed, &[1, 2], b"m").expect("start"),
                message,
            ),
            2 => feed(
                taproot::Keygen::new(keygen_exec(KeyType::Taproot), 1, &[1, 2], 1).expect("start"),
                message,
            ),
            _ => feed(
                taproot::Sign::new(sign_exec(KeyType::Taproot), tr, &[1, 2], &[7; 32], Some([9; 32]))
                    .expect("start"),
                message,
            ),
        }
    }

    fn feed<P: Protocol>(mut party: P, message: &[u8]) {
        // Let party 1 send what it sends first, then hand it the peer's message.
        loop {
            match party.poke() {
                Ok(Action::Wait) => break,
                Ok(Action::Return(_)) => panic!("a 2-party run returned before hearing from its peer"),
                Ok(_) => {}
                Err(e) => panic!("the run failed before any input: {e}"),
            }
        }
        party.message(2, message.to_vec());
        loop {
            match party.poke() {
                Ok(Action::Wait) | Ok(Action::Return(_)) => return,
                Ok(_) => {}
                Err(ProtocolError::Faulty { parties, .. }) => {
                    assert_eq!(parties, vec![2], "blame must name the sender only");
                    return;
                }
                Err(e) => panic!("a peer's message caused a non-attributable failure: {e}"),
            }
        }
    }
}
