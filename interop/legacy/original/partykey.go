package original

import (
	"fmt"
	"math/big"
	"strings"
)

// PartyKeyBytes is the tss-lib party key of a node for a key version (§4.5): the ASCII bytes
// `<nodeID>:<version>`, or `<nodeID>` for the legacy version 0. tss-lib reads them as a
// big-endian integer, which is also the share's Shamir x-coordinate (mod the curve order).
func PartyKeyBytes(nodeID string, version int) []byte {
	if version == 0 {
		return []byte(nodeID)
	}
	return []byte(fmt.Sprintf("%s:%d", nodeID, version))
}

// PartyKey is PartyKeyBytes as the integer tss-lib uses.
func PartyKey(nodeID string, version int) *big.Int {
	return new(big.Int).SetBytes(PartyKeyBytes(nodeID, version))
}

// NodeIDOfPartyKey recovers the node ID from a party key as the original does: the key bytes as
// a string, cut at the first ':'.
func NodeIDOfPartyKey(key []byte) string {
	id, _, _ := strings.Cut(string(key), ":")
	return id
}

// VersionOfPartyKey is the version a party key names: what follows the first ':' (0 when there is
// no ':'); ok is false when that is not a decimal number.
func VersionOfPartyKey(key []byte) (version int, ok bool) {
	_, v, found := strings.Cut(string(key), ":")
	if !found {
		return 0, true
	}
	n, err := fmt.Sscanf(v, "%d", &version)
	if err != nil || n != 1 || fmt.Sprint(version) != v || version < 1 {
		return 0, false
	}
	return version, true
}
