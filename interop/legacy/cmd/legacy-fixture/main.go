// Command legacy-fixture makes data exactly as the original mpcium (fystack/mpcium) stores it,
// with the original's own tss-lib fork and Badger: n nodes' Badger stores holding ECDSA
// (secp256k1) and EdDSA (ed25519) keygen shares, one encrypted backup per node, the Consul key
// info as `consul kv export` prints it, peers.json, and expected.json with the public keys. It
// also makes bad inputs for negative tests under DIR/bad/. Test fixture only: the secrets it writes
// are throwaway.
package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	ecdsakeygen "github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	eddsakeygen "github.com/bnb-chain/tss-lib/v2/eddsa/keygen"
	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"mpcium-rs/interop/legacy/export"
	"mpcium-rs/interop/legacy/original"
)

func main() {
	if err := runMain(); err != nil {
		fmt.Fprintln(os.Stderr, "legacy-fixture:", err)
		os.Exit(1)
	}
}

type config struct {
	out          string
	preParamsDir string
	nodes        int
	threshold    int
	wallets      []string
	legacyWallet string
	password     []byte
}

func parseFlags() (config, error) {
	var c config
	var wallets, passwordFile string
	flag.StringVar(&c.out, "out", "", "output directory (required)")
	flag.IntVar(&c.nodes, "nodes", 3, "number of nodes")
	flag.IntVar(&c.threshold, "threshold", 1, "tss-lib threshold t (t+1 parties sign)")
	flag.StringVar(&wallets, "wallets", "w1,w2", "comma-separated wallet IDs (key version 1)")
	flag.StringVar(&c.legacyWallet, "legacy-wallet", "", "one more wallet in the legacy version-0 format (optional)")
	flag.StringVar(&passwordFile, "password-file", "", "file holding the badger_password (required; 16, 24 or 32 bytes after trimming)")
	flag.StringVar(&c.preParamsDir, "preparams-dir", "", "cache of the nodes' ECDSA pre-parameters (default OUT/preparams)")
	flag.Parse()
	if c.out == "" || passwordFile == "" || flag.NArg() != 0 {
		return c, errors.New("usage: legacy-fixture --out DIR --password-file FILE [--nodes 3] [--threshold 1] [--wallets w1,w2] [--legacy-wallet w0]")
	}
	if c.nodes < 2 || c.threshold < 1 || c.threshold >= c.nodes {
		return c, fmt.Errorf("need 1 <= threshold < nodes (got threshold %d, nodes %d)", c.threshold, c.nodes)
	}
	seen := map[string]bool{}
	for _, w := range strings.Split(wallets, ",") {
		if w = strings.TrimSpace(w); w != "" && !seen[w] {
			seen[w] = true
			c.wallets = append(c.wallets, w)
		}
	}
	if c.legacyWallet != "" && seen[c.legacyWallet] {
		return c, fmt.Errorf("wallet %q is both versioned and legacy", c.legacyWallet)
	}
	if len(c.wallets) < 2 {
		// The swapped-share bad input needs a second wallet.
		return c, errors.New("--wallets needs at least two wallets")
	}
	raw, err := os.ReadFile(passwordFile)
	if err != nil {
		return c, err
	}
	// Like the original's --password-file: the trimmed content.
	c.password = []byte(strings.TrimSpace(string(raw)))
	if err := original.CheckPassword(c.password); err != nil {
		return c, fmt.Errorf("%s: %w", passwordFile, err)
	}
	if c.preParamsDir == "" {
		c.preParamsDir = filepath.Join(c.out, "preparams")
	}
	return c, nil
}

// walletShares is one wallet's keygen results, by node index.
type walletShares struct {
	id      string
	version int
	ecdsa   []*ecdsakeygen.LocalPartySaveData
	eddsa   []*eddsakeygen.LocalPartySaveData
}

type expectedWallet struct {
	ECDSAPub string `json:"ecdsa_pub"`
	EdDSAPub string `json:"eddsa_pub"`
	Version  int    `json:"version"`
}

type expected struct {
	Wallets   map[string]expectedWallet `json:"wallets"`
	Peers     map[string]string         `json:"peers"`
	Threshold int                       `json:"threshold"`
}

// generatedOutputs are the paths this command writes (besides the pre-parameter cache); a rerun
// replaces them.
var generatedOutputs = []string{"expected.json", "peers.json", "consul-keyinfo.json", "db", "backups", "bad"}

func runMain() error {
	c, err := parseFlags()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := os.MkdirAll(c.out, 0o700); err != nil {
		return err
	}
	// expected.json goes first and comes last: a directory with it is a whole fixture.
	for _, name := range generatedOutputs {
		if err := os.RemoveAll(filepath.Join(c.out, name)); err != nil {
			return err
		}
	}
	preParams, err := loadOrGeneratePreParams(c.preParamsDir, c.nodes)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "legacy-fixture: pre-parameters ready after %s\n", time.Since(start).Round(time.Millisecond))

	names := make([]string, c.nodes)
	nodeIDs := make([]string, c.nodes)
	peers := map[string]string{}
	for i := range c.nodes {
		names[i] = fmt.Sprintf("node%d", i)
		nodeIDs[i] = uuid.NewString()
		peers[names[i]] = nodeIDs[i]
	}

	type walletSpec struct {
		id      string
		version int
	}
	specs := []walletSpec{}
	for _, w := range c.wallets {
		specs = append(specs, walletSpec{w, 1})
	}
	if c.legacyWallet != "" {
		specs = append(specs, walletSpec{c.legacyWallet, 0})
	}
	// The wallets' keygens run at once: one keygen mostly keeps one core busy.
	all := make([]walletShares, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		wg.Go(func() {
			all[i], errs[i] = keygenWallet(spec.id, spec.version, nodeIDs, c.threshold, preParams)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("wallet %s: %w", spec.id, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "legacy-fixture: keygen of %d wallets done after %s\n", len(all), time.Since(start).Round(time.Millisecond))

	now := time.Now()
	for i := range c.nodes {
		if err := writeNode(c, names[i], i, all, preParams[i], now); err != nil {
			return fmt.Errorf("%s: %w", names[i], err)
		}
	}
	if err := writeBadInputs(c, names[0], all, preParams[0], now); err != nil {
		return fmt.Errorf("bad inputs: %w", err)
	}
	if err := writeConsulKeyInfo(filepath.Join(c.out, "consul-keyinfo.json"), all, nodeIDs, c.threshold); err != nil {
		return err
	}
	peersJSON, err := json.MarshalIndent(peers, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.out, "peers.json"), peersJSON, 0o600); err != nil {
		return err
	}
	exp := expected{Wallets: map[string]expectedWallet{}, Peers: peers, Threshold: c.threshold}
	for _, ws := range all {
		ecdsaPub, err := export.EncodeSecp256k1(ws.ecdsa[0].ECDSAPub)
		if err != nil {
			return err
		}
		eddsaPub, err := export.EncodeEd25519(ws.eddsa[0].EDDSAPub)
		if err != nil {
			return err
		}
		exp.Wallets[ws.id] = expectedWallet{ECDSAPub: hex.EncodeToString(ecdsaPub), EdDSAPub: hex.EncodeToString(eddsaPub), Version: ws.version}
	}
	expJSON, err := json.MarshalIndent(exp, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.out, "expected.json"), expJSON, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "legacy-fixture: %d nodes, %d wallets in %s (total %s)\n", c.nodes, len(all), c.out, time.Since(start).Round(time.Millisecond))
	return nil
}

// keygenWallet runs both curves' keygens for one wallet and orders the results by node.
func keygenWallet(walletID string, version int, nodeIDs []string, threshold int, preParams []*ecdsakeygen.LocalPreParams) (walletShares, error) {
	ws := walletShares{id: walletID, version: version}
	ids := sortedParties(nodeIDs, version)
	owner := nodeOfParty(ids, nodeIDs, version)
	ecdsaByParty, err := keygenECDSA(ids, owner, threshold, preParams)
	if err != nil {
		return ws, fmt.Errorf("ECDSA keygen: %w", err)
	}
	// Each node invents its own party UUIDs per session; a fresh set for the EdDSA session.
	ids = sortedParties(nodeIDs, version)
	owner2 := nodeOfParty(ids, nodeIDs, version)
	eddsaByParty, err := keygenEdDSA(ids, threshold)
	if err != nil {
		return ws, fmt.Errorf("EdDSA keygen: %w", err)
	}
	ws.ecdsa = make([]*ecdsakeygen.LocalPartySaveData, len(nodeIDs))
	ws.eddsa = make([]*eddsakeygen.LocalPartySaveData, len(nodeIDs))
	for p, data := range ecdsaByParty {
		ws.ecdsa[owner[p]] = data
	}
	for p, data := range eddsaByParty {
		ws.eddsa[owner2[p]] = data
	}
	return ws, nil
}

// writeNode writes node i's Badger store as the original keeps it, then its first backup.
func writeNode(c config, name string, i int, all []walletShares, preParams *ecdsakeygen.LocalPreParams, now time.Time) error {
	entries := map[string]any{original.PreParamsKey(0): preParams}
	for _, ws := range all {
		entries[original.ShareKey(original.PrefixECDSA, ws.id, ws.version)] = ws.ecdsa[i]
		entries[original.ShareKey(original.PrefixEdDSA, ws.id, ws.version)] = ws.eddsa[i]
	}
	return writeStore(c, filepath.Join(c.out, "db", name), filepath.Join(c.out, "backups", name), name, entries, now)
}

// writeStore puts each entry's JSON under its key in a new Badger store with the original's
// options and, when backupDir is set, writes the store's first backup there.
func writeStore(c config, dbDir, backupDir, name string, entries map[string]any, now time.Time) error {
	if err := os.MkdirAll(filepath.Dir(dbDir), 0o700); err != nil {
		return err
	}
	db, err := badger.Open(original.StoreOptions(dbDir, c.password))
	if err != nil {
		return err
	}
	err = db.Update(func(txn *badger.Txn) error {
		for key, value := range entries {
			raw, err := json.Marshal(value)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			if err := txn.Set([]byte(key), raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && backupDir != "" {
		var path string
		path, err = original.WriteBackup(db, backupDir, name, c.password, now)
		if err == nil && path == "" {
			err = errors.New("the backup found nothing to back up")
		}
	}
	if closeErr := db.Close(); err == nil {
		err = closeErr
	}
	return err
}

// badInputs describes DIR/bad/ for the tests (paths relative to DIR).
type badInputs struct {
	TamperedBackupDir string `json:"tampered_backup_dir"`
	TamperedFile      string `json:"tampered_file"`
	SwappedShareDB    string `json:"swapped_share_db"`
	SwappedKey        string `json:"swapped_key"`
	SwappedFrom       string `json:"swapped_from_wallet"`
	Node              string `json:"node"`
}

// writeBadInputs makes: a copy of the node's backup with one ciphertext byte flipped, and a copy
// of the node's store in which the first wallet's ECDSA key holds the second wallet's share.
func writeBadInputs(c config, name string, all []walletShares, preParams *ecdsakeygen.LocalPreParams, now time.Time) error {
	bad := badInputs{Node: name}
	files, err := original.BackupFiles(filepath.Join(c.out, "backups", name))
	if err != nil || len(files) != 1 {
		return fmt.Errorf("expected one backup of %s (%v)", name, err)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		return err
	}
	metaLen := int(binary.BigEndian.Uint32(raw[len(original.BackupMagic):]))
	ciphertextStart := len(original.BackupMagic) + 4 + metaLen
	raw[ciphertextStart+(len(raw)-ciphertextStart)/2] ^= 0x01
	bad.TamperedBackupDir = filepath.Join("bad", "tampered-backup", name)
	bad.TamperedFile = filepath.Join(bad.TamperedBackupDir, filepath.Base(files[0]))
	if err := os.MkdirAll(filepath.Join(c.out, bad.TamperedBackupDir), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.out, bad.TamperedFile), raw, 0o600); err != nil {
		return err
	}

	first, second := all[0], all[1]
	entries := map[string]any{original.PreParamsKey(0): preParams}
	for _, ws := range all {
		entries[original.ShareKey(original.PrefixECDSA, ws.id, ws.version)] = ws.ecdsa[0]
		entries[original.ShareKey(original.PrefixEdDSA, ws.id, ws.version)] = ws.eddsa[0]
	}
	bad.SwappedKey = original.ShareKey(original.PrefixECDSA, first.id, first.version)
	bad.SwappedFrom = second.id
	entries[bad.SwappedKey] = second.ecdsa[0]
	bad.SwappedShareDB = filepath.Join("bad", "swapped-share-db", name)
	if err := writeStore(c, filepath.Join(c.out, bad.SwappedShareDB), "", name, entries, now); err != nil {
		return err
	}
	badJSON, err := json.MarshalIndent(bad, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.out, "bad", "bad.json"), badJSON, 0o600)
}

// consulEntry is one element of `consul kv export`'s output.
type consulEntry struct {
	Key   string `json:"key"`
	Flags uint64 `json:"flags"`
	Value string `json:"value"`
}

// keyInfo is the original's Consul `threshold_keyinfo/<curve>:<wallet>` value (§9).
type keyInfo struct {
	ParticipantPeerIDs []string `json:"participant_peer_ids"`
	Threshold          int      `json:"threshold"`
	Version            int      `json:"version"`
}

func writeConsulKeyInfo(path string, all []walletShares, nodeIDs []string, threshold int) error {
	var entries []consulEntry
	for _, ws := range all {
		value, err := json.Marshal(keyInfo{ParticipantPeerIDs: nodeIDs, Threshold: threshold, Version: ws.version})
		if err != nil {
			return err
		}
		for _, prefix := range []string{original.PrefixECDSA, original.PrefixEdDSA} {
			entries = append(entries, consulEntry{
				Key:   "threshold_keyinfo/" + prefix + ":" + ws.id,
				Value: base64.StdEncoding.EncodeToString(value),
			})
		}
	}
	// `consul kv export` lists keys in order, tab-indented.
	slices.SortFunc(entries, func(a, b consulEntry) int { return strings.Compare(a.Key, b.Key) })
	raw, err := json.MarshalIndent(entries, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}
