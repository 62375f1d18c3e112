package thumbgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"strings"
	"testing"

	"golang.org/x/image/webp"
)

// webpTestFrame is a frame of a test animation: a still WebP from testdata
// placed at x, y (even) with the given ANMF flags (bit 1: do not blend, bit
// 0: dispose to background).
type webpTestFrame struct {
	still      string
	x, y       int
	durationMS int
	flags      byte
}

// chunk is a RIFF chunk with its header and padding.
func chunk(fourCC string, payload []byte) []byte {
	b := append([]byte(fourCC), binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))...)
	b = append(b, payload...)
	if len(payload)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func put24(b []byte, v int) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16)) }

// buildAnimatedWebP assembles an animated WebP from the image chunks of
// still WebPs in testdata (x/image has no WebP encoder, and libwebp's tools
// are not needed: the container is all this package parses itself).
func buildAnimatedWebP(t testing.TB, w, h, loops int, frames ...webpTestFrame) []byte {
	t.Helper()
	vp8x := []byte{0x02 | 0x10, 0, 0, 0}
	vp8x = put24(put24(vp8x, w-1), h-1)
	body := append([]byte("WEBP"), chunk("VP8X", vp8x)...)
	body = append(body, chunk("ANIM", []byte{0, 0, 0, 0, byte(loops), byte(loops >> 8)})...)
	for _, f := range frames {
		still := readTestdata(t, f.still)
		cfg, err := webp.DecodeConfig(bytes.NewReader(still))
		if err != nil {
			t.Fatal(err)
		}
		anmf := put24(put24(nil, f.x/2), f.y/2)
		anmf = put24(put24(anmf, cfg.Width-1), cfg.Height-1)
		anmf = append(put24(anmf, f.durationMS), f.flags)
		for p := 12; p+8 <= len(still); {
			n := int(binary.LittleEndian.Uint32(still[p+4:]))
			end := min(p+8+n+n%2, len(still))
			switch string(still[p : p+4]) {
			case "ALPH", "VP8 ", "VP8L":
				anmf = append(anmf, still[p:end]...)
			}
			p = end
		}
		body = append(body, chunk("ANMF", anmf)...)
	}
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

// lossyAnimation is 150x103: the lossy video frame, then the lossless
// gopher with alpha blended over it and disposed, then the video frame again
// overwriting at (0, 0).
func lossyAnimation(t testing.TB) []byte {
	return buildAnimatedWebP(t, 150, 103, 0,
		webpTestFrame{still: "video-001.lossy.webp", durationMS: 100},
		webpTestFrame{still: "gopher-doc.with-alpha.lossless.webp", x: 50, y: 2, durationMS: 250, flags: 1},
		webpTestFrame{still: "video-001.lossy.webp", durationMS: 40, flags: 2},
	)
}

// alphaAnimation is 400x301: the lossy rose with an ALPH chunk, then the
// video frame at (10, 10).
func alphaAnimation(t testing.TB) []byte {
	return buildAnimatedWebP(t, 400, 301, 3,
		webpTestFrame{still: "yellow_rose.lossy-with-alpha.webp", durationMS: 70},
		webpTestFrame{still: "video-001.lossy.webp", x: 10, y: 10, durationMS: 70},
	)
}

// meanDiff is the mean absolute difference per channel of two images of the
// same size, in 8-bit units.
func meanDiff(t *testing.T, a, b image.Image) float64 {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("sizes %v and %v", a.Bounds(), b.Bounds())
	}
	var sum, n float64
	for y := 0; y < a.Bounds().Dy(); y++ {
		for x := 0; x < a.Bounds().Dx(); x++ {
			r1, g1, b1, a1 := a.At(a.Bounds().Min.X+x, a.Bounds().Min.Y+y).RGBA()
			r2, g2, b2, a2 := b.At(b.Bounds().Min.X+x, b.Bounds().Min.Y+y).RGBA()
			for _, d := range [][2]uint32{{r1, r2}, {g1, g2}, {b1, b2}, {a1, a2}} {
				sum += float64(max(d[0], d[1])-min(d[0], d[1])) / 257
				n++
			}
		}
	}
	return sum / n
}

func TestAnimatedWebPSniff(t *testing.T) {
	info, err := Sniff(lossyAnimation(t), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Info{Format: "webp", Width: 150, Height: 103, Animated: true}); info != want {
		t.Errorf("Sniff = %+v, want %+v", info, want)
	}
}

// An animated WebP without animation asked for is a still thumbnail of its
// first frame: the same picture as the still WebP that frame came from.
func TestAnimatedWebPStill(t *testing.T) {
	for _, tc := range []struct {
		anim  []byte
		still string
		ct    string
	}{
		{lossyAnimation(t), "video-001.lossy.webp", "image/jpeg"},
		{alphaAnimation(t), "yellow_rose.lossy-with-alpha.webp", "image/png"},
	} {
		req := Request{Width: 64, Height: 48, Method: "scale"}
		res, err := Generate(tc.anim, req, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", tc.still, err)
		}
		want, err := Generate(readTestdata(t, tc.still), req, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if res.ContentType != tc.ct || res.Width != want.Width || res.Height != want.Height {
			t.Errorf("%s: %s %dx%d, want %s %dx%d", tc.still, res.ContentType, res.Width, res.Height, tc.ct, want.Width, want.Height)
		}
		if d := meanDiff(t, decodeResult(t, res), decodeResult(t, want)); d > 2 {
			t.Errorf("%s: first frame differs from the still by %.2f a channel", tc.still, d)
		}
	}
}

func TestAnimatedWebPAnimated(t *testing.T) {
	src := lossyAnimation(t)
	res, err := Generate(src, Request{Width: 64, Height: 48, Method: "scale", Animated: true}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ContentType != "image/gif" {
		t.Fatalf("content type %s", res.ContentType)
	}
	g, err := gif.DecodeAll(bytes.NewReader(res.Data))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Image) != 3 || g.LoopCount != 0 {
		t.Fatalf("%d frames, loop count %d; want 3, 0", len(g.Image), g.LoopCount)
	}
	if want := []int{10, 25, 4}; g.Delay[0] != want[0] || g.Delay[1] != want[1] || g.Delay[2] != want[2] {
		t.Errorf("delays %v, want %v", g.Delay, want)
	}
	// Frame 2 blends the gopher over the video frame: its left edge, left of
	// the gopher, is the same as in frame 1; inside the gopher it differs.
	b := g.Image[0].Bounds()
	if res.Width != b.Dx() || res.Height != b.Dy() {
		t.Fatalf("frames %v, result %dx%d", b, res.Width, res.Height)
	}
	if g.Image[0].At(2, 24) != g.Image[1].At(2, 24) {
		t.Errorf("frame 2 changed the pixel left of the gopher")
	}
	if meanDiff(t, g.Image[0], g.Image[1]) < 1 {
		t.Errorf("frame 2 looks like frame 1")
	}

	// The alpha animation plays three times: a GIF loop count of 2.
	res, err = Generate(alphaAnimation(t), Request{Width: 100, Height: 100, Method: "crop", Animated: true}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if g, err = gif.DecodeAll(bytes.NewReader(res.Data)); err != nil {
		t.Fatal(err)
	}
	if len(g.Image) != 2 || g.LoopCount != 2 || res.Width != 100 || res.Height != 100 {
		t.Errorf("%d frames, loop count %d, %dx%d; want 2, 2, 100x100", len(g.Image), g.LoopCount, res.Width, res.Height)
	}
}

func TestAnimatedWebPHostile(t *testing.T) {
	good := lossyAnimation(t)
	// Every prefix: a thumbnail (cut between frames) or ErrCorrupt (cut
	// inside a chunk), never a panic.
	for n := range len(good) {
		_, err := Generate(good[:n], Request{Width: 32, Height: 32, Method: "scale", Animated: n%2 == 0}, Limits{})
		if n >= 12 && err != nil && (!errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "panicked")) {
			t.Fatalf("prefix of %d bytes: %v", n, err)
		}
	}
	if _, err := Sniff(good[:len(good)-7], Limits{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated last frame: %v, want ErrCorrupt", err)
	}

	bigFrame := buildAnimatedWebP(t, 150, 103, 0,
		webpTestFrame{still: "video-001.lossy.webp"},
		webpTestFrame{still: "yellow_rose.lossy-with-alpha.webp"})
	if _, err := Sniff(bigFrame, Limits{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "outside") {
		t.Errorf("frame bigger than the canvas: %v", err)
	}
	offCanvas := buildAnimatedWebP(t, 150, 103, 0, webpTestFrame{still: "video-001.lossy.webp", x: 2})
	if _, err := Generate(offCanvas, Request{Width: 32, Height: 32, Method: "scale"}, Limits{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("frame off the canvas: %v", err)
	}

	huge := buildAnimatedWebP(t, 30000, 30000, 0, webpTestFrame{still: "video-001.lossy.webp"})
	info, err := Sniff(huge, Limits{MaxPixels: 1 << 24})
	if !errors.Is(err, ErrTooLarge) || info.Width != 30000 || !info.Animated {
		t.Errorf("30000x30000 canvas: %+v, %v; want ErrTooLarge", info, err)
	}

	// Many frames: only MaxFrames are used, and only that many recorded.
	frames := make([]webpTestFrame, 2000)
	for i := range frames {
		frames[i] = webpTestFrame{still: "gopher-doc.with-alpha.lossless.webp", durationMS: 10}
	}
	many := buildAnimatedWebP(t, 75, 100, 0, frames...)
	h, err := sniff(many, Limits{}.WithDefaults(), 5)
	if err != nil || len(h.webp.frames) != 5 || h.webp.frameCount != 2000 {
		t.Fatalf("sniff: %d frames recorded of %d, %v", len(h.webp.frames), h.webp.frameCount, err)
	}
	res, err := Generate(many, Request{Width: 32, Height: 32, Method: "scale", Animated: true}, Limits{MaxFrames: 7})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gif.DecodeAll(bytes.NewReader(res.Data))
	if err != nil || len(g.Image) != 7 {
		t.Fatalf("%v, want 7 frames", err)
	}
}

// libwebpFrames composites every frame of an animation made by libwebp's
// img2webp from the same three 64x48 testsrc frames, whose right half is
// transparent in the "alpha" files (img2webp crops frames to what changed
// and mixes blending).
func libwebpFrames(t *testing.T, name string) []*image.RGBA {
	t.Helper()
	h, err := sniff(readTestdata(t, name), Limits{}.WithDefaults(), 10)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if h.Width != 64 || h.Height != 48 || !h.Animated || h.webp.frameCount != 3 {
		t.Fatalf("%s: %+v, %d frames", name, h.Info, h.webp.frameCount)
	}
	var frames []*image.RGBA
	err = composeWebP(&h.webp, 10, func(canvas *image.RGBA, _ webpFrame) error {
		frames = append(frames, image.NewRGBA(canvas.Rect))
		copy(frames[len(frames)-1].Pix, canvas.Pix)
		return nil
	})
	if err != nil || len(frames) != 3 {
		t.Fatalf("%s: %d frames, %v", name, len(frames), err)
	}
	return frames
}

func TestAnimatedWebPLibwebp(t *testing.T) {
	truth := libwebpFrames(t, "anim-lossless-alpha.webp")
	for i, m := range truth {
		if a := m.RGBAAt(10, 10).A; a != 255 {
			t.Errorf("lossless frame %d: alpha %d on the left", i+1, a)
		}
		if c := m.RGBAAt(50, 10); c != (color.RGBA{}) {
			t.Errorf("lossless frame %d: %v on the right, want transparent", i+1, c)
		}
	}
	if meanDiff(t, truth[0], truth[2]) == 0 {
		t.Fatal("frames 1 and 3 are the same: the test source does not move")
	}
	// Lossy VP8 (4:2:0) is about 15 a channel off on this small, sharp
	// pattern even at quality 95, as a still (cwebp) and as an animation
	// frame alike; a frame misplaced, not blended or not kept would be far
	// further off in the 64x7 band that frames 2 and 3 redraw.
	lossyAlpha := libwebpFrames(t, "anim-lossy-alpha.webp")
	lossy := libwebpFrames(t, "anim-lossy.webp")
	left, band := image.Rect(0, 0, 32, 48), image.Rect(0, 36, 32, 43)
	for i := range truth {
		for _, r := range []image.Rectangle{left, band} {
			if d := meanDiff(t, truth[i].SubImage(r), lossyAlpha[i].SubImage(r)); d > 20 {
				t.Errorf("lossy with alpha, frame %d, %v: %.2f a channel from lossless", i+1, r, d)
			}
			if d := meanDiff(t, truth[i].SubImage(r), lossy[i].SubImage(r)); d > 20 {
				t.Errorf("lossy, frame %d, %v: %.2f a channel from lossless", i+1, r, d)
			}
		}
		if c := lossyAlpha[i].RGBAAt(50, 10); c != (color.RGBA{}) {
			t.Errorf("lossy with alpha, frame %d: %v on the right, want transparent", i+1, c)
		}
	}
	if d := meanDiff(t, lossy[0].SubImage(band), lossy[2].SubImage(band)); d < 20 {
		t.Errorf("lossy frames 1 and 3 differ by %.2f a channel in the band that changes", d)
	}

	res, err := Generate(readTestdata(t, "anim-lossless-alpha.webp"), Request{Width: 32, Height: 24, Method: "scale", Animated: true}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gif.DecodeAll(bytes.NewReader(res.Data))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Image) != 3 || g.LoopCount != 1 || g.Delay[0] != 8 || res.Width != 32 || res.Height != 24 {
		t.Errorf("%d frames, loop count %d, delay %d, %dx%d; want 3, 1 (plays twice), 8, 32x24", len(g.Image), g.LoopCount, g.Delay[0], res.Width, res.Height)
	}
	res, err = Generate(readTestdata(t, "anim-lossy.webp"), Request{Width: 32, Height: 24, Method: "scale"}, Limits{})
	if err != nil || res.ContentType != "image/jpeg" || res.Width != 32 {
		t.Errorf("still of the lossy animation: %s %dx%d, %v", res.ContentType, res.Width, res.Height, err)
	}
}

func FuzzAnimatedWebP(f *testing.F) {
	f.Add(lossyAnimation(f))
	f.Add(alphaAnimation(f))
	for _, name := range []string{"anim-lossy.webp", "anim-lossy-alpha.webp", "anim-lossless-alpha.webp"} {
		f.Add(readTestdata(f, name))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		lim := Limits{MaxPixels: 1 << 20, MaxFrames: 8}
		if _, err := Sniff(src, lim); err != nil && strings.Contains(err.Error(), "panicked") {
			t.Fatalf("Sniff: %v", err)
		}
		for _, animated := range []bool{false, true} {
			res, err := Generate(src, Request{Width: 16, Height: 16, Method: "crop", Animated: animated}, lim)
			if err != nil {
				if strings.Contains(err.Error(), "panicked") {
					t.Fatalf("Generate: %v", err)
				}
				continue
			}
			if len(res.Data) == 0 {
				t.Fatalf("empty result")
			}
		}
	})
}
