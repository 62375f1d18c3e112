package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/mxcas/mxcas/bench/internal/parallel"
	"github.com/mxcas/mxcas/bench/internal/randfill"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/matrix"
)

// steadyRows are the rows of the steady-state table, filled run by run.
type steadyRows struct {
	uploads, mb                    *report.Row
	p50, p90, p99, max             *report.Row
	ch50, ch99, chMax, st50, stMax *report.Row
	applied, final, drain          *report.Row
}

func newSteadyRows(cfg config) *steadyRows {
	return &steadyRows{
		uploads: &report.Row{Name: fmt.Sprintf("(3) %s uploads on the primary, %d clients", fmtMiB(int64(cfg.body)), cfg.clients), Unit: "uploads/s"},
		mb:      &report.Row{Name: "    the same in bytes", Unit: "MB/s"},
		p50:     &report.Row{Name: "(4) lag of an upload: p50", Unit: "ms"},
		p90:     &report.Row{Name: "    p90", Unit: "ms"},
		p99:     &report.Row{Name: "    p99", Unit: "ms"},
		max:     &report.Row{Name: "    max", Unit: "ms"},
		ch50:    &report.Row{Name: "(5) lag in changes, every 100 ms: p50", Unit: "changes"},
		ch99:    &report.Row{Name: "    p99", Unit: "changes"},
		chMax:   &report.Row{Name: "    max", Unit: "changes"},
		st50:    &report.Row{Name: "    Status().LagChanges: p50", Unit: "changes"},
		stMax:   &report.Row{Name: "    Status().LagChanges: max", Unit: "changes"},
		applied: &report.Row{Name: "(6) changes applied by the standby during the stream", Unit: "changes/s"},
		final:   &report.Row{Name: "    lag when the stream stops", Unit: "changes"},
		drain:   &report.Row{Name: "    time to drain it", Unit: "ms"},
	}
}

func (rows *steadyRows) print(cfg config) {
	rate := "as fast as they can"
	if cfg.rate > 0 {
		rate = fmt.Sprintf("at %g uploads/s in all", cfg.rate)
	}
	report.Table(os.Stdout, fmt.Sprintf("Steady state: %d clients upload fresh %s bodies %s for %s (media.Store.Upload, in process) while the standby follows",
		cfg.clients, fmtMiB(int64(cfg.body)), rate, cfg.duration), cfg.runs,
		rows.uploads, rows.mb, rows.p50, rows.p90, rows.p99, rows.max,
		rows.ch50, rows.ch99, rows.chMax, rows.st50, rows.stMax, rows.applied, rows.final, rows.drain)
}

// acked is an upload as the primary acknowledged it: when Upload
// returned, and the primary's head read just after.
type acked struct {
	mxc  matrix.MXC
	at   time.Time
	head uint64
}

// advance is the standby's head reaching head at time at.
type advance struct {
	at   time.Time
	head uint64
}

// measure does run r of the steady state.
func (rows *steadyRows) measure(ctx context.Context, cfg config, work string, r int) (err error) {
	p, err := openPair(work)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := p.close(); err == nil {
			err = cerr
		}
	}()
	sb, stop, err := p.follow(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if serr := stop(); err == nil {
			err = serr
		}
	}()

	// The watcher records every advance of the standby's head; the
	// sampler the lag in changes every 100 ms. Both end with wctx.
	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var advances []advance
	var lagTrue, lagStatus []float64
	wg.Add(2)
	go func() {
		defer wg.Done()
		var last uint64
		for {
			ch := p.standby.HeadChanged()
			if h := p.standby.Head(); h > last {
				advances = append(advances, advance{time.Now(), h})
				last = h
			}
			select {
			case <-ch:
			case <-wctx.Done():
				// The head waitHead saw, should this loop not have run since.
				if h := p.standby.Head(); h > last {
					advances = append(advances, advance{time.Now(), h})
				}
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				ph, sh := p.primary.Head(), p.standby.Head()
				lagTrue = append(lagTrue, float64(ph-min(ph, sh)))
				lagStatus = append(lagStatus, float64(sb.Status().LagChanges))
			case <-wctx.Done():
				return
			}
		}
	}()

	acks := make([][]acked, cfg.clients)
	start := time.Now()
	deadline := start.Add(cfg.duration)
	applied0 := p.standby.Head()
	d, err := parallel.Run(ctx, cfg.clients, func(ctx context.Context, client int) error {
		buf := make([]byte, cfg.body)
		for i := 0; time.Now().Before(deadline); i++ {
			randfill.Fill(buf, streamSteady, (r*cfg.clients+client)<<32|i)
			if cfg.rate > 0 {
				// Upload k of all clients is due at k/rate: client c
				// takes k = i*clients + c.
				due := start.Add(time.Duration(float64(i*cfg.clients+client) / cfg.rate * float64(time.Second)))
				if err := sleepUntil(ctx, due); err != nil {
					return err
				}
				if !due.Before(deadline) {
					break
				}
			}
			m, err := matrix.NewMXC(server, matrix.NewMediaID())
			if err != nil {
				return err
			}
			if err := uploadAs(ctx, p.primary, m, buf); err != nil {
				return err
			}
			acks[client] = append(acks[client], acked{m, time.Now(), p.primary.Head()})
		}
		return nil
	})
	stopped := time.Now()
	target := p.primary.Head()
	atStop := p.standby.Head()
	final := target - min(target, atStop)
	if err == nil {
		err = p.waitHead(ctx, target)
	}
	drained := time.Since(stopped)
	wcancel()
	wg.Wait()
	if err != nil {
		return err
	}

	all := slices.Concat(acks...)
	lags := make([]float64, len(all))
	for i, a := range all {
		j := sort.Search(len(advances), func(j int) bool { return advances[j].head >= a.head })
		if j == len(advances) {
			return fmt.Errorf("steady state: the standby never reached change %d", a.head)
		}
		lags[i] = max(0, float64(advances[j].at.Sub(a.at).Microseconds())/1000)
		if _, err := p.standby.Stat(a.mxc); err != nil {
			return fmt.Errorf("steady state: the standby, at its primary's head, lacks %s: %w", a.mxc, err)
		}
	}
	slices.Sort(lags)
	slices.Sort(lagTrue)
	slices.Sort(lagStatus)
	rows.uploads.Add(float64(len(all)) / d.Seconds())
	rows.mb.Add(mbps(int64(len(all))*int64(cfg.body), d))
	rows.p50.Add(quantile(lags, 0.5))
	rows.p90.Add(quantile(lags, 0.9))
	rows.p99.Add(quantile(lags, 0.99))
	rows.max.Add(quantile(lags, 1))
	rows.ch50.Add(quantile(lagTrue, 0.5))
	rows.ch99.Add(quantile(lagTrue, 0.99))
	rows.chMax.Add(quantile(lagTrue, 1))
	rows.st50.Add(quantile(lagStatus, 0.5))
	rows.stMax.Add(quantile(lagStatus, 1))
	rows.applied.Add(float64(atStop-applied0) / d.Seconds())
	rows.final.Add(float64(final))
	rows.drain.Add(float64(drained.Microseconds()) / 1000)
	if f, u := sb.Status().BytesFetched, int64(len(all))*int64(cfg.body); f != u {
		return fmt.Errorf("steady state: the standby fetched %d chunk bytes of %d unique ones uploaded", f, u)
	}
	return nil
}

// quantile returns the q-quantile of sorted v (nearest rank), 0 for none.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return v[min(len(v)-1, int(q*float64(len(v))))]
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
