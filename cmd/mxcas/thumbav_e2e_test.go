package main

import (
	"bytes"
	"context"
	"image"
	"image/gif"
	_ "image/jpeg" // image.DecodeConfig of the thumbnails
	_ "image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/testkit"
)

// These tests run serve in this process (startE2E calls serve in a
// goroutine), so every ffmpeg, ffprobe or prlimit the thumbnailer starts
// is a child of the test process: avChildren finds one left behind.

// makeMedia runs ffmpeg with args (inputs, codecs) writing dir/name and
// returns the file's bytes.
func makeMedia(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(testkit.GenerateAV(t, dir, name, args...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testClip is a 2 s 320x240 H.264 MP4 (MPEG-4 part 2 when libx264 is
// missing).
func testClip(t *testing.T, dir string) []byte {
	t.Helper()
	codec := []string{"-c:v", "mpeg4"}
	if testkit.HasEncoder(t, "libx264") {
		codec = []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"}
	}
	return makeMedia(t, dir, "clip.mp4", append([]string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2"}, codec...)...)
}

// avChildren lists the ffmpeg, ffprobe, prlimit and sh processes (zombies
// included) whose parent is this process, as "pid comm state".
func avChildren(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		comm, rest := s[open+1:end], strings.Fields(s[end+1:])
		if len(rest) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(rest[1])
		switch comm {
		case "ffmpeg", "ffprobe", "prlimit", "sh":
			if ppid == self {
				found = append(found, e.Name()+" "+comm+" "+rest[0])
			}
		}
	}
	return found
}

// avThumb is a thumbnail request and what it must give.
type avThumb struct {
	query      string // width, height, method, animated
	ctype      string // Content-Type of the answer
	w, h       int
	animated   bool // an animated GIF of more than one frame
	compareAll bool // also over the legacy and federation paths
}

// wantThumb checks a thumbnail answer: 200, the Content-Type, a body that
// decodes as that type to w×h, and for an animated one a GIF of several
// frames.
func wantThumb(t *testing.T, r *e2eResp, want avThumb) {
	t.Helper()
	if !wantStatus(t, r, http.StatusOK) {
		return
	}
	if got := r.Header.Get("Content-Type"); got != want.ctype {
		t.Errorf("%s: Content-Type %q, want %q", r.what, got, want.ctype)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(r.Body))
	if err != nil {
		t.Errorf("%s: body does not decode: %v", r.what, err)
		return
	}
	if "image/"+format != want.ctype {
		t.Errorf("%s: body is %s, served as %s", r.what, format, want.ctype)
	}
	if cfg.Width != want.w || cfg.Height != want.h {
		t.Errorf("%s: %dx%d, want %dx%d", r.what, cfg.Width, cfg.Height, want.w, want.h)
	}
	frames := 1
	if format == "gif" {
		g, err := gif.DecodeAll(bytes.NewReader(r.Body))
		if err != nil {
			t.Errorf("%s: %v", r.what, err)
			return
		}
		frames = len(g.Image)
	}
	if animated := frames > 1; animated != want.animated {
		t.Errorf("%s: %d frames, want animated %v", r.what, frames, want.animated)
	}
}

// TestThumbnailAVE2E: video (MP4 H.264, WebM VP9, MOV), audio (MP3 with
// and without cover art, Opus) and an animated WebP, uploaded as a client
// does with their real Content-Type, give thumbnails of the right type and
// size for crop and scale over the client API; the legacy and federation
// thumbnail paths serve the same bytes; animated=true on the animated WebP
// is an animated GIF, animated=false or absent a still; the ffmpeg metrics
// moved.
func TestThumbnailAVE2E(t *testing.T) {
	testkit.NeedFFmpeg(t)
	dir := t.TempDir()
	tone := []string{"-f", "lavfi", "-i", "sine=frequency=440:duration=2"}
	video := []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2"}
	webp, err := os.ReadFile("../../thumbgen/testdata/anim-lossy.webp") // 64x48, 3 frames
	if err != nil {
		t.Fatal(err)
	}
	// A 320x240 frame is opaque: JPEG. So is cover art (a 64x48 PNG here):
	// ffmpeg hands it over as a 24-bit BMP. A waveform is a PNG of exactly
	// the size asked for, whatever the method.
	frame := []avThumb{
		{query: "width=96&height=96&method=crop", ctype: "image/jpeg", w: 96, h: 96, compareAll: true},
		{query: "width=160&height=100&method=scale", ctype: "image/jpeg", w: 160, h: 120},
		{query: "width=160&height=100&animated=true", ctype: "image/jpeg", w: 160, h: 120},
	}
	waveform := []avThumb{
		{query: "width=96&height=96&method=crop", ctype: "image/png", w: 96, h: 96, compareAll: true},
		{query: "width=160&height=100&method=scale", ctype: "image/png", w: 160, h: 100},
	}
	cases := []struct {
		name, ctype string
		data        []byte
		thumbs      []avThumb
	}{
		{"clip.mp4", "video/mp4", testClip(t, dir), frame},
		{"clip.mov", "video/quicktime", makeMedia(t, dir, "clip.mov", append(video, "-c:v", "mpeg4")...), frame},
		{"tone.mp3", "audio/mpeg", makeMedia(t, dir, "tone.mp3", append(tone, "-c:a", "libmp3lame")...), waveform},
		{"cover.mp3", "audio/mpeg", makeMedia(t, dir, "cover.mp3", append(tone, "-i", testkit.CoverPNG(t, dir, 64, 48),
			"-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "png", "-id3v2_version", "3", "-disposition:v", "attached_pic")...),
			[]avThumb{
				{query: "width=32&height=32&method=crop", ctype: "image/jpeg", w: 32, h: 32, compareAll: true},
				{query: "width=32&height=20&method=scale", ctype: "image/jpeg", w: 32, h: 24},
			}},
		{"anim.webp", "image/webp", webp, []avThumb{
			{query: "width=32&height=20&method=scale&animated=true", ctype: "image/gif", w: 32, h: 24, animated: true, compareAll: true},
			{query: "width=32&height=32&method=crop&animated=true", ctype: "image/gif", w: 32, h: 32, animated: true},
			{query: "width=32&height=20&method=scale&animated=false", ctype: "image/jpeg", w: 32, h: 24, compareAll: true},
			{query: "width=32&height=20&method=scale", ctype: "image/jpeg", w: 32, h: 24},
			{query: "width=32&height=32&method=crop", ctype: "image/jpeg", w: 32, h: 32},
		}},
	}
	if testkit.HasEncoder(t, "libvpx-vp9") {
		cases = append(cases, struct {
			name, ctype string
			data        []byte
			thumbs      []avThumb
		}{"clip.webm", "video/webm", makeMedia(t, dir, "clip.webm", append(video, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8")...), frame})
	} else {
		t.Log("libvpx-vp9 missing: WebM left out")
	}
	if testkit.HasEncoder(t, "libopus") {
		cases = append(cases, struct {
			name, ctype string
			data        []byte
			thumbs      []avThumb
		}{"tone.opus", "audio/ogg", makeMedia(t, dir, "tone.opus", append(tone, "-c:a", "libopus")...), waveform})
	} else {
		t.Log("libopus missing: Opus left out")
	}

	s, keyB := startFederatedE2E(t, func(c *config.Config) {
		c.Metrics = config.Metrics{Listen: "127.0.0.1:0"}
		c.Thumbnails.Pregenerate = false // every thumbnail is made on request
	})
	m := metricsAddrRE.FindStringSubmatch(s.log.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", s.log)
	}
	if fams := scrape(t, "http://"+m[1]); func() bool { v, ok := metricValue(fams, "mxcas_ffmpeg_children_total"); return !ok || v != 0 }() {
		t.Errorf("mxcas_ffmpeg_children_total before any thumbnail: want present and 0")
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := s.upload(t, hostA, aliceToken, c.name, c.ctype, c.data)
			for _, th := range c.thumbs {
				client := s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/thumbnail/a.test/"+id+"?"+th.query, aliceToken, nil, nil)
				wantThumb(t, client, th)
				if !th.compareAll || client.Status != http.StatusOK {
					continue
				}
				legacy := s.do(t, http.MethodGet, hostA, "/_matrix/media/v3/thumbnail/a.test/"+id+"?"+th.query, "", nil, nil)
				wantBytes(t, legacy, client.Body)
				if got := legacy.Header.Get("Content-Type"); got != th.ctype {
					t.Errorf("%s: Content-Type %q, want %q", legacy.what, got, th.ctype)
				}
				fpath := "/_matrix/federation/v1/media/thumbnail/" + id + "?" + th.query
				auth, err := matrix.SignRequest(http.MethodGet, fpath, hostB, hostA, nil, keyB)
				if err != nil {
					t.Fatal(err)
				}
				fed := s.do(t, http.MethodGet, hostA, fpath, "", nil, map[string]string{"Authorization": auth})
				if !wantStatus(t, fed, http.StatusOK) {
					continue
				}
				_, part, err := matrix.ReadMultipart(fed.Header.Get("Content-Type"), bytes.NewReader(fed.Body))
				if err != nil {
					t.Fatalf("%s: %v", fed.what, err)
				}
				body, err := io.ReadAll(part.Body)
				if err != nil {
					t.Fatalf("%s: %v", fed.what, err)
				}
				if !bytes.Equal(body, client.Body) || part.ContentType != th.ctype {
					t.Errorf("%s: %s of %d bytes (equal %v), want the client's %s of %d bytes",
						fed.what, part.ContentType, len(body), bytes.Equal(body, client.Body), th.ctype, len(client.Body))
				}
			}
		})
	}

	fams := scrape(t, "http://"+m[1])
	if v, _ := metricValue(fams, "mxcas_ffmpeg_children_total"); v <= 0 {
		t.Errorf("mxcas_ffmpeg_children_total = %v after video thumbnails, want > 0", v)
	}
	if v, _ := metricValue(fams, "mxcas_ffmpeg_child_max_rss_bytes"); v <= 0 {
		t.Errorf("mxcas_ffmpeg_child_max_rss_bytes = %v after video thumbnails, want > 0", v)
	}
}

// TestThumbnailAVHostileE2E: a truncated MP4, a Y4M declaring 60000x60000
// (as itself and as video/mp4) and a valid 10-hour FLAC are refused with
// 400 M_UNKNOWN or 413 M_TOO_LARGE, never a 5xx; afterwards the server is
// ready and thumbnails an image, DATA/tmp holds no copy of a source and no
// ffmpeg child of this process is left.
func TestThumbnailAVHostileE2E(t *testing.T) {
	testkit.NeedFFmpeg(t)
	dir := t.TempDir()

	// The scan finds a child left running: an ffmpeg of ours waiting on its
	// stdin.
	idle := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "s16le", "-i", "pipe:0", "-f", "null", "-")
	stdin, err := idle.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Start(); err != nil {
		t.Fatal(err)
	}
	seen := avChildren(t)
	stdin.Close()
	idle.Wait()
	if len(seen) == 0 {
		t.Fatalf("the /proc scan did not find a running ffmpeg child (pid %d)", idle.Process.Pid)
	}

	clip := testClip(t, dir)
	y4m := testkit.Y4M(60000, 60000)
	// Ten hours of silence in about 235 KB: FLAC's constant subframes.
	long := makeMedia(t, dir, "silence.flac", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "36000",
		"-c:a", "flac", "-frame_size", "16384")

	s := startE2E(t, func(c *config.Config) {
		c.Thumbnails.Pregenerate = false // no job still running when the children are counted
	})
	for _, c := range []struct {
		name, ctype string
		data        []byte
	}{
		{"truncated.mp4", "video/mp4", clip[:len(clip)/2]},
		{"huge.y4m", "video/x-yuv4mpeg", y4m},
		{"huge.mp4", "video/mp4", y4m},
		{"silence.flac", "audio/flac", long},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := s.upload(t, hostA, aliceToken, c.name, c.ctype, c.data)
			for _, q := range []string{"width=96&height=96&method=crop", "width=320&height=240&method=scale"} {
				r := s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/thumbnail/a.test/"+id+"?"+q, aliceToken, nil, nil)
				switch r.Status {
				case http.StatusBadRequest:
					wantError(t, r, http.StatusBadRequest, "M_UNKNOWN")
				case http.StatusRequestEntityTooLarge:
					wantError(t, r, http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
				default:
					t.Errorf("%s: status %d, want 400 M_UNKNOWN or 413 M_TOO_LARGE; body %s", r.what, r.Status, short(r.Body))
				}
			}
		})
	}

	if r := s.do(t, http.MethodGet, hostA, "/readyz", "", nil, nil); r.Status != http.StatusOK {
		t.Errorf("/readyz after hostile media: %d %s", r.Status, short(r.Body))
	}
	pic, err := os.ReadFile("../../thumbgen/testdata/video-001.png")
	if err != nil {
		t.Fatal(err)
	}
	id := s.upload(t, hostA, aliceToken, "pic.png", "image/png", pic)
	wantThumb(t, s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/thumbnail/a.test/"+id+"?width=32&height=32&method=crop", aliceToken, nil, nil),
		avThumb{ctype: "image/png", w: 32, h: 32})

	left, err := filepath.Glob(filepath.Join(s.dataDir, "tmp", "thumbsrc-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("DATA/tmp holds source copies: %v", left)
	}
	if kids := avChildren(t); len(kids) != 0 {
		t.Errorf("children left (pid comm state): %v", kids)
	}
}

// TestThumbnailAVOffE2E: with [thumbnails] ffmpeg empty, or naming a
// binary that does not exist, the server starts and a video is "cannot
// thumbnail" (400 M_UNKNOWN) as it was before ffmpeg; a missing binary is
// a warning naming ffmpeg in the log.
func TestThumbnailAVOffE2E(t *testing.T) {
	testkit.NeedFFmpeg(t) // to make the clip
	clip := testClip(t, t.TempDir())
	for _, c := range []struct {
		name, ffmpeg string
		warn         bool
	}{
		{"empty", "", false},
		{"missing", "/nonexistent/ffmpeg", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startE2E(t, func(cfg *config.Config) { cfg.Thumbnails.FFmpeg = c.ffmpeg })
			id := s.upload(t, hostA, aliceToken, "clip.mp4", "video/mp4", clip)
			r := s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/thumbnail/a.test/"+id+"?width=96&height=96&method=crop", aliceToken, nil, nil)
			wantError(t, r, http.StatusBadRequest, "M_UNKNOWN")
			warned := false
			for _, line := range strings.Split(s.log.String(), "\n") {
				warned = warned || strings.Contains(line, "level=WARN") && strings.Contains(line, "ffmpeg")
			}
			if warned != c.warn {
				t.Errorf("a warning naming ffmpeg in the log: %v, want %v:\n%s", warned, c.warn, s.log)
			}
		})
	}
}

// TestThumbnailAVPregenerateE2E: an MP4 upload, with pregeneration on,
// has its configured sizes made in the background from one still; asking
// for them then makes nothing and runs no ffmpeg.
func TestThumbnailAVPregenerateE2E(t *testing.T) {
	testkit.NeedFFmpeg(t)
	clip := testClip(t, t.TempDir())
	s := startE2E(t, func(c *config.Config) {
		c.Metrics = config.Metrics{Listen: "127.0.0.1:0"}
		c.Thumbnails.Pregenerate = true
		c.Thumbnails.Sizes = []config.ThumbnailSize{{Width: 32, Height: 32, Method: "crop"}, {Width: 96, Height: 96, Method: "crop"}, {Width: 160, Height: 120, Method: "scale"}}
	})
	m := metricsAddrRE.FindStringSubmatch(s.log.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", s.log)
	}
	base := "http://" + m[1]
	id := s.upload(t, hostA, aliceToken, "clip.mp4", "video/mp4", clip)

	ctx, cancel := context.WithTimeout(context.Background(), e2eBound)
	defer cancel()
	var made, children float64
	waitFor(t, ctx, "the pregenerated thumbnails", func() bool {
		fams := scrape(t, base)
		made, _ = metricValue(fams, "mxcas_thumbnails_made_total")
		children, _ = metricValue(fams, "mxcas_ffmpeg_children_total")
		return made >= 3
	})
	if made != 3 || children <= 0 {
		t.Fatalf("pregeneration made %v thumbnails with %v ffmpeg children, want 3 with some", made, children)
	}
	for _, th := range []avThumb{
		{query: "width=32&height=32&method=crop", ctype: "image/jpeg", w: 32, h: 32},
		{query: "width=96&height=96&method=crop", ctype: "image/jpeg", w: 96, h: 96},
		{query: "width=160&height=120&method=scale", ctype: "image/jpeg", w: 160, h: 120},
	} {
		wantThumb(t, s.do(t, http.MethodGet, hostA, "/_matrix/client/v1/media/thumbnail/a.test/"+id+"?"+th.query, aliceToken, nil, nil), th)
	}
	fams := scrape(t, base)
	made2, _ := metricValue(fams, "mxcas_thumbnails_made_total")
	children2, _ := metricValue(fams, "mxcas_ffmpeg_children_total")
	served, _ := metricValue(fams, "mxcas_thumbnails_served_total")
	if made2 != made || children2 != children || served != 3 {
		t.Errorf("after asking for the pregenerated sizes: made %v -> %v, ffmpeg children %v -> %v, served %v; want no change and 3 served",
			made, made2, children, children2, served)
	}
}
