package mpcwire

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
)

// Signer signs requests as an initiator or an authorizer.
type Signer interface {
	Sign(data []byte) ([]byte, error)
	Algorithm() string
	// PublicKeyHex is the configured form: Ed25519 raw 32 bytes, P-256 PKIX DER, in hex.
	PublicKeyHex() (string, error)
}

// LocalSigner holds a private key read from a key file written by `mpcium-cli
// generate-initiator` / `generate-authorizer` (or the original's): hex of an Ed25519 seed or of
// a P-256 SEC1/PKCS#8 DER key, age-encrypted with a passphrase when the path ends in `.age`.
type LocalSigner struct {
	algorithm string
	ed        ed25519.PrivateKey
	p256      *ecdsa.PrivateKey
}

// NewLocalSigner reads path; passphrase is used only for a `.age` file.
func NewLocalSigner(algorithm, path, passphrase string) (*LocalSigner, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".age") {
		if passphrase == "" {
			return nil, fmt.Errorf("%s is encrypted: a passphrase is needed", path)
		}
		identity, err := age.NewScryptIdentity(passphrase)
		if err != nil {
			return nil, err
		}
		reader, err := age.Decrypt(bytes.NewReader(content), identity)
		if err != nil {
			return nil, fmt.Errorf("decrypting %s: %w", path, err)
		}
		if content, err = io.ReadAll(reader); err != nil {
			return nil, err
		}
	}
	text := strings.TrimPrefix(strings.TrimSpace(string(content)), "0x")
	der, err := hex.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("%s is not hex: %w", path, err)
	}
	switch algorithm {
	case AlgorithmEd25519:
		if len(der) != ed25519.SeedSize {
			return nil, fmt.Errorf("%s: an Ed25519 seed has %d bytes, not %d", path, ed25519.SeedSize, len(der))
		}
		return &LocalSigner{algorithm: algorithm, ed: ed25519.NewKeyFromSeed(der)}, nil
	case AlgorithmP256:
		key, err := x509.ParseECPrivateKey(der)
		if err != nil {
			parsed, err8 := x509.ParsePKCS8PrivateKey(der)
			if err8 != nil {
				return nil, fmt.Errorf("%s: neither SEC1 (%v) nor PKCS#8 (%v)", path, err, err8)
			}
			var ok bool
			if key, ok = parsed.(*ecdsa.PrivateKey); !ok {
				return nil, errors.New("PKCS#8 key is not ECDSA")
			}
		}
		return &LocalSigner{algorithm: algorithm, p256: key}, nil
	default:
		return nil, fmt.Errorf("unknown algorithm %q", algorithm)
	}
}

// Sign signs data: Ed25519, or ECDSA P-256 over SHA-256 as ASN.1 DER.
func (s *LocalSigner) Sign(data []byte) ([]byte, error) {
	if s.ed != nil {
		return ed25519.Sign(s.ed, data), nil
	}
	digest := sha256.Sum256(data)
	return s.p256.Sign(rand.Reader, digest[:], crypto.SHA256)
}

// Algorithm is ed25519 or p256.
func (s *LocalSigner) Algorithm() string { return s.algorithm }

// PublicKeyHex is hex of the raw Ed25519 key or of the P-256 PKIX DER.
func (s *LocalSigner) PublicKeyHex() (string, error) {
	if s.ed != nil {
		return hex.EncodeToString(s.ed.Public().(ed25519.PublicKey)), nil
	}
	der, err := x509.MarshalPKIXPublicKey(&s.p256.PublicKey)
	return hex.EncodeToString(der), err
}
