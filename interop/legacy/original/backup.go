package original

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// BackupMagic opens every backup file of the original (§8.2).
const BackupMagic = "MPCIUM_BACKUP"

// BackupMetadata is the JSON between the magic and the ciphertext, fields in the original's order.
type BackupMetadata struct {
	Algo            string `json:"algo"`
	NonceB64        string `json:"nonce_b64"`
	CreatedAt       string `json:"created_at"`
	Since           uint64 `json:"since"`
	NextSince       uint64 `json:"next_since"`
	EncryptionKeyID string `json:"encryption_key_id"`
}

// LatestVersion is `<backup_dir>/latest.version`.
type LatestVersion struct {
	Version   uint64 `json:"version"`
	Since     uint64 `json:"since"`
	UpdatedAt string `json:"updated_at"`
}

// EncryptionKeyID is what the original records of the key in each backup: the first 16 hex
// characters of SHA-256(key).
func EncryptionKeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:])[:16]
}

// WriteBackup makes one backup the way the original's periodic backup does (§8.2): Badger's own
// backup stream of everything since latest.version's watermark, AES-GCM under the password bytes
// (random 12-byte nonce, no AAD), framed as magic ‖ u32 BE metadata length ‖ metadata JSON ‖
// ciphertext+tag, in `backup-<nodeName>-<local time>-<version+1>.enc`; then latest.version. It
// returns the file's path ("" when there was nothing new to back up).
func WriteBackup(db *badger.DB, dir, nodeName string, password []byte, now time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	latestPath := filepath.Join(dir, "latest.version")
	var latest LatestVersion
	if raw, err := os.ReadFile(latestPath); err == nil {
		if err := json.Unmarshal(raw, &latest); err != nil {
			return "", fmt.Errorf("%s: %w", latestPath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var stream bytes.Buffer
	next, err := db.Backup(&stream, latest.Since)
	if err != nil {
		return "", fmt.Errorf("badger backup: %w", err)
	}
	if stream.Len() == 0 || (latest.Version > 0 && next == latest.Since) {
		return "", nil
	}
	block, err := aes.NewCipher(password)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ciphertext := gcm.Seal(nil, nonce, stream.Bytes(), nil)
	clear(stream.Bytes())
	meta, err := json.Marshal(BackupMetadata{
		Algo:            "AES-256-GCM", // the original's constant label, whatever the key length
		NonceB64:        base64.StdEncoding.EncodeToString(nonce),
		CreatedAt:       now.Format(time.RFC3339),
		Since:           latest.Since,
		NextSince:       next,
		EncryptionKeyID: EncryptionKeyID(password),
	})
	if err != nil {
		return "", err
	}
	var file bytes.Buffer
	file.WriteString(BackupMagic)
	_ = binary.Write(&file, binary.BigEndian, uint32(len(meta)))
	file.Write(meta)
	file.Write(ciphertext)
	version := latest.Version + 1
	name := fmt.Sprintf("backup-%s-%s-%d.enc", nodeName, now.Local().Format("2006-01-02_15-04-05"), version)
	path := filepath.Join(dir, name)
	// The original creates backup files with default permissions (0666 less the umask).
	if err := os.WriteFile(path, file.Bytes(), 0o666); err != nil {
		return "", err
	}
	latestJSON, err := json.Marshal(LatestVersion{Version: version, Since: next, UpdatedAt: now.Format(time.RFC3339)})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(latestPath, latestJSON, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// BackupFiles lists a backup directory's `backup-*.enc` files in the order the original's
// `recover` replays them: lexicographic by name.
func BackupFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() && strings.HasPrefix(name, "backup-") && strings.HasSuffix(name, ".enc") {
			files = append(files, filepath.Join(dir, name))
		}
	}
	sort.Strings(files)
	return files, nil
}

// ErrBackupMalformed: the file is not a backup file of the original (framing, metadata).
var ErrBackupMalformed = errors.New("not a well-formed mpcium backup file")

// ErrBackupWrongKey: the file's metadata names another encryption key than the password's.
var ErrBackupWrongKey = errors.New("the backup was encrypted under another password")

// ErrBackupTampered: AES-GCM rejected the ciphertext although the metadata's key ID is the
// password's: the file was changed or damaged.
var ErrBackupTampered = errors.New("AES-GCM authentication failed although the file's key ID matches the password: the file was changed or damaged")

// ErrBackupUndecryptable: AES-GCM rejected the ciphertext and the metadata has no key ID to tell
// a wrong password from a changed file.
var ErrBackupUndecryptable = errors.New("AES-GCM authentication failed: wrong password, or the file was changed")

// DecryptBackup checks a backup file's framing and metadata and decrypts it as the original's
// `recover` does (§8.3), returning Badger's backup stream. Before trying AES-GCM it compares the
// metadata's key ID with the password's, so a wrong password is told apart from a changed file.
func DecryptBackup(file, password []byte) ([]byte, error) {
	head := len(BackupMagic) + 4
	if len(file) < head || string(file[:len(BackupMagic)]) != BackupMagic {
		return nil, fmt.Errorf("%w: no %s magic", ErrBackupMalformed, BackupMagic)
	}
	metaLen := binary.BigEndian.Uint32(file[len(BackupMagic):head])
	if uint64(metaLen) > uint64(len(file)-head) {
		return nil, fmt.Errorf("%w: metadata length %d runs past the end of the file", ErrBackupMalformed, metaLen)
	}
	var meta BackupMetadata
	if err := json.Unmarshal(file[head:head+int(metaLen)], &meta); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrBackupMalformed, err)
	}
	nonce, err := base64.StdEncoding.DecodeString(meta.NonceB64)
	if err != nil || len(nonce) != 12 {
		return nil, fmt.Errorf("%w: metadata nonce_b64 is not a 12-byte nonce", ErrBackupMalformed)
	}
	if meta.EncryptionKeyID != "" && meta.EncryptionKeyID != EncryptionKeyID(password) {
		return nil, ErrBackupWrongKey
	}
	block, err := aes.NewCipher(password)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, file[head+int(metaLen):], nil)
	if err != nil {
		if meta.EncryptionKeyID == "" {
			return nil, ErrBackupUndecryptable
		}
		return nil, ErrBackupTampered
	}
	return plain, nil
}
