// Command scale measures what grows with the store (issue 21): it uploads
// -count media of a size mix through `mxcas serve` from -c clients and, at
// -checkpoints evenly spaced counts, prints the upload rate and latency of
// the last interval, the download latency of a random sample of earlier
// media (every body checked), the server's memory, and the index and chunk
// tree on disk against the logical bytes. Then it stops the server (timed),
// runs an offline `mxcas fsck` and `mxcas gc` (time, peak RSS, bytes
// written; fsck must find the store healthy) and restarts the server (time
// to /readyz 200), on which a last sample of media must download intact.
// With -tools-at, fsck and gc are also run offline at those checkpoints
// (the server stopped, then started again before the next interval), so
// their time and memory can be compared across store sizes.
//
//	go run ./bench/scale [-count 50000] [-checkpoints 10] [-c 16] [-mix issue21] [-dir DIR] [-keep] [-seed 1] [-tools-at 500000,...]
//
// The media are deterministic for a seed: sizes, duplicates and content
// (ChaCha8) come from it, so two runs upload the same bytes. The store is
// DIR/data (DIR: a new temp directory without -dir), removed at the end
// unless -keep. Rate limits and the server's own GC are off.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/parallel"
	"github.com/mxcas/mxcas/bench/internal/target"
	"github.com/mxcas/mxcas/bench/internal/toolrun"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/bench/serverproc"
)

// serverConf turns off what would make the figures depend on time: the
// rate limits (one user uploads everything) and the server's own GC.
const serverConf = `[storage]
gc_interval = "0s"
[ratelimits.upload]
per_user = { rate = 0, burst = 0 }
per_ip = { rate = 0, burst = 0 }
[ratelimits.download]
per_user = { rate = 0, burst = 0 }
per_ip = { rate = 0, burst = 0 }
`

type config struct {
	count, checkpoints, c, sample int
	mixName                       string
	dir                           string
	keep                          bool
	seed                          uint64
	toolsAt                       []int // media counts (checkpoints) at which fsck and gc run too
}

func main() {
	command.SetupLog("scale")
	count := flag.Int("count", 50000, "media to upload in all")
	checkpoints := flag.Int("checkpoints", 10, "evenly spaced checkpoints at which the figures are taken")
	c := flag.Int("c", 16, "concurrent clients")
	sample := flag.Int("sample", 1000, "earlier media downloaded (and checked) at each checkpoint")
	mixName := flag.String("mix", "issue21", "size mix: "+mixNames())
	dir := flag.String("dir", "", "work directory for the binary, config, log and the store DIR/data (default: a new temp directory)")
	keep := flag.Bool("keep", false, "keep the store (and a temp work directory) at the end")
	seed := flag.Uint64("seed", 1, "seed of the sizes, duplicates and content")
	toolsAt := flag.String("tools-at", "", "comma-separated checkpoints (media counts) at which fsck and gc also run offline")
	flag.Parse()
	_, okMix := mixes[*mixName]
	command.CheckArgs(okMix && *count >= 1 && *checkpoints >= 1 && *checkpoints <= *count && *c >= 1 && *sample >= 1)
	cfg := config{count: *count, checkpoints: *checkpoints, c: *c, sample: *sample, mixName: *mixName, dir: *dir, keep: *keep, seed: *seed}
	at, err := parseToolsAt(*toolsAt, cfg)
	if err != nil {
		log.Fatal(err)
	}
	cfg.toolsAt = at
	command.Run(func(ctx context.Context) error { return run(ctx, cfg) })
}

func run(ctx context.Context, cfg config) error {
	machine.Note()
	work := cfg.dir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "mxcas-scale-"); err != nil {
			return err
		}
		if !cfg.keep {
			defer os.RemoveAll(work)
		}
	} else {
		work = command.WorkDir(work)
	}
	data := filepath.Join(work, "data")
	if _, err := os.Stat(data); err == nil {
		return fmt.Errorf("%s exists: the benchmark starts from an empty store", data)
	}
	if !cfg.keep {
		defer os.RemoveAll(data)
	}
	bin, err := serverproc.Build(work)
	if err != nil {
		return err
	}
	version, _ := exec.Command(bin, "version").Output()
	items := plan(cfg.count, mixes[cfg.mixName], cfg.seed)
	fmt.Printf("server:  %s", version)
	fmt.Printf("load:    %s: %s; mix %s (%s); %d clients; seed %d\n", data, describe(items), cfg.mixName, mixes[cfg.mixName].about, cfg.c, cfg.seed)
	fmt.Printf("         at each checkpoint: %d earlier media downloaded by %d clients; MB = 10^6 bytes; load average %s\n\n", cfg.sample, cfg.c, machine.Load())

	mx, err := serverproc.StartMxcas(ctx, work, bin, data, serverConf)
	if err != nil {
		return err
	}
	defer func() { mx.Stop() }()
	b := &bench{cfg: cfg, items: items, ids: make([]string, len(items)), data: data}
	b.setTarget(mx)
	var rows []checkpoint
	var tools []toolsRow
	conf := filepath.Join(work, "mxcas.toml")
	for k := 1; k <= cfg.checkpoints; k++ {
		cp, err := b.checkpoint(ctx, mx.Pid(), k)
		if err != nil {
			return err
		}
		rows = append(rows, cp)
		log.Printf("checkpoint %d of %d: %d media, %.0f uploads/s", k, cfg.checkpoints, cp.media, cp.rate)
		if k == cfg.checkpoints || !slices.Contains(cfg.toolsAt, cp.media) {
			continue
		}
		if err := mx.StopClean(); err != nil {
			return err
		}
		tr, err := runTools(ctx, bin, conf, cp.media)
		if err != nil {
			return err
		}
		tools = append(tools, tr)
		if mx, err = serverproc.StartMxcas(ctx, work, bin, data, serverConf); err != nil {
			return err
		}
		b.setTarget(mx)
	}
	printCheckpoints(rows)
	end, err := b.endFigures(ctx, work, bin, mx)
	if err != nil {
		return err
	}
	end.print(rows[len(rows)-1])
	if len(tools) > 0 {
		printTools(append(tools, toolsRow{media: rows[len(rows)-1].media, fsck: end.fsck, gc: end.gc}))
	}
	fmt.Printf("\nload average at the end: %s\n", machine.Load())
	return nil
}

// bench is the state of one run: the plan, the media IDs uploads got, and
// the server under load.
type bench struct {
	cfg   config
	items []item
	ids   []string // media ID of items[i], once uploaded
	data  string
	t     *target.Target
	done  int // items uploaded so far: ids[:done]
}

func (b *bench) setTarget(mx *serverproc.Child) {
	b.t = &target.Target{Base: "http://" + mx.Addr, Host: serverproc.ServerName, Token: serverproc.Token,
		Client: target.NewClient(b.cfg.c, time.Minute)}
}

// checkpoint is one row of the checkpoint table.
type checkpoint struct {
	media          int
	logical        int64 // bytes uploaded so far
	rate           float64
	up50, up99     time.Duration
	down50, down99 time.Duration
	rss, hwm       float64 // MB
	index, cas     tree
}

// checkpoint uploads the media of interval k, then downloads a sample of
// all uploaded so far and takes the figures.
func (b *bench) checkpoint(ctx context.Context, pid, k int) (checkpoint, error) {
	start, end := b.done, b.cfg.count*k/b.cfg.checkpoints
	up, d, err := b.upload(ctx, start, end)
	if err != nil {
		return checkpoint{}, err
	}
	b.done = end
	cp := checkpoint{media: end, rate: float64(end-start) / d.Seconds()}
	cp.logical, _ = totals(b.items[:end])
	cp.up50, cp.up99 = quantile(up, 0.5), quantile(up, 0.99)
	down, err := b.downloadSample(ctx, uint64(k))
	if err != nil {
		return cp, err
	}
	cp.down50, cp.down99 = quantile(down, 0.5), quantile(down, 0.99)
	if cp.rss, cp.hwm, err = serverproc.Memory(pid); err != nil {
		return cp, err
	}
	if cp.index, err = walk(filepath.Join(b.data, "index")); err != nil {
		return cp, err
	}
	cp.cas, err = walk(filepath.Join(b.data, "cas"))
	return cp, err
}

// upload uploads items[start:end] from cfg.c clients and returns each
// upload's latency and the time from the first to the last.
func (b *bench) upload(ctx context.Context, start, end int) ([]time.Duration, time.Duration, error) {
	var next atomic.Int64
	next.Store(int64(start))
	lat := make([][]time.Duration, b.cfg.c)
	d, err := parallel.Run(ctx, b.cfg.c, func(ctx context.Context, client int) error {
		buf := make([]byte, 0, 512<<10)
		for {
			i := int(next.Add(1) - 1)
			if i >= end {
				return nil
			}
			it := b.items[i]
			buf = buf[:it.size]
			content(buf, b.cfg.seed, it.src)
			t0 := time.Now()
			id, err := b.t.Upload(ctx, "", "application/octet-stream", buf)
			if err != nil {
				return fmt.Errorf("upload %d: %w", i, err)
			}
			lat[client] = append(lat[client], time.Since(t0))
			b.ids[i] = id
		}
	})
	return slices.Concat(lat...), d, err
}

// downloadSample downloads cfg.sample media drawn (with repeats) from those
// uploaded so far, from cfg.c clients, checks each body against its
// content, and returns the latencies.
func (b *bench) downloadSample(ctx context.Context, k uint64) ([]time.Duration, error) {
	rng := rand.New(rand.NewPCG(b.cfg.seed, k))
	pick := make([]int, b.cfg.sample)
	for i := range pick {
		pick[i] = rng.IntN(b.done)
	}
	var next atomic.Int64
	lat := make([][]time.Duration, b.cfg.c)
	_, err := parallel.Run(ctx, b.cfg.c, func(ctx context.Context, client int) error {
		want := make([]byte, 0, 512<<10)
		for {
			j := int(next.Add(1) - 1)
			if j >= len(pick) {
				return nil
			}
			i := pick[j]
			it := b.items[i]
			want = want[:it.size]
			content(want, b.cfg.seed, it.src)
			t0 := time.Now()
			if err := b.t.Verify(ctx, "/_matrix/client/v1/media/download/"+serverproc.ServerName+"/"+b.ids[i], want); err != nil {
				return fmt.Errorf("media %d: %w", i, err)
			}
			lat[client] = append(lat[client], time.Since(t0))
		}
	})
	return slices.Concat(lat...), err
}

// quantile returns the q quantile of lat (sorting it), 0 for none.
func quantile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, int(q*float64(len(lat))))]
}

// tree is what a directory tree takes on disk.
type tree struct {
	files, dirs int64
	bytes       int64 // apparent: the sum of file sizes
	disk        int64 // allocated: st_blocks * 512 of files and directories
}

// walk sums the tree under root; a missing root is an empty tree. A file
// that goes while it walks (the running server's compactions delete
// sstables) is left out.
func walk(root string) (tree, error) {
	var t tree
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == root {
				return filepath.SkipDir
			}
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			t.disk += st.Blocks * 512
		}
		switch {
		case d.IsDir():
			if path != root {
				t.dirs++
			}
		case d.Type().IsRegular():
			t.files++
			t.bytes += fi.Size()
		}
		return nil
	})
	return t, err
}

func ms(d time.Duration) string { return report.Format(float64(d.Microseconds()) / 1000) }
func mb(n int64) string         { return report.Format(float64(n) / 1e6) }

// printCheckpoints prints the checkpoint table in markdown.
func printCheckpoints(rows []checkpoint) {
	fmt.Println("| media | logical GB | uploads/s | upload p50 / p99 ms | download p50 / p99 ms | VmRSS / VmHWM MB | index MB | DATA/cas files / dirs | DATA/cas apparent / on disk MB | on disk / apparent |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Printf("| %d | %.2f | %s | %s / %s | %s / %s | %s / %s | %s | %d / %d | %s / %s | %.3f |\n",
			r.media, float64(r.logical)/1e9, report.Format(r.rate), ms(r.up50), ms(r.up99), ms(r.down50), ms(r.down99),
			report.Format(r.rss), report.Format(r.hwm), mb(r.index.disk), r.cas.files, r.cas.dirs,
			mb(r.cas.bytes), mb(r.cas.disk), float64(r.cas.disk)/float64(r.cas.bytes))
	}
	fmt.Println()
}

// endFigures are the figures after the uploads.
type endFigures struct {
	shutdown, restart time.Duration
	fsck, gc          toolFigures
	index, cas, all   tree  // after fsck and gc; all is DATA
	ballast           int64 // DATA/ballast on disk
	downAfter         time.Duration
	logical, unique   int64
}

// toolFigures are one offline run of an mxcas command.
type toolFigures struct {
	res     toolrun.Result
	written int64 // write_bytes, -1 where /proc/self/io is unreadable
}

// endFigures stops the server, runs fsck and gc offline, restarts the
// server and checks a sample of media on it.
func (b *bench) endFigures(ctx context.Context, work, bin string, mx *serverproc.Child) (endFigures, error) {
	var e endFigures
	t0 := time.Now()
	if err := mx.StopClean(); err != nil {
		return e, err
	}
	e.shutdown = time.Since(t0)
	tr, err := runTools(ctx, bin, filepath.Join(work, "mxcas.toml"), b.done)
	if err != nil {
		return e, err
	}
	e.fsck, e.gc = tr.fsck, tr.gc
	if e.index, err = walk(filepath.Join(b.data, "index")); err != nil {
		return e, err
	}
	if e.cas, err = walk(filepath.Join(b.data, "cas")); err != nil {
		return e, err
	}
	if e.all, err = walk(b.data); err != nil {
		return e, err
	}
	if fi, err := os.Stat(filepath.Join(b.data, "ballast")); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.ballast = st.Blocks * 512
		}
	}
	e.logical, e.unique = totals(b.items)
	t0 = time.Now()
	mx2, err := serverproc.StartMxcas(ctx, work, bin, b.data, serverConf)
	if err != nil {
		return e, err
	}
	e.restart = time.Since(t0)
	defer mx2.Stop()
	b.setTarget(mx2)
	down, err := b.downloadSample(ctx, uint64(b.cfg.checkpoints+1))
	if err != nil {
		return e, fmt.Errorf("after the restart: %w", err)
	}
	e.downAfter = quantile(down, 0.5)
	return e, mx2.StopClean()
}

// toolsRow is fsck and gc, offline, at one store size.
type toolsRow struct {
	media    int
	fsck, gc toolFigures
}

// runTools runs fsck (which must find the store healthy) and gc offline on
// the stopped server's store.
func runTools(ctx context.Context, bin, conf string, media int) (toolsRow, error) {
	tr := toolsRow{media: media}
	var err error
	if tr.fsck, err = runTool(ctx, bin, "fsck", "-config", conf); err != nil {
		return tr, err
	}
	log.Printf("fsck at %d media took %v", media, tr.fsck.res.Wall.Round(time.Millisecond))
	if tr.gc, err = runTool(ctx, bin, "gc", "-config", conf); err != nil {
		return tr, err
	}
	log.Printf("gc at %d media took %v", media, tr.gc.res.Wall.Round(time.Millisecond))
	return tr, nil
}

// parseToolsAt parses -tools-at: media counts, each one of the
// checkpoints'.
func parseToolsAt(s string, cfg config) ([]int, error) {
	var at []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("-tools-at: %q is not a number", f)
		}
		ok := false
		for k := 1; k <= cfg.checkpoints; k++ {
			ok = ok || cfg.count*k/cfg.checkpoints == n
		}
		if !ok {
			return nil, fmt.Errorf("-tools-at: %d is not a checkpoint (every %d media of %d)", n, cfg.count/cfg.checkpoints, cfg.count)
		}
		at = append(at, n)
	}
	return at, nil
}

// printTools prints fsck and gc at each store size they ran at.
func printTools(rows []toolsRow) {
	fmt.Println("\n| media | fsck s | fsck peak RSS MB | fsck MB written | gc s | gc peak RSS MB |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		w := "?"
		if r.fsck.written >= 0 {
			w = mb(r.fsck.written)
		}
		fmt.Printf("| %d | %s | %s | %s | %s | %s |\n", r.media, report.Format(r.fsck.res.Wall.Seconds()), mb(r.fsck.res.PeakRSS), w,
			report.Format(r.gc.res.Wall.Seconds()), mb(r.gc.res.PeakRSS))
	}
}

// runTool runs bin with args as a child and measures it; the bytes it
// wrote are the change in this process's write_bytes across the run, as
// Linux adds a child's I/O counts to its parent's when the child is
// reaped (this process writes nothing meanwhile).
func runTool(ctx context.Context, bin string, args ...string) (toolFigures, error) {
	w0, err0 := writeBytes()
	res, err := toolrun.Run(ctx, bin, args...)
	if err != nil {
		return toolFigures{}, err
	}
	w1, err1 := writeBytes()
	tf := toolFigures{res: res, written: w1 - w0}
	if err0 != nil || err1 != nil {
		tf.written = -1
	}
	return tf, nil
}

// writeBytes returns write_bytes of /proc/self/io: bytes this process and
// the children it has reaped caused to be written to storage.
func writeBytes() (int64, error) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/self/io: no write_bytes")
}

// print prints the end figures in markdown; last is the last checkpoint.
func (e endFigures) print(last checkpoint) {
	written := func(t toolFigures) string {
		if t.written < 0 {
			return "unknown (/proc/self/io unreadable)"
		}
		return mb(t.written) + " MB written"
	}
	chunkDisk := last.cas
	rows := [][2]string{
		{"shutdown (SIGTERM to exit)", report.Format(e.shutdown.Seconds()) + " s"},
		{"`mxcas fsck` (offline)", fmt.Sprintf("%s s, peak RSS %s MB, %s", report.Format(e.fsck.res.Wall.Seconds()), mb(e.fsck.res.PeakRSS), written(e.fsck))},
		{"`mxcas gc` (offline)", fmt.Sprintf("%s s, peak RSS %s MB, %s", report.Format(e.gc.res.Wall.Seconds()), mb(e.gc.res.PeakRSS), written(e.gc))},
		{"restart (exec to /readyz 200)", report.Format(e.restart.Seconds()) + " s"},
		{"download p50 after the restart", ms(e.downAfter) + " ms"},
		{"`DATA/cas` on disk", fmt.Sprintf("%s MB for %s MB of chunk files (%+.1f%%: %d files, %d directories)",
			mb(chunkDisk.disk), mb(chunkDisk.bytes), 100*(float64(chunkDisk.disk)/float64(chunkDisk.bytes)-1), chunkDisk.files, chunkDisk.dirs)},
		{"index", fmt.Sprintf("%s MB (%.0f B per media) at the end, %s MB after fsck and gc",
			mb(last.index.disk), float64(last.index.disk)/float64(last.media), mb(e.index.disk))},
		{"`DATA` on disk, ballast aside", fmt.Sprintf("%s MB after fsck and gc (%s MB ballast besides): %.3f x (chunk files + index); %.3f x the %s MB of distinct content (%s MB logical)",
			mb(e.all.disk-e.ballast), mb(e.ballast), float64(e.all.disk-e.ballast)/float64(e.cas.bytes+e.index.disk),
			float64(e.all.disk-e.ballast)/float64(e.unique), mb(e.unique), mb(e.logical))},
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "| figure\t| at %d media\t|\n|---\t|---\t|\n", last.media)
	for _, r := range rows {
		fmt.Fprintf(tw, "| %s\t| %s\t|\n", r[0], r[1])
	}
	tw.Flush()
}
