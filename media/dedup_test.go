package media_test

import (
	"fmt"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/index"
	"github.com/mxcas/mxcas/media/mediatest"
)

func TestDedupSameContent(t *testing.T) {
	s, dir := newStore(t, nil)
	data := randBytes(60, 3<<20)
	want := hashSet(fileChunksOf(t, data, s.Params()))

	var objects []cas.Hash
	for i, user := range []string{"@alice:server", "@bob:server", "@carol:other"} {
		id := fmt.Sprintf("same%d", i)
		objects = append(objects, upload(t, s, id, user, data).Object)
		if got := len(chunkFiles(t, dir)); got != len(want) {
			t.Errorf("after upload %d of the same content: %d chunk files, want %d", i+1, got, len(want))
		}
	}
	for i, o := range objects {
		if o != objects[0] {
			t.Errorf("upload %d has object %s, want %s", i, o.Short(), objects[0].Short())
		}
		checkContent(t, s, fmt.Sprintf("same%d", i), data)
	}
	rep := mediatest.CheckHealthy(t, s)
	if rep.Media != 3 || rep.Objects != 1 || rep.Chunks != len(want) {
		t.Errorf("Fsck: %d media, %d objects, %d chunks; want 3, 1, %d", rep.Media, rep.Objects, rep.Chunks, len(want))
	}
	if got, want := rep.Bytes, int64(len(data)); got != want {
		t.Errorf("Fsck: Bytes = %d, want %d (stored once)", got, want)
	}
	checkUsage(t, s, dir, map[string]index.Usage{
		"@alice:server": {Bytes: int64(len(data)), Count: 1},
		"@bob:server":   {Bytes: int64(len(data)), Count: 1},
		"@carol:other":  {Bytes: int64(len(data)), Count: 1},
	}, index.Usage{Bytes: 3 * int64(len(data)), Count: 3})
}

func TestDedupNearCopy(t *testing.T) {
	const size = 8 << 20
	base := randBytes(61, size)

	changed := append([]byte(nil), base...)
	copy(changed[size/2-(1<<19):], randBytes(62, 1<<20)) // 1 MiB in the middle

	prepended := append(randBytes(63, 137), base...)

	appended := append(append([]byte(nil), base...), randBytes(64, 1000)...)

	tests := []struct {
		name string
		data []byte
		// maxNewBytes bounds the bytes of the chunks the near-copy adds.
		maxNewBytes int
	}{
		{"1MiB changed in the middle", changed, 1<<20 + 2*smallParams.Max},
		{"137 bytes prepended", prepended, 137 + 2*smallParams.Max},
		{"1000 bytes appended", appended, 1000 + 2*smallParams.Max},
	}
	s, dir := newStore(t, nil)
	upload(t, s, "base", "@a:server", base)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("near%d", i)
			before := chunkFiles(t, dir)
			upload(t, s, id, "@b:server", tt.data)
			after := chunkFiles(t, dir)

			// Exactly the chunks of the near-copy not in the original are new.
			added := hashSet(fileChunksOf(t, tt.data, s.Params()))
			for h := range before {
				delete(added, h)
			}
			newBytes := 0
			for h := range added {
				newBytes += int(after[h])
			}
			if got, want := len(after)-len(before), len(added); got != want {
				t.Errorf("near-copy added %d chunk files, want %d", got, want)
			}
			if newBytes > tt.maxNewBytes {
				t.Errorf("near-copy added %d bytes of chunks, want at most %d", newBytes, tt.maxNewBytes)
			}
			t.Logf("%d chunks before, %d added (%d bytes)", len(before), len(added), newBytes)
			checkContent(t, s, "base", base)
			checkContent(t, s, id, tt.data)
		})
	}
}
