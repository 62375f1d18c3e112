package chunker_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/mxcas/mxcas/chunker"
)

// smallParams make many chunks out of little data.
var smallParams = chunker.Params{Min: 256, Avg: 1024, Max: 4096}

// readLengths returns the chunk lengths a Chunker finds reading r, and checks
// that the chunks concatenate to want.
func readLengths(t testing.TB, r io.Reader, p chunker.Params, want []byte) []int {
	t.Helper()
	c, err := chunker.New(r, p)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer c.Release()
	var lens []int
	var got []byte
	for {
		chunk, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next after %d chunks: %v", len(lens), err)
		}
		lens = append(lens, len(chunk))
		got = append(got, chunk...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("chunks concatenate to %d bytes, not the %d bytes read", len(got), len(want))
	}
	return lens
}

// checkSizes checks that every length but the last is within [Min, Max] and
// the last within [1, Max].
func checkSizes(t testing.TB, lens []int, p chunker.Params) {
	t.Helper()
	for i, n := range lens {
		lo := p.Min
		if i == len(lens)-1 {
			lo = 1
		}
		if n < lo || n > p.Max {
			t.Fatalf("chunk %d of %d has length %d, want within [%d, %d]", i, len(lens), n, lo, p.Max)
		}
	}
}

// chunkSet returns the SHA-256 of each chunk of data, in order.
func chunkHashes(t testing.TB, data []byte, p chunker.Params) [][32]byte {
	t.Helper()
	var hs [][32]byte
	if err := chunker.Split(data, p, func(chunk []byte) error {
		hs = append(hs, sha256.Sum256(chunk))
		return nil
	}); err != nil {
		t.Fatalf("Split: %v", err)
	}
	return hs
}

// randomSizeReader returns reads of pseudo-random sizes from 0 to 2*max.
type randomSizeReader struct {
	data []byte
	x    uint32
	max  int
}

func (r *randomSizeReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	r.x = r.x*1664525 + 1013904223
	n := min(int(r.x>>8)%(2*r.max+1), len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func TestReadSizesDoNotMoveBoundaries(t *testing.T) {
	for _, p := range []chunker.Params{smallParams, chunker.DefaultParams} {
		data := pseudoRandom(20*p.Max+12345, 1)
		want := splitLengths(t, data, p)
		checkSizes(t, want, p)
		readers := []struct {
			name string
			r    func() io.Reader
		}{
			{"bytes.Reader", func() io.Reader { return bytes.NewReader(data) }},
			{"OneByteReader", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) }},
			{"HalfReader", func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }},
			{"DataErrReader", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) }},
			{"random sizes", func() io.Reader { return &randomSizeReader{data: data, x: 7, max: p.Max} }},
		}
		for _, rd := range readers {
			t.Run(p.String()+"/"+rd.name, func(t *testing.T) {
				got := readLengths(t, rd.r(), p, data)
				if !slices.Equal(got, want) {
					t.Fatalf("boundaries differ from Split's:\ngot  %v\nwant %v", got, want)
				}
			})
		}
	}
}

func TestBoundariesAreStable(t *testing.T) {
	// Stored chunks depend on these boundaries. If this test fails, the gear
	// table, the masks or the cut rule changed, and every existing store would
	// stop deduplicating against new uploads.
	got := splitLengths(t, pseudoRandom(2<<20, 2024), chunker.DefaultParams)
	want := []int{
		75223, 67086, 67785, 66174, 87994, 114807, 77551, 81535, 93214, 88679, 96323, 87763, 69596, 103959,
		46560, 84103, 49315, 75507, 44593, 71061, 67050, 82630, 81528, 131849, 67128, 89419, 28720,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("DefaultParams boundaries changed:\ngot  %#v\nwant %#v", got, want)
	}
}

func TestEmptyStream(t *testing.T) {
	c, err := chunker.New(bytes.NewReader(nil), chunker.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	for i := range 2 {
		if chunk, err := c.Next(); chunk != nil || err != io.EOF {
			t.Fatalf("Next #%d = (%d bytes, %v), want (nil, io.EOF)", i+1, len(chunk), err)
		}
	}
	called := false
	if err := chunker.Split(nil, chunker.DefaultParams, func([]byte) error { called = true; return nil }); err != nil || called {
		t.Fatalf("Split(nil) = %v, called fn: %t; want nil, false", err, called)
	}
}

func TestShortStreams(t *testing.T) {
	p := smallParams
	for _, n := range []int{1, p.Min - 1, p.Min, p.Min + 1, p.Avg, p.Max - 1, p.Max, p.Max + 1, 2 * p.Max} {
		data := pseudoRandom(n, uint64(n))
		got := readLengths(t, bytes.NewReader(data), p, data)
		checkSizes(t, got, p)
		if want := splitLengths(t, data, p); !slices.Equal(got, want) {
			t.Errorf("%d bytes: Next gives %v, Split gives %v", n, got, want)
		}
	}
}

func TestZerosCutAtMax(t *testing.T) {
	// A constant stream never matches the mask: chunks are Max long, so that
	// long runs of one byte deduplicate.
	p := smallParams
	data := make([]byte, 3*p.Max+10)
	got := splitLengths(t, data, p)
	want := []int{p.Max, p.Max, p.Max, 10}
	if !slices.Equal(got, want) {
		t.Fatalf("zeros: got %v, want %v", got, want)
	}
}

func TestShiftedCopySharesChunks(t *testing.T) {
	p := chunker.DefaultParams
	orig := pseudoRandom(8<<20, 3)
	shifted := append(pseudoRandom(137, 4), orig...)

	origHashes := chunkHashes(t, orig, p)
	shiftedHashes := chunkHashes(t, shifted, p)
	known := make(map[[32]byte]bool, len(origHashes))
	for _, h := range origHashes {
		known[h] = true
	}
	missing := 0
	for _, h := range shiftedHashes {
		if !known[h] {
			missing++
		}
	}
	if missing > 2 {
		t.Errorf("%d of %d chunks of the shifted copy are new, want at most 2", missing, len(shiftedHashes))
	}
	if d := len(shiftedHashes) - len(origHashes); d < -1 || d > 1 {
		t.Errorf("shifted copy has %d chunks, original %d; want a difference of at most 1", len(shiftedHashes), len(origHashes))
	}
}

func TestEditChangesOnlyNearbyChunks(t *testing.T) {
	p := chunker.DefaultParams
	orig := pseudoRandom(8<<20, 5)
	for _, at := range []int{4 << 20, 4<<20 + 12345, 6<<20 + 99} {
		edited := slices.Clone(orig)
		for i := range 5 {
			edited[at+i] ^= 0x5a
		}
		known := make(map[[32]byte]bool)
		for _, h := range chunkHashes(t, orig, p) {
			known[h] = true
		}
		// Every chunk of the edited copy that is not in the original must lie
		// near the edit: within the chunk holding it, or the next one or two
		// while the boundaries resynchronize.
		off, changed := 0, 0
		if err := chunker.Split(edited, p, func(chunk []byte) error {
			start, end := off, off+len(chunk)
			off = end
			if known[sha256.Sum256(chunk)] {
				return nil
			}
			changed++
			if end <= at-p.Max || start >= at+5+2*p.Max {
				t.Errorf("edit at %d: changed chunk [%d, %d) is far from it", at, start, end)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if changed < 1 || changed > 3 {
			t.Errorf("edit at %d: %d chunks changed, want 1 to 3", at, changed)
		}
	}
}

func TestReadErrorIsReturned(t *testing.T) {
	errBroken := errors.New("broken pipe")
	p := smallParams
	data := pseudoRandom(10*p.Max+17, 6)
	for _, readErr := range []error{io.ErrUnexpectedEOF, errBroken} {
		for _, r := range []io.Reader{
			io.MultiReader(bytes.NewReader(data), iotest.ErrReader(readErr)),
			iotest.OneByteReader(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(readErr))),
			iotest.ErrReader(readErr), // fails before any data
		} {
			c, err := chunker.New(r, p)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			for {
				chunk, err := c.Next()
				if err == nil {
					got = append(got, chunk...)
					continue
				}
				if err == io.EOF || errors.Is(err, io.EOF) {
					t.Fatalf("Next = io.EOF after %d bytes, want %v", len(got), readErr)
				}
				if !errors.Is(err, readErr) {
					t.Fatalf("Next error = %v, want %v", err, readErr)
				}
				break
			}
			if !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("chunks before the error are not a prefix of the data")
			}
			// The error sticks.
			if _, err := c.Next(); !errors.Is(err, readErr) {
				t.Fatalf("Next after the error = %v, want %v", err, readErr)
			}
			c.Release()
		}
	}
}

// stuckReader returns (0, nil) forever.
type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

func TestStuckReader(t *testing.T) {
	c, err := chunker.New(stuckReader{}, smallParams)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if _, err := c.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Next = %v, want io.ErrNoProgress", err)
	}
}

func TestAverageChunkSize(t *testing.T) {
	for _, p := range []chunker.Params{
		chunker.DefaultParams,
		smallParams,
		{Min: 2 << 10, Avg: 8 << 10, Max: 64 << 10},
		{Min: 64 << 10, Avg: 1 << 20, Max: 8 << 20},
	} {
		data := pseudoRandom(min(400*p.Avg, 64<<20), 7)
		lens := splitLengths(t, data, p)
		checkSizes(t, lens, p)
		mean := float64(len(data)) / float64(len(lens))
		t.Logf("%v: %d chunks, mean %.0f (%.2f x avg)", p, len(lens), mean, mean/float64(p.Avg))
		if r := mean / float64(p.Avg); r < 0.75 || r > 1.25 {
			t.Errorf("%v: mean chunk size %.0f is %.2f x avg, want within 25%%", p, mean, r)
		}
	}
}

func TestReleaseTwice(t *testing.T) {
	c, err := chunker.New(bytes.NewReader(pseudoRandom(100, 8)), smallParams)
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
	c.Release()
	if _, err := c.Next(); err == nil || err == io.EOF {
		t.Fatalf("Next after Release = %v, want an error that is not io.EOF", err)
	}
}

func TestSplitStopsAtCallbackError(t *testing.T) {
	errStop := errors.New("stop")
	calls := 0
	err := chunker.Split(pseudoRandom(10*smallParams.Max, 9), smallParams, func([]byte) error {
		calls++
		if calls == 3 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || calls != 3 {
		t.Fatalf("Split = %v after %d calls, want %v after 3", err, calls, errStop)
	}
}

func TestNextDoesNotAllocate(t *testing.T) {
	data := pseudoRandom(64<<20, 10)
	c, err := chunker.New(bytes.NewReader(data), chunker.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Next allocates %v times per call, want 0", allocs)
	}
}

// badCountReader claims to have read more than it was given.
type badCountReader struct{}

func (badCountReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestBadCountReader(t *testing.T) {
	c, err := chunker.New(badCountReader{}, smallParams)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if _, err := c.Next(); err == nil || err == io.EOF {
		t.Fatalf("Next = %v, want an error that is not io.EOF", err)
	}
}
