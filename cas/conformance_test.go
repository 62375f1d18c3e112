package cas_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/cas/castest"
)

// TestStorageConformance runs the Storage conformance suite on every
// implementation.
func TestStorageConformance(t *testing.T) {
	t.Run("Store", func(t *testing.T) {
		castest.Run(t, func(t *testing.T) cas.Storage {
			return openStore(t, t.TempDir())
		}, castest.Options{
			// Larger than the biggest pooled buffer class the writers use.
			MaxChunk: 4 << 20,
			Damage: func(t *testing.T, s cas.Storage, h cas.Hash) {
				t.Helper()
				p := s.(*cas.Store).Path(h)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/2] ^= 0x01
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Fatal(err)
				}
			},
		})
	})
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
