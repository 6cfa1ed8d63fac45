//! AWS KMS initiator signer (Go `client.NewKMSSigner`): a P-256 key (`ECC_NIST_P256`) signing
//! with `ECDSA_SHA_256`, which yields exactly the wire's `p256` signature (DER ECDSA over
//! SHA-256 of the raw bytes).
//!
//! Messages up to 4096 bytes (the KMS limit for `RAW`) are sent as `MessageType::Raw`, as the Go
//! signer does; longer ones (large Ed25519 sign requests) are hashed here and sent as
//! `MessageType::Digest`, which gives the same signature and which the Go signer cannot do.

use std::future::Future;

use aws_config::BehaviorVersion;
use aws_sdk_kms::config::{Credentials, Region};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, MessageType, SigningAlgorithmSpec};
use mpcium_api::Algorithm;
use p256::pkcs8::DecodePublicKey as _;
use sha2::Digest as _;
use zeroize::Zeroizing;

use crate::signer::{SignFuture, Signer, SignerError};

/// Largest message KMS accepts with `MessageType::Raw`.
pub const KMS_MAX_RAW_MESSAGE_BYTES: usize = 4096;

/// Where the KMS key is.
#[derive(Clone)]
pub struct KmsSignerOptions {
    /// AWS region (required).
    pub region: String,
    /// Key ID, key ARN, alias name (`alias/...`) or alias ARN.
    pub key_id: String,
    /// Endpoint override, e.g. a local emulator (`http://127.0.0.1:5000`).
    pub endpoint_url: Option<String>,
    /// Static credentials (access key ID, secret access key); `None` = the default AWS chain
    /// (environment, profile, instance role, ...).
    pub static_credentials: Option<(String, Zeroizing<String>)>,
}

impl std::fmt::Debug for KmsSignerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsSignerOptions")
            .field("region", &self.region)
            .field("key_id", &self.key_id)
            .field("endpoint_url", &self.endpoint_url)
            .field("access_key_id", &self.static_credentials.as_ref().map(|(id, _)| id))
            .field("secret_access_key", &self.static_credentials.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Signs with an AWS KMS P-256 key. The public key is fetched once, at construction.
#[derive(Debug, Clone)]
pub struct KmsSigner {
    kms: aws_sdk_kms::Client,
    key_id: String,
    public_key_der: Vec<u8>,
}

fn remote(what: &str, e: impl std::fmt::Display) -> SignerError {
    SignerError::Remote(format!("KMS {what}: {e}"))
}

impl KmsSigner {
    /// Connects to KMS and loads the key's public key (`GetPublicKey`); fails unless the key is
    /// `ECC_NIST_P256`.
    pub async fn new(options: KmsSignerOptions) -> Result<Self, SignerError> {
        if options.region.is_empty() || options.key_id.is_empty() {
            return Err(SignerError::WrongKey {
                expected: Algorithm::P256,
                reason: "KMS region and key ID are required".to_owned(),
            });
        }
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(options.region.clone()));
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((access_key_id, secret)) = &options.static_credentials {
            loader = loader.credentials_provider(Credentials::new(
                access_key_id,
                secret.as_str(),
                None,
                None,
                "mpcium-client-static",
            ));
        }
        let kms = aws_sdk_kms::Client::new(&loader.load().await);
        Self::from_client(kms, options.key_id).await
    }

    /// Uses an existing KMS client.
    pub async fn from_client(kms: aws_sdk_kms::Client, key_id: String) -> Result<Self, SignerError> {
        let out = kms
            .get_public_key()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| remote("GetPublicKey", aws_sdk_kms::error::DisplayErrorContext(e)))?;
        // Some emulators omit `KeySpec`; the DER check below decides then (it checks the curve).
        if out.key_spec().is_some_and(|spec| *spec != KeySpec::EccNistP256) {
            return Err(SignerError::WrongKey {
                expected: Algorithm::P256,
                reason: format!("KMS key {key_id} has key spec {:?}, expected ECC_NIST_P256", out.key_spec()),
            });
        }
        let der = out.public_key().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        p256::ecdsa::VerifyingKey::from_public_key_der(&der).map_err(|e| SignerError::WrongKey {
            expected: Algorithm::P256,
            reason: format!("KMS public key is not a P-256 SubjectPublicKeyInfo: {e}"),
        })?;
        Ok(Self { kms, key_id, public_key_der: der })
    }

    /// The key's PKIX DER public key (as KMS returned it).
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    fn sign_remote(
        &self,
        message: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, SignerError>> + Send + 'static {
        let (message_type, body) = if message.len() <= KMS_MAX_RAW_MESSAGE_BYTES {
            (MessageType::Raw, message.to_vec())
        } else {
            (MessageType::Digest, sha2::Sha256::digest(message).to_vec())
        };
        let request = self
            .kms
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(body))
            .message_type(message_type)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256);
        async move {
            let out = request
                .send()
                .await
                .map_err(|e| remote("Sign", aws_sdk_kms::error::DisplayErrorContext(e)))?;
            out.signature()
                .map(|b| b.as_ref().to_vec())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| SignerError::Remote("KMS Sign returned no signature".to_owned()))
        }
    }
}

impl Signer for KmsSigner {
    fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        Box::pin(self.sign_remote(message))
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::P256
    }

    fn public_key_hex(&self) -> Result<String, SignerError> {
        Ok(hex::encode(&self.public_key_der))
    }
}
