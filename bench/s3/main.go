// Command s3 measures mxcas on S3-compatible object storage: a versitygw
// it starts on loopback (POSIX backend in a temp directory), reached by
// cas/s3store with a RoundTripper that counts the requests.
//
// With -size it measures upload and download throughput of media.Store
// in-process, on the local chunk store and on S3 in the same run, for
// random content in files of a Matrix-like size mix, with the S3 requests
// per GiB. With -corpus it compares chunker parameters for an S3 store on
// real media: PUTs per GiB stored, stored bytes, the share of near-copies
// stored anew, and GETs per GiB downloaded.
//
//	go run ./bench/s3 -size 256
//	go run ./bench/s3 -corpus ~/.cache/mxcas-corpus/media
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/s3gw"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/paramflag"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

const server = "bench.local"

type config struct {
	tmp      string
	size     int64 // bytes per throughput run; 0: none
	runs     int
	workers  int
	tparams  []chunker.Params // throughput
	cparams  []chunker.Params // corpus comparison
	corpus   string
	gateway  *gateway
	localDir string // where the local stores and the indexes go
}

func main() {
	command.SetupLog("s3")
	vgw := s3gw.Flag()
	tmp := flag.String("tmp", os.TempDir(), "directory for the bucket, the local stores and the indexes")
	size := flag.Int("size", 0, "MiB of random media uploaded per throughput run (0: no throughput runs)")
	runs := flag.Int("runs", 3, "throughput runs; the median is reported")
	workers := flag.Int("workers", 4, "concurrent uploads and downloads")
	tparams := flag.String("params", "16K:64K:256K,256K:1M:4M", "chunker parameter sets of the throughput runs")
	corpus := flag.String("corpus", "", "directory of media files for the chunker comparison (none: no comparison)")
	cparams := flag.String("corpus-params", "16K:64K:256K,64K:256K:1M,256K:1M:4M", "chunker parameter sets compared on the corpus")
	flag.Parse()
	tp, err1 := paramflag.Parse(*tparams)
	cp, err2 := paramflag.Parse(*cparams)
	for _, err := range []error{err1, err2} {
		if err != nil {
			log.Print(err)
		}
	}
	command.CheckArgs(err1 == nil && err2 == nil && *size >= 0 && *runs >= 1 && *workers >= 1 && (*size > 0 || *corpus != ""))
	cfg := config{tmp: *tmp, size: int64(*size) << 20, runs: *runs, workers: *workers, tparams: tp, cparams: cp, corpus: *corpus}
	command.Run(func(ctx context.Context) error { return run(ctx, cfg, *vgw) })
}

func run(ctx context.Context, cfg config, bin string) error {
	work, err := os.MkdirTemp(cfg.tmp, "mxcas-s3bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	root, local := work+"/s3", work+"/local"
	for _, d := range []string{root, local} {
		if err := os.Mkdir(d, 0o750); err != nil {
			return err
		}
	}
	gw, err := s3gw.Start(bin, root)
	if err != nil {
		return err
	}
	defer gw.Stop()
	g := &gateway{Gateway: gw}
	cfg.gateway, cfg.localDir = g, local

	machine.Note()
	fmt.Printf("load:    %s (1, 5, 15 min, at the start)\n", machine.Load())
	fmt.Printf("s3:      %s on %s, POSIX backend under %s; cas/s3store, %d PUTs in flight; in-process media.Store, %d concurrent uploads/downloads; MB = 10^6 bytes\n\n",
		bin, g.Endpoint, root, 16, cfg.workers)
	if cfg.size > 0 {
		if err := throughput(ctx, cfg); err != nil {
			return err
		}
	}
	if cfg.corpus != "" {
		if err := compare(ctx, cfg); err != nil {
			return err
		}
	}
	fmt.Printf("load:    %s (1, 5, 15 min, at the end)\n", machine.Load())
	return nil
}

// backend is where a store's chunks go.
type backend struct {
	name string
	s3   bool
}

var backends = []backend{{"local", false}, {"S3", true}}

// openStore opens a fresh media.Store with chunker p: its index (and, for
// the local backend, its chunks) in a new directory, for S3 its chunks in a
// new bucket whose requests the returned counter counts. cleanup closes the
// store and removes what it stored.
func openStore(cfg config, be backend, p chunker.Params) (st *media.Store, c *counter, cleanup func(), err error) {
	dir, err := os.MkdirTemp(cfg.localDir, "store-")
	if err != nil {
		return nil, nil, nil, err
	}
	opts := media.Options{Dir: dir, Create: true, Chunker: p, Logger: slog.New(slog.DiscardHandler)}
	rm := []string{dir}
	if be.s3 {
		b, err := cfg.gateway.newBucket()
		if err != nil {
			return nil, nil, nil, err
		}
		rm = append(rm, b.dir)
		c = newCounter()
		if opts.Chunks, err = cfg.gateway.open(b, c); err != nil {
			return nil, nil, nil, err
		}
	}
	st, err = media.Open(opts)
	if err != nil {
		return nil, nil, nil, err
	}
	cleanup = func() {
		st.Close()
		for _, d := range rm {
			os.RemoveAll(d)
		}
	}
	return st, c, cleanup, nil
}

// uploadAll uploads the bodies body(i) for i in [0, n) with cfg.workers
// at once and returns their records.
func uploadAll(ctx context.Context, st *media.Store, workers, n int, body func(i int) (io.Reader, int64, func(), error)) ([]media.Media, error) {
	recs := make([]media.Media, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i := range n {
		g.Go(func() error {
			r, size, done, err := body(i)
			if err != nil {
				return err
			}
			defer done()
			m, err := matrix.NewMXC(server, matrix.NewMediaID())
			if err != nil {
				return err
			}
			recs[i], err = st.Upload(gctx, media.UploadInfo{MXC: m, Size: size}, r)
			return err
		})
	}
	return recs, g.Wait()
}

// downloadAll reads every media of recs to its end, workers at once, and
// returns the bytes read.
func downloadAll(ctx context.Context, st *media.Store, workers int, recs []media.Media) (int64, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	sizes := make([]int64, len(recs))
	for i, rec := range recs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			r, _, err := st.Open(rec.MXC)
			if err != nil {
				return err
			}
			defer r.Close()
			if sizes[i], err = io.Copy(io.Discard, r); err != nil {
				return err
			}
			if sizes[i] != rec.Size {
				return fmt.Errorf("%s: read %d bytes of %d", rec.MXC, sizes[i], rec.Size)
			}
			return nil
		})
	}
	err := g.Wait()
	var n int64
	for _, s := range sizes {
		n += s
	}
	return n, err
}

// perGiB is n per GiB of bytes.
func perGiB(n, bytes int64) float64 { return float64(n) / (float64(bytes) / (1 << 30)) }

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }
