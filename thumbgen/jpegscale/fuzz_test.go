package jpegscale

import (
	"bytes"
	"image/jpeg"
	"runtime"
	"testing"
)

// FuzzDecode checks that Decode never panics, at any denom, and allocates no
// more than the size DecodeConfig reads from the header implies: planes,
// progressive coefficients and the colour conversion of at most 4
// components, each at most 16 bytes a pixel of the image padded to whole
// MCUs (32x16 at most), plus a fixed overhead.
func FuzzDecode(f *testing.F) {
	// The seed corpus, in testdata/fuzz/FuzzDecode, is image/jpeg's test
	// images: progressive 4:2:0, restart intervals, 2x2 gray, CMYK, 4:1:0;
	// and testdata/restart-ac-420.jpg at denom 8, whose AC scans (with
	// restart markers) are skipped.
	f.Fuzz(func(t *testing.T, src []byte, d uint8) {
		denom := 1 << (d % 4)
		cfg, err := DecodeConfig(bytes.NewReader(src))
		if err != nil || cfg.Width*cfg.Height > 1<<20 {
			return
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := Decode(bytes.NewReader(src), denom)
		runtime.ReadMemStats(&after)
		limit := 64<<10 + 4*16*uint64(cfg.Width+32)*uint64(cfg.Height+16)
		if got := after.TotalAlloc - before.TotalAlloc; got > limit {
			t.Fatalf("%dx%d at denom %d allocated %d bytes, more than %d", cfg.Width, cfg.Height, denom, got, limit)
		}
		if err != nil {
			return
		}
		if b := m.Bounds(); b.Dx() != (cfg.Width+denom-1)/denom || b.Dy() != (cfg.Height+denom-1)/denom {
			t.Fatalf("%dx%d at denom %d decodes to %v", cfg.Width, cfg.Height, denom, b)
		}
		if denom == 1 {
			if _, err := jpeg.Decode(bytes.NewReader(src)); err != nil {
				t.Fatalf("image/jpeg fails (%v) where denom 1 decodes", err)
			}
		}
	})
}
