package index

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mxcas/mxcas/cas"
)

// FormatVersion is the version of the data directory layout this code
// writes and reads.
const FormatVersion = 1

// Format is the content of DATA/FORMAT: the properties of a store that must
// never change once data is written.
type Format struct {
	Version int
	Hash    string // "blake3-256"
	Chunker string // chunker.Params.String()
}

func (f Format) encode() []byte {
	return fmt.Appendf(nil, "mxcas-store %d\nhash %s\nchunker %s\n", f.Version, f.Hash, f.Chunker)
}

func parseFormat(b []byte) (Format, error) {
	var f Format
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
var ErrFormat = errors.New("index: data directory format mismatch")

// CompareFormat is CheckFormat for a read-only open: a missing FORMAT is
// an error instead of being written.
func CompareFormat(dir string, want Format) error {
	if _, err := os.Stat(filepath.Join(dir, "FORMAT")); err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return CheckFormat(dir, want)
}

// CheckFormat writes DATA/FORMAT when dir has none (durably: temp file,
// fsync, rename, fsync dir), and otherwise compares it with want: any
// difference is an error wrapping ErrFormat that names both values.
func CheckFormat(dir string, want Format) error {
	path := filepath.Join(dir, "FORMAT")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := cas.WriteFileAtomic(path, want.encode(), 0o600); err != nil {
			return fmt.Errorf("index: write %s: %w", path, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("index: read %s: %w", path, err)
	}
	got, err := parseFormat(b)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrFormat, path, err)
	}
	switch {
	case got.Version != want.Version:
		return fmt.Errorf("%w: %s is store version %d, this mxcas reads version %d", ErrFormat, path, got.Version, want.Version)
	case got.Hash != want.Hash:
		return fmt.Errorf("%w: %s uses hash %s, this mxcas uses %s", ErrFormat, path, got.Hash, want.Hash)
	case got.Chunker != want.Chunker:
		return fmt.Errorf("%w: %s was created with chunker parameters %s but was opened with %s; "+
			"chunk parameters are a property of the store and cannot change (it would stop deduplication)",
			ErrFormat, path, got.Chunker, want.Chunker)
	}
	return nil
}

// ReadFormat reads DATA/FORMAT.
func ReadFormat(dir string) (Format, error) {
	b, err := os.ReadFile(filepath.Join(dir, "FORMAT"))
	if err != nil {
		return Format{}, fmt.Errorf("index: %w", err)
	}
	f, err := parseFormat(b)
	if err != nil {
		return f, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return f, nil
}
