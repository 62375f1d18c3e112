// Package synstore generates the synthetic Synapse media store the bench
// commands import and export: a SQLite database with Synapse's media tables
// and a media_store of N local files totalling about SIZE, shaped like real
// media. 80% of the files are under 16 KiB, 18% between 16 and 512 KiB, and
// the largest 2% (1 MiB and up) carry most of the bytes; about 5% of the
// files are exact copies of another, so deduplication shows. The store is
// deterministic (ChaCha8 from a fixed seed) but for its uploaders, which
// the caller may fix to one user.
package synstore

import (
	"bufio"
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
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/mxcas/mxcas/tools/synapse-import/synapsetest"
)

// ServerName is the server of every generated media and user.
const ServerName = "bench.local"

const (
	smallMax  = 16 << 10  // small files are under this
	mediumMax = 512 << 10 // medium files are under this
	largeMin  = 1 << 20   // large files are at least this
	dupShare  = 0.05      // share of files that copy another
)

// Store is a generated Synapse store in Dir: the database DB and the
// media_store directory MediaStore.
type Store struct {
	Dir, DB, MediaStore string
}

// In returns the store kept in dir (dir/synapse.db, dir/media_store).
func In(dir string) Store {
	return Store{Dir: dir, DB: filepath.Join(dir, "synapse.db"), MediaStore: filepath.Join(dir, "media_store")}
}

// Ensure generates a store of files files and about size bytes, every one
// uploaded by user ("": each by one of 50 users @userNN), unless there is
// one already, and says how long generating it took. root is the module's
// source tree, whose Synapse schema it uses.
func (s Store) Ensure(ctx context.Context, root string, files int, size int64, user string) (genTime time.Duration, generated bool, err error) {
	if _, err := os.Stat(s.DB); err == nil {
		log.Printf("reusing the Synapse store in %s (-files and -size do not apply)", s.Dir)
		return 0, false, nil
	}
	log.Printf("generating %d files, %s, in %s", files, MiB(size), s.Dir)
	t0 := time.Now()
	if err := s.generate(ctx, root, files, size, user); err != nil {
		return 0, false, err
	}
	return time.Since(t0), true, nil
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
// duplicates apart (Stats counts them so).
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
		f.user = fmt.Sprintf("@user%02d:%s", p.rng.IntN(50), ServerName)
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
func (s Store) generate(ctx context.Context, root string, n int, total int64, user string) error {
	files := plan(n, total)
	if user != "" {
		for i := range files {
			files[i].user = user
		}
	}
	if err := os.RemoveAll(s.MediaStore); err != nil {
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
				if err := writeFile(filepath.Join(s.MediaStore, "local_content", f.id[0:2], f.id[2:4], f.id[4:]), f, bw, buf); err != nil {
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
	tmp := s.DB + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := writeDB(ctx, tmp, string(schema), files); err != nil {
		return err
	}
	return os.Rename(tmp, s.DB)
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

// Stats describes a generated store, from its database.
type Stats struct {
	Files, Small, Dups int
	Bytes, Largest     int64
	TopBytes           int64    // held by the largest 2% of files
	Users              []string // the uploaders, sorted
}

// Stats reads the store's figures from its database.
func (s Store) Stats() (Stats, error) {
	var st Stats
	db, err := sql.Open("sqlite", "file:"+s.DB+"?mode=ro")
	if err != nil {
		return st, err
	}
	defer db.Close()
	err = db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(media_length), 0), COALESCE(SUM(media_length < ?), 0),
		COALESCE(MAX(media_length), 0), COUNT(*) - COUNT(DISTINCT upload_name) FROM local_media_repository`, smallMax).
		Scan(&st.Files, &st.Bytes, &st.Small, &st.Largest, &st.Dups)
	if err != nil {
		return st, err
	}
	if st.Files == 0 || st.Bytes == 0 {
		return st, fmt.Errorf("%s: no media", s.DB)
	}
	err = db.QueryRow(`SELECT COALESCE(SUM(media_length), 0) FROM (SELECT media_length FROM local_media_repository
		ORDER BY media_length DESC LIMIT ?)`, max(1, st.Files/50)).Scan(&st.TopBytes)
	if err != nil {
		return st, err
	}
	rows, err := db.Query(`SELECT DISTINCT COALESCE(user_id, '') FROM local_media_repository ORDER BY 1`)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return st, err
		}
		st.Users = append(st.Users, u)
	}
	return st, rows.Err()
}

// Describe is the line that says what the store in dir holds; how says
// whether it was generated or reused.
func (st Stats) Describe(dir, how string) string {
	return fmt.Sprintf("%s: %d files, %s (%s); %.1f%% under 16 KiB, the largest 2%% of files hold %.0f%% of the bytes, largest %s; %d exact duplicates",
		dir, st.Files, MiB(st.Bytes), how, 100*float64(st.Small)/float64(st.Files),
		100*float64(st.TopBytes)/float64(st.Bytes), MiB(st.Largest), st.Dups)
}

// Flags are the -files and -size flags of a command that generates a store.
type Flags struct {
	files *int
	size  *string
}

// DefineFlags defines -files and -size on the command line.
func DefineFlags() Flags {
	return Flags{
		files: flag.Int("files", 10000, "files in a newly generated Synapse store"),
		size:  flag.String("size", "1GiB", "total size of a newly generated store (B, KiB, MiB, GiB; KB, MB, GB are powers of 10)"),
	}
}

// Values returns the flags' values after flag.Parse; ok is false, the
// problem logged, when they make no store.
func (f Flags) Values() (files int, size int64, ok bool) {
	size, err := ParseSize(*f.size)
	if err != nil {
		log.Print(err)
	}
	return *f.files, size, err == nil && *f.files >= 1
}

// ParseSize reads a byte count such as "1GiB", "512MiB", "100MB" or
// "2.5GiB".
func ParseSize(s string) (int64, error) {
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

// MiB formats n bytes as "12.3 MiB".
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
