package media_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/media"
)

// flakyChunks is a MemStore whose reads fail as an unreachable object
// store's do while down is set.
type flakyChunks struct {
	*cas.MemStore
	down atomic.Bool
}

func (f *flakyChunks) ReadChunk(h cas.Hash, buf []byte) ([]byte, error) {
	if f.down.Load() {
		return nil, fmt.Errorf("%w: connection refused", cas.ErrUnavailable)
	}
	return f.MemStore.ReadChunk(h, buf)
}

// TestFsckStorageUnavailable: fsck with the chunk storage unreachable fails
// with ErrUnavailable and records no damage; once it is back, fsck is clean.
func TestFsckStorageUnavailable(t *testing.T) {
	chunks := &flakyChunks{MemStore: cas.NewMemStore(nil)}
	s := openStore(t, media.Options{Create: true, Dir: filepath.Join(t.TempDir(), "data"), Chunker: smallParams,
		Chunks: chunks, ChunksAt: "s3 test/"})
	upload(t, s, "a", "@u:server", randBytes(1, 200_000))
	chunks.down.Store(true)
	if rep, err := s.Fsck(context.Background()); !errors.Is(err, cas.ErrUnavailable) {
		t.Fatalf("Fsck with the storage down: %+v, %v; want ErrUnavailable", rep, err)
	}
	chunks.down.Store(false)
	rep, err := s.Fsck(context.Background())
	if err != nil || len(rep.Damaged) != 0 || len(rep.Problems) != 0 {
		t.Fatalf("Fsck after the storage is back: %+v, %v; want clean", rep, err)
	}
	checkContent(t, s, "a", randBytes(1, 200_000))
}
