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

type counters struct {
	imported, skipped, failed, nullLength, bytesRead, bytesStored atomic.Int64
}

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
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// A dry run and a verification open an existing store read-only (a dry
	// run without one counts everything as new); an import creates it.
	readOnly := o.dryRun || o.verify
	var st *media.Store
	if _, err := os.Stat(filepath.Join(cfg.Server.DataDir, "FORMAT")); err == nil || !readOnly {
		st, err = media.Open(media.Options{Dir: cfg.Server.DataDir, Logger: quiet, ReadOnly: readOnly, Create: !readOnly, KeepBallast: !readOnly,
			Thumbnails: media.ThumbnailOptions{Disabled: true}})
		if errors.Is(err, media.ErrLocked) {
			return 2, fmt.Errorf("the data directory %s is held by a running mxcas server: stop mxcas first, then run the import", cfg.Server.DataDir)
		}
		if err != nil {
			return 2, err
		}
		defer st.Close()
	} else if o.verify {
		return 1, fmt.Errorf("nothing imported yet: %s has no mxcas store", cfg.Server.DataDir)
	}
	if o.verify {
		return verify(ctx, o, st, rows, src, stdout, stderr)
	}

	var c counters
	var todo []row
	for _, r := range rows {
		if !r.length.Valid {
			c.nullLength.Add(1)
			continue
		}
		todo = append(todo, r)
	}
	var bar *progressbar.ProgressBar
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions(len(todo), progressbar.OptionSetWriter(stderr), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("files"), progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetDescription("importing"))
	}
	stopAfter, _ := strconv.Atoi(os.Getenv("MXCAS_IMPORT_STOP_AFTER")) // test hook: die after N imports
	var logMu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.workers)
	for _, r := range todo {
		g.Go(func() error {
			if err := importOne(gctx, o, st, src, r, &c); err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				if errors.Is(err, errUnservable) {
					// No Matrix client can ask for it: not a failure to retry.
					c.skipped.Add(1)
					logMu.Lock()
					fmt.Fprintf(stderr, "skipped: %s: %v\n", r.mediaID, err)
					logMu.Unlock()
					return nil
				}
				c.failed.Add(1)
				logMu.Lock()
				fmt.Fprintf(stderr, "failed: %s: %v\n", r.mediaID, err)
				logMu.Unlock()
			}
			if stopAfter > 0 && c.imported.Load() >= int64(stopAfter) {
				os.Exit(3)
			}
			if bar != nil {
				logMu.Lock()
				bar.Describe(fmt.Sprintf("importing (%.1f MB read, %.1f MB stored)",
					float64(c.bytesRead.Load())/1e6, float64(c.bytesStored.Load())/1e6))
				bar.Add(1)
				logMu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 1, err
	}
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(stderr)
	}
	dedup := "0"
	if s := c.bytesStored.Load(); s > 0 {
		dedup = fmt.Sprintf("%.3f", float64(c.bytesRead.Load())/float64(s))
	}
	fmt.Fprintf(stdout, "summary: imported=%d skipped=%d failed=%d null_length=%d bytes_read=%d bytes_stored=%d dedup=%s\n",
		c.imported.Load(), c.skipped.Load(), c.failed.Load(), c.nullLength.Load(), c.bytesRead.Load(), c.bytesStored.Load(), dedup)
	if c.failed.Load() > 0 {
		return 1, nil
	}
	return 0, nil
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
		MXC:         m,
		ContentType: r.contentType,
		UploadName:  r.uploadName,
		Uploader:    r.userID,
		Created:     time.UnixMilli(r.created),
		Quarantined: r.quarantined,
		Remote:      r.remote,
		Size:        -1, // the file is the truth; media_length may be stale
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
