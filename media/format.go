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

	"github.com/mxcas/mxcas/cas"
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
	// Layout is how the store keeps its bytes: layoutNested (FORMAT
	// without a layout line: stores made before layoutInline) or
	// layoutInline. A store keeps the layout it was made with.
	Layout int
}

// layout is f's layout, layoutNested when unset.
func (f storeFormat) layout() int { return max(f.Layout, layoutNested) }

// Store layouts (FORMAT's layout line).
const (
	// layoutNested: every chunk is a file, in cas/ab/cd/<hash>.
	layoutNested = 1
	// layoutInline: chunk files in cas/ab/<hash> (256 directories), and
	// an object's last chunk, when it is at most MaxInline bytes, kept in
	// the index beside the manifest (index.ChunkRef.Inline), not in a
	// file. Every new store gets it. A binary from before refuses such a
	// store (FORMAT's unknown layout line).
	layoutInline = 2
)

// MaxInline is the largest chunk a layoutInline store keeps in the index
// (exported for tests and tools that count chunk files): 16 KiB, the
// default chunker's minimum, so only a whole small object or the tail of
// a larger one is inline. In a store of real media 80% of
// files are under 16 KiB: each would otherwise be a file and a directory
// entry of its own (a 4 KiB block at least) and an fsync at upload.
const MaxInline = 16 << 10

// casLayout is the chunk directory layout of a store of layout l.
func casLayout(l int) cas.Layout {
	if l >= layoutInline {
		return cas.LayoutFlat
	}
	return cas.LayoutNested
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
	if f.Layout > layoutNested {
		b = fmt.Appendf(b, "layout %d\n", f.Layout)
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
		case "layout":
			l, err := strconv.Atoi(val)
			if err != nil || l != layoutInline {
				return f, fmt.Errorf("unknown layout %q (this mxcas reads %d and %d)", val, layoutNested, layoutInline)
			}
			f.Layout = l
		case "":
		default:
			return f, fmt.Errorf("unknown line %q", sc.Text())
		}
	}
	if f.Version == 0 {
		return f, errors.New("no mxcas-store line")
	}
	if f.Layout == 0 {
		f.Layout = layoutNested
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
	case got.layout() != want.layout():
		return storeFormat{}, fmt.Errorf("%w: %s is of layout %d, opened as layout %d", ErrFormat, path, got.Layout, want.Layout)
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

// storeLayout returns the layout of the store in dir as its FORMAT says:
// layoutInline for a new store, layoutNested for an existing store
// without a FORMAT (one made before FORMAT, which gets one now).
func storeLayout(dir string, isNew bool) (int, error) {
	f, err := readFormat(dir)
	return layoutOf(f, err, isNew)
}

// layoutOf is storeLayout of the FORMAT read as f, or its read error.
func layoutOf(f storeFormat, err error, isNew bool) (int, error) {
	if isNew {
		return layoutInline, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return layoutNested, nil
	}
	if err != nil {
		return 0, err
	}
	return f.Layout, nil
}

// ChunkPath returns the file chunk h has, or would have, in the local
// store in dir, as the store's layout places it: for tools and tests that
// look at chunk files themselves.
func ChunkPath(dir string, h cas.Hash) (string, error) {
	l, err := storeLayout(dir, false)
	if err != nil {
		return "", err
	}
	return casLayout(l).Path(dir, h), nil
}
