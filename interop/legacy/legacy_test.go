package legacy_test

// End to end: the fixture generator makes an original-style cluster's data with the original's
// tss-lib and Badger; the exporter reads it back from each node's store and from its backups; the
// test decrypts the handoffs and checks that the shares are the wallets' real shares.

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/edwards25519"
	"github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/dgraph-io/badger/v4"

	"mpcium-rs/interop/legacy/export"
	"mpcium-rs/interop/legacy/original"
)

type expectedWallet struct {
	ECDSAPub string `json:"ecdsa_pub"`
	EdDSAPub string `json:"eddsa_pub"`
	Version  int    `json:"version"`
}

type expectedFile struct {
	Wallets   map[string]expectedWallet `json:"wallets"`
	Peers     map[string]string         `json:"peers"`
	Threshold int                       `json:"threshold"`
}

type badFile struct {
	TamperedBackupDir string `json:"tampered_backup_dir"`
	TamperedFile      string `json:"tampered_file"`
	SwappedShareDB    string `json:"swapped_share_db"`
	SwappedKey        string `json:"swapped_key"`
	SwappedFrom       string `json:"swapped_from_wallet"`
	Node              string `json:"node"`
}

var (
	binDir     string
	fixtureDir string
	password   []byte
	expected   expectedFile
	bad        badFile
)

// TestMain builds both commands and makes the fixture once per test binary. MPCIUM_LEGACY_FIXTURE
// names a directory made by scripts/legacy-fixture.sh to reuse; otherwise the fixture goes to a
// temporary directory, with the slow ECDSA pre-parameters cached in the user cache directory.
func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	tmp, err := os.MkdirTemp("", "legacy-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	binDir = filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", binDir+"/", "./cmd/legacy-fixture", "./cmd/mpcium-legacy-export")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("go build: %w", err)
	}
	passwordFile := ""
	if dir := os.Getenv("MPCIUM_LEGACY_FIXTURE"); dir != "" {
		fixtureDir = dir
		passwordFile = filepath.Join(dir, "badger-password")
	} else {
		fixtureDir = filepath.Join(tmp, "fixture")
		passwordFile = filepath.Join(tmp, "badger-password")
		if err := os.WriteFile(passwordFile, []byte(hex.EncodeToString(randomBytes(16))+"\n"), 0o600); err != nil {
			return 0, err
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = tmp
		}
		start := time.Now()
		gen := exec.Command(filepath.Join(binDir, "legacy-fixture"), "--out", fixtureDir, "--password-file", passwordFile,
			"--nodes", "3", "--threshold", "1", "--wallets", "w1,w2", "--legacy-wallet", "w0",
			"--preparams-dir", filepath.Join(cache, "mpcium-rs", "legacy-preparams"))
		gen.Stdout, gen.Stderr = os.Stderr, os.Stderr
		if err := gen.Run(); err != nil {
			return 0, fmt.Errorf("legacy-fixture: %w", err)
		}
		fmt.Fprintf(os.Stderr, "fixture made in %s\n", time.Since(start).Round(time.Millisecond))
	}
	raw, err := os.ReadFile(passwordFile)
	if err != nil {
		return 0, err
	}
	password = bytes.TrimSpace(raw)
	if err := readJSON(filepath.Join(fixtureDir, "expected.json"), &expected); err != nil {
		return 0, err
	}
	if err := readJSON(filepath.Join(fixtureDir, "bad", "bad.json"), &bad); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

func readJSON(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

type exportResult struct {
	code   int
	stderr string
	doc    export.Document
	raw    map[string]any
}

// runExport runs the exporter with the secrets on stdin and opens its handoff.
func runExport(t *testing.T, pw []byte, args ...string) exportResult {
	t.Helper()
	key := randomBytes(32)
	cmd := exec.Command(filepath.Join(binDir, "mpcium-legacy-export"), args...)
	cmd.Stdin = strings.NewReader(hex.EncodeToString(key) + "\n" + string(pw) + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("mpcium-legacy-export %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	res := exportResult{stderr: stderr.String()}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		res.code = exitErr.ExitCode()
		if stdout.Len() != 0 {
			t.Errorf("exit %d with %d bytes on stdout", res.code, stdout.Len())
		}
		if strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
			t.Errorf("error output is not one line: %q", res.stderr)
		}
		return res
	} else if err != nil {
		t.Fatal(err)
	}
	plain, err := export.Open(key, stdout.Bytes())
	if err != nil {
		t.Fatalf("opening the handoff: %v", err)
	}
	var doc struct {
		Format string `json:"format"`
		Shares []struct {
			export.Share
			Xi string `json:"xi"`
		} `json:"shares"`
	}
	if err := json.Unmarshal(plain, &doc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(plain, &res.raw); err != nil {
		t.Fatal(err)
	}
	res.doc.Format = doc.Format
	for _, s := range doc.Shares {
		share := s.Share
		share.Xi, err = hex.DecodeString(s.Xi)
		if err != nil {
			t.Fatal(err)
		}
		res.doc.Shares = append(res.doc.Shares, share)
	}
	return res
}

func nodeNames() []string {
	var names []string
	for i := range len(expected.Peers) {
		names = append(names, fmt.Sprintf("node%d", i))
	}
	return names
}

// point of one node's share of one wallet and curve.
type point struct{ x, xi *big.Int }

func TestExportsAreTheWalletsShares(t *testing.T) {
	nodeIDs := map[string]bool{}
	for _, id := range expected.Peers {
		nodeIDs[id] = true
	}
	// shares[wallet/curve][node name] from --db; the backup export must give the same.
	shares := map[string]map[string]point{}
	for _, node := range nodeNames() {
		fromDB := runExport(t, password, "--db", filepath.Join(fixtureDir, "db", node))
		fromBackups := runExport(t, password, "--backup-dir", filepath.Join(fixtureDir, "backups", node))
		for _, res := range []exportResult{fromDB, fromBackups} {
			if res.code != 0 {
				t.Fatalf("%s: exit %d: %s", node, res.code, res.stderr)
			}
			if res.doc.Format != export.Format {
				t.Errorf("format %q", res.doc.Format)
			}
			if want := 2 * len(expected.Wallets); len(res.doc.Shares) != want {
				t.Fatalf("%s: %d shares, want %d", node, len(res.doc.Shares), want)
			}
			// Nothing from pre-params or Paillier keys is handed over.
			for _, s := range res.raw["shares"].([]any) {
				for field := range s.(map[string]any) {
					if !strings.Contains("badger_key wallet_id curve version self_x xi holders public_key", field) {
						t.Errorf("unexpected field %q", field)
					}
				}
			}
		}
		for i, s := range fromDB.doc.Shares {
			if !bytes.Equal(s.Xi, fromBackups.doc.Shares[i].Xi) || s.BadgerKey != fromBackups.doc.Shares[i].BadgerKey {
				t.Errorf("%s: --db and --backup-dir differ at %s", node, s.BadgerKey)
			}
			want, ok := expected.Wallets[s.WalletID]
			if !ok {
				t.Fatalf("unexpected wallet %q", s.WalletID)
			}
			wantPub, prefix := want.ECDSAPub, original.PrefixECDSA
			if s.Curve == export.CurveEd25519 {
				wantPub, prefix = want.EdDSAPub, original.PrefixEdDSA
			}
			if s.PublicKey != wantPub {
				t.Errorf("%s %s: public key %s, want %s", node, s.BadgerKey, s.PublicKey, wantPub)
			}
			if s.Version != want.Version || s.BadgerKey != original.ShareKey(prefix, s.WalletID, want.Version) {
				t.Errorf("%s: key %s version %d, want version %d", node, s.BadgerKey, s.Version, want.Version)
			}
			if len(s.Holders) != len(expected.Peers) {
				t.Fatalf("%s: %d holders", s.BadgerKey, len(s.Holders))
			}
			selfFound := false
			for _, h := range s.Holders {
				if !nodeIDs[h.NodeID] {
					t.Errorf("%s: holder %q is not a peer", s.BadgerKey, h.NodeID)
				}
				partyKey, _ := hex.DecodeString(h.PartyKey)
				if want := original.PartyKeyBytes(h.NodeID, want.Version); !bytes.Equal(partyKey, want) {
					t.Errorf("%s: party key %q, want %q", s.BadgerKey, partyKey, want)
				}
				selfFound = selfFound || h.X == s.SelfX
			}
			if !selfFound {
				t.Errorf("%s: self_x is no holder's x", s.BadgerKey)
			}
			id := s.WalletID + "/" + s.Curve
			if shares[id] == nil {
				shares[id] = map[string]point{}
			}
			shares[id][node] = point{hexInt(t, s.SelfX), new(big.Int).SetBytes(s.Xi)}
		}
	}
	// Any t+1 nodes' shares interpolate to the wallet's secret key.
	names := nodeNames()
	for id, byNode := range shares {
		wallet, curve, _ := strings.Cut(id, "/")
		for a := 0; a < len(names); a++ {
			for b := a + 1; b < len(names); b++ {
				pub := publicKeyOf(t, curve, interpolate(curve, []point{byNode[names[a]], byNode[names[b]]}))
				want := expected.Wallets[wallet].ECDSAPub
				if curve == export.CurveEd25519 {
					want = expected.Wallets[wallet].EdDSAPub
				}
				if pub != want {
					t.Errorf("%s: %s+%s interpolate to a key with public key %s, want %s", id, names[a], names[b], pub, want)
				}
			}
		}
	}
}

func hexInt(t *testing.T, s string) *big.Int {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("not a 32-byte hex scalar: %q", s)
	}
	return new(big.Int).SetBytes(b)
}

func order(curve string) *big.Int {
	if curve == export.CurveEd25519 {
		return tss.Edwards().Params().N
	}
	return tss.S256().Params().N
}

// interpolate is the Lagrange interpolation at 0 of the points, mod the curve order.
func interpolate(curve string, pts []point) *big.Int {
	q := order(curve)
	secret := new(big.Int)
	for j, pj := range pts {
		num, den := big.NewInt(1), big.NewInt(1)
		for m, pm := range pts {
			if m != j {
				num.Mul(num, pm.x)
				den.Mul(den, new(big.Int).Sub(pm.x, pj.x))
			}
		}
		lambda := num.Mul(num, new(big.Int).ModInverse(den.Mod(den, q), q))
		secret.Add(secret, lambda.Mul(lambda, pj.xi))
	}
	return secret.Mod(secret, q)
}

// publicKeyOf is secret·G with an implementation other than the exporter's (decred secp256k1,
// filippo edwards25519), encoded as the handoff encodes public keys.
func publicKeyOf(t *testing.T, curve string, secret *big.Int) string {
	be := secret.FillBytes(make([]byte, 32))
	if curve == export.CurveSecp256k1 {
		return hex.EncodeToString(secp256k1.PrivKeyFromBytes(be).PubKey().SerializeCompressed())
	}
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(be)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(new(edwards25519.Point).ScalarBaseMult(s).Bytes())
}

func TestWalletFilter(t *testing.T) {
	db := filepath.Join(fixtureDir, "db", "node1")
	res := runExport(t, password, "--db", db, "--wallet", "w2", "--wallet", "w0")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var keys []string
	for _, s := range res.doc.Shares {
		keys = append(keys, s.BadgerKey)
	}
	if got := strings.Join(keys, " "); got != "ecdsa:w0 ecdsa:w2_v1 eddsa:w0 eddsa:w2_v1" {
		t.Errorf("exported %s", got)
	}
	res = runExport(t, password, "--db", db, "--wallet", "w1", "--wallet", "nosuchwallet")
	if res.code != 5 || !strings.Contains(res.stderr, "nosuchwallet") {
		t.Errorf("unknown wallet: exit %d: %s", res.code, res.stderr)
	}
}

func TestWrongPassword(t *testing.T) {
	wrong := []byte(hex.EncodeToString(randomBytes(16)))
	res := runExport(t, wrong, "--db", filepath.Join(fixtureDir, "db", "node0"))
	if res.code != 3 || !strings.Contains(res.stderr, "encryption key mismatch") {
		t.Errorf("--db: exit %d: %s", res.code, res.stderr)
	}
	dir := filepath.Join(fixtureDir, "backups", "node0")
	files, _ := original.BackupFiles(dir)
	res = runExport(t, wrong, "--backup-dir", dir)
	if res.code != 3 || len(files) == 0 || !strings.Contains(res.stderr, files[0]) {
		t.Errorf("--backup-dir: exit %d: %s", res.code, res.stderr)
	}
	res = runExport(t, []byte("too short"), "--db", filepath.Join(fixtureDir, "db", "node0"))
	if res.code != 3 || !strings.Contains(res.stderr, "16, 24 or 32 bytes") {
		t.Errorf("short password: exit %d: %s", res.code, res.stderr)
	}
}

func TestTamperedBackup(t *testing.T) {
	res := runExport(t, password, "--backup-dir", filepath.Join(fixtureDir, bad.TamperedBackupDir))
	if res.code != 4 || !strings.Contains(res.stderr, bad.TamperedFile) || !strings.Contains(res.stderr, "changed") {
		t.Errorf("exit %d: %s", res.code, res.stderr)
	}
}

// The exporter cannot know which wallet a share belongs to: a share stored under another wallet's
// key exports, with that other wallet's public key, for mpcium-rs to refuse.
func TestSwappedShareExportsWithItsOwnPublicKey(t *testing.T) {
	res := runExport(t, password, "--db", filepath.Join(fixtureDir, bad.SwappedShareDB))
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	for _, s := range res.doc.Shares {
		if s.BadgerKey == bad.SwappedKey && s.PublicKey != expected.Wallets[bad.SwappedFrom].ECDSAPub {
			t.Errorf("%s: public key %s, want %s's", s.BadgerKey, s.PublicKey, bad.SwappedFrom)
		}
	}
}

// A stored share that is not self-consistent is refused, naming its key.
func TestInconsistentShareRefused(t *testing.T) {
	src, err := badger.Open(original.StoreOptions(filepath.Join(fixtureDir, "db", "node2"), password).WithReadOnly(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	var value []byte
	err = src.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte("eddsa:w1_v1"))
		if err != nil {
			return err
		}
		value, err = item.ValueCopy(nil)
		return err
	})
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	var share map[string]json.RawMessage
	if err := json.Unmarshal(value, &share); err != nil {
		t.Fatal(err)
	}
	xi, _ := new(big.Int).SetString(string(share["Xi"]), 10)
	share["Xi"] = json.RawMessage(xi.Add(xi, big.NewInt(1)).String())
	changed, _ := json.Marshal(share)

	dir := filepath.Join(t.TempDir(), "node2")
	db, err := badger.Open(original.StoreOptions(dir, password).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("eddsa:w1_v1"), changed) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	res := runExport(t, password, "--db", dir)
	if res.code != 4 || !strings.Contains(res.stderr, `"eddsa:w1_v1"`) || !strings.Contains(res.stderr, "Xi·G") {
		t.Errorf("exit %d: %s", res.code, res.stderr)
	}
}

func TestUsage(t *testing.T) {
	db := filepath.Join(fixtureDir, "db", "node0")
	for _, args := range [][]string{
		{},
		{"--db", db, "--backup-dir", filepath.Join(fixtureDir, "backups", "node0")},
		{"--db", db, "extra"},
		{"--nosuchflag"},
		{"--db", fixtureDir}, // not a Badger store
	} {
		if res := runExport(t, password, args...); res.code != 2 {
			t.Errorf("%v: exit %d: %s", args, res.code, res.stderr)
		}
	}
	cmd := exec.Command(filepath.Join(binDir, "mpcium-legacy-export"), "--db", db)
	cmd.Stdin = strings.NewReader("not hex\n" + string(password) + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 || !strings.Contains(stderr.String(), "handoff key") {
		t.Errorf("bad handoff key: %v: %s", err, stderr.String())
	}
}

// readStore reads some keys of a fixture node's store.
func readStore(t *testing.T, dir string, keys ...string) map[string][]byte {
	t.Helper()
	db, err := badger.Open(original.StoreOptions(dir, password).WithReadOnly(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	values := map[string][]byte{}
	err = db.View(func(txn *badger.Txn) error {
		for _, key := range keys {
			item, err := txn.Get([]byte(key))
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			if values[key], err = item.ValueCopy(nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return values
}

// Incremental backups are replayed in file-name order, as the original's recover does.
func TestIncrementalBackupsReplayed(t *testing.T) {
	values := readStore(t, filepath.Join(fixtureDir, "db", "node1"), "ecdsa:w1_v1", "eddsa:w1_v1", "pre_params_0")
	work := t.TempDir()
	db, err := badger.Open(original.StoreOptions(filepath.Join(work, "db"), password).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	backups := filepath.Join(work, "backups")
	now := time.Now()
	for i, key := range []string{"pre_params_0", "ecdsa:w1_v1", "eddsa:w1_v1"} {
		if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(key), values[key]) }); err != nil {
			t.Fatal(err)
		}
		path, err := original.WriteBackup(db, backups, "node1", password, now.Add(time.Duration(i)*time.Second))
		if err != nil || !strings.HasSuffix(path, fmt.Sprintf("-%d.enc", i+1)) {
			t.Fatalf("backup %d: %q %v", i+1, path, err)
		}
	}
	res := runExport(t, password, "--backup-dir", backups)
	if res.code != 0 || len(res.doc.Shares) != 2 || res.doc.Shares[0].BadgerKey != "ecdsa:w1_v1" || res.doc.Shares[1].BadgerKey != "eddsa:w1_v1" {
		t.Fatalf("exit %d, %d shares: %s", res.code, len(res.doc.Shares), res.stderr)
	}
	if res.doc.Shares[0].PublicKey != expected.Wallets["w1"].ECDSAPub || res.doc.Shares[1].PublicKey != expected.Wallets["w1"].EdDSAPub {
		t.Error("public keys differ from the fixture's")
	}
}

// A backup without the key ID in its metadata: AES-GCM cannot tell a wrong password from a
// changed file, and the exporter says so (exit 3).
func TestBackupWithoutKeyID(t *testing.T) {
	files, err := original.BackupFiles(filepath.Join(fixtureDir, "backups", "node2"))
	if err != nil || len(files) != 1 {
		t.Fatal(files, err)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	head := len(original.BackupMagic) + 4
	metaLen := int(binary.BigEndian.Uint32(raw[head-4 : head]))
	var meta original.BackupMetadata
	if err := json.Unmarshal(raw[head:head+metaLen], &meta); err != nil {
		t.Fatal(err)
	}
	meta.EncryptionKeyID = ""
	newMeta, _ := json.Marshal(meta)
	var file bytes.Buffer
	file.WriteString(original.BackupMagic)
	file.Write(binary.BigEndian.AppendUint32(nil, uint32(len(newMeta))))
	file.Write(newMeta)
	file.Write(raw[head+metaLen:])
	dir := t.TempDir()
	path := filepath.Join(dir, filepath.Base(files[0]))
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := runExport(t, password, "--backup-dir", dir); res.code != 0 {
		t.Fatalf("right password: exit %d: %s", res.code, res.stderr)
	}
	res := runExport(t, []byte(hex.EncodeToString(randomBytes(16))), "--backup-dir", dir)
	if res.code != 3 || !strings.Contains(res.stderr, path) || !strings.Contains(res.stderr, "wrong password, or the file was changed") {
		t.Errorf("exit %d: %s", res.code, res.stderr)
	}
}

// A store the original's node still has open is refused without waiting or writing.
func TestStoreInUse(t *testing.T) {
	values := readStore(t, filepath.Join(fixtureDir, "db", "node0"), "ecdsa:w2_v1")
	dir := filepath.Join(t.TempDir(), "node0")
	db, err := badger.Open(original.StoreOptions(dir, password).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("ecdsa:w2_v1"), values["ecdsa:w2_v1"]) }); err != nil {
		t.Fatal(err)
	}
	res := runExport(t, password, "--db", dir)
	if res.code != 1 || !strings.Contains(res.stderr, "stop the original's node first") {
		t.Errorf("exit %d: %s", res.code, res.stderr)
	}
}

// The store of a node that crashed (not closed: its writes are only in the memtable's log) cannot
// be opened read-only; the exporter says what to do instead.
func TestCrashedStore(t *testing.T) {
	values := readStore(t, filepath.Join(fixtureDir, "db", "node0"), "ecdsa:w2_v1")
	work := t.TempDir()
	dir := filepath.Join(work, "open")
	// A small memtable and value log keep the copy below small; the exporter's defaults differ, as they may
	// from the original's node that wrote a store.
	db, err := badger.Open(original.StoreOptions(dir, password).WithMemTableSize(8 << 20).WithValueLogFileSize(1 << 20).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("ecdsa:w2_v1"), values["ecdsa:w2_v1"]) }); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(work, "crashed")
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(crashed, "LOCK"))
	res := runExport(t, password, "--db", crashed)
	if res.code != 1 || !strings.Contains(res.stderr, "start and stop the original's node cleanly, or export from its backups") {
		t.Errorf("exit %d: %s", res.code, res.stderr)
	}
}
