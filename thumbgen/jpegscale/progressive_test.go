package jpegscale

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
	readGlob(t, files, filepath.Join("testdata", "progressive", "*.jpg"))
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

// sosSegments returns, for each SOS segment of src, Ss and the offsets of
// its entropy-coded data: from the end of the segment header to the next
// marker that is not a restart marker.
func sosSegments(t *testing.T, src []byte) (ss []byte, start, end []int) {
	t.Helper()
	for i := 2; i+4 <= len(src); {
		if src[i] != 0xff {
			t.Fatalf("no marker at %d", i)
		}
		n := int(src[i+2])<<8 | int(src[i+3])
		if src[i+1] == 0xd9 {
			break
		}
		i += 2 + n
		if src[i-n-1] != 0xda {
			continue
		}
		nComp := int(src[i-n+2])
		ss = append(ss, src[i-n+3+2*nComp])
		start = append(start, i)
		for i+1 < len(src) && (src[i] != 0xff || src[i+1] == 0 || 0xd0 <= src[i+1] && src[i+1] <= 0xd7) {
			i++
		}
		end = append(end, i)
	}
	return ss, start, end
}

// TestSkippedScansAreNotRead overwrites the data of every AC scan with
// bytes that do not decode and checks that denom 8 still gives the image
// it gives for the intact file, while denom 4 fails.
func TestSkippedScansAreNotRead(t *testing.T) {
	for _, name := range []string{"420.jpg", "444-restart.jpg", "gray.jpg"} {
		src, err := os.ReadFile(filepath.Join("testdata", "progressive", name))
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(src)
		ss, start, end := sosSegments(t, bad)
		acScans := 0
		for i := range ss {
			if ss[i] == 0 {
				continue
			}
			acScans++
			for k := start[i]; k < end[i]; k++ {
				if bad[k] != 0xff && (k == 0 || bad[k-1] != 0xff) {
					bad[k] = 0xfe
				}
			}
		}
		if acScans == 0 {
			t.Fatalf("%s: no AC scans", name)
		}
		if got, want := decodeDigest(bad, 8), decodeDigest(src, 8); got != want {
			t.Errorf("%s: AC scans overwritten: denom 8 gives %s, want %s", name, got, want)
		}
		if got, want := decodeDigest(bad, 4), decodeDigest(src, 4); got == want {
			t.Errorf("%s: AC scans overwritten: denom 4 gives what the intact file does", name)
		}
	}
}

// TestRestartInACScan: image/jpeg rejects progressive 4:2:0 JPEGs whose AC
// scans have restart markers (it counts them per interleaved MCU, not per
// block), and so do denoms 1, 2 and 4; denom 8 skips those scans and gives
// what it gives for the same coefficients without restart markers.
func TestRestartInACScan(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "restart-ac-420.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile(filepath.Join("testdata", "progressive", "420.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, denom := range []int{1, 2, 4} {
		if _, err := Decode(bytes.NewReader(src), denom); err == nil {
			t.Errorf("denom %d decodes", denom)
		}
	}
	if got, want := decodeDigest(src, 8), decodeDigest(plain, 8); got != want || want == "error" {
		t.Errorf("denom 8 gives %s, without restart markers %s", got, want)
	}
}

// TestProgressiveDenom8Memory checks that denom 8 keeps one coefficient a
// block: decoding an 800x600 4:2:0 JPEG allocates less than its 64
// coefficients a block would take (800·600·1.5 coefficients of 4 bytes).
func TestProgressiveDenom8Memory(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "progressive", "420-800x600.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Decode(bytes.NewReader(src), 8); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(800*600*3/2*4/8); got > limit {
		t.Errorf("denom 8 allocated %d bytes, want under %d", got, limit)
	}
}
