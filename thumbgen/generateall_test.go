package thumbgen

import (
	"bytes"
	"errors"
	"image/jpeg"
	"os"
	"runtime"
	"slices"
	"testing"
)

// defaultSizes are the sizes media pregenerates, largest last.
var defaultSizes = []Request{
	{Width: 32, Height: 32, Method: Crop}, {Width: 96, Height: 96, Method: Crop},
	{Width: 320, Height: 240, Method: Scale}, {Width: 640, Height: 480, Method: Scale},
	{Width: 800, Height: 600, Method: Scale},
}

// batchSources are sources GenerateAll is tried on: JPEGs decoded at one
// scale for all sizes and at several, EXIF-rotated, progressive, and the
// other formats.
func batchSources(t *testing.T) map[string][]byte {
	t.Helper()
	var big bytes.Buffer
	if err := jpeg.Encode(&big, noisyImage(1203, 905), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"noisy.jpeg":           big.Bytes(),
		"noisy-rotated.jpeg":   withOrientation(t, big.Bytes(), 6),
		"video-001.jpeg":       readTestdata(t, "video-001.jpeg"),
		"progressive.jpeg":     readTestdata(t, "video-001.progressive.jpeg"),
		"cmyk.jpeg":            readTestdata(t, "video-001.cmyk.jpeg"),
		"video-001.png":        readTestdata(t, "video-001.png"),
		"animated.gif":         readTestdata(t, "triangle-001.gif"),
		"video-001.lossy.webp": readTestdata(t, "video-001.lossy.webp"),
	}
}

// TestGenerateAllMatchesGenerate: each outcome of GenerateAll is Generate's
// bytes when the request alone would pick the scale GenerateAll decoded at
// (always, for a progressive JPEG, decoded once per scale), and within
// minScaledPSNR of them otherwise; an invalid request fails alone.
func TestGenerateAllMatchesGenerate(t *testing.T) {
	const minScaledPSNR = 30
	reqs := append([]Request{{Width: 0, Height: 5, Method: Crop}, {Width: 40, Height: 40, Method: Crop, Animated: true}}, defaultSizes...)
	for name, src := range batchSources(t) {
		h, err := sniff(src, Limits{}.WithDefaults(), 2)
		if err != nil {
			t.Fatal(err)
		}
		var plans []plan
		for _, req := range reqs[1:] {
			if _, ok := passThrough(src, &h, req); !ok {
				plans = append(plans, planFor(h.Width, h.Height, req))
			}
		}
		shared := sharedDenom(h.Format, plans)
		// A 150x103 source's own 1/2 decode is only 24-26 dB from its full
		// decode: the floor is for photo-sized sources.
		floor := float64(minScaledPSNR)
		if h.Width < 600 {
			floor = 22
		}
		out := GenerateAll(src, reqs, Limits{})
		if len(out) != len(reqs) {
			t.Fatalf("%s: %d outcomes for %d requests", name, len(out), len(reqs))
		}
		for i, req := range reqs {
			want, wantErr := Generate(src, req, Limits{})
			got := out[i]
			switch {
			case wantErr != nil || got.Err != nil:
				if !errors.Is(got.Err, ErrBadRequest) || !errors.Is(wantErr, ErrBadRequest) {
					t.Errorf("%s %+v: GenerateAll %v, Generate %v", name, req, got.Err, wantErr)
				}
			case got.Result.ContentType != want.ContentType || got.Result.Width != want.Width || got.Result.Height != want.Height:
				t.Errorf("%s %+v: GenerateAll %s %dx%d, Generate %s %dx%d", name, req,
					got.Result.ContentType, got.Result.Width, got.Result.Height, want.ContentType, want.Width, want.Height)
			case h.Format != "jpeg" || h.Progressive || jpegDenom(planFor(h.Width, h.Height, req)) == shared:
				if !bytes.Equal(got.Result.Data, want.Data) {
					t.Errorf("%s %+v: GenerateAll's bytes differ from Generate's at the same scale", name, req)
				}
			default:
				if p := psnr(toRGBA(decodeResult(t, got.Result)), toRGBA(decodeResult(t, want))); p < floor {
					t.Errorf("%s %+v: PSNR %.1f dB against Generate, want >= %.0f", name, req, p, floor)
				} else {
					t.Logf("%s %+v at 1/%d: %.1f dB", name, req, shared, p)
				}
			}
		}
	}
}

// TestGenerateAllUnreadableSource: a source that is not an image fails
// every valid request with ErrUnsupported.
func TestGenerateAllUnreadableSource(t *testing.T) {
	out := GenerateAll([]byte("hello"), []Request{{Width: 0, Height: 1, Method: Crop}, {Width: 9, Height: 9, Method: Scale}}, Limits{})
	if !errors.Is(out[0].Err, ErrBadRequest) || !errors.Is(out[1].Err, ErrUnsupported) {
		t.Errorf("outcomes %v, %v; want ErrBadRequest, ErrUnsupported", out[0].Err, out[1].Err)
	}
}

// TestDecodeMemoryAllBounds checks that DecodeMemoryAll is not below what
// GenerateAll allocates in all (which bounds its peak), and that for one
// request it is DecodeMemory.
func TestDecodeMemoryAllBounds(t *testing.T) {
	batches := [][]Request{
		defaultSizes,
		defaultSizes[:2],
		{{Width: 900, Height: 700, Method: Scale}, {Width: 16, Height: 16, Method: Crop}},
		{{Width: 40, Height: 40, Method: Crop, Animated: true}, {Width: 60, Height: 60, Method: Scale}},
	}
	for name, src := range batchSources(t) {
		info, err := Sniff(src, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, reqs := range batches {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			GenerateAll(src, reqs, Limits{})
			runtime.ReadMemStats(&after)
			got, est := after.TotalAlloc-before.TotalAlloc, DecodeMemoryAll(info, reqs)
			if int64(got) > est {
				t.Errorf("%s %+v: allocated %d bytes, DecodeMemoryAll says %d", name, reqs, got, est)
			}
		}
		if got, want := DecodeMemoryAll(info, defaultSizes[4:]), DecodeMemory(info, defaultSizes[4]); got != want {
			t.Errorf("%s: DecodeMemoryAll of one request %d, DecodeMemory %d", name, got, want)
		}
	}
}

// BenchmarkGenerateAll12MP makes media's default sizes of a 12 MP JPEG:
// with GenerateAll (one decode, at the largest size's scale) and with one
// Generate a size (a decode each, each at its own scale).
func BenchmarkGenerateAll12MP(b *testing.B) {
	src := photo12MP()
	b.Run("GenerateAll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, o := range GenerateAll(src, defaultSizes, Limits{}) {
				if o.Err != nil {
					b.Fatal(o.Err)
				}
			}
		}
	})
	b.Run("Generate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, req := range defaultSizes {
				if _, err := Generate(src, req, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// TestProgressiveDecodesPerScale: for a progressive JPEG each size is made
// from a decode at its own scale (a 1/8 or 1/4 decode skips most of the
// work), so every output is the very one Generate makes alone, and the size
// chosen first comes first.
func TestProgressiveDecodesPerScale(t *testing.T) {
	src, err := os.ReadFile("jpegscale/testdata/progressive/420-800x600.jpg")
	if err != nil {
		t.Fatal(err)
	}
	// 320x240 needs 1/2 of 800x600; a 96x96 crop of its 600x600 centre 1/4.
	reqs := []Request{{Width: 320, Height: 240, Method: Scale}, {Width: 96, Height: 96, Method: Crop}}
	var order []int
	var out [2]Outcome
	GenerateEach(src, reqs, Limits{}, func(left []int) int { return left[len(left)-1] }, func(i int, o Outcome) {
		order = append(order, i)
		out[i] = o
	})
	if !slices.Equal(order, []int{1, 0}) {
		t.Errorf("emitted in order %v, want the chosen 96x96 first", order)
	}
	for i, req := range reqs {
		alone, err := Generate(src, req, Limits{})
		if err != nil || out[i].Err != nil {
			t.Fatalf("%+v: %v / %v", req, err, out[i].Err)
		}
		if !bytes.Equal(out[i].Result.Data, alone.Data) {
			t.Errorf("%+v: not the bytes Generate makes alone (made from another scale's decode)", req)
		}
	}
}
