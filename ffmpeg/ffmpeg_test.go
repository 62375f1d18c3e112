package ffmpeg

import (
	"bytes"
	"context"
	"errors"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/image/bmp"
	"golang.org/x/sys/unix"

	"github.com/mxcas/mxcas/testkit"
)

// newRunner returns a Runner over the installed ffmpeg, or skips the test
// when ffmpeg or ffprobe is missing (fails instead with MXCAS_REQUIRE_FFMPEG=1,
// which scripts/test sets after installing it).
func newRunner(t *testing.T, o Options) *Runner {
	t.Helper()
	r, err := New(o)
	testkit.RequireFFmpeg(t, err)
	return r
}

func decodeBMP(t *testing.T, b []byte) image.Image {
	t.Helper()
	m, err := bmp.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("output is not a BMP: %v", err)
	}
	return m
}

func TestFrame(t *testing.T) {
	r := newRunner(t, Options{})
	dir := t.TempDir()
	video := []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3"}
	h264 := "mpeg4"
	if testkit.HasEncoder(t, "libx264") {
		h264 = "libx264"
	}
	cases := []struct {
		name string
		args []string
	}{
		{"clip.mp4", append(video, "-c:v", h264, "-pix_fmt", "yuv420p")},
		{"clip.mov", append(video, "-c:v", "mpeg4")},
		{"with-audio.mkv", append(append(video, "-f", "lavfi", "-i", "sine=duration=3"), "-c:v", "mpeg4", "-c:a", "pcm_s16le")},
	}
	if testkit.HasEncoder(t, "libvpx-vp9") {
		cases = append(cases, struct {
			name string
			args []string
		}{"clip.webm", append(video, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8")})
	} else {
		t.Log("libvpx-vp9 missing: WebM case left out")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testkit.GenerateAV(t, dir, c.name, c.args...)
			b, err := r.Frame(context.Background(), p)
			if err != nil {
				t.Fatalf("Frame: %v", err)
			}
			if got := decodeBMP(t, b).Bounds().Size(); got != image.Pt(320, 240) {
				t.Errorf("frame size %v, want 320x240", got)
			}
		})
	}
}

func TestCover(t *testing.T) {
	r := newRunner(t, Options{})
	dir := t.TempDir()
	cover := testkit.CoverPNG(t, dir, 64, 48)
	sine := []string{"-f", "lavfi", "-i", "sine=duration=2"}
	withCover := testkit.GenerateAV(t, dir, "with-cover.mp3", append(sine, "-i", cover, "-map", "0", "-map", "1",
		"-c:a", "libmp3lame", "-c:v", "png", "-id3v2_version", "3", "-disposition:v", "attached_pic")...)
	plain := testkit.GenerateAV(t, dir, "plain.mp3", append(sine, "-c:a", "libmp3lame")...)
	ctx := context.Background()

	b, err := r.Cover(ctx, withCover)
	if err != nil {
		t.Fatalf("Cover: %v", err)
	}
	if got := decodeBMP(t, b).Bounds().Size(); got != image.Pt(64, 48) {
		t.Errorf("cover size %v, want 64x48", got)
	}
	if _, err := r.Frame(ctx, withCover); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Frame of an MP3 with a cover: %v, want ErrUnsupported (a cover is not video)", err)
	}
	if _, err := r.Cover(ctx, plain); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Cover of an MP3 without one: %v, want ErrUnsupported", err)
	}
	if _, err := r.Frame(ctx, plain); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Frame of an MP3: %v, want ErrUnsupported", err)
	}
	// The cover and the audio are two streams: one allowed is too few.
	small := newRunner(t, Options{MaxStreams: 1})
	if _, err := small.Cover(ctx, withCover); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Cover with MaxStreams 1: %v, want ErrTooLarge", err)
	}
}

func TestWaveform(t *testing.T) {
	r := newRunner(t, Options{})
	dir := t.TempDir()
	if !testkit.HasEncoder(t, "libopus") {
		t.Fatal("libopus encoder missing")
	}
	// One second of a sine (amplitude 1/8) then two of silence.
	p := testkit.GenerateAV(t, dir, "tone.ogg", "-f", "lavfi", "-i", "sine=frequency=440:duration=1,apad=whole_dur=3",
		"-c:a", "libopus")
	peaks, err := r.Waveform(context.Background(), p, 30)
	if err != nil {
		t.Fatalf("Waveform: %v", err)
	}
	if len(peaks) != 30 {
		t.Fatalf("%d peaks, want 30", len(peaks))
	}
	// Opus adds a little delay and ringing; stay clear of the edge.
	for i, v := range peaks {
		switch {
		case i >= 1 && i <= 8 && (v < 0.08 || v > 0.2):
			t.Errorf("peak %d (tone) = %.3f, want about 0.125", i, v)
		case i >= 12 && v > 0.01:
			t.Errorf("peak %d (silence) = %.3f, want about 0", i, v)
		}
	}

	// With MaxAudioDuration 1s only the tone is decoded: every column has it.
	short := newRunner(t, Options{MaxAudioDuration: time.Second})
	peaks, err = short.Waveform(context.Background(), p, 10)
	if err != nil {
		t.Fatalf("Waveform (1s): %v", err)
	}
	for i, v := range peaks[1:9] {
		if v < 0.08 {
			t.Errorf("capped: peak %d = %.3f, want the tone (silence was decoded)", i+1, v)
		}
	}

	video := testkit.GenerateAV(t, dir, "silent.mp4", "-f", "lavfi", "-i", "testsrc=size=64x64:duration=1", "-c:v", "mpeg4")
	if _, err := r.Waveform(context.Background(), video, 10); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Waveform of a video without audio: %v, want ErrUnsupported", err)
	}
}

func TestHostile(t *testing.T) {
	r := newRunner(t, Options{})
	dir := t.TempDir()
	ctx := context.Background()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	mp4 := testkit.GenerateAV(t, dir, "whole.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:duration=2", "-c:v", "mpeg4")
	whole, err := os.ReadFile(mp4)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		want error // nil: any error
	}{
		{"truncated.mp4", whole[:len(whole)/2], nil},
		{"text.txt", []byte("this is not a media file at all\n"), ErrUnsupported},
		{"empty", nil, ErrUnsupported},
		// Within ffmpeg's own size check but over MaxPixels: refused from
		// the probe, before a frame is decoded.
		{"16000x16000.y4m", testkit.Y4M(16000, 16000), ErrTooLarge},
		// ffprobe itself refuses this one.
		{"60000x60000.y4m", testkit.Y4M(60000, 60000), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(c.name, c.data)
			b, err := r.Frame(ctx, p)
			if err == nil {
				t.Fatalf("Frame gave %d bytes, want an error", len(b))
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("Frame: %v, want %v", err, c.want)
			}
		})
	}
}

// TestTimeout runs a fake ffprobe that tells its pid and sleeps: cancelling
// the call returns the context's error, Options.Timeout passing returns
// ErrTimeout, and either way the child's process group is gone.
func TestTimeout(t *testing.T) {
	newRunner(t, Options{}) // ffmpeg must be there for New
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	slow := filepath.Join(dir, "slow-ffprobe")
	script := "#!/bin/sh\necho $$ > " + fifo + "\nexec sleep 1000\n"
	if err := os.WriteFile(slow, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, wrap := range []string{"prlimit", "sh"} {
		t.Run(wrap, func(t *testing.T) {
			r := newRunner(t, Options{ProbePath: slow, Timeout: time.Hour})
			if wrap == "sh" {
				r.limitWrap = ""
			} else if r.limitWrap == "" {
				t.Skip("prlimit not installed")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { _, err := r.Frame(ctx, filepath.Join(dir, "any.mp4")); errc <- err }()
			pidc := make(chan []byte, 1)
			go func() { b, _ := os.ReadFile(fifo); pidc <- b }() // blocks until the child writes its pid
			var b []byte
			select {
			case b = <-pidc:
			case err := <-errc:
				t.Fatalf("Frame returned before the child told its pid: %v", err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid %q: %v", b, err)
			}
			if err := syscall.Kill(-pid, 0); err != nil {
				t.Fatalf("the child is not the leader of its own process group %d: %v", pid, err)
			}
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
				t.Fatalf("Frame after its context was cancelled: %v, want context.Canceled (not ErrTimeout: the source is not at fault)", err)
			}
			if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process group %d after the call: %v, want ESRCH", pid, err)
			}
		})
	}

	// Options.Timeout alone bounds the call.
	sleeper := filepath.Join(dir, "sleeper")
	if err := os.WriteFile(sleeper, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, Options{ProbePath: sleeper, Timeout: 50 * time.Millisecond})
	if _, err := r.Frame(context.Background(), filepath.Join(dir, "any.mp4")); !errors.Is(err, ErrTimeout) {
		t.Errorf("Frame with a 50ms Timeout: %v, want ErrTimeout", err)
	}
}

// TestLimits checks that the child runs under the CPU and memory limits
// (both ways of setting them) and that its output is capped.
func TestLimits(t *testing.T) {
	for _, wrap := range []string{"prlimit", "sh"} {
		t.Run(wrap, func(t *testing.T) {
			r := newRunner(t, Options{MaxCPUSeconds: 7, MaxMemoryBytes: 512 << 20, MaxOutputBytes: 1000})
			if wrap == "sh" {
				r.limitWrap = ""
			} else if r.limitWrap == "" {
				t.Skip("prlimit not installed")
			}
			out, err := r.run(context.Background(), "/bin/sh", "-c", "ulimit -t; ulimit -v")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(out), "7\n524288\n"; got != want {
				t.Errorf("limits %q, want %q", got, want)
			}
			_, err = r.run(context.Background(), "/bin/sh", "-c", "head -c 100000 /dev/zero")
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("100000 bytes of output: %v, want ErrTooLarge", err)
			}
		})
	}
}

func TestStill(t *testing.T) {
	r := newRunner(t, Options{})
	dir := t.TempDir()
	cover := testkit.CoverPNG(t, dir, 64, 48)
	sine := []string{"-f", "lavfi", "-i", "sine=duration=2"}
	cases := []struct {
		name, kind string
		args       []string
	}{
		{"clip.mkv", "frame", []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2", "-f", "lavfi", "-i", "sine=duration=2", "-c:v", "mpeg4", "-c:a", "pcm_s16le"}},
		{"with-cover.mp3", "cover", append(sine, "-i", cover, "-map", "0", "-map", "1",
			"-c:a", "libmp3lame", "-c:v", "png", "-id3v2_version", "3", "-disposition:v", "attached_pic")},
		{"plain.mp3", "waveform", append(sine, "-c:a", "libmp3lame")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := r.Still(context.Background(), testkit.GenerateAV(t, dir, c.name, c.args...), 50)
			if err != nil {
				t.Fatalf("Still: %v", err)
			}
			if st.Kind != c.kind {
				t.Fatalf("Still kind %q, want %q", st.Kind, c.kind)
			}
			switch c.kind {
			case "waveform":
				if len(st.Peaks) != 50 || st.Image != nil {
					t.Errorf("waveform: %d peaks and %d image bytes, want 50 and none", len(st.Peaks), len(st.Image))
				}
			default:
				if st.Peaks != nil {
					t.Errorf("%s has peaks", c.kind)
				}
				decodeBMP(t, st.Image)
			}
		})
	}
	if s := r.Stats(); s.Runs < 6 || s.MaxRSS <= 0 {
		t.Errorf("Stats after 3 Still calls: %+v, want at least 6 runs and a peak RSS", s)
	}
}

// TestMaxFrameSide: a frame larger than the square is scaled down keeping
// its aspect ratio; a smaller one is left alone.
func TestMaxFrameSide(t *testing.T) {
	r := newRunner(t, Options{MaxFrameSide: 100})
	dir := t.TempDir()
	p := testkit.GenerateAV(t, dir, "wide.mp4", "-f", "lavfi", "-i", "testsrc=size=400x200:duration=1", "-c:v", "mpeg4")
	b, err := r.Frame(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeBMP(t, b).Bounds().Size(); got != image.Pt(100, 50) {
		t.Errorf("400x200 frame with MaxFrameSide 100: %v, want 100x50", got)
	}
	small := testkit.GenerateAV(t, dir, "small.mp4", "-f", "lavfi", "-i", "testsrc=size=64x32:duration=1", "-c:v", "mpeg4")
	if b, err = r.Frame(context.Background(), small); err != nil {
		t.Fatal(err)
	}
	if got := decodeBMP(t, b).Bounds().Size(); got != image.Pt(64, 32) {
		t.Errorf("64x32 frame: %v, want it unscaled", got)
	}
}

func TestMaxDuration(t *testing.T) {
	r := newRunner(t, Options{})
	dir := t.TempDir()
	silence := []string{"-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "1", "-c:a", "flac"}
	long := testkit.GenerateAV(t, dir, "ten-hours.flac", silence...)
	testkit.ForgeFLACDuration(t, long, 10*3600, 8000)
	info, err := r.Probe(context.Background(), long)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Probe of a FLAC declaring 10 hours: %+v, %v, want ErrTooLarge", info, err)
	}
	if _, err := r.Still(context.Background(), long, 10); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Still of a FLAC declaring 10 hours: %v, want ErrTooLarge", err)
	}
	hour := testkit.GenerateAV(t, dir, "hour.flac", silence...)
	testkit.ForgeFLACDuration(t, hour, 3600, 8000)
	if info, err := r.Probe(context.Background(), hour); err != nil || info.Duration != time.Hour {
		t.Errorf("Probe of a FLAC declaring an hour: %+v, %v, want 1h0m0s", info, err)
	}
}

// TestFrameShortVideo: a video stream shorter than the point Frame seeks to
// (the audio makes the file longer) gives its first frame rather than none.
func TestFrameShortVideo(t *testing.T) {
	r := newRunner(t, Options{})
	dir := t.TempDir()
	p := testkit.GenerateAV(t, dir, "short-video.mkv", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=0.2",
		"-f", "lavfi", "-i", "sine=duration=20", "-c:v", "mpeg4", "-c:a", "pcm_s16le")
	info, err := r.Probe(context.Background(), p)
	if err != nil || info.Duration < 10*time.Second {
		t.Fatalf("Probe: %+v, %v; want the audio's 20 s", info, err)
	}
	b, err := r.Frame(context.Background(), p)
	if err != nil {
		t.Fatalf("Frame: %v", err)
	}
	if got := decodeBMP(t, b).Bounds().Size(); got != image.Pt(64, 48) {
		t.Errorf("frame %v, want 64x48", got)
	}
}

// TestChildDiesWithServer runs a Runner in a helper process (this test
// binary again) whose ffprobe hangs, kills the helper with SIGKILL, and
// waits (pidfd, no polling) for the child to end: Pdeathsig takes it along.
func TestChildDiesWithServer(t *testing.T) {
	if fifo := os.Getenv("MXCAS_FFMPEG_HELPER_FIFO"); fifo != "" {
		r, err := New(Options{ProbePath: os.Getenv("MXCAS_FFMPEG_HELPER_PROBE"), Timeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Frame(context.Background(), "/nonexistent.mp4")
		t.Fatalf("Frame returned %v: the parent should have been killed first", err)
	}
	newRunner(t, Options{})
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	slow := filepath.Join(dir, "slow-ffprobe")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\necho $$ > "+fifo+"\nexec sleep 1000\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithServer$")
	helper.Env = append(os.Environ(), "MXCAS_FFMPEG_HELPER_FIFO="+fifo, "MXCAS_FFMPEG_HELPER_PROBE="+slow)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fifo) // blocks until the child tells its pid
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid %q: %v", b, err)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", pid, err)
	}
	defer unix.Close(fd)
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 60_000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n != 1 {
			t.Fatalf("child %d still running a minute after its parent was killed (poll %d, %v)", pid, n, err)
		}
		break
	}
}

// TestPlaylistReadsNoOtherFile: an upload that is an HLS playlist (or
// another format naming files) must not make ffmpeg open the local file it
// names: only the container formats in demuxers are opened.
func TestPlaylistReadsNoOtherFile(t *testing.T) {
	r := newRunner(t, Options{})
	dir := t.TempDir()
	secret := testkit.GenerateAV(t, dir, "secret.ts", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1", "-c:v", "mpeg2video")
	if _, err := r.Frame(context.Background(), secret); err != nil {
		t.Fatalf("the MPEG-TS file itself: %v, want a frame", err)
	}
	playlists := map[string]string{
		"hls":    "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nfile:" + secret + "\n#EXT-X-ENDLIST\n",
		"concat": "ffconcat version 1.0\nfile '" + secret + "'\n",
	}
	for name, text := range playlists {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, "upload-"+name) // no extension, as the server's copy
			if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			if st, err := r.Still(context.Background(), p, 10); !errors.Is(err, ErrUnsupported) {
				if st != nil {
					t.Errorf("got a %s of %d bytes", st.Kind, len(st.Image))
				}
				t.Errorf("Still of a %s playlist naming %s: %v; want ErrUnsupported", name, secret, err)
			}
		})
	}
}
