package export

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"filippo.io/edwards25519"
	"github.com/bnb-chain/tss-lib/v2/crypto"
	ecdsakeygen "github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	eddsakeygen "github.com/bnb-chain/tss-lib/v2/eddsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/tss"

	"mpcium-rs/interop/legacy/original"
)

// ErrMalformedShare: a stored value is not a self-consistent tss-lib share.
var ErrMalformedShare = errors.New("malformed share")

// Secret is secret bytes that marshal as a JSON hex string and can be zeroed.
type Secret []byte

// MarshalJSON is the hex string of the bytes.
func (s Secret) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 2*len(s)+2)
	out = append(out, '"')
	out = hex.AppendEncode(out, s)
	return append(out, '"'), nil
}

// Zero overwrites the bytes.
func (s Secret) Zero() { clear(s) }

// Holder is one party of a share's keygen: who it is and its public share.
type Holder struct {
	NodeID      string `json:"node_id"`
	PartyKey    string `json:"party_key"`
	X           string `json:"x"`
	PublicShare string `json:"public_share"`
}

// Share is one stored share, checked (see CheckShare), in the handoff's form.
type Share struct {
	BadgerKey string   `json:"badger_key"`
	WalletID  string   `json:"wallet_id"`
	Curve     string   `json:"curve"`
	Version   int      `json:"version"`
	SelfX     string   `json:"self_x"`
	Xi        Secret   `json:"xi"`
	Holders   []Holder `json:"holders"`
	PublicKey string   `json:"public_key"`
}

// Format names the handoff plaintext's schema.
const Format = "mpcium-legacy-export/1"

// Document is the handoff plaintext.
type Document struct {
	Format string  `json:"format"`
	Shares []Share `json:"shares"`
}

// Zero overwrites the secret shares.
func (d *Document) Zero() {
	for i := range d.Shares {
		d.Shares[i].Xi.Zero()
	}
}

// shareData is what a re-dealing needs of either curve's tss-lib LocalPartySaveData.
type shareData struct {
	xi, shareID *big.Int
	ks          []*big.Int
	bigXj       []*crypto.ECPoint
	pub         *crypto.ECPoint
}

// ParseShare reads the value stored under a share key (JSON of the curve's tss-lib
// LocalPartySaveData) and checks it (CheckShare). Paillier keys, pre-parameters and range-proof
// parameters are read by tss-lib's types but not kept.
func ParseShare(key original.ParsedShareKey, badgerKey string, value []byte) (Share, error) {
	var data shareData
	var curve string
	switch key.Prefix {
	case original.PrefixECDSA:
		curve = CurveSecp256k1
		var saved ecdsakeygen.LocalPartySaveData
		if err := json.Unmarshal(value, &saved); err != nil {
			return Share{}, fmt.Errorf("%w: not JSON of tss-lib's ECDSA LocalPartySaveData: %v", ErrMalformedShare, err)
		}
		data = shareData{saved.Xi, saved.ShareID, saved.Ks, saved.BigXj, saved.ECDSAPub}
	case original.PrefixEdDSA:
		curve = CurveEd25519
		var saved eddsakeygen.LocalPartySaveData
		if err := json.Unmarshal(value, &saved); err != nil {
			return Share{}, fmt.Errorf("%w: not JSON of tss-lib's EdDSA LocalPartySaveData: %v", ErrMalformedShare, err)
		}
		data = shareData{saved.Xi, saved.ShareID, saved.Ks, saved.BigXj, saved.EDDSAPub}
	default:
		return Share{}, fmt.Errorf("%w: unknown key prefix %q", ErrMalformedShare, key.Prefix)
	}
	share, err := checkShare(data, curve, key.Version)
	if err != nil {
		return Share{}, fmt.Errorf("%w: %v", ErrMalformedShare, err)
	}
	share.BadgerKey = badgerKey
	share.WalletID = key.WalletID
	share.Version = key.Version
	return share, nil
}

func curveOf(name string) (order *big.Int, encode func(*crypto.ECPoint) ([]byte, error)) {
	if name == CurveEd25519 {
		return tss.Edwards().Params().N, EncodeEd25519
	}
	return tss.S256().Params().N, EncodeSecp256k1
}

// checkShare checks that a share is self-consistent and converts it:
//   - as many party keys (Ks) as public shares (BigXj), every point on the curve;
//   - the x-coordinates (Ks mod order) are non-zero and distinct;
//   - the share's own party key (ShareID) is one of Ks, and Xi·G is the public share there;
//   - the public shares interpolate (Lagrange at 0 over all holders) to the public key;
//   - each party key names the Badger key's version (`<nodeID>:<N>`, no ':' for version 0),
//     and the node IDs are distinct.
//
// What it cannot check: which wallet the share belongs to. The share does not carry its wallet ID,
// so a share stored under another wallet's key passes here; mpcium-rs catches it against the key
// info and the other nodes' shares (their public keys and public shares must agree).
func checkShare(d shareData, curve string, version int) (Share, error) {
	order, encode := curveOf(curve)
	n := len(d.ks)
	switch {
	case d.xi == nil || d.shareID == nil:
		return Share{}, errors.New("Xi or ShareID missing")
	case n == 0:
		return Share{}, errors.New("no parties (Ks empty)")
	case len(d.bigXj) != n:
		return Share{}, fmt.Errorf("%d party keys (Ks) but %d public shares (BigXj)", n, len(d.bigXj))
	case !onCurve(d.pub, curve):
		return Share{}, fmt.Errorf("public key missing or not a %s point", curve)
	}
	xi := new(big.Int).Mod(d.xi, order)
	if xi.Sign() == 0 {
		return Share{}, errors.New("Xi is zero mod the curve order")
	}
	self := -1
	xs := make([]*big.Int, n)
	seenX := map[string]bool{}
	seenNode := map[string]bool{}
	holders := make([]Holder, n)
	for j, k := range d.ks {
		if k == nil || k.Sign() <= 0 {
			return Share{}, fmt.Errorf("party key %d missing or not positive", j)
		}
		if !onCurve(d.bigXj[j], curve) {
			return Share{}, fmt.Errorf("public share %d missing or not a %s point", j, curve)
		}
		xs[j] = new(big.Int).Mod(k, order)
		if xs[j].Sign() == 0 {
			return Share{}, fmt.Errorf("party key %d is zero mod the curve order", j)
		}
		if seenX[xs[j].String()] {
			return Share{}, fmt.Errorf("party key %d repeats an x-coordinate", j)
		}
		seenX[xs[j].String()] = true
		if k.Cmp(d.shareID) == 0 {
			self = j
		}
		keyBytes := k.Bytes()
		nodeID := original.NodeIDOfPartyKey(keyBytes)
		if v, ok := original.VersionOfPartyKey(keyBytes); !ok || v != version || nodeID == "" {
			return Share{}, fmt.Errorf("party key %d (%q) is not a node's key for version %d", j, string(keyBytes), version)
		}
		if seenNode[nodeID] {
			return Share{}, fmt.Errorf("node %q holds two of the parties", nodeID)
		}
		seenNode[nodeID] = true
		public, err := encode(d.bigXj[j])
		if err != nil {
			return Share{}, fmt.Errorf("public share %d: %v", j, err)
		}
		holders[j] = Holder{
			NodeID:      nodeID,
			PartyKey:    hex.EncodeToString(keyBytes),
			X:           hex.EncodeToString(scalar32(k, order)),
			PublicShare: hex.EncodeToString(public),
		}
	}
	if self < 0 {
		return Share{}, errors.New("the share's own party key (ShareID) is not among its parties (Ks)")
	}
	if !crypto.ScalarBaseMult(d.bigXj[self].Curve(), xi).Equals(d.bigXj[self]) {
		return Share{}, errors.New("Xi·G is not the share's own public share")
	}
	if curve == CurveEd25519 {
		if err := checkEd25519Self(xi, holders[self].PublicShare); err != nil {
			return Share{}, err
		}
	}
	sum, err := interpolateAtZero(xs, d.bigXj, order)
	if err != nil {
		return Share{}, err
	}
	if !sum.Equals(d.pub) {
		return Share{}, errors.New("the public shares do not interpolate to the public key")
	}
	pub, err := encode(d.pub)
	if err != nil {
		return Share{}, fmt.Errorf("public key: %v", err)
	}
	return Share{
		Curve:     curve,
		SelfX:     holders[self].X,
		Xi:        Secret(xi.FillBytes(make([]byte, 32))),
		Holders:   holders,
		PublicKey: hex.EncodeToString(pub),
	}, nil
}

// checkEd25519Self recomputes Xi·B with filippo.io/edwards25519 and compares it with the encoded
// own public share: a second implementation agreeing on the encoding.
func checkEd25519Self(xi *big.Int, publicHex string) error {
	le := xi.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		le[i], le[j] = le[j], le[i]
	}
	defer clear(le)
	s, err := edwards25519.NewScalar().SetCanonicalBytes(le)
	if err != nil {
		return fmt.Errorf("Xi is not a canonical ed25519 scalar: %v", err)
	}
	if hex.EncodeToString(new(edwards25519.Point).ScalarBaseMult(s).Bytes()) != publicHex {
		return errors.New("Xi·B (edwards25519) is not the share's own encoded public share")
	}
	return nil
}

// interpolateAtZero is Σ λ_j·P_j with the Lagrange coefficients at 0 of the x-coordinates. Any
// t+1 ≤ n shares of a degree-t polynomial interpolate to the same point, so all n do as well.
func interpolateAtZero(xs []*big.Int, points []*crypto.ECPoint, order *big.Int) (*crypto.ECPoint, error) {
	var sum *crypto.ECPoint
	for j := range xs {
		num, den := big.NewInt(1), big.NewInt(1)
		for m := range xs {
			if m == j {
				continue
			}
			num.Mul(num, xs[m]).Mod(num, order)
			diff := new(big.Int).Sub(xs[m], xs[j])
			den.Mul(den, diff.Mod(diff, order)).Mod(den, order)
		}
		inv := new(big.Int).ModInverse(den, order)
		if inv == nil {
			return nil, errors.New("x-coordinates are not invertible differences")
		}
		lambda := num.Mul(num, inv).Mod(num, order)
		term := points[j].ScalarMult(lambda)
		if sum == nil {
			sum = term
			continue
		}
		var err error
		if sum, err = sum.Add(term); err != nil {
			return nil, fmt.Errorf("adding public shares: %v", err)
		}
	}
	return sum, nil
}
