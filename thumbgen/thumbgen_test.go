package thumbgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	stddraw "image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mxcas/mxcas/testkit"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeResult decodes a Result and checks its type and size against the
// bytes.
func decodeResult(t *testing.T, res Result) image.Image {
	t.Helper()
	if len(res.Data) == 0 {
		t.Fatal("empty Data")
	}
	var (
		m   image.Image
		err error
	)
	switch res.ContentType {
	case "image/jpeg":
		m, err = jpeg.Decode(bytes.NewReader(res.Data))
	case "image/png":
		m, err = png.Decode(bytes.NewReader(res.Data))
	case "image/gif":
		m, err = gif.Decode(bytes.NewReader(res.Data))
	default:
		t.Fatalf("ContentType %q", res.ContentType)
	}
	if err != nil {
		t.Fatalf("decode %s: %v", res.ContentType, err)
	}
	if got := m.Bounds().Size(); got != image.Pt(res.Width, res.Height) {
		t.Fatalf("decoded size %v, Result says %dx%d", got, res.Width, res.Height)
	}
	return m
}

var testImages = []struct {
	name   string
	format string
	w, h   int
	thumb  string // content type of a reduced thumbnail
}{
	{"video-001.jpeg", "jpeg", 150, 103, "image/jpeg"},
	{"video-001.progressive.jpeg", "jpeg", 150, 103, "image/jpeg"},
	{"video-001.cmyk.jpeg", "jpeg", 150, 103, "image/jpeg"},
	{"video-005.gray.jpeg", "jpeg", 150, 103, "image/jpeg"},
	{"video-001.png", "png", 150, 103, "image/png"},
	{"gopher-doc.with-alpha.png", "png", 75, 100, "image/png"},
	{"video-001.gif", "gif", 150, 103, "image/png"},
	{"video-001.interlaced.gif", "gif", 150, 103, "image/png"},
	{"triangle-001.gif", "gif", 256, 128, "image/png"},
	{"video-001.lossy.webp", "webp", 150, 103, "image/jpeg"},
	{"yellow_rose.lossy-with-alpha.webp", "webp", 400, 301, "image/png"},
	{"gopher-doc.with-alpha.lossless.webp", "webp", 75, 100, "image/png"},
	{"video-001.bmp", "bmp", 150, 103, "image/jpeg"},
	{"yellow_rose-small.bmp", "bmp", 16, 12, "image/jpeg"},
	{"video-001.tiff", "tiff", 150, 103, "image/jpeg"},
	{"video-001-gray-16bit.tiff", "tiff", 150, 103, "image/jpeg"},
	{"bw-deflate.tiff", "tiff", 153, 55, "image/jpeg"},
}

func TestSniff(t *testing.T) {
	for _, tc := range testImages {
		got, err := Sniff(readTestdata(t, tc.name), Limits{})
		want := Info{Format: tc.format, Width: tc.w, Height: tc.h, Progressive: strings.Contains(tc.name, "progressive")}
		if err != nil || got != want {
			t.Errorf("Sniff(%s) = %+v, %v; want %+v", tc.name, got, err, want)
		}
	}
}

func TestGenerateCrop(t *testing.T) {
	for _, tc := range testImages {
		src := readTestdata(t, tc.name)
		req := Request{Width: 10, Height: 8, Method: "crop"}
		res, err := Generate(src, req, Limits{})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		decodeResult(t, res)
		if res.Width != req.Width || res.Height != req.Height || res.ContentType != tc.thumb {
			t.Errorf("%s: got %s %dx%d, want %s %dx%d", tc.name, res.ContentType, res.Width, res.Height, tc.thumb, req.Width, req.Height)
		}
	}
}

func TestGenerateScale(t *testing.T) {
	boxes := []image.Point{{64, 64}, {100, 20}, {20, 100}, {149, 102}, {1, 1}}
	for _, tc := range testImages {
		src := readTestdata(t, tc.name)
		for _, box := range boxes {
			res, err := Generate(src, Request{Width: box.X, Height: box.Y, Method: "scale"}, Limits{})
			if err != nil {
				t.Errorf("%s %v: %v", tc.name, box, err)
				continue
			}
			decodeResult(t, res)
			if tc.w <= box.X || tc.h <= box.Y {
				// Covering the box would mean upscaling: the source size.
				if res.Width != tc.w || res.Height != tc.h {
					t.Errorf("%s %v: %dx%d, want the source's %dx%d", tc.name, box, res.Width, res.Height, tc.w, tc.h)
				}
				continue
			}
			// The size asked for is a minimum: the result covers the box,
			// touching it on one side, and is no larger than the source.
			if res.Width < box.X || res.Height < box.Y || res.Width > tc.w || res.Height > tc.h {
				t.Errorf("%s: %dx%d does not cover %v within %dx%d", tc.name, res.Width, res.Height, box, tc.w, tc.h)
			}
			if res.Width != box.X && res.Height != box.Y {
				t.Errorf("%s: %dx%d touches neither side of %v", tc.name, res.Width, res.Height, box)
			}
			// Aspect ratio within ±1px: the other side follows from the
			// one that touches the box.
			wantH := float64(res.Width) * float64(tc.h) / float64(tc.w)
			wantW := float64(res.Height) * float64(tc.w) / float64(tc.h)
			if d, e := float64(res.Height)-wantH, float64(res.Width)-wantW; (d > 1 || d < -1) && (e > 1 || e < -1) {
				t.Errorf("%s: %dx%d from %dx%d changes the aspect ratio", tc.name, res.Width, res.Height, tc.w, tc.h)
			}
		}
	}
}

func TestNeverUpscale(t *testing.T) {
	for _, tc := range testImages {
		src := readTestdata(t, tc.name)
		for _, method := range []Method{Crop, Scale} {
			res, err := Generate(src, Request{Width: 1000, Height: 1000, Method: method}, Limits{})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if res.Width != tc.w || res.Height != tc.h {
				t.Errorf("%s %s: %dx%d, want the source's %dx%d", tc.name, method, res.Width, res.Height, tc.w, tc.h)
			}
			switch tc.format {
			case "jpeg", "png", "gif":
				if !bytes.Equal(res.Data, src) || res.ContentType != "image/"+tc.format {
					t.Errorf("%s %s: not the original bytes (%s)", tc.name, method, res.ContentType)
				}
			default:
				if res.ContentType != "image/png" {
					t.Errorf("%s %s: %s, want image/png", tc.name, method, res.ContentType)
				}
				decodeResult(t, res)
			}
		}
	}
}

func TestCropSmallerInOneDimension(t *testing.T) {
	src := readTestdata(t, "video-001.png") // 150x103
	tests := []struct {
		req  Request
		w, h int
	}{
		{Request{Width: 300, Height: 100, Method: "crop"}, 150, 50},
		{Request{Width: 100, Height: 206, Method: "crop"}, 50, 103},
		{Request{Width: 96, Height: 96, Method: "crop"}, 96, 96},
		{Request{Width: 300, Height: 50, Method: "scale"}, 150, 103}, // cannot cover 300 wide: as it is
		{Request{Width: 100, Height: 50, Method: "scale"}, 100, 69},  // covers 100x50
	}
	for _, tc := range tests {
		res, err := Generate(src, tc.req, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		decodeResult(t, res)
		if res.Width != tc.w || res.Height != tc.h {
			t.Errorf("%+v: got %dx%d, want %dx%d", tc.req, res.Width, res.Height, tc.w, tc.h)
		}
	}
}

// withOrientation returns jpg with an APP1 Exif segment holding orientation
// o inserted after the SOI marker.
func withOrientation(t *testing.T, jpg []byte, o uint16) []byte {
	t.Helper()
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00*")
	binary.Write(&tiff, binary.BigEndian, uint32(8)) // IFD0 offset
	binary.Write(&tiff, binary.BigEndian, uint16(1)) // entries
	binary.Write(&tiff, binary.BigEndian, []uint16{0x0112, 3})
	binary.Write(&tiff, binary.BigEndian, uint32(1))
	binary.Write(&tiff, binary.BigEndian, []uint16{o, 0})
	binary.Write(&tiff, binary.BigEndian, uint32(0)) // next IFD
	seg := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	var out bytes.Buffer
	out.Write(jpg[:2])
	out.Write([]byte{0xff, 0xe1})
	binary.Write(&out, binary.BigEndian, uint16(len(seg)+2))
	out.Write(seg)
	out.Write(jpg[2:])
	return out.Bytes()
}

// rotated returns m transformed as EXIF orientation o displays it.
func rotated(m image.Image, o int) *image.RGBA {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	W, H := w, h
	if o >= 5 {
		W, H = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, W, H))
	for y := range H {
		for x := range W {
			var sx, sy int
			switch o {
			case 3:
				sx, sy = w-1-x, h-1-y
			case 6:
				sx, sy = y, h-1-x
			default:
				sx, sy = x, y
			}
			out.Set(x, y, m.At(b.Min.X+sx, b.Min.Y+sy))
		}
	}
	return out
}

// meanAbsDiff is the mean absolute difference of the RGB channels.
func meanAbsDiff(a, b image.Image) float64 {
	var sum, n float64
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			for _, d := range []int{int(r1>>8) - int(r2>>8), int(g1>>8) - int(g2>>8), int(b1>>8) - int(b2>>8)} {
				sum += float64(max(d, -d))
				n++
			}
		}
	}
	return sum / n
}

func TestEXIFOrientation(t *testing.T) {
	src := readTestdata(t, "video-001.jpeg") // 150x103
	req := Request{Width: 100, Height: 100, Method: "scale"}
	ref, err := Generate(src, req, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	refImg := decodeResult(t, ref) // 146x100: covers the 100x100 box
	for _, tc := range []struct {
		o    uint16
		w, h int
	}{{3, 146, 100}, {6, 100, 146}} {
		jpg := withOrientation(t, src, tc.o)
		info, err := Sniff(jpg, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if tc.o == 6 && (info.Width != 103 || info.Height != 150) {
			t.Errorf("orientation 6: Sniff says %dx%d, want 103x150", info.Width, info.Height)
		}
		// JPEG re-encoding alone differs by about 6 on average; a wrong
		// rotation by about 90.
		res, err := Generate(jpg, req, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		got := decodeResult(t, res)
		if res.Width != tc.w || res.Height != tc.h {
			t.Fatalf("orientation %d: %dx%d, want %dx%d", tc.o, res.Width, res.Height, tc.w, tc.h)
		}
		want := rotated(refImg, int(tc.o))
		if d := meanAbsDiff(got, want); d > 10 {
			t.Errorf("orientation %d: mean difference from the rotated reference %.1f", tc.o, d)
		}
		if tc.o == 3 {
			if d := meanAbsDiff(got, refImg); d < 30 {
				t.Errorf("orientation 3: output looks unrotated (difference %.1f)", d)
			}
		}
		// A source smaller than the request comes back untouched, with its
		// displayed size.
		res, err = Generate(jpg, Request{Width: 200, Height: 200, Method: "crop"}, Limits{})
		if err != nil || !bytes.Equal(res.Data, jpg) || res.Width != info.Width || res.Height != info.Height {
			t.Errorf("orientation %d, large request: %dx%d, same bytes %v, %v", tc.o, res.Width, res.Height, bytes.Equal(res.Data, jpg), err)
		}
	}
}

func TestAlphaPreserved(t *testing.T) {
	for _, name := range []string{"gopher-doc.with-alpha.png", "gopher-doc.with-alpha.lossless.webp"} {
		src := readTestdata(t, name) // 75x100
		res, err := Generate(src, Request{Width: 30, Height: 40, Method: "scale"}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if res.ContentType != "image/png" {
			t.Fatalf("%s: %s, want image/png", name, res.ContentType)
		}
		m := decodeResult(t, res)
		var transparent, visible int
		b := m.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if _, _, _, a := m.At(x, y).RGBA(); a == 0 {
					transparent++
				} else {
					visible++
				}
			}
		}
		if transparent == 0 || visible == 0 {
			t.Errorf("%s: %d transparent and %d visible pixels, want some of each", name, transparent, visible)
		}
		// The corner is transparent in the source.
		if _, _, _, a := m.At(0, 0).RGBA(); a != 0 {
			t.Errorf("%s: corner alpha %d, want 0", name, a)
		}
	}
}

func TestAlphaHalf(t *testing.T) {
	// Left half transparent, right half opaque red.
	src := image.NewNRGBA(image.Rect(0, 0, 100, 80))
	for y := range 80 {
		for x := 50; x < 100; x++ {
			src.SetNRGBA(x, y, color.NRGBA{255, 0, 0, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, src); err != nil {
		t.Fatal(err)
	}
	res, err := Generate(b.Bytes(), Request{Width: 40, Height: 40, Method: "crop"}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := decodeResult(t, res)
	if got := color.NRGBAModel.Convert(m.At(2, 20)).(color.NRGBA); got.A != 0 {
		t.Errorf("left: %v, want transparent", got)
	}
	if got := color.NRGBAModel.Convert(m.At(37, 20)).(color.NRGBA); got != (color.NRGBA{255, 0, 0, 255}) {
		t.Errorf("right: %v, want opaque red", got)
	}
}

// animatedGIF makes a 64x48 GIF of three frames: red, a green square with
// a transparent hole cleared after it, and blue in the top half.
func animatedGIF(t testing.TB) []byte {
	t.Helper()
	pal := color.Palette{color.RGBA{0, 0, 0, 0}, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 255, 0, 255}, color.RGBA{0, 0, 255, 255}}
	frame := func(r image.Rectangle, idx uint8) *image.Paletted {
		m := image.NewPaletted(r, pal)
		for i := range m.Pix {
			m.Pix[i] = idx
		}
		return m
	}
	f2 := frame(image.Rect(16, 8, 48, 40), 2)
	f2.SetColorIndex(30, 20, 0)
	g := &gif.GIF{
		Image:    []*image.Paletted{frame(image.Rect(0, 0, 64, 48), 1), f2, frame(image.Rect(0, 0, 64, 24), 3)},
		Delay:    []int{10, 20, 30},
		Disposal: []byte{gif.DisposalNone, gif.DisposalBackground, gif.DisposalPrevious},
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestAnimatedGIF(t *testing.T) {
	src := animatedGIF(t)
	info, err := Sniff(src, Limits{})
	if want := (Info{Format: "gif", Width: 64, Height: 48, Animated: true}); err != nil || info != want {
		t.Fatalf("Sniff = %+v, %v; want %+v", info, err, want)
	}

	res, err := Generate(src, Request{Width: 32, Height: 32, Method: "scale", Animated: true}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ContentType != "image/gif" || res.Width != 43 || res.Height != 32 { // covers 32x32
		t.Fatalf("got %s %dx%d, want image/gif 43x32", res.ContentType, res.Width, res.Height)
	}
	g, err := gif.DecodeAll(bytes.NewReader(res.Data))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Image) != 3 {
		t.Fatalf("%d frames, want 3", len(g.Image))
	}
	if want := []int{10, 20, 30}; g.Delay[0] != want[0] || g.Delay[1] != want[1] || g.Delay[2] != want[2] {
		t.Errorf("delays %v, want %v", g.Delay, want)
	}
	// Frame 3 is drawn after frame 2 was cleared to transparent: blue on
	// top, transparent where the green square was, red elsewhere.
	for _, tc := range []struct {
		x, y int
		want color.RGBA
	}{{16, 6, color.RGBA{0, 0, 255, 255}}, {16, 18, color.RGBA{}}, {2, 20, color.RGBA{255, 0, 0, 255}}} {
		r, gg, b, a := g.Image[2].At(tc.x, tc.y).RGBA()
		if got := (color.RGBA{uint8(r >> 8), uint8(gg >> 8), uint8(b >> 8), uint8(a >> 8)}); got != tc.want {
			t.Errorf("frame 3 at (%d,%d) = %v, want %v", tc.x, tc.y, got, tc.want)
		}
	}

	res, err = Generate(src, Request{Width: 32, Height: 32, Method: "crop", Animated: true}, Limits{MaxFrames: 2})
	if err != nil {
		t.Fatal(err)
	}
	if g, err := gif.DecodeAll(bytes.NewReader(res.Data)); err != nil || len(g.Image) != 2 {
		t.Errorf("MaxFrames 2: %v, %v", err, g)
	}

	for _, req := range []Request{{Width: 32, Height: 32, Method: "crop"}, {Width: 100, Height: 100, Method: "scale"}} {
		res, err := Generate(src, req, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if res.ContentType != "image/png" {
			t.Errorf("%+v: %s, want a still image/png", req, res.ContentType)
		}
		decodeResult(t, res)
	}

	// Small and animated as asked: the original.
	res, err = Generate(src, Request{Width: 100, Height: 100, Method: "scale", Animated: true}, Limits{})
	if err != nil || !bytes.Equal(res.Data, src) {
		t.Errorf("small animated source: not the original bytes (%v)", err)
	}
}

func TestDeterministic(t *testing.T) {
	srcs := map[string][]byte{"animated.gif": animatedGIF(t)}
	for _, tc := range testImages {
		srcs[tc.name] = readTestdata(t, tc.name)
	}
	for name, src := range srcs {
		for _, req := range []Request{{Width: 10, Height: 8, Method: "crop", Animated: true}, {Width: 40, Height: 40, Method: "scale"}} {
			a, err1 := Generate(src, req, Limits{})
			b, err2 := Generate(src, req, Limits{})
			if err1 != nil || err2 != nil || !bytes.Equal(a.Data, b.Data) {
				t.Errorf("%s %+v: two runs differ (%v, %v)", name, req, err1, err2)
			}
		}
	}
}

func TestDecompressionBomb(t *testing.T) {
	bombs := map[string][]byte{
		"png 30000x30000": testkit.PNGBomb(30000, 30000),
		"gif 65535x65535": append([]byte("GIF89a\xff\xff\xff\xff\x00\x00\x00"), 0x2c, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 2, 2, 0x4c, 0x01, 0, 0x3b),
	}
	for name, src := range bombs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		info, err := Sniff(src, Limits{})
		if !errors.Is(err, ErrTooLarge) || info.Width == 0 {
			t.Errorf("%s: Sniff = %+v, %v; want ErrTooLarge with the size", name, info, err)
		}
		for _, animated := range []bool{false, true} {
			_, err = Generate(src, Request{Width: 32, Height: 32, Method: "crop", Animated: animated}, Limits{})
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%s: Generate: %v, want ErrTooLarge", name, err)
			}
		}
		runtime.ReadMemStats(&after)
		// Refused from the header: decoding would allocate gigabytes.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 10<<20 {
			t.Errorf("%s: allocated %d bytes to refuse", name, alloc)
		}
	}
}

func TestLimits(t *testing.T) {
	src := readTestdata(t, "video-001.png")
	info, err := Sniff(src, Limits{MaxBytes: 100})
	if !errors.Is(err, ErrTooLarge) || info.Width != 150 {
		t.Errorf("MaxBytes: %+v, %v", info, err)
	}
	if _, err := Generate(src, Request{Width: 8, Height: 8, Method: "crop"}, Limits{MaxPixels: 150*103 - 1}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("MaxPixels: %v", err)
	}
	if _, err := Generate(src, Request{Width: 8, Height: 8, Method: "crop"}, Limits{MaxPixels: 150 * 103}); err != nil {
		t.Errorf("MaxPixels exactly: %v", err)
	}
	want := Limits{MaxPixels: DefaultMaxPixels, MaxBytes: DefaultMaxBytes, MaxFrames: DefaultMaxFrames}
	if got := (Limits{}).WithDefaults(); got != want {
		t.Errorf("WithDefaults = %+v, want %+v", got, want)
	}
}

func TestNotAnImage(t *testing.T) {
	jpg := readTestdata(t, "video-001.jpeg")
	pngData := readTestdata(t, "video-001.png")
	inputs := map[string][]byte{
		"empty":          nil,
		"text":           []byte("hello, world\n"),
		"svg":            []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>`),
		"truncated jpeg": jpg[:len(jpg)/3],
		"jpeg header":    jpg[:4],
		"truncated png":  pngData[:len(pngData)/2],
		"gif header":     []byte("GIF89a"),
		"riff":           []byte("RIFF\x00\x00\x00\x00WEBPVP8X"),
		"bm":             []byte("BM"),
		"tiff header":    []byte("II*\x00\x08\x00\x00\x00"),
	}
	for name, src := range inputs {
		_, err := Generate(src, Request{Width: 32, Height: 32, Method: "scale"}, Limits{})
		if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrUnsupported or ErrCorrupt", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "panicked") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRequestValidate(t *testing.T) {
	tests := []struct {
		req Request
		ok  bool
	}{
		{Request{Width: 32, Height: 32, Method: "crop"}, true},
		{Request{Width: 1, Height: 1, Method: "scale"}, true},
		{Request{Width: 0, Height: 32, Method: "crop"}, false},
		{Request{Width: 32, Height: -1, Method: "crop"}, false},
		{Request{Width: 32, Height: 32, Method: ""}, false},
		{Request{Width: 32, Height: 32, Method: "Crop"}, false},
		{Request{Width: 1 << 30, Height: 32, Method: "scale"}, false},
	}
	for _, tc := range tests {
		err := tc.req.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadRequest)) {
			t.Errorf("%+v.Validate() = %v", tc.req, err)
		}
		if _, gerr := Generate(readTestdata(t, "video-001.png"), tc.req, Limits{}); !tc.ok && !errors.Is(gerr, ErrBadRequest) {
			t.Errorf("Generate(%+v) = %v, want ErrBadRequest", tc.req, gerr)
		}
	}
}

func TestDecodeMemory(t *testing.T) {
	info := Info{Format: "jpeg", Width: 4000, Height: 3000}
	still := DecodeMemory(info, Request{Width: 800, Height: 600, Method: "scale"})
	// Decoded at 1/4 (1000x750 covers 800x600): well under the full 48 MB.
	if still < 8*1000*750 || still > 40<<20 {
		t.Errorf("12 MP still: %d bytes", still)
	}
	info = Info{Format: "gif", Width: 400, Height: 300, Animated: true}
	req := Request{Width: 96, Height: 96, Method: "crop", Animated: true}
	if a, s := DecodeMemory(info, req), DecodeMemory(info, Request{Width: 96, Height: 96, Method: "crop"}); a <= s {
		t.Errorf("animated %d <= still %d", a, s)
	}
}

func TestAnimatedWorkBound(t *testing.T) {
	// A 3000x3000 canvas with 300 one-pixel frames: each output frame
	// resamples the whole canvas, so the frames are cut to the budget.
	pal := color.Palette{color.RGBA{0, 0, 0, 0}, color.RGBA{255, 0, 0, 255}}
	g := &gif.GIF{Config: image.Config{ColorModel: pal, Width: 3000, Height: 3000}}
	for i := range 300 {
		m := image.NewPaletted(image.Rect(i, i, i+1, i+1), pal)
		m.Pix[0] = 1
		g.Image = append(g.Image, m)
		g.Delay = append(g.Delay, 1)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := Generate(b.Bytes(), Request{Width: 96, Height: 96, Method: "crop", Animated: true}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := gif.DecodeAll(bytes.NewReader(res.Data))
	if err != nil {
		t.Fatal(err)
	}
	if want := animatedFrames(3000, 3000, Limits{}.WithDefaults()); len(out.Image) != want {
		t.Errorf("%d frames, want %d", len(out.Image), want)
	}
	t.Logf("%d frames in %v", len(out.Image), time.Since(start))
}

// TestAPNGNeverAnimatedUnlessAsked: an animated PNG small enough to come
// back as it is does so only for animated=true; otherwise it is re-encoded
// as its still default image.
func TestAPNGNeverAnimatedUnlessAsked(t *testing.T) {
	src := readTestdata(t, "video-001.png")
	// Insert an acTL chunk (2 frames, loop forever) right after IHDR.
	ihdrEnd := 8 + 8 + 13 + 4
	data := []byte{0, 0, 0, 2, 0, 0, 0, 0}
	chunk := testkit.PNGChunk(nil, "acTL", data)
	apng := append(append(append([]byte(nil), src[:ihdrEnd]...), chunk...), src[ihdrEnd:]...)
	info, err := Sniff(apng, Limits{})
	if err != nil || !info.Animated {
		t.Fatalf("Sniff(APNG) = %+v, %v; want animated", info, err)
	}
	still, err := Generate(apng, Request{Width: 400, Height: 400, Method: "scale"}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(still.Data, apng) || bytes.Contains(still.Data, []byte("acTL")) {
		t.Error("animated=false returned the animated PNG")
	}
	anim, err := Generate(apng, Request{Width: 400, Height: 400, Method: "scale", Animated: true}, Limits{})
	if err != nil || !bytes.Equal(anim.Data, apng) {
		t.Errorf("animated=true on a small APNG: %v, want the original bytes", err)
	}
}

// TestDecodeMemoryBoundsJPEG checks that DecodeMemory is not below what
// Generate allocates in all (which bounds its peak) for JPEGs decoded at
// each scale, baseline and progressive.
func TestDecodeMemoryBoundsJPEG(t *testing.T) {
	var big bytes.Buffer
	if err := jpeg.Encode(&big, noisyImage(1203, 905), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src []byte
		req Request
	}{
		{big.Bytes(), Request{Width: 100, Height: 100, Method: Crop}},
		{big.Bytes(), Request{Width: 200, Height: 150, Method: Scale}},
		{big.Bytes(), Request{Width: 500, Height: 400, Method: Scale}},
		{big.Bytes(), Request{Width: 900, Height: 700, Method: Scale}},
		{readTestdata(t, "video-001.progressive.jpeg"), Request{Width: 16, Height: 16, Method: Crop}},
		{readTestdata(t, "video-001.cmyk.jpeg"), Request{Width: 30, Height: 20, Method: Scale}},
	} {
		info, err := Sniff(tc.src, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := Generate(tc.src, tc.req, Limits{}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		got, est := after.TotalAlloc-before.TotalAlloc, DecodeMemory(info, tc.req)
		if int64(got) > est {
			t.Errorf("%+v of %dx%d: allocated %d bytes, DecodeMemory says %d", tc.req, info.Width, info.Height, got, est)
		}
	}
}

// noisyImage is a w×h gradient with deterministic noise.
func noisyImage(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = uint8(i/4%w*255/w + i*7919%31)
	}
	return m
}

// TestScaledDecodeLooksTheSame compares thumbnails made from a JPEG decoded
// at the scale Generate picks with those from the full-size decode, as
// served (JPEG encoded): at least minScaledPSNR dB. The noise of this image
// is in every channel, so its chroma detail, which a scaled 4:2:0 decode
// halves again, is the worst case: measured 32.7 dB (1/2, 500x400) to
// 48 dB (1/8, 96x96 crop).
func TestScaledDecodeLooksTheSame(t *testing.T) {
	const minScaledPSNR = 30
	var b bytes.Buffer
	if err := jpeg.Encode(&b, noisyImage(1203, 905), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	src := b.Bytes()
	h, err := sniff(src, Limits{}.WithDefaults(), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []Request{{Width: 96, Height: 96, Method: Crop}, {Width: 280, Height: 200, Method: Scale}, {Width: 500, Height: 400, Method: Scale}} {
		p := planFor(h.Width, h.Height, req)
		thumb := func(denom int) *image.RGBA {
			m, err := decodeStill(src, &h, denom)
			if err != nil {
				t.Fatal(err)
			}
			res, err := encodeStill(resample(m, scaleRect(p.region, denom), p.outW, p.outH), false)
			if err != nil {
				t.Fatal(err)
			}
			return toRGBA(decodeResult(t, res))
		}
		denom := jpegDenom(p)
		if denom == 1 {
			t.Fatalf("%+v: denom 1", req)
		}
		if got := psnr(thumb(denom), thumb(1)); got < minScaledPSNR {
			t.Errorf("%+v at 1/%d: PSNR %.1f dB against the full decode, want >= %d", req, denom, got, minScaledPSNR)
		} else {
			t.Logf("%+v at 1/%d: %.1f dB", req, denom, got)
		}
	}
}

func toRGBA(m image.Image) *image.RGBA {
	out := image.NewRGBA(image.Rectangle{Max: m.Bounds().Size()})
	stddraw.Draw(out, out.Rect, m, m.Bounds().Min, stddraw.Src)
	return out
}
