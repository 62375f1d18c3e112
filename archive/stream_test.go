package archive_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"runtime"
	"testing"

	"github.com/mxcas/mxcas/archive"
)

// pattern yields n bytes of a repeating pattern without holding them.
type pattern struct{ n, off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		b[i] = byte((p.off + int64(i)) % 251)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// TestStreamsBoundedMemory writes and reads a 48 MiB media and checks that
// neither side allocates anything near its size: bodies are streamed.
func TestStreamsBoundedMemory(t *testing.T) {
	const size = 48 << 20
	const budget = 16 << 20
	ctx := context.Background()
	d := newMemDir() // the pattern compresses to a few hundred KiB
	w, err := archive.NewWriter(archive.Options{EntityID: "o", Create: d.create})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, &pattern{n: size}); err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(h.Sum(nil))

	before := totalAlloc()
	rec, err := w.AddMedia(ctx, archive.Entry{Origin: "o", MediaID: "big", Size: size}, &pattern{n: size})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if grown := totalAlloc() - before; grown > budget || rec.SHA256 != want {
		t.Errorf("writing allocated %d bytes (budget %d); sha %s want %s", grown, budget, rec.SHA256, want)
	}

	r, err := archive.Open(ctx, d.fs)
	if err != nil {
		t.Fatal(err)
	}
	before = totalAlloc()
	var n int64
	err = r.Each(ctx, func(rec archive.Record, body io.Reader) error {
		n, err = io.Copy(io.Discard, body)
		return err
	}, func(rec archive.Record, err error) { t.Errorf("problem %s: %v", rec.MXC(), err) })
	if got := totalAlloc() - before; err != nil || n != size || got > budget {
		t.Errorf("Each = %v, read %d bytes allocating %d (budget %d)", err, n, got, budget)
	}
}
