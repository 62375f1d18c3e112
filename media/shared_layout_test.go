package media_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
)

// TestSharedKnownManifestKeptAcrossLayouts: on a shared index, a node of
// the nested layout (made before inline chunks) stores a small media with
// its one chunk as a file; a node of the inline layout that uploads the
// same content again writes the known manifest again, and must write it as
// the index holds it: a node that read it (and keeps it cached) reads that
// chunk file, which GC must then not remove.
func TestSharedKnownManifestKeptAcrossLayouts(t *testing.T) {
	pg := testkit.SharedPG(t, "mxcas")
	dsn := pg.DSN(pg.CreateDB(t, "media"))
	srv := testkit.StartS3(t)
	opts := func(name string) media.Options {
		return media.Options{Dir: filepath.Join(t.TempDir(), name), Create: true,
			Chunks: sharedChunks(t, srv, "shared/"), ChunksAt: "s3 shared", IndexDSN: dsn,
			Thumbnails: noThumbs, Logger: quietLogger()}
	}
	// Node a: made as a new store, then given an old FORMAT (no layout
	// line), as a node from before inline chunks has.
	ao := opts("a")
	a := openStore(t, ao)
	closeStore(t, a)
	fpath := filepath.Join(ao.Dir, "FORMAT")
	f, err := os.ReadFile(fpath)
	if err != nil || !strings.Contains(string(f), "layout 2\n") {
		t.Fatalf("FORMAT %q, %v; want a layout line", f, err)
	}
	if err := os.WriteFile(fpath, []byte(strings.Replace(string(f), "layout 2\n", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	ao.Chunks = sharedChunks(t, srv, "shared/")
	a = openStore(t, ao)
	bo := opts("b")
	bo.Now = later
	b := openStore(t, bo)

	upload(t, a, "big", "@u:example.org", randBytes(32, 600_000)) // chunk files GC keeps
	data := randBytes(31, 3000)
	upload(t, a, "x", "@u:example.org", data) // its chunk a file
	checkContent(t, b, "x", data)             // b reads (and caches) that manifest
	upload(t, b, "y", "@u:example.org", data) // known: written again by b
	if _, err := b.GC(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkContent(t, b, "x", data)
	checkContent(t, b, "y", data)
	checkContent(t, a, "x", data)
	if rep := fsck(t, b); !rep.Healthy() {
		t.Errorf("fsck: %+v", rep)
	}
}
