// Package export turns the original's stored tss-lib shares into the handoff that mpcium-rs's
// migration reads: checked Shamir share data (secret share, x-coordinates, public shares, public
// key), sealed under a one-time handoff key.
package export

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"filippo.io/edwards25519"
	"github.com/bnb-chain/tss-lib/v2/crypto"
	"github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/decred/dcrd/dcrec/edwards/v2"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Curve names in the handoff.
const (
	CurveSecp256k1 = "secp256k1"
	CurveEd25519   = "ed25519"
)

// scalar32 is x mod order as 32 big-endian bytes.
func scalar32(x, order *big.Int) []byte {
	return new(big.Int).Mod(x, order).FillBytes(make([]byte, 32))
}

// onCurve says whether a tss-lib point is a point of the named curve.
func onCurve(p *crypto.ECPoint, curve string) bool {
	if p == nil || p.X() == nil || p.Y() == nil {
		return false
	}
	name, ok := tss.GetCurveName(p.Curve())
	return ok && string(name) == curve && p.IsOnCurve()
}

// EncodeSecp256k1 is a secp256k1 point as 33-byte SEC1 compressed, decoded back with decred's
// secp256k1 to check it is the same point.
func EncodeSecp256k1(p *crypto.ECPoint) ([]byte, error) {
	if !onCurve(p, CurveSecp256k1) {
		return nil, errors.New("not a secp256k1 point")
	}
	enc := make([]byte, 33)
	enc[0] = 0x02 | byte(p.Y().Bit(0))
	p.X().FillBytes(enc[1:])
	back, err := secp256k1.ParsePubKey(enc)
	if err != nil {
		return nil, fmt.Errorf("secp256k1 encoding: %w", err)
	}
	if back.X().Cmp(p.X()) != 0 || back.Y().Cmp(p.Y()) != 0 {
		return nil, errors.New("secp256k1 encoding does not decode to the same point")
	}
	return enc, nil
}

// EncodeEd25519 is an ed25519 point as the standard 32-byte compressed Edwards encoding (y
// little-endian, top bit = x parity). It is decoded back with decred's edwards (the curve tss-lib
// uses) to check it is the same point, and with filippo.io/edwards25519 to check it is a canonical
// encoding of a point of the curve.
func EncodeEd25519(p *crypto.ECPoint) ([]byte, error) {
	if !onCurve(p, CurveEd25519) {
		return nil, errors.New("not an ed25519 point")
	}
	enc := make([]byte, 32)
	p.Y().FillBytes(enc)
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		enc[i], enc[j] = enc[j], enc[i]
	}
	enc[31] |= byte(p.X().Bit(0)) << 7
	back, err := edwards.ParsePubKey(enc)
	if err != nil {
		return nil, fmt.Errorf("ed25519 encoding: %w", err)
	}
	if back.X.Cmp(p.X()) != 0 || back.Y.Cmp(p.Y()) != 0 {
		return nil, errors.New("ed25519 encoding does not decode to the same point")
	}
	q, err := new(edwards25519.Point).SetBytes(enc)
	if err != nil {
		return nil, fmt.Errorf("ed25519 encoding: %w", err)
	}
	if !bytes.Equal(q.Bytes(), enc) {
		return nil, errors.New("ed25519 encoding is not canonical")
	}
	return enc, nil
}
