package media_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// TestStandbyRemoteCacheSharingAReplicatedObject: a standby caches remote
// media locally (not logged). Its content dedups against an object the
// primary replicated, so the standby's own record names a manifest only
// the primary's log governs. The primary deletes its media and GCs the
// object: the replicated deletion takes the manifest from under the
// standby's remote-cache record, and the standby's GC then drops the
// chunks. The standby holds a record without content.
func TestStandbyRemoteCacheSharingAReplicatedObject(t *testing.T) {
	local := func(name string) bool { return name == server }
	clk := newClock()
	data := randBytes(5, 300<<10)
	keep := randBytes(6, 1<<20) // known chunks, so the sanity check lets GC sweep
	f := &fetcher{files: map[string][]byte{"mxc://far.test/r": data}}
	primary := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "p"), Chunker: smallParams, Local: local, Now: clk.Now})
	standby := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "s"), Chunker: smallParams, Local: local, Now: clk.Now,
		Follower: true, Remote: media.RemoteOptions{Fetcher: f, MaxBytes: 1 << 30}})
	upload(t, primary, "keep", "@u:server", keep)
	upload(t, primary, "a", "@u:server", data)
	follow(t, primary, standby)
	r := mustMXC("far.test", "r")
	if _, err := standby.FetchRemote(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if err := primary.Delete(mxc("a")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(48 * 3600e9)
	if _, err := primary.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	follow(t, primary, standby)
	if st, err := standby.GC(context.Background()); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("standby GC: %+v", st)
	}
	rd, _, err := standby.Open(r)
	if err == nil {
		var got []byte
		got, err = io.ReadAll(rd)
		rd.Close()
		if err == nil && !bytes.Equal(got, data) {
			t.Fatal("wrong bytes")
		}
	}
	if err != nil {
		t.Errorf("standby cannot read its cached remote media %s: %v", r, err)
	}
	if rep, err := standby.Fsck(context.Background()); err != nil || !rep.Healthy() {
		t.Errorf("standby Fsck: %+v %v", rep, err)
	}
}
