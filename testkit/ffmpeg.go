package testkit

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// NeedFFmpeg skips the test when ffmpeg or ffprobe is not in PATH, or
// fails it when MXCAS_REQUIRE_FFMPEG is set (scripts/test sets it after
// installing them).
func NeedFFmpeg(t testing.TB) {
	t.Helper()
	for _, name := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("MXCAS_REQUIRE_FFMPEG") != "" {
				t.Fatalf("ffmpeg required: %v", err)
			}
			t.Skipf("skipped: %s not installed (apt-get install ffmpeg): %v", name, err)
		}
	}
}

// CoverPNG writes dir/cover.png, an opaque w×h gradient for an audio
// file's cover art, and returns its path.
func CoverPNG(t testing.TB, dir string, w, h int) string {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), 200, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "cover.png")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
