// Command gdpr measures tools/gdpr on a store shaped like real media: it
// generates in DIR the synthetic Synapse store of bench/synimport (N files
// totalling about SIZE, see bench/internal/synstore), every file uploaded by
// one user, @bench:bench.local, imports it with tools/synapse-import into an
// mxcas store, builds tools/gdpr from this module, and times whole runs of
// it (process start to exit): `gdpr export` of that user into a fresh
// directory, then `gdpr import` of the archive into a fresh, empty data
// directory. For each it reports the bytes, wall time, MB/s and the peak
// resident memory of the process (the child's ru_maxrss).
//
//	go run ./bench/gdpr -dir /tmp/gdpr [-files 10000] [-size 1GiB] [-partSize BYTES] [-runs 1]
//
// DIR/synapse.db and DIR/media_store (the Synapse store) and DIR/store (the
// mxcas store exported from) are kept and reused by later invocations
// whatever -files and -size say; remove DIR to make new ones. A directory
// made by bench/synimport does not do: its media has 50 uploaders.
// DIR/archive and DIR/imported are made afresh for every run and removed at
// the end.
//
// The page cache cannot be dropped without root: the export reads a store
// that was read or written shortly before, and the import reads the archive
// just written, so the figures are those of a warm cache.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mxcas/mxcas/bench/internal/command"
	"github.com/mxcas/mxcas/bench/internal/module"
	"github.com/mxcas/mxcas/bench/internal/synstore"
	"github.com/mxcas/mxcas/bench/internal/toolrun"
	"github.com/mxcas/mxcas/bench/machine"
	"github.com/mxcas/mxcas/bench/report"
)

const (
	user    = "@bench:" + synstore.ServerName // uploader of every media
	rssGoal = 100                             // MB, peak RSS of each command
)

type config struct {
	dir      string
	files    int
	size     int64
	partSize int64
	runs     int
}

func main() {
	command.SetupLog("gdpr")
	dir := flag.String("dir", "", "directory to work in (required; created if missing)")
	storeFlags := synstore.DefineFlags()
	partSize := flag.String("partSize", "", "gdpr export -partSize (default: the tool's)")
	runs := flag.Int("runs", 1, "export and import pairs, each into fresh directories; the median is reported")
	flag.Parse()
	files, total, ok := storeFlags.Values()
	var part int64
	if *partSize != "" {
		var err error
		if part, err = synstore.ParseSize(*partSize); err != nil {
			log.Print(err)
			ok = false
		}
	}
	command.CheckArgs(*dir != "" && ok && *runs >= 1)
	cfg := config{dir: command.WorkDir(*dir), files: files, size: total, partSize: part, runs: *runs}
	command.Run(func(ctx context.Context) error { return run(ctx, cfg) })
}

// bench is one invocation's binaries and paths.
type bench struct {
	cfg                   config
	gdpr                  string
	storeTOML, importTOML string // configs of the store exported from and the one imported into
	archive, imported     string
}

func run(ctx context.Context, cfg config) error {
	root, err := module.Root()
	if err != nil {
		return err
	}
	syn := synstore.In(cfg.dir)
	genTime, generated, err := syn.Ensure(ctx, root, cfg.files, cfg.size, user)
	if err != nil {
		return err
	}
	st, err := syn.Stats()
	if err != nil {
		return err
	}
	if len(st.Users) != 1 || st.Users[0] != user {
		return fmt.Errorf("%s: the Synapse store's media has uploaders %q, not only %s (made by bench/synimport?): use another -dir",
			cfg.dir, st.Users, user)
	}
	synImport, err := toolrun.Build(ctx, root, cfg.dir, "tools/synapse-import")
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, archive: filepath.Join(cfg.dir, "archive"), imported: filepath.Join(cfg.dir, "imported")}
	if b.gdpr, err = toolrun.Build(ctx, root, cfg.dir, "tools/gdpr"); err != nil {
		return err
	}
	store := filepath.Join(cfg.dir, "store")
	if b.storeTOML, err = writeConfig(cfg.dir, "store.toml", store); err != nil {
		return err
	}
	if b.importTOML, err = writeConfig(cfg.dir, "imported.toml", b.imported); err != nil {
		return err
	}
	defer os.RemoveAll(b.archive)
	defer os.RemoveAll(b.imported)

	log.Printf("filling the mxcas store %s with synapse-import (a store filled before gets nothing new)", store)
	fill, err := toolrun.Run(ctx, synImport, "-config", b.storeTOML, "-serverName", synstore.ServerName,
		"-sqlite", syn.DB, "-mediaStore", syn.MediaStore)
	if err != nil {
		return err
	}
	_, s, err := toolrun.Summary("synapse-import", fill.Out, "imported", "skipped", "failed")
	if err != nil {
		return err
	}
	if s["failed"] != 0 || s["imported"]+s["skipped"] != int64(st.Files) {
		return fmt.Errorf("synapse-import did not fill %s with all %d files: %s", store, st.Files, fill.Out)
	}

	machine.Note()
	fmt.Printf("load:    %s (1, 5, 15 min) at the start\n", machine.Load())
	how := "reused"
	if generated {
		how = fmt.Sprintf("generated in %.1f s", genTime.Seconds())
	}
	fmt.Printf("store:   %s; all uploaded by %s\n", st.Describe(cfg.dir, how), user)
	fmt.Printf("mxcas:   %s, filled by synapse-import (%d imported now in %.1f s, %d there before)\n",
		store, s["imported"], fill.Wall.Seconds(), s["skipped"])
	part := "the tool's default"
	if cfg.partSize > 0 {
		part = strconv.FormatInt(cfg.partSize, 10)
	}
	fmt.Printf("runs:    gdpr export -entity %s (-partSize: %s) into a fresh directory, then gdpr import of it into a fresh, empty data dir; wall time and peak RSS (ru_maxrss) of the whole process; %d runs (median); MB = 10^6 bytes\n",
		user, part, cfg.runs)
	fmt.Println("cache:   warm: the import reads the archive just written (dropping the page cache needs root)")
	fmt.Println()
	return b.runs(ctx, st)
}

// writeConfig writes dir/name, a configuration for the data directory data
// serving bench.local, and returns its path.
func writeConfig(dir, name, data string) (string, error) {
	path := filepath.Join(dir, name)
	conf := fmt.Appendf(nil, "[server]\ndata_dir = %q\n\n[[homeserver]]\nname = %q\nclient_api = \"http://127.0.0.1:8008\"\n",
		data, synstore.ServerName)
	return path, os.WriteFile(path, conf, 0o644)
}

// exportRows and importRows are the two tables' rows.
type exportRows struct {
	media, bytes, parts, size, wall, mbps, rss *report.Row
}

type importRows struct {
	media, read, stored, wall, mbps, rss *report.Row
}

func rssRow() *report.Row {
	return &report.Row{Name: "peak RSS (ru_maxrss)", Unit: "MB", Goal: fmt.Sprintf("<= %d", rssGoal)}
}

// runs exports and imports b.cfg.runs times and prints the tables and each
// run's summary lines.
func (b *bench) runs(ctx context.Context, st synstore.Stats) error {
	ex := exportRows{
		media: &report.Row{Name: "media exported", Unit: "media"},
		bytes: &report.Row{Name: "media bytes", Unit: "MiB"},
		parts: &report.Row{Name: "archive files (parts and manifest)", Unit: "files"},
		size:  &report.Row{Name: "archive size", Unit: "MiB"},
		wall:  &report.Row{Name: "wall time", Unit: "s"},
		mbps:  &report.Row{Name: "throughput (media bytes)", Unit: "MB/s"},
		rss:   rssRow(),
	}
	im := importRows{
		media:  &report.Row{Name: "media imported", Unit: "media"},
		read:   &report.Row{Name: "read (media bytes)", Unit: "MiB"},
		stored: &report.Row{Name: "stored (new chunks)", Unit: "MiB"},
		wall:   &report.Row{Name: "wall time", Unit: "s"},
		mbps:   &report.Row{Name: "throughput (read)", Unit: "MB/s"},
		rss:    rssRow(),
	}
	var summary []string
	for r := range b.cfg.runs {
		eline, media, err := b.export(ctx, st, ex)
		if err != nil {
			return fmt.Errorf("run %d: %w", r+1, err)
		}
		iline, err := b.importArchive(ctx, media, im)
		if err != nil {
			return fmt.Errorf("run %d: %w", r+1, err)
		}
		summary = append(summary, "export: "+eline, "import: "+iline)
		log.Printf("run %d of %d done: export %.1f s, import %.1f s", r+1, b.cfg.runs, ex.wall.Vals[r], im.wall.Vals[r])
	}
	judge(ex.rss)
	judge(im.rss)
	report.Table(os.Stdout, "GDPR export (one user, all of the store's media, into an empty directory)", b.cfg.runs,
		ex.media, ex.bytes, ex.parts, ex.size, ex.wall, ex.mbps, ex.rss)
	report.Table(os.Stdout, "GDPR import (that archive, into an empty data directory)", b.cfg.runs,
		im.media, im.read, im.stored, im.wall, im.mbps, im.rss)
	for i, line := range summary {
		fmt.Printf("run %d %s\n", i/2+1, line)
	}
	fmt.Printf("load:    %s (1, 5, 15 min) at the end\n", machine.Load())
	return nil
}

// judge says in row's goal whether its median meets rssGoal.
func judge(row *report.Row) {
	if row.Median() <= rssGoal {
		row.Goal += ": met"
	} else {
		row.Goal += ": NOT met"
	}
}

// export runs gdpr export into a fresh b.archive, checks that it wrote every
// media of st, adds to rows and returns its summary line and media count.
func (b *bench) export(ctx context.Context, st synstore.Stats, rows exportRows) (string, int64, error) {
	if err := fresh(b.archive); err != nil {
		return "", 0, err
	}
	args := []string{"export", "-config", b.storeTOML, "-entity", user, "-destination", b.archive}
	if b.cfg.partSize > 0 {
		args = append(args, "-partSize", strconv.FormatInt(b.cfg.partSize, 10))
	}
	res, err := toolrun.Run(ctx, b.gdpr, args...)
	if err != nil {
		return "", 0, err
	}
	line, s, err := toolrun.Summary("gdpr export", res.Out, "media", "bytes", "parts", "quarantined")
	if err != nil {
		return "", 0, err
	}
	if s["media"] != int64(st.Files) || s["bytes"] != st.Bytes {
		return "", 0, fmt.Errorf("gdpr export: want all %d media, %d bytes: %s", st.Files, st.Bytes, line)
	}
	files, size, err := dirSize(b.archive)
	if err != nil {
		return "", 0, err
	}
	if files != s["parts"] {
		return "", 0, fmt.Errorf("gdpr export wrote %d files into %s, its summary says %d parts: %s", files, b.archive, s["parts"], line)
	}
	rows.media.Add(float64(s["media"]))
	rows.bytes.Add(float64(s["bytes"]) / (1 << 20))
	rows.parts.Add(float64(files))
	rows.size.Add(float64(size) / (1 << 20))
	rows.wall.Add(res.Wall.Seconds())
	rows.mbps.Add(float64(s["bytes"]) / 1e6 / res.Wall.Seconds())
	rows.rss.Add(float64(res.PeakRSS) / 1e6)
	return line, s["media"], nil
}

// importArchive runs gdpr import of b.archive into a fresh, empty
// b.imported, checks that it imported all media of the archive, adds to
// rows and returns its summary line.
func (b *bench) importArchive(ctx context.Context, media int64, rows importRows) (string, error) {
	if err := fresh(b.imported); err != nil {
		return "", err
	}
	res, err := toolrun.Run(ctx, b.gdpr, "import", "-config", b.importTOML, "-directory", b.archive)
	if err != nil {
		return "", err
	}
	line, s, err := toolrun.Summary("gdpr import", res.Out, "imported", "present", "failed", "refused", "bytes_read", "bytes_stored")
	if err != nil {
		return "", err
	}
	if s["imported"] != media || s["failed"] != 0 || s["refused"] != 0 || s["bytes_stored"] <= 0 {
		return "", fmt.Errorf("gdpr import: want all %d media imported: %s", media, line)
	}
	rows.media.Add(float64(s["imported"]))
	rows.read.Add(float64(s["bytes_read"]) / (1 << 20))
	rows.stored.Add(float64(s["bytes_stored"]) / (1 << 20))
	rows.wall.Add(res.Wall.Seconds())
	rows.mbps.Add(float64(s["bytes_read"]) / 1e6 / res.Wall.Seconds())
	rows.rss.Add(float64(res.PeakRSS) / 1e6)
	return line, nil
}

// fresh makes dir an empty directory.
func fresh(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Mkdir(dir, 0o750)
}

// dirSize counts the regular files under dir and their bytes.
func dirSize(dir string) (files, bytes int64, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += info.Size()
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("gdpr export wrote nothing into %s: %w", dir, err)
	}
	return files, bytes, err
}
