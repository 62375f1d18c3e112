package media_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// sharedNodes opens n stores (nodes) on one PostgreSQL index and one
// bucket; clock, when set, is the last node's (so its GC finds the chunk
// files old).
func sharedNodes(t *testing.T, n int, clock func() time.Time) []*media.Store {
	t.Helper()
	pg := testkit.SharedPG(t, "mxcas")
	dsn := pg.DSN(pg.CreateDB(t, "media"))
	srv := testkit.StartS3(t)
	nodes := make([]*media.Store, n)
	for i := range nodes {
		opts := media.Options{Dir: filepath.Join(t.TempDir(), string(rune('a'+i))), Create: true,
			Chunks: sharedChunks(t, srv, "shared/"), ChunksAt: "s3 shared", IndexDSN: dsn,
			Thumbnails: noThumbs, Logger: quietLogger()}
		if i == n-1 && clock != nil {
			opts.Now = clock
		}
		nodes[i] = openStore(t, opts)
	}
	return nodes
}

// later is a clock past the GC grace period of chunks written now.
func later() time.Time { return time.Now().Add(2 * time.Hour) }

// A node remembers which chunks are stored (the s3store's known set); GC
// on another node removes the chunks of deleted media; the same content
// uploaded again on the first node must be stored again, not recorded
// over chunks that are gone.
func TestSharedReuploadAfterGCElsewhere(t *testing.T) {
	nodes := sharedNodes(t, 2, later)
	a, b := nodes[0], nodes[1]
	data := randBytes(21, 300_000)
	upload(t, a, "first", "@u:example.org", data)
	if err := a.Delete(mxc("first")); err != nil {
		t.Fatal(err)
	}
	st, err := b.GC(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.ChunksDeleted == 0 {
		t.Fatalf("GC on b deleted no chunk: %+v", st)
	}
	upload(t, a, "again", "@u:example.org", data)
	checkContent(t, b, "again", data)
}

// GC on one node takes its snapshot; an upload on another node, which has
// never seen the content, finds the old chunks stored and records them
// (pins are per process); the sweep must not remove them. The second look
// that spares them works in passes as the first mark does (budget 2).
func TestSharedGCDuringUploadElsewhere(t *testing.T) {
	for _, budget := range []int{1 << 19, 2} {
		t.Run(fmt.Sprint("budget=", budget), func(t *testing.T) {
			defer media.SetPassBudget(budget)()
			nodes := sharedNodes(t, 3, later)
			a, c, b := nodes[0], nodes[1], nodes[2]
			data := randBytes(22, 300_000)
			upload(t, a, "first", "@u:example.org", data)
			for i := range 5 { // more objects: more passes
				upload(t, a, fmt.Sprint("other", i), "@u:example.org", randBytes(uint64(30+i), 50_000))
			}
			if err := a.Delete(mxc("first")); err != nil {
				t.Fatal(err)
			}
			b.SetGCHook(func() { upload(t, c, "again", "@u:example.org", data) })
			st, err := b.GC(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.ChunksDeleted != 0 || st.ObjectsDeleted != 0 {
				t.Errorf("GC deleted what an upload elsewhere made live again: %+v", st)
			}
			checkContent(t, c, "again", data)
		})
	}
}
