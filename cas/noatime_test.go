package cas_test

import (
	"io/fs"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
)

// atime is the access time of path.
func atime(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return time.Unix(st.Atim.Sec, st.Atim.Nsec)
}

// readAll reads every chunk of s through Walk and ReadChunk.
func readAll(t *testing.T, s *cas.Store) int {
	t.Helper()
	n := 0
	if err := s.Walk(func(h cas.Hash, _ fs.FileInfo) error {
		n++
		_, err := s.ReadChunk(h, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// A read-only store reads every chunk without writing its access time,
// which a writable one (on a filesystem with relatime or strictatime)
// does: a verification pass dirties no inode.
func TestReadOnlyKeepsAccessTimes(t *testing.T) {
	dir := t.TempDir()
	s, err := cas.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a chunk read by a verification")
	h := cas.Sum(data)
	if _, err := s.Put(h, data); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	backdate := func() {
		t.Helper()
		if err := os.Chtimes(s.Path(h), old, old); err != nil {
			t.Fatal(err)
		}
	}
	backdate()
	readAll(t, s)
	if atime(t, s.Path(h)).Equal(old) {
		s.Close()
		t.Skip("this filesystem keeps no access times (noatime): nothing to check")
	}
	backdate()
	s.Close()

	ro, err := cas.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := readAll(t, ro); got != 1 {
		t.Fatalf("walk found %d chunks, want 1", got)
	}
	if got := atime(t, s.Path(h)); !got.Equal(old) {
		t.Errorf("access time after a read-only read: %v, want %v (unchanged)", got, old)
	}
}
