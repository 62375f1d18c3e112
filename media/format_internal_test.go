package media

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	dir := t.TempDir()
	f := storeFormat{Version: formatVersion, Hash: "blake3-256", Chunker: "min=16384 avg=65536 max=262144", Layout: layoutNested}
	if _, err := checkFormat(dir, f); err != nil {
		t.Fatal(err)
	}
	if _, err := checkFormat(dir, f); err != nil {
		t.Fatalf("same format again: %v", err)
	}
	got, err := readFormat(dir)
	if err != nil || !validStoreID(got.ID) {
		t.Fatalf("readFormat = %+v, %v; want a new store ID", got, err)
	}
	if got.ID = ""; got != f {
		t.Fatalf("readFormat = %+v, want %+v", got, f)
	}
	other := f
	other.Chunker = "min=4096 avg=16384 max=65536"
	_, err = checkFormat(dir, other)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), f.Chunker) || !strings.Contains(err.Error(), other.Chunker) {
		t.Errorf("other chunker params: got %v, want ErrFormat naming both", err)
	}
	other = f
	other.Version = 99
	if _, err := checkFormat(dir, other); !errors.Is(err, ErrFormat) {
		t.Errorf("other version: got %v, want ErrFormat", err)
	}
	mine, _ := readFormat(dir)
	if _, err := checkFormat(dir, mine); err != nil {
		t.Errorf("own ID: %v", err)
	}
	other = mine
	other.ID = newStoreID()
	if _, err := checkFormat(dir, other); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), mine.ID) {
		t.Errorf("another store's ID: got %v, want ErrFormat naming %s", err, mine.ID)
	}

	// A FORMAT from before store IDs gets one, once.
	old := t.TempDir()
	os.WriteFile(filepath.Join(old, "FORMAT"), f.encode(), 0o600)
	noID, _ := readFormat(old)
	e1, err := ensureStoreID(old, noID)
	if err != nil || !validStoreID(e1.ID) {
		t.Fatalf("ensureStoreID = %+v, %v", e1, err)
	}
	cur, _ := readFormat(old)
	if e2, err := ensureStoreID(old, cur); err != nil || e2 != e1 {
		t.Errorf("ensureStoreID again = %+v, %v; want %+v", e2, err, e1)
	}
	for _, bad := range []string{"id xyz\n", "id " + strings.Repeat("A", 32) + "\n", "id \n"} {
		os.WriteFile(filepath.Join(old, "FORMAT"), append(f.encode(), bad...), 0o600)
		if _, err := readFormat(old); !errors.Is(err, ErrFormat) {
			t.Errorf("FORMAT with %q: %v, want ErrFormat", bad, err)
		}
	}

	os.WriteFile(filepath.Join(dir, "FORMAT"), []byte("garbage\n"), 0o600)
	if _, err := checkFormat(dir, f); !errors.Is(err, ErrFormat) {
		t.Errorf("garbage FORMAT: got %v, want ErrFormat", err)
	}
}
