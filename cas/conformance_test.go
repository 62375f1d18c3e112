package cas_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/cas/castest"
	"github.com/mxcas/mxcas/testkit"
)

// TestStorageConformance runs the Storage conformance suite on every
// implementation.
func TestStorageConformance(t *testing.T) {
	damageFile := func(t *testing.T, s cas.Storage, h cas.Hash) {
		t.Helper()
		testkit.FlipByte(t, s.(*cas.Store).Path(h))
	}
	for _, l := range []struct {
		name   string
		layout cas.Layout
	}{{"Store", cas.LayoutNested}, {"StoreFlat", cas.LayoutFlat}} {
		t.Run(l.name, func(t *testing.T) {
			castest.Run(t, func(t *testing.T) cas.Storage {
				s, err := cas.OpenLayout(t.TempDir(), l.layout, false)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}, castest.Options{
				// Larger than the biggest pooled buffer class the writers use.
				MaxChunk: 4 << 20,
				Damage:   damageFile,
			})
		})
	}
	t.Run("MemStore", func(t *testing.T) {
		castest.Run(t, func(t *testing.T) cas.Storage {
			s := cas.NewMemStore(nil)
			t.Cleanup(func() { s.Close() })
			return s
		}, castest.Options{
			MaxChunk: 4 << 20,
			Damage: func(t *testing.T, s cas.Storage, h cas.Hash) {
				t.Helper()
				if !s.(*cas.MemStore).Damage(h) {
					t.Fatalf("Damage(%s): not stored", h.Short())
				}
			},
		})
	})
}

// TestLayoutPaths: the nested layout keeps chunk files in cas/ab/cd/, the
// flat one in cas/ab/, and each store walks only its own layout's files.
func TestLayoutPaths(t *testing.T) {
	c := newChunk(7)
	x := c.h.String()
	for _, l := range []struct {
		layout cas.Layout
		rel    string
	}{{cas.LayoutNested, filepath.Join("cas", x[:2], x[2:4], x)}, {cas.LayoutFlat, filepath.Join("cas", x[:2], x)}} {
		dir := t.TempDir()
		s, err := cas.OpenLayout(dir, l.layout, false)
		if err != nil {
			t.Fatal(err)
		}
		put(t, s, c)
		if got := s.Path(c.h); got != filepath.Join(dir, l.rel) {
			t.Errorf("layout %d: Path = %s, want %s", l.layout, got, filepath.Join(dir, l.rel))
		}
		if _, err := os.Stat(filepath.Join(dir, l.rel)); err != nil {
			t.Errorf("layout %d: %v", l.layout, err)
		}
		s.Close()
		// The other layout does not see the chunk where it looks.
		other, err := cas.OpenLayout(dir, 1-l.layout, true)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		other.Walk(func(cas.Hash, fs.FileInfo) error { n++; return nil })
		if _, err := other.Stat(c.h); !errors.Is(err, cas.ErrNotFound) || n != 0 {
			t.Errorf("layout %d read as the other: Stat %v, walked %d", l.layout, err, n)
		}
		other.Close()
	}
}

// TestOpenChunkFiler: the filesystem Store's chunks are Filers whose File is
// the chunk file (what the sendfile path asks for), and io.Copy through the
// Chunk, which goes by its WriterTo, copies it whole from the offset.
func TestOpenChunkFiler(t *testing.T) {
	s := openStore(t, t.TempDir())
	c := newChunk(42)
	put(t, s, c)
	r, err := s.OpenChunk(c.h)
	if err != nil {
		t.Fatalf("OpenChunk: %v", err)
	}
	defer r.Close()
	f, ok := r.(cas.Filer)
	if !ok {
		t.Fatalf("OpenChunk returned %T, not a cas.Filer", r)
	}
	fi, err := f.File().Stat()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.Stat(s.Path(c.h))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi, want) {
		t.Errorf("File() is not the chunk file %s", s.Path(c.h))
	}
	if _, err := r.Seek(10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := io.Copy(&got, r); err != nil || !bytes.Equal(got.Bytes(), c.data[10:]) {
		t.Errorf("io.Copy from offset 10 = %d bytes, %v; want the %d after it", got.Len(), err, len(c.data)-10)
	}
}
