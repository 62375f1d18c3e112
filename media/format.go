package media

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// formatVersion is the version of the data directory layout this code
// writes and reads.
const formatVersion = 1

// storeFormat is the content of DATA/FORMAT: the properties of a store
// that must never change once data is written.
type storeFormat struct {
	Version int
	Hash    string // "blake3-256"
	Chunker string // chunker.Params.String()
	// ID names the store: random, written when the store is created (or,
	// for a store made before IDs, at its first writable open) and carried
	// by its backups, so a backup never goes into another store. "" when
	// FORMAT has none.
	ID string
	// Chunks is where the chunks are (Options.ChunksAt): "" for the local
	// cas/ directory, which FORMAT then does not mention.
	Chunks string
	// Index is where the index is: "" for Pebble under index/, which
	// FORMAT then does not mention, or indexPostgres (Options.IndexDSN).
	Index string
}

// indexPostgres is FORMAT's index line of a store indexed in PostgreSQL.
const indexPostgres = "postgres"

// indexPlace names where a FORMAT's index is, for messages.
func indexPlace(at string) string {
	if at == "" {
		return "Pebble under index/"
	}
	return at
}

func (f storeFormat) encode() []byte {
	b := fmt.Appendf(nil, "mxcas-store %d\nhash %s\nchunker %s\n", f.Version, f.Hash, f.Chunker)
	if f.ID != "" {
		b = fmt.Appendf(b, "id %s\n", f.ID)
	}
	if f.Chunks != "" {
		b = fmt.Appendf(b, "chunks %s\n", f.Chunks)
	}
	if f.Index != "" {
		b = fmt.Appendf(b, "index %s\n", f.Index)
	}
	return b
}

// chunksPlace names where a FORMAT's chunks are, for messages.
func chunksPlace(at string) string {
	if at == "" {
		return "the local directory cas/"
	}
	return at
}

// newStoreID returns a random store ID: 32 hex digits.
func newStoreID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validStoreID accepts 32 lowercase hex digits.
func validStoreID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func parseFormat(b []byte) (storeFormat, error) {
	var f storeFormat
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), " ")
		switch key {
		case "mxcas-store":
			v, err := strconv.Atoi(val)
			if err != nil {
				return f, fmt.Errorf("bad version %q", val)
			}
			f.Version = v
		case "hash":
			f.Hash = val
		case "chunker":
			f.Chunker = val
		case "id":
			if !validStoreID(val) {
				return f, fmt.Errorf("bad store id %q", val)
			}
			f.ID = val
		case "chunks":
			f.Chunks = val
		case "index":
			if val != indexPostgres {
				return f, fmt.Errorf("unknown index %q", val)
			}
			f.Index = val
		case "":
		default:
			return f, fmt.Errorf("unknown line %q", sc.Text())
		}
	}
	if f.Version == 0 {
		return f, errors.New("no mxcas-store line")
	}
	return f, nil
}

// ErrFormat means DATA/FORMAT disagrees with what the caller expects.
var ErrFormat = errors.New("media: data directory format mismatch")

// compareFormat is checkFormat for a read-only open: a missing FORMAT is
// an error instead of being written.
func compareFormat(dir string, want storeFormat) (storeFormat, error) {
	return matchFormat(dir, want, false)
}

// checkFormat writes DATA/FORMAT when dir has none (durably: temp file,
// fsync, rename, fsync dir; with a new ID when want has none), and
// otherwise compares it with want: any difference is an error wrapping
// ErrFormat that names both values. IDs are compared only when both have
// one. It returns what FORMAT holds (or now holds), so callers need not
// read it again for its ID.
func checkFormat(dir string, want storeFormat) (storeFormat, error) {
	return matchFormat(dir, want, true)
}

// matchFormat is checkFormat, or compareFormat when !create.
func matchFormat(dir string, want storeFormat, create bool) (storeFormat, error) {
	path := filepath.Join(dir, "FORMAT")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return storeFormat{}, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		if want.ID == "" {
			want.ID = newStoreID()
		}
		if err := writeFileAtomic(path, want.encode(), 0o600); err != nil {
			return storeFormat{}, fmt.Errorf("media: write %s: %w", path, err)
		}
		return want, nil
	}
	if err != nil {
		return storeFormat{}, fmt.Errorf("media: read %s: %w", path, err)
	}
	got, err := parseFormat(b)
	if err != nil {
		return storeFormat{}, fmt.Errorf("%w: %s: %v", ErrFormat, path, err)
	}
	switch {
	case got.Version != want.Version:
		return storeFormat{}, fmt.Errorf("%w: %s is store version %d, this mxcas reads version %d", ErrFormat, path, got.Version, want.Version)
	case got.Hash != want.Hash:
		return storeFormat{}, fmt.Errorf("%w: %s uses hash %s, this mxcas uses %s", ErrFormat, path, got.Hash, want.Hash)
	case got.Chunker != want.Chunker:
		return storeFormat{}, fmt.Errorf("%w: %s was created with chunker parameters %s but was opened with %s; "+
			"chunk parameters are a property of the store and cannot change (it would stop deduplication)",
			ErrFormat, path, got.Chunker, want.Chunker)
	case got.Chunks != want.Chunks:
		return storeFormat{}, fmt.Errorf("%w: %s keeps its chunks in %s but was opened with them in %s; "+
			"check [storage] (a store keeps the backend it was created with)",
			ErrFormat, path, chunksPlace(got.Chunks), chunksPlace(want.Chunks))
	case got.Index != want.Index:
		return storeFormat{}, fmt.Errorf("%w: %s keeps its index in %s but was opened with it in %s; "+
			"check [index] (mxcas migrate moves an index)",
			ErrFormat, path, indexPlace(got.Index), indexPlace(want.Index))
	case got.ID != "" && want.ID != "" && got.ID != want.ID:
		return storeFormat{}, fmt.Errorf("%w: %s belongs to store %s, not %s", ErrFormat, path, got.ID, want.ID)
	}
	return got, nil
}

// ensureStoreID returns f, the content of dir's FORMAT, giving it an ID
// first when it has none (rewritten durably, as checkFormat writes it).
func ensureStoreID(dir string, f storeFormat) (storeFormat, error) {
	if f.ID != "" {
		return f, nil
	}
	f.ID = newStoreID()
	path := filepath.Join(dir, "FORMAT")
	if err := writeFileAtomic(path, f.encode(), 0o600); err != nil {
		return storeFormat{}, fmt.Errorf("media: write %s: %w", path, err)
	}
	return f, nil
}

// readFormat reads DATA/FORMAT.
func readFormat(dir string) (storeFormat, error) {
	b, err := os.ReadFile(filepath.Join(dir, "FORMAT"))
	if err != nil {
		return storeFormat{}, fmt.Errorf("media: %w", err)
	}
	f, err := parseFormat(b)
	if err != nil {
		return f, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return f, nil
}
