// Package original holds what fystack/mpcium (the original, written from
// shared/spec/mpcium-wire.md; its module is not a dependency) does with its data on disk: the Badger
// options and key names, the tss-lib party keys, and the encrypted backup files.
package original

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// StoreOptions are the original's Badger options (§8.1): the badger_password bytes are the
// encryption key, ZSTD, 16 MiB index cache, 32 MiB block cache, sync writes, value checksums,
// L0 compaction on close, Badger's INFO/DEBUG logs off.
func StoreOptions(dir string, password []byte) badger.Options {
	return badger.DefaultOptions(dir).
		WithCompression(options.ZSTD).
		WithEncryptionKey(password).
		WithIndexCacheSize(16 << 20).
		WithBlockCacheSize(32 << 20).
		WithSyncWrites(true).
		WithVerifyValueChecksum(true).
		WithCompactL0OnClose(true).
		WithLoggingLevel(badger.WARNING)
}

// CheckPassword says why a badger_password cannot be the original's key: Badger (and the backup
// AES-GCM) take it raw as an AES key, so only 16, 24 or 32 bytes work.
func CheckPassword(password []byte) error {
	switch len(password) {
	case 16, 24, 32:
		return nil
	case 0:
		return errors.New("the badger password is empty")
	default:
		return fmt.Errorf("the badger password is %d bytes; the original uses it raw as an AES key, so it must be 16, 24 or 32 bytes", len(password))
	}
}

// Curve prefixes of share keys in the original's Badger store.
const (
	PrefixECDSA = "ecdsa"
	PrefixEdDSA = "eddsa"
)

// PreParamsKey is the Badger key of the node's ECDSA pre-parameter set i (JSON of tss-lib
// LocalPreParams).
func PreParamsKey(i int) string { return fmt.Sprintf("pre_params_%d", i) }

// ShareKey is the Badger key of a wallet's share: `<prefix>:<wallet>_v<N>`, or `<prefix>:<wallet>`
// for the legacy version 0.
func ShareKey(prefix, walletID string, version int) string {
	if version == 0 {
		return prefix + ":" + walletID
	}
	return fmt.Sprintf("%s:%s_v%d", prefix, walletID, version)
}

var shareKeyPattern = regexp.MustCompile(`^(ecdsa|eddsa):(.+?)(?:_v([0-9]+))?$`)

// ParsedShareKey is a share key split into its parts.
type ParsedShareKey struct {
	Prefix   string
	WalletID string
	Version  int
}

// ParseShareKey splits a Badger key into curve prefix, wallet ID and version; ok is false for
// keys that are not share keys (pre_params_*, anything else). A legacy wallet whose own ID ends in
// `_v<digits>` reads as a versioned key: the original's key scheme cannot tell them apart either.
func ParseShareKey(key string) (parsed ParsedShareKey, ok bool) {
	m := shareKeyPattern.FindStringSubmatch(key)
	if m == nil {
		return ParsedShareKey{}, false
	}
	parsed = ParsedShareKey{Prefix: m[1], WalletID: m[2]}
	if m[3] != "" {
		v, err := strconv.Atoi(m[3])
		if err != nil || v < 1 {
			// `_v0` or a number too large: not a key the original writes; treat the whole rest as the ID.
			return ParsedShareKey{Prefix: m[1], WalletID: key[len(m[1])+1:]}, true
		}
		parsed.Version = v
	}
	return parsed, true
}
