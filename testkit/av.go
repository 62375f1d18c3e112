package testkit

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// RequireFFmpeg handles err from looking up ffmpeg and ffprobe: nil does
// nothing; otherwise the test is skipped, or fails when
// MXCAS_REQUIRE_FFMPEG is set (scripts/test sets it after installing
// ffmpeg).
func RequireFFmpeg(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("MXCAS_REQUIRE_FFMPEG") != "" {
		t.Fatalf("ffmpeg required: %v", err)
	}
	t.Skipf("skipped: ffmpeg/ffprobe not installed (apt-get install ffmpeg): %v", err)
}

// encoders lists the installed ffmpeg's encoders, once.
var encoders = sync.OnceValues(func() (map[string]bool, error) {
	out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output()
	enc := make(map[string]bool)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			enc[f[1]] = true
		}
	}
	return enc, err
})

// HasEncoder reports whether the installed ffmpeg has the encoder name.
func HasEncoder(t testing.TB, name string) bool {
	t.Helper()
	enc, err := encoders()
	if err != nil {
		t.Fatalf("ffmpeg -encoders: %v", err)
	}
	return enc[name]
}

// GenerateAV runs ffmpeg with args (inputs, codecs) writing dir/name and
// returns the path.
func GenerateAV(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-v", "error", "-y"}, args...), p)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate %s: %v\n%s", name, err, out)
	}
	return p
}

// Y4M is a raw (YUV4MPEG2) video declaring w×h frames, with a little data.
func Y4M(w, h int) []byte {
	b := []byte("YUV4MPEG2 W" + strconv.Itoa(w) + " H" + strconv.Itoa(h) + " F25:1 Ip A1:1 C420jpeg\nFRAME\n")
	return append(b, make([]byte, 1000)...)
}

// ForgeFLACDuration rewrites the total sample count in the STREAMINFO
// block of the FLAC file at path so that it declares seconds of audio at
// rate Hz.
func ForgeFLACDuration(t testing.TB, path string, seconds, rate int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 8+34 || string(b[:4]) != "fLaC" || b[4]&0x7f != 0 {
		t.Fatalf("%s: not a FLAC file starting with STREAMINFO", path)
	}
	f := b[8+10 : 8+18] // sample rate (20 bits), channels (3), bits (5), total samples (36)
	v := binary.BigEndian.Uint64(f)&^(1<<36-1) | uint64(seconds*rate)
	binary.BigEndian.PutUint64(f, v)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
