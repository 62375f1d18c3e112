package media_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

// listing is every file under dir with its size and modification time.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "LOCK" {
			return nil // lock files are opened (Pebble's is touched) to keep writers out
		}
		if info, err := d.Info(); err == nil {
			out[p] = info.ModTime().String() + " " + info.Mode().String() + " " + string(rune(info.Size()))
		}
		return nil
	})
	return out
}

func TestReadOnlyChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := media.Open(media.Options{Create: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	m := mustMXC("s", "a")
	data := bytes.Repeat([]byte("read only "), 10000)
	if _, err := s.Upload(context.Background(), media.UploadInfo{MXC: m, Size: -1}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before := listing(t, dir)

	ro, err := media.Open(media.Options{Create: true, Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := ro.Open(m)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, data) {
		t.Error("read-only store reads back other bytes")
	}
	_, err = ro.Upload(context.Background(), media.UploadInfo{MXC: mustMXC("s", "b"), Size: -1}, bytes.NewReader([]byte("new")))
	if !errors.Is(err, cas.ErrReadOnly) {
		t.Errorf("upload to a read-only store: %v, want cas.ErrReadOnly", err)
	}
	ro.Close()
	after := listing(t, dir)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed: %q -> %q", p, v, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared", p)
		}
	}
	if _, err := media.Open(media.Options{Create: true, Dir: t.TempDir() + "/none", ReadOnly: true}); err == nil {
		t.Error("read-only open of a missing store succeeded")
	}
}
