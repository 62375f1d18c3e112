package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/media"
)

// errUnservable marks a row whose media ID no Matrix client could ask for
// (outside [A-Za-z0-9_-]): skipped with a warning, not a failure.
var errUnservable = errors.New("media ID cannot be served by mxcas")

// counters count the rows' outcomes and bytes; safe for concurrent use.
type counters struct {
	imported, skipped, failed, nullLength, bytesRead, bytesStored atomic.Int64
}

// importAll reads every row, then imports them (or, with -dryRun, counts
// what an import would do, or with -verify checks them against the store)
// and returns the process's exit code.
func importAll(ctx context.Context, o options, stdout, stderr io.Writer) (int, error) {
	cfg, err := config.Find(o.config)
	if err != nil {
		return 2, err
	}
	rows, err := readRows(ctx, o, stderr)
	if err != nil {
		return 2, err
	}
	src := source{o: o, client: &http.Client{Timeout: 5 * time.Minute}}
	st, code, err := openStore(cfg.Server.DataDir, o)
	if err != nil {
		return code, err
	}
	if st != nil {
		defer st.Close()
	}
	if o.verify {
		return verify(ctx, o, st, rows, src, stdout, stderr)
	}

	var c counters
	todo := rowsWithLength(rows, &c)
	im := &importer{o: o, st: st, src: src, c: &c, stderr: stderr, bar: progressBar(stderr, len(todo))}
	im.stopAfter, _ = strconv.Atoi(os.Getenv("MXCAS_IMPORT_STOP_AFTER")) // test hook: die after N imports
	if err := im.run(ctx, todo); err != nil {
		return 1, err
	}
	if im.bar != nil {
		im.bar.Finish()
		fmt.Fprintln(stderr)
	}
	return printSummary(stdout, &c), nil
}

// openStore opens the mxcas store in dir. A dry run and a verification open
// an existing store read-only (a dry run without one gets nil and counts
// everything as new); an import creates it. On an error the int is the
// exit code.
func openStore(dir string, o options) (*media.Store, int, error) {
	readOnly := o.dryRun || o.verify
	if _, err := os.Stat(filepath.Join(dir, "FORMAT")); err != nil && readOnly {
		if o.verify {
			return nil, 1, fmt.Errorf("nothing imported yet: %s has no mxcas store", dir)
		}
		return nil, 0, nil
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := media.Open(media.Options{Dir: dir, Logger: quiet, ReadOnly: readOnly, Create: !readOnly, KeepBallast: !readOnly,
		Thumbnails: media.ThumbnailOptions{Disabled: true}})
	if errors.Is(err, media.ErrLocked) {
		return nil, 2, fmt.Errorf("the data directory %s is held by a running mxcas server: stop mxcas first, then run the import", dir)
	}
	if err != nil {
		return nil, 2, err
	}
	return st, 0, nil
}

// rowsWithLength returns the rows that have a media_length, counting the
// others (media_length NULL: created, never uploaded; no file) in
// c.nullLength.
func rowsWithLength(rows []row, c *counters) []row {
	var todo []row
	for _, r := range rows {
		if !r.length.Valid {
			c.nullLength.Add(1)
			continue
		}
		todo = append(todo, r)
	}
	return todo
}

// progressBar returns a bar counting n files on stderr, or nil when stderr
// is not a terminal.
func progressBar(stderr io.Writer, n int) *progressbar.ProgressBar {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions(n, progressbar.OptionSetWriter(stderr), progressbar.OptionShowCount(),
		progressbar.OptionShowIts(), progressbar.OptionSetItsString("files"), progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetDescription("importing"))
}

// importer imports rows concurrently into st (nil in a dry run without a
// store), counting in c and reporting skips, failures and progress.
type importer struct {
	o         options
	st        *media.Store
	src       source
	c         *counters
	stderr    io.Writer
	bar       *progressbar.ProgressBar // nil: no progress shown
	stopAfter int                      // test hook: exit after this many imports (0: never)
	logMu     sync.Mutex               // guards stderr and bar
}

// run imports rows, o.workers at a time. A row's failure is counted and
// reported, not returned; the error is the context's.
func (im *importer) run(ctx context.Context, rows []row) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(im.o.workers)
	for _, r := range rows {
		g.Go(func() error { return im.importRow(gctx, r) })
	}
	return g.Wait()
}

// importRow imports r and reports the outcome.
func (im *importer) importRow(ctx context.Context, r row) error {
	if err := importOne(ctx, im.o, im.st, im.src, r, im.c); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errUnservable) {
			// No Matrix client can ask for it: not a failure to retry.
			im.c.skipped.Add(1)
			im.logf("skipped: %s: %v\n", r.mediaID, err)
			return nil
		}
		im.c.failed.Add(1)
		im.logf("failed: %s: %v\n", r.mediaID, err)
	}
	if im.stopAfter > 0 && im.c.imported.Load() >= int64(im.stopAfter) {
		os.Exit(3)
	}
	im.advance()
	return nil
}

// logf writes a line to stderr.
func (im *importer) logf(format string, args ...any) {
	im.logMu.Lock()
	fmt.Fprintf(im.stderr, format, args...)
	im.logMu.Unlock()
}

// advance moves the progress bar, when there is one, by one row.
func (im *importer) advance() {
	if im.bar == nil {
		return
	}
	im.logMu.Lock()
	im.bar.Describe(fmt.Sprintf("importing (%.1f MB read, %.1f MB stored)",
		float64(im.c.bytesRead.Load())/1e6, float64(im.c.bytesStored.Load())/1e6))
	im.bar.Add(1)
	im.logMu.Unlock()
}

// printSummary writes the counters' summary line to stdout and returns the
// exit code: 1 when any row failed.
func printSummary(stdout io.Writer, c *counters) int {
	dedup := "0"
	if s := c.bytesStored.Load(); s > 0 {
		dedup = fmt.Sprintf("%.3f", float64(c.bytesRead.Load())/float64(s))
	}
	fmt.Fprintf(stdout, "summary: imported=%d skipped=%d failed=%d null_length=%d bytes_read=%d bytes_stored=%d dedup=%s\n",
		c.imported.Load(), c.skipped.Load(), c.failed.Load(), c.nullLength.Load(), c.bytesRead.Load(), c.bytesStored.Load(), dedup)
	if c.failed.Load() > 0 {
		return 1
	}
	return 0
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func importOne(ctx context.Context, o options, st *media.Store, src source, r row, c *counters) error {
	m, err := r.mxc(o.serverName)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnservable, err)
	}
	if st != nil {
		if rec, err := st.Stat(m); err == nil && !rec.Pending {
			c.skipped.Add(1)
			return nil
		}
	}
	body, err := src.open(ctx, r, m)
	if err != nil {
		return err
	}
	defer body.Close()
	if o.dryRun {
		n, err := io.Copy(io.Discard, body)
		c.bytesRead.Add(n)
		if err != nil {
			return err
		}
		c.imported.Add(1)
		return nil
	}
	res, err := st.Import(ctx, media.ImportInfo{
		MXC:           m,
		ContentType:   r.contentType,
		UploadName:    r.uploadName,
		Uploader:      r.userID,
		Created:       time.UnixMilli(r.created),
		Quarantined:   r.quarantined,
		QuarantinedBy: r.quarantinedBy,
		Protected:     r.protected,
		LastAccess:    r.lastAccessTime(),
		Remote:        r.remote,
		Size:          -1, // the file is the truth; media_length may be stale
	}, countingReader{body, &c.bytesRead})
	if err != nil {
		return err
	}
	if !res.Imported {
		c.skipped.Add(1)
		return nil
	}
	c.imported.Add(1)
	c.bytesStored.Add(res.Stored)
	return nil
}
