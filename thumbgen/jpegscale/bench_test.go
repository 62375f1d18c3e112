package jpegscale

import (
	"bytes"
	"image"
	"image/jpeg"
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
