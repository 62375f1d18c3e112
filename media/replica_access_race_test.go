package media_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// TestStandbyAccessTimeUndoesAppliedDeletion: on a standby a read notes
// the access (noteAccess: read the record under its claim, write it back
// with LastAccess, unlogged). ApplyChange takes no claim, so a replicated
// deletion applied between noteAccess's read and its write is overwritten
// with the old live record: the standby resurrects media the primary
// deleted, and diverges from it for good.
func TestStandbyAccessTimeUndoesAppliedDeletion(t *testing.T) {
	local := func(name string) bool { return name == server }
	clk := newClock()
	primary := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "p"), Chunker: smallParams, Local: local, Now: clk.Now})
	standby := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "s"), Chunker: smallParams, Local: local, Now: clk.Now, Follower: true})
	for i := 0; i < 3000; i++ {
		id := fmt.Sprint("m", i)
		upload(t, primary, id, "@u:server", randBytes(uint64(1000+i), 100))
		follow(t, primary, standby)
		clk.Advance(2 * 3600e9) // the access time is stale: a read writes it
		if err := primary.Delete(mxc(id)); err != nil {
			t.Fatal(err)
		}
		cs, err := primary.Changes(standby.Head(), 1)
		if err != nil || len(cs) != 1 {
			t.Fatal(cs, err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); standby.Resolve(context.Background(), mxc(id), media.ReadOptions{}) }()
		go func() {
			defer wg.Done()
			if err := standby.ApplyChange(cs[0]); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if rec, err := standby.Stat(mxc(id)); !errors.Is(err, media.ErrNotFound) {
			t.Fatalf("iteration %d: the standby applied the deletion of %s, yet holds it live (LastAccess %d, Deleted %v): %v", i, id, rec.LastAccess, rec.Deleted, err)
		}
	}
}
