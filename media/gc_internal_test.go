package media

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// TestGCSparesUploadCommittedDuringGC: an upload that pins, commits and
// unpins between GC's snapshot and its sweep reuses chunks the snapshot saw
// as garbage; GC must keep them (the "late" set in pins.go).
func TestGCSparesUploadCommittedDuringGC(t *testing.T) {
	later := time.Now().Add(24 * time.Hour) // every chunk looks old
	s, err := Open(Options{Create: true, Dir: t.TempDir(), Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := make([]byte, 600<<10)
	rand.NewChaCha8([32]byte{7}).Read(data)
	ctx := context.Background()
	a := mustMXC("s", "A")
	b := mustMXC("s", "B")
	if _, err := s.Upload(ctx, UploadInfo{MXC: a, Size: -1}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(a); err != nil {
		t.Fatal(err)
	}
	s.gcHook = func() {
		if _, err := s.Upload(ctx, UploadInfo{MXC: b, Size: -1}, bytes.NewReader(data)); err != nil {
			t.Errorf("upload during GC: %v", err)
		}
	}
	st, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ChunksDeleted != 0 || st.ObjectsDeleted != 0 {
		t.Errorf("GC deleted what an upload committed during it needs: %+v", st)
	}
	s.gcHook = nil
	r, _, err := s.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("B after GC: %d bytes, %v; want the %d uploaded", len(got), err, len(data))
	}
	rep, err := s.Fsck(ctx)
	if err != nil || !rep.Healthy() {
		t.Errorf("Fsck after GC: %+v, %v", rep, err)
	}
}
