package index

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// dirState is every file in dir: name -> size and modification time.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprintf("%v %v %d bytes", fi.ModTime().UTC(), fi.Mode(), fi.Size())
	}
	return out
}

// A read-only open writes nothing: no WAL, MANIFEST or OPTIONS file, and
// not even the modification time of LOCK (Pebble's own lock truncates it).
func TestReadOnlyOpenWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	db := openDB(t, dir)
	commit(t, db, func(b *Batch) error { return b.PutMedia(MediaRecord{Server: "s", MediaID: "m", Size: 7}) })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(dir, e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}
	before := dirState(t, dir)

	ro, err := Open(dir, Options{ReadOnly: true, MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ro.Media("s", "m"); err != nil || r.Size != 7 {
		t.Errorf("read-only index: got %+v, %v", r, err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	after := dirState(t, dir)
	for name, want := range before {
		if got := after[name]; got != want {
			t.Errorf("%s: %q after a read-only open, want %q", name, got, want)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s appeared", name)
		}
	}
}
