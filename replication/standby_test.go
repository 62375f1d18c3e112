package replication

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

// smallBatches makes the standby ask for few changes and chunks at a time,
// until the test ends.
func smallBatches(t *testing.T, changes, chunks int) {
	oldChanges, oldChunks := changesPerRequest, fetchBatchChunks
	changesPerRequest, fetchBatchChunks = changes, chunks
	t.Cleanup(func() { changesPerRequest, fetchBatchChunks = oldChanges, oldChunks })
}

// TestStandbyConverges: 300 uploads, a third of them duplicates, reach the
// standby byte for byte with only the distinct chunks fetched, each once;
// a deletion and a content quarantine follow, and the standby's status
// says it is caught up.
func TestStandbyConverges(t *testing.T) {
	smallBatches(t, 64, 32)
	primary, _ := openStore(t, filepath.Join(t.TempDir(), "p"), media.Options{CountChunks: true})
	want := uploadMany(t, primary, "m", 300)
	srv, tp := newPrimary(t, primary, nil)
	standby, _ := openStore(t, filepath.Join(t.TempDir(), "s"), media.Options{Follower: true})
	s, stop := runStandby(t, standby, srv.URL, secret)

	waitHead(t, standby, primary.Head())
	wantContent(t, standby, want)
	pst := primary.Stats()
	files := chunkFileBytes(t, primary.Dir())
	st := waitStatus(t, s, func(st Status) bool { return st.PrimaryHead == primary.Head() })
	if st.BytesFetched != files || st.ChunksFetched != pst.Chunks {
		t.Errorf("fetched %d chunks, %d bytes; the primary holds %d distinct chunk files, %d bytes",
			st.ChunksFetched, st.BytesFetched, pst.Chunks, files)
	}
	for h, n := range tp.servedCounts() {
		if n != 1 {
			t.Errorf("chunk %s fetched %d times", h.Short(), n)
		}
	}
	if st.Applied != primary.Head() || st.LagChanges != 0 || st.LagBytes != 0 || st.LagSeconds != 0 || st.Err != "" ||
		st.Role != "standby" || st.Primary != srv.URL || st.LastContact.IsZero() {
		t.Errorf("caught-up status %+v", st)
	}
	if sst := standby.Stats(); sst.Media != pst.Media || sst.LogicalBytes != pst.LogicalBytes {
		t.Errorf("standby has %d media, %d bytes; primary %d, %d", sst.Media, sst.LogicalBytes, pst.Media, pst.LogicalBytes)
	}

	// A deletion and a quarantine of content shared by two media.
	if err := primary.Delete(mxc("m000")); err != nil {
		t.Fatal(err)
	}
	if _, err := primary.QuarantineContent(mxc("m004"), server, "@admin:server"); err != nil {
		t.Fatal(err)
	}
	waitHead(t, standby, primary.Head())
	if _, err := standby.Stat(mxc("m000")); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("deleted media on the standby: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"m004", "m005"} { // m005 has m004's bytes
		if _, err := standby.Resolve(context.Background(), mxc(id), media.ReadOptions{}); !errors.Is(err, media.ErrNotFound) {
			t.Errorf("Resolve(%s) on the standby after its content was quarantined: %v, want ErrNotFound", id, err)
		}
	}
	if got := s.Status().BytesFetched; got != files {
		t.Errorf("a deletion and a quarantine fetched %d bytes", got-files)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel: %v, want context.Canceled", err)
	}
}

// TestStandbyRestartFetchesNothingTwice: a standby stopped mid-catch-up,
// its store closed and reopened, continues with a new Standby and never
// asks for a chunk it asked for before.
func TestStandbyRestartFetchesNothingTwice(t *testing.T) {
	smallBatches(t, 16, 8)
	primary, _ := openStore(t, filepath.Join(t.TempDir(), "p"), media.Options{CountChunks: true})
	want := uploadMany(t, primary, "m", 120)
	srv, tp := newPrimary(t, primary, nil)
	tp.setCut(5)
	dir := filepath.Join(t.TempDir(), "s")
	standby, closeStandby := openStore(t, dir, media.Options{Follower: true})
	s1, stop := runStandby(t, standby, srv.URL, secret)
	<-tp.cut
	stop()
	first := s1.Status()
	if first.ChunksFetched == 0 || first.Applied >= primary.Head() {
		t.Fatalf("the cut standby fetched %d chunks, applied %d of %d: not mid-catch-up", first.ChunksFetched, first.Applied, primary.Head())
	}
	closeStandby()

	standby, _ = openStore(t, dir, media.Options{Follower: true})
	if standby.Head() != first.Applied {
		t.Fatalf("reopened standby at %d, applied %d before", standby.Head(), first.Applied)
	}
	tp.setCut(0)
	s2, _ := runStandby(t, standby, srv.URL, secret)
	waitHead(t, standby, primary.Head())
	wantContent(t, standby, want)
	for h, n := range tp.servedCounts() {
		if n != 1 {
			t.Errorf("chunk %s fetched %d times", h.Short(), n)
		}
	}
	pst := primary.Stats()
	files := chunkFileBytes(t, primary.Dir())
	if got := first.BytesFetched + s2.Status().BytesFetched; got != files || len(tp.servedCounts()) != int(pst.Chunks) {
		t.Errorf("fetched %d bytes, %d chunks in all; the primary holds %d bytes, %d chunks", got, len(tp.servedCounts()), files, pst.Chunks)
	}
}

// TestStandbyWrongSecret: a standby with another secret gets 401s, Run
// returns ErrUnauthorized and nothing is applied or fetched.
func TestStandbyWrongSecret(t *testing.T) {
	primary, _ := openStore(t, filepath.Join(t.TempDir(), "p"), media.Options{})
	uploadMany(t, primary, "m", 3)
	srv, tp := newPrimary(t, primary, nil)
	standby, _ := openStore(t, filepath.Join(t.TempDir(), "s"), media.Options{Follower: true})
	s, stop := runStandby(t, standby, srv.URL, []byte("another secret, long enough"))
	if err := waitRun(t, stop, s); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Run with a wrong secret: %v, want ErrUnauthorized", err)
	}
	if served := tp.servedCounts(); standby.Head() != 0 || len(served) != 0 || s.Status().ChunksFetched != 0 {
		t.Errorf("wrong secret: applied %d, %d chunks served", standby.Head(), len(served))
	}
}

// TestStandbyTrimmed: a standby behind a trimmed log gets 410 and Run
// returns ErrTrimmed, applying nothing.
func TestStandbyTrimmed(t *testing.T) {
	primary, _ := openStore(t, filepath.Join(t.TempDir(), "p"), media.Options{KeepChanges: 2})
	uploadMany(t, primary, "m", 5)
	if st, err := primary.RunGC(context.Background(), media.GCOptions{}); err != nil || st.ChangesTrimmed == 0 {
		t.Fatalf("GC: %+v %v", st, err)
	}
	srv, _ := newPrimary(t, primary, nil)
	standby, _ := openStore(t, filepath.Join(t.TempDir(), "s"), media.Options{Follower: true})
	s, stop := runStandby(t, standby, srv.URL, secret)
	if err := waitRun(t, stop, s); !errors.Is(err, ErrTrimmed) {
		t.Errorf("Run behind a trimmed log: %v, want ErrTrimmed", err)
	}
	if standby.Head() != 0 {
		t.Errorf("applied %d", standby.Head())
	}
}

// TestStandbyRefusesAlteredChunk: a chunk whose bytes were altered on the
// way is refused: nothing stored for it, nothing applied, the error shown.
func TestStandbyRefusesAlteredChunk(t *testing.T) {
	primary, _ := openStore(t, filepath.Join(t.TempDir(), "p"), media.Options{})
	uploadMany(t, primary, "m", 6)
	srv, tp := newPrimary(t, primary, nil)
	tp.mu.Lock()
	tp.flip = true
	tp.mu.Unlock()
	dir := filepath.Join(t.TempDir(), "s")
	standby, _ := openStore(t, dir, media.Options{Follower: true})
	s, stop := runStandby(t, standby, srv.URL, secret)
	st := waitStatus(t, s, func(st Status) bool { return st.Err != "" })
	stop()
	if !strings.Contains(st.Err, cas.ErrCorrupt.Error()) {
		t.Errorf("status error %q, want one about a corrupt chunk", st.Err)
	}
	if standby.Head() != 0 || st.ChunksFetched != 0 {
		t.Errorf("after an altered chunk: applied %d, %d chunks fetched", standby.Head(), st.ChunksFetched)
	}
	if hs := chunkHashes(t, dir); len(hs) != 0 {
		t.Errorf("%d chunks stored from an altered answer", len(hs))
	}
}

// TestLongPollWakes: a caught-up standby waiting in a long poll gets a new
// upload from that same poll, not from the next one: no second poll after
// the same change is ever made.
func TestLongPollWakes(t *testing.T) {
	primary, _ := openStore(t, filepath.Join(t.TempDir(), "p"), media.Options{})
	upload(t, primary, "a", randBytes(1, 100))
	srv, tp := newPrimary(t, primary, nil)
	standby, _ := openStore(t, filepath.Join(t.TempDir(), "s"), media.Options{Follower: true})
	runStandby(t, standby, srv.URL, secret)
	waitHead(t, standby, primary.Head())
	// Wait for the poll after the standby's head: a long poll.
	head := strconv.FormatUint(primary.Head(), 10)
	for after := ""; after != head; {
		after = <-tp.polls
	}
	upload(t, primary, "b", randBytes(2, 100))
	waitHead(t, standby, primary.Head())
	for {
		select {
		case after := <-tp.polls:
			if after == head {
				t.Fatalf("the standby polled again after %s: the long poll was not woken by the upload", head)
			}
			continue
		default:
		}
		break
	}
	wantContent(t, standby, map[string][]byte{"b": randBytes(2, 100)})
}

// TestNewStandbyRefusesBadOptions: a bad URL or a short secret is refused
// at once.
func TestNewStandbyRefusesBadOptions(t *testing.T) {
	standby, _ := openStore(t, filepath.Join(t.TempDir(), "s"), media.Options{Follower: true})
	for _, o := range []StandbyOptions{
		{Store: standby, Primary: "ftp://x", Secret: secret},
		{Store: standby, Primary: "http://x/prefix", Secret: secret},
		{Store: standby, Primary: "http://x", Secret: []byte("short")},
		{Primary: "http://x", Secret: secret},
	} {
		if _, err := NewStandby(o); err == nil {
			t.Errorf("NewStandby(%q, %d-byte secret) accepted", o.Primary, len(o.Secret))
		}
	}
	if _, err := NewPrimary(PrimaryOptions{Store: standby, Secret: []byte("short")}); err == nil {
		t.Error("NewPrimary accepted a 5-byte secret")
	}
	if _, err := NewChunkSource("http://x/p", secret, nil).ReadChunk(cas.Sum(nil), nil); err == nil {
		t.Error("a ChunkSource with a path in its URL read a chunk")
	}
}

// TestStandbyDiverged: a primary whose change at the standby's head is
// another (restored from an older backup and written to since, or another
// store) is refused: 409, Run returns ErrDiverged and nothing is applied,
// even though its head is past the standby's.
func TestStandbyDiverged(t *testing.T) {
	first, _ := openStore(t, filepath.Join(t.TempDir(), "p1"), media.Options{})
	uploadMany(t, first, "m", 3)
	srv1, _ := newPrimary(t, first, nil)
	standby, _ := openStore(t, filepath.Join(t.TempDir(), "s"), media.Options{Follower: true})
	_, stop := runStandby(t, standby, srv1.URL, secret)
	waitHead(t, standby, first.Head())
	stop()
	head := standby.Head()

	other, _ := openStore(t, filepath.Join(t.TempDir(), "p2"), media.Options{})
	uploadMany(t, other, "x", 5)
	if other.Head() <= head {
		t.Fatalf("the other primary's head %d is not past the standby's %d", other.Head(), head)
	}
	srv2, _ := newPrimary(t, other, nil)
	s, stop := runStandby(t, standby, srv2.URL, secret)
	if err := waitRun(t, stop, s); !errors.Is(err, ErrDiverged) {
		t.Errorf("Run against a diverged primary: %v, want ErrDiverged", err)
	}
	if standby.Head() != head {
		t.Errorf("applied up to %d from a diverged primary, had %d", standby.Head(), head)
	}
}
