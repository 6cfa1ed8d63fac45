package original

import "testing"

func TestParseShareKey(t *testing.T) {
	for key, want := range map[string]ParsedShareKey{
		"ecdsa:w1_v1":      {PrefixECDSA, "w1", 1},
		"eddsa:w1_v12":     {PrefixEdDSA, "w1", 12},
		"ecdsa:w0":         {PrefixECDSA, "w0", 0},
		"eddsa:my_wallet":  {PrefixEdDSA, "my_wallet", 0},
		"ecdsa:a_v1_v2":    {PrefixECDSA, "a_v1", 2},
		"ecdsa:w_v0":       {PrefixECDSA, "w_v0", 0},
		"eddsa:uuid-1_v3x": {PrefixEdDSA, "uuid-1_v3x", 0},
	} {
		got, ok := ParseShareKey(key)
		if !ok || got != want {
			t.Errorf("%s: %+v %v, want %+v", key, got, ok, want)
		}
		if want.Version > 0 && ShareKey(want.Prefix, want.WalletID, want.Version) != key {
			t.Errorf("%s does not round-trip", key)
		}
	}
	for _, key := range []string{"pre_params_0", "pre_params_1", "ecdsa:", "ECDSA:w1_v1", "w1"} {
		if got, ok := ParseShareKey(key); ok {
			t.Errorf("%s parsed as a share key: %+v", key, got)
		}
	}
}

func TestPartyKeys(t *testing.T) {
	key := PartyKeyBytes("nodeA", 1)
	if string(key) != "nodeA:1" || PartyKey("nodeA", 1).Text(16) != "6e6f6465413a31" {
		t.Errorf("party key %q", key)
	}
	if NodeIDOfPartyKey(key) != "nodeA" || NodeIDOfPartyKey(PartyKeyBytes("nodeA", 0)) != "nodeA" {
		t.Error("node ID")
	}
	for k, want := range map[string]int{"n:1": 1, "n:27": 27, "n": 0} {
		if v, ok := VersionOfPartyKey([]byte(k)); !ok || v != want {
			t.Errorf("%s: %d %v", k, v, ok)
		}
	}
	for _, k := range []string{"n:", "n:0", "n:01", "n:1:2", "n:x"} {
		if _, ok := VersionOfPartyKey([]byte(k)); ok {
			t.Errorf("%s read as a version", k)
		}
	}
}
