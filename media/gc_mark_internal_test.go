package media

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
)

// TestMarkLive: GC's mark phase finds live exactly the objects of media
// records, the thumbnails of those objects, and their manifests' chunks;
// the manifests and thumbnails of deleted media are dead, and the chunks of
// dead manifests are known to the index.
func TestMarkLive(t *testing.T) {
	s := thumbStore(t, ThumbnailOptions{Disabled: true})
	put := func(id string, seed byte) Media {
		t.Helper()
		data := make([]byte, 300<<10)
		rand.NewChaCha8([32]byte{seed}).Read(data)
		rec, err := s.Upload(context.Background(), UploadInfo{MXC: mustMXC("s", id), Size: -1}, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	live, dead := put("live", 1), put("dead", 2)
	livePic := uploadFile(t, s, "livepic", "../thumbgen/testdata/video-001.png", "image/png")
	deadPic := uploadFile(t, s, "deadpic", "../thumbgen/testdata/video-001.jpeg", "image/jpeg")
	req := ThumbnailRequest{Width: 32, Height: 32, Method: "crop"}
	_, liveThumb := readThumb(t, s, livePic, req)
	_, deadThumb := readThumb(t, s, deadPic, req)
	for _, id := range []string{"dead", "deadpic"} {
		if err := s.Delete(mustMXC("s", id)); err != nil {
			t.Fatal(err)
		}
	}

	snap := s.idx.Snapshot()
	defer snap.Close()
	mark, err := markLive(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	wantLive := []cas.Hash{live.Object, livePic.Object, liveThumb.Object}
	if len(mark.liveObj) != len(wantLive) || mark.objects != len(wantLive) {
		t.Errorf("live objects %d, manifests %d; want %d", len(mark.liveObj), mark.objects, len(wantLive))
	}
	for _, h := range wantLive {
		if _, ok := mark.liveObj[h]; !ok {
			t.Errorf("live object %s not marked", h.Short())
		}
		checkChunksIn(t, snap, h, mark.liveChunk, "live")
	}
	wantDead := map[cas.Hash]bool{dead.Object: true, deadPic.Object: true, deadThumb.Object: true}
	if len(mark.deadObj) != len(wantDead) {
		t.Errorf("dead objects %d, want %d", len(mark.deadObj), len(wantDead))
	}
	for _, h := range mark.deadObj {
		if !wantDead[h] {
			t.Errorf("object %s marked dead", h.Short())
		}
		checkChunksIn(t, snap, h, mark.deadChunk, "dead")
	}
	if len(mark.deadThumbs) != 1 || mark.deadThumbs[0].src != deadPic.Object {
		t.Errorf("dead thumbnails %+v, want the one of %s", mark.deadThumbs, deadPic.Object.Short())
	}
}

// checkChunksIn fails unless every chunk of obj's manifest is in set.
func checkChunksIn(t *testing.T, snap *index.Snapshot, obj cas.Hash, set map[cas.Hash]struct{}, what string) {
	t.Helper()
	m, err := snap.Manifest(obj)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Stored() {
		if _, ok := set[c.Hash]; !ok {
			t.Errorf("chunk %s of %s object %s not in the %s chunks", c.Hash.Short(), what, obj.Short(), what)
		}
	}
}
