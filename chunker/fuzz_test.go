package chunker_test

import (
	"bytes"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/mxcas/mxcas/chunker"
)

// fuzzParams are small enough that inputs of a few hundred bytes span several
// chunks and reach every branch; the fuzzer minimizes each new input in time
// quadratic in its length, so small inputs keep it fuzzing.
var fuzzParams = []chunker.Params{
	{Min: 64, Avg: 128, Max: 256},
	{Min: 64, Avg: 128, Max: 129},   // Max just above Avg
	{Min: 100, Avg: 128, Max: 4096}, // Min close to Avg, Max far above
	{Min: 64, Avg: 256, Max: 1024},
	chunker.DefaultParams, // every fuzz input is one chunk
}

func FuzzChunker(f *testing.F) {
	f.Add([]byte(nil), uint8(0))
	f.Add([]byte("hello, world"), uint8(1))
	f.Add(make([]byte, 600), uint8(0))
	for i := range len(fuzzParams) {
		f.Add(pseudoRandom(1000, uint64(i)), uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		p := fuzzParams[int(which)%len(fuzzParams)]

		var fromSplit []byte
		var want []int
		if err := chunker.Split(data, p, func(chunk []byte) error {
			want = append(want, len(chunk))
			fromSplit = append(fromSplit, chunk...)
			return nil
		}); err != nil {
			t.Fatalf("Split: %v", err)
		}
		if !bytes.Equal(fromSplit, data) {
			t.Fatalf("Split chunks concatenate to %d bytes, want the %d input bytes", len(fromSplit), len(data))
		}
		checkSizes(t, want, p)

		// readLengths checks that the chunks concatenate to data.
		got := readLengths(t, iotest.OneByteReader(bytes.NewReader(data)), p, data)
		if !slices.Equal(got, want) {
			t.Fatalf("%v: Next over a one-byte reader gives %v, Split gives %v", p, got, want)
		}
	})
}
