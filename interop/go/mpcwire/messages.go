// Package mpcwire is a Go client of the mpcium client wire, written from the wire description
// (docs/wire.md §1–§8, the original's pkg/client API as described in its README): requests
// signed by an initiator, published the way the original Go client publishes them, and result
// events read from per-client durable consumers on stream `mpc`. It stands in for
// github.com/fystack/mpcium/pkg/client, which the Go module proxy does not serve here.
package mpcwire

import "encoding/json"

// Key types of a wallet.
const (
	KeyTypeSecp256k1 = "secp256k1"
	KeyTypeEd25519   = "ed25519"
)

// Initiator and authorizer signature algorithms.
const (
	AlgorithmEd25519 = "ed25519"
	AlgorithmP256    = "p256"
)

// AuthorizerSignature is one authorizer's co-signature of a request.
type AuthorizerSignature struct {
	AuthorizerID string `json:"authorizer_id"`
	Signature    []byte `json:"signature"`
}

// GenerateKeyMessage asks for a wallet's secp256k1 and Ed25519 keys.
type GenerateKeyMessage struct {
	WalletID             string                `json:"wallet_id"`
	Signature            []byte                `json:"signature"`
	AuthorizerSignatures []AuthorizerSignature `json:"authorizer_signatures,omitempty"`
}

// SignTxMessage asks for a signature of Tx (ECDSA: a 32-byte digest; EdDSA: the message).
type SignTxMessage struct {
	KeyType              string                `json:"key_type"`
	WalletID             string                `json:"wallet_id"`
	NetworkInternalCode  string                `json:"network_internal_code"`
	TxID                 string                `json:"tx_id"`
	Tx                   []byte                `json:"tx"`
	Signature            []byte                `json:"signature"`
	DerivationPath       []uint32              `json:"derivation_path"`
	AuthorizerSignatures []AuthorizerSignature `json:"authorizer_signatures,omitempty"`
}

// ResharingMessage asks for a wallet key to be reshared to NodeIDs with NewThreshold.
type ResharingMessage struct {
	SessionID            string                `json:"session_id"`
	NodeIDs              []string              `json:"node_ids"`
	NewThreshold         int                   `json:"new_threshold"`
	KeyType              string                `json:"key_type"`
	WalletID             string                `json:"wallet_id"`
	Signature            []byte                `json:"signature,omitempty"`
	AuthorizerSignatures []AuthorizerSignature `json:"authorizer_signatures,omitempty"`
}

// Signed is a request whose initiator signature covers Raw and whose authorizers co-sign
// the initiator's signature for InitiatorID.
type Signed interface {
	Raw() ([]byte, error)
	InitiatorID() string
}

// Raw is what the initiator signs for a keygen: the wallet ID's bytes.
func (m *GenerateKeyMessage) Raw() ([]byte, error) { return []byte(m.WalletID), nil }

// InitiatorID is the wallet ID.
func (m *GenerateKeyMessage) InitiatorID() string { return m.WalletID }

// Raw is the Go JSON of the five signed fields (derivation_path is not signed).
func (m *SignTxMessage) Raw() ([]byte, error) {
	return json.Marshal(struct {
		KeyType             string `json:"key_type"`
		WalletID            string `json:"wallet_id"`
		NetworkInternalCode string `json:"network_internal_code"`
		TxID                string `json:"tx_id"`
		Tx                  []byte `json:"tx"`
	}{m.KeyType, m.WalletID, m.NetworkInternalCode, m.TxID, m.Tx})
}

// InitiatorID is the transaction ID.
func (m *SignTxMessage) InitiatorID() string { return m.TxID }

// Raw is the Go JSON of the message without its signatures.
func (m *ResharingMessage) Raw() ([]byte, error) {
	return json.Marshal(struct {
		SessionID    string   `json:"session_id"`
		NodeIDs      []string `json:"node_ids"`
		NewThreshold int      `json:"new_threshold"`
		KeyType      string   `json:"key_type"`
		WalletID     string   `json:"wallet_id"`
	}{m.SessionID, m.NodeIDs, m.NewThreshold, m.KeyType, m.WalletID})
}

// InitiatorID is the wallet ID.
func (m *ResharingMessage) InitiatorID() string { return m.WalletID }

// AuthorizerPayload is what an authorizer signs: the initiator's ID, signed bytes and signature.
func AuthorizerPayload(msg Signed, initiatorSignature []byte) ([]byte, error) {
	raw, err := msg.Raw()
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		InitiatorID  string `json:"initiator_id"`
		InitiatorRaw []byte `json:"initiator_raw"`
		InitiatorSig []byte `json:"initiator_sig"`
	}{msg.InitiatorID(), raw, initiatorSignature})
}

// Result types.
const (
	ResultSuccess = "success"
	ResultError   = "error"
)

// KeygenResultEvent is the result of a keygen request.
type KeygenResultEvent struct {
	WalletID    string `json:"wallet_id"`
	ECDSAPubKey []byte `json:"ecdsa_pub_key"`
	EDDSAPubKey []byte `json:"eddsa_pub_key"`
	ResultType  string `json:"result_type"`
	ErrorReason string `json:"error_reason"`
	ErrorCode   string `json:"error_code"`
}

// SigningResultEvent is the result of a signing request.
type SigningResultEvent struct {
	ResultType          string `json:"result_type"`
	ErrorCode           string `json:"error_code"`
	ErrorReason         string `json:"error_reason"`
	IsTimeout           bool   `json:"is_timeout"`
	NetworkInternalCode string `json:"network_internal_code"`
	WalletID            string `json:"wallet_id"`
	TxID                string `json:"tx_id"`
	R                   []byte `json:"r"`
	S                   []byte `json:"s"`
	SignatureRecovery   []byte `json:"signature_recovery"`
	Signature           []byte `json:"signature"`
}

// ResharingResultEvent is the result of a reshare request.
type ResharingResultEvent struct {
	WalletID     string `json:"wallet_id"`
	NewThreshold int    `json:"new_threshold"`
	KeyType      string `json:"key_type"`
	PubKey       []byte `json:"pub_key"`
	ResultType   string `json:"result_type"`
	ErrorReason  string `json:"error_reason"`
	ErrorCode    string `json:"error_code"`
}
