package media

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxcas/mxcas/cas"
)

// followAll applies every change of p to s, fetching missing chunks.
func followAll(t *testing.T, p, s *Store) {
	t.Helper()
	for {
		cs, err := p.Changes(s.Head(), 16)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			return
		}
		for _, c := range cs {
			missing, err := s.MissingChunks(c)
			if err != nil {
				t.Fatal(err)
			}
			chunks := map[cas.Hash][]byte{}
			for _, h := range missing {
				d, err := p.ReadChunk(h, nil)
				if err != nil {
					t.Fatal(err)
				}
				chunks[h] = d
			}
			if err := s.PutChunks(chunks); err != nil {
				t.Fatal(err)
			}
			if err := s.ApplyChange(c); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestStandbyGCDropsChunksOfChangeAppliedDuringGC: a standby holds the
// chunks of content whose manifest the primary's GC dropped (replicated),
// its own GC has not run since. The primary takes the same content again;
// the standby applies that change during its GC (MissingChunks finds the
// chunks held, so nothing is fetched), and its GC, whose snapshot predates
// the change, deletes them: the standby holds a record without content.
func TestStandbyGCDropsChunksOfChangeAppliedDuringGC(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clk := func() time.Time { return time.Unix(0, now.Load()) }
	advance := func() { now.Add(int64(48 * time.Hour)) }
	dir := t.TempDir()
	p, err := Open(Options{Create: true, Dir: filepath.Join(dir, "p"), Now: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := Open(Options{Create: true, Dir: filepath.Join(dir, "s"), Now: clk, Follower: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	rnd := func(seed byte, n int) []byte {
		b := make([]byte, n)
		rand.NewChaCha8([32]byte{seed}).Read(b)
		return b
	}
	data, keep := rnd(1, 600<<10), rnd(2, 2<<20) // keep: known chunks, so the sanity check lets GC sweep
	a, again, k := mustMXC("s", "A"), mustMXC("s", "again"), mustMXC("s", "keep")
	if _, err := p.Upload(ctx, UploadInfo{MXC: k, Size: -1}, bytes.NewReader(keep)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Upload(ctx, UploadInfo{MXC: a, Size: -1}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	followAll(t, p, s)
	if err := p.Delete(a); err != nil {
		t.Fatal(err)
	}
	advance()
	if st, err := p.GC(ctx); err != nil || st.ObjectsDeleted == 0 {
		t.Fatalf("primary GC: %+v %v", st, err)
	}
	followAll(t, p, s) // the standby drops A's manifest, keeps its chunks
	advance()
	s.gcHook = func() {
		if _, err := p.Upload(ctx, UploadInfo{MXC: again, Size: -1}, bytes.NewReader(data)); err != nil {
			t.Errorf("upload: %v", err)
		}
		followAll(t, p, s)
	}
	st, err := s.GC(ctx)
	s.gcHook = nil
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("standby GC: %+v", st)
	r, _, err := s.Open(again)
	if err == nil {
		var got []byte
		got, err = io.ReadAll(r)
		r.Close()
		if err == nil && !bytes.Equal(got, data) {
			t.Fatalf("wrong bytes")
		}
	}
	if err != nil {
		t.Errorf("standby cannot read %s after its GC: %v", again, err)
	}
	rep, err := s.Fsck(ctx)
	if err != nil || !rep.Healthy() {
		t.Errorf("standby Fsck: %+v, %v", rep, err)
	}
}
