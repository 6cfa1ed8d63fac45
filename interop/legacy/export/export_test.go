package export

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/crypto/vss"
	"github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"mpcium-rs/interop/legacy/original"
)

func reversed(b []byte) []byte {
	out := bytes.Clone(b)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Both encodings agree with a second implementation of the curve, over many points (both
// parities of x and y).
func TestPointEncodingsAgreeWithOtherImplementations(t *testing.T) {
	for range 64 {
		k := common.GetRandomPositiveInt(rand.Reader, tss.Edwards().Params().N)
		enc, err := EncodeEd25519(crypto.ScalarBaseMult(tss.Edwards(), k))
		if err != nil {
			t.Fatal(err)
		}
		s, err := edwards25519.NewScalar().SetCanonicalBytes(reversed(k.FillBytes(make([]byte, 32))))
		if err != nil {
			t.Fatal(err)
		}
		if want := new(edwards25519.Point).ScalarBaseMult(s).Bytes(); !bytes.Equal(enc, want) {
			t.Fatalf("ed25519: %x, filippo says %x", enc, want)
		}

		k = common.GetRandomPositiveInt(rand.Reader, tss.S256().Params().N)
		enc, err = EncodeSecp256k1(crypto.ScalarBaseMult(tss.S256(), k))
		if err != nil {
			t.Fatal(err)
		}
		if want := secp256k1.PrivKeyFromBytes(k.FillBytes(make([]byte, 32))).PubKey().SerializeCompressed(); !bytes.Equal(enc, want) {
			t.Fatalf("secp256k1: %x, decred says %x", enc, want)
		}
	}
	if _, err := EncodeEd25519(crypto.ScalarBaseMult(tss.S256(), big.NewInt(5))); err == nil {
		t.Error("a secp256k1 point encoded as ed25519")
	}
}

func TestHandoffSealOpen(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	blob, err := Seal(key, []byte(`{"format":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(blob), Header) || len(blob) != len(Header)+12+14+16 {
		t.Fatalf("blob %q", blob)
	}
	if plain, err := Open(key, blob); err != nil || string(plain) != `{"format":"x"}` {
		t.Fatalf("%q %v", plain, err)
	}
	for i := range blob {
		changed := bytes.Clone(blob)
		changed[i] ^= 0x80
		if _, err := Open(key, changed); err == nil {
			t.Fatalf("byte %d changed and still opens", i)
		}
	}
	other := bytes.Clone(key)
	other[0] ^= 1
	if _, err := Open(other, blob); err == nil {
		t.Fatal("opens under another key")
	}
}

// dealt is a Shamir dealing at the original's party keys, as tss-lib keygen leaves it on node 0.
func dealt(t *testing.T, curve string, version int, nodes ...string) shareData {
	ec := tss.S256()
	if curve == CurveEd25519 {
		ec = tss.Edwards()
	}
	ks := make([]*big.Int, len(nodes))
	for i, id := range nodes {
		ks[i] = original.PartyKey(id, version)
	}
	secret := common.GetRandomPositiveInt(rand.Reader, ec.Params().N)
	_, shares, err := vss.Create(ec, 1, secret, ks, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bigXj := make([]*crypto.ECPoint, len(nodes))
	for i, s := range shares {
		bigXj[i] = crypto.ScalarBaseMult(ec, s.Share)
	}
	return shareData{xi: shares[0].Share, shareID: ks[0], ks: ks, bigXj: bigXj, pub: crypto.ScalarBaseMult(ec, secret)}
}

func TestCheckShare(t *testing.T) {
	nodes := []string{"5aaf5324-1851-4328-9348-eb3504e4f539", "dea2537b-2357-411c-993f-2e5606d7f717", "131a8050-1a1d-41b6-bb35-6db8dc56c5df"}
	for _, curve := range []string{CurveSecp256k1, CurveEd25519} {
		for _, version := range []int{0, 1, 3} {
			d := dealt(t, curve, version, nodes...)
			share, err := checkShare(d, curve, version)
			if err != nil {
				t.Fatalf("%s v%d: %v", curve, version, err)
			}
			if share.Holders[0].NodeID != nodes[0] || share.SelfX != share.Holders[0].X ||
				share.Holders[0].PartyKey != hex.EncodeToString(original.PartyKeyBytes(nodes[0], version)) {
				t.Errorf("%s v%d: %+v", curve, version, share.Holders[0])
			}
		}
		refused := map[string]func(d *shareData) (version int){
			"Xi·G":             func(d *shareData) int { d.xi = new(big.Int).Add(d.xi, big.NewInt(1)); return 1 },
			"interpolate":      func(d *shareData) int { d.pub = d.bigXj[1]; return 1 },
			"not a node's key": func(d *shareData) int { return 2 },
			"(ShareID)":        func(d *shareData) int { d.shareID = big.NewInt(7); return 1 },
			"public shares":    func(d *shareData) int { d.bigXj = d.bigXj[:2]; return 1 },
			"repeats":          func(d *shareData) int { d.ks[2] = new(big.Int).Add(d.ks[1], d.bigXj[0].Curve().Params().N); return 1 },
			"zero mod":         func(d *shareData) int { d.ks[2] = d.bigXj[0].Curve().Params().N; return 1 },
			"not a " + curve:   func(d *shareData) int { d.pub = crypto.ScalarBaseMult(otherCurve(curve), big.NewInt(3)); return 1 },
		}
		for want, change := range refused {
			d := dealt(t, curve, 1, nodes...)
			version := change(&d)
			if _, err := checkShare(d, curve, version); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s, %q: %v", curve, want, err)
			}
		}
	}
}

func otherCurve(curve string) elliptic.Curve {
	if curve == CurveEd25519 {
		return tss.S256()
	}
	return tss.Edwards()
}
