package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/mxcas/mxcas/bench/internal/randfill"
	"github.com/mxcas/mxcas/bench/paramflag"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/chunker"
)

// The size mix of the throughput runs, by share of files: avatars,
// stickers and voice notes; photos; videos. Sizes are log-uniform within a
// class.
var sizeMix = []struct {
	share  float64
	lo, hi float64
}{
	{0.60, 4 << 10, 64 << 10},
	{0.35, 64 << 10, 4 << 20},
	{0.05, 4 << 20, 64 << 20},
}

// planSizes lays out files of the size mix adding up to total bytes (the
// last one cut to fit); the same every run.
func planSizes(total int64) []int64 {
	rng := rand.New(rand.NewPCG(19, 19))
	var sizes []int64
	for sum := int64(0); sum < total; {
		r, c := rng.Float64(), 0
		for ; c < len(sizeMix)-1 && r >= sizeMix[c].share; c++ {
			r -= sizeMix[c].share
		}
		lo, hi := math.Log(sizeMix[c].lo), math.Log(sizeMix[c].hi)
		n := min(int64(math.Exp(lo+rng.Float64()*(hi-lo))), total-sum)
		sizes = append(sizes, n)
		sum += n
	}
	return sizes
}

// tput are the rows of one chunker parameter set.
type tput struct {
	up, down       [2]*report.Row // by backend
	upReq, downReq *report.Row
	upHead, upPut  *report.Row
	dnHead, dnGet  *report.Row
	other          *report.Row
}

func newTput(p chunker.Params) *tput {
	l := paramflag.Label(p)
	row := func(name, unit string) *report.Row { return &report.Row{Name: name + " (" + l + ")", Unit: unit} }
	t := &tput{
		upReq: row("S3 requests per GiB uploaded", "req/GiB"), upHead: row("  HEAD", "req/GiB"), upPut: row("  PUT", "req/GiB"),
		downReq: row("S3 requests per GiB downloaded", "req/GiB"), dnHead: row("  HEAD", "req/GiB"), dnGet: row("  GET", "req/GiB"),
		other: row("S3 other requests (LIST, DELETE, POST)", "req"),
	}
	for i, be := range backends {
		t.up[i] = row("upload, "+be.name, "MB/s")
		t.down[i] = row("download, "+be.name, "MB/s")
	}
	return t
}

func throughput(ctx context.Context, cfg config) error {
	sizes := planSizes(cfg.size)
	fmt.Printf("throughput: %d files, %s of random content per run (%s); each run uploads them into a fresh store of each backend, then downloads them all; the order of the backends alternates by run\n\n",
		len(sizes), mib(cfg.size), mixLabel())
	buf := make([]byte, cfg.size)
	var tables []*tput
	for _, p := range cfg.tparams {
		t := newTput(p)
		tables = append(tables, t)
		for r := range cfg.runs {
			randfill.Fill(buf, 19, r)
			for k := range backends {
				i := (k + r) % len(backends) // alternate who goes first
				if err := t.measure(ctx, cfg, p, r, i, buf, sizes); err != nil {
					return err
				}
			}
		}
	}
	for i, t := range tables {
		report.Table(os.Stdout, "Throughput, chunker "+paramflag.Label(cfg.tparams[i]), cfg.runs,
			t.up[0], t.up[1], t.down[0], t.down[1], t.upReq, t.upHead, t.upPut, t.downReq, t.dnHead, t.dnGet, t.other)
	}
	return nil
}

func mixLabel() string {
	s := ""
	for i, m := range sizeMix {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.0f%% of files %s-%s", m.share*100, short(m.lo), short(m.hi))
	}
	return s
}

func short(b float64) string {
	if b >= 1<<20 {
		return fmt.Sprintf("%.0f MiB", b/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", b/(1<<10))
}

// measure uploads the files of buf into a fresh store of backend i and
// downloads them again, adding the run's figures to t.
func (t *tput) measure(ctx context.Context, cfg config, p chunker.Params, run, i int, buf []byte, sizes []int64) error {
	be := backends[i]
	st, c, cleanup, err := openStore(cfg, be, p)
	if err != nil {
		return err
	}
	defer cleanup()
	offs := make([]int64, len(sizes)+1)
	for k, n := range sizes {
		offs[k+1] = offs[k] + n
	}
	var r0 requests
	if c != nil {
		r0, _ = c.snapshot()
	}
	t0 := time.Now()
	recs, err := uploadAll(ctx, st, cfg.workers, len(sizes), func(k int) (io.Reader, int64, func(), error) {
		return bytes.NewReader(buf[offs[k]:offs[k+1]]), sizes[k], func() {}, nil
	})
	if err != nil {
		return fmt.Errorf("upload to %s: %w", be.name, err)
	}
	dUp := time.Since(t0)
	var r1 requests
	if c != nil {
		r1, _ = c.snapshot()
	}
	t0 = time.Now()
	n, err := downloadAll(ctx, st, cfg.workers, recs)
	if err != nil {
		return fmt.Errorf("download from %s: %w", be.name, err)
	}
	dDown := time.Since(t0)
	total := int64(len(buf))
	t.up[i].Add(float64(total) / 1e6 / dUp.Seconds())
	t.down[i].Add(float64(n) / 1e6 / dDown.Seconds())
	log.Printf("%s run %d, %s: upload %.1fs, download %.1fs", paramflag.Label(p), run+1, be.name, dUp.Seconds(), dDown.Seconds())
	if c == nil {
		return nil
	}
	r2, _ := c.snapshot()
	up, down := r1.sub(r0), r2.sub(r1)
	t.upReq.Add(perGiB(up.total(), total))
	t.upHead.Add(perGiB(up.head, total))
	t.upPut.Add(perGiB(up.put, total))
	t.downReq.Add(perGiB(down.total(), n))
	t.dnHead.Add(perGiB(down.head, n))
	t.dnGet.Add(perGiB(down.get, n))
	t.other.Add(float64(up.list + up.other + down.list + down.other))
	return nil
}
