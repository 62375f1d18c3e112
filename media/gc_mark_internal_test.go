package media

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
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

	wantLive := []cas.Hash{live.Object, livePic.Object, liveThumb.Object}
	wantDead := map[cas.Hash]bool{dead.Object: true, deadPic.Object: true, deadThumb.Object: true}
	snap := s.idx.Snapshot()
	defer snap.Close()
	for _, budget := range []int{1 << 19, 2, 3} {
		t.Run(fmt.Sprint("budget=", budget), func(t *testing.T) {
			defer SetPassBudget(budget)()
			checkMark(t, snap, wantLive, wantDead, deadPic.Object)
		})
	}
}

// checkMark checks liveObjects and markChunks on snap against the live
// and dead objects wanted (the manifests of both sets list distinct
// chunks) and the one source whose thumbnail is dead.
func checkMark(t *testing.T, snap *index.Snapshot, wantLive []cas.Hash, wantDead map[cas.Hash]bool, deadSrc cas.Hash) {
	t.Helper()
	l := newLiveObjects(context.Background(), snap)
	var chunks []cas.Hash
	want := make(map[cas.Hash]chunkMark)
	for _, h := range wantLive {
		for _, c := range manifestChunks(t, snap, h) {
			chunks, want[c] = append(chunks, c), chunkLive
		}
	}
	for h := range wantDead {
		for _, c := range manifestChunks(t, snap, h) {
			chunks, want[c] = append(chunks, c), chunkKnown
		}
	}
	chunks = append(chunks, cas.Sum([]byte("in no manifest")))
	slices.SortFunc(chunks, compareHash)
	chunks = slices.Compact(chunks)
	marks := make([]chunkMark, len(chunks))
	var mark gcMark
	if err := l.markChunks(func(h cas.Hash) (int, bool) { return sortedHas(chunks, h) }, marks, &mark); err != nil {
		t.Fatal(err)
	}
	if mark.objects != len(wantLive) {
		t.Errorf("live manifests %d, want %d", mark.objects, len(wantLive))
	}
	for i, c := range chunks {
		if marks[i] != want[c] {
			t.Errorf("chunk %s marked %d, want %d", c.Short(), marks[i], want[c])
		}
	}
	isLive, err := l.liveOf(wantLive)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range wantLive {
		if !isLive[i] {
			t.Errorf("live object %s not marked", h.Short())
		}
	}
	if len(mark.deadObj) != len(wantDead) || !slices.IsSortedFunc(mark.deadObj, compareHash) {
		t.Errorf("dead objects %d (sorted: %v), want %d", len(mark.deadObj), slices.IsSortedFunc(mark.deadObj, compareHash), len(wantDead))
	}
	for _, h := range mark.deadObj {
		if !wantDead[h] {
			t.Errorf("object %s marked dead", h.Short())
		}
	}
	if len(mark.deadThumbs) != 1 || mark.deadThumbs[0].src != deadSrc {
		t.Errorf("dead thumbnails %+v, want the one of %s", mark.deadThumbs, deadSrc.Short())
	}
}

// manifestChunks returns the chunks of obj's manifest.
func manifestChunks(t *testing.T, snap *index.Snapshot, obj cas.Hash) []cas.Hash {
	t.Helper()
	m, err := snap.Manifest(obj)
	if err != nil {
		t.Fatal(err)
	}
	var hs []cas.Hash
	for _, c := range m.Stored() {
		hs = append(hs, c.Hash)
	}
	return hs
}
