package cas_test

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
)

// The Verifier reads and hashes a chunk the first time, trusts the same
// unchanged file for TTL (no read: the file is returned for sendfile), and
// reads it again after TTL or once the file changed; damage is ErrCorrupt
// (wrong bytes, wrong length) or ErrNotFound.
func TestVerifier(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	c := newChunk(1)
	put(t, s, c)
	now := time.Unix(1000, 0)
	v := cas.NewVerifier(s, cas.VerifyOptions{TTL: 5 * time.Second, Now: func() time.Time { return now }})
	size := int64(len(c.data))

	open := func(what string, wantRead bool) {
		t.Helper()
		vc, err := v.Open(c.h, size, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer vc.Close()
		switch {
		case wantRead && !bytes.Equal(vc.Data, c.data):
			t.Errorf("%s: want the chunk read and hashed, got file %v, %d bytes", what, vc.Chunk != nil, len(vc.Data))
		case !wantRead && (vc.Chunk == nil || vc.Data != nil):
			t.Errorf("%s: want the trusted file, got file %v, %d bytes", what, vc.Chunk != nil, len(vc.Data))
		case !wantRead:
			if _, ok := vc.Chunk.(cas.Filer); !ok {
				t.Errorf("%s: the trusted chunk %T is not a Filer: no sendfile", what, vc.Chunk)
			}
		}
	}
	open("first open", true)
	now = now.Add(4 * time.Second)
	open("within the TTL", false)
	now = now.Add(2 * time.Second)
	open("after the TTL", true)
	open("verified again", false)

	// A byte flipped in place, within the TTL: the file's identity changed.
	path := chunkPath(dir, c.h)
	bad := bytes.Clone(c.data)
	bad[len(bad)/2] ^= 1
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open(c.h, size, nil); !errors.Is(err, cas.ErrCorrupt) || !cas.IsDamage(err) {
		t.Errorf("flipped byte: %v, want ErrCorrupt", err)
	}
	if err := os.WriteFile(path, c.data[:size/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open(c.h, size, nil); !errors.Is(err, cas.ErrCorrupt) {
		t.Errorf("truncated: %v, want ErrCorrupt", err)
	}
	os.Remove(path)
	if _, err := v.Open(c.h, size, nil); !errors.Is(err, cas.ErrNotFound) || !cas.IsDamage(err) {
		t.Errorf("missing: %v, want ErrNotFound", err)
	}
	// A negative TTL trusts nothing.
	put(t, s, c)
	never := cas.NewVerifier(s, cas.VerifyOptions{TTL: -1})
	for i := range 2 {
		vc, err := never.Open(c.h, size, make([]byte, 0, 1))
		if err != nil || !bytes.Equal(vc.Data, c.data) {
			t.Errorf("TTL -1, open %d: %v, want read and hashed", i, err)
		}
	}
}

// Without a file (MemStore), nothing is trusted by identity: every open
// reads and hashes the chunk into the buffer, so damage is seen at the very
// next open, within the TTL.
func TestVerifierMem(t *testing.T) {
	m := cas.NewMemStore(nil)
	c := newChunk(2)
	b := m.BeginBatch()
	if _, err := b.Put(c.h, c.data); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	v := cas.NewVerifier(m, cas.VerifyOptions{TTL: time.Hour, Now: func() time.Time { return now }})
	size := int64(len(c.data))
	buf := make([]byte, 0, size)
	for i := range 2 {
		vc, err := v.Open(c.h, size, buf)
		if err != nil || vc.Chunk != nil || !bytes.Equal(vc.Data, c.data) {
			t.Fatalf("open %d: chunk %v, %d bytes, %v; want read and hashed", i, vc.Chunk != nil, len(vc.Data), err)
		}
		if &vc.Data[0] != &buf[:1][0] {
			t.Errorf("open %d: data not read into the buffer given", i)
		}
	}
	if _, err := v.Open(c.h, size+1, nil); !errors.Is(err, cas.ErrCorrupt) {
		t.Errorf("wrong size: %v, want ErrCorrupt", err)
	}
	m.Damage(c.h)
	if _, err := v.Open(c.h, size, nil); !errors.Is(err, cas.ErrCorrupt) || !cas.IsDamage(err) {
		t.Errorf("damaged within the TTL: %v, want ErrCorrupt", err)
	}
	if err := m.Delete(c.h); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open(c.h, size, nil); !errors.Is(err, cas.ErrNotFound) || !cas.IsDamage(err) {
		t.Errorf("missing: %v, want ErrNotFound", err)
	}
}
