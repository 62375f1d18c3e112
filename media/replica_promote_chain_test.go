package media_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// TestChainedStandbyAfterPromotion: B follows A, C follows B (a standby
// serves its changes onward). B caches remote media: an object whose
// manifest B wrote unlogged. B is promoted; an upload of the same content
// to B names the manifest B "knows" without writing it, so B's change
// holds the record only. C applies it and holds a record without a
// manifest (and without its chunks: MissingChunks saw none to fetch).
func TestChainedStandbyAfterPromotion(t *testing.T) {
	local := func(name string) bool { return name == server }
	data := randBytes(7, 200<<10)
	f := &fetcher{files: map[string][]byte{"mxc://far.test/r": data}}
	dir := t.TempDir()
	a := openStore(t, media.Options{Create: true, Dir: filepath.Join(dir, "a"), Chunker: smallParams, Local: local})
	b := openStore(t, media.Options{Create: true, Dir: filepath.Join(dir, "b"), Chunker: smallParams, Local: local, Follower: true,
		Remote: media.RemoteOptions{Fetcher: f, MaxBytes: 1 << 30}})
	c := openStore(t, media.Options{Create: true, Dir: filepath.Join(dir, "c"), Chunker: smallParams, Local: local, Follower: true})
	upload(t, a, "x", "@u:server", randBytes(8, 1000))
	follow(t, a, b)
	follow(t, b, c)
	if _, err := b.FetchRemote(context.Background(), mustMXC("far.test", "r")); err != nil {
		t.Fatal(err)
	}
	b.Promote()
	upload(t, b, "u", "@u:server", data)
	follow(t, b, c)
	checkContent(t, c, "u", data)
}
