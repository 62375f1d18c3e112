// Package mediatest holds helpers for tests that use a media.Store: check
// that a store is healthy, that it holds given content, and read back an
// export archive. It is for
// tests only (the external tests of media, and the tests of its users);
// its helpers take a testing.TB and fail the test from the calling
// goroutine only.
package mediatest

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"testing"

	"github.com/mxcas/mxcas/archive"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// CheckHealthy runs Fsck on st, fails the test at once if it cannot run
// and marks the test failed unless the report is healthy. It returns the
// report.
func CheckHealthy(t testing.TB, st *media.Store) media.FsckReport {
	t.Helper()
	rep, err := st.Fsck(context.Background())
	if err != nil {
		t.Fatalf("Fsck: %v", err)
	}
	if !rep.Healthy() {
		t.Errorf("Fsck: not healthy: problems %v, damaged %v", rep.Problems, rep.Damaged)
	}
	return rep
}

// OpenHealthy opens the existing store in dir (no other process may hold
// it) and checks it with CheckHealthy. The caller closes the store.
func OpenHealthy(t testing.TB, dir string) (*media.Store, media.FsckReport) {
	t.Helper()
	st, err := media.Open(media.Options{Dir: dir})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	checked := false
	defer func() {
		if !checked { // CheckHealthy ended the test
			st.Close()
		}
	}()
	rep := CheckHealthy(t, st)
	checked = true
	return st, rep
}

// FsckDir opens the store in dir, checks it with CheckHealthy, closes it
// and returns the report.
func FsckDir(t testing.TB, dir string) media.FsckReport {
	t.Helper()
	st, rep := OpenHealthy(t, dir)
	if err := st.Close(); err != nil {
		t.Errorf("close %s: %v", dir, err)
	}
	return rep
}

// WantContent marks the test failed unless st serves want, byte for byte,
// for m.
func WantContent(t testing.TB, st *media.Store, m matrix.MXC, want []byte) {
	t.Helper()
	r, _, err := st.Open(m)
	if err != nil {
		t.Errorf("open %s: %v", m, err)
		return
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s: got %d bytes (err %v), want %d bytes", m, len(got), err, len(want))
	}
}

// ReadArchive reads the archive whose parts are in fsys with archive.Open
// and Each, and returns every media in it by mxc URI. Any problem Each
// reports fails the test.
func ReadArchive(t testing.TB, fsys fs.FS) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	r, err := archive.Open(ctx, fsys)
	if err != nil {
		t.Fatalf("archive.Open: %v", err)
	}
	got := map[string][]byte{}
	err = r.Each(ctx, func(rec archive.Record, body io.Reader) error {
		b, err := io.ReadAll(body)
		got[rec.MXC()] = b
		return err
	}, func(rec archive.Record, err error) { t.Errorf("archive: %s: %v", rec.MXC(), err) })
	if err != nil {
		t.Fatalf("archive: %v", err)
	}
	return got
}
