package media_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// TestPurgeRemote: the remote cache purge removes remote media last read
// (or fetched) before the cutoff, outright, so a later read fetches it
// again; it keeps media read since, quarantined remote media and local
// media.
func TestPurgeRemote(t *testing.T) {
	t0 := time.Now()
	clk := testkit.NewClock(t0)
	f := &fetcher{files: map[string][]byte{
		"mxc://far.test/old": []byte("old bytes"), "mxc://far.test/read": []byte("read bytes"),
	}}
	s := openStore(t, media.Options{Create: true, Dir: t.TempDir(), Now: clk.Now,
		Remote: media.RemoteOptions{Fetcher: f}, Local: func(sv string) bool { return sv == server }})
	ctx := context.Background()
	far := func(id string) media.Media {
		rec, err := s.Resolve(ctx, mustMXC("far.test", id), media.ReadOptions{})
		if err != nil {
			t.Fatalf("read mxc://far.test/%s: %v", id, err)
		}
		return rec
	}
	far("old")
	far("read")
	if _, err := s.Import(ctx, media.ImportInfo{MXC: mustMXC("far.test", "quar"), Remote: true, Quarantined: true,
		Size: 1, Created: t0}, bytes.NewReader([]byte("q"))); err != nil {
		t.Fatal(err)
	}
	upload(t, s, "local", "@a:server", []byte("local bytes"))
	clk.Advance(3 * time.Hour)
	far("read")
	clk.Advance(time.Hour)

	n, err := s.PurgeRemote(ctx, t0.Add(2*time.Hour).UnixMilli())
	if err != nil || n != 1 {
		t.Fatalf("PurgeRemote = %d, %v; want 1", n, err)
	}
	if _, err := s.Stat(mustMXC("far.test", "old")); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("purged media: Stat = %v, want ErrNotFound", err)
	}
	for _, m := range []string{"read", "quar"} {
		if _, err := s.Stat(mustMXC("far.test", m)); err != nil {
			t.Errorf("mxc://far.test/%s: %v, want kept", m, err)
		}
	}
	checkContent(t, s, "local", []byte("local bytes"))
	calls := f.calls.Load()
	if rec := far("old"); rec.Size != int64(len("old bytes")) || f.calls.Load() != calls+1 {
		t.Errorf("read after purge: %+v, %d fetches; want it fetched again", rec, f.calls.Load()-calls)
	}
	if rep := fsck(t, s); !rep.Healthy() {
		t.Errorf("fsck after purge: %+v", rep)
	}
}
