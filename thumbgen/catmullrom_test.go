package thumbgen

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/image/draw"
)

// photoLike is a w×h test image: gradients, a hard edge, fine stripes and
// noise, as YCbCr of the given subsampling, RGBA with varying alpha, opaque
// RGBA, or Gray.
func photoLike(kind string, r image.Rectangle) image.Image {
	rng := rand.New(rand.NewPCG(3, 4))
	at := func(x, y, ch int) uint8 {
		fx, fy := float64(x-r.Min.X)/float64(r.Dx()), float64(y-r.Min.Y)/float64(r.Dy())
		v := 128 + 70*math.Sin(3*fx+2*fy+float64(ch)) + 20*math.Sin(25*fx*fy)
		if x-r.Min.X > r.Dx()/2 {
			v += 30
		}
		if (x+y)%3 == 0 {
			v -= 15
		}
		return uint8(min(max(v+rng.NormFloat64()*8, 0), 255))
	}
	switch kind {
	case "rgba", "opaque":
		m := image.NewRGBA(r)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				a := uint16(255)
				if kind == "rgba" {
					a = uint16(at(x, y, 3))
				}
				m.SetRGBA(x, y, color.RGBA{
					uint8(uint16(at(x, y, 0)) * a / 255), uint8(uint16(at(x, y, 1)) * a / 255),
					uint8(uint16(at(x, y, 2)) * a / 255), uint8(a),
				})
			}
		}
		return m
	case "gray":
		m := image.NewGray(r)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				m.SetGray(x, y, color.Gray{at(x, y, 0)})
			}
		}
		return m
	}
	ratios := map[string]image.YCbCrSubsampleRatio{
		"444": image.YCbCrSubsampleRatio444, "422": image.YCbCrSubsampleRatio422,
		"420": image.YCbCrSubsampleRatio420, "440": image.YCbCrSubsampleRatio440,
		"411": image.YCbCrSubsampleRatio411, "410": image.YCbCrSubsampleRatio410,
	}
	m := image.NewYCbCr(r, ratios[kind])
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			m.Y[m.YOffset(x, y)] = at(x, y, 0)
			m.Cb[m.COffset(x, y)] = at(x, y, 1)
			m.Cr[m.COffset(x, y)] = at(x, y, 2)
		}
	}
	return m
}

// psnrRGBA compares all four channels of two images of the same size.
func psnrRGBA(a, b *image.RGBA) float64 {
	var se float64
	for i := range a.Pix {
		d := float64(a.Pix[i]) - float64(b.Pix[i])
		se += d * d
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(len(a.Pix))/se)
}

// TestCatmullRomMatchesDraw compares catmullRom with x/image/draw's
// CatmullRom for every source type it knows, shrinking, enlarging, at 1:1,
// by small and odd ratios, from regions and images not at the origin.
func TestCatmullRomMatchesDraw(t *testing.T) {
	const minPSNR = 40
	kinds := []string{"444", "422", "420", "440", "411", "410", "rgba", "opaque", "gray"}
	cases := []struct {
		bounds, sr image.Rectangle
		dw, dh     int
	}{
		{image.Rect(0, 0, 320, 180), image.Rect(0, 0, 320, 180), 200, 113},        // 1.6:1
		{image.Rect(0, 0, 333, 211), image.Rect(0, 0, 333, 211), 97, 61},          // odd, ~3.4:1
		{image.Rect(0, 0, 101, 77), image.Rect(0, 0, 101, 77), 101, 77},           // 1:1
		{image.Rect(0, 0, 101, 77), image.Rect(0, 0, 101, 77), 93, 71},            // slightly smaller
		{image.Rect(0, 0, 64, 48), image.Rect(0, 0, 64, 48), 150, 61},             // enlarge
		{image.Rect(0, 0, 300, 200), image.Rect(37, 11, 251, 190), 77, 83},        // sr inside
		{image.Rect(13, 7, 260, 190), image.Rect(20, 30, 255, 171), 120, 70},      // odd Min
		{image.Rect(-40, -20, 200, 100), image.Rect(-33, -15, 180, 99), 1000, 20}, // stretch
		{image.Rect(0, 0, 400, 9), image.Rect(0, 0, 400, 9), 5, 3},                // thin
	}
	for _, kind := range kinds {
		for _, c := range cases {
			name := fmt.Sprintf("%s/%v/%v/%dx%d", kind, c.bounds, c.sr, c.dw, c.dh)
			src := photoLike(kind, c.bounds)
			got := catmullRom(src, c.sr, c.dw, c.dh)
			want := image.NewRGBA(image.Rect(0, 0, c.dw, c.dh))
			draw.CatmullRom.Scale(want, want.Rect, src, c.sr, draw.Src, nil)
			if got.Rect != want.Rect {
				t.Fatalf("%s: bounds %v, want %v", name, got.Rect, want.Rect)
			}
			p := psnrRGBA(got, want)
			t.Logf("%s: %.1f dB", name, p)
			if p < minPSNR {
				t.Errorf("%s: PSNR %.1f dB against draw.CatmullRom, want >= %d", name, p, minPSNR)
			}
		}
	}
}

// TestCatmullRomTiny makes 1×1 and other tiny images from tiny and large
// sources without panicking, at the size asked for.
func TestCatmullRomTiny(t *testing.T) {
	for _, kind := range []string{"420", "rgba", "gray"} {
		for _, s := range []image.Point{{1, 1}, {2, 1}, {1, 3}, {50, 40}} {
			for _, d := range []image.Point{{1, 1}, {3, 1}, {1, 2}, {60, 1}} {
				src := photoLike(kind, image.Rect(0, 0, s.X, s.Y))
				got := catmullRom(src, src.Bounds(), d.X, d.Y)
				if got.Rect != image.Rect(0, 0, d.X, d.Y) {
					t.Errorf("%s %v -> %v: bounds %v", kind, s, d, got.Rect)
				}
			}
		}
	}
}

// TestCatmullRomFlat keeps a flat colour exactly: the weights of each
// output sum to exactly one.
func TestCatmullRomFlat(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 97, 53))
	stddrawFill(src, color.RGBA{200, 100, 30, 255})
	got := catmullRom(src, src.Rect, 31, 170)
	for i := 0; i < len(got.Pix); i += 4 {
		if p := got.Pix[i : i+4]; p[0] != 200 || p[1] != 100 || p[2] != 30 || p[3] != 255 {
			t.Fatalf("pixel %d: %v, want [200 100 30 255]", i/4, p)
		}
	}
}

func stddrawFill(m *image.RGBA, c color.RGBA) {
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
	}
}

// TestCatmullRomOtherTypes leaves types it does not know to draw.CatmullRom:
// the result is draw's, byte for byte.
func TestCatmullRomOtherTypes(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	got := catmullRom(src, src.Rect, 17, 13)
	want := image.NewRGBA(image.Rect(0, 0, 17, 13))
	draw.CatmullRom.Scale(want, want.Rect, src, src.Rect, draw.Src, nil)
	if !bytes.Equal(got.Pix, want.Pix) {
		t.Error("NRGBA source: result differs from draw.CatmullRom")
	}
}

// BenchmarkResample720p times the last resampling step of an 800x450
// thumbnail of a 5120x2880 photo decoded at 1/4 (1280x720 4:2:0), draw's
// CatmullRom against ours, and reports ours' PSNR against draw's.
func BenchmarkResample720p(b *testing.B) {
	full, err := jpeg.Decode(bytes.NewReader(photo12MP()))
	if err != nil {
		b.Fatal(err)
	}
	src := image.NewYCbCr(image.Rect(0, 0, 1280, 720), image.YCbCrSubsampleRatio420)
	m := full.(*image.YCbCr)
	for y := range 720 {
		copy(src.Y[y*src.YStride:][:1280], m.Y[m.YOffset(0, y):])
	}
	for y := range 360 {
		copy(src.Cb[y*src.CStride:][:640], m.Cb[m.COffset(0, 2*y):])
		copy(src.Cr[y*src.CStride:][:640], m.Cr[m.COffset(0, 2*y):])
	}
	ref := direct(draw.CatmullRom)(src, src.Rect, 800, 450)
	for _, s := range []struct {
		name string
		fn   func(image.Image, image.Rectangle, int, int) *image.RGBA
	}{
		{"draw", direct(draw.CatmullRom)},
		{"ours", catmullRom},
	} {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			var out *image.RGBA
			for b.Loop() {
				out = s.fn(src, src.Rect, 800, 450)
			}
			b.ReportMetric(psnrRGBA(out, ref), "dB")
		})
	}
}
