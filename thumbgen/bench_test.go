package thumbgen

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"golang.org/x/image/draw"
)

var photo12MP = sync.OnceValue(func() []byte {
	// A 4000x3000 "photo": smooth colour gradients, a few sharp edges, fine
	// stripes (where aliasing shows) and sensor-like noise.
	const w, h = 4000, 3000
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	rng := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/w, float64(y)/h
			v := 128 + 80*math.Sin(3*fx+2*fy) + 30*math.Sin(40*fx*fy)
			if (x/500+y/500)%2 == 0 {
				v += 25
			}
			if x > 2500 && x < 3500 && y > 1000 && y < 2000 {
				v += 40 * math.Sin(float64(x+y)*0.9)
			}
			v += rng.NormFloat64() * 6
			m.Y[y*m.YStride+x] = uint8(min(max(v, 0), 255))
		}
	}
	for y := range h / 2 {
		for x := range w / 2 {
			fx, fy := float64(2*x)/w, float64(2*y)/h
			m.Cb[y*m.CStride+x] = uint8(128 + 60*math.Cos(2*fx))
			m.Cr[y*m.CStride+x] = uint8(128 + 60*math.Sin(3*fy))
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return b.Bytes()
})

func BenchmarkGenerateJPEG12MP(b *testing.B) {
	src := photo12MP()
	for _, bc := range []struct {
		name string
		req  Request
	}{
		{"scale800x600", Request{Width: 800, Height: 600, Method: "scale"}},
		{"crop96x96", Request{Width: 96, Height: 96, Method: "crop"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			info, err := Sniff(src, Limits{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if _, err := Generate(src, bc.req, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "thumbnails/s")
			b.ReportMetric(float64(DecodeMemory(info, bc.req))/(1<<20), "estMiB")
		})
	}
}

// The resampling strategies compared in doc.go.
var strategies = []struct {
	name string
	fn   func(src image.Image, sr image.Rectangle, dw, dh int) *image.RGBA
}{
	{"CatmullRom", direct(draw.CatmullRom)},
	{"BiLinear", direct(draw.BiLinear)},
	{"ApproxBiLinear", direct(draw.ApproxBiLinear)},
	{"Box+CatmullRom", resample},
	{"Box+BiLinear", func(src image.Image, sr image.Rectangle, dw, dh int) *image.RGBA {
		if k := min(sr.Dx()/(2*dw), sr.Dy()/(2*dh)); k >= 2 {
			m := boxReduce(src, sr, k)
			src, sr = m, m.Rect
		}
		return direct(draw.BiLinear)(src, sr, dw, dh)
	}},
	{"Halve+CatmullRom", func(src image.Image, sr image.Rectangle, dw, dh int) *image.RGBA {
		src, sr = halve(src, sr, dw, dh)
		return direct(draw.CatmullRom)(src, sr, dw, dh)
	}},
	{"Halve+BiLinear", func(src image.Image, sr image.Rectangle, dw, dh int) *image.RGBA {
		src, sr = halve(src, sr, dw, dh)
		return direct(draw.BiLinear)(src, sr, dw, dh)
	}},
	{"ApproxBiLinear2x+CatmullRom", func(src image.Image, sr image.Rectangle, dw, dh int) *image.RGBA {
		if sr.Dx() > 2*dw && sr.Dy() > 2*dh {
			mid := image.NewRGBA(image.Rect(0, 0, 2*dw, 2*dh))
			draw.ApproxBiLinear.Scale(mid, mid.Rect, src, sr, draw.Src, nil)
			src, sr = mid, mid.Rect
		}
		return direct(draw.CatmullRom)(src, sr, dw, dh)
	}},
}

func direct(s draw.Scaler) func(image.Image, image.Rectangle, int, int) *image.RGBA {
	return func(src image.Image, sr image.Rectangle, dw, dh int) *image.RGBA {
		dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
		s.Scale(dst, dst.Rect, src, sr, draw.Src, nil)
		return dst
	}
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
	mse := se / float64(len(a.Pix)*3/4)
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

// BenchmarkResample times each strategy on the decoded 12 MP photo and
// reports its PSNR against direct CatmullRom, the quality reference.
func BenchmarkResample(b *testing.B) {
	src, err := jpeg.Decode(bytes.NewReader(photo12MP()))
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []struct {
		name   string
		sr     image.Rectangle
		dw, dh int
	}{
		{"800x600", src.Bounds(), 800, 600},
		{"96x96", image.Rect(500, 0, 3500, 3000), 96, 96},
	} {
		ref := strategies[0].fn(src, size.sr, size.dw, size.dh)
		for _, s := range strategies {
			b.Run(s.name+"/"+size.name, func(b *testing.B) {
				b.ReportAllocs()
				var out *image.RGBA
				for b.Loop() {
					out = s.fn(src, size.sr, size.dw, size.dh)
				}
				b.ReportMetric(psnr(out, ref), "dB")
			})
		}
	}
}
