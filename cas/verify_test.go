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
			t.Errorf("%s: want the chunk read and hashed, got file %v, %d bytes", what, vc.File != nil, len(vc.Data))
		case !wantRead && (vc.File == nil || vc.Data != nil):
			t.Errorf("%s: want the trusted file, got file %v, %d bytes", what, vc.File != nil, len(vc.Data))
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
