// Command thumbs measures thumbnail generation through the real server: how
// many thumbnails a second mxcas makes of a 12-megapixel JPEG, to 800x600
// (scale) and to a 96x96 crop, and the server's peak resident memory while
// it does. It builds mxcas from this module and runs it with 2 thumbnail
// workers and pregeneration off, uploads one synthetic 4000x3000 photo-like
// JPEG (the same bytes every time), then has 2 concurrent clients ask for
// N thumbnails of each kind, every one a size not asked for before (800+i x
// 600+i, 96+i x 96+i), so each is generated rather than served from the
// store. One request for a size already made times the stored path.
//
//	go run ./bench/thumbs -dir /tmp/thumbs [-n 20] [-runs 1]
//
// With -photos PHOTOS it measures instead what a Matrix room sees: the wait
// for the first thumbnail of a photo, which every member's client asks for
// seconds after the upload. For each JPEG of 5 to 16 megapixels (by its
// header) in PHOTOS, in name order, it uploads the photo to mxcas running
// with the default thumbnail settings (pregeneration on, a worker per CPU)
// and, as soon as the upload is answered, asks for the 800x600 scale
// thumbnail; then it uploads the photo again with one byte appended after
// its end (other content, so nothing is stored for it) and asks for the
// 96x96 crop. Each wait is timed from sending the request to its last byte;
// each thumbnail must decode to the size asked for. Before the next upload
// it asks for every pregenerated size, so the server is idle again. Each run
// is a fresh server; the table gives every photo's waits, their medians and
// the server's peak RSS (VmHWM) over the run.
//
//	go run ./bench/thumbs -dir /tmp/thumbs -photos /tmp/photos [-runs 1]
//
// The photos of the README's figures are seven wallpapers from Debian 12's
// plasma-workspace-wallpapers (4:5.27.5-2) and mate-backgrounds (1.26.0-1):
//
//	apt-get download plasma-workspace-wallpapers mate-backgrounds
//	for f in *.deb; do dpkg -x "$f" x; done
//	mkdir /tmp/photos
//	for w in Flow Honeywave SafeLanding Shell Volna; do
//		cp x/usr/share/wallpapers/$w/contents/images/5120x2880.jpg /tmp/photos/$w.jpg
//	done
//	cp x/usr/share/wallpapers/Flow/contents/images_dark/5120x2880.jpg /tmp/photos/FlowDark.jpg
//	cp x/usr/share/backgrounds/mate/abstract/Elephants_3840x2160.jpg /tmp/photos/
//
// With -av it measures video and audio thumbnails, made through ffmpeg
// children. Once, ffmpeg makes from lavfi sources a 1080p 60 s H.264 MP4
// (testsrc2 at 30 fps, libx264 veryfast, yuv420p, AAC audio) and a 60 s MP3
// without cover art (a waveform thumbnail), kept in DIR for later
// invocations. Every upload is one of them remuxed (streams copied) with a
// comment tag of its own, so nothing is stored for it. For each file and
// run, a fresh server with pregeneration off gets two uploads: on the first
// it times the first 320x240 scale thumbnail (which runs ffprobe and
// ffmpeg) and the same request again (stored), on the second the same for
// the 96x96 crop; then it reads the largest peak RSS of one ffmpeg child
// (mxcas_ffmpeg_child_max_rss_bytes, from the metrics listener) and the
// server's VmHWM. Last in each run, a fresh server with pregeneration on
// gets each file and is asked for the 320x240 scale as soon as the upload
// is answered, which joins the pregeneration job. Each thumbnail must
// decode to a size that fits.
//
//	go run ./bench/thumbs -dir /tmp/thumbs -av [-runs 1]
//
// The server's log goes to DIR/mxcas.log.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png" // thumbnails may be PNG
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/parallel"
	"github.com/mxcas/mxcas/bench/internal/target"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/bench/serverproc"
)

const (
	photoW, photoH = 4000, 3000
	clients        = 2
	workers        = 2
	peakGoal       = 250 // MB, VmHWM

	// maxDimension is the server's default cap on a requested side; sizes
	// beyond it would be clamped and so repeat.
	maxDimension = 1600
)

// thumbConfig is appended to the configuration bench/load uses.
var thumbConfig = fmt.Sprintf(`[thumbnails]
pregenerate = false
workers = %d
`, workers)

// kind is one of the two requests measured; size(i) is the i-th distinct
// size asked for.
type kind struct {
	name   string
	method string
	size   func(i int) (w, h int)
}

var kinds = []kind{
	{"scale to 800x600", "scale", func(i int) (int, int) { return 800 + i, 600 + i }},
	{"crop to 96x96", "crop", func(i int) (int, int) { return 96 + i, 96 + i }},
}

type config struct {
	dir  string
	n    int // thumbnails per kind and run
	runs int
}

func main() {
	command.SetupLog("thumbs")
	dir := flag.String("dir", "", "directory to work in (required; created if missing)")
	n := flag.Int("n", 20, "distinct thumbnails of each kind per run")
	runs := flag.Int("runs", 1, "repetitions of each measurement; the median is reported")
	photos := flag.String("photos", "", "measure instead the first thumbnail of each 5-16 MP JPEG in this directory")
	av := flag.Bool("av", false, "measure instead the thumbnails of a 1080p 60 s MP4 and a 60 s MP3 (through ffmpeg)")
	flag.Parse()
	command.CheckArgs(*dir != "" && *n >= 1 && *runs >= 1 && !(*av && *photos != ""))
	if *av {
		cfg := config{dir: command.WorkDir(*dir), runs: *runs}
		command.Run(func(ctx context.Context) error { return runAV(ctx, cfg) })
		return
	}
	if *photos != "" {
		cfg := config{dir: command.WorkDir(*dir), runs: *runs}
		command.Run(func(ctx context.Context) error { return runFirst(ctx, cfg, *photos) })
		return
	}
	if w, _ := kinds[0].size(*n**runs - 1); w > maxDimension {
		log.Fatalf("-n x -runs must be at most %d: larger sizes are clamped to %d and would repeat", maxDimension-800, maxDimension)
	}
	cfg := config{dir: command.WorkDir(*dir), n: *n, runs: *runs}
	command.Run(func(ctx context.Context) error { return run(ctx, cfg) })
}

func run(ctx context.Context, cfg config) error {
	machine.Note()

	bin, version, err := buildServer(cfg.dir)
	if err != nil {
		return err
	}
	data := filepath.Join(cfg.dir, "data") // fresh every invocation; removed at the end
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	defer os.RemoveAll(data)

	photo, err := makePhoto()
	if err != nil {
		return err
	}
	mx, err := serverproc.StartMxcas(ctx, cfg.dir, bin, data, thumbConfig)
	if err != nil {
		return err
	}
	defer mx.Stop()

	fmt.Printf("server:  %s", version)
	fmt.Printf("dir:     %s; a %dx%d JPEG of %.1f MB; %d thumbnail workers, %d clients, %d distinct thumbnails of each kind per run; %d runs (median); MB = 10^6 bytes\n\n",
		cfg.dir, photoW, photoH, float64(len(photo))/1e6, workers, clients, cfg.n, cfg.runs)

	t := &target.Target{Base: "http://" + mx.Addr, Host: serverproc.ServerName, Token: serverproc.Token, Client: target.NewClient(clients, 3*time.Minute)}
	id, err := t.Upload(ctx, "", "image/jpeg", photo)
	if err != nil {
		return err
	}
	path := "/_matrix/client/v1/media/thumbnail/" + serverproc.ServerName + "/" + id

	rates := make([]*report.Row, len(kinds))
	for k, kd := range kinds {
		rates[k] = &report.Row{Name: fmt.Sprintf("(%d) %s, new sizes, %d clients", k+1, kd.name, clients), Unit: "thumbnails/s"}
	}
	var (
		stored = &report.Row{Name: "(3) " + kinds[0].name + ", stored, one request", Unit: "ms"}
		rss    = &report.Row{Name: "mxcas VmRSS after the run", Unit: "MB"}
		peak   = &report.Row{Name: "(4) mxcas VmHWM (peak) so far", Unit: "MB", Goal: fmt.Sprintf("< %d", peakGoal)}
	)
	for r := range cfg.runs {
		for k, kd := range kinds {
			d, err := parallel.Run(ctx, clients, func(ctx context.Context, client int) error {
				for i := client; i < cfg.n; i += clients {
					w, h := kd.size(r*cfg.n + i)
					if err := thumbnail(ctx, t, path, kd.method, w, h); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			rates[k].Add(float64(cfg.n) / d.Seconds())
		}
		// The first scale size of this run is stored by now.
		w, h := kinds[0].size(r * cfg.n)
		t0 := time.Now()
		if err := thumbnail(ctx, t, path, kinds[0].method, w, h); err != nil {
			return err
		}
		stored.Add(float64(time.Since(t0).Microseconds()) / 1e3)

		vmRSS, vmHWM, err := serverproc.Memory(mx.Pid())
		if err != nil {
			return err
		}
		rss.Add(vmRSS)
		peak.Add(vmHWM)
		log.Printf("run %d of %d done", r+1, cfg.runs)
	}
	if m := peak.Median(); m < peakGoal {
		peak.Goal += ": met"
	} else {
		peak.Goal += ": NOT met"
	}
	rows := append(rates, stored, rss, peak)
	report.Table(os.Stdout, "Thumbnails of a 12 MP JPEG through the server", cfg.runs, rows...)

	return mx.StopClean()
}

// buildServer builds mxcas into dir and returns its path and the
// output of its version command.
func buildServer(dir string) (bin, version string, err error) {
	bin, err = serverproc.Build(dir)
	if err != nil {
		return "", "", err
	}
	out, _ := exec.Command(bin, "version").Output()
	return bin, string(out), nil
}

// makePhoto encodes a 4000x3000 "photo" at JPEG quality 90: smooth luma and
// chroma gradients with sensor-like noise from a fixed seed, so every run
// uploads the same bytes.
func makePhoto() ([]byte, error) {
	m := image.NewYCbCr(image.Rect(0, 0, photoW, photoH), image.YCbCrSubsampleRatio420)
	rng := rand.New(rand.NewPCG(1, 2))
	for y := range photoH {
		for x := range photoW {
			fx, fy := float64(x)/photoW, float64(y)/photoH
			v := 128 + 80*math.Sin(3*fx+2*fy) + 30*math.Sin(40*fx*fy) + rng.NormFloat64()*6
			m.Y[y*m.YStride+x] = uint8(min(max(v, 0), 255))
		}
	}
	for y := range photoH / 2 {
		for x := range photoW / 2 {
			fx, fy := float64(2*x)/photoW, float64(2*y)/photoH
			m.Cb[y*m.CStride+x] = uint8(128 + 60*math.Cos(2*fx) + rng.NormFloat64()*2)
			m.Cr[y*m.CStride+x] = uint8(128 + 60*math.Sin(3*fy) + rng.NormFloat64()*2)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// thumbnail asks for a w x h thumbnail by method and checks the answer as
// fetchThumbnail does, and that its header gives a size that fits.
func thumbnail(ctx context.Context, t *target.Target, path, method string, w, h int) error {
	_, err := timedThumbnail(ctx, t, path, method, w, h)
	return err
}

// timedThumbnail is thumbnail, returning the time from sending the request
// to the answer's last byte.
func timedThumbnail(ctx context.Context, t *target.Target, path, method string, w, h int) (time.Duration, error) {
	q := thumbnailQuery(path, method, w, h)
	t0 := time.Now()
	body, err := fetchThumbnail(ctx, t, q)
	elapsed := time.Since(t0)
	if err != nil {
		return 0, err
	}
	ic, format, err := image.DecodeConfig(bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("GET %s: %d bytes: %w", q, len(body), err)
	}
	if !fits(method, w, h, ic.Width, ic.Height) {
		return 0, fmt.Errorf("GET %s: a %dx%d %s", q, ic.Width, ic.Height, format)
	}
	return elapsed, nil
}

// thumbnailQuery returns the thumbnail request of media path for a w x h
// thumbnail by method.
func thumbnailQuery(path, method string, w, h int) string {
	return fmt.Sprintf("%s?width=%d&height=%d&method=%s", path, w, h, method)
}

// fetchThumbnail GETs q and returns the whole body of the answer, which must
// be 200 with Content-Type image/*.
func fetchThumbnail(ctx context.Context, t *target.Target, q string) ([]byte, error) {
	resp, err := t.Do(ctx, http.MethodGet, q, "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", q, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "image/") {
		return nil, fmt.Errorf("GET %s: Content-Type %q, want image/*", q, ct)
	}
	return body, nil
}

// fits reports whether a gotW x gotH thumbnail answers a w x h request by
// method: a scale covers the box, touching it on one side (the size asked
// for being a minimum); a crop fills it exactly.
func fits(method string, w, h, gotW, gotH int) bool {
	if method == "crop" {
		return gotW == w && gotH == h
	}
	return gotW >= w && gotH >= h && (gotW == w || gotH == h)
}
