package cas_test

import (
	"io"
	"math/rand/v2"
	"testing"

	"github.com/mxcas/mxcas/cas"
)

const benchChunkSize = 64 << 10

// chunkSource makes distinct, deterministic chunks.
type chunkSource struct {
	rng *rand.ChaCha8
	buf []byte
}

func newChunkSource(seed byte) *chunkSource {
	return &chunkSource{
		rng: rand.NewChaCha8([32]byte{seed}),
		buf: make([]byte, benchChunkSize),
	}
}

// next returns a new chunk; its data is valid until the next call.
func (c *chunkSource) next() (cas.Hash, []byte) {
	c.rng.Read(c.buf)
	return cas.Sum(c.buf), c.buf
}

func BenchmarkPut(b *testing.B) {
	s := openStore(b, b.TempDir())
	src := newChunkSource(1)
	b.SetBytes(benchChunkSize)
	for b.Loop() {
		b.StopTimer()
		h, data := src.next()
		b.StartTimer()
		if _, err := s.Put(h, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBatchPut(b *testing.B) {
	const perBatch = 64
	s := openStore(b, b.TempDir())
	src := newChunkSource(2)
	hs := make([]cas.Hash, perBatch)
	data := make([][]byte, perBatch)
	for i := range data {
		data[i] = make([]byte, benchChunkSize)
	}
	b.SetBytes(perBatch * benchChunkSize)
	for b.Loop() {
		b.StopTimer()
		for i := range data {
			h, d := src.next()
			hs[i] = h
			copy(data[i], d)
		}
		b.StartTimer()
		batch := s.NewBatch()
		for i := range data {
			if _, err := batch.Put(hs[i], data[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutExisting(b *testing.B) {
	s := openStore(b, b.TempDir())
	h, data := newChunkSource(3).next()
	if _, err := s.Put(h, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchChunkSize)
	for b.Loop() {
		added, err := s.Put(h, data)
		if err != nil || added {
			b.Fatalf("Put = %v, %v; want false, nil", added, err)
		}
	}
}

func BenchmarkReadChunk(b *testing.B) {
	s := openStore(b, b.TempDir())
	h, data := newChunkSource(4).next()
	if _, err := s.Put(h, data); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, benchChunkSize)
	b.SetBytes(benchChunkSize)
	for b.Loop() {
		got, err := s.ReadChunk(h, buf)
		if err != nil || len(got) != benchChunkSize {
			b.Fatalf("ReadChunk = %d bytes, %v", len(got), err)
		}
	}
}

func BenchmarkOpenRead(b *testing.B) {
	s := openStore(b, b.TempDir())
	h, data := newChunkSource(5).next()
	if _, err := s.Put(h, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchChunkSize)
	for b.Loop() {
		f, err := s.OpenChunk(h)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, f)
		f.Close()
		if err != nil || n != benchChunkSize {
			b.Fatalf("io.Copy = %d, %v", n, err)
		}
	}
}

func BenchmarkHash64K(b *testing.B) {
	data := make([]byte, benchChunkSize)
	rand.NewChaCha8([32]byte{6}).Read(data)
	b.SetBytes(benchChunkSize)
	for b.Loop() {
		cas.Sum(data)
	}
}
