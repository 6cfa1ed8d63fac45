//! Round trips of every identity and key file format, modes, overwrite refusal, passphrases and
//! the age work factor.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use mpcium_identity::*;

const PASS: &str = "correct horse battery!";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The scrypt stanza of an age file header: `-> scrypt <salt> <log2 N>`.
fn scrypt_work_factor(age_file: &[u8]) -> u8 {
    let header = String::from_utf8_lossy(&age_file[..age_file.len().min(300)]).into_owned();
    assert!(header.starts_with("age-encryption.org/v1\n"), "{header}");
    let stanza = header.lines().find(|l| l.starts_with("-> scrypt ")).expect("scrypt stanza");
    let parts: Vec<&str> = stanza.split(' ').collect();
    assert_eq!(parts.len(), 4, "{stanza}");
    parts[3].parse().unwrap()
}

#[test]
fn node_identity_plain_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, key) = generate_node_identity("node0", "0b7f1c2e-1111-4222-8333-444455556666").unwrap();
    let files = write_node_identity(dir.path(), &identity, &key, KeyProtection::Plain, false).unwrap();
    assert_eq!(files.identity, dir.path().join("node0_identity.json"));
    assert_eq!(files.private_key, dir.path().join("node0_private.key"));
    assert_eq!(mode(&files.identity), 0o600);
    assert_eq!(mode(&files.private_key), 0o600);

    let text = std::fs::read_to_string(&files.private_key).unwrap();
    assert_eq!(text.len(), 128);
    assert!(!text.ends_with('\n'));
    assert_eq!(&text[64..], identity.public_key, "Go layout: seed then public key");

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&files.identity).unwrap()).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4);
    for k in ["node_name", "node_id", "public_key", "created_at"] {
        assert!(json.get(k).is_some(), "{k}");
    }
    assert!(json["created_at"].as_str().unwrap().ends_with('Z'));

    let loaded = load_node_signing_key(dir.path(), "node0", None).unwrap();
    assert_eq!(loaded.to_bytes(), key.to_bytes());
    assert_eq!(NodeIdentity::read(&files.identity).unwrap(), identity);
}

#[test]
fn node_identity_encrypted_round_trip_and_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, key) = generate_node_identity("node1", "id-1").unwrap();
    let files =
        write_node_identity(dir.path(), &identity, &key, KeyProtection::Passphrase(PASS), false).unwrap();
    assert_eq!(files.private_key, dir.path().join("node1_private.key.age"));
    assert_eq!(mode(&files.private_key), 0o600);
    let sealed = std::fs::read(&files.private_key).unwrap();
    assert_eq!(scrypt_work_factor(&sealed), 18);

    let loaded = load_node_signing_key(dir.path(), "node1", Some(PASS)).unwrap();
    assert_eq!(loaded.to_bytes(), key.to_bytes());

    let err = load_node_signing_key(dir.path(), "node1", Some("wrong passphrase!")).unwrap_err();
    assert!(matches!(err, IdentityError::WrongPassphrase { .. }), "{err}");
    // Without a passphrase the plain file is looked for, which does not exist.
    assert!(matches!(
        load_node_signing_key(dir.path(), "node1", None).unwrap_err(),
        IdentityError::Io { .. }
    ));
}

#[test]
fn node_key_not_matching_identity_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, _) = generate_node_identity("node0", "id-0").unwrap();
    let (_, other_key) = generate_node_identity("node0", "id-0").unwrap();
    write_node_identity(dir.path(), &identity, &other_key, KeyProtection::Plain, false).unwrap();
    let err = load_node_signing_key(dir.path(), "node0", None).unwrap_err();
    assert!(matches!(err, IdentityError::PublicKeyMismatch { .. }), "{err}");
}

#[test]
fn corrupted_node_private_key_is_rejected() {
    let key_text = "ab".repeat(64);
    let err = decode_node_private_key(&key_text).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let err = decode_node_private_key("abcd").unwrap_err();
    assert!(err.to_string().contains("128 hex"), "{err}");
}

#[test]
fn refuses_to_overwrite_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, key) = generate_node_identity("node0", "id-0").unwrap();
    write_node_identity(dir.path(), &identity, &key, KeyProtection::Plain, false).unwrap();
    let before = std::fs::read(dir.path().join("node0_private.key")).unwrap();

    let (identity2, key2) = generate_node_identity("node0", "id-0").unwrap();
    let err = write_node_identity(dir.path(), &identity2, &key2, KeyProtection::Plain, false).unwrap_err();
    assert!(matches!(err, IdentityError::AlreadyExists { .. }), "{err}");
    assert_eq!(std::fs::read(dir.path().join("node0_private.key")).unwrap(), before);

    write_node_identity(dir.path(), &identity2, &key2, KeyProtection::Plain, true).unwrap();
    assert_ne!(std::fs::read(dir.path().join("node0_private.key")).unwrap(), before);
    assert_eq!(mode(&dir.path().join("node0_private.key")), 0o600);
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn new_directories_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a/identity");
    let (identity, key) = generate_node_identity("node0", "id-0").unwrap();
    write_node_identity(&target, &identity, &key, KeyProtection::Plain, false).unwrap();
    assert_eq!(mode(&target), 0o700);
}

#[test]
fn peer_public_keys_are_loaded_and_checked_against_peers() {
    let dir = tempfile::tempdir().unwrap();
    let peers = Peers::generate(3).unwrap();
    let mut keys = Vec::new();
    for (name, id) in peers.iter() {
        let (identity, key) = generate_node_identity(name, id).unwrap();
        write_node_identity(dir.path(), &identity, &key, KeyProtection::Plain, false).unwrap();
        keys.push((id.to_owned(), key.verifying_key()));
    }
    let loaded = load_peer_public_keys(dir.path()).unwrap();
    assert_eq!(loaded.len(), 3);
    for (id, vk) in &keys {
        assert_eq!(&loaded[id].public_key, vk);
    }
    check_peer_keys(&peers, &loaded, Path::new("peers.json")).unwrap();

    let other = Peers::generate(3).unwrap();
    let err = check_peer_keys(&other, &loaded, Path::new("peers.json")).unwrap_err();
    assert!(err.to_string().contains("no identity file"), "{err}");
}

#[test]
fn peers_file_round_trip_and_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peers.json");
    let peers = Peers::generate(3).unwrap();
    peers.write(&path, false).unwrap();
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("{\n  \"node0\": \""), "{text}");
    assert!(!text.ends_with('\n'));
    assert_eq!(Peers::load(&path).unwrap(), peers);
    assert!(matches!(peers.write(&path, false).unwrap_err(), IdentityError::AlreadyExists { .. }));

    let id = peers.node_id("node1").unwrap();
    assert_eq!(peers.node_name(id), Some("node1"));
    // UUID v4 shape.
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
    assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
}

#[test]
fn invalid_peers_files_are_rejected() {
    let p = Path::new("peers.json");
    let cases = [
        (r#"["a","b"]"#, "JSON object"),
        (r#"{}"#, "no peers"),
        (r#"{"node0":""}"#, "empty"),
        (r#"{"node0":"a:b"}"#, "not allowed"),
        (r#"{"node0":"a.b"}"#, "not allowed"),
        (r#"{"node0":"a b"}"#, "not allowed"),
        (r#"{"node0":"x","node1":"x"}"#, "same ID"),
        (r#"{"node0":"x","node0":"y"}"#, "twice"),
        (r#"{"../x":"y"}"#, "path separator"),
    ];
    for (text, expected) in cases {
        let err = Peers::parse(text, p).unwrap_err();
        assert!(err.to_string().contains(expected), "{text}: {err}");
    }
}

#[test]
fn initiator_ed25519_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, key, files) = create_initiator(
        dir.path(),
        DEFAULT_INITIATOR_NAME,
        SignerAlgorithm::Ed25519,
        KeyProtection::Plain,
        false,
    )
    .unwrap();
    assert_eq!(files.identity, dir.path().join("event_initiator.identity.json"));
    assert_eq!(files.key, dir.path().join("event_initiator.key"));
    assert_eq!(mode(&files.identity), 0o600);
    assert_eq!(mode(&files.key), 0o600);
    let text = std::fs::read_to_string(&files.key).unwrap();
    assert_eq!(text.len(), 64, "hex of the 32-byte seed");
    assert_eq!(identity.public_key.len(), 64);

    let read = InitiatorIdentity::read(&files.identity).unwrap();
    assert_eq!(read, identity);
    assert_eq!(read.algorithm().unwrap(), SignerAlgorithm::Ed25519);
    let loaded = SignerKey::load(&files.key, SignerAlgorithm::Ed25519, None).unwrap();
    assert_eq!(loaded.public_key_hex().unwrap(), identity.public_key);
    assert_eq!(loaded.public_key_hex().unwrap(), key.public_key_hex().unwrap());
}

#[test]
fn initiator_p256_round_trip_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, _, files) =
        create_initiator(dir.path(), "init", SignerAlgorithm::P256, KeyProtection::Passphrase(PASS), false)
            .unwrap();
    assert_eq!(files.key, dir.path().join("init.key.age"));
    assert_eq!(mode(&files.key), 0o600);
    assert_eq!(identity.algorithm.as_deref(), Some("p256"));
    let spki = hex::decode(&identity.public_key).unwrap();
    assert_eq!(spki.len(), 91);
    assert!(identity.public_key.starts_with("3059301306072a8648ce3d0201"));
    // The SPKI parses back to the key's public point (what config's event_initiator_pubkey does).
    use p256::pkcs8::DecodePublicKey as _;
    let parsed = p256::PublicKey::from_public_key_der(&spki).unwrap();
    let SignerKey::P256(secret) = SignerKey::load(&files.key, SignerAlgorithm::P256, Some(PASS)).unwrap()
    else {
        unreachable!()
    };
    assert_eq!(parsed, secret.public_key());
    let loaded = SignerKey::load(&files.key, SignerAlgorithm::P256, Some(PASS)).unwrap();
    assert_eq!(loaded.public_key_hex().unwrap(), identity.public_key);
    // The key text inside is hex SEC1 DER (`30 77 02 01 01 04 20 …`).
    let text = read_key_text(&files.key, Some(PASS)).unwrap();
    assert!(text.starts_with("30770201010420"), "SEC1 ECPrivateKey");
    assert!(matches!(
        SignerKey::load(&files.key, SignerAlgorithm::P256, None).unwrap_err(),
        IdentityError::PassphraseNeeded { .. }
    ));
}

#[test]
fn authorizer_round_trip_and_name_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, _, files) =
        create_authorizer(dir.path(), "ops-team_1", SignerAlgorithm::P256, KeyProtection::Plain, false)
            .unwrap();
    assert_eq!(files.identity, dir.path().join("ops-team_1.authorizer.identity.json"));
    assert_eq!(files.key, dir.path().join("ops-team_1.authorizer.key"));
    assert_eq!(mode(&files.key), 0o600);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&files.identity).unwrap()).unwrap();
    for k in ["name", "algorithm", "public_key", "created_at", "created_by", "machine_os", "machine_name"] {
        assert!(json.get(k).is_some(), "{k}");
    }
    assert_eq!(AuthorizerIdentity::read(&files.identity).unwrap(), identity);
    let loaded = SignerKey::load(&files.key, SignerAlgorithm::P256, None).unwrap();
    assert_eq!(loaded.public_key_hex().unwrap(), identity.public_key);

    for bad in ["", "a b", "a/b", "ä", "a.b"] {
        let err = create_authorizer(dir.path(), bad, SignerAlgorithm::Ed25519, KeyProtection::Plain, false)
            .unwrap_err();
        assert!(matches!(err, IdentityError::InvalidName { .. }), "{bad}: {err}");
    }
}

#[test]
fn p256_private_key_formats() {
    let key = match SignerKey::generate(SignerAlgorithm::P256).unwrap() {
        SignerKey::P256(k) => k,
        SignerKey::Ed25519(_) => unreachable!(),
    };
    let sec1 = key.to_sec1_der().unwrap();
    use p256::pkcs8::EncodePrivateKey as _;
    let pkcs8 = key.to_pkcs8_der().unwrap();
    let inputs: Vec<Vec<u8>> = vec![
        sec1.to_vec(),
        pkcs8.as_bytes().to_vec(),
        hex::encode(&sec1[..]).into_bytes(),
        format!("0x{}", hex::encode(pkcs8.as_bytes())).into_bytes(),
        format!("  {}\n", hex::encode(pkcs8.as_bytes())).into_bytes(),
    ];
    for input in inputs {
        assert_eq!(parse_p256_private_key(&input).unwrap(), key);
    }
    assert!(parse_p256_private_key(b"zz").is_err());
    assert!(parse_p256_private_key(b"3000").is_err());
}

#[test]
fn ed25519_key_text_forms() {
    let key = SignerKey::generate(SignerAlgorithm::Ed25519).unwrap();
    let SignerKey::Ed25519(sk) = &key else { unreachable!() };
    let seed_hex = hex::encode(sk.to_bytes());
    let pair_hex = hex::encode(sk.to_keypair_bytes());
    for text in [seed_hex.clone(), pair_hex, format!("0x{seed_hex}")] {
        let parsed = SignerKey::from_key_file_text(SignerAlgorithm::Ed25519, &text).unwrap();
        assert_eq!(parsed.public_key_hex().unwrap(), key.public_key_hex().unwrap());
    }
    let err = SignerKey::from_key_file_text(SignerAlgorithm::Ed25519, "abcd").unwrap_err();
    assert!(err.to_string().contains("32-byte seed"), "{err}");
}

#[test]
fn unknown_algorithm_is_rejected() {
    let err = "rsa".parse::<SignerAlgorithm>().unwrap_err();
    assert!(err.to_string().contains("rsa"), "{err}");
}

#[test]
fn debug_never_shows_secrets() {
    let key = SignerKey::generate(SignerAlgorithm::Ed25519).unwrap();
    let secret_hex = key.to_key_file_text().unwrap();
    let debug = format!("{key:?}");
    assert!(!debug.contains(secret_hex.as_str()), "{debug}");
    assert!(debug.contains("<redacted>"));
    assert_eq!(format!("{:?}", KeyProtection::Passphrase(PASS)), "Passphrase(<redacted>)");
}

#[test]
fn passphrase_rules() {
    assert_eq!(validate_new_passphrase("short!"), Err(PassphraseError::TooShort));
    assert_eq!(validate_new_passphrase("onlyletters123"), Err(PassphraseError::NoSpecialCharacter));
    assert_eq!(validate_new_passphrase("twelve chars"), Ok(()));
    assert_eq!(validate_new_passphrase("abcdefghijk!"), Ok(()));
    assert_eq!(confirm_new_passphrase("abcdefghijk!", "abcdefghijk?"), Err(PassphraseError::Mismatch));
    assert_eq!(confirm_new_passphrase("abcdefghijk", "abcdefghijk"), Err(PassphraseError::TooShort));
    assert_eq!(confirm_new_passphrase("abcdefghijk!", "abcdefghijk!"), Ok(()));
}

#[test]
fn age_files_interoperate_with_the_age_crate_api() {
    use age::secrecy::SecretString;
    use std::io::{Read, Write};

    // Ours → the age crate's own passphrase decryption.
    let sealed = age_file::encrypt_with_passphrase(b"hello key", PASS).unwrap();
    assert_eq!(scrypt_work_factor(&sealed), age_file::SCRYPT_WORK_FACTOR);
    let decryptor = age::Decryptor::new(&sealed[..]).unwrap();
    let mut id = age::scrypt::Identity::new(SecretString::from(PASS.to_owned()));
    id.set_max_work_factor(22);
    let mut out = Vec::new();
    decryptor.decrypt(std::iter::once(&id as &dyn age::Identity)).unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(out, b"hello key");

    // The age crate (work factor 18, like Go) → ours.
    let mut r = age::scrypt::Recipient::new(SecretString::from(PASS.to_owned()));
    r.set_work_factor(18);
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let mut file = Vec::new();
    let mut w = enc.wrap_output(&mut file).unwrap();
    w.write_all(b"from age").unwrap();
    w.finish().unwrap();
    let plain = age_file::decrypt_with_passphrase(&file, PASS, Path::new("x.age")).unwrap();
    assert_eq!(plain.as_slice(), b"from age");
    let err = age_file::decrypt_with_passphrase(&file, "not the passphrase", Path::new("x.age")).unwrap_err();
    assert!(matches!(err, IdentityError::WrongPassphrase { .. }), "{err}");
}

#[test]
fn age_file_with_excessive_work_factor_is_refused() {
    // A header asking for 2^23 scrypt work (1 GiB) is refused before any work is done: rewrite
    // the work factor of a file we wrote (the header MAC is only checked after that).
    let sealed = age_file::encrypt_with_passphrase(b"x", PASS).unwrap();
    let text_end = sealed.windows(4).position(|w| w == b"\n---").unwrap();
    let header = String::from_utf8(sealed[..text_end].to_vec()).unwrap();
    let stanza = header.lines().find(|l| l.starts_with("-> scrypt ")).unwrap().to_owned();
    let patched_stanza = format!("{} 23", stanza.rsplit_once(' ').unwrap().0);
    let mut patched = header.replace(&stanza, &patched_stanza).into_bytes();
    patched.extend_from_slice(&sealed[text_end..]);
    assert_eq!(scrypt_work_factor(&patched), 23);
    let err = age_file::decrypt_with_passphrase(&patched, PASS, Path::new("x.age")).unwrap_err();
    assert!(matches!(err, IdentityError::Decrypt { .. }), "{err}");
    assert!(err.to_string().contains("22") || err.to_string().contains("work"), "{err}");
}
