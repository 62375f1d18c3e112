package testkit

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// FFmpegHas reports whether the installed ffmpeg has the encoder.
func FFmpegHas(t testing.TB, encoder string) bool {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output()
	if err != nil {
		t.Fatalf("ffmpeg -encoders: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == encoder {
			return true
		}
	}
	return false
}

// FFmpegMake runs ffmpeg with args (inputs such as lavfi sources, codecs)
// writing dir/name, and returns that path.
func FFmpegMake(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-v", "error", "-y"}, args...), p)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg making %s: %v\n%s", name, err, out)
	}
	return p
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
