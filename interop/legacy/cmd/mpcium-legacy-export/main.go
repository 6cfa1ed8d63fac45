// Command mpcium-legacy-export reads the shares of one node of the original mpcium
// (fystack/mpcium) from its Badger store or its encrypted backups, checks each, and writes them
// to stdout sealed under a one-time handoff key, for `mpcium-cli migrate` to import. Secrets come
// on stdin: line 1 the handoff key (64 hex chars), line 2 the node's badger_password. See
// ../../README.md for the handoff format and the exit codes.
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"mpcium-rs/interop/legacy/export"
	"mpcium-rs/interop/legacy/original"
)

// Exit codes (README.md).
const (
	exitOther        = 1
	exitUsage        = 2
	exitDecrypt      = 3
	exitMalformed    = 4
	exitNoShares     = 5
	maxSecretLineLen = 4096
)

// failure is an error with its exit code; its message is one line for the operator.
type failure struct {
	code int
	msg  string
}

func (f *failure) Error() string { return f.msg }

func fail(code int, format string, args ...any) *failure {
	return &failure{code, fmt.Sprintf(format, args...)}
}

type walletList []string

func (w *walletList) String() string { return strings.Join(*w, ",") }
func (w *walletList) Set(v string) error {
	if v == "" {
		return errors.New("empty wallet ID")
	}
	*w = append(*w, v)
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		code := exitOther
		var f *failure
		if errors.As(err, &f) {
			code = f.code
		}
		fmt.Fprintln(os.Stderr, "mpcium-legacy-export:", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(code)
	}
}

const usage = "usage: mpcium-legacy-export (--db DIR | --backup-dir DIR) [--wallet ID]... < secrets (line 1: handoff key, 64 hex chars; line 2: badger password)"

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	flags := flag.NewFlagSet("mpcium-legacy-export", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	dbDir := flags.String("db", "", "an original node's Badger directory (<db_path>/<node name>)")
	backupDir := flags.String("backup-dir", "", "an original node's backup directory (backup-*.enc)")
	var wallets walletList
	flags.Var(&wallets, "wallet", "export only this wallet (repeatable)")
	if err := flags.Parse(args); err != nil {
		return fail(exitUsage, "%v; %s", err, usage)
	}
	if flags.NArg() != 0 || (*dbDir == "") == (*backupDir == "") {
		return fail(exitUsage, "give exactly one of --db and --backup-dir; %s", usage)
	}

	handoffKey, password, err := readSecrets(stdin)
	defer clear(handoffKey)
	defer clear(password)
	if err != nil {
		return err
	}
	if err := original.CheckPassword(password); err != nil {
		return fail(exitDecrypt, "%v", err)
	}

	var doc export.Document
	if *dbDir != "" {
		doc, err = exportStore(*dbDir, password, wallets)
	} else {
		doc, err = exportBackups(*backupDir, password, wallets)
	}
	defer doc.Zero()
	if err != nil {
		return err
	}
	plaintext, err := json.Marshal(doc)
	defer clear(plaintext)
	if err != nil {
		return err
	}
	blob, err := export.Seal(handoffKey, plaintext)
	if err != nil {
		return err
	}
	if _, err := stdout.Write(blob); err != nil {
		return fmt.Errorf("writing the handoff to stdout: %w", err)
	}
	return nil
}

// readSecrets reads the handoff key (line 1, hex) and the badger password (line 2, without its
// newline) from stdin.
func readSecrets(stdin io.Reader) (handoffKey, password []byte, err error) {
	r := bufio.NewReaderSize(stdin, maxSecretLineLen)
	readLine := func(what string) ([]byte, error) {
		line, err := r.ReadSlice('\n')
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			clear(line)
			return nil, fail(exitUsage, "stdin: no %s line, or one over %d bytes (line 1: handoff key, 64 hex chars; line 2: badger password)", what, maxSecretLineLen)
		}
		out := bytes.Clone(bytes.TrimSuffix(line, []byte("\n")))
		clear(line)
		return out, nil
	}
	keyHex, err := readLine("handoff key")
	defer clear(keyHex)
	if err != nil {
		return nil, nil, err
	}
	handoffKey = make([]byte, 32)
	if n, err := hex.Decode(handoffKey, keyHex); err != nil || n != 32 || len(keyHex) != 64 {
		clear(handoffKey)
		return nil, nil, fail(exitUsage, "stdin line 1 is not a handoff key of 64 hex characters")
	}
	password, err = readLine("badger password")
	if err != nil {
		clear(handoffKey)
		return nil, nil, err
	}
	return handoffKey, password, nil
}

// exportStore reads an original node's Badger directory read-only (Badger allows it with
// encryption): nothing is written to the operator's store.
func exportStore(dir string, password []byte, wallets []string) (export.Document, error) {
	if st, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil || !st.Mode().IsRegular() {
		return export.Document{}, fail(exitUsage, "%s is not a Badger store (no MANIFEST file)", dir)
	}
	db, err := badger.Open(original.StoreOptions(dir, password).WithReadOnly(true).WithLogger(nil))
	if err != nil {
		switch {
		case errors.Is(err, badger.ErrEncryptionKeyMismatch):
			return export.Document{}, fail(exitDecrypt, "%s: the badger password does not open this store (Badger encryption key mismatch)", dir)
		case strings.Contains(err.Error(), "directory lock"):
			return export.Document{}, fail(exitOther, "%s is in use: stop the original's node first (%v)", dir, err)
		default:
			// e.g. a node that crashed leaves a log to replay, which read-only Badger refuses.
			return export.Document{}, fail(exitOther, "%s: cannot open the Badger store read-only (%v); start and stop the original's node cleanly, or export from its backups with --backup-dir", dir, err)
		}
	}
	doc, err := export.ReadShares(db, wallets)
	closeErr := db.Close()
	if err != nil {
		return export.Document{}, classify(err, dir)
	}
	if closeErr != nil {
		doc.Zero()
		return export.Document{}, fail(exitOther, "%s: closing the store: %v", dir, closeErr)
	}
	return doc, nil
}

// exportBackups replays an original node's backup files, in the order its `recover` does
// (lexicographic), into an in-memory Badger and reads the shares from there: the decrypted data
// never touches disk.
func exportBackups(dir string, password []byte, wallets []string) (export.Document, error) {
	files, err := original.BackupFiles(dir)
	if err != nil {
		return export.Document{}, fail(exitUsage, "backup directory: %v", err)
	}
	if len(files) == 0 {
		return export.Document{}, fail(exitNoShares, "%s holds no backup-*.enc files", dir)
	}
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		return export.Document{}, err
	}
	defer db.Close()
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			return export.Document{}, fail(exitOther, "%v", err)
		}
		stream, err := original.DecryptBackup(raw, password)
		switch {
		case errors.Is(err, original.ErrBackupWrongKey):
			return export.Document{}, fail(exitDecrypt, "%s: %v (wrong badger password)", file, err)
		case errors.Is(err, original.ErrBackupUndecryptable):
			return export.Document{}, fail(exitDecrypt, "%s: %v", file, err)
		case err != nil:
			return export.Document{}, fail(exitMalformed, "%s: %v", file, err)
		}
		err = db.Load(bytes.NewReader(stream), 10)
		clear(stream)
		if err != nil {
			return export.Document{}, fail(exitMalformed, "%s: decrypted, but not a Badger backup stream: %v", file, err)
		}
	}
	doc, err := export.ReadShares(db, wallets)
	if err != nil {
		return export.Document{}, classify(err, dir)
	}
	return doc, nil
}

func classify(err error, source string) error {
	var shareErr *export.ShareError
	switch {
	case errors.Is(err, export.ErrNoShares):
		return fail(exitNoShares, "%s: %v", source, err)
	case errors.As(err, &shareErr) && errors.Is(err, export.ErrMalformedShare):
		return fail(exitMalformed, "%s: %v", source, err)
	default:
		return fail(exitOther, "%s: %v", source, err)
	}
}
