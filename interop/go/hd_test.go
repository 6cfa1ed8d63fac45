package interop

import (
	"encoding/hex"
	"testing"
)

// BIP32 test vector 2: m → m/0 is a public (non-hardened) step.
func TestDeriveSecp256k1MatchesBIP32Vector2(t *testing.T) {
	chain, _ := hex.DecodeString("60499f801b896d83179a4374aeb7822aaeaceaa0db1f85ee3e904c4defbd9689")
	compressed, _ := hex.DecodeString("03cbcaa9c98c877a26977d00825c956a238e8dddfbd322cce4f74b0b5bd6ace4a7")
	master := mustParseSecp256k1(t, compressed)
	child, err := DeriveSecp256k1(master, chain, []uint32{0})
	if err != nil {
		t.Fatal(err)
	}
	want := "02fc9e5af0ac8d9b3cecfe2a888e2117ba3d089d8585886c9c826b6b22a98d12ea"
	if got := hex.EncodeToString(child.SerializeCompressed()); got != want {
		t.Fatalf("m/0 = %s, want %s", got, want)
	}
	if _, err := DeriveSecp256k1(master, chain, []uint32{1 << 31}); err == nil {
		t.Fatal("a hardened index was derived publicly")
	}
}
