package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"log"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mxcas/mxcas/bench/internal/target"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/bench/serverproc"
	mxconfig "github.com/mxcas/mxcas/config"
)

// The photos measured: JPEGs of 5 to 16 megapixels by their header.
const minMP, maxMP = 5, 16

// The reference of issue 12: matrix-media-repo v1.3.7 measured on the
// machine of the README, first 800x600 and 96x96 thumbnail (ms, median of 8
// photos) and peak RSS (MB); the goals are half its waits and at most its
// memory.
const mmrScaleMs, mmrCropMs, mmrPeakMB = 298, 260, 205

// photo is one source image of the first-thumbnail measurement.
type photo struct {
	name string
	w, h int
	jpeg []byte
}

// firstRows are the rows of the first-thumbnail table: per photo and kind
// (perPhoto[i][k]), the median over the photos of each kind, and the
// server's peak memory.
type firstRows struct {
	perPhoto [][]*report.Row
	median   []*report.Row
	peak     *report.Row
}

// runFirst measures, for each photo in photosDir, the wait for the first
// thumbnail of each kind right after uploading it, on a fresh server with
// the default thumbnail settings for every run.
func runFirst(ctx context.Context, cfg config, photosDir string) error {
	machine.Note()
	photos, err := loadPhotos(photosDir)
	if err != nil {
		return err
	}
	bin, version, err := buildServer(cfg.dir)
	if err != nil {
		return err
	}
	fmt.Printf("server:  %s", version)
	fmt.Printf("dir:     %s; %d JPEGs of %d-%d MP from %s; default thumbnail settings (pregeneration on, workers = CPUs); a fresh server each run; %d runs (median); MB = 10^6 bytes\n",
		cfg.dir, len(photos), minMP, maxMP, photosDir, cfg.runs)
	fmt.Printf("issue 12's reference (matrix-media-repo v1.3.7, this machine): %d ms to 800x600, %d ms to 96x96, peak RSS %d MB\n\n",
		mmrScaleMs, mmrCropMs, mmrPeakMB)

	rows := newFirstRows(photos)
	for r := range cfg.runs {
		if err := firstRun(ctx, cfg.dir, bin, photos, rows); err != nil {
			return err
		}
		log.Printf("run %d of %d done", r+1, cfg.runs)
	}
	judge(rows.median[0], mmrScaleMs/2)
	judge(rows.median[1], mmrCropMs/2)
	judge(rows.peak, mmrPeakMB)
	var all []*report.Row
	for _, pr := range rows.perPhoto {
		all = append(all, pr...)
	}
	all = append(append(all, rows.median...), rows.peak)
	report.Table(os.Stdout, "First thumbnail right after the upload, real photos, default thumbnail settings", cfg.runs, all...)
	return nil
}

// loadPhotos reads the JPEGs of 5 to 16 megapixels (by their header) in
// dir, in the order of their names; other files are skipped. It fails if
// there are none.
func loadPhotos(dir string) ([]photo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var photos []photo
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ic, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil || ic.Width*ic.Height < minMP*1e6 || ic.Width*ic.Height > maxMP*1e6 {
			continue
		}
		photos = append(photos, photo{name: e.Name(), w: ic.Width, h: ic.Height, jpeg: b})
	}
	if len(photos) == 0 {
		return nil, fmt.Errorf("%s: no JPEG of %d to %d megapixels", dir, minMP, maxMP)
	}
	return photos, nil
}

func newFirstRows(photos []photo) *firstRows {
	rows := &firstRows{peak: &report.Row{Name: "(3) mxcas VmHWM (peak) over the run", Unit: "MB", Goal: fmt.Sprintf("<= %d (MMR)", mmrPeakMB)}}
	for _, p := range photos {
		var pr []*report.Row
		for _, kd := range kinds {
			pr = append(pr, &report.Row{Name: fmt.Sprintf("%s (%dx%d), %s", p.name, p.w, p.h, kd.name), Unit: "ms"})
		}
		rows.perPhoto = append(rows.perPhoto, pr)
	}
	mmr := []int{mmrScaleMs, mmrCropMs}
	for k, kd := range kinds {
		rows.median = append(rows.median, &report.Row{
			Name: fmt.Sprintf("(%d) %s, median of %d photos", k+1, kd.name, len(photos)),
			Unit: "ms",
			Goal: fmt.Sprintf("<= %d (0.5 x MMR %d)", mmr[k]/2, mmr[k]),
		})
	}
	return rows
}

// firstRun starts mxcas with the default thumbnail settings on a new data
// directory, measures every photo and kind into rows, and adds the server's
// peak memory and the run's medians.
func firstRun(ctx context.Context, dir, bin string, photos []photo, rows *firstRows) error {
	data := filepath.Join(dir, "data")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	defer os.RemoveAll(data)
	mx, err := serverproc.StartMxcas(ctx, dir, bin, data, "")
	if err != nil {
		return err
	}
	defer mx.Stop()
	t := &target.Target{Base: "http://" + mx.Addr, Host: serverproc.ServerName, Token: serverproc.Token, Client: target.NewClient(1, 3*time.Minute)}
	for i, p := range photos {
		for k, kd := range kinds {
			// Each kind uploads distinct content (a byte after the end
			// of the second), so no thumbnail of it is stored yet.
			body := p.jpeg
			if k > 0 {
				body = append(slices.Clip(p.jpeg), make([]byte, k)...)
			}
			ms, err := firstThumbnail(ctx, t, body, kd)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			rows.perPhoto[i][k].Add(ms)
		}
	}
	_, hwm, err := serverproc.Memory(mx.Pid())
	if err != nil {
		return err
	}
	rows.peak.Add(hwm)
	for k := range kinds {
		var run report.Row
		for _, pr := range rows.perPhoto {
			run.Add(pr[k].Vals[len(pr[k].Vals)-1])
		}
		rows.median[k].Add(run.Median())
	}
	return mx.StopClean()
}

// firstThumbnail uploads body and, as soon as the upload is answered, asks
// for the thumbnail kd makes first (kd.size(0)); it returns the time from
// sending that request to its last byte in ms. It checks the thumbnail
// decodes whole to a size that fits, then waits for every pregenerated size
// of the upload so the server is idle before the next measurement.
func firstThumbnail(ctx context.Context, t *target.Target, body []byte, kd kind) (float64, error) {
	id, err := t.Upload(ctx, "", "image/jpeg", body)
	if err != nil {
		return 0, err
	}
	path := "/_matrix/client/v1/media/thumbnail/" + serverproc.ServerName + "/" + id
	w, h := kd.size(0)
	q := thumbnailQuery(path, kd.method, w, h)
	t0 := time.Now()
	thumb, err := fetchThumbnail(ctx, t, q)
	elapsed := time.Since(t0)
	if err != nil {
		return 0, err
	}
	m, format, err := image.Decode(bytes.NewReader(thumb))
	if err != nil {
		return 0, fmt.Errorf("GET %s: %d bytes: %w", q, len(thumb), err)
	}
	if b := m.Bounds(); !fits(kd.method, w, h, b.Dx(), b.Dy()) {
		return 0, fmt.Errorf("GET %s: a %dx%d %s", q, b.Dx(), b.Dy(), format)
	}
	return float64(elapsed.Microseconds()) / 1e3, awaitPregenerated(ctx, t, path)
}

// awaitPregenerated asks for every size the server pregenerates by default
// of the media at path: each answer is stored, joins the pregeneration
// making it, or makes it, so when they are all answered no work on that
// upload is left.
func awaitPregenerated(ctx context.Context, t *target.Target, path string) error {
	for _, z := range mxconfig.Default().Thumbnails.Sizes {
		if _, err := fetchThumbnail(ctx, t, thumbnailQuery(path, z.Method, z.Width, z.Height)); err != nil {
			return err
		}
	}
	return nil
}

// judge appends to r's goal whether its median is at most limit.
func judge(r *report.Row, limit float64) {
	if r.Median() <= limit {
		r.Goal += ": met"
	} else {
		r.Goal += ": NOT met"
	}
}
