// Command ingest measures upload throughput against what the disk itself
// does, in one run on one directory: the disk's synced sequential write
// speed, media.Store.Upload of new content, re-upload of content already
// stored, and many small concurrent uploads. It also times the stages of an
// upload on their own (chunking, hashing, chunk files, their syncs) so the
// one that dominates is plain. All data is random, generated before the
// clock starts.
//
//	go run ./bench/ingest -dir /tmp/ingest -size 512 [-cpuprofile cpu.out]
//
// The CPU profile carries a "phase" label; look at one phase with
// go tool pprof -tagfocus=phase=ingest cpu.out.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/randfill"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/paramflag"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

const (
	server    = "bench.local"
	writeSize = 1 << 20 // the disk baseline writes this much per call
	smallSize = 4 << 10
)

// Purposes keep the random streams apart: no measurement writes bytes
// another one wrote.
const (
	streamDisk = iota + 1
	streamIngest
	streamSmall
)

type config struct {
	dir         string
	size        int // bytes
	runs        int
	small       int
	concurrency int
	params      chunker.Params
}

func main() {
	code := 0
	defer func() { os.Exit(code) }() // runs last, after the profile is written
	command.SetupLog("ingest")
	dir := flag.String("dir", "", "directory to measure in, on the disk under test (required; created if missing)")
	size := flag.Int("size", 256, "MiB written by the disk baseline and by each large upload")
	runs := flag.Int("runs", 3, "repetitions of each measurement; the median is reported")
	small := flag.Int("small", 2000, "number of small uploads")
	concurrency := flag.Int("concurrency", 8, "concurrent small uploads")
	params := flag.String("params", paramflag.Format([]chunker.Params{chunker.DefaultParams}), "chunker parameters min:avg:max of the stores")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measurements to this file")
	flag.Parse()
	ps, err := paramflag.Parse(*params)
	if err != nil {
		log.Print(err)
	}
	command.CheckArgs(*dir != "" && *size >= 1 && *runs >= 1 && *small >= 1 && *concurrency >= 1 && err == nil && len(ps) == 1)
	cfg := config{dir: *dir, size: *size << 20, runs: *runs, small: *small, concurrency: *concurrency, params: ps[0]}
	if err := os.MkdirAll(cfg.dir, 0o750); err != nil {
		log.Fatal(err)
	}

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if err := run(cfg); err != nil {
		log.Print(err)
		code = 1
	}
}

func run(cfg config) error {
	machine.Note()
	fmt.Printf("dir:     %s; chunker %s; %d MiB per large write or upload, %d runs (median), %d small uploads of %d KiB at concurrency %d; MB = 10^6 bytes\n\n",
		cfg.dir, paramflag.Label(cfg.params), cfg.size>>20, cfg.runs, cfg.small, smallSize>>10, cfg.concurrency)

	rows := newIngestRows(cfg.concurrency)
	// Everything goes in work and is deleted only at the end, so no
	// measurement pays for the deletions of an earlier one (on ext4 without
	// a journal, creating files right after deleting many is slow).
	work, err := os.MkdirTemp(cfg.dir, "ingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	buf := make([]byte, cfg.size)
	smallBuf := make([]byte, cfg.small*smallSize)
	// An interrupt fails the upload in progress, so work is still removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for r := range cfg.runs {
		if err := rows.measureLarge(ctx, cfg, work, r, buf); err != nil {
			return err
		}

		// (4) Small uploads of fresh content, concurrently.
		randfill.Fill(smallBuf, streamSmall, r)
		err := withStore(work, cfg.params, func(dir string, st *media.Store) error {
			d, err := measure(ctx, "small", func() error { return uploadSmall(ctx, st, smallBuf, cfg.concurrency) })
			rows.small.Add(float64(cfg.small) / d.Seconds())
			return err
		})
		if err != nil {
			return err
		}

		// Stages, on the data of (2), into a fresh chunk store.
		if err := stages(ctx, work, cfg.params, buf, &rows.stages); err != nil {
			return err
		}
		log.Printf("run %d of %d done", r+1, cfg.runs)
	}
	report.Table(os.Stdout, "Ingest", cfg.runs, rows.disk, rows.ingest, rows.ratio, rows.reingest, rows.reopened, rows.small)
	sr := rows.stages
	report.Table(os.Stdout, fmt.Sprintf("Stages of an upload, on the %d MiB of (2)", cfg.size>>20), cfg.runs, sr.chunk, sr.hash, sr.cpu, sr.put, sr.commit, sr.idle)
	return nil
}

// ingestRows are the rows of both tables, filled run by run.
type ingestRows struct {
	disk, ingest, ratio, reingest, reopened, small *report.Row
	stages                                         stageRows
}

// stageRows are the rows stages fills.
type stageRows struct {
	chunk, hash, cpu, put, commit, idle *report.Row
}

func newIngestRows(concurrency int) *ingestRows {
	return &ingestRows{
		disk:     &report.Row{Name: "(1) disk: 1 MiB writes + fsync", Unit: "MB/s"},
		ingest:   &report.Row{Name: "(2) upload, new content", Unit: "MB/s", Goal: ">= 0.7 x (1)"},
		ratio:    &report.Row{Name: "    (2)/(1)", Unit: "", Goal: ">= 0.7"},
		reingest: &report.Row{Name: "(3) re-upload, same store handle", Unit: "MB/s", Goal: ">= 800"},
		reopened: &report.Row{Name: "(3') re-upload, store reopened", Unit: "MB/s", Goal: ">= 800"},
		small:    &report.Row{Name: fmt.Sprintf("(4) %d KiB uploads, concurrency %d", smallSize>>10, concurrency), Unit: "uploads/s"},
		stages: stageRows{
			chunk:  &report.Row{Name: "chunker only", Unit: "MB/s"},
			hash:   &report.Row{Name: "BLAKE3 of the whole buffer", Unit: "MB/s"},
			cpu:    &report.Row{Name: "chunk + BLAKE3 per chunk + whole BLAKE3", Unit: "MB/s"},
			put:    &report.Row{Name: "chunk + BLAKE3 + cas.Batch.Put (temp files)", Unit: "MB/s"},
			commit: &report.Row{Name: "cas.Batch.Commit (syncfs, rename, syncfs)", Unit: "s"},
			idle:   &report.Row{Name: "syncfs with nothing dirty", Unit: "ms"},
		},
	}
}

// measureLarge does run r of (1) the disk baseline and (2), (3), (3') the
// large uploads, on buf, in work.
func (rows *ingestRows) measureLarge(ctx context.Context, cfg config, work string, r int, buf []byte) error {
	// (1) and (2) alternate which goes first: this VM's disk takes a
	// burst fast and then slows down, so whichever runs first would
	// look better.
	diskRun := func() error {
		// (1) The disk's own synced write speed.
		randfill.Fill(buf, streamDisk, r)
		d, err := measure(ctx, "disk", func() error { return writeSynced(filepath.Join(work, fmt.Sprintf("disk-%d", r)), buf) })
		if err != nil {
			return err
		}
		rows.disk.Add(mbps(len(buf), d))
		return nil
	}
	var d2, d3, d3r time.Duration
	ingestRun := func() error {
		// (2) New content, (3) the same again, (3') the same after reopening.
		randfill.Fill(buf, streamIngest, r)
		return withStore(work, cfg.params, func(dir string, st *media.Store) error {
			var err error
			if d2, err = measure(ctx, "ingest", func() error { return uploadBytes(ctx, st, buf) }); err != nil {
				return err
			}
			d3, err = measure(ctx, "reingest", func() error { return uploadBytes(ctx, st, buf) })
			return err
		}, func(dir string, st *media.Store) error {
			var err error
			d3r, err = measure(ctx, "reopened", func() error { return uploadBytes(ctx, st, buf) })
			return err
		})
	}
	order := []func() error{diskRun, ingestRun}
	if r%2 == 1 {
		order[0], order[1] = order[1], order[0]
	}
	for _, fn := range order {
		if err := fn(); err != nil {
			return err
		}
	}
	rows.ingest.Add(mbps(len(buf), d2))
	rows.ratio.Add(mbps(len(buf), d2) / rows.disk.Vals[r])
	rows.reingest.Add(mbps(len(buf), d3))
	rows.reopened.Add(mbps(len(buf), d3r))
	return nil
}

func mbps(n int, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// measure times fn, labelled with phase in the CPU profile.
func measure(ctx context.Context, phase string, fn func() error) (time.Duration, error) {
	var d time.Duration
	var err error
	pprof.Do(ctx, pprof.Labels("phase", phase), func(context.Context) {
		t0 := time.Now()
		err = fn()
		d = time.Since(t0)
	})
	return d, err
}

// writeSynced writes b to a new file in writeSize calls and fsyncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	for off := 0; off < len(b); off += writeSize {
		if _, err := f.Write(b[off:min(off+writeSize, len(b))]); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// withStore opens a fresh store under parent and calls each fn in turn,
// closing and reopening the store between them.
func withStore(parent string, p chunker.Params, fns ...func(dir string, st *media.Store) error) error {
	dir, err := os.MkdirTemp(parent, "store-")
	if err != nil {
		return err
	}
	for _, fn := range fns {
		st, err := media.Open(media.Options{Dir: dir, Create: true, Chunker: p, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		err = fn(dir, st)
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func uploadBytes(ctx context.Context, st *media.Store, b []byte) error {
	m, err := matrix.NewMXC(server, matrix.NewMediaID())
	if err != nil {
		return err
	}
	info := media.UploadInfo{MXC: m, Size: int64(len(b))}
	_, err = st.Upload(ctx, info, bytes.NewReader(b))
	return err
}

func uploadSmall(ctx context.Context, st *media.Store, b []byte, concurrency int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for off := 0; off < len(b); off += smallSize {
		g.Go(func() error { return uploadBytes(gctx, st, b[off:off+smallSize]) })
	}
	return g.Wait()
}

// stages times the parts of an upload on their own: the CPU work on b, then
// the chunk files in a fresh cas.Store under parent.
func stages(ctx context.Context, parent string, p chunker.Params, b []byte, sr *stageRows) error {
	if err := stagesCPU(ctx, p, b, sr); err != nil {
		return err
	}
	return stagesStore(ctx, parent, p, b, sr)
}

// stagesCPU times chunking b, hashing it whole, and both together.
func stagesCPU(ctx context.Context, p chunker.Params, b []byte, sr *stageRows) error {
	d, err := measure(ctx, "stage-chunk", func() error {
		ck, err := chunker.New(bytes.NewReader(b), p)
		if err != nil {
			return err
		}
		defer ck.Release()
		for {
			if _, err := ck.Next(); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		}
	})
	if err != nil {
		return err
	}
	sr.chunk.Add(mbps(len(b), d))

	d, _ = measure(ctx, "stage-hash", func() error { cas.Sum(b); return nil })
	sr.hash.Add(mbps(len(b), d))

	d, err = measure(ctx, "stage-cpu", func() error {
		whole := cas.NewHasher()
		err := chunker.Split(b, p, func(c []byte) error {
			cas.Sum(c)
			whole.Write(c)
			return nil
		})
		whole.Sum()
		return err
	})
	if err != nil {
		return err
	}
	sr.cpu.Add(mbps(len(b), d))
	return nil
}

// stagesStore times putting b's chunks into a fresh cas.Store under
// parent, committing them, and a sync with nothing left to write.
func stagesStore(ctx context.Context, parent string, p chunker.Params, b []byte, sr *stageRows) error {
	dir, err := os.MkdirTemp(parent, "cas-")
	if err != nil {
		return err
	}
	cs, err := cas.Open(dir)
	if err != nil {
		return err
	}
	defer cs.Close()
	batch := cs.NewBatch()
	defer batch.Abort()
	d, err := measure(ctx, "stage-put", func() error {
		return chunker.Split(b, p, func(c []byte) error {
			_, err := batch.Put(cas.Sum(c), c)
			return err
		})
	})
	if err != nil {
		return err
	}
	sr.put.Add(mbps(len(b), d))
	d, err = measure(ctx, "stage-commit", batch.Commit)
	if err != nil {
		return err
	}
	sr.commit.Add(d.Seconds())
	d, err = measure(ctx, "stage-sync", cs.Sync)
	if err != nil {
		return err
	}
	sr.idle.Add(float64(d.Microseconds()) / 1000)
	return nil
}
