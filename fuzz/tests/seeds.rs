//! Replays every committed seed through its target's body without the fuzzing toolchain
//! (`cd fuzz && cargo test`): the seeds must stay valid inputs and the harness assertions
//! must hold on them.

use std::fs;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        run(&fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count >= 2, "{target}: only {count} seeds");
}

#[test]
fn client_request_seeds() {
    replay("client_request", mpcium_fuzz::client_request::run);
}

#[test]
fn node_envelope_seeds() {
    replay("node_envelope", mpcium_fuzz::node_envelope::run);
}

#[test]
fn node_control_seeds() {
    replay("node_control", mpcium_fuzz::node_control::run);
}

#[test]
fn registry_record_seeds() {
    replay("registry_record", mpcium_fuzz::registry_record::run);
}

#[test]
fn node_config_seeds() {
    replay("node_config", mpcium_fuzz::node_config::run);
}

#[test]
fn backup_file_seeds() {
    replay("backup_file", mpcium_fuzz::backup_file::run);
}

#[test]
fn key_share_seeds() {
    replay("key_share", mpcium_fuzz::key_share::run);
}

#[test]
fn frost_message_seeds() {
    replay("frost_message", mpcium_fuzz::frost_message::run);
}

/// The seeds pass the checks they were made to pass, so the fuzzer starts past them.
#[test]
fn seeds_reach_past_the_signature_and_checksum_checks() {
    use mpcium_api::{GenerateKeyMessage, SigningMode, verify_initiator};
    let seed = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/client_request/keygen_ed25519_authorized.json"),
    )
    .unwrap();
    let msg = GenerateKeyMessage::from_json(&seed[1..]).unwrap();
    let [ed25519, _] = mpcium_fuzz::fixtures::initiator_keys();
    verify_initiator(&msg, &ed25519, SigningMode::Compatible).unwrap();
    mpcium_fuzz::fixtures::authorization(true).authorize(&msg, SigningMode::Compatible).unwrap();

    let share =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/key_share/eddsa_2of3_body.bin")).unwrap();
    mpcium_tss::eddsa::KeyShare::from_bytes(&mpcium_fuzz::key_share::eddsa_blob(&share[1..])).unwrap();
    let share =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/key_share/ecdsa_2of2_body.bin")).unwrap();
    mpcium_tss::ecdsa::KeyShare::from_bytes(&mpcium_fuzz::key_share::ecdsa_blob(&share[1..])).unwrap();

    let file =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/backup_file/two_chunks.enc")).unwrap();
    let (_, frames) =
        mpcium_store::backup::fuzzing::decode_backup(&file[1..], &mpcium_fuzz::fixtures::BACKUP_KEY).unwrap();
    assert_eq!(frames, 4);

    let yaml = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/node_config/full.yaml"))
        .unwrap();
    let (config, warnings) =
        mpcium_config::NodeConfig::from_yaml(&yaml, &|_| None, mpcium_config::NodeOverrides::default())
            .unwrap();
    assert_eq!(config.mpc_threshold, 1);
    assert!(!warnings.is_empty(), "unknown_key and consul.* are reported");
}
