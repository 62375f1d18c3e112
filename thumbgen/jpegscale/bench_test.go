package jpegscale

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"sync"
	"testing"
)

// photo12MP is a 4000x3000 photo-like JPEG, quality 90, 4:2:0.
var photo12MP = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, photo(4000, 3000, 0.15, false), &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return b.Bytes()
})

// BenchmarkDecode12MP compares image/jpeg with Decode at each denom.
func BenchmarkDecode12MP(b *testing.B) {
	src := photo12MP()
	decoders := []struct {
		name string
		fn   func() (image.Image, error)
	}{
		{"std", func() (image.Image, error) { return jpeg.Decode(bytes.NewReader(src)) }},
	}
	for _, denom := range []int{1, 2, 4, 8} {
		decoders = append(decoders, struct {
			name string
			fn   func() (image.Image, error)
		}{"denom" + string(rune('0'+denom)), func() (image.Image, error) { return Decode(bytes.NewReader(src), denom) }})
	}
	for _, dec := range decoders {
		b.Run(dec.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if _, err := dec.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// photoBlocks returns the luma blocks of a 1000x752 photo-like image with
// the given noise as a quality 90 encoder quantizes them (natural order),
// and that table.
func photoBlocks(noise float64) ([]block, *block) {
	lum := [64]int32{
		16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
		14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
		18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
		49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
	}
	var q block
	for k, v := range lum {
		q[k] = max((v*20+50)/100, 1)
	}
	m := photo(1000, 752, noise, true).(*image.Gray)
	var blocks []block
	for by := 0; by < 752; by += 8 {
		for bx := 0; bx < 1000; bx += 8 {
			var b block
			for k := range b {
				var s float64
				for y := range 8 {
					for x := range 8 {
						s += dctWeight(k%8, x) * dctWeight(k/8, y) * (float64(m.Pix[(by+y)*m.Stride+bx+x]) - 128)
					}
				}
				b[k] = int32(math.Round(s / float64(q[k])))
			}
			blocks = append(blocks, b)
		}
	}
	return blocks, &q
}

// BenchmarkReducedIDCT times the reduced inverse DCTs on photoBlocks of a
// noisy photo (most blocks have high frequencies, as BenchmarkDecode12MP's)
// and of a smooth one (most blocks have a few low frequencies or none).
func BenchmarkReducedIDCT(b *testing.B) {
	for _, noise := range []float64{0.15, 0} {
		blocks, q := photoBlocks(noise)
		for _, r := range []struct {
			name string
			n    int
			idct func(b, q *block, dst []byte, stride int)
		}{{"4x4", 4, idct4x4}, {"2x2", 2, idct2x2}} {
			b.Run(fmt.Sprintf("%s/noise%.2f", r.name, noise), func(b *testing.B) {
				dst := make([]byte, 8*r.n)
				for b.Loop() {
					for i := range blocks {
						r.idct(&blocks[i], q, dst, 8)
					}
				}
			})
		}
	}
}

// BenchmarkDecodeProgressive decodes an 800x600 progressive 4:2:0 JPEG
// (testdata/progressive/420-800x600.jpg) at each denom.
func BenchmarkDecodeProgressive(b *testing.B) {
	src, err := os.ReadFile("testdata/progressive/420-800x600.jpg")
	if err != nil {
		b.Fatal(err)
	}
	for _, denom := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("denom%d", denom), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if _, err := Decode(bytes.NewReader(src), denom); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
