package media

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
)

// gatedSource is a repair source whose first read waits until another read
// of the same chunk has joined it (or, without single-flight, until a
// second read reaches the source itself).
type gatedSource struct {
	r      cas.Reader
	calls  atomic.Int64
	joined chan struct{} // closed when a read waits for the first
	second chan struct{} // closed by the second read of the source
}

func (g *gatedSource) ReadChunk(h cas.Hash, buf []byte) ([]byte, error) {
	if g.calls.Add(1) == 1 {
		select {
		case <-g.joined:
		case <-g.second:
		}
	} else {
		close(g.second)
	}
	return g.r.ReadChunk(h, buf)
}

// Two reads that find the same chunk damaged at once fetch it from the
// repair source once, and both get the right bytes.
func TestRepairOnReadFetchesOnce(t *testing.T) {
	params := chunker.Params{Min: 4096, Avg: 16384, Max: 65536}
	data := make([]byte, 200<<10)
	rand.NewChaCha8([32]byte{46}).Read(data)
	a := mustMXC("s", "A")
	ctx := context.Background()
	open := func(dir string, src cas.Reader) *Store {
		s, err := Open(Options{Create: true, Dir: dir, Chunker: params, RepairSource: src})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Upload(ctx, UploadInfo{MXC: a, Size: -1}, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	primary := open(filepath.Join(t.TempDir(), "primary"), nil)
	src := &gatedSource{r: primary, joined: make(chan struct{}), second: make(chan struct{})}
	dir := filepath.Join(t.TempDir(), "standby")
	s := open(dir, src)
	var once sync.Once
	s.repairs.joined = func(cas.Hash) { once.Do(func() { close(src.joined) }) }

	var first cas.Hash
	chunker.Split(data, params, func(c []byte) error {
		if first.IsZero() {
			first = cas.Sum(c)
		}
		return nil
	})
	p, err := ChunkPath(dir, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			r, _, err := s.Open(a)
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("read: %d bytes, %v; want the %d uploaded", len(got), err, len(data))
			}
		})
	}
	wg.Wait()
	if n := src.calls.Load(); n != 1 {
		t.Errorf("the repair source was read %d times, want 1", n)
	}
}
