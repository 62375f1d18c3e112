package cas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mxcas/mxcas/cas"
)

// vectorInput is the input of the official BLAKE3 test vectors: byte i is
// i mod 251.
func vectorInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// vectors are the first 32 bytes of the "hash" field of the official BLAKE3
// test_vectors.json.
var vectors = []struct {
	n    int
	want string
}{
	{0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
	{1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
	{1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
	{1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
	{1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
	{8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"},
	{31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
}

func TestSumVectors(t *testing.T) {
	for _, v := range vectors {
		if got := cas.Sum(vectorInput(v.n)).String(); got != v.want {
			t.Errorf("Sum(%d bytes) = %s, want %s", v.n, got, v.want)
		}
	}
	if got, want := cas.Sum(nil), cas.Sum([]byte{}); got != want {
		t.Errorf("Sum(nil) = %s, want Sum([]byte{}) = %s", got, want)
	}
}

func TestHasherMatchesSum(t *testing.T) {
	for _, v := range vectors {
		in := vectorInput(v.n)
		h := cas.NewHasher()
		// Odd-sized writes cross chunk (1024) and block (64) boundaries.
		for rest := in; len(rest) > 0; {
			k := min(len(rest), 7+len(rest)%300)
			if n, err := h.Write(rest[:k]); n != k || err != nil {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, k)
			}
			rest = rest[k:]
		}
		if got, want := h.Sum(), cas.Sum(in); got != want {
			t.Errorf("Hasher over %d bytes = %s, want %s", v.n, got, want)
		}
		// Sum does not change the state.
		if got, want := h.Sum(), cas.Sum(in); got != want {
			t.Errorf("second Hasher.Sum over %d bytes = %s, want %s", v.n, got, want)
		}
		h.Reset()
		if got, want := h.Sum(), cas.Sum(nil); got != want {
			t.Errorf("Hasher.Sum after Reset = %s, want %s", got, want)
		}
	}
}

func TestParseHashRoundTrip(t *testing.T) {
	for _, v := range vectors {
		h, err := cas.ParseHash(v.want)
		if err != nil {
			t.Fatalf("ParseHash(%q): %v", v.want, err)
		}
		if got := h.String(); got != v.want {
			t.Errorf("ParseHash(%q).String() = %q", v.want, got)
		}
		if got, want := h, cas.Sum(vectorInput(v.n)); got != want {
			t.Errorf("ParseHash(%q) = %v, want %v", v.want, got, want)
		}
		up, err := cas.ParseHash(strings.ToUpper(v.want))
		if err != nil {
			t.Fatalf("ParseHash(upper %q): %v", v.want, err)
		}
		if up != h {
			t.Errorf("ParseHash(upper) = %v, want %v", up, h)
		}
	}
}

func TestParseHashRejects(t *testing.T) {
	good := vectors[0].want
	for _, tc := range []struct {
		name, in string
	}{
		{"empty", ""},
		{"short", good[:63]},
		{"long", good + "0"},
		{"half", good[:32]},
		{"double", good + good},
		{"non-hex", "g" + good[1:]},
		{"space", " " + good[1:]},
		{"prefix", "0x" + good[2:]},
		{"non-ascii", "é" + good[2:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := cas.ParseHash(tc.in)
			if err == nil {
				t.Fatalf("ParseHash(%q) = %v, want error", tc.in, h)
			}
			if !h.IsZero() {
				t.Errorf("ParseHash(%q) on error = %v, want zero", tc.in, h)
			}
		})
	}
}

func TestShort(t *testing.T) {
	h := cas.Sum([]byte("short"))
	got := h.Short()
	if len(got) != 12 {
		t.Errorf("len(Short()) = %d, want 12", len(got))
	}
	if want := h.String()[:12]; got != want {
		t.Errorf("Short() = %q, want %q", got, want)
	}
}

func TestIsZero(t *testing.T) {
	var zero cas.Hash
	if !zero.IsZero() {
		t.Error("zero Hash: IsZero() = false, want true")
	}
	if h := cas.Sum(nil); h.IsZero() {
		t.Error("Sum(nil).IsZero() = true, want false")
	}
	var one cas.Hash
	one[cas.HashSize-1] = 1
	if one.IsZero() {
		t.Error("Hash with last byte 1: IsZero() = true, want false")
	}
}

func TestHashJSON(t *testing.T) {
	a, b := cas.Sum([]byte("a")), cas.Sum([]byte("b"))
	type doc struct {
		Root   cas.Hash              `json:"root"`
		Chunks []cas.Hash            `json:"chunks"`
		Sizes  map[cas.Hash]int      `json:"sizes"`
		Next   map[cas.Hash]cas.Hash `json:"next"`
	}
	in := doc{
		Root:   a,
		Chunks: []cas.Hash{a, b},
		Sizes:  map[cas.Hash]int{a: 1, b: 2},
		Next:   map[cas.Hash]cas.Hash{a: b},
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	// The text form is the hex string, both as a value and as a key.
	for _, want := range []string{
		`"root":"` + a.String() + `"`,
		`"chunks":["` + a.String() + `","` + b.String() + `"]`,
		`"` + b.String() + `":2`,
		`"next":{"` + a.String() + `":"` + b.String() + `"}`,
	} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("Marshal = %s, want it to contain %s", data, want)
		}
	}
	var out doc
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("Unmarshal(%s): %v", data, err)
	}
	if out.Root != in.Root {
		t.Errorf("Root = %v, want %v", out.Root, in.Root)
	}
	if len(out.Chunks) != 2 || out.Chunks[0] != a || out.Chunks[1] != b {
		t.Errorf("Chunks = %v, want %v", out.Chunks, in.Chunks)
	}
	if len(out.Sizes) != 2 || out.Sizes[a] != 1 || out.Sizes[b] != 2 {
		t.Errorf("Sizes = %v, want %v", out.Sizes, in.Sizes)
	}
	if len(out.Next) != 1 || out.Next[a] != b {
		t.Errorf("Next = %v, want %v", out.Next, in.Next)
	}

	for _, bad := range []string{
		`{"root":"abc"}`,
		`{"sizes":{"xyz":1}}`,
		`{"root":"` + strings.Repeat("zz", cas.HashSize) + `"}`,
	} {
		var d doc
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s) = nil error, want error", bad)
		}
	}
}

func TestVerifyReaderGood(t *testing.T) {
	in := vectorInput(100_000)
	h := cas.Sum(in)
	got, err := io.ReadAll(cas.VerifyReader(bytes.NewReader(in), h))
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if !bytes.Equal(got, in) {
		t.Errorf("ReadAll returned %d bytes differing from the %d written", len(got), len(in))
	}
	// Also with a reader that returns data together with io.EOF, one byte
	// at a time, and with the standard reader checks.
	got, err = io.ReadAll(cas.VerifyReader(iotest.DataErrReader(iotest.OneByteReader(bytes.NewReader(in[:3000]))), cas.Sum(in[:3000])))
	if err != nil || !bytes.Equal(got, in[:3000]) {
		t.Errorf("ReadAll(DataErrReader) = %d bytes, %v; want 3000 bytes, nil", len(got), err)
	}
	if err := iotest.TestReader(cas.VerifyReader(bytes.NewReader(in), h), in); err != nil {
		t.Errorf("iotest.TestReader: %v", err)
	}
}

func TestVerifyReaderBad(t *testing.T) {
	in := vectorInput(10_000)
	h := cas.Sum(in)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"flipped", func() []byte { b := bytes.Clone(in); b[5000] ^= 1; return b }()},
		{"truncated", in[:len(in)-1]},
		{"extended", append(bytes.Clone(in), 0)},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cas.VerifyReader(bytes.NewReader(tc.data), h)
			var got []byte
			buf := make([]byte, 512)
			var err error
			for {
				var n int
				n, err = r.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			if !errors.Is(err, cas.ErrCorrupt) {
				t.Fatalf("final error = %v, want ErrCorrupt", err)
			}
			if errors.Is(err, io.EOF) {
				t.Errorf("final error %v wraps io.EOF; a corrupt read must not look like a clean end", err)
			}
			// Every byte is passed through before the error.
			if !bytes.Equal(got, tc.data) {
				t.Errorf("read %d bytes before the error, want the %d of the input", len(got), len(tc.data))
			}
			if _, err := io.ReadAll(cas.VerifyReader(bytes.NewReader(tc.data), h)); !errors.Is(err, cas.ErrCorrupt) {
				t.Errorf("ReadAll error = %v, want ErrCorrupt", err)
			}
		})
	}
}

func ExampleSum() {
	h := cas.Sum([]byte{})
	fmt.Println(h)
	fmt.Println(h.Short())
	// Output:
	// af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262
	// af1349b9f5f9
}
