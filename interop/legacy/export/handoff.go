package export

import (
	"crypto/rand"
	"errors"

	"golang.org/x/crypto/chacha20poly1305"
)

// Header opens every handoff blob and is its AEAD's associated data.
const Header = "MPCIUM-LEGACY-EXPORT-1\n"

// Seal makes the handoff blob: Header ‖ 12-byte random nonce ‖ ChaCha20-Poly1305 (RFC 8439)
// ciphertext and tag of the plaintext, under the 32-byte handoff key, with Header as AAD.
func Seal(key, plaintext []byte) ([]byte, error) {
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(Header)+aead.NonceSize(), len(Header)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	copy(out, Header)
	nonce := out[len(Header):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(out, nonce, plaintext, []byte(Header)), nil
}

// Open checks and decrypts a handoff blob (the receiving side; here for tests).
func Open(key, blob []byte) ([]byte, error) {
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	if len(blob) < len(Header)+aead.NonceSize()+aead.Overhead() || string(blob[:len(Header)]) != Header {
		return nil, errors.New("not a legacy export handoff")
	}
	nonce := blob[len(Header) : len(Header)+aead.NonceSize()]
	return aead.Open(nil, nonce, blob[len(Header)+aead.NonceSize():], []byte(Header))
}
