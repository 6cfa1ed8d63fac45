//! [`MpcClient`]: publishes requests like the Go client and awaits their results.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use mpcium_api::subjects::{self, CLIENT_ID_HEADER};
use mpcium_api::{
    ClientId, ErrorCode, GenerateKeyMessage, KeygenResultEvent, ResharingResultEvent, ResultType,
    SigningMode, SigningResultEvent,
};
use tokio::task::JoinHandle;

use crate::consumer;
use crate::error::{ClientError, Operation, RemoteFailure};
use crate::request::{Authorizer, ReshareRequest, SignRequest, seal};
use crate::router::{Callback, Router, Waiter};
use crate::signer::Signer;
use crate::trust::ResultTrust;

/// Default wait for a result. Keygen answers within ~30 s (the nodes' session timeout); a sign
/// request that never completes is reported only after its JetStream deliveries run out
/// (4 × ~45 s), so callers signing through a degraded cluster may want more.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How a client signs and waits.
#[derive(Clone)]
pub struct ClientOptions {
    signer: Arc<dyn Signer>,
    client_id: Option<ClientId>,
    timeout: Duration,
    signing_mode: SigningMode,
    authorizers: Vec<Authorizer>,
    on_keygen: Option<Callback<KeygenResultEvent>>,
    on_sign: Option<Callback<SigningResultEvent>>,
    on_reshare: Option<Callback<ResharingResultEvent>>,
    trust: Option<ResultTrust>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("signer", &self.signer.algorithm())
            .field("client_id", &self.client_id)
            .field("timeout", &self.timeout)
            .field("signing_mode", &self.signing_mode)
            .field("authorizers", &self.authorizers)
            .field("on_wallet_creation_result", &self.on_keygen.is_some())
            .field("on_sign_result", &self.on_sign.is_some())
            .field("on_resharing_result", &self.on_reshare.is_some())
            .field("verify_results", &self.trust.is_some())
            .finish()
    }
}

impl ClientOptions {
    /// Unscoped (no client ID), [`DEFAULT_TIMEOUT`], compatible signing, no authorizers.
    pub fn new(signer: Arc<dyn Signer>) -> Self {
        Self {
            signer,
            client_id: None,
            timeout: DEFAULT_TIMEOUT,
            signing_mode: SigningMode::Compatible,
            authorizers: Vec::new(),
            on_keygen: None,
            on_sign: None,
            on_reshare: None,
            trust: None,
        }
    }

    /// Accept a result only when the participants that computed it vouch for it (see
    /// [`ResultTrust`]): needs nodes of mpcium-rs (the original's nodes send no attestations).
    /// Without it, results are returned as the cluster publishes them, as the Go client does.
    pub fn verify_results(mut self, trust: ResultTrust) -> Self {
        self.trust = Some(trust);
        self
    }

    /// Scopes result routing to this client ID (header `ClientID`, consumers
    /// `mpc_*_result_<id>`). Give every client process its own ID: processes sharing one (or
    /// none) compete for each other's results.
    pub fn client_id(mut self, client_id: Option<ClientId>) -> Self {
        self.client_id = client_id;
        self
    }

    /// Default wait for a result.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// [`SigningMode::Strict`] also signs `derivation_path` (the nodes must run
    /// `security.strict_requests`; Go nodes do not understand it).
    pub fn signing_mode(mut self, mode: SigningMode) -> Self {
        self.signing_mode = mode;
        self
    }

    /// Attaches these authorizers' signatures to every request.
    pub fn with_authorizers(mut self, authorizers: Vec<Authorizer>) -> Self {
        self.authorizers = authorizers;
        self
    }

    /// Installs the keygen callback before the consumers start, so results left in the stream
    /// by an earlier run of this client ID are not dropped (see [`MpcClient`]).
    pub fn on_wallet_creation_result(
        mut self,
        f: impl Fn(KeygenResultEvent) + Send + Sync + 'static,
    ) -> Self {
        self.on_keygen = Some(Arc::new(f));
        self
    }

    /// Installs the signing callback before the consumers start.
    pub fn on_sign_result(mut self, f: impl Fn(SigningResultEvent) + Send + Sync + 'static) -> Self {
        self.on_sign = Some(Arc::new(f));
        self
    }

    /// Installs the reshare callback before the consumers start.
    pub fn on_resharing_result(mut self, f: impl Fn(ResharingResultEvent) + Send + Sync + 'static) -> Self {
        self.on_reshare = Some(Arc::new(f));
        self
    }
}

struct Inner {
    nats: async_nats::Client,
    js: jetstream::Context,
    options: ClientOptions,
    router: Arc<Router>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A client of an mpcium cluster (Go `client.MPCClient`, awaitable). Cheap to clone; the
/// result consumers stop when the last clone is dropped.
///
/// **Results.** `create_wallet`, `sign` and `reshare` return the success event; an error event
/// from the cluster becomes [`ClientError::Remote`] (its [`ErrorCode`] via
/// [`ClientError::error_code`]). Events no call is waiting for (late duplicates, results of
/// requests that timed out here, requests sent by another process with the same client ID) go
/// to the `on_*_result` callbacks; with no callback set they are acknowledged and dropped with a
/// warning — install callbacks through [`ClientOptions`] to catch results that were waiting in
/// the stream when the client started. Must be used inside a Tokio runtime.
#[derive(Clone)]
pub struct MpcClient {
    inner: Arc<Inner>,
}

impl MpcClient {
    /// Connects to `url` and sets the client up (see [`MpcClient::with_options`]).
    pub async fn connect(url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let nats = async_nats::connect(url).await.map_err(|e| ClientError::Connect(e.to_string()))?;
        Self::with_options(nats, options).await
    }

    /// Like Go `NewMPCClient(Options{NatsConn, Signer}, WithClientID(id))`, with the default
    /// options otherwise.
    pub async fn new(
        nats: async_nats::Client,
        signer: Arc<dyn Signer>,
        client_id: Option<ClientId>,
    ) -> Result<Self, ClientError> {
        Self::with_options(nats, ClientOptions::new(signer).client_id(client_id)).await
    }

    /// Ensures the streams `mpc-keygen`, `mpc-signing`, `mpc` (created with the original's
    /// configuration if absent), creates the durable result consumers for the client ID and
    /// starts pulling results.
    pub async fn with_options(nats: async_nats::Client, options: ClientOptions) -> Result<Self, ClientError> {
        let js = jetstream::new(nats.clone());
        let result_stream = consumer::ensure_streams(&js).await?;
        let router = Arc::new(Router::new());
        if let Some(f) = options.on_keygen.clone() {
            router.keygen.set_callback(f);
        }
        if let Some(f) = options.on_sign.clone() {
            router.signing.set_callback(f);
        }
        if let Some(f) = options.on_reshare.clone() {
            router.reshare.set_callback(f);
        }
        let tasks =
            consumer::start_result_consumers(&result_stream, options.client_id.as_ref(), &router).await?;
        Ok(Self { inner: Arc::new(Inner { nats, js, options, router, tasks }) })
    }

    /// The client ID results are scoped to.
    pub fn client_id(&self) -> Option<&ClientId> {
        self.inner.options.client_id.as_ref()
    }

    /// The underlying NATS connection.
    pub fn nats(&self) -> &async_nats::Client {
        &self.inner.nats
    }

    /// Creates wallet `wallet_id` (one ECDSA secp256k1 and one EdDSA Ed25519 key) and waits for
    /// the result with the default timeout.
    pub async fn create_wallet(&self, wallet_id: &str) -> Result<KeygenResultEvent, ClientError> {
        self.create_wallet_within(wallet_id, self.inner.options.timeout).await
    }

    /// [`MpcClient::create_wallet`] with an explicit timeout.
    pub async fn create_wallet_within(
        &self,
        wallet_id: &str,
        timeout: Duration,
    ) -> Result<KeygenResultEvent, ClientError> {
        let mut msg = GenerateKeyMessage { wallet_id: wallet_id.to_owned(), ..Default::default() };
        msg.validate()?;
        let waiter = self.inner.router.keygen.wait_for(wallet_id)?;
        self.seal(&mut msg).await?;
        // The TS client's concrete subject (the Go client uses the literal `*` token; nodes
        // accept both).
        let subject = subjects::keygen_request_subject(wallet_id);
        self.publish_jetstream(Operation::Keygen, subject, msg.to_json()).await?;
        let event = await_result(waiter, Operation::Keygen, wallet_id, timeout).await?;
        match event.result_type {
            ResultType::Success => {
                if let Some(trust) = &self.inner.options.trust {
                    trust.check_keygen(&event).map_err(|e| untrusted(Operation::Keygen, wallet_id, e))?;
                }
                Ok(event)
            }
            ResultType::Error => {
                Err(remote(Operation::Keygen, wallet_id, event.error_code, event.error_reason, false))
            }
        }
    }

    /// Asks the cluster to sign and waits for the signature.
    pub async fn sign(&self, request: &SignRequest) -> Result<SigningResultEvent, ClientError> {
        let mut msg = request.to_message();
        msg.validate()?;
        let waiter = self.inner.router.signing.wait_for(&request.tx_id)?;
        self.seal(&mut msg).await?;
        let subject = subjects::signing_request_subject(&request.tx_id);
        self.publish_jetstream(Operation::Sign, subject, msg.to_json()).await?;
        let timeout = request.timeout.unwrap_or(self.inner.options.timeout);
        let event = await_result(waiter, Operation::Sign, &request.tx_id, timeout).await?;
        match event.result_type {
            ResultType::Success => {
                if let Some(trust) = &self.inner.options.trust {
                    trust
                        .check_signing(&msg, &event)
                        .map_err(|e| untrusted(Operation::Sign, &request.tx_id, e))?;
                }
                Ok(event)
            }
            ResultType::Error => Err(remote(
                Operation::Sign,
                &request.tx_id,
                event.error_code,
                event.error_reason,
                event.is_timeout,
            )),
        }
    }

    /// Asks the cluster to reshare a wallet key to a new committee and waits for the result.
    /// Sent over core NATS (`mpc:reshare`) like the Go client: no retry if no node is listening.
    pub async fn reshare(&self, request: &ReshareRequest) -> Result<ResharingResultEvent, ClientError> {
        let mut msg = request.to_message();
        msg.validate()?;
        let waiter = self.inner.router.reshare.wait_for(&request.session_id)?;
        self.seal(&mut msg).await?;
        self.publish_core(Operation::Reshare, subjects::RESHARE_REQUEST_SUBJECT, msg.to_json()).await?;
        let timeout = request.timeout.unwrap_or(self.inner.options.timeout);
        let event = await_result(waiter, Operation::Reshare, &request.session_id, timeout).await?;
        match event.result_type {
            ResultType::Success => {
                if let Some(trust) = &self.inner.options.trust {
                    trust
                        .check_reshare(&msg, &event)
                        .map_err(|e| untrusted(Operation::Reshare, &request.session_id, e))?;
                }
                Ok(event)
            }
            ResultType::Error => Err(remote(
                Operation::Reshare,
                &request.session_id,
                event.error_code,
                event.error_reason,
                false,
            )),
        }
    }

    /// Calls `f` for every keygen result no call is waiting for (replaces a previous callback).
    /// Runs on the consumer task: keep it short.
    pub fn on_wallet_creation_result(&self, f: impl Fn(KeygenResultEvent) + Send + Sync + 'static) {
        self.inner.router.keygen.set_callback(Arc::new(f));
    }

    /// Calls `f` for every signing result no call is waiting for.
    pub fn on_sign_result(&self, f: impl Fn(SigningResultEvent) + Send + Sync + 'static) {
        self.inner.router.signing.set_callback(Arc::new(f));
    }

    /// Calls `f` for every reshare result no call is waiting for.
    pub fn on_resharing_result(&self, f: impl Fn(ResharingResultEvent) + Send + Sync + 'static) {
        self.inner.router.reshare.set_callback(Arc::new(f));
    }

    async fn seal<M: crate::request::Sealable>(&self, msg: &mut M) -> Result<(), ClientError> {
        let options = &self.inner.options;
        seal(msg, options.signer.as_ref(), &options.authorizers, options.signing_mode).await
    }

    fn headers(&self) -> Option<HeaderMap> {
        self.client_id().map(|id| {
            let mut headers = HeaderMap::new();
            headers.insert(CLIENT_ID_HEADER, id.as_str());
            headers
        })
    }

    async fn publish_jetstream(
        &self,
        operation: Operation,
        subject: String,
        body: String,
    ) -> Result<(), ClientError> {
        let fail = |reason: String| ClientError::Publish { operation, subject: subject.clone(), reason };
        tracing::debug!(%operation, %subject, "publishing request to JetStream");
        let payload = Bytes::from(body);
        let ack = match self.headers() {
            Some(headers) => self.inner.js.publish_with_headers(subject.clone(), headers, payload).await,
            None => self.inner.js.publish(subject.clone(), payload).await,
        }
        .map_err(|e| fail(e.to_string()))?;
        ack.await.map_err(|e| fail(e.to_string()))?;
        Ok(())
    }

    async fn publish_core(
        &self,
        operation: Operation,
        subject: &str,
        body: String,
    ) -> Result<(), ClientError> {
        let fail = |reason: String| ClientError::Publish { operation, subject: subject.to_owned(), reason };
        tracing::debug!(%operation, %subject, "publishing request over core NATS");
        let nats = &self.inner.nats;
        let payload = Bytes::from(body);
        match self.headers() {
            Some(headers) => nats.publish_with_headers(subject.to_owned(), headers, payload).await,
            None => nats.publish(subject.to_owned(), payload).await,
        }
        .map_err(|e| fail(e.to_string()))?;
        nats.flush().await.map_err(|e| fail(e.to_string()))
    }
}

fn untrusted(operation: Operation, id: &str, reason: crate::trust::TrustError) -> ClientError {
    ClientError::Untrusted { operation, id: id.to_owned(), reason }
}

fn remote(
    operation: Operation,
    id: &str,
    code: Option<ErrorCode>,
    reason: String,
    is_timeout: bool,
) -> ClientError {
    ClientError::Remote(RemoteFailure {
        operation,
        id: id.to_owned(),
        code: code.unwrap_or(ErrorCode::Unknown),
        reason,
        is_timeout,
    })
}

async fn await_result<E: Send + 'static>(
    mut waiter: Waiter<E>,
    operation: Operation,
    id: &str,
    timeout: Duration,
) -> Result<E, ClientError> {
    match tokio::time::timeout(timeout, waiter.recv()).await {
        Ok(Some(event)) => Ok(event),
        Ok(None) => Err(ClientError::Closed(operation)),
        Err(_) => Err(ClientError::Timeout { operation, id: id.to_owned(), after: timeout }),
    }
}
