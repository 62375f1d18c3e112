package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"text/tabwriter"

	"github.com/mxcas/mxcas/bench/internal/nearcopy"
	"github.com/mxcas/mxcas/bench/paramflag"
	"github.com/mxcas/mxcas/chunker"
	"github.com/mxcas/mxcas/media"
)

// step is one phase of the comparison on one S3 store: the requests it
// made and the bytes it moved.
type step struct {
	logical int64 // bytes uploaded or downloaded
	files   int
	req     requests
	put     int64 // bytes PUT: stored anew
}

// cmpResult is what one chunker parameter set gave on the corpus.
type cmpResult struct {
	p                   chunker.Params
	corpus              step
	near                []step // by nearcopy.Variants
	downSmall, downLarg step   // downloads of the files up to and over nearcopy.Min
}

// compare uploads the corpus into a fresh S3 store per parameter set, then
// a near-copy of each kind of every file over nearcopy.Min, then downloads
// the originals again, counting the requests of each phase.
func compare(ctx context.Context, cfg config) error {
	files, err := nearcopy.List(cfg.corpus)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no regular files under %s", cfg.corpus)
	}
	var logical int64
	for _, f := range files {
		logical += f.Size
	}
	fmt.Printf("corpus: %s: %d files, %s; into a fresh S3 store per parameter set\n\n", cfg.corpus, len(files), mib(logical))
	var results []cmpResult
	for _, p := range cfg.cparams {
		r, err := compareOne(ctx, cfg, p, files)
		if err != nil {
			return fmt.Errorf("%s: %w", paramflag.Label(p), err)
		}
		results = append(results, r)
	}
	printCompare(results)
	return nil
}

func compareOne(ctx context.Context, cfg config, p chunker.Params, files []nearcopy.File) (cmpResult, error) {
	res := cmpResult{p: p}
	st, c, cleanup, err := openStore(cfg, backends[1], p)
	if err != nil {
		return res, err
	}
	defer cleanup()
	// phase runs fn and returns the requests and bytes PUT meanwhile.
	phase := func(name string, fn func() (int64, int, error)) (step, error) {
		r0, b0 := c.snapshot()
		n, k, err := fn()
		r1, b1 := c.snapshot()
		log.Printf("%s: %s: %d files, %s", paramflag.Label(p), name, k, mib(n))
		return step{logical: n, files: k, req: r1.sub(r0), put: b1 - b0}, err
	}
	pick := func(large bool) []nearcopy.File {
		var out []nearcopy.File
		for _, f := range files {
			if (f.Size > nearcopy.Min) == large {
				out = append(out, f)
			}
		}
		return out
	}
	upload := func(fs []nearcopy.File, v nearcopy.Variant) ([]media.Media, int64, error) {
		recs, err := uploadAll(ctx, st, cfg.workers, len(fs), func(i int) (io.Reader, int64, func(), error) {
			fh, err := os.Open(fs[i].Path)
			if err != nil {
				return nil, 0, nil, err
			}
			body, size, err := nearcopy.Body(fh, fs[i].Size, v)
			if err != nil {
				fh.Close()
				return nil, 0, nil, err
			}
			return body, size, func() { fh.Close() }, nil
		})
		var n int64
		for _, r := range recs {
			n += r.Size
		}
		return recs, n, err
	}

	var recs []media.Media
	if res.corpus, err = phase("corpus", func() (int64, int, error) {
		var n int64
		recs, n, err = upload(files, nearcopy.Original)
		return n, len(recs), err
	}); err != nil {
		return res, err
	}
	large := pick(true)
	for _, v := range nearcopy.Variants {
		s, err := phase(v.String(), func() (int64, int, error) {
			_, n, err := upload(large, v)
			return n, len(large), err
		})
		if err != nil {
			return res, err
		}
		res.near = append(res.near, s)
	}
	// Downloads, split by size so that the large files show what chunking
	// does to a long read; the records are in the order of files.
	var small, larg []media.Media
	for i, f := range files {
		if f.Size > nearcopy.Min {
			larg = append(larg, recs[i])
		} else {
			small = append(small, recs[i])
		}
	}
	for _, d := range []struct {
		name string
		recs []media.Media
		out  *step
	}{{"download, small", small, &res.downSmall}, {"download, large", larg, &res.downLarg}} {
		if *d.out, err = phase(d.name, func() (int64, int, error) {
			n, err := downloadAll(ctx, st, cfg.workers, d.recs)
			return n, len(d.recs), err
		}); err != nil {
			return res, err
		}
	}
	return res, nil
}

func printCompare(results []cmpResult) {
	fmt.Println("Corpus upload, S3 store (PUTs = chunks stored)")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "params\tlogical\tstored\tstored/logical\tPUTs\tPUTs per GiB stored\tHEADs per GiB uploaded\tmean chunk\t")
	for _, r := range results {
		c := r.corpus
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\t%d\t%.0f\t%.0f\t%.0f KiB\t\n", paramflag.Label(r.p), mib(c.logical), mib(c.put),
			float64(c.put)/float64(c.logical), c.req.put, perGiB(c.req.put, c.put), perGiB(c.req.head, c.logical), float64(c.put)/float64(c.req.put)/1024)
	}
	tw.Flush()
	fmt.Println()

	if len(results) > 0 && len(results[0].near) > 0 {
		fmt.Printf("Near-copies, one of each kind for each of the %d files over %d KiB (%s): share of the bytes stored anew, new PUTs\n",
			results[0].near[0].files, nearcopy.Min>>10, mib(results[0].near[0].logical))
		tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		head := "params\t"
		for _, v := range nearcopy.Variants {
			head += v.String() + "\tPUTs\t"
		}
		fmt.Fprintln(tw, head)
		for _, r := range results {
			line := paramflag.Label(r.p) + "\t"
			for _, s := range r.near {
				line += fmt.Sprintf("%.1f%%\t%d\t", 100*float64(s.put)/float64(s.logical), s.req.put)
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
		fmt.Println()
	}

	fmt.Println("Download of every file once, S3 store (GETs = chunks read)")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "params\tfiles\tread\tGETs per GiB\tHEADs per GiB\tfiles over 64 KiB: GETs per GiB\tfiles up to 64 KiB: GETs per GiB\t")
	for _, r := range results {
		s, l := r.downSmall, r.downLarg
		n := s.logical + l.logical
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t\n", paramflag.Label(r.p), s.files+l.files, mib(n),
			perGiB(s.req.get+l.req.get, n), perGiB(s.req.head+l.req.head, n), perGiB(l.req.get, l.logical), perGiB(s.req.get, s.logical))
	}
	tw.Flush()
	fmt.Println()
}
