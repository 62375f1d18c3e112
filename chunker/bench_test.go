package chunker_test

import (
	"bytes"
	"io"
	"sync"
	"testing"

	resticchunker "github.com/restic/chunker"
	"github.com/zeebo/blake3"

	"github.com/mxcas/mxcas/chunker"
)

// All benchmarks run over the same 64 MiB of pseudo-random data, so their
// MB/s can be compared within one run.
var benchData = sync.OnceValue(func() []byte { return pseudoRandom(64<<20, 42) })

// BenchmarkChunker is the streaming path: New over a bytes.Reader with
// DefaultParams.
func BenchmarkChunker(b *testing.B) {
	data := benchData()
	b.SetBytes(int64(len(data)))
	chunks := 0
	for b.Loop() {
		c, err := chunker.New(bytes.NewReader(data), chunker.DefaultParams)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := c.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			chunks++
		}
		c.Release()
	}
	b.ReportMetric(float64(len(data))*float64(b.N)/float64(chunks), "B/chunk")
}

// BenchmarkSplit is the in-memory path with DefaultParams.
func BenchmarkSplit(b *testing.B) {
	data := benchData()
	b.SetBytes(int64(len(data)))
	chunks := 0
	for b.Loop() {
		err := chunker.Split(data, chunker.DefaultParams, func([]byte) error {
			chunks++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data))*float64(b.N)/float64(chunks), "B/chunk")
}

// BenchmarkResticChunker is restic's Rabin chunker with its default sizes
// (512 KiB min, 8 MiB max, about 1 MiB average) and a fixed polynomial, for
// comparison.
func BenchmarkResticChunker(b *testing.B) {
	const pol = resticchunker.Pol(0x3DA3358B4DC173)
	data := benchData()
	b.SetBytes(int64(len(data)))
	buf := make([]byte, resticchunker.MaxSize)
	chunks := 0
	for b.Loop() {
		c := resticchunker.New(bytes.NewReader(data), pol)
		for {
			chunk, err := c.Next(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			buf = chunk.Data
			chunks++
		}
	}
	b.ReportMetric(float64(len(data))*float64(b.N)/float64(chunks), "B/chunk")
}

// BenchmarkBLAKE3 hashes the same data in one call, on one core: the speed
// chunking should keep up with.
func BenchmarkBLAKE3(b *testing.B) {
	data := benchData()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = blake3.Sum256(data)
	}
}
