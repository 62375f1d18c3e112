package jpegscale

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// stdTestdataDirs are the directories of the standard library's image and
// x/image packages, asked of the go command once per test binary.
var stdTestdataDirs = sync.OnceValues(func() ([]string, error) {
	var dirs []string
	for _, args := range [][]string{{"env", "GOROOT"}, {"list", "-m", "-f", "{{.Dir}}", "golang.org/x/image"}} {
		out, err := exec.Command("go", args...).Output()
		if err != nil {
			return nil, fmt.Errorf("go %s: %v", strings.Join(args, " "), err)
		}
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	dirs[0] = filepath.Join(dirs[0], "src", "image")
	return dirs, nil
})

// testJPEGs returns the JPEGs of the standard library's and x/image's
// testdata, by file name.
func testJPEGs(t testing.TB) map[string][]byte {
	t.Helper()
	dirs, err := stdTestdataDirs()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, dir := range dirs {
		readGlob(t, files, filepath.Join(dir, "testdata", "*.jp*g"))
	}
	if len(files) < 20 {
		t.Fatalf("found %d test JPEGs in %v", len(files), dirs)
	}
	return files
}

// readGlob reads every file matching pattern into files, by file name.
func readGlob(t testing.TB, files map[string][]byte, pattern string) {
	t.Helper()
	names, _ := filepath.Glob(pattern)
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(name)] = b
	}
}

// encodedJPEGs returns JPEGs made by image/jpeg.Encode (4:2:0 colour and
// grayscale), at sizes that are not multiples of the MCU.
func encodedJPEGs(t testing.TB) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, size := range []image.Point{{1, 1}, {7, 300}, {37, 23}, {129, 65}, {250, 171}} {
		for _, gray := range []bool{false, true} {
			m := photo(size.X, size.Y, 0.3, gray)
			var b bytes.Buffer
			if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
				t.Fatal(err)
			}
			name := "rgb"
			if gray {
				name = "gray"
			}
			files[name+"-"+size.String()] = b.Bytes()
		}
	}
	return files
}

// photo is a photo-like w×h image: smooth gradients, an edge and noise of
// the given strength (0 to 1), deterministic.
func photo(w, h int, noise float64, gray bool) image.Image {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			v := 128 + 90*math.Sin(3*fx+2*fy) + 40*noise*rng.NormFloat64()
			if x > w/3 && y > h/2 {
				v -= 50
			}
			c := func(f float64) uint8 { return uint8(min(max(f, 0), 255)) }
			m.SetRGBA(x, y, color.RGBA{c(v), c(255 - v*fx), c(64 + v*fy), 255})
		}
	}
	if !gray {
		return m
	}
	g := image.NewGray(m.Rect)
	draw.Draw(g, g.Rect, m, image.Point{}, draw.Src)
	return g
}

func allJPEGs(t *testing.T) map[string][]byte {
	files := testJPEGs(t)
	for name, b := range encodedJPEGs(t) {
		files[name] = b
	}
	return files
}

func TestDecodeDenom1IsStd(t *testing.T) {
	for name, src := range allJPEGs(t) {
		want, wantErr := jpeg.Decode(bytes.NewReader(src))
		got, err := Decode(bytes.NewReader(src), 1)
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Errorf("%s: error %v, image/jpeg says %v", name, err, wantErr)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: denom 1 differs from image/jpeg", name)
		}
	}
}

// The least PSNR, in dB, of a scaled decode against image/jpeg's decode
// averaged over denom×denom squares, plane by plane. The reduced inverse DCT
// is that average computed from the coefficients, so the differences are
// rounding and clipping (the full decode clips each pixel before averaging):
// measured, the lowest is 46.0 dB (the truncated progressive image at denom
// 4); many planes match exactly.
// Images that image/jpeg returns interleaved (RGB and CMYK JPEGs, whose
// subsampled channels it interleaves by nearest neighbour) are compared as
// RGBA: a scaled pixel's subsampled channels then average twice the area
// that the reference does, so the bound is lower (lowest measured 19.7 dB, for
// the subsampled RGB test image at denom 8; the CMYK one gives 32 dB).
const (
	minPlanePSNR       = 44
	minInterleavedPSNR = 18
)

func TestDecodeScaled(t *testing.T) {
	for name, src := range allJPEGs(t) {
		full, err := jpeg.Decode(bytes.NewReader(src))
		if err != nil {
			continue // the truncated progressive file: checked against std above
		}
		for _, denom := range []int{2, 4, 8} {
			got, err := Decode(bytes.NewReader(src), denom)
			if err != nil {
				t.Errorf("%s/%d: %v", name, denom, err)
				continue
			}
			b := full.Bounds()
			wantSize := image.Pt((b.Dx()+denom-1)/denom, (b.Dy()+denom-1)/denom)
			if got.Bounds() != (image.Rectangle{Max: wantSize}) {
				t.Errorf("%s/%d: bounds %v, want %v", name, denom, got.Bounds(), wantSize)
				continue
			}
			if reflect.TypeOf(got) != reflect.TypeOf(full) {
				t.Errorf("%s/%d: %T, image/jpeg gives %T", name, denom, got, full)
				continue
			}
			p, bound := scaledPSNR(got, full, denom)
			if p < bound {
				t.Errorf("%s/%d: PSNR %.1f dB against the box average, want >= %.0f", name, denom, p, bound)
			} else if testing.Verbose() {
				t.Logf("%s/%d: %.1f dB", name, denom, p)
			}
		}
	}
}

// scaledPSNR compares got with full averaged over denom×denom squares and
// returns the lowest PSNR of its planes and the bound that applies. Only the
// full squares count: a last, partial one is the average of a whole block
// in the coded image, which includes the encoder's padding.
func scaledPSNR(got, full image.Image, denom int) (float64, float64) {
	type plane struct {
		pix    []uint8
		stride int
		r      image.Rectangle
	}
	var a, b []plane
	switch f := full.(type) {
	case *image.Gray:
		g := got.(*image.Gray)
		a, b = []plane{{g.Pix, g.Stride, g.Rect}}, []plane{{f.Pix, f.Stride, f.Rect}}
	case *image.YCbCr:
		g := got.(*image.YCbCr)
		gc, fc := chromaRect(g), chromaRect(f)
		a = []plane{{g.Y, g.YStride, g.Rect}, {g.Cb, g.CStride, gc}, {g.Cr, g.CStride, gc}}
		b = []plane{{f.Y, f.YStride, f.Rect}, {f.Cb, f.CStride, fc}, {f.Cr, f.CStride, fc}}
	default:
		return interiorPSNR(toRGBA(got), toRGBA(full), denom), minInterleavedPSNR
	}
	lowest := math.Inf(1)
	for i := range a {
		// A plane as a gray image in the R channel of an RGBA.
		asRGBA := func(p plane) *image.RGBA {
			m := image.NewRGBA(image.Rectangle{Max: p.r.Size()})
			for y := range p.r.Dy() {
				for x := range p.r.Dx() {
					v := p.pix[y*p.stride+x]
					m.SetRGBA(x, y, color.RGBA{v, v, v, 255})
				}
			}
			return m
		}
		lowest = min(lowest, interiorPSNR(asRGBA(a[i]), asRGBA(b[i]), denom))
	}
	return lowest, minPlanePSNR
}

// interiorPSNR compares the full squares of got, scaled by denom, with
// full averaged over them.
func interiorPSNR(got, full *image.RGBA, denom int) float64 {
	r := image.Rect(0, 0, full.Rect.Dx()/denom, full.Rect.Dy()/denom)
	return psnr(toRGBA(got.SubImage(r)), toRGBA(boxAverage(full, denom).SubImage(r)))
}

// chromaRect is the size of m's chroma planes.
func chromaRect(m *image.YCbCr) image.Rectangle {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		w = (w + 1) / 2
	case image.YCbCrSubsampleRatio420:
		w, h = (w+1)/2, (h+1)/2
	case image.YCbCrSubsampleRatio440:
		h = (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		w = (w + 3) / 4
	case image.YCbCrSubsampleRatio410:
		w, h = (w+3)/4, (h+1)/2
	}
	return image.Rect(0, 0, w, h)
}

func TestDecodeConfigMatchesStd(t *testing.T) {
	for name, src := range allJPEGs(t) {
		want, wantErr := jpeg.DecodeConfig(bytes.NewReader(src))
		got, err := DecodeConfig(bytes.NewReader(src))
		if got != want || (err == nil) != (wantErr == nil) {
			t.Errorf("%s: %+v, %v; image/jpeg says %+v, %v", name, got, err, want, wantErr)
		}
	}
}

func TestDecodeBadDenom(t *testing.T) {
	src := encodedJPEGs(t)["rgb-(37,23)"]
	for _, denom := range []int{-1, 0, 3, 16} {
		if _, err := Decode(bytes.NewReader(src), denom); err == nil {
			t.Errorf("denom %d: no error", denom)
		}
	}
}

func toRGBA(m image.Image) *image.RGBA {
	out := image.NewRGBA(image.Rectangle{Max: m.Bounds().Size()})
	draw.Draw(out, out.Rect, m, m.Bounds().Min, draw.Src)
	return out
}

// boxAverage averages the k×k squares of m; the last row and column of
// squares average the pixels there are.
func boxAverage(m *image.RGBA, k int) *image.RGBA {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	out := image.NewRGBA(image.Rect(0, 0, (w+k-1)/k, (h+k-1)/k))
	for oy := range out.Rect.Dy() {
		for ox := range out.Rect.Dx() {
			var sum [4]int
			n := 0
			for y := oy * k; y < min(h, (oy+1)*k); y++ {
				for x := ox * k; x < min(w, (ox+1)*k); x++ {
					for c := range 4 {
						sum[c] += int(m.Pix[m.PixOffset(x, y)+c])
					}
					n++
				}
			}
			for c := range 4 {
				out.Pix[out.PixOffset(ox, oy)+c] = uint8((sum[c] + n/2) / n)
			}
		}
	}
	return out
}

// psnr compares the RGB channels of two images of the same size.
func psnr(a, b *image.RGBA) float64 {
	var se float64
	for i := range a.Pix {
		if i%4 == 3 {
			continue
		}
		d := float64(a.Pix[i]) - float64(b.Pix[i])
		se += d * d
	}
	mse := se / float64(max(len(a.Pix)*3/4, 1))
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}
