package media_test

import (
	"context"
	"testing"

	"github.com/mxcas/mxcas/media"
)

// BenchmarkResolve is the read policy's cost for a small local media whose
// record is cached: what every download and thumbnail request pays before
// it opens anything (quarantine, freeze, pending and last-access checks).
func BenchmarkResolve(b *testing.B) {
	s := benchStore(b)
	benchUpload(b, s, "small", randBytes(203, 4<<10))
	ctx, m := context.Background(), mxc("small")
	for b.Loop() {
		if _, err := s.Resolve(ctx, m, media.ReadOptions{Path: media.ClientRead}); err != nil {
			b.Fatal(err)
		}
	}
}
