//! `KmsSigner` against the moto AWS emulator (`moto_server`, PyPI `moto[server]`).
//!
//! Run with `cargo test -p mpcium-client --features kms --test kms`. The emulator is found via
//! `MPCIUM_MOTO_SERVER` or `./.tools/venv/bin/moto_server` (installed by
//! `MPCIUM_WITH_KMS=1 bash scripts/install-tools.sh`); without it the test prints why and passes.

#![cfg(feature = "kms")]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use mpcium_api::{Algorithm, PublicKey};
use mpcium_client::{KmsSigner, KmsSignerOptions, Signer, SignerError};
use p256::pkcs8::DecodePublicKey as _;
use zeroize::Zeroizing;

fn moto_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MPCIUM_MOTO_SERVER").map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(p);
    }
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/moto_server");
    tools.is_file().then_some(tools)
}

struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    fn start(binary: &PathBuf) -> Moto {
        let port = mpcium_testkit::free_port().unwrap();
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "moto_server did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, url: format!("http://{addr}") }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn options(url: &str, key_id: &str) -> KmsSignerOptions {
    KmsSignerOptions {
        region: "us-east-1".into(),
        key_id: key_id.into(),
        endpoint_url: Some(url.into()),
        static_credentials: Some(("test".into(), Zeroizing::new("s3cr3t-value".into()))),
    }
}

#[tokio::test]
async fn kms_p256_key_signs_what_the_nodes_verify() {
    let Some(binary) = moto_binary() else {
        eprintln!(
            "SKIPPED kms test: moto_server not found (set MPCIUM_MOTO_SERVER or run \
             `MPCIUM_WITH_KMS=1 bash scripts/install-tools.sh`)"
        );
        return;
    };
    let moto = Moto::start(&binary);
    // A KMS client of our own, playing the operator who created the key.
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(aws_sdk_kms::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    let admin = aws_sdk_kms::Client::new(&conf);
    let created = admin
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let key_id = created.key_metadata().unwrap().key_id().to_owned();
    admin.create_alias().alias_name("alias/mpcium-initiator").target_key_id(&key_id).send().await.unwrap();

    let signer = KmsSigner::new(options(&moto.url, "alias/mpcium-initiator")).await.unwrap();
    assert_eq!(signer.algorithm(), Algorithm::P256);
    let emulator_der =
        admin.get_public_key().key_id(&key_id).send().await.unwrap().public_key().unwrap().as_ref().to_vec();
    assert_eq!(signer.public_key_hex().unwrap(), hex::encode(&emulator_der));
    let emulator_key = p256::ecdsa::VerifyingKey::from_public_key_der(&emulator_der).unwrap();

    let raw = br#"{"key_type":"secp256k1","wallet_id":"w1","network_internal_code":"ETH","tx_id":"tx-1","tx":"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="}"#;
    let signature = signer.sign(raw).await.unwrap();
    // What a node does with `event_initiator_algorithm: p256`.
    let node_view = PublicKey::parse(Algorithm::P256, &signer.public_key_hex().unwrap()).unwrap();
    node_view.verify(raw, Some(&signature)).unwrap();
    assert!(node_view.verify(b"tampered", Some(&signature)).is_err());
    // And independently with the emulator's key.
    use p256::ecdsa::signature::Verifier as _;
    emulator_key.verify(raw, &p256::ecdsa::Signature::from_der(&signature).unwrap()).unwrap();

    // Only P-256 keys are accepted (as the Go signer).
    let rsa = admin
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let rsa_id = rsa.key_metadata().unwrap().key_id().to_owned();
    let err = KmsSigner::new(options(&moto.url, &rsa_id)).await.unwrap_err();
    assert!(matches!(err, SignerError::WrongKey { .. }), "{err:?}");
    let err = KmsSigner::new(options(&moto.url, "alias/absent")).await.unwrap_err();
    assert!(matches!(err, SignerError::Remote(_)), "{err:?}");
    // The secret never shows in Debug.
    assert!(!format!("{:?}", options(&moto.url, "k")).contains("s3cr3t-value"));
    assert!(format!("{:?}", options(&moto.url, "k")).contains("<redacted>"));
}
