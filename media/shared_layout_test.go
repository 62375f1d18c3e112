package media_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	// Node a: of the nested layout, as a node from before inline chunks.
	ao := opts("a")
	closeStore(t, openStore(t, ao))
	oldFormat(t, ao.Dir)
	ao.Chunks = sharedChunks(t, srv, "shared/")
	a := openStore(t, ao)
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

// oldFormat takes the layout line out of the FORMAT of the store in dir,
// made new by this mxcas: it is then of the nested layout, as a store made
// before inline chunks.
func oldFormat(t *testing.T, dir string) {
	t.Helper()
	fpath := filepath.Join(dir, "FORMAT")
	f, err := os.ReadFile(fpath)
	if err != nil || !strings.Contains(string(f), "layout 2\n") {
		t.Fatalf("FORMAT %q, %v; want a layout line", f, err)
	}
	if err := os.WriteFile(fpath, []byte(strings.Replace(string(f), "layout 2\n", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStandbyOfOtherLayoutReadsReplacedManifest: a standby of the nested
// layout caches a small remote media (its one chunk a file) and reads it;
// the primary, of the inline layout, stores the same content (its chunk
// inline) and its change sets the object's manifest on the standby; the
// standby's GC then removes the chunk file. The standby must read the
// media by the manifest it now holds, not the one it had cached.
func TestStandbyOfOtherLayoutReadsReplacedManifest(t *testing.T) {
	local := func(name string) bool { return name == server }
	clk := newClock()
	data := randBytes(41, 3000)
	f := &fetcher{files: map[string][]byte{"mxc://far.test/r": data}}
	primary := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "p"), Local: local, Now: clk.Now,
		Thumbnails: noThumbs, Logger: quietLogger()})
	so := media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "s"), Local: local, Now: clk.Now,
		Follower: true, Remote: media.RemoteOptions{Fetcher: f, MaxBytes: 1 << 30}, Thumbnails: noThumbs, Logger: quietLogger()}
	closeStore(t, openStore(t, so))
	oldFormat(t, so.Dir)
	standby := openStore(t, so)

	upload(t, primary, "keep", "@u:server", randBytes(42, 600_000)) // chunk files GC keeps
	follow(t, primary, standby)
	r := mustMXC("far.test", "r")
	if _, err := standby.FetchRemote(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	readR := func(when string) {
		t.Helper()
		rd, _, err := standby.Open(r)
		if err == nil {
			_, err = io.ReadAll(rd)
			rd.Close()
		}
		if err != nil {
			t.Fatalf("standby read of %s %s: %v", r, when, err)
		}
	}
	readR("once fetched") // its manifest now cached
	upload(t, primary, "a", "@u:server", data)
	follow(t, primary, standby)
	clk.Advance(48 * time.Hour)
	st, err := standby.GC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.ChunksDeleted != 1 {
		t.Errorf("standby GC: %+v; want the remote media's chunk file deleted (its chunk now inline)", st)
	}
	readR("after GC")
	checkContent(t, standby, "a", data)
	if rep := fsck(t, standby); !rep.Healthy() {
		t.Errorf("standby fsck: %+v", rep)
	}
}
