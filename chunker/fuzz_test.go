package chunker_test

import (
	"bytes"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/mxcas/mxcas/chunker"
)

// fuzzParams are small enough that fuzz inputs span many chunks.
var fuzzParams = []chunker.Params{
	{Min: 64, Avg: 128, Max: 256},
	{Min: 64, Avg: 256, Max: 1024},
	{Min: 100, Avg: 512, Max: 600},
	{Min: 1000, Avg: 1024, Max: 1025},
	chunker.DefaultParams,
}

func FuzzChunker(f *testing.F) {
	f.Add([]byte(nil), uint8(0))
	f.Add([]byte("hello, world"), uint8(1))
	f.Add(make([]byte, 3000), uint8(0))
	f.Add(pseudoRandom(5000, 1), uint8(0))
	f.Add(pseudoRandom(5000, 2), uint8(1))
	f.Add(pseudoRandom(5000, 3), uint8(2))
	f.Add(pseudoRandom(5000, 4), uint8(3))
	f.Add(pseudoRandom(300<<10, 5), uint8(4))
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
