package interop

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"sort"
	"testing"
	"time"

	"mpcium-rs/interop/go/mpcwire"
)

// The wallets of an original mpcium cluster made by interop/legacy's fixture generator (real
// tss-lib keygen), imported into the running cluster with `mpcium-cli migrate import`
// (scripts/interop-go.sh sets MPCIUM_INTEROP_LEGACY_EXPECTED to the fixture's expected.json).
type legacyFixture struct {
	Wallets map[string]struct {
		ECDSAPub string `json:"ecdsa_pub"`
		EDDSAPub string `json:"eddsa_pub"`
		Version  int    `json:"version"`
	} `json:"wallets"`
}

// TestImportedWalletsSignUnderTheOriginalKeys: an imported wallet neither signs nor can be made
// again before its conversion; a reshare request the client signs converts each of its keys
// onto the cluster with the original public key; then it signs, at the master key and on an HD
// path, and every signature verifies in Go under the original's public keys.
func TestImportedWalletsSignUnderTheOriginalKeys(t *testing.T) {
	path := os.Getenv("MPCIUM_INTEROP_LEGACY_EXPECTED")
	if path == "" {
		t.Skip("MPCIUM_INTEROP_LEGACY_EXPECTED is not set: scripts/interop-go.sh runs this against imported wallets")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fixture legacyFixture
	if err := json.Unmarshal(raw, &fixture); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(fixture.Wallets) == 0 {
		t.Fatalf("%s lists no wallets", path)
	}
	c := loadCluster(t)
	g := newGoClient(t, c, "go-migration")
	var committee []string
	for _, n := range c.Nodes {
		committee = append(committee, n.ID)
	}
	ids := make([]string, 0, len(fixture.Wallets))
	for id := range fixture.Wallets {
		ids = append(ids, id)
	}
	sort.Strings(ids)

	for _, id := range ids {
		original := fixture.Wallets[id]
		ecdsaSEC1, err := hex.DecodeString(original.ECDSAPub)
		if err != nil {
			t.Fatal(err)
		}
		eddsa, err := hex.DecodeString(original.EDDSAPub)
		if err != nil {
			t.Fatal(err)
		}
		w := wallet{id: id, ecdsa: mustParseSecp256k1(t, ecdsaSEC1), eddsa: eddsa}
		t.Run(id, func(t *testing.T) {
			t.Run("before conversion", func(t *testing.T) {
				txID := unique("tx-unconverted")
				g.sign(t, &mpcwire.SignTxMessage{KeyType: mpcwire.KeyTypeEd25519, WalletID: id,
					NetworkInternalCode: "interop", TxID: txID, Tx: []byte("too early")}, c.authorizers...)
				s := g.signs.wait(t, txID, resultTimeout)
				if s.ResultType != mpcwire.ResultError || s.Signature != nil {
					t.Fatalf("an unconverted imported wallet signed: %+v", s)
				}
				t.Logf("signing before conversion refused: %s (%s)", s.ErrorCode, s.ErrorReason)
				g.createWallet(t, id, c.authorizers...)
				k := g.keygens.wait(t, id, resultTimeout)
				if k.ResultType != mpcwire.ResultError || k.ECDSAPubKey != nil {
					t.Fatalf("keygen over an imported wallet: %+v", k)
				}
				t.Logf("keygen of an imported wallet refused: %s (%s)", k.ErrorCode, k.ErrorReason)
			})
			t.Run("conversion keeps the original keys", func(t *testing.T) {
				for _, keyType := range []string{mpcwire.KeyTypeSecp256k1, mpcwire.KeyTypeEd25519} {
					g.reshare(t, &mpcwire.ResharingMessage{SessionID: unique("convert"), NodeIDs: committee,
						NewThreshold: c.Threshold, KeyType: keyType, WalletID: id}, c.authorizers...)
					e := g.reshares.wait(t, reshareKey(id, keyType), 2*resultTimeout)
					success(t, "conversion "+keyType, e.ResultType, e.ErrorCode, e.ErrorReason, e)
					want := w.eddsa
					if keyType == mpcwire.KeyTypeSecp256k1 {
						want = w.ecdsa
					}
					if !bytes.Equal(e.PubKey, want) {
						t.Fatalf("conversion %s: public key %x, the original's is %x", keyType, e.PubKey, want)
					}
				}
			})
			t.Run("signs under the original keys", func(t *testing.T) {
				signAndVerify(t, g, c, w, mpcwire.KeyTypeSecp256k1, nil)
				signAndVerify(t, g, c, w, mpcwire.KeyTypeSecp256k1, []uint32{44, 60, 0, 0, 3})
				signAndVerify(t, g, c, w, mpcwire.KeyTypeEd25519, nil)
				signAndVerify(t, g, c, w, mpcwire.KeyTypeEd25519, []uint32{44, 501, 0, 0})
			})
		})
	}
	time.Sleep(duplicateWindow)
	g.checkOneEach(t)
}
