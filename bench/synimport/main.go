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
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/module"
	"github.com/mxcas/mxcas/bench/internal/synstore"
	"github.com/mxcas/mxcas/bench/internal/toolrun"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
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
	storeFlags := synstore.DefineFlags()
	workers := flag.Int("workers", 4, "synapse-import -workers")
	runs := flag.Int("runs", 1, "imports, each into a fresh data directory; the median is reported")
	flag.Parse()
	files, total, ok := storeFlags.Values()
	command.CheckArgs(*dir != "" && ok && *workers >= 1 && *runs >= 1)
	cfg := config{dir: command.WorkDir(*dir), files: files, size: total, workers: *workers, runs: *runs}
	command.Run(func(ctx context.Context) error { return run(ctx, cfg) })
}

func run(ctx context.Context, cfg config) error {
	root, err := module.Root()
	if err != nil {
		return err
	}
	syn := synstore.In(cfg.dir)
	genTime, generated, err := syn.Ensure(ctx, root, cfg.files, cfg.size, "")
	if err != nil {
		return err
	}
	st, err := syn.Stats()
	if err != nil {
		return err
	}

	bin, err := toolrun.Build(ctx, root, cfg.dir, "tools/synapse-import")
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
	args := []string{"-config", conf, "-serverName", synstore.ServerName, "-sqlite", syn.DB, "-mediaStore", syn.MediaStore,
		"-workers", strconv.Itoa(cfg.workers)}
	return importRuns(ctx, cfg, st, bin, args, data)
}

// printHeader describes the store and the measurement.
func printHeader(cfg config, st synstore.Stats, generated bool, genTime time.Duration) {
	how := "reused"
	if generated {
		how = fmt.Sprintf("generated in %.1f s", genTime.Seconds())
	}
	fmt.Printf("store:   %s\n", st.Describe(cfg.dir, how))
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
func importRuns(ctx context.Context, cfg config, st synstore.Stats, bin string, args []string, data string) error {
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
		if s["failed"] != 0 || s["skipped"] != 0 || s["imported"] != int64(st.Files) {
			return fmt.Errorf("run %d: want all %d files imported: %s", r+1, st.Files, line)
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
	res, err := toolrun.Run(ctx, bin, args...)
	if err != nil {
		return "", nil, res.Wall, err
	}
	line, s, err := toolrun.Summary("synapse-import", res.Out, "imported", "skipped", "failed", "bytes_read", "bytes_stored")
	if err == nil && s["bytes_stored"] <= 0 {
		err = fmt.Errorf("synapse-import stored nothing: %s", line)
	}
	return line, s, res.Wall, err
}
