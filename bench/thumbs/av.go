package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mxcas/mxcas/bench/internal/target"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/bench/serverproc"
	mxconfig "github.com/mxcas/mxcas/config"
)

// avSource is one media file of the -av measurement, made once by ffmpeg
// from lavfi sources and kept in the work directory.
type avSource struct {
	name        string // "video", "audio"
	file        string // its name in the work directory
	contentType string
	about       string   // what it is, for the header
	args        []string // ffmpeg's arguments making it, before the output
}

// avSources are the two files measured: a 1080p 60 s H.264 MP4 with AAC
// audio (a frame thumbnail) and a 60 s MP3 without cover art (a waveform).
var avSources = []avSource{
	{
		name: "video", file: "av-1080p30-60s.mp4", contentType: "video/mp4",
		about: "1920x1080 H.264 (libx264 veryfast, yuv420p) 30 fps testsrc2, AAC 128 kb/s, 60 s",
		args: []string{
			"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=60",
			"-f", "lavfi", "-i", "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=60",
			"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
			"-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart",
		},
	},
	{
		name: "audio", file: "av-60s.mp3", contentType: "audio/mpeg",
		about: "MP3 (libmp3lame 128 kb/s, 44.1 kHz stereo, no cover art) of a tone swelling every 4 s, 60 s",
		args: []string{
			"-f", "lavfi", "-i", "aevalsrc=exprs=0.8*sin(2*PI*220*t)*abs(sin(PI*t/4))|0.6*sin(2*PI*330*t)*abs(sin(PI*t/4)):sample_rate=44100:duration=60",
			"-c:a", "libmp3lame", "-b:a", "128k",
		},
	},
}

// avKinds are the two thumbnails asked of each source.
var avKinds = []kind{
	{"scale to 320x240", "scale", func(int) (int, int) { return 320, 240 }},
	{"crop to 96x96", "crop", func(int) (int, int) { return 96, 96 }},
}

// avRows are the rows of one source's table.
type avRows struct {
	upload   *report.Row
	first    []*report.Row // per avKinds: the first request, which runs ffmpeg
	stored   []*report.Row // per avKinds: the same request again
	children *report.Row   // ffprobe and ffmpeg children per first thumbnail
	childRSS *report.Row
	peak     *report.Row
	pregen   *report.Row // pregeneration on: upload answered to first thumbnail
	pregenCh *report.Row // pregeneration on: children for the upload's every size
}

func newAVRows(src avSource, size int64) *avRows {
	r := &avRows{
		upload:   &report.Row{Name: fmt.Sprintf("upload (%.1f MB), to its answer", float64(size)/1e6), Unit: "ms"},
		children: &report.Row{Name: "ffprobe/ffmpeg children per first thumbnail", Unit: "children"},
		childRSS: &report.Row{Name: "(5) largest peak RSS of one child", Unit: "MB"},
		peak:     &report.Row{Name: "(6) mxcas VmHWM (peak), pregeneration off", Unit: "MB"},
		pregen:   &report.Row{Name: "(7) pregeneration on: upload answered to first 320x240", Unit: "ms"},
		pregenCh: &report.Row{Name: fmt.Sprintf("pregeneration on: children for the upload's %d sizes", len(mxconfig.Default().Thumbnails.Sizes)), Unit: "children"},
	}
	for k, kd := range avKinds {
		r.first = append(r.first, &report.Row{Name: fmt.Sprintf("(%d) %s, first (runs ffmpeg)", 2*k+1, kd.name), Unit: "ms"})
		r.stored = append(r.stored, &report.Row{Name: fmt.Sprintf("(%d) %s, again (stored)", 2*k+2, kd.name), Unit: "ms"})
	}
	return r
}

func (r *avRows) all() []*report.Row {
	rows := []*report.Row{r.upload}
	for k := range avKinds {
		rows = append(rows, r.first[k], r.stored[k])
	}
	return append(rows, r.children, r.childRSS, r.peak, r.pregen, r.pregenCh)
}

// runAV measures the thumbnails of a video and an audio file: the first
// of each kind on a server without pregeneration, the same again, the
// ffmpeg children's and the server's peak memory, and the wait for the
// first thumbnail right after the upload with pregeneration on.
func runAV(ctx context.Context, cfg config) error {
	machine.Note()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return fmt.Errorf("-av needs ffmpeg (Debian: apt-get install ffmpeg): %w", err)
	}
	sizes := make([]int64, len(avSources))
	for i, src := range avSources {
		n, err := src.make(ctx, cfg.dir)
		if err != nil {
			return err
		}
		sizes[i] = n
	}
	bin, version, err := buildServer(cfg.dir)
	if err != nil {
		return err
	}
	fmt.Printf("server:  %s", version)
	fmt.Printf("dir:     %s; a fresh server for each source and run: [thumbnails] pregenerate = false, workers = CPUs; then one with pregeneration on for (7); every upload new content (the file remuxed with its own comment tag); %d runs (median); MB = 10^6 bytes\n",
		cfg.dir, cfg.runs)
	out, _ := exec.Command("ffmpeg", "-version").Output()
	fmt.Printf("ffmpeg:  %s\n", bytes.TrimSpace(bytes.SplitN(out, []byte("\n"), 2)[0]))
	for i, src := range avSources {
		fmt.Printf("%s:   %s, %.1f MB\n", src.name, src.about, float64(sizes[i])/1e6)
	}
	fmt.Printf("issue 12's reference for images (matrix-media-repo v1.3.7): %d ms to 800x600, %d ms to 96x96, peak RSS %d MB\n",
		mmrScaleMs, mmrCropMs, mmrPeakMB)
	fmt.Printf("load:    %s (1, 5, 15 min) at the start\n\n", machine.Load())

	rows := make([]*avRows, len(avSources))
	for i, src := range avSources {
		rows[i] = newAVRows(src, sizes[i])
	}
	for r := range cfg.runs {
		for i, src := range avSources {
			if err := avOnDemand(ctx, cfg.dir, bin, src, r, rows[i]); err != nil {
				return fmt.Errorf("%s: %w", src.name, err)
			}
		}
		if err := avPregenerated(ctx, cfg.dir, bin, r, rows); err != nil {
			return err
		}
		log.Printf("run %d of %d done (load %s)", r+1, cfg.runs, machine.Load())
	}
	for i, src := range avSources {
		report.Table(os.Stdout, fmt.Sprintf("Thumbnails of the %s through ffmpeg, a fresh server per run", src.name), cfg.runs, rows[i].all()...)
	}
	fmt.Printf("load:    %s (1, 5, 15 min) at the end\n", machine.Load())
	return nil
}

// make writes src into dir unless it is there from an earlier invocation,
// and returns its size.
func (src avSource) make(ctx context.Context, dir string) (int64, error) {
	path := filepath.Join(dir, src.file)
	if fi, err := os.Stat(path); err == nil {
		return fi.Size(), nil
	}
	log.Printf("making %s with ffmpeg (once; kept as %s)", src.name, path)
	tmp := filepath.Join(dir, "making-"+src.file)
	args := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, src.args...)
	if err := ffmpegRun(ctx, append(args, tmp)...); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// variant returns src's bytes remuxed (streams copied) with the comment
// tag, so each upload is content no thumbnail was made of.
func (src avSource) variant(ctx context.Context, dir, tag string) ([]byte, error) {
	out := filepath.Join(dir, "variant-"+src.file)
	defer os.Remove(out)
	args := []string{"-hide_banner", "-loglevel", "error", "-y", "-i", filepath.Join(dir, src.file),
		"-map", "0", "-c", "copy", "-metadata", "comment=" + tag}
	if strings.HasSuffix(src.file, ".mp4") {
		args = append(args, "-movflags", "+faststart")
	}
	if err := ffmpegRun(ctx, append(args, out)...); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// ffmpegRun runs ffmpeg with args; its error output goes into the error.
func ffmpegRun(ctx context.Context, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// avServer is a fresh mxcas on a new data directory with pregenerate as
// given and a metrics listener, and a client of it.
type avServer struct {
	mx      *serverproc.Child
	t       *target.Target
	metrics string // host:port of /metrics
	data    string
}

func startAVServer(ctx context.Context, dir, bin string, pregenerate bool) (*avServer, error) {
	data := filepath.Join(dir, "data")
	if err := os.RemoveAll(data); err != nil {
		return nil, err
	}
	maddr, err := serverproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	extra := fmt.Sprintf("[thumbnails]\npregenerate = %t\n[metrics]\nlisten = %q\n", pregenerate, maddr)
	mx, err := serverproc.StartMxcas(ctx, dir, bin, data, extra)
	if err != nil {
		return nil, err
	}
	t := &target.Target{Base: "http://" + mx.Addr, Host: serverproc.ServerName, Token: serverproc.Token, Client: target.NewClient(1, 3*time.Minute)}
	return &avServer{mx: mx, t: t, metrics: maddr, data: data}, nil
}

// stop stops the server, failing on an unclean exit or logged errors, and
// removes its data.
func (s *avServer) stop() error {
	err := s.mx.StopClean()
	if rerr := os.RemoveAll(s.data); err == nil {
		err = rerr
	}
	return err
}

// upload uploads src remuxed with tag and returns the thumbnail path of
// the new media and how long the upload took to be answered (ms).
func (s *avServer) upload(ctx context.Context, dir string, src avSource, tag string) (path string, ms float64, err error) {
	body, err := src.variant(ctx, dir, tag)
	if err != nil {
		return "", 0, err
	}
	t0 := time.Now()
	id, err := s.t.Upload(ctx, src.file, src.contentType, body)
	if err != nil {
		return "", 0, err
	}
	return "/_matrix/client/v1/media/thumbnail/" + serverproc.ServerName + "/" + id, millis(time.Since(t0)), nil
}

// ffmpegMetrics scrapes the server's ffmpeg metrics: children run and the
// largest peak RSS of one child in MB.
func (s *avServer) ffmpegMetrics(ctx context.Context) (children, maxRSS float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.metrics+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := s.t.Client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || (name != "mxcas_ffmpeg_children_total" && name != "mxcas_ffmpeg_child_max_rss_bytes") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/metrics: %s: %w", sc.Text(), err)
		}
		if name == "mxcas_ffmpeg_children_total" {
			children = f
		} else {
			maxRSS = f / 1e6
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("/metrics: no ffmpeg metrics (was ffmpeg found at start? see %s)", s.mx.LogPath)
	}
	return children, maxRSS, nil
}

// avOnDemand measures src on a fresh server without pregeneration, for run
// r: for each kind an upload of new content, the first thumbnail and the
// same again; then the children's and the server's peak memory.
func avOnDemand(ctx context.Context, dir, bin string, src avSource, r int, rows *avRows) error {
	s, err := startAVServer(ctx, dir, bin, false)
	if err != nil {
		return err
	}
	defer s.mx.Stop()
	var children float64
	for k, kd := range avKinds {
		path, ms, err := s.upload(ctx, dir, src, fmt.Sprintf("mxcas bench run %d %s", r, kd.method))
		if err != nil {
			return err
		}
		if k == 0 {
			rows.upload.Add(ms)
		}
		before, _, err := s.ffmpegMetrics(ctx)
		if err != nil {
			return err
		}
		w, h := kd.size(0)
		d, err := timedThumbnail(ctx, s.t, path, kd.method, w, h)
		if err != nil {
			return err
		}
		rows.first[k].Add(millis(d))
		after, _, err := s.ffmpegMetrics(ctx)
		if err != nil {
			return err
		}
		children = max(children, after-before)
		if d, err = timedThumbnail(ctx, s.t, path, kd.method, w, h); err != nil {
			return err
		}
		rows.stored[k].Add(millis(d))
	}
	_, maxRSS, err := s.ffmpegMetrics(ctx)
	if err != nil {
		return err
	}
	_, hwm, err := serverproc.Memory(s.mx.Pid())
	if err != nil {
		return err
	}
	rows.children.Add(children)
	rows.childRSS.Add(maxRSS)
	rows.peak.Add(hwm)
	return s.stop()
}

// avPregenerated measures, for run r on a fresh server with pregeneration
// on, the wait from each source's upload being answered to its first
// 320x240 thumbnail (the request joins the pregeneration job), then asks
// for every pregenerated size so the server is idle for the next source.
func avPregenerated(ctx context.Context, dir, bin string, r int, rows []*avRows) error {
	s, err := startAVServer(ctx, dir, bin, true)
	if err != nil {
		return err
	}
	defer s.mx.Stop()
	kd := avKinds[0]
	w, h := kd.size(0)
	for i, src := range avSources {
		before, _, err := s.ffmpegMetrics(ctx)
		if err != nil {
			return err
		}
		path, _, err := s.upload(ctx, dir, src, fmt.Sprintf("mxcas bench run %d pregenerated", r))
		if err != nil {
			return fmt.Errorf("%s: %w", src.name, err)
		}
		d, err := timedThumbnail(ctx, s.t, path, kd.method, w, h)
		if err != nil {
			return fmt.Errorf("%s: %w", src.name, err)
		}
		rows[i].pregen.Add(millis(d))
		if err := awaitPregenerated(ctx, s.t, path); err != nil {
			return fmt.Errorf("%s: %w", src.name, err)
		}
		after, _, err := s.ffmpegMetrics(ctx)
		if err != nil {
			return err
		}
		rows[i].pregenCh.Add(after - before)
	}
	return s.stop()
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
