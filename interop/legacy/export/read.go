package export

import (
	"errors"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"mpcium-rs/interop/legacy/original"
)

// ErrNoShares: the store holds no share (of the asked-for wallets).
var ErrNoShares = errors.New("no shares found")

// ShareError names the Badger key whose value failed.
type ShareError struct {
	Key string
	Err error
}

func (e *ShareError) Error() string { return fmt.Sprintf("share %q: %v", e.Key, e.Err) }
func (e *ShareError) Unwrap() error { return e.Err }

// ReadShares reads and checks every share in an original's store, or only those of the given
// wallets (every version of each: mpcium-rs picks the one the key info names). Other keys
// (pre_params_*) are skipped. Shares come sorted by Badger key.
func ReadShares(db *badger.DB, wallets []string) (Document, error) {
	want := map[string]bool{}
	for _, w := range wallets {
		want[w] = true
	}
	found := map[string]bool{}
	doc := Document{Format: Format, Shares: []Share{}}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := string(item.KeyCopy(nil))
			parsed, ok := original.ParseShareKey(key)
			if !ok || (len(want) > 0 && !want[parsed.WalletID]) {
				continue
			}
			value, err := item.ValueCopy(nil)
			if err != nil {
				return &ShareError{key, err}
			}
			share, err := ParseShare(parsed, key, value)
			clear(value)
			if err != nil {
				return &ShareError{key, err}
			}
			found[parsed.WalletID] = true
			doc.Shares = append(doc.Shares, share)
		}
		return nil
	})
	if err != nil {
		doc.Zero()
		return Document{}, err
	}
	for _, w := range wallets {
		if !found[w] {
			doc.Zero()
			return Document{}, fmt.Errorf("%w for wallet %q", ErrNoShares, w)
		}
	}
	if len(doc.Shares) == 0 {
		return Document{}, ErrNoShares
	}
	sort.Slice(doc.Shares, func(i, j int) bool { return doc.Shares[i].BadgerKey < doc.Shares[j].BadgerKey })
	return doc, nil
}
