// Command synapse-import moves a Synapse media store into mxcas: every
// local and cached remote media row with its media ID, name, type, creation
// time, uploader and quarantine state, its bytes read from Synapse's
// media_store (or, when missing there, fetched from the homeserver),
// deduplicated into the mxcas data directory. It runs while mxcas is
// stopped, is idempotent (media already imported is skipped) and so also
// resumable, and never changes Synapse's database or files.
//
//	synapse-import -config mxcas.toml -serverName example.org \
//	    -dbHost localhost -dbUsername synapse -dbName synapse -mediaStore /var/lib/synapse/media_store
//	synapse-import -config mxcas.toml -serverName example.org -sqlite homeserver.db -mediaStore ./media_store
//
// Flags keep matrix-media-repo's import_synapse names where they fit.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"
	_ "modernc.org/sqlite"

	"github.com/mxcas/mxcas/config"
	"github.com/mxcas/mxcas/matrix"
	"github.com/mxcas/mxcas/media"
)

type options struct {
	config, serverName                     string
	dbHost, dbUsername, dbPassword, dbName string
	dbPort                                 int
	sqlite, mediaStore, baseURL, token     string
	workers                                int
	dryRun, verify                         bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("synapse-import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "mxcas configuration `file` (its data_dir receives the media)")
	fs.StringVar(&o.serverName, "serverName", "", "the homeserver's server name (the server part of its mxc:// URIs)")
	fs.StringVar(&o.dbHost, "dbHost", "localhost", "PostgreSQL host of Synapse's database")
	fs.IntVar(&o.dbPort, "dbPort", 5432, "PostgreSQL port")
	fs.StringVar(&o.dbUsername, "dbUsername", "synapse", "PostgreSQL user")
	fs.StringVar(&o.dbPassword, "dbPassword", "", "PostgreSQL password (prompted for when omitted on a terminal)")
	fs.StringVar(&o.dbName, "dbName", "synapse", "PostgreSQL database")
	fs.StringVar(&o.sqlite, "sqlite", "", "Synapse's SQLite database `file` (instead of PostgreSQL)")
	fs.StringVar(&o.mediaStore, "mediaStore", "", "Synapse's media_store `dir`ectory (read directly: the fast, offline path)")
	fs.StringVar(&o.baseURL, "baseUrl", "", "homeserver `URL` to fetch files missing from -mediaStore")
	fs.StringVar(&o.token, "accessToken", "", "an admin's access token for -baseUrl")
	fs.IntVar(&o.workers, "workers", 4, "concurrent imports")
	fs.BoolVar(&o.dryRun, "dryRun", false, "read everything, report what would be imported, change nothing")
	fs.BoolVar(&o.verify, "verify", false, "check that every row is imported and byte-identical; change nothing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.serverName == "" || (o.mediaStore == "" && o.baseURL == "") || o.workers < 1 {
		fmt.Fprintln(stderr, "synapse-import: -serverName and one of -mediaStore or -baseUrl are required; -workers must be positive")
		fs.Usage()
		return 2
	}
	if err := matrix.ValidateServerName(o.serverName); err != nil {
		fmt.Fprintln(stderr, "synapse-import:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := importAll(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "synapse-import:", err)
	}
	return code
}

// row is one media row of Synapse's database.
type row struct {
	mediaID, origin, contentType, uploadName, userID, fsID string
	length                                                 sql.NullInt64
	created                                                int64
	quarantined, remote, urlCache                          bool
}

// mxc is the row's media ID, validated: an error wraps matrix.ErrInvalid.
func (r row) mxc(local string) (matrix.MXC, error) {
	if r.remote {
		return matrix.NewMXC(r.origin, r.mediaID)
	}
	return matrix.NewMXC(local, r.mediaID)
}

// path is where Synapse keeps the row's file, relative to media_store.
func (r row) path() (string, error) {
	id := r.mediaID
	switch {
	case r.remote:
		f := r.fsID
		if len(f) < 5 || strings.ContainsAny(f, "/\\.") || strings.ContainsAny(r.origin, "/\\") || r.origin == "" {
			return "", fmt.Errorf("bad filesystem_id %q or origin %q", f, r.origin)
		}
		return filepath.Join("remote_content", r.origin, f[0:2], f[2:4], f[4:]), nil
	case r.urlCache:
		if strings.ContainsAny(id, "/\\") || strings.Contains(id, "..") {
			return "", fmt.Errorf("bad URL-cache media ID %q", id)
		}
		if date, rest, ok := strings.Cut(id, "_"); ok && isDate(date) && rest != "" {
			return filepath.Join("url_cache", date, rest), nil
		}
		if len(id) < 5 { // before Synapse dated them: url_cache/ab/cd/rest
			return "", fmt.Errorf("bad URL-cache media ID %q", id)
		}
		return filepath.Join("url_cache", id[0:2], id[2:4], id[4:]), nil
	default:
		if len(id) < 5 || strings.ContainsAny(id, "/\\") || strings.Contains(id, "..") {
			return "", fmt.Errorf("bad media ID %q", id)
		}
		return filepath.Join("local_content", id[0:2], id[2:4], id[4:]), nil
	}
}

// readRows loads every media row from PostgreSQL or SQLite.
func readRows(ctx context.Context, o options, stderr io.Writer) ([]row, error) {
	const local = `SELECT media_id, COALESCE(media_type, ''), media_length, COALESCE(created_ts, 0), COALESCE(upload_name, ''),
		COALESCE(user_id, ''), quarantined_by IS NOT NULL, url_cache IS NOT NULL FROM local_media_repository ORDER BY media_id`
	const remote = `SELECT media_origin, media_id, COALESCE(media_type, ''), media_length, COALESCE(created_ts, 0),
		COALESCE(upload_name, ''), COALESCE(filesystem_id, ''), quarantined_by IS NOT NULL FROM remote_media_cache ORDER BY media_origin, media_id`
	var rows []row
	// Names and types are stored as valid UTF-8 (as mxcas keeps them), so
	// -verify compares like with like.
	clean := func(r *row) {
		r.uploadName = strings.ToValidUTF8(r.uploadName, "\uFFFD")
		r.contentType = strings.ToValidUTF8(r.contentType, "\uFFFD")
	}
	scanLocal := func(sc func(...any) error) error {
		var r row
		err := sc(&r.mediaID, &r.contentType, &r.length, &r.created, &r.uploadName, &r.userID, &r.quarantined, &r.urlCache)
		clean(&r)
		rows = append(rows, r)
		return err
	}
	scanRemote := func(sc func(...any) error) error {
		r := row{remote: true}
		err := sc(&r.origin, &r.mediaID, &r.contentType, &r.length, &r.created, &r.uploadName, &r.fsID, &r.quarantined)
		clean(&r)
		rows = append(rows, r)
		return err
	}
	if o.sqlite != "" {
		if _, err := os.Stat(o.sqlite); err != nil {
			return nil, err
		}
		db, err := sql.Open("sqlite", "file:"+o.sqlite+"?mode=ro")
		if err != nil {
			return nil, err
		}
		defer db.Close()
		for _, q := range []struct {
			sql  string
			scan func(func(...any) error) error
		}{{local, scanLocal}, {remote, scanRemote}} {
			rs, err := db.QueryContext(ctx, q.sql)
			if err != nil {
				return nil, fmt.Errorf("read Synapse's SQLite database: %w", err)
			}
			for rs.Next() {
				if err := q.scan(rs.Scan); err != nil {
					rs.Close()
					return nil, err
				}
			}
			if err := rs.Close(); err != nil {
				return nil, err
			}
		}
		return rows, nil
	}
	pw := o.dbPassword
	if pw == "" && term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprintf(stderr, "Password for PostgreSQL user %s: ", o.dbUsername)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		pw = string(b)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(o.dbUsername, pw), Host: o.dbHost + ":" + strconv.Itoa(o.dbPort), Path: "/" + o.dbName}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("connect to Synapse's PostgreSQL database: %w", err)
	}
	defer conn.Close(ctx)
	for _, q := range []struct {
		sql  string
		scan func(func(...any) error) error
	}{{local, scanLocal}, {remote, scanRemote}} {
		rs, err := conn.Query(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("read Synapse's database: %w", err)
		}
		for rs.Next() {
			if err := q.scan(rs.Scan); err != nil {
				rs.Close()
				return nil, err
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// source opens a row's bytes: the file in media_store, else the homeserver
// (asked for m, the row's media ID).
type source struct {
	o      options
	client *http.Client
}

func (s source) open(ctx context.Context, r row, m matrix.MXC) (io.ReadCloser, error) {
	var fileErr error
	if s.o.mediaStore != "" {
		if p, err := r.path(); err != nil {
			fileErr = err
		} else if f, err := os.Open(filepath.Join(s.o.mediaStore, p)); err == nil {
			return f, nil
		} else {
			fileErr = err
		}
	}
	if s.o.baseURL == "" {
		return nil, fileErr
	}
	u := strings.TrimRight(s.o.baseURL, "/") + "/_matrix/client/v1/media/download/" + url.PathEscape(m.Server()) + "/" + url.PathEscape(m.MediaID())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if s.o.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.o.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("not on disk (%v), and fetching it failed: %w", fileErr, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("not on disk (%v), and the homeserver answered %s", fileErr, resp.Status)
	}
	return resp.Body, nil
}

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

// verify checks every row against the store, byte for byte.
func verify(ctx context.Context, o options, st *media.Store, rows []row, src source, stdout, _ io.Writer) (int, error) {
	var bad, ok atomic.Int64
	var mu sync.Mutex
	report := func(m matrix.MXC, why string) {
		bad.Add(1)
		mu.Lock()
		fmt.Fprintf(stdout, "verify: MISMATCH %s %s\n", m, why)
		mu.Unlock()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.workers)
	for _, r := range rows {
		if !r.length.Valid {
			continue
		}
		m, err := r.mxc(o.serverName)
		if err != nil {
			continue // not importable, so not verified (the import said so)
		}
		g.Go(func() error {
			rd, rec, err := st.Open(m)
			if err != nil {
				report(m, "not imported: "+err.Error())
				return nil
			}
			defer rd.Close()
			if rec.ContentType != r.contentType || rec.UploadName != r.uploadName {
				report(m, "name or type differs")
				return nil
			}
			want, err := src.open(gctx, r, m)
			if err != nil {
				report(m, "source unreadable: "+err.Error())
				return nil
			}
			defer want.Close()
			if same, err := equalReaders(rd, want); err != nil || !same {
				report(m, fmt.Sprintf("content differs (%v)", err))
				return nil
			}
			ok.Add(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 1, err
	}
	if bad.Load() > 0 {
		fmt.Fprintf(stdout, "verify: %d ok, %d MISMATCH\n", ok.Load(), bad.Load())
		return 1, nil
	}
	fmt.Fprintf(stdout, "verify: ok %d\n", ok.Load())
	return 0, nil
}

func equalReaders(a, b io.Reader) (bool, error) {
	ba := make([]byte, 64<<10)
	bb := make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || string(ba[:na]) != string(bb[:nb]) {
			return false, nil
		}
		aEnd := ea == io.EOF || ea == io.ErrUnexpectedEOF
		bEnd := eb == io.EOF || eb == io.ErrUnexpectedEOF
		if ea != nil && !aEnd {
			return false, ea
		}
		if eb != nil && !bEnd {
			return false, eb
		}
		if aEnd || bEnd {
			return aEnd && bEnd, nil
		}
	}
}

// isDate reports whether s looks like YYYY-MM-DD.
func isDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	for i, c := range s {
		if i != 4 && i != 7 && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
