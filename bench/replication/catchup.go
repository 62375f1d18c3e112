package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/mxcas/mxcas/bench/internal/parallel"
	"github.com/mxcas/mxcas/bench/internal/randfill"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// catchUpRows are the rows of the catch-up table, filled run by run.
type catchUpRows struct {
	load, unique, changes, ratio          *report.Row
	dupUnique, dupLogical, fetched, dupLB *report.Row
	dupRatio                              *report.Row
}

func newCatchUpRows(cfg config) *catchUpRows {
	return &catchUpRows{
		load:       &report.Row{Name: fmt.Sprintf("(0) primary loaded by %d clients, unique bodies", cfg.clients), Unit: "MB/s"},
		unique:     &report.Row{Name: "(1) catch-up, unique bodies: unique content applied", Unit: "MB/s"},
		changes:    &report.Row{Name: "    changes applied", Unit: "changes/s"},
		ratio:      &report.Row{Name: "    chunk bytes fetched / unique bytes", Goal: "= 1"},
		dupUnique:  &report.Row{Name: "(2) catch-up, 1/3 duplicate bodies: unique content applied", Unit: "MB/s"},
		dupLogical: &report.Row{Name: "    logical content applied", Unit: "MB/s"},
		dupLB:      &report.Row{Name: "    logical bytes", Unit: "MB"},
		fetched:    &report.Row{Name: "    chunk bytes fetched", Unit: "MB"},
		dupRatio:   &report.Row{Name: "    chunk bytes fetched / unique bytes", Goal: "= 1"},
	}
}

func (rows *catchUpRows) print(cfg config) {
	report.Table(os.Stdout, fmt.Sprintf("Catch-up: a standby started after the primary holds %s of %s uploads",
		fmtMiB(cfg.size), fmtMiB(int64(cfg.body))), cfg.runs,
		rows.load, rows.unique, rows.changes, rows.ratio, rows.dupUnique, rows.dupLogical, rows.dupLB, rows.fetched, rows.dupRatio)
}

// catchUp is one catch-up's outcome.
type catchUp struct {
	loadTime, time         time.Duration
	changes                uint64
	logical, unique, fetch int64
}

// measure does run r of both catch-ups.
func (rows *catchUpRows) measure(ctx context.Context, cfg config, work string, r int) error {
	buf := make([]byte, cfg.size)
	randfill.Fill(buf, streamCatchUp, r)
	c, err := measureCatchUp(ctx, cfg, work, buf, false)
	if err != nil {
		return err
	}
	rows.load.Add(mbps(c.logical, c.loadTime))
	rows.unique.Add(mbps(c.unique, c.time))
	rows.changes.Add(float64(c.changes) / c.time.Seconds())
	rows.ratio.Add(float64(c.fetch) / float64(c.unique))

	c, err = measureCatchUp(ctx, cfg, work, buf, true)
	if err != nil {
		return err
	}
	rows.dupUnique.Add(mbps(c.unique, c.time))
	rows.dupLogical.Add(mbps(c.logical, c.time))
	rows.dupLB.Add(float64(c.logical) / 1e6)
	rows.fetched.Add(float64(c.fetch) / 1e6)
	rows.dupRatio.Add(float64(c.fetch) / float64(c.unique))
	return nil
}

// measureCatchUp loads a fresh primary with len(buf)/cfg.body uploads cut
// from buf (with dups, every third repeats the one before it), then starts
// the standby and times it until its head is the primary's.
func measureCatchUp(ctx context.Context, cfg config, work string, buf []byte, dups bool) (c catchUp, err error) {
	p, err := openPair(work)
	if err != nil {
		return c, err
	}
	defer func() {
		if cerr := p.close(); err == nil {
			err = cerr
		}
	}()
	n := len(buf) / cfg.body
	body := func(i int) []byte {
		k := i
		if dups {
			k = i/3*2 + min(i%3, 1) // 0 1 1 2 3 3 ...
		}
		return buf[k*cfg.body : (k+1)*cfg.body]
	}
	var next atomic.Int64
	c.loadTime, err = parallel.Run(ctx, cfg.clients, func(ctx context.Context, _ int) error {
		for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
			if err := upload(ctx, p.primary, body(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	// The bodies are random, so their chunks are all distinct: the unique
	// bytes are the distinct bodies'. (The primary's Stats().StoredBytes
	// counts a chunk twice when two concurrent uploads write it.)
	distinct := n
	if dups {
		distinct = (n-1)/3*2 + min((n-1)%3, 1) + 1
	}
	c.logical, c.unique, c.changes = p.primary.Stats().LogicalBytes, int64(distinct*cfg.body), p.primary.Head()

	t0 := time.Now()
	sb, stop, err := p.follow(ctx)
	if err != nil {
		return c, err
	}
	err = p.waitHead(ctx, c.changes)
	c.time = time.Since(t0)
	if serr := stop(); err == nil {
		err = serr
	}
	if err != nil {
		return c, err
	}
	c.fetch = sb.Status().BytesFetched
	if got := p.standby.Stats(); got.StoredBytes != c.unique || got.LogicalBytes != c.logical {
		return c, fmt.Errorf("catch-up: the standby holds %d chunk bytes and %d logical, want %d and %d",
			got.StoredBytes, got.LogicalBytes, c.unique, c.logical)
	}
	return c, nil
}

func upload(ctx context.Context, st *media.Store, b []byte) error {
	m, err := matrix.NewMXC(server, matrix.NewMediaID())
	if err != nil {
		return err
	}
	return uploadAs(ctx, st, m, b)
}

func uploadAs(ctx context.Context, st *media.Store, m matrix.MXC, b []byte) error {
	_, err := st.Upload(ctx, media.UploadInfo{MXC: m, Size: int64(len(b))}, bytes.NewReader(b))
	return err
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

func fmtMiB(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%g MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%g KiB", float64(n)/(1<<10))
}
