package mpcwire

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Subjects and streams of the client wire (docs/wire.md §1–§3, §6).
const (
	// The original Go client publishes to these literal subjects (`*` as a token).
	KeygenRequestSubject  = "mpc.keygen_request.*"
	SigningRequestSubject = "mpc.signing_request.*"
	ReshareRequestSubject = "mpc:reshare"
	ClientIDHeader        = "ClientID"
)

// Client publishes signed requests and hands result events to callbacks, scoped to its
// client ID as the original's ClientID routing does.
type Client struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	initiator Signer
	clientID  string

	mu       sync.Mutex
	consumes []jetstream.ConsumeContext
}

// New makes the streams (or brings them to the client's settings, as the original client does)
// and checks the client ID.
func New(ctx context.Context, nc *nats.Conn, initiator Signer, clientID string) (*Client, error) {
	if strings.ContainsAny(clientID, " \t\r\n.*>") {
		return nil, fmt.Errorf("client ID %q contains a character a subject token cannot hold", clientID)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	streams := []jetstream.StreamConfig{
		{Name: "mpc-keygen", Description: "Stream for mpc-keygen", Subjects: []string{"mpc.keygen_request.*"},
			MaxAge: 7 * 24 * time.Hour, MaxBytes: 100_000_000},
		{Name: "mpc-signing", Description: "Stream for mpc-signing", Subjects: []string{"mpc.signing_request.*"},
			MaxAge: 7 * 24 * time.Hour, MaxBytes: 100_000_000},
		{Name: "mpc", Description: "Stream for mpc",
			Subjects:  []string{"mpc.mpc_keygen_result.>", "mpc.mpc_signing_result.>", "mpc.mpc_reshare_result.>"},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, MaxBytes: 100_000_000},
	}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	return &Client{nc: nc, js: js, initiator: initiator, clientID: clientID}, nil
}

// ConsumerName is the durable result consumer of base for clientID: `base.clientID`, with
// `.`, `:`, space and `-` made `_` as the original sanitises durable names.
func ConsumerName(base, clientID string) string {
	name := base
	if clientID != "" {
		name = base + "." + clientID
	}
	return strings.NewReplacer(".", "_", ":", "_", " ", "_", "-", "_").Replace(name)
}

func (c *Client) resultFilter(kind, last string) string {
	if c.clientID == "" {
		return "mpc." + kind + "." + last
	}
	return "mpc." + kind + "." + c.clientID + "." + last
}

func subscribe[T any](c *Client, kind, last string, handler func(T)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	consumer, err := c.js.CreateOrUpdateConsumer(ctx, "mpc", jetstream.ConsumerConfig{
		Durable:       ConsumerName(kind, c.clientID),
		FilterSubject: c.resultFilter(kind, last),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    3,
		MaxAckPending: 1000,
	})
	if err != nil {
		return fmt.Errorf("result consumer %s: %w", ConsumerName(kind, c.clientID), err)
	}
	consume, err := consumer.Consume(func(msg jetstream.Msg) {
		var event T
		if err := json.Unmarshal(msg.Data(), &event); err != nil {
			_ = msg.Nak()
			return
		}
		handler(event)
		_ = msg.Ack()
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.consumes = append(c.consumes, consume)
	c.mu.Unlock()
	return nil
}

// OnWalletCreationResult calls handler with every keygen result of this client.
func (c *Client) OnWalletCreationResult(handler func(KeygenResultEvent)) error {
	return subscribe(c, "mpc_keygen_result", "*", handler)
}

// OnSignResult calls handler with every signing result of this client.
func (c *Client) OnSignResult(handler func(SigningResultEvent)) error {
	return subscribe(c, "mpc_signing_result", "complete", handler)
}

// OnResharingResult calls handler with every reshare result of this client.
func (c *Client) OnResharingResult(handler func(ResharingResultEvent)) error {
	return subscribe(c, "mpc_reshare_result", "*", handler)
}

// Close stops the result consumers (the durable consumers stay, as the original's do).
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, consume := range c.consumes {
		consume.Stop()
	}
	c.consumes = nil
}

// sign signs msg once with the initiator and has each authorizer co-sign that signature.
func (c *Client) sign(msg Signed, authorizers []NamedSigner) ([]byte, []AuthorizerSignature, error) {
	raw, err := msg.Raw()
	if err != nil {
		return nil, nil, err
	}
	signature, err := c.initiator.Sign(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("initiator: %w", err)
	}
	var cosigned []AuthorizerSignature
	for _, a := range authorizers {
		payload, err := AuthorizerPayload(msg, signature)
		if err != nil {
			return nil, nil, err
		}
		sig, err := a.Signer.Sign(payload)
		if err != nil {
			return nil, nil, fmt.Errorf("authorizer %s: %w", a.ID, err)
		}
		cosigned = append(cosigned, AuthorizerSignature{AuthorizerID: a.ID, Signature: sig})
	}
	return signature, cosigned, nil
}

// NamedSigner is an authorizer: its configured ID and its key.
type NamedSigner struct {
	ID     string
	Signer Signer
}

func (c *Client) headers() nats.Header {
	h := nats.Header{}
	if c.clientID != "" {
		h.Set(ClientIDHeader, c.clientID)
	}
	return h
}

func (c *Client) publishJS(subject string, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data, Header: c.headers()})
	return err
}

// CreateWallet asks for a wallet's two keys, co-signed by authorizers (none: no co-signature).
func (c *Client) CreateWallet(walletID string, authorizers ...NamedSigner) error {
	msg := &GenerateKeyMessage{WalletID: walletID}
	sig, cosigned, err := c.sign(msg, authorizers)
	if err != nil {
		return err
	}
	msg.Signature, msg.AuthorizerSignatures = sig, cosigned
	return c.publishJS(KeygenRequestSubject, msg)
}

// SignTransaction signs msg as the initiator (and authorizers) and publishes it.
func (c *Client) SignTransaction(msg *SignTxMessage, authorizers ...NamedSigner) error {
	sig, cosigned, err := c.sign(msg, authorizers)
	if err != nil {
		return err
	}
	msg.Signature, msg.AuthorizerSignatures = sig, cosigned
	return c.publishJS(SigningRequestSubject, msg)
}

// Resharing signs msg and publishes it on core NATS (no durability, as in the original).
func (c *Client) Resharing(msg *ResharingMessage, authorizers ...NamedSigner) error {
	sig, cosigned, err := c.sign(msg, authorizers)
	if err != nil {
		return err
	}
	msg.Signature, msg.AuthorizerSignatures = sig, cosigned
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if err := c.nc.PublishMsg(&nats.Msg{Subject: ReshareRequestSubject, Data: data, Header: c.headers()}); err != nil {
		return err
	}
	return c.nc.Flush()
}
