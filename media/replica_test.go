package media_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

// follow applies every change of primary to standby, fetching the chunks
// each needs from primary, and returns how many chunk bytes it fetched.
func follow(t *testing.T, primary, standby *media.Store) int64 {
	t.Helper()
	var fetched int64
	for {
		cs, err := primary.Changes(standby.Head(), 16)
		if err != nil {
			t.Fatalf("Changes(%d): %v", standby.Head(), err)
		}
		if len(cs) == 0 {
			return fetched
		}
		for _, c := range cs {
			missing, err := standby.MissingChunks(c)
			if err != nil {
				t.Fatal(err)
			}
			chunks := make(map[cas.Hash][]byte)
			for _, h := range missing {
				data, err := primary.ReadChunk(h, nil)
				if err != nil {
					t.Fatalf("primary ReadChunk %s: %v", h, err)
				}
				chunks[h] = data
				fetched += int64(len(data))
			}
			if err := standby.PutChunks(chunks); err != nil {
				t.Fatal(err)
			}
			if err := standby.ApplyChange(c); err != nil {
				t.Fatalf("ApplyChange(%d): %v", c.Seq, err)
			}
		}
	}
}

// TestStandbyFollowsChanges: a standby that applies the primary's change
// log holds every media byte for byte, fetched only the unique chunks, and
// sees deletions and quarantines; applying out of order is refused; once
// promoted its own changes continue the numbering.
func TestStandbyFollowsChanges(t *testing.T) {
	local := func(name string) bool { return name == server }
	primary := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "p"), Chunker: smallParams, Local: local})
	standby := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "s"), Chunker: smallParams, Local: local, Follower: true})
	a, b := randBytes(1, 300<<10), randBytes(2, 1000)
	upload(t, primary, "a", "@u:server", a)
	upload(t, primary, "a2", "@v:server", a) // the same bytes: no chunk fetched twice
	upload(t, primary, "b", "@u:server", b)
	// b, 1000 bytes, and a's last chunk are inline: the change carries them.
	if got, want := follow(t, primary, standby), fileChunkBytes(t, a, smallParams); got != want {
		t.Errorf("fetched %d chunk bytes, want the unique %d", got, want)
	}
	if standby.Head() != primary.Head() || primary.Head() == 0 {
		t.Fatalf("standby head %d, primary %d", standby.Head(), primary.Head())
	}
	checkContent(t, standby, "a", a)
	checkContent(t, standby, "a2", a)
	checkContent(t, standby, "b", b)
	if st, pt := standby.Stats(), primary.Stats(); st.Media != pt.Media || st.LogicalBytes != pt.LogicalBytes {
		t.Errorf("standby stats %d media %d bytes, primary %d %d", st.Media, st.LogicalBytes, pt.Media, pt.LogicalBytes)
	}

	if err := primary.Delete(mxc("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := primary.QuarantineContent(mxc("a"), server, "@admin:server"); err != nil {
		t.Fatal(err)
	}
	if got := follow(t, primary, standby); got != 0 {
		t.Errorf("fetched %d bytes for a deletion and a quarantine", got)
	}
	checkNotFound(t, standby, "b")
	for _, st := range []*media.Store{primary, standby} {
		if _, err := st.Resolve(context.Background(), mxc("a2"), media.ReadOptions{}); !errors.Is(err, media.ErrNotFound) {
			t.Errorf("Resolve(a2) after its content was quarantined: %v, want ErrNotFound", err)
		}
	}

	// A change that skips one is refused.
	upload(t, primary, "c", "@u:server", randBytes(3, 10))
	upload(t, primary, "d", "@u:server", randBytes(4, 10))
	cs, err := primary.Changes(standby.Head()+1, 1)
	if err != nil || len(cs) != 1 {
		t.Fatal(cs, err)
	}
	if err := standby.ApplyChange(cs[0]); err == nil {
		t.Fatalf("change %d applied after %d", cs[0].Seq, standby.Head())
	}
	follow(t, primary, standby)

	// Promoted, the standby logs its own uploads after the primary's.
	head := standby.Head()
	standby.Promote()
	upload(t, standby, "e", "@u:server", randBytes(5, 10))
	if standby.Head() != head+1 {
		t.Errorf("after promotion head %d, want %d", standby.Head(), head+1)
	}
}

// TestGCTrimsChangeLog: GC keeps only the last KeepChanges changes; asking
// for older ones is ErrChangesTrimmed, newer ones are still served.
func TestGCTrimsChangeLog(t *testing.T) {
	s := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "p"), Chunker: smallParams, KeepChanges: 2})
	for i := range 5 {
		upload(t, s, fmt.Sprintf("m%d", i), "@u:server", randBytes(uint64(i), 100))
	}
	st, err := s.RunGC(context.Background(), media.GCOptions{})
	if err != nil || st.ChangesTrimmed != 3 {
		t.Fatalf("GC: %+v %v, want 3 changes trimmed", st, err)
	}
	if _, err := s.Changes(0, 10); !errors.Is(err, media.ErrChangesTrimmed) {
		t.Errorf("Changes(0) after trimming: %v, want ErrChangesTrimmed", err)
	}
	if cs, err := s.Changes(3, 10); err != nil || len(cs) != 2 || cs[1].Seq != 5 {
		t.Errorf("Changes(3) = %v, %v; want changes 4 and 5", cs, err)
	}
}

// TestStandbyGCKeepsWhatThePrimaryKnows: a standby's GC does not drop a
// manifest its own records no longer use while the primary keeps it: the
// primary's next upload of that content names the manifest without writing
// it again, and the standby must still serve it.
func TestStandbyGCKeepsWhatThePrimaryKnows(t *testing.T) {
	local := func(name string) bool { return name == server }
	clk := newClock()
	primary := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "p"), Chunker: smallParams, Local: local, Now: clk.Now})
	standby := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "s"), Chunker: smallParams, Local: local, Now: clk.Now, Follower: true})
	data := randBytes(9, 200<<10)
	upload(t, primary, "a", "@u:server", data)
	if err := primary.Delete(mxc("a")); err != nil {
		t.Fatal(err)
	}
	follow(t, primary, standby)
	clk.Advance(48 * 3600e9)
	if st, err := standby.RunGC(context.Background(), media.GCOptions{}); err != nil || st.ObjectsDeleted != 0 || st.ChunksDeleted != 0 {
		t.Fatalf("standby GC: %+v %v, want nothing the primary still knows deleted", st, err)
	}
	upload(t, primary, "again", "@u:server", data)
	if got := follow(t, primary, standby); got != 0 {
		t.Errorf("fetched %d bytes for content the standby holds", got)
	}
	checkContent(t, standby, "again", data)
}

// TestApplyChangesRun: a run of changes applies in one call; a run with a
// gap applies none of it.
func TestApplyChangesRun(t *testing.T) {
	local := func(name string) bool { return name == server }
	primary := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "p"), Chunker: smallParams, Local: local})
	standby := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "s"), Chunker: smallParams, Local: local, Follower: true})
	want := map[string][]byte{}
	for i := range 6 {
		id := fmt.Sprintf("m%d", i)
		want[id] = randBytes(uint64(i), 20<<10)
		upload(t, primary, id, "@u:server", want[id])
	}
	cs, err := primary.Changes(0, 100)
	if err != nil || len(cs) != 6 {
		t.Fatal(cs, err)
	}
	chunks := map[cas.Hash][]byte{}
	for _, c := range cs {
		missing, err := standby.MissingChunks(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range missing {
			if chunks[h], err = primary.ReadChunk(h, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := standby.PutChunks(chunks); err != nil {
		t.Fatal(err)
	}
	gap := append(append([]media.Change{}, cs[:2]...), cs[3:]...)
	if err := standby.ApplyChanges(gap); !errors.Is(err, media.ErrChangeOrder) || standby.Head() != 0 {
		t.Fatalf("a run with a gap: %v, head %d; want ErrChangeOrder and nothing applied", err, standby.Head())
	}
	if err := standby.ApplyChanges(cs); err != nil || standby.Head() != primary.Head() {
		t.Fatalf("ApplyChanges: %v, head %d of %d", err, standby.Head(), primary.Head())
	}
	for id, b := range want {
		checkContent(t, standby, id, b)
	}
}
