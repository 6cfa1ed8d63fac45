package interop

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"math/big"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	becdsa "github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/nats-io/nats.go"

	"mpcium-rs/interop/go/mpcwire"
)

// resultTimeout bounds the wait for one result (keygen runs DKLs23 and FROST on 3 nodes).
const resultTimeout = 90 * time.Second

// duplicateWindow is how long after the last result a duplicate would still be noticed.
const duplicateWindow = 3 * time.Second

func connect(t *testing.T, c *cluster) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.NatsURL, nats.Name("mpcium-rs go interop"))
	if err != nil {
		t.Fatalf("connect %s: %v", c.NatsURL, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func digest(text string) []byte {
	d := sha256.Sum256([]byte(text))
	return d[:]
}

// verifySecp256k1 checks an ECDSA result with crypto/ecdsa over secp256k1: the signature, low S,
// and that the recovery byte recovers the same key.
func verifySecp256k1(t *testing.T, key *btcec.PublicKey, hash []byte, e mpcwire.SigningResultEvent) {
	t.Helper()
	if len(e.R) != 32 || len(e.S) != 32 || len(e.SignatureRecovery) != 1 || e.Signature != nil {
		t.Fatalf("%s: ECDSA result shape r=%d s=%d v=%d signature=%v", e.TxID, len(e.R), len(e.S),
			len(e.SignatureRecovery), e.Signature)
	}
	r, s := new(big.Int).SetBytes(e.R), new(big.Int).SetBytes(e.S)
	pub := &ecdsa.PublicKey{Curve: btcec.S256(), X: key.X(), Y: key.Y()}
	if !ecdsa.Verify(pub, hash, r, s) {
		t.Fatalf("%s: ECDSA signature does not verify", e.TxID)
	}
	halfOrder := new(big.Int).Rsh(btcec.S256().N, 1)
	if s.Cmp(halfOrder) > 0 {
		t.Fatalf("%s: S is high (not normalised)", e.TxID)
	}
	v := e.SignatureRecovery[0]
	if v > 1 {
		t.Fatalf("%s: recovery byte %d is not 0 or 1", e.TxID, v)
	}
	compact := append([]byte{27 + v}, append(append([]byte{}, e.R...), e.S...)...)
	recovered, _, err := becdsa.RecoverCompact(compact, hash)
	if err != nil || !recovered.IsEqual(key) {
		t.Fatalf("%s: recovery byte %d does not recover the key (%v)", e.TxID, v, err)
	}
}

func verifyEd25519(t *testing.T, key, message []byte, e mpcwire.SigningResultEvent) {
	t.Helper()
	if len(e.Signature) != ed25519.SignatureSize || e.R != nil || e.S != nil || e.SignatureRecovery != nil {
		t.Fatalf("%s: EdDSA result shape signature=%d r=%v s=%v v=%v", e.TxID, len(e.Signature), e.R, e.S,
			e.SignatureRecovery)
	}
	if !ed25519.Verify(key, message, e.Signature) {
		t.Fatalf("%s: Ed25519 signature does not verify", e.TxID)
	}
}

func success[T any](t *testing.T, what string, resultType, code, reason string, event T) T {
	t.Helper()
	if resultType != mpcwire.ResultSuccess {
		t.Fatalf("%s failed: %s %s", what, code, reason)
	}
	return event
}

// wallet is a created wallet's two master keys.
type wallet struct {
	id    string
	ecdsa []byte // X‖Y
	eddsa []byte
}

func keygen(t *testing.T, g *goClient, c *cluster, id string) wallet {
	t.Helper()
	g.createWallet(t, id, c.authorizers...)
	e := g.keygens.wait(t, id, resultTimeout)
	success(t, "keygen "+id, e.ResultType, e.ErrorCode, e.ErrorReason, e)
	if len(e.ECDSAPubKey) != 64 || len(e.EDDSAPubKey) != 32 || e.ErrorCode != "" {
		t.Fatalf("keygen %s: ecdsa %d bytes, eddsa %d bytes, error_code %q", id, len(e.ECDSAPubKey),
			len(e.EDDSAPubKey), e.ErrorCode)
	}
	if _, err := btcec.ParsePubKey(append([]byte{4}, e.ECDSAPubKey...)); err != nil {
		t.Fatalf("keygen %s: ECDSA key is not a secp256k1 point: %v", id, err)
	}
	return wallet{id: id, ecdsa: e.ECDSAPubKey, eddsa: e.EDDSAPubKey}
}

// signAndVerify signs with keyType on path (nil: master key) and verifies the result under the
// key derived in Go.
func signAndVerify(t *testing.T, g *goClient, c *cluster, w wallet, keyType string, path []uint32) {
	t.Helper()
	txID := unique("tx-" + keyType)
	var tx []byte
	if keyType == mpcwire.KeyTypeSecp256k1 {
		tx = digest(txID)
	} else {
		tx = []byte("solana-style message " + txID)
	}
	g.sign(t, &mpcwire.SignTxMessage{KeyType: keyType, WalletID: w.id, NetworkInternalCode: "interop",
		TxID: txID, Tx: tx, DerivationPath: path}, c.authorizers...)
	e := g.signs.wait(t, txID, resultTimeout)
	success(t, "sign "+txID, e.ResultType, e.ErrorCode, e.ErrorReason, e)
	if e.WalletID != w.id || e.NetworkInternalCode != "interop" || e.IsTimeout {
		t.Fatalf("%s: echoed wallet %q network %q timeout %v", txID, e.WalletID, e.NetworkInternalCode, e.IsTimeout)
	}
	if keyType == mpcwire.KeyTypeSecp256k1 {
		key, err := DeriveSecp256k1(w.ecdsa, c.chainCode, path)
		if err != nil {
			t.Fatal(err)
		}
		verifySecp256k1(t, key, tx, e)
	} else {
		key, err := DeriveEd25519(w.eddsa, c.chainCode, path)
		if err != nil {
			t.Fatal(err)
		}
		verifyEd25519(t, key, tx, e)
	}
}

// TestGoClientDrivesCluster is the whole interop scenario against one running cluster.
func TestGoClientDrivesCluster(t *testing.T) {
	c := loadCluster(t)
	a := newGoClient(t, c, "go-a")
	b := newGoClient(t, c, "go-b")

	// Two clients at once: each creates a wallet; each must see only its own results.
	var wa, wb wallet
	if !t.Run("two clients create wallets at once", func(t *testing.T) {
		t.Run("go-a", func(t *testing.T) { t.Parallel(); wa = keygen(t, a, c, unique("go-wallet-a")) })
		t.Run("go-b", func(t *testing.T) { t.Parallel(); wb = keygen(t, b, c, unique("go-wallet-b")) })
	}) {
		return
	}

	t.Run("sign", func(t *testing.T) {
		for _, tc := range []struct {
			keyType string
			path    []uint32
		}{
			{mpcwire.KeyTypeSecp256k1, nil},
			{mpcwire.KeyTypeSecp256k1, []uint32{44, 60, 0, 0, 0}},
			{mpcwire.KeyTypeEd25519, nil},
			{mpcwire.KeyTypeEd25519, []uint32{44, 501, 0, 7}},
		} {
			signAndVerify(t, a, c, wa, tc.keyType, tc.path)
		}
	})

	t.Run("two clients sign at once", func(t *testing.T) {
		t.Run("go-a", func(t *testing.T) { t.Parallel(); signAndVerify(t, a, c, wa, mpcwire.KeyTypeEd25519, nil) })
		t.Run("go-b", func(t *testing.T) {
			t.Parallel()
			signAndVerify(t, b, c, wb, mpcwire.KeyTypeSecp256k1, []uint32{1, 2})
		})
	})

	if len(c.authorizers) > 0 {
		t.Run("authorizer quorum", func(t *testing.T) {
			partial := c.authorizers[:len(c.authorizers)-1]
			id := unique("go-wallet-unauthorized")
			a.createWallet(t, id, partial...)
			e := a.keygens.wait(t, id, resultTimeout)
			if e.ResultType != mpcwire.ResultError || e.ErrorCode == "" || e.ECDSAPubKey != nil {
				t.Fatalf("keygen without authorizer %s: %+v", c.authorizers[len(c.authorizers)-1].ID, e)
			}
			t.Logf("keygen short of one authorizer refused: %s (%s)", e.ErrorCode, e.ErrorReason)

			txID := unique("tx-unauthorized")
			a.sign(t, &mpcwire.SignTxMessage{KeyType: mpcwire.KeyTypeEd25519, WalletID: wa.id,
				NetworkInternalCode: "interop", TxID: txID, Tx: []byte("no authorizers")})
			s := a.signs.wait(t, txID, resultTimeout)
			if s.ResultType != mpcwire.ResultError || s.ErrorCode == "" || s.Signature != nil {
				t.Fatalf("signing without authorizers: %+v", s)
			}
			t.Logf("signing without authorizers refused: %s (%s)", s.ErrorCode, s.ErrorReason)
		})
	}

	t.Run("reshare", func(t *testing.T) {
		newCommittee := []string{c.Nodes[0].ID, c.Nodes[1].ID}
		for _, keyType := range []string{mpcwire.KeyTypeSecp256k1, mpcwire.KeyTypeEd25519} {
			a.reshare(t, &mpcwire.ResharingMessage{SessionID: unique("reshare"), NodeIDs: newCommittee,
				NewThreshold: 1, KeyType: keyType, WalletID: wa.id}, c.authorizers...)
			e := a.reshares.wait(t, reshareKey(wa.id, keyType), resultTimeout)
			success(t, "reshare "+keyType, e.ResultType, e.ErrorCode, e.ErrorReason, e)
			want := wa.eddsa
			if keyType == mpcwire.KeyTypeSecp256k1 {
				want = wa.ecdsa
			}
			if !bytes.Equal(e.PubKey, want) || e.NewThreshold != 1 || e.WalletID != wa.id {
				t.Fatalf("reshare %s: pub_key changed or fields wrong: %+v", keyType, e)
			}
		}
		// The reshared keys still sign, under the same public keys.
		signAndVerify(t, a, c, wa, mpcwire.KeyTypeSecp256k1, []uint32{44, 60, 0, 0, 1})
		signAndVerify(t, a, c, wa, mpcwire.KeyTypeEd25519, nil)
	})

	time.Sleep(duplicateWindow)
	a.checkOneEach(t)
	b.checkOneEach(t)
}
