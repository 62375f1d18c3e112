package thumbgen

import (
	"strings"
	"testing"

	"github.com/mxcas/mxcas/testkit"
)

func FuzzGenerate(f *testing.F) {
	for _, name := range []string{"yellow_rose-small.bmp", "bw-deflate.tiff", "video-001.lossy.webp", "video-005.gray.jpeg", "triangle-001.gif"} {
		f.Add(readTestdata(f, name), uint16(8), uint16(8), true, false)
	}
	f.Add(animatedGIF(f), uint16(20), uint16(10), false, true)
	f.Add(testkit.PNGBomb(30000, 30000), uint16(32), uint16(32), true, false)
	f.Fuzz(func(t *testing.T, src []byte, w, h uint16, crop, animated bool) {
		req := Request{Width: 1 + int(w%300), Height: 1 + int(h%300), Method: "scale", Animated: animated}
		if crop {
			req.Method = "crop"
		}
		lim := Limits{MaxPixels: 1 << 20}
		if _, err := Sniff(src, lim); err != nil && strings.Contains(err.Error(), "panicked") {
			t.Fatalf("Sniff: %v", err)
		}
		res, err := Generate(src, req, lim)
		if err != nil {
			if strings.Contains(err.Error(), "panicked") {
				t.Fatalf("Generate: %v", err)
			}
			return
		}
		if len(res.Data) == 0 || res.Width < 1 || res.Height < 1 {
			t.Fatalf("Generate(%+v) = %s %dx%d, %d bytes", req, res.ContentType, res.Width, res.Height, len(res.Data))
		}
		if info, err := Sniff(src, lim); err == nil && (res.Width > max(info.Width, req.Width) || res.Height > max(info.Height, req.Height)) {
			t.Fatalf("Generate(%+v) of a %dx%d source = %dx%d: upscaled", req, info.Width, info.Height, res.Width, res.Height)
		}
	})
}
