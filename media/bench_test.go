package media_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/mxcas/mxcas/media"
)

const benchSize = 8 << 20

// benchStore opens a store with the default chunker parameters in b.TempDir.
func benchStore(b *testing.B) *media.Store {
	b.Helper()
	return openStore(b, media.Options{Create: true, Dir: filepath.Join(b.TempDir(), "data")})
}

func benchUpload(b *testing.B, s *media.Store, id string, data []byte) {
	b.Helper()
	info := media.UploadInfo{MXC: mxc(id), Size: int64(len(data))}
	if _, err := s.Upload(context.Background(), info, bytes.NewReader(data)); err != nil {
		b.Fatalf("Upload(%s): %v", id, err)
	}
}

// BenchmarkUploadNew uploads 8 MiB of content the store has never seen.
func BenchmarkUploadNew(b *testing.B) {
	s := benchStore(b)
	b.SetBytes(benchSize)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		data := randBytes(uint64(1000+i), benchSize)
		b.StartTimer()
		benchUpload(b, s, fmt.Sprintf("new%d", i), data)
	}
}

// BenchmarkUploadExisting uploads the same 8 MiB under a new ID each time:
// every chunk is already stored.
func BenchmarkUploadExisting(b *testing.B) {
	s := benchStore(b)
	data := randBytes(201, benchSize)
	benchUpload(b, s, "first", data)
	b.SetBytes(benchSize)
	for i := 0; b.Loop(); i++ {
		benchUpload(b, s, fmt.Sprintf("again%d", i), data)
	}
}

// BenchmarkUploadSmall uploads 4 KiB of fresh content from parallel
// goroutines, the common case of real media.
func BenchmarkUploadSmall(b *testing.B) {
	const size = 4 << 10
	s := benchStore(b)
	var n atomic.Uint64
	b.SetBytes(size)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			benchUpload(b, s, fmt.Sprintf("small%d", i), randBytes(300+i, size))
		}
	})
}

// BenchmarkOpenRead opens a stored 8 MiB object and reads it all.
func BenchmarkOpenRead(b *testing.B) { benchOpenRead(b, benchStore(b)) }

// BenchmarkOpenReadHashEvery is BenchmarkOpenRead with no trusted files:
// every chunk is read into a buffer and hashed on every read, the cost of a
// cold object.
func BenchmarkOpenReadHashEvery(b *testing.B) {
	benchOpenRead(b, openStore(b, media.Options{Create: true, Dir: filepath.Join(b.TempDir(), "data"), VerifyTTL: -1}))
}

// benchOpenRead stores an 8 MiB object in s, then opens and reads it all.
func benchOpenRead(b *testing.B, s *media.Store) {
	benchUpload(b, s, "read", randBytes(202, benchSize))
	b.SetBytes(benchSize)
	for b.Loop() {
		r, _, err := s.Open(mxc("read"))
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != benchSize {
			b.Fatalf("read %d bytes, %v; want %d", n, err, benchSize)
		}
		r.Close()
	}
}
