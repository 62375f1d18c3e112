// Command synimport measures tools/synapse-import on a synthetic Synapse
// media store: it generates in DIR a SQLite database with Synapse's media
// tables and a media_store of N local files totalling about SIZE, builds the
// tool from this module, and times whole runs of it (process start to exit)
// importing everything into a fresh mxcas data directory.
//
//	go run ./bench/synimport -dir /tmp/synimport [-files 10000] [-size 1GiB] [-workers 4] [-runs 1]
//
// The store is deterministic (ChaCha8 from a fixed seed) and shaped like
// real media: 80% of the files are under 16 KiB, 18% between 16 and 512
// KiB, and the largest 2% (1 MiB and up) carry most of the bytes; about 5%
// of the files are exact copies of another, so deduplication shows. It is
// kept in DIR (DIR/synapse.db, DIR/media_store) and reused by later
// invocations whatever -files and -size say; remove DIR to make a new one.
// DIR/data, the mxcas store, is removed before every run and at the end.
//
// The page cache cannot be dropped without root: right after generation the
// media_store is read from memory, so the figures are those of a warm cache.
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/module"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
	"github.com/mxcas/mxcas/tools/synapse-import/synapsetest"
)

const (
	serverName = "bench.local"
	smallMax   = 16 << 10  // small files are under this
	mediumMax  = 512 << 10 // medium files are under this
	largeMin   = 1 << 20   // large files are at least this
	dupShare   = 0.05      // share of files that copy another
)

type config struct {
	dir     string
	files   int
	size    int64
	workers int
	runs    int
}

func main() {
	command.SetupLog("synimport")
	dir := flag.String("dir", "", "directory to work in (required; created if missing)")
	files := flag.Int("files", 10000, "files in a newly generated Synapse store")
	size := flag.String("size", "1GiB", "total size of a newly generated store (B, KiB, MiB, GiB; KB, MB, GB are powers of 10)")
	workers := flag.Int("workers", 4, "synapse-import -workers")
	runs := flag.Int("runs", 1, "imports, each into a fresh data directory; the median is reported")
	flag.Parse()
	total, err := parseSize(*size)
	if err != nil {
		log.Print(err)
	}
	command.CheckArgs(*dir != "" && err == nil && *files >= 1 && *workers >= 1 && *runs >= 1)
	cfg := config{dir: command.WorkDir(*dir), files: *files, size: total, workers: *workers, runs: *runs}
	command.Run(func(ctx context.Context) error { return run(ctx, cfg) })
}

func run(ctx context.Context, cfg config) error {
	root, err := module.Root()
	if err != nil {
		return err
	}
	db := filepath.Join(cfg.dir, "synapse.db")
	mediaStore := filepath.Join(cfg.dir, "media_store")
	genTime, generated, err := ensureStore(ctx, cfg, root, db, mediaStore)
	if err != nil {
		return err
	}
	st, err := storeStats(db)
	if err != nil {
		return err
	}

	bin, err := buildTool(ctx, root, cfg.dir)
	if err != nil {
		return err
	}
	data := filepath.Join(cfg.dir, "data")
	conf := filepath.Join(cfg.dir, "mxcas.toml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "[server]\ndata_dir = %q\n", data), 0o644); err != nil {
		return err
	}
	defer os.RemoveAll(data)

	machine.Note()
	printHeader(cfg, st, generated, genTime)
	args := []string{"-config", conf, "-serverName", serverName, "-sqlite", db, "-mediaStore", mediaStore,
		"-workers", strconv.Itoa(cfg.workers)}
	return importRuns(ctx, cfg, st, bin, args, data)
}

// ensureStore generates the Synapse store in cfg.dir unless there is one
// already, and says how long generating it took.
func ensureStore(ctx context.Context, cfg config, root, db, mediaStore string) (genTime time.Duration, generated bool, err error) {
	if _, err := os.Stat(db); err == nil {
		log.Printf("reusing the Synapse store in %s (-files and -size do not apply)", cfg.dir)
		return 0, false, nil
	}
	log.Printf("generating %d files, %s, in %s", cfg.files, mib(cfg.size), cfg.dir)
	t0 := time.Now()
	if err := generate(ctx, cfg, root, db, mediaStore); err != nil {
		return 0, false, err
	}
	return time.Since(t0), true, nil
}

// buildTool builds tools/synapse-import from the module at root into dir.
func buildTool(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "synapse-import")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./tools/synapse-import")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build ./tools/synapse-import: %w", err)
	}
	return bin, nil
}

// printHeader describes the store and the measurement.
func printHeader(cfg config, st stats, generated bool, genTime time.Duration) {
	how := "reused"
	if generated {
		how = fmt.Sprintf("generated in %.1f s", genTime.Seconds())
	}
	fmt.Printf("store:   %s: %d files, %s (%s); %.1f%% under 16 KiB, the largest 2%% of files hold %.0f%% of the bytes, largest %s; %d exact duplicates\n",
		cfg.dir, st.files, mib(st.bytes), how, 100*float64(st.small)/float64(st.files),
		100*float64(st.topBytes)/float64(st.bytes), mib(st.largest), st.dups)
	fmt.Printf("import:  synapse-import -sqlite -mediaStore -workers %d into a fresh data dir each run; wall time of the whole process; %d runs (median); MB = 10^6 bytes\n",
		cfg.workers, cfg.runs)
	if generated {
		fmt.Println("cache:   warm: the files were just written and are read from the page cache (dropping it needs root)")
	} else {
		fmt.Println("cache:   not known for run 1 (store reused, not just written); warm after it")
	}
	fmt.Println()
}

// importRuns runs bin with args cfg.runs times, each into a fresh data
// directory, checks that every file of st was imported and prints the
// table and each run's summary line.
func importRuns(ctx context.Context, cfg config, st stats, bin string, args []string, data string) error {
	var (
		files   = &report.Row{Name: "files imported", Unit: "files"}
		read    = &report.Row{Name: "read", Unit: "MiB"}
		stored  = &report.Row{Name: "stored", Unit: "MiB"}
		dedup   = &report.Row{Name: "dedup (read / stored)", Unit: "x"}
		wall    = &report.Row{Name: "wall time", Unit: "s"}
		perSec  = &report.Row{Name: "files per second", Unit: "files/s"}
		mbps    = &report.Row{Name: "throughput (read)", Unit: "MB/s"}
		summary []string
	)
	for r := range cfg.runs {
		line, s, d, err := importOnce(ctx, bin, args, data)
		if err != nil {
			return err
		}
		if s["failed"] != 0 || s["skipped"] != 0 || s["imported"] != int64(st.files) {
			return fmt.Errorf("run %d: want all %d files imported: %s", r+1, st.files, line)
		}
		summary = append(summary, line)
		files.Add(float64(s["imported"]))
		read.Add(float64(s["bytes_read"]) / (1 << 20))
		stored.Add(float64(s["bytes_stored"]) / (1 << 20))
		dedup.Add(float64(s["bytes_read"]) / float64(s["bytes_stored"]))
		wall.Add(d.Seconds())
		perSec.Add(float64(s["imported"]) / d.Seconds())
		mbps.Add(float64(s["bytes_read"]) / 1e6 / d.Seconds())
		log.Printf("run %d of %d done in %.1f s", r+1, cfg.runs, d.Seconds())
	}
	report.Table(os.Stdout, "Synapse import (SQLite database, media_store on disk)", cfg.runs,
		files, read, stored, dedup, wall, perSec, mbps)
	for i, line := range summary {
		fmt.Printf("run %d: %s\n", i+1, line)
	}
	return nil
}

// importOnce empties data, runs bin with args and returns its summary line
// and values and the wall time of the process.
func importOnce(ctx context.Context, bin string, args []string, data string) (string, map[string]int64, time.Duration, error) {
	if err := os.RemoveAll(data); err != nil {
		return "", nil, 0, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return "", nil, d, fmt.Errorf("synapse-import: %w\n%s", err, out.String())
	}
	line, s, err := parseSummary(out.String())
	return line, s, d, err
}

// parseSummary finds the tool's "summary: k=v ..." line and returns it with
// its integer values.
func parseSummary(out string) (string, map[string]int64, error) {
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "summary: ")
		if !ok {
			continue
		}
		vals := make(map[string]int64)
		for f := range strings.FieldsSeq(rest) {
			k, v, _ := strings.Cut(f, "=")
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				vals[k] = n
			}
		}
		for _, k := range []string{"imported", "skipped", "failed", "bytes_read", "bytes_stored"} {
			if _, ok := vals[k]; !ok {
				return "", nil, fmt.Errorf("synapse-import's summary has no %s: %s", k, line)
			}
		}
		if vals["bytes_stored"] <= 0 {
			return "", nil, fmt.Errorf("synapse-import stored nothing: %s", line)
		}
		return line, vals, nil
	}
	return "", nil, fmt.Errorf("no summary line in synapse-import's output:\n%s", out)
}

// file is one row of local_media_repository and its file in media_store.
type file struct {
	id, typ, name, user string
	created             int64
	size                int64
	src                 int // the original whose content this is: itself, or the file it duplicates
}

// plan lays out n files of about total bytes. Originals are named after
// their own index and duplicates after their original's, so the names tell
// duplicates apart (storeStats counts them so).
func plan(n int, total int64) []file {
	p := &planner{
		rng:    rand.New(rand.NewChaCha8([32]byte{'s', 'y', 'n', 'i', 'm', 'p', 'o', 'r', 't'})),
		files:  make([]file, n),
		class:  make([]int, n),
		weight: make([]float64, n),
		mult:   make([]int64, n),
	}
	ids := make(map[string]bool, n)
	created := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := range p.files {
		f := &p.files[i]
		for f.id == "" || ids[f.id] {
			f.id = synapsetest.MediaID(p.rng)
		}
		ids[f.id] = true
		created += p.rng.Int64N(120_000)
		f.created = created
		f.user = fmt.Sprintf("@user%02d:%s", p.rng.IntN(50), serverName)
		if len(p.origs) > 0 && p.rng.Float64() < dupShare {
			o := p.origs[p.rng.IntN(len(p.origs))]
			f.src, f.typ, f.name = o, p.files[o].typ, p.files[o].name
			p.mult[o]++
			continue
		}
		p.original(i)
	}
	p.sizeLarge(total)
	for i := range p.files {
		p.files[i].size = p.files[p.files[i].src].size
	}
	return p.files
}

// The size classes of the files plan lays out.
const (
	classSmall = iota
	classMedium
	classLarge
)

// planner is plan's state while it lays the files out.
type planner struct {
	rng    *rand.Rand
	files  []file
	class  []int
	weight []float64 // large originals: share of the large budget
	mult   []int64   // how many files hold each original's content
	origs  []int
}

func (p *planner) logUniform(lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + p.rng.Float64()*(math.Log(hi)-math.Log(lo)))
}

// original makes file i an original: its size class and, for all but the
// large ones (sized by sizeLarge), its size; its type and name.
func (p *planner) original(i int) {
	f := &p.files[i]
	f.src = i
	p.origs = append(p.origs, i)
	p.mult[i]++
	jpeg := 0.7
	switch r := p.rng.Float64(); {
	case r < 0.80:
		p.class[i] = classSmall
		f.size = int64(p.logUniform(512, smallMax))
	case r < 0.98:
		p.class[i] = classMedium
		f.size = int64(p.logUniform(smallMax, mediumMax))
	default:
		p.class[i] = classLarge
		p.weight[i] = p.logUniform(1, 64)
		jpeg = 0.3
	}
	if p.rng.Float64() < jpeg {
		f.typ, f.name = "image/jpeg", fmt.Sprintf("IMG_%06d.jpg", i)
	} else {
		f.typ, f.name = "application/octet-stream", fmt.Sprintf("file_%06d.bin", i)
	}
}

// sizeLarge sizes the large originals: they take what the others leave of
// total, largeMin each, the rest by weight. When nothing is left, every
// size scales to fit instead.
func (p *planner) sizeLarge(total int64) {
	files, origs := p.files, p.origs
	budget, weights := total, 0.0
	for _, o := range origs {
		if p.class[o] == classLarge {
			budget -= p.mult[o] * largeMin
			weights += p.weight[o] * float64(p.mult[o])
		} else {
			budget -= p.mult[o] * files[o].size
		}
	}
	unit := float64(budget) / weights
	if budget <= 0 || weights == 0 {
		unit = largeMin / 4
	}
	var sum int64
	for _, o := range origs {
		if p.class[o] == classLarge {
			files[o].size = largeMin + int64(unit*p.weight[o])
		}
		sum += p.mult[o] * files[o].size
	}
	if budget <= 0 || weights == 0 {
		for _, o := range origs {
			files[o].size = max(1, int64(float64(files[o].size)*float64(total)/float64(sum)))
		}
	}
}

// generate writes the media_store, then the database under a temporary
// name renamed into place last, so that an existing db means a whole store.
func generate(ctx context.Context, cfg config, root, db, mediaStore string) error {
	files := plan(cfg.files, cfg.size)
	if err := os.RemoveAll(mediaStore); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	procs := runtime.GOMAXPROCS(0)
	for w := range procs {
		g.Go(func() error {
			buf := make([]byte, 64<<10)
			bw := bufio.NewWriterSize(nil, 256<<10)
			for i := w; i < len(files); i += procs {
				if err := gctx.Err(); err != nil {
					return err
				}
				f := files[i]
				if err := writeFile(filepath.Join(mediaStore, "local_content", f.id[0:2], f.id[2:4], f.id[4:]), f, bw, buf); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	schema, err := os.ReadFile(filepath.Join(root, "tools", "synapse-import", "testdata", "synapse_schema.sql"))
	if err != nil {
		return err
	}
	tmp := db + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := writeDB(ctx, tmp, string(schema), files); err != nil {
		return err
	}
	return os.Rename(tmp, db)
}

// writeFile writes f's content, ChaCha8 seeded by its original's index, to
// path.
func writeFile(path string, f file, bw *bufio.Writer, buf []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	var seed [32]byte
	copy(seed[:], "synimport content")
	binary.LittleEndian.PutUint64(seed[24:], uint64(f.src))
	rng := rand.NewChaCha8(seed)
	bw.Reset(fh)
	for rem := f.size; rem > 0; {
		k := int(min(rem, int64(len(buf))))
		rng.Read(buf[:k])
		bw.Write(buf[:k]) // errors come back from Flush
		rem -= int64(k)
	}
	err = bw.Flush()
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeDB creates a Synapse database at path with one local_media_repository
// row per file.
func writeDB(ctx context.Context, path, schema string, files []file) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create the Synapse schema: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO local_media_repository (media_id, media_type, media_length,
		created_ts, upload_name, user_id, last_access_ts) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, f := range files {
		if _, err := ins.ExecContext(ctx, f.id, f.typ, f.size, f.created, f.name, f.user, f.created); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return db.Close()
}

// stats describes a generated store, from its database.
type stats struct {
	files, small, dups int
	bytes, largest     int64
	topBytes           int64 // held by the largest 2% of files
}

func storeStats(path string) (stats, error) {
	var s stats
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return s, err
	}
	defer db.Close()
	err = db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(media_length), 0), COALESCE(SUM(media_length < ?), 0),
		COALESCE(MAX(media_length), 0), COUNT(*) - COUNT(DISTINCT upload_name) FROM local_media_repository`, smallMax).
		Scan(&s.files, &s.bytes, &s.small, &s.largest, &s.dups)
	if err != nil {
		return s, err
	}
	if s.files == 0 || s.bytes == 0 {
		return s, fmt.Errorf("%s: no media", path)
	}
	err = db.QueryRow(`SELECT COALESCE(SUM(media_length), 0) FROM (SELECT media_length FROM local_media_repository
		ORDER BY media_length DESC LIMIT ?)`, max(1, s.files/50)).Scan(&s.topBytes)
	return s, err
}

// parseSize reads a byte count such as "1GiB", "512MiB", "100MB" or
// "2.5GiB".
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
		{"B", 1},
	}
	num, mult := strings.TrimSpace(s), 1.0
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v*mult < 1 || v*mult > 1<<50 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(v * mult), nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
