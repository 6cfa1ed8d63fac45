// Package interop checks mpcium-rs from Go: see interop_test.go. This file derives HD child
// public keys the way docs/wire.md §11 describes, independently of the nodes' Rust code.
package interop

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"github.com/btcsuite/btcd/btcec/v2"
)

// step is one HMAC-SHA512 step: IL (the tweak) and the child chain code.
func step(chainCode, serializedParent []byte, index uint32) (il, childChain []byte, err error) {
	if index >= 1<<31 {
		return nil, nil, fmt.Errorf("index %d is hardened; only public derivation is possible", index)
	}
	mac := hmac.New(sha512.New, chainCode)
	mac.Write(serializedParent)
	var i [4]byte
	binary.BigEndian.PutUint32(i[:], index)
	mac.Write(i[:])
	sum := mac.Sum(nil)
	return sum[:32], sum[32:], nil
}

// DeriveSecp256k1 is BIP32 public derivation (CKDpub) of the 64-byte X‖Y key along path.
func DeriveSecp256k1(xy, chainCode []byte, path []uint32) (*btcec.PublicKey, error) {
	if len(xy) != 64 {
		return nil, fmt.Errorf("secp256k1 key has %d bytes, not 64 (X‖Y)", len(xy))
	}
	key, err := btcec.ParsePubKey(append([]byte{4}, xy...))
	if err != nil {
		return nil, err
	}
	chain := chainCode
	for _, index := range path {
		il, next, err := step(chain, key.SerializeCompressed(), index)
		if err != nil {
			return nil, err
		}
		var tweak btcec.ModNScalar
		if overflow := tweak.SetByteSlice(il); overflow || tweak.IsZero() {
			return nil, errors.New("IL is not a valid scalar; the next index would be used")
		}
		var parent, tweakPoint, child btcec.JacobianPoint
		key.AsJacobian(&parent)
		btcec.ScalarBaseMultNonConst(&tweak, &tweakPoint)
		btcec.AddNonConst(&parent, &tweakPoint, &child)
		child.ToAffine()
		key, chain = btcec.NewPublicKey(&child.X, &child.Y), next
	}
	return key, nil
}

// ed25519Order is the prime order L of the Ed25519 base point.
var ed25519Order, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// DeriveEd25519 is the original's Ed25519 public derivation: per index the parent is serialised
// as 0x02/0x03 (Y even/odd) ‖ affine X big-endian, IL (big-endian, mod L) tweaks the key by IL·G.
func DeriveEd25519(public, chainCode []byte, path []uint32) ([]byte, error) {
	key, err := new(edwards25519.Point).SetBytes(public)
	if err != nil {
		return nil, fmt.Errorf("not an Ed25519 point: %w", err)
	}
	chain := chainCode
	for _, index := range path {
		x, y, z, _ := key.ExtendedCoordinates()
		zInv := new(field.Element).Invert(z)
		xLE := new(field.Element).Multiply(x, zInv).Bytes()
		yLE := new(field.Element).Multiply(y, zInv).Bytes()
		serialized := make([]byte, 33)
		serialized[0] = 0x02 | (yLE[0] & 1)
		for i := 0; i < 32; i++ {
			serialized[1+i] = xLE[31-i]
		}
		il, next, err := step(chain, serialized, index)
		if err != nil {
			return nil, err
		}
		k := new(big.Int).Mod(new(big.Int).SetBytes(il), ed25519Order)
		if k.Sign() == 0 {
			return nil, errors.New("IL is zero mod L")
		}
		kBE := k.FillBytes(make([]byte, 32))
		kLE := make([]byte, 32)
		for i := 0; i < 32; i++ {
			kLE[i] = kBE[31-i]
		}
		scalar, err := new(edwards25519.Scalar).SetCanonicalBytes(kLE)
		if err != nil {
			return nil, err
		}
		tweak := new(edwards25519.Point).ScalarBaseMult(scalar)
		key, chain = new(edwards25519.Point).Add(key, tweak), next
	}
	return key.Bytes(), nil
}
