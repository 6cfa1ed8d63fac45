package interop

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mpcium-rs/interop/go/mpcwire"
)

// The cluster under test, described by environment variables that scripts/interop-go.sh sets:
//
//	MPCIUM_INTEROP_READY            the ready file of `mpcium-cli devnet` (NATS URL, node IDs, configs)
//	MPCIUM_INTEROP_INITIATOR_KEY    the initiator key file (`.age`: encrypted)
//	MPCIUM_INTEROP_INITIATOR_ALG    ed25519 or p256
//	MPCIUM_INTEROP_PASSPHRASE_FILE  the passphrase of `.age` key files (first line)
//	MPCIUM_INTEROP_AUTHORIZERS      id:algorithm:keyfile,… the nodes require (empty: none)
//	MPCIUM_INTEROP_KMS_KEY_ID       instead of a key file: this P-256 KMS key signs as the initiator,
//	MPCIUM_INTEROP_KMS_ENDPOINT     at this KMS endpoint (the moto emulator)
type cluster struct {
	NatsURL   string `json:"nats_url"`
	Threshold int    `json:"threshold"`
	Nodes     []struct {
		Name   string `json:"name"`
		ID     string `json:"id"`
		Config string `json:"config"`
	} `json:"nodes"`

	chainCode   []byte
	initiator   mpcwire.Signer
	authorizers []mpcwire.NamedSigner
}

func loadCluster(t *testing.T) *cluster {
	t.Helper()
	readyPath := os.Getenv("MPCIUM_INTEROP_READY")
	if readyPath == "" {
		t.Skip("MPCIUM_INTEROP_READY is not set: run scripts/interop-go.sh, which starts a cluster")
	}
	raw, err := os.ReadFile(readyPath)
	if err != nil {
		t.Fatal(err)
	}
	var c cluster
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("ready file %s: %v", readyPath, err)
	}
	config, err := os.ReadFile(c.Nodes[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	match := regexp.MustCompile(`(?m)^chain_code:\s*"?([0-9a-fA-F]{64})"?`).FindSubmatch(config)
	if match == nil {
		t.Fatalf("no chain_code in %s", c.Nodes[0].Config)
	}
	if c.chainCode, err = hex.DecodeString(string(match[1])); err != nil {
		t.Fatal(err)
	}
	passphrase := ""
	if path := os.Getenv("MPCIUM_INTEROP_PASSPHRASE_FILE"); path != "" {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		passphrase = strings.SplitN(string(text), "\n", 2)[0]
	}
	if keyID := os.Getenv("MPCIUM_INTEROP_KMS_KEY_ID"); keyID != "" {
		c.initiator, err = mpcwire.NewKMSSigner(t.Context(), mpcwire.KMSOptions{Region: "us-east-1",
			KeyID: keyID, Endpoint: os.Getenv("MPCIUM_INTEROP_KMS_ENDPOINT"), AccessKeyID: "test",
			SecretAccessKey: "test-secret"})
	} else {
		c.initiator, err = mpcwire.NewLocalSigner(os.Getenv("MPCIUM_INTEROP_INITIATOR_ALG"),
			os.Getenv("MPCIUM_INTEROP_INITIATOR_KEY"), passphrase)
	}
	if err != nil {
		t.Fatalf("initiator: %v", err)
	}
	for _, entry := range strings.Split(os.Getenv("MPCIUM_INTEROP_AUTHORIZERS"), ",") {
		if entry == "" {
			continue
		}
		parts := strings.SplitN(entry, ":", 3)
		if len(parts) != 3 {
			t.Fatalf("MPCIUM_INTEROP_AUTHORIZERS entry %q is not id:algorithm:keyfile", entry)
		}
		signer, err := mpcwire.NewLocalSigner(parts[1], parts[2], passphrase)
		if err != nil {
			t.Fatalf("authorizer %s: %v", parts[0], err)
		}
		c.authorizers = append(c.authorizers, mpcwire.NamedSigner{ID: parts[0], Signer: signer})
	}
	return &c
}

// inbox collects one kind of result event for one client, by correlation key.
type inbox[T any] struct {
	name    string
	key     func(T) string
	mu      sync.Mutex
	events  map[string][]T
	arrived chan struct{}
}

func newInbox[T any](name string, key func(T) string) *inbox[T] {
	return &inbox[T]{name: name, key: key, events: map[string][]T{}, arrived: make(chan struct{}, 1)}
}

func (b *inbox[T]) add(event T) {
	b.mu.Lock()
	k := b.key(event)
	b.events[k] = append(b.events[k], event)
	b.mu.Unlock()
	select {
	case b.arrived <- struct{}{}:
	default:
	}
}

// wait returns the first event for key, failing the test after timeout.
func (b *inbox[T]) wait(t *testing.T, key string, timeout time.Duration) T {
	t.Helper()
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		got := b.events[key]
		b.mu.Unlock()
		if len(got) > 0 {
			return got[0]
		}
		select {
		case <-b.arrived:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: no result for %s within %s", b.name, key, timeout)
		}
	}
}

// exactly checks that every expected key had exactly one event and that nothing else arrived.
func (b *inbox[T]) exactly(t *testing.T, expected []string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[string]bool{}
	for _, k := range expected {
		want[k] = true
		if n := len(b.events[k]); n != 1 {
			t.Errorf("%s: %d result events for %s, want exactly 1", b.name, n, k)
		}
	}
	for k, events := range b.events {
		if !want[k] {
			t.Errorf("%s: %d result event(s) for %s, which this client never asked for", b.name, len(events), k)
		}
	}
}

// goClient is one mpcwire client with its three inboxes and what it asked for.
type goClient struct {
	*mpcwire.Client
	id                     string
	keygens                *inbox[mpcwire.KeygenResultEvent]
	signs                  *inbox[mpcwire.SigningResultEvent]
	reshares               *inbox[mpcwire.ResharingResultEvent]
	askedKeygen, askedSign []string
	askedReshare           []string
	mu                     sync.Mutex
}

func reshareKey(wallet, keyType string) string { return wallet + "/" + keyType }

func newGoClient(t *testing.T, c *cluster, id string) *goClient {
	t.Helper()
	client, err := mpcwire.New(t.Context(), connect(t, c), c.initiator, id)
	if err != nil {
		t.Fatal(err)
	}
	g := &goClient{
		Client:   client,
		id:       id,
		keygens:  newInbox(id+" keygen", func(e mpcwire.KeygenResultEvent) string { return e.WalletID }),
		signs:    newInbox(id+" sign", func(e mpcwire.SigningResultEvent) string { return e.TxID }),
		reshares: newInbox(id+" reshare", func(e mpcwire.ResharingResultEvent) string { return reshareKey(e.WalletID, e.KeyType) }),
	}
	for _, err := range []error{
		client.OnWalletCreationResult(g.keygens.add),
		client.OnSignResult(g.signs.add),
		client.OnResharingResult(g.reshares.add),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(client.Close)
	return g
}

func (g *goClient) createWallet(t *testing.T, wallet string, authorizers ...mpcwire.NamedSigner) {
	t.Helper()
	g.mu.Lock()
	g.askedKeygen = append(g.askedKeygen, wallet)
	g.mu.Unlock()
	if err := g.CreateWallet(wallet, authorizers...); err != nil {
		t.Fatalf("%s CreateWallet(%s): %v", g.id, wallet, err)
	}
}

func (g *goClient) sign(t *testing.T, msg *mpcwire.SignTxMessage, authorizers ...mpcwire.NamedSigner) {
	t.Helper()
	g.mu.Lock()
	g.askedSign = append(g.askedSign, msg.TxID)
	g.mu.Unlock()
	if err := g.SignTransaction(msg, authorizers...); err != nil {
		t.Fatalf("%s SignTransaction(%s): %v", g.id, msg.TxID, err)
	}
}

func (g *goClient) reshare(t *testing.T, msg *mpcwire.ResharingMessage, authorizers ...mpcwire.NamedSigner) {
	t.Helper()
	g.mu.Lock()
	g.askedReshare = append(g.askedReshare, reshareKey(msg.WalletID, msg.KeyType))
	g.mu.Unlock()
	if err := g.Resharing(msg, authorizers...); err != nil {
		t.Fatalf("%s Resharing(%s): %v", g.id, msg.WalletID, err)
	}
}

// checkOneEach waits a bounded time for late duplicates, then checks every request got
// exactly one result event and the client saw no other client's results.
func (g *goClient) checkOneEach(t *testing.T) {
	t.Helper()
	g.keygens.exactly(t, g.askedKeygen)
	g.signs.exactly(t, g.askedSign)
	g.reshares.exactly(t, g.askedReshare)
}

func unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}
