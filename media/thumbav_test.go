package media_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	_ "image/jpeg" // thumbnails decode as JPEG
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxcas/mxcas/ffmpeg"
	"github.com/mxcas/mxcas/media"
	"github.com/mxcas/mxcas/testkit"
	"github.com/mxcas/mxcas/thumbgen"
)

// avRunner returns a Runner over the installed ffmpeg, or skips the test
// when ffmpeg or ffprobe is missing (fails instead with
// MXCAS_REQUIRE_FFMPEG=1), as ffmpeg's own tests do.
func avRunner(t *testing.T, o ffmpeg.Options) *ffmpeg.Runner {
	t.Helper()
	r, err := ffmpeg.New(o)
	testkit.RequireFFmpeg(t, err)
	return r
}

// makeAV runs ffmpeg with args (inputs, codecs) writing dir/name and
// returns the file's bytes.
func makeAV(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(testkit.GenerateAV(t, dir, name, args...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Media the tests make: 160x120 sources, and audio that is a second of a
// sine (amplitude 1/8) then two of silence.
var (
	redVideo = []string{"-f", "lavfi", "-i", "color=c=red:size=160x120:rate=10:duration=2"}
	toneThen = []string{"-f", "lavfi", "-i", "sine=frequency=440:duration=1,apad=whole_dur=3"}
	h264     = []string{"-c:v", "libx264", "-pix_fmt", "yuv420p"}
)

// redMP4 is a two-second, 160x120, red H.264 MP4.
func redMP4(t *testing.T, dir string) []byte {
	t.Helper()
	return makeAV(t, dir, "red.mp4", append(redVideo, h264...)...)
}

// writeCoverPNG writes a 160x120 cover, yellow on the left half and blue
// on the right, and returns its path.
func writeCoverPNG(t *testing.T, dir string) string {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, 160, 120))
	for y := range 120 {
		for x := range 160 {
			c := color.RGBA{255, 255, 0, 255}
			if x >= 80 {
				c = color.RGBA{0, 0, 255, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "cover.png")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// avStore opens a store in a temp dir with thumbnail options o and returns
// it with its directory.
func avStore(t *testing.T, o media.ThumbnailOptions) (*media.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	return openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams, Thumbnails: o}), dir
}

// uploadAs stores data as id with content type ct.
func uploadAs(t *testing.T, s *media.Store, id, ct string, data []byte) media.Media {
	t.Helper()
	info := media.UploadInfo{MXC: mxc(id), ContentType: ct, Uploader: "@u:server", Size: int64(len(data))}
	rec, err := s.Upload(context.Background(), info, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Upload(%s, %s): %v", id, ct, err)
	}
	return rec
}

// uploadTestImage stores thumbgen's test image name as id.
func uploadTestImage(t *testing.T, s *media.Store, id, name, ct string) media.Media {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "thumbgen", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return uploadAs(t, s, id, ct, b)
}

// thumbImage asks s for req's thumbnail of rec and returns it decoded,
// failing unless its bytes decode as the content type it is stored with
// and to the width and height it is stored with.
func thumbImage(t *testing.T, s *media.Store, rec media.Media, req media.ThumbnailRequest) (image.Image, media.Thumbnail) {
	t.Helper()
	r, tr, err := s.Thumbnail(context.Background(), rec, req)
	if err != nil {
		t.Fatalf("Thumbnail(%s, %+v): %v", rec.MXC, req, err)
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	m, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%+v: thumbnail (%s) does not decode: %v", req, tr.ContentType, err)
	}
	if "image/"+format != tr.ContentType {
		t.Errorf("%+v: thumbnail is %s, stored as %s", req, format, tr.ContentType)
	}
	if got := m.Bounds().Size(); got != image.Pt(tr.Width, tr.Height) {
		t.Errorf("%+v: thumbnail decodes to %v, stored as %dx%d", req, got, tr.Width, tr.Height)
	}
	return m, tr
}

// checkGeometry checks a thumbnail's size against thumbgen's rules for a
// srcW×srcH source at least as large as req: a crop is exactly the size
// asked; a scale keeps the source's aspect ratio and covers the box,
// touching it on one side.
func checkGeometry(t *testing.T, srcW, srcH int, req media.ThumbnailRequest, tr media.Thumbnail) {
	t.Helper()
	w, h := tr.Width, tr.Height
	switch req.Method {
	case thumbgen.Crop:
		if w != req.Width || h != req.Height {
			t.Errorf("crop %dx%d of %dx%d: %dx%d, want exactly the size", req.Width, req.Height, srcW, srcH, w, h)
		}
	default:
		covers := w >= req.Width && h >= req.Height && (w == req.Width || h == req.Height)
		aspect := abs(w*srcH-h*srcW) <= max(srcW, srcH) // within a pixel of rounding
		if !covers || !aspect {
			t.Errorf("scale %dx%d of %dx%d: %dx%d, want the source's shape covering the box", req.Width, req.Height, srcW, srcH, w, h)
		}
	}
}

func abs(x int) int { return max(x, -x) }

// rgbAt is the 8-bit colour of m at (x, y).
func rgbAt(m image.Image, x, y int) (r, g, b uint8) {
	r32, g32, b32, _ := m.At(m.Bounds().Min.X+x, m.Bounds().Min.Y+y).RGBA()
	return uint8(r32 >> 8), uint8(g32 >> 8), uint8(b32 >> 8)
}

// near reports whether (r, g, b) is within 60 of want in each channel.
func near(r, g, b uint8, want color.RGBA) bool {
	d := func(a, b uint8) bool { return abs(int(a)-int(b)) <= 60 }
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}

var (
	red    = color.RGBA{255, 0, 0, 255}
	yellow = color.RGBA{255, 255, 0, 255}
	blue   = color.RGBA{0, 0, 255, 255}
)

// checkPicture checks what a thumbnail of one of the test sources shows:
// a red frame, the yellow and blue cover, or the waveform of a second of
// tone followed by two of silence.
func checkPicture(t *testing.T, kind string, m image.Image) {
	t.Helper()
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	switch kind {
	case "frame":
		if r, g, b := rgbAt(m, w/2, h/2); !near(r, g, b, red) {
			t.Errorf("frame %dx%d: centre is (%d,%d,%d), want red", w, h, r, g, b)
		}
	case "cover":
		if r, g, b := rgbAt(m, w/4, h/2); !near(r, g, b, yellow) {
			t.Errorf("cover %dx%d: left is (%d,%d,%d), want the cover's yellow", w, h, r, g, b)
		}
		if r, g, b := rgbAt(m, 3*w/4, h/2); !near(r, g, b, blue) {
			t.Errorf("cover %dx%d: right is (%d,%d,%d), want the cover's blue", w, h, r, g, b)
		}
	case "waveform":
		// A column's bar is as tall as its peak (1/8 of the height for the
		// tone), at least one pixel (silence). Codecs shift the tone a
		// little: stay clear of its end.
		bar := func(x int) int {
			n := 0
			for y := range h {
				if r, _, _ := rgbAt(m, x, y); r < 0x80 {
					n++
				}
			}
			return n
		}
		for _, x := range []int{w / 10, w / 5, w / 4} {
			if n := bar(x); n < max(2, h*8/100-1) || n > h*14/100+1 { // 1/8, give or take codecs' ringing
				t.Errorf("waveform %dx%d: column %d (tone) has a bar of %d pixels, want about %d", w, h, x, n, h/8)
			}
		}
		for _, x := range []int{w / 2, 2 * w / 3, w - 2} {
			if n := bar(x); n > 1 {
				t.Errorf("waveform %dx%d: column %d (silence) has a bar of %d pixels, want at most 1", w, h, x, n)
			}
		}
		if r, _, _ := rgbAt(m, w/10, h/2); r >= 0x80 {
			t.Errorf("waveform %dx%d: mid-height of a tone column is background", w, h)
		}
		if r, _, _ := rgbAt(m, w/2, h/4); r < 0x80 {
			t.Errorf("waveform %dx%d: a silent column is barred a quarter of the way down", w, h)
		}
	}
}

// avRequests are the thumbnails asked of each 160x120 test source: crop
// and scale at two sizes, each smaller than the source.
var avRequests = []media.ThumbnailRequest{
	{Width: 48, Height: 48, Method: thumbgen.Crop},
	{Width: 96, Height: 64, Method: thumbgen.Crop},
	{Width: 64, Height: 64, Method: thumbgen.Scale},
	{Width: 120, Height: 60, Method: thumbgen.Scale},
}

// avSizes are avRequests as pregenerated sizes.
func avSizes() []media.ThumbnailSize {
	var z []media.ThumbnailSize
	for _, req := range avRequests {
		z = append(z, media.ThumbnailSize{Width: req.Width, Height: req.Height, Method: req.Method})
	}
	return z
}

func TestAVThumbnails(t *testing.T) {
	r := avRunner(t, ffmpeg.Options{})
	dir := t.TempDir()
	cover := writeCoverPNG(t, dir)
	type avCase struct {
		name, contentType, encoder string
		kind                       string // "frame", "cover" or "waveform"
		args                       []string
	}
	cases := []avCase{
		{"red.mp4", "video/mp4", "libx264", "frame", append(redVideo, h264...)},
		{"red.webm", "video/webm", "libvpx-vp9", "frame", append(redVideo, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8")},
		{"red.mov", "video/quicktime", "libx264", "frame", append(redVideo, h264...)},
		{"red.mkv", "video/x-matroska", "mpeg4", "frame", append(append(redVideo, toneThen...), "-c:v", "mpeg4", "-c:a", "pcm_s16le", "-shortest")},
		{"cover.mp3", "audio/mpeg", "libmp3lame", "cover", append(toneThen, "-i", cover, "-map", "0", "-map", "1",
			"-c:a", "libmp3lame", "-c:v", "png", "-id3v2_version", "3", "-disposition:v", "attached_pic")},
		{"tone.mp3", "audio/mpeg", "libmp3lame", "waveform", append(toneThen, "-c:a", "libmp3lame")},
		{"tone.ogg", "audio/ogg", "libopus", "waveform", append(toneThen, "-c:a", "libopus")},
		{"tone.flac", "audio/flac", "flac", "waveform", append(toneThen, "-c:a", "flac")},
		{"tone.m4a", "audio/mp4", "aac", "waveform", append(toneThen, "-c:a", "aac")},
		{"red.avif", "image/avif", "libaom-av1", "frame", append(redVideo, "-frames:v", "1", "-c:v", "libaom-av1", "-still-picture", "1", "-cpu-used", "8")},
	}
	// Each source's avRequests are pregenerated (one probe and one decode
	// for all four: a child costs ~0.1 s) and then asked for; one more size
	// is made on request.
	s, data := avStore(t, media.ThumbnailOptions{Disabled: true, FFmpeg: r, Sizes: avSizes()})
	onRequest := media.ThumbnailRequest{Width: 80, Height: 40, Method: thumbgen.Crop}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !testkit.HasEncoder(t, c.encoder) {
				t.Skipf("encoder %s missing: %s left out", c.encoder, c.name)
			}
			rec := uploadAs(t, s, "av"+strconv.Itoa(i), c.contentType, makeAV(t, dir, c.name, c.args...))
			want := "image/jpeg" // a BMP still thumbnails as JPEG
			if c.kind == "waveform" {
				want = "image/png"
			}
			if err := s.Pregenerate(context.Background(), rec); err != nil {
				t.Fatalf("Pregenerate: %v", err)
			}
			for _, req := range append(avRequests, onRequest) {
				m, tr := thumbImage(t, s, rec, req)
				if tr.ContentType != want {
					t.Errorf("%+v: %s, want %s", req, tr.ContentType, want)
				}
				if c.kind == "waveform" {
					if tr.Width != req.Width || tr.Height != req.Height {
						t.Errorf("waveform %+v: %dx%d, want exactly the size", req, tr.Width, tr.Height)
					}
				} else {
					checkGeometry(t, 160, 120, req, tr)
				}
				checkPicture(t, c.kind, m)
			}
		})
	}
	checkTmpEmpty(t, data)
	checkNoChildren(t)
}

// TestAVPregeneration: an upload's configured sizes are made in the
// background from one probe and one decode, and served from the store
// afterwards without running ffmpeg again.
func TestAVPregeneration(t *testing.T) {
	r := avRunner(t, ffmpeg.Options{})
	dir := t.TempDir()
	s, data := avStore(t, media.ThumbnailOptions{FFmpeg: r})
	sources := []struct {
		id, contentType, kind string
		data                  []byte
	}{
		{"video", "video/mp4", "frame", redMP4(t, dir)},
		{"audio", "audio/mpeg", "waveform", makeAV(t, dir, "tone.mp3", append(toneThen, "-c:a", "libmp3lame")...)},
	}
	sizes := media.DefaultThumbnailSizes
	for _, src := range sources {
		runs, made := r.Stats().Runs, s.Stats().ThumbnailsMade
		rec := uploadAs(t, s, src.id, src.contentType, src.data)
		s.WaitThumbnailQueue()
		if got := s.Stats().ThumbnailsMade - made; got != int64(len(sizes)) {
			t.Errorf("%s: pregenerated %d thumbnails, want %d", src.id, got, len(sizes))
		}
		if got := r.Stats().Runs - runs; got != 2 {
			t.Errorf("%s: pregeneration ran %d children, want 2 (one probe, one decode for every size)", src.id, got)
		}
		runs, made = r.Stats().Runs, s.Stats().ThumbnailsMade
		for _, z := range sizes {
			m, _ := thumbImage(t, s, rec, media.ThumbnailRequest{Width: z.Width, Height: z.Height, Method: z.Method})
			if src.kind == "waveform" && m.Bounds().Size() != image.Pt(z.Width, z.Height) {
				t.Errorf("%s %+v: waveform of %v", src.id, z, m.Bounds().Size())
			}
			checkPicture(t, src.kind, m)
		}
		if got := r.Stats().Runs; got != runs {
			t.Errorf("%s: requests for pregenerated sizes ran ffmpeg %d times", src.id, got-runs)
		}
		if got := s.Stats().ThumbnailsMade; got != made {
			t.Errorf("%s: requests for pregenerated sizes generated %d thumbnails", src.id, got-made)
		}
	}
	checkTmpEmpty(t, data)
}

// TestAVWithoutFFmpeg: with no Runner configured, video and audio cannot be
// thumbnailed and are not queued for pregeneration.
func TestAVWithoutFFmpeg(t *testing.T) {
	avRunner(t, ffmpeg.Options{}) // ffmpeg is needed to make the media
	dir := t.TempDir()
	s, _ := avStore(t, media.ThumbnailOptions{})
	for _, src := range []struct {
		contentType string
		data        []byte
	}{
		{"video/mp4", redMP4(t, dir)},
		{"audio/mpeg", makeAV(t, dir, "tone.mp3", append(toneThen, "-c:a", "libmp3lame")...)},
	} {
		rec := uploadAs(t, s, strings.ReplaceAll(src.contentType, "/", "-"), src.contentType, src.data)
		s.WaitThumbnailQueue()
		_, _, err := s.Thumbnail(context.Background(), rec, media.ThumbnailRequest{Width: 32, Height: 32, Method: thumbgen.Crop})
		if !errors.Is(err, media.ErrCannotThumbnail) {
			t.Errorf("%s without ffmpeg: %v, want ErrCannotThumbnail", src.contentType, err)
		}
	}
	if n := s.Stats().ThumbnailsMade; n != 0 {
		t.Errorf("without ffmpeg, %d thumbnails were made of video and audio", n)
	}
}

// TestAVHostile: hostile media is refused with the right class of error,
// leaving no copy in DATA/tmp and no child behind, and the store serves
// thumbnails afterwards.
func TestAVHostile(t *testing.T) {
	r := avRunner(t, ffmpeg.Options{})
	dir := t.TempDir()
	s, data := avStore(t, media.ThumbnailOptions{Disabled: true, FFmpeg: r})
	mp4 := redMP4(t, dir)
	// With its index first, a truncated MP4 probes fine and fails to decode.
	faststart := makeAV(t, dir, "faststart.mp4", append(append(redVideo, h264...), "-movflags", "+faststart")...)
	flac := testkit.GenerateAV(t, dir, "silence.flac", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "1", "-c:a", "flac")
	testkit.ForgeFLACDuration(t, flac, 10*3600, 8000)
	tenHours, err := os.ReadFile(flac)
	if err != nil {
		t.Fatal(err)
	}
	streams := []string{"-f", "lavfi", "-i", "sine=duration=0.2"}
	for range ffmpeg.DefaultMaxStreams + 4 {
		streams = append(streams, "-map", "0:a")
	}
	manyStreams := makeAV(t, dir, "streams.mkv", append(streams, "-c:a", "pcm_s16le")...)

	cases := []struct {
		name, contentType string
		data              []byte
		want              error
	}{
		{"truncated mp4", "video/mp4", mp4[:len(mp4)/2], media.ErrCannotThumbnail},
		{"truncated faststart mp4", "video/mp4", faststart[:len(faststart)/2], media.ErrCannotThumbnail},
		{"60000x60000 y4m", "video/x-yuv4mpegpipe", testkit.Y4M(60000, 60000), media.ErrCannotThumbnail},
		{"60000x60000 y4m as mp4", "video/mp4", testkit.Y4M(60000, 60000), media.ErrCannotThumbnail},
		{"16000x16000 y4m", "video/x-yuv4mpegpipe", testkit.Y4M(16000, 16000), media.ErrThumbnailTooLarge},
		{"10-hour flac", "audio/flac", tenHours, media.ErrThumbnailTooLarge},
		{"mkv of 20 streams", "video/x-matroska", manyStreams, media.ErrThumbnailTooLarge},
		{"text as video", "video/mp4", []byte("not a video at all\n"), media.ErrCannotThumbnail},
	}
	seen := make(map[string]bool)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := uploadAs(t, s, "hostile"+strconv.Itoa(i), c.contentType, c.data)
			for j, req := range avRequests[:2] {
				runs := r.Stats().Runs
				_, _, err := s.Thumbnail(context.Background(), rec, req)
				if !errors.Is(err, c.want) {
					t.Errorf("%+v: %v, want %v", req, err, c.want)
				}
				// The refusal is remembered: another size, or the same
				// content uploaded again, runs nothing.
				if ran := r.Stats().Runs - runs; (j == 0 && !seen[string(c.data)]) != (ran > 0) {
					t.Errorf("request %d (%+v) ran %d children", j, req, ran)
				}
			}
			seen[string(c.data)] = true
			checkTmpEmpty(t, data)
			checkNoChildren(t)
		})
	}
	// Still healthy: an image and a video thumbnail.
	m, _ := thumbImage(t, s, uploadAs(t, s, "ok-video", "video/mp4", mp4), avRequests[0])
	checkPicture(t, "frame", m)
	if _, tr := thumbImage(t, s, uploadTestImage(t, s, "ok-png", "video-001.png", "image/png"), avRequests[0]); tr.ContentType != "image/png" {
		t.Errorf("PNG thumbnail after hostile media: %+v", tr)
	}
}

// checkNoChildren fails if the test process has an ffmpeg, ffprobe,
// prlimit, shell or sleep child (or one named by a test script) left.
func checkNoChildren(t *testing.T, scripts ...string) {
	t.Helper()
	names := map[string]bool{"ffmpeg": true, "ffprobe": true, "prlimit": true, "sh": true, "sleep": true}
	for _, s := range scripts {
		names[filepath.Base(s)] = true
	}
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		comm := string(b[open+1 : end])
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == me && (names[comm] || names[comm[:min(len(comm), 15)]]) {
			t.Errorf("child %s (%s, state %s) left behind", filepath.Dir(p), comm, f[0])
		}
	}
}

// writeScript writes an executable shell script dir/name with body and returns
// its path.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAVReadsCopy: ffprobe and ffmpeg are handed a copy of the media in
// DATA/tmp, never a path into DATA/cas, and the copy is gone afterwards.
func TestAVReadsCopy(t *testing.T) {
	installed := avRunner(t, ffmpeg.Options{})
	mpegPath, probePath := installed.Paths()
	dir := t.TempDir()
	log := filepath.Join(dir, "inputs")
	// Each logs the file it is given (ffprobe's last argument, the one
	// after ffmpeg's -i) and runs the real binary.
	probe := writeScript(t, dir, "log-ffprobe", `for a; do last=$a; done
printf '%s\n' "$last" >> `+log+`
exec `+probePath+` "$@"
`)
	mpeg := writeScript(t, dir, "log-ffmpeg", `prev=
for a; do [ "$prev" = -i ] && printf '%s\n' "$a" >> `+log+`; prev=$a; done
exec `+mpegPath+` "$@"
`)
	r := avRunner(t, ffmpeg.Options{Path: mpeg, ProbePath: probe})
	s, data := avStore(t, media.ThumbnailOptions{Disabled: true, FFmpeg: r})
	rec := uploadAs(t, s, "video", "video/mp4", redMP4(t, dir))
	m, _ := thumbImage(t, s, rec, avRequests[0])
	checkPicture(t, "frame", m)

	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	inputs := strings.Fields(string(b))
	if len(inputs) != 2 {
		t.Fatalf("children were given %q, want one probe and one decode", inputs)
	}
	tmp := filepath.Join(data, "tmp") + string(filepath.Separator)
	for _, in := range inputs {
		p, ok := strings.CutPrefix(in, "file:")
		if !ok || !strings.HasPrefix(p, tmp+"thumbsrc-") {
			t.Errorf("a child read %q, want a file: path of a copy in %s", in, tmp)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the copy %s after the call: %v, want it removed", p, err)
		}
	}
	if inputs[0] != inputs[1] {
		t.Errorf("probe and decode read %s and %s, want the same copy", inputs[0], inputs[1])
	}
	checkTmpEmpty(t, data)
}

// TestAVHoldsWorker: a video thumbnail holds a thumbnail worker while its
// child runs, so with one worker and one waiting place an image request
// waits and the next is ErrBusy; both finish once the child goes on.
func TestAVHoldsWorker(t *testing.T) {
	installed := avRunner(t, ffmpeg.Options{})
	_, probePath := installed.Paths()
	dir := t.TempDir()
	ready, release := filepath.Join(dir, "ready"), filepath.Join(dir, "release")
	for _, p := range []string{ready, release} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	held := writeScript(t, dir, "held-ffprobe", "echo $$ > "+ready+"\nread x < "+release+"\nexec "+probePath+" \"$@\"\n")
	r := avRunner(t, ffmpeg.Options{ProbePath: held})
	s, data := avStore(t, media.ThumbnailOptions{Disabled: true, Workers: 1, MaxWaiting: 1, FFmpeg: r})
	waiting := make(chan struct{}, 4)
	s.SetThumbnailWaitHook(func() { waiting <- struct{}{} })
	video := uploadAs(t, s, "video", "video/mp4", redMP4(t, dir))
	png1 := uploadTestImage(t, s, "png", "video-001.png", "image/png")
	jpeg := uploadTestImage(t, s, "jpeg", "video-001.jpeg", "image/jpeg")
	req := avRequests[0]

	type result struct {
		m   image.Image
		err error
	}
	thumb := func(rec media.Media) <-chan result {
		c := make(chan result, 1)
		go func() {
			r, _, err := s.Thumbnail(context.Background(), rec, req)
			if err != nil {
				c <- result{err: err}
				return
			}
			defer r.Close()
			m, _, err := image.Decode(r)
			c <- result{m, err}
		}()
		return c
	}
	videoc := thumb(video)
	pidc := make(chan []byte, 1)
	go func() { b, _ := os.ReadFile(ready); pidc <- b }() // until the child tells its pid
	var pid int
	select {
	case b := <-pidc:
		var err error
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			t.Fatalf("pid %q: %v", b, err)
		}
	case res := <-videoc:
		t.Fatalf("video thumbnail finished before its child started: %v", res.err)
	}
	t.Cleanup(func() { // before the store closes: a failed test leaves the child blocked
		if t.Failed() {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	select {
	case <-waiting: // sent before the child started
	default:
		t.Fatal("the video request started its child without being admitted")
	}
	pngc := thumb(png1)
	select {
	case <-waiting: // the PNG request now waits for the worker the video holds
	case res := <-pngc:
		t.Fatalf("PNG thumbnail finished without waiting for the worker the video holds: %v", res.err)
	}
	if _, _, err := s.Thumbnail(context.Background(), jpeg, req); !errors.Is(err, media.ErrBusy) {
		t.Errorf("a third request while one runs and one waits: %v, want ErrBusy", err)
	}
	select {
	case res := <-pngc:
		t.Fatalf("PNG thumbnail finished while the video held the only worker: %v", res.err)
	default:
	}
	if err := os.WriteFile(release, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := <-videoc
	if res.err != nil {
		t.Fatalf("video thumbnail: %v", res.err)
	}
	checkPicture(t, "frame", res.m)
	if res := <-pngc; res.err != nil {
		t.Errorf("PNG thumbnail: %v", res.err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d of the probe after the call: %v, want ESRCH", pid, err)
	}
	checkTmpEmpty(t, data)
	checkNoChildren(t, held)
}

// TestAVTimeout: a child that does not finish within the Runner's Timeout
// is killed with its process group and the thumbnail is too large.
func TestAVTimeout(t *testing.T) {
	avRunner(t, ffmpeg.Options{})
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	slow := writeScript(t, dir, "slow-ffprobe", "echo $$ > "+pidFile+"\nexec sleep 1000\n")
	r := avRunner(t, ffmpeg.Options{ProbePath: slow, Timeout: 100 * time.Millisecond})
	s, data := avStore(t, media.ThumbnailOptions{Disabled: true, FFmpeg: r})
	rec := uploadAs(t, s, "video", "video/mp4", redMP4(t, dir))
	if _, _, err := s.Thumbnail(context.Background(), rec, avRequests[0]); !errors.Is(err, media.ErrThumbnailTooLarge) {
		t.Errorf("thumbnail past the Timeout: %v, want ErrThumbnailTooLarge", err)
	}
	// The script may have been killed before it wrote its pid.
	if b, err := os.ReadFile(pidFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
		pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
		if err != nil {
			t.Fatalf("pid %q: %v", b, err)
		}
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d after the timeout: %v, want ESRCH", pid, err)
		}
	} else {
		t.Log("the child was killed before it wrote its pid")
	}
	checkTmpEmpty(t, data)
	checkNoChildren(t, slow)
}

// TestAVRefusalExpires: a refused source is refused again without running
// ffmpeg until the refusal's ten minutes are over, then tried again.
func TestAVRefusalExpires(t *testing.T) {
	r := avRunner(t, ffmpeg.Options{})
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, media.Options{Create: true, Dir: dir, Chunker: smallParams, Now: clk.Now,
		Thumbnails: media.ThumbnailOptions{Disabled: true, FFmpeg: r}})
	rec := uploadAs(t, s, "junk", "video/mp4", []byte("not a video at all\n"))
	try := func(want int64) {
		t.Helper()
		runs := r.Stats().Runs
		if _, _, err := s.Thumbnail(context.Background(), rec, avRequests[0]); !errors.Is(err, media.ErrCannotThumbnail) {
			t.Fatalf("Thumbnail: %v, want ErrCannotThumbnail", err)
		}
		if got := r.Stats().Runs - runs; got != want {
			t.Errorf("ran %d children, want %d", got, want)
		}
	}
	try(1) // ffprobe refuses it
	try(0)
	clk.Advance(9 * time.Minute)
	try(0)
	clk.Advance(2 * time.Minute)
	try(1)
}

// TestAVAnimatedIsStill: animated=true on a video is the same still as
// animated=false, made and stored once.
func TestAVAnimatedIsStill(t *testing.T) {
	r := avRunner(t, ffmpeg.Options{})
	s, _ := avStore(t, media.ThumbnailOptions{Disabled: true, FFmpeg: r})
	rec := uploadAs(t, s, "video", "video/mp4", redMP4(t, t.TempDir()))
	req := avRequests[0]
	_, still := thumbImage(t, s, rec, req)
	runs, made := r.Stats().Runs, s.Stats().ThumbnailsMade
	req.Animated = true
	_, anim := thumbImage(t, s, rec, req)
	if anim != still {
		t.Errorf("animated=true: %+v, want the still %+v", anim, still)
	}
	if r.Stats().Runs != runs || s.Stats().ThumbnailsMade != made {
		t.Errorf("animated=true ran %d children and made %d thumbnails, want none", r.Stats().Runs-runs, s.Stats().ThumbnailsMade-made)
	}
}
