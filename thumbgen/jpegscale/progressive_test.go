package jpegscale

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/progressive.golden from the decoder")

// progressiveJPEGs returns the progressive JPEGs of the standard library's
// and x/image's testdata and of testdata/progressive, by file name.
func progressiveJPEGs(t testing.TB) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for name, src := range testJPEGs(t) {
		if h, err := ReadHeader(bytes.NewReader(src)); err == nil && h.Progressive {
			files[name] = src
		}
	}
	names, _ := filepath.Glob(filepath.Join("testdata", "progressive", "*.jpg"))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(name)] = b
	}
	if len(files) < 15 {
		t.Fatalf("found %d progressive test JPEGs", len(files))
	}
	return files
}

// decodeDigest is a digest of what Decode returns for src at denom: the
// image's type and every field (planes, strides, rectangle), or that it
// failed (a skipped scan cut short fails reading bytes, where decoding it
// failed reading Huffman codes: the message may differ).
func decodeDigest(src []byte, denom int) string {
	m, err := Decode(bytes.NewReader(src), denom)
	if err != nil {
		return "error"
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%T %x", m, sha256.Sum256(b))
}

// truncationDigest is a digest of decodeDigest of every prefix of src a
// 64th of its length apart.
func truncationDigest(src []byte, denom int) string {
	h := sha256.New()
	step := max(len(src)/64, 1)
	for n := 0; n < len(src); n += step {
		fmt.Fprintln(h, n, decodeDigest(src[:n], denom))
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestProgressiveGolden checks that every progressive test file, whole and
// truncated, decodes at each denom to what the decoder gave before scans
// were skipped (testdata/progressive.golden, written by that decoder with
// -update): skipping a scan drops only work whose result was never read.
func TestProgressiveGolden(t *testing.T) {
	var lines []string
	for name, src := range progressiveJPEGs(t) {
		for _, denom := range []int{1, 2, 4, 8} {
			lines = append(lines,
				fmt.Sprintf("%s %d whole %s", name, denom, decodeDigest(src, denom)),
				fmt.Sprintf("%s %d truncated %s", name, denom, truncationDigest(src, denom)))
		}
	}
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "progressive.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := strings.Split(string(want), "\n")
	for i, line := range strings.Split(got, "\n") {
		if i >= len(wantLines) || line != wantLines[i] {
			t.Errorf("got  %s\nwant %s", line, wantLines[min(i, len(wantLines)-1)])
		}
	}
}
