package media

import (
	"bytes"
	"context"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
)

// TestInlineUsageCountsEachCopy: two media whose last chunks are the same
// keep a copy of it each, inline with their own manifests, and the
// server's stored bytes count both copies (a chunk file shared by the two
// counts once).
func TestInlineUsageCountsEachCopy(t *testing.T) {
	s, _, _ := inlineStore(t)
	a, b, _ := sharedTail(t, s.params)
	ctx := context.Background()
	for id, data := range map[string][]byte{"a": a, "b": b} {
		if _, err := s.Upload(ctx, UploadInfo{MXC: mustMXC("s", id), Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	var want int64
	files := make(map[cas.Hash]bool)
	for _, data := range [][]byte{a, b} {
		var chunks [][]byte
		chunker.Split(data, s.params, func(c []byte) error { chunks = append(chunks, bytes.Clone(c)); return nil })
		for _, c := range chunks[:len(chunks)-1] {
			if h := cas.Sum(c); !files[h] {
				files[h] = true
				want += int64(len(c))
			}
		}
		want += int64(len(chunks[len(chunks)-1])) // inline: a copy per object
	}
	su, err := s.ServerUsage(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if su.StoredBytes != want {
		t.Errorf("stored bytes %d, want %d (the shared inline chunk once per object)", su.StoredBytes, want)
	}
	if rep, err := s.Fsck(ctx); err != nil || rep.Bytes != want {
		t.Errorf("fsck: %d bytes, %v; want %d", rep.Bytes, err, want)
	}
}
