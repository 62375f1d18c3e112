// Command dedup measures what content-defined chunking saves on a corpus of
// real media, for several chunker parameter sets: it ingests every regular
// file under -corpus into a fresh store per set and reports the bytes and
// chunk files stored, against what whole-file deduplication alone would
// store. With -copies and -nearcopies it goes on to upload each file again
// (Matrix forwarding) and slightly changed variants of it, and reports those
// in tables of their own.
//
//	go run ./bench/dedup -corpus ~/.cache/mxcas-corpus/media [-copies 2 -nearcopies]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/nearcopy"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/paramflag"
	"github.com/mxcas/mxcas/cas"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

// defaultParams are measured when -params is not given.
var defaultParams = []chunker.Params{
	{Min: 8 << 10, Avg: 32 << 10, Max: 128 << 10},
	chunker.DefaultParams, // 16K/64K/256K
	{Min: 32 << 10, Avg: 128 << 10, Max: 512 << 10},
	{Min: 64 << 10, Avg: 256 << 10, Max: 1 << 20},
	{Min: 256 << 10, Avg: 1 << 20, Max: 4 << 20},
}

const server = "bench.local"

type file = nearcopy.File

type config struct {
	tmp     string
	workers int
	keep    bool
	copies  int
	near    bool
}

// phase is one ingest loop into a store: what went in and what the store
// held after it.
type phase struct {
	name     string
	uploads  int
	logical  int64
	elapsed  time.Duration
	after    usage // DATA/cas after the phase
	before   usage // DATA/cas before the phase
	objNew   int64 // bytes of whole objects not seen before in this store
	objAfter int64 // bytes of distinct whole objects after the phase
}

func (p phase) mbps() float64 { return float64(p.logical) / 1e6 / p.elapsed.Seconds() }

// usage is what DATA/cas adds up to.
type usage struct {
	chunks int
	bytes  int64 // sum of chunk file sizes
	dirs   int   // directories below DATA/cas
	disk   int64 // blocks allocated to chunk files and those directories
}

type result struct {
	params chunker.Params
	phases []phase // original, then copies, then near-copy variants
}

func main() {
	command.SetupLog("dedup")
	corpus, cfg, params := parseFlags()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	files, logical, distinct := surveyCorpus(corpus, cfg)

	var results []result
	for _, p := range params {
		r, err := run(ctx, cfg, p, files)
		if err != nil {
			log.Fatalf("%s: %v", paramflag.Label(p), err)
		}
		results = append(results, r)
	}

	printCorpus(results, len(files), logical, distinct)
	if cfg.copies > 0 {
		printCopies(results, cfg.copies, logical, distinct)
	}
	if cfg.near {
		printNear(results)
	}
}

// parseFlags reads the command line: the corpus directory, the
// configuration and the chunker parameter sets to compare.
func parseFlags() (corpus string, cfg config, params []chunker.Params) {
	corpusFlag := flag.String("corpus", "", "directory of media files to ingest (required)")
	paramsFlag := flag.String("params", "", `chunker parameter sets "min:avg:max,..." in bytes (K and M suffixes allowed); default `+paramflag.Format(defaultParams))
	tmp := flag.String("tmp", os.TempDir(), "directory the stores are created in")
	workers := flag.Int("workers", 1, "concurrent uploads")
	keep := flag.Bool("keep", false, "keep the stores")
	copies := flag.Int("copies", 0, "upload every file this many extra times under new media IDs (forwarding)")
	near := flag.Bool("nearcopies", false, fmt.Sprintf("also upload, for every file over %d KiB, a variant with %d bytes prepended and one with %d KiB changed in the middle", nearcopy.Min>>10, nearcopy.PrependLen, nearcopy.ChangedLen>>10))
	flag.Parse()
	command.CheckArgs(*corpusFlag != "" && *workers >= 1 && *copies >= 0)
	params = defaultParams
	if *paramsFlag != "" {
		var err error
		if params, err = paramflag.Parse(*paramsFlag); err != nil {
			log.Fatal(err)
		}
	}
	cfg = config{tmp: *tmp, workers: *workers, keep: *keep, copies: *copies, near: *near}
	return *corpusFlag, cfg, params
}

// surveyCorpus lists the files under corpus, hashes each whole (which also
// brings the corpus into the page cache, so that every parameter set reads
// it alike) and prints the header; it returns the files with their total
// and distinct bytes.
func surveyCorpus(corpus string, cfg config) (files []file, logical, distinct int64) {
	files, err := nearcopy.List(corpus)
	if err != nil {
		log.Fatal(err)
	}
	if len(files) == 0 {
		log.Fatalf("no regular files under %s", corpus)
	}
	for _, f := range files {
		logical += f.Size
	}
	t0 := time.Now()
	distinct, distinctFiles, err := wholeFileDistinct(files)
	if err != nil {
		log.Fatal(err)
	}
	hashTime := time.Since(t0)

	machine.Note()
	fmt.Printf("corpus:  %s: %d files, %s; %d distinct whole files, %s (BLAKE3 of every file: %.0f MB/s)\n",
		corpus, len(files), mib(logical), distinctFiles, mib(distinct), float64(logical)/1e6/hashTime.Seconds())
	fmt.Printf("ingest:  media.Store.Upload, %d worker(s), fresh store per parameter set under %s; MB = 10^6 bytes\n\n",
		cfg.workers, cfg.tmp)
	return files, logical, distinct
}

func run(ctx context.Context, cfg config, p chunker.Params, files []file) (result, error) {
	res := result{params: p}
	dir, err := os.MkdirTemp(cfg.tmp, "mxcas-dedup-")
	if err != nil {
		return res, err
	}
	if cfg.keep {
		defer log.Printf("%s: store kept in %s", paramflag.Label(p), dir)
	} else {
		defer os.RemoveAll(dir)
	}
	st, err := media.Open(media.Options{Dir: dir, Create: true, Chunker: p, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, err
	}
	defer st.Close()

	in := &ingest{cfg: cfg, params: p, dir: dir, st: st, files: files, objects: make(map[cas.Hash]struct{}), res: &res}
	all := func(file) bool { return true }
	large := func(f file) bool { return f.Size > nearcopy.Min }
	if err := in.phase(ctx, "corpus", 1, nearcopy.Original, all); err != nil {
		return res, err
	}
	if cfg.copies > 0 {
		if err := in.phase(ctx, "copies", cfg.copies, nearcopy.Original, all); err != nil {
			return res, err
		}
	}
	if cfg.near {
		for _, v := range nearcopy.Variants {
			if err := in.phase(ctx, v.String(), 1, v, large); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// ingest is one store being filled phase by phase, with the whole objects
// it holds so far.
type ingest struct {
	cfg    config
	params chunker.Params
	dir    string
	st     *media.Store
	files  []file

	objects  map[cas.Hash]struct{}
	objBytes int64
	last     usage // DATA/cas after the last phase
	res      *result
}

// phase uploads n times variant v of every file pick accepts and adds the
// phase, with what the store holds after it, to the result.
func (in *ingest) phase(ctx context.Context, name string, n int, v nearcopy.Variant, pick func(file) bool) error {
	ph := phase{name: name, before: in.last}
	var mu sync.Mutex
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(in.cfg.workers)
	for range n {
		for _, f := range in.files {
			if !pick(f) {
				continue
			}
			g.Go(func() error {
				rec, err := upload(gctx, in.st, f, v)
				if err != nil {
					return fmt.Errorf("%s (%s): %w", f.Path, v, err)
				}
				mu.Lock()
				defer mu.Unlock()
				ph.uploads++
				ph.logical += rec.Size
				if _, ok := in.objects[rec.Object]; !ok {
					in.objects[rec.Object] = struct{}{}
					in.objBytes += rec.Size
					ph.objNew += rec.Size
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	ph.elapsed = time.Since(t0)
	ph.objAfter = in.objBytes
	var err error
	if ph.after, err = casUsage(in.dir); err != nil {
		return err
	}
	in.last = ph.after
	in.res.phases = append(in.res.phases, ph)
	log.Printf("%s: %s: %d uploads, %s in %.1fs", paramflag.Label(in.params), name, ph.uploads, mib(ph.logical), ph.elapsed.Seconds())
	return nil
}

// upload stores variant v of f under a new media ID.
func upload(ctx context.Context, st *media.Store, f file, v nearcopy.Variant) (media.Media, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return media.Media{}, err
	}
	defer fh.Close()
	body, size, err := nearcopy.Body(fh, f.Size, v)
	if err != nil {
		return media.Media{}, err
	}
	m, err := matrix.NewMXC(server, matrix.NewMediaID())
	if err != nil {
		return media.Media{}, err
	}
	info := media.UploadInfo{MXC: m, Size: size}
	return st.Upload(ctx, info, body)
}

// wholeFileDistinct hashes every file and returns the bytes and number of
// distinct whole files: what a store that deduplicates only whole files
// would hold.
func wholeFileDistinct(files []file) (int64, int, error) {
	seen := make(map[cas.Hash]struct{}, len(files))
	var total int64
	buf := make([]byte, 1<<20)
	h := cas.NewHasher()
	for _, f := range files {
		fh, err := os.Open(f.Path)
		if err != nil {
			return 0, 0, err
		}
		h.Reset()
		n, err := io.CopyBuffer(h, fh, buf)
		fh.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("hash %s: %w", f.Path, err)
		}
		if n != f.Size {
			return 0, 0, fmt.Errorf("hash %s: %d bytes, listed with %d", f.Path, n, f.Size)
		}
		if _, ok := seen[h.Sum()]; !ok {
			seen[h.Sum()] = struct{}{}
			total += n
		}
	}
	return total, len(seen), nil
}

// casUsage adds up the chunk files and directories under dir/cas.
func casUsage(dir string) (usage, error) {
	var u usage
	root := filepath.Join(dir, "cas")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			u.dirs++
		case d.Type().IsRegular():
			u.chunks++
			u.bytes += info.Size()
		default:
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			u.disk += st.Blocks * 512
		}
		return nil
	})
	return u, err
}

func printCorpus(results []result, files int, logical, distinct int64) {
	fmt.Println("Corpus: every file once")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "params\tfiles\tlogical\tstored\tdedup\twhole-file dedup\tchunks\tmean chunk\tdirs\ton disk\tingest MB/s\t")
	for _, r := range results {
		ph := r.phases[0]
		if ph.objAfter != distinct {
			log.Printf("%s: whole objects stored %d bytes, pre-pass found %d", paramflag.Label(r.params), ph.objAfter, distinct)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.4f\t%.4f\t%d\t%s\t%d\t%s\t%.1f\t\n",
			paramflag.Label(r.params), files, mib(logical), mib(ph.after.bytes),
			ratio(logical, ph.after.bytes), ratio(logical, distinct),
			ph.after.chunks, kib(ph.after.bytes, ph.after.chunks), ph.after.dirs, mib(ph.after.disk), ph.mbps())
	}
	tw.Flush()
	fmt.Println("stored: chunk file sizes under DATA/cas; on disk: blocks of those files and of the directories below DATA/cas")
	fmt.Println()
}

func printCopies(results []result, copies int, logical, distinct int64) {
	fmt.Printf("Re-uploads: every file %d more times under new media IDs, into the store above\n", copies)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "params\tuploads\tlogical\tnew stored\tnew chunks\tdedup (all)\twhole-file dedup (all)\tingest MB/s\tuploads/s\t")
	for _, r := range results {
		ph := r.phases[1]
		all := logical * int64(1+copies)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%.4f\t%.4f\t%.1f\t%.0f\t\n",
			paramflag.Label(r.params), ph.uploads, mib(ph.logical), mib(ph.after.bytes-ph.before.bytes),
			ph.after.chunks-ph.before.chunks, ratio(all, ph.after.bytes), ratio(all, distinct),
			ph.mbps(), float64(ph.uploads)/ph.elapsed.Seconds())
	}
	tw.Flush()
	fmt.Println()
}

func printNear(results []result) {
	fmt.Printf("Near-copies: for every file over %d KiB, one variant of each kind, into the store above\n", nearcopy.Min>>10)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "params\tvariant\tuploads\tlogical\tnew stored\tnew/logical\tnew chunks\twhole-file new\tingest MB/s\t")
	for _, r := range results {
		for _, ph := range r.phases {
			if ph.name == "corpus" || ph.name == "copies" {
				continue
			}
			stored := ph.after.bytes - ph.before.bytes
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%.2f%%\t%d\t%s\t%.1f\t\n",
				paramflag.Label(r.params), ph.name, ph.uploads, mib(ph.logical), mib(stored),
				100*ratio(stored, ph.logical), ph.after.chunks-ph.before.chunks,
				mib(ph.objNew), ph.mbps())
		}
	}
	tw.Flush()
	fmt.Println()
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

func kib(n int64, count int) string {
	if count == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/float64(count)/(1<<10))
}
