package interop

import (
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
)

// mustParseSecp256k1 turns a SEC1 key into the 64-byte X‖Y form of keygen results.
func mustParseSecp256k1(t *testing.T, sec1 []byte) []byte {
	t.Helper()
	key, err := btcec.ParsePubKey(sec1)
	if err != nil {
		t.Fatal(err)
	}
	return key.SerializeUncompressed()[1:]
}
